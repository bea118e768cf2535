"""How a finding names what it is about and where in a file it is.

A ``Ref`` is a resource as findings, suppressions and baselines name it: ``target_group:web-tg``,
``host:web``, its kind then its role key (model.keys). A ``Location`` is a file and line a finding
points at. Both print as the text the outputs have always carried."""

from __future__ import annotations

from typing import Any, NamedTuple


class Ref(NamedTuple):
    kind: str  # a resource type (snapshot.RESOURCE_TYPES' singular names)
    key: str  # its role key, stable across environments

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"

    @classmethod
    def parse(cls, text: str) -> Ref:
        kind, _, key = text.partition(":")
        return cls(kind, key)


class Location(NamedTuple):
    file: str  # relative to the directory of audit.yaml, as the snapshot holds it
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.file else ""

    def as_evidence(self) -> dict[str, Any]:
        """The location as a finding's evidence holds it (plain data for every output)."""
        return {"file": self.file, "line": self.line}
