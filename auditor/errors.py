"""The one error family a user sees: its message is the line printed on stderr (exit 2)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

# The largest file of each kind audit reads (DESIGN "Nothing the user owns is lost, nothing hangs"):
# a larger one is refused unread, by name, instead of taking minutes and gigabytes to fail.
MB = 1_000_000
CONFIG_LIMIT = 1 * MB  # audit.yaml, a rule file
HOST_FILE_LIMIT = 16 * MB  # a compose file, an nginx file


class AuditError(Exception):
    """A problem with the user's input, config or environment; never a bug."""


class ConfigError(AuditError):
    """audit.yaml is missing, malformed or does not follow the contract."""


class SnapshotError(AuditError):
    """A snapshot file cannot be read, or cannot be used as asked."""


class CollectionStopped(AuditError):
    """Collection ended before it finished: --timeout passed, or the user pressed Ctrl-C. Threads may
    still be waiting on the network: the command exits without waiting for them."""


class GateDataMissing(AuditError):
    """The gate cannot answer because a path rule lacked the data it needs."""


def invalid_yaml(path: str | Path, exc: Exception) -> str:
    """A YAML parser's error as one line: `FILE:LINE: invalid YAML: what it found` (PyYAML's own
    message spans lines, with the offending text quoted)."""
    mark = getattr(exc, "problem_mark", None)
    where = f":{mark.line + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{path}{where}: invalid YAML: {problem}"


def read_bytes(path: str | Path, what: str, error: type[Exception] = AuditError, hint: str = "",
               limit: int | None = None) -> bytes:
    """A user's file, or one line naming it and what is wrong; one over ``limit`` bytes is refused
    after reading just past the limit."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read() if limit is None else handle.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found{hint}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    if limit is not None and len(raw) > limit:
        raise error(too_large(path, what, limit))
    return raw


def too_large(path: str | Path, what: str, limit: int) -> str:
    return f"{path}: {what} is over {limit // MB} MB, more than any real one: refused unread"


def read_text(path: str | Path, what: str, error: type[Exception] = AuditError, hint: str = "",
              limit: int | None = None) -> str:
    """A user's file as text, or one line naming it and what is wrong."""
    raw = read_bytes(path, what, error, hint, limit)
    try:
        return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as open() reads text
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None


def parse_yaml(text: str, path: str | Path, error: type[Exception], loader: type | None = None) -> Any:
    """YAML as Compose reads it: a mapping key given twice is refused, naming both lines (PyYAML
    keeps the last one silently: a second `dev:` would replace the first). ``loader`` is a SafeLoader
    (sub)class; the default is libyaml's when PyYAML has it."""
    import yaml

    try:
        chosen = unique_keys(loader or getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return yaml.load(text, Loader=chosen)  # noqa: S506 - a SafeLoader (sub)class
    except yaml.YAMLError as exc:
        raise error(invalid_yaml(path, exc)) from None


@functools.cache
def unique_keys(loader: type) -> type:
    """``loader`` refusing a duplicate mapping key with the message Compose gives."""
    import yaml

    class UniqueKeys(loader):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` then a key of its own overrides the merged one: allowed
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # an unhashable key: the base constructor refuses it in its own words
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f'mapping key "{key}" already defined at line {first + 1}', key_node.start_mark)
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep)

    UniqueKeys.__name__ = f"UniqueKeys{loader.__name__}"
    return UniqueKeys
