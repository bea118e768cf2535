"""What the engine, the differ and the gate produce, and every report reads: plain data, importing
nothing of auditor. Findings and skips of one environment (Result), drift between two (Drift), a
plan's effect (Review), the gate's answer (Verdict); and the severities and --fail-on thresholds
they are judged by. Reports import this module (and the snapshot's model), never the engine, the
topology or the gate's logic, so an output format cannot depend on how an answer was reached.
"""

from __future__ import annotations

import functools
import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

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
class Traffic:
    """The facts of an environment's traffic paths that the gate and some reports read: the path items
    and shapes, the slots its hosts define, the slots live now (each host's live one, or all of its
    slots when that is unknown), and the host each path crosses, per slot."""

    paths: list[dict[str, object]] = field(default_factory=list)
    shapes: list[str] = field(default_factory=list)
    slots: list[str] = field(default_factory=list)
    live_slots: list[str] = field(default_factory=list)
    path_hosts: list[tuple[str, str | None]] = field(default_factory=list)  # (host key, slot)


@dataclass
class Result:
    """One environment's findings and skips; ``rules`` is what ran, severities as configured.
    ``traffic_of`` gives its Traffic on first use: a check that reads none of it (60 ms of a 10k
    estate's check) does not compute it."""

    environment: str
    findings: list[Finding]
    skipped: list[Skipped]
    notes: list[str]
    rules: dict[str, RuleInfo] = field(default_factory=dict)
    traffic_of: Callable[[], Traffic] = field(default=Traffic, repr=False, compare=False)

    @functools.cached_property
    def traffic(self) -> Traffic:
        return self.traffic_of()

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


# --- drift between two environments ---------------------------------------------------------------------


class DriftItem(msgspec.Struct, kw_only=True):
    kind: Literal["changed", "only_in_a", "only_in_b", "ambiguous"]
    resource_type: str
    key: str
    path: str
    a: Any = None
    b: Any = None
    expected: bool = False
    reason: str | None = None


@dataclass
class Drift:
    a: str
    b: str
    items: list[DriftItem]
    shapes: dict[str, list[str]]  # environment -> its path shapes, for people
    environment: str = ""  # side a's environment (a and b are labels: `dev@2026-12-01T10:00` over time)

    @property
    def unexpected(self) -> list[DriftItem]:
        return [i for i in self.items if not i.expected]


# Yes/no facts in the words their field means (a path's slot is `not reached → reached`, not False → True).
_WORDS = {"reached": ("not reached", "reached"), "running": ("stopped", "running"),
          "internal": ("not internal", "internal"), "external": ("not external", "external")}


def drift_value(value: Any, path: str = "") -> str:
    """One side of a drift item (at field ``path``) on one line in words, the same in every format: text
    as it is, a list as its items, a mapping as key=value pairs, a yes/no as its field means it,
    nothing as (none). Never a JSON object: the JSON output has the values as data."""
    if value is None or value == [] or value == {}:
        return "(none)"
    if isinstance(value, bool):
        no, yes = _WORDS.get(path.rsplit(".", 1)[-1], ("false", "true"))
        return yes if value else no
    if isinstance(value, list):
        return ", ".join(_inner(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={_inner(v)}" for k, v in sorted(value.items()))
    return str(value)


def _inner(value: Any) -> str:
    """A value inside a list or mapping: nested ones bracketed so their items stay together."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_inner, value)) + "]"
    if isinstance(value, dict):
        return "{" + "; ".join(f"{k}={_inner(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def describe(item: DriftItem, a: str, b: str) -> str:
    """One drift item in words, naming the two sides: what JUnit and SARIF say, and the text report
    for items that are not a change of value."""
    if item.kind == "only_in_a":
        return f"only in {a}"
    if item.kind == "only_in_b":
        return f"only in {b}"
    if item.kind == "ambiguous":
        return f"ambiguous key ({item.a} in {a}, {item.b} in {b}), not compared"
    return f"{drift_value(item.a, item.path)} in {a}, {drift_value(item.b, item.path)} in {b}"


# --- a plan's effect, and the gate's answer ---------------------------------------------------------------


@dataclass(frozen=True)
class Unknown:
    address: str
    attribute: str

    def __str__(self) -> str:
        return f"{self.address}.{self.attribute}"


@dataclass
class Change:
    """One planned change the overlay applied, and the snapshot identities (ARNs, ids) it touches."""

    address: str
    action: str  # create | update | delete | replace
    collection: str
    detail: str
    ids: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        return f"{self.address}: {self.detail}"


@dataclass
class Review:
    """The plan's effect, for the gate's report: its changes, what stays unknown until apply, the
    findings it brings and resolves (each new one with the changes behind it), and the path shapes."""

    changes: list[Change]
    unknown: list[Unknown]
    outside: list[str]
    new: set[str]  # fingerprints
    resolved: list[Finding]  # findings of the environment as it is that the plan makes go away
    behind: dict[str, list[Change]]  # fingerprint -> the planned changes behind the finding
    paths_before: list[str]
    paths_after: list[str]


@dataclass
class Verdict:
    environment: str
    slots: list[str | None]
    failing: list[Finding]
    shown: list[Finding]
    missing: list[Skipped]
    drift: list[DriftItem] = field(default_factory=list)
    plan: Review | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    @property
    def outcome(self) -> str:
        """fail (exit 1) before unknown (exit 2): a proven loss of traffic is the stronger answer;
        but a plan's value unknown until apply comes first, since a finding may rest on it."""
        if self.plan is not None and self.plan.unknown:
            return "unknown"
        if self.failing or self.drift:
            return "fail"
        return "unknown" if self.missing else "pass"


@dataclass
class Places:
    """Where SARIF results point: every URI relative to one base, `%SRCROOT%` (the git work tree that holds
    audit.yaml, else its directory, else the working directory), which GitHub code scanning reads
    against the repository root. The command line finds it on disk; the report only reads it."""

    root: str = ""  # %SRCROOT% as an absolute POSIX path; "" when unknown (no originalUriBaseIds)
    files_from: str = ""  # where findings' files are relative to (audit.yaml's directory), relative to root
    entries: dict[str, tuple[str, int]] = field(default_factory=dict)  # environment → (uri, line) describing it
    fallback: tuple[str, int] = ("audit.yaml", 1)  # an environment with no entry of its own

    def file(self, name: str) -> str | None:
        """A finding's file as a URI under root; None when it lies outside (a host's own /etc/nginx)."""
        if name.startswith("/"):
            if not self.root or not (name + "/").startswith(self.root.rstrip("/") + "/"):
                return None
            return name[len(self.root.rstrip("/")) + 1:]
        joined = posixpath.normpath(posixpath.join(self.files_from, name))
        return None if joined == ".." or joined.startswith("../") else joined

    def entry(self, environment: str) -> tuple[str, int]:
        """The file and line that describe an environment: its key in audit.yaml, or its snapshot."""
        return self.entries.get(environment, self.fallback)
