"""The one error family a user sees: its message is the line printed on stderr (exit 2)."""

from __future__ import annotations

from pathlib import Path


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


def read_bytes(path: str | Path, what: str, error: type[AuditError] = AuditError, hint: str = "") -> bytes:
    """A user's file, or one line naming it and what is wrong."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found{hint}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def read_text(path: str | Path, what: str, error: type[AuditError] = AuditError, hint: str = "") -> str:
    """A user's file as text, or one line naming it and what is wrong."""
    raw = read_bytes(path, what, error, hint)
    try:
        return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as open() reads text
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None
