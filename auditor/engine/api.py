"""All a check imports from the engine: what it yields (Problem, Skip) and what it reads (Context).

A check is a plain function ``check(ctx) -> Iterable[Problem | Skip]`` in auditor/checks that says
only what is wrong; auditor/engine/evaluate.py runs it and owns the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor.model.keys import Keys
from auditor.model.snapshot import Snapshot
from auditor.topology import HostView, Topology


@dataclass
class Problem:
    """What a check yields when it finds something; ``identity`` names the evidence fields (or
    ``file``/``line``) that identify the problem, so rewording a message never breaks a baseline."""

    resource: str
    message: str
    slot: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    identity: tuple[str, ...] = ()
    file: str | None = None
    line: int | None = None
    remediation: str | None = None  # the fix for this case, when the rule's general one does not fit it

    def identity_values(self) -> dict[str, Any]:
        own = {"file": self.file, "line": self.line}
        return {k: self.evidence[k] if k in self.evidence else own.get(k) for k in self.identity}


@dataclass
class Skip:
    """A check could not decide for lack of data; ``reason`` names the data."""

    reason: str
    resource: str | None = None
    slot: str | None = None


@dataclass
class Context:
    """What a check may read: the snapshot, its keys and topology, the rule's options (declared
    defaults filled in) and ``hosts``: the host descriptions that have every layer the rule needs."""

    snapshot: Snapshot
    keys: Keys
    topology: Topology
    options: dict[str, Any] = field(default_factory=dict)
    hosts: list[HostView] = field(default_factory=list)

    def host_resource(self, view: HostView) -> str:
        """How a finding names a host: `host:KEY`."""
        return f"host:{self.keys.host(view.host)}"

    def hosts_with(self, layer: str) -> Iterator[tuple[HostView, str]]:
        """The hosts whose ``layer`` ("nginx" or "docker") was read, each with its resource name (the
        engine has already skipped the hosts where it was not collected)."""
        for view in self.hosts:
            if getattr(view.host, layer) is not None:
                yield view, self.host_resource(view)


# One encoder for every finding: json.dumps builds a new one per call when given options.
_IDENTITY_JSON = json.JSONEncoder(sort_keys=True, default=str)


def fingerprint(rule_id: str, resource: str, slot: str | None, identity: dict[str, Any]) -> str:
    blob = _IDENTITY_JSON.encode([rule_id, resource, slot, identity])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
