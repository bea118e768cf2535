"""The one error family a user sees: its message is the line printed on stderr (exit 2)."""


class AuditError(Exception):
    """A problem with the user's input, config or environment; never a bug."""


class ConfigError(AuditError):
    """audit.yaml is missing, malformed or does not follow the contract."""


class SnapshotError(AuditError):
    """A snapshot file cannot be read, or cannot be used as asked."""


class GateDataMissing(AuditError):
    """The gate cannot answer because a path rule lacked the data it needs."""
