"""What the engine produces and every report reads: findings, skips, severities, one rule run's result.

A data contract of its own, beside the snapshot: reports import this module, never the engine,
so an output format cannot depend on how the rules are run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from auditor.topology import Topology

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
FAIL_ON: tuple[str, ...] = SEVERITIES + ("never",)


def severity_rank(severity: str) -> int:
    """0 for critical … 4 for info; lower is worse."""
    return SEVERITIES.index(severity)


def at_or_above(severity: str, fail_on: str) -> bool:
    """Whether a finding of ``severity`` counts against ``--fail-on`` (``never``: nothing does)."""
    return fail_on != "never" and severity_rank(severity) <= severity_rank(fail_on)


class RuleInfo(msgspec.Struct, kw_only=True):
    """A rule as reports show it: its metadata, with the severity as configured."""

    id: str
    name: str
    severity: Severity
    title: str
    rationale: str
    remediation: str
    references: list[str] = msgspec.field(default_factory=list)


class Finding(msgspec.Struct, kw_only=True):
    rule_id: str
    rule: str
    severity: Severity
    environment: str
    resource: str
    slot: str | None = None
    message: str
    evidence: dict[str, Any] = msgspec.field(default_factory=dict)
    remediation: str
    fingerprint: str
    suppressed: bool = False
    suppression_reason: str | None = None
    file: str | None = None  # where in the host's files, for findings about nginx or compose
    line: int | None = None

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.file and self.line else (self.file or "")


# Why a rule did not run somewhere: data nobody asked for (--offline, no docker description), data
# that collection failed to read, data a check found missing, or a bug in the check.
SkipCause = Literal["not_requested", "not_collected", "missing_data", "internal_error"]


class Skipped(msgspec.Struct, kw_only=True):
    rule_id: str
    reason: str
    environment: str
    resource: str | None = None
    slot: str | None = None
    cause: SkipCause = "missing_data"


@dataclass
class Result:
    """One environment's findings and skips; ``rules`` is what ran, severities as configured."""

    environment: str
    findings: list[Finding]
    skipped: list[Skipped]
    notes: list[str]
    topology: Topology
    rules: dict[str, RuleInfo] = field(default_factory=dict)

    @property
    def internal_errors(self) -> list[Skipped]:
        return [s for s in self.skipped if s.cause == "internal_error"]


def failing(results: list[Result], fail_on: str) -> list[Finding]:
    """Unsuppressed findings at or above ``fail_on``: what makes `check` exit 1."""
    return [f for r in results for f in r.findings if not f.suppressed and at_or_above(f.severity, fail_on)]


def summary(findings: list[Finding]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        if not finding.suppressed:
            counts[finding.severity] += 1
    return counts
