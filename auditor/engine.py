"""The rule engine: runs each rule of the catalog on one snapshot and owns what every rule shares.

A check is a plain function ``check(ctx) -> Iterable[Problem | Skip]`` in auditor/checks that
says only what is wrong. The engine owns the rest:

- coverage: a rule runs only on data that was collected. What its YAML `needs` (AWS operations,
  host layers) was not asked for or failed to be read turns into `skipped`, for exactly the
  environment or the hosts concerned, with the reason; a check never passes on a guess;
- containment: a check that raises is that rule `skipped` ("internal error in RULE"), the others run;
- one cause, one finding: problems with the same fingerprint are reported once;
- metadata, severities as configured, suppressions, baselines' fingerprints, inline audit:ignore.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from auditor.catalog import Rule, configured_catalog, options_for
from auditor.config import Config, RulesConfig, Suppression
from auditor.findings import Finding, Result, SkipCause, Skipped, severity_rank
from auditor.keys import Keys
from auditor.snapshot import Snapshot, has_aws
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


# One encoder for every finding: json.dumps builds a new one per call when given options.
_IDENTITY_JSON = json.JSONEncoder(sort_keys=True, default=str)


def fingerprint(rule_id: str, resource: str, slot: str | None, identity: dict[str, Any]) -> str:
    blob = _IDENTITY_JSON.encode([rule_id, resource, slot, identity])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --- coverage: what was collected ------------------------------------------------------------------


@dataclass
class Gap:
    """Data a rule may need that the snapshot does not hold, and why."""

    reason: str
    cause: SkipCause


class Coverage:
    """What the snapshot holds, per AWS operation and per host layer."""

    def __init__(self, snapshot: Snapshot, topology: Topology) -> None:
        self.aws = _aws_gap(snapshot)
        self.failed = {e.operation: e for name, status in snapshot.sources.items() if name.startswith("aws")
                       for e in status.errors if e.operation}
        self.host_gaps: dict[int, dict[str, Gap]] = {}
        for view in topology.host_views:
            self.host_gaps[id(view)] = _host_gaps(view)

    def aws_gap(self, needs: list[str]) -> Gap | None:
        if not needs:
            return None
        if self.aws is not None:
            return self.aws
        lacking = [self.failed[op] for op in needs if op in self.failed]
        if lacking:
            error = lacking[0]
            return Gap(f"{error.operation} failed during collection ({error.code or 'error'}): the data this rule "
                       "reads is incomplete", "not_collected")
        return None

    def host_gap(self, view: HostView, layers: list[str]) -> Gap | None:
        gaps = self.host_gaps[id(view)]
        return next((gaps[layer] for layer in layers if layer in gaps), None)


def _aws_gap(snapshot: Snapshot) -> Gap | None:
    """Why the snapshot holds no AWS facts, or None when it holds them (a snapshot written by hand,
    with no sources, holds what it says)."""
    if not snapshot.sources or has_aws(snapshot):
        return None
    aws = snapshot.sources.get("aws")
    why = aws.reason if aws is not None and aws.reason else "the snapshot holds host facts only"
    return Gap(f"AWS not collected ({why})", "not_requested")


def _host_gaps(view: HostView) -> dict[str, Gap]:
    host = view.host
    gaps = {layer: Gap(f"host {view.name}: {layer} not collected ({why})", "not_requested")
            for layer, why in host.not_requested.items()}
    gaps.update({layer: Gap(f"host {view.name}: {layer} was not collected ({why})", "not_collected")
                 for layer, why in host.uncollected.items()})
    nginx = host.nginx
    if nginx is not None and not nginx.files and nginx.unreadable and "nginx" not in gaps:
        gaps["nginx"] = Gap(f"host {view.name}: what nginx loads is unknown ({nginx.unreadable[0].message})",
                            "missing_data")
    # No nginx is a fact (the ALB or the proxy reaches containers directly); no docker is not.
    if host.docker is None and "docker" not in gaps:
        gaps["docker"] = Gap(f"host {view.name} has no docker description", "not_requested")
    return gaps


# --- running the rules -----------------------------------------------------------------------------


def _suppression_for(finding: Finding, suppressions: Iterable[Suppression], today: dt.date) -> Suppression | None:
    for s in suppressions:
        if s.rule == finding.rule_id and fnmatch.fnmatchcase(finding.resource, s.resource):
            if s.expires is None or s.expires >= today:
                return s
    return None


class _Run:
    """One snapshot's findings and skips as the rules add them."""

    def __init__(self, snapshot: Snapshot, suppressions: list[Suppression], today: dt.date) -> None:
        self.snapshot = snapshot
        self.suppressions = suppressions
        self.today = today
        self.findings: list[Finding] = []
        self.skipped: list[Skipped] = []
        self._skip_keys: set[tuple[Any, ...]] = set()
        # `# audit:ignore RULE reason` on the line before an nginx directive suppresses that rule there.
        self.ignores = {(i.rule, i.file, i.line): i.reason for h in snapshot.resources.hosts if h.nginx
                        for i in h.nginx.ignores}

    def skip(self, rule_id: str, reason: str, cause: SkipCause, resource: str | None = None,
             slot: str | None = None) -> None:
        key = (rule_id, reason, resource, slot)
        if key not in self._skip_keys:
            self._skip_keys.add(key)
            self.skipped.append(Skipped(rule_id=rule_id, reason=reason, environment=self.snapshot.environment,
                                        resource=resource, slot=slot, cause=cause))

    def rule(self, rule: Rule, ctx: Context, severity: str) -> None:
        """Run one check; a check that raises is that rule skipped, never the whole run lost."""
        fingerprints: set[str] = set()
        found: list[Finding] = []
        try:
            for item in rule.run(ctx):
                if isinstance(item, Skip):
                    self.skip(rule.id, item.reason, "missing_data", item.resource, item.slot)
                    continue
                key = fingerprint(rule.id, item.resource, item.slot, item.identity_values())
                if key in fingerprints:
                    continue  # one cause, one finding
                fingerprints.add(key)
                found.append(self._finding(rule, item, severity, key))
        except Exception as exc:  # noqa: BLE001 - a bug in one check must not hide the others' results
            self.skip(rule.id, f"internal error in {rule.id}: {type(exc).__name__}: {exc}", "internal_error")
            return
        self.findings.extend(found)

    def _finding(self, rule: Rule, item: Problem, severity: str, key: str) -> Finding:
        finding = Finding(
            rule_id=rule.id, rule=rule.meta.name, severity=severity, environment=self.snapshot.environment,
            resource=item.resource, slot=item.slot, message=item.message, evidence=item.evidence,
            remediation=(item.remediation or rule.meta.remediation).strip(), fingerprint=key, file=item.file or None,
            line=item.line or None,
        )
        suppression = _suppression_for(finding, self.suppressions, self.today)
        inline = self.ignores.get((rule.id, item.file, item.line)) if item.file else None
        if suppression or inline is not None:
            finding.suppressed = True
            finding.suppression_reason = suppression.reason if suppression else f"audit:ignore {inline}".strip()
        return finding


def run(
    snapshot: Snapshot,
    tokens: Iterable[str],
    catalog: dict[str, Rule],
    rules_config: RulesConfig | None = None,
    suppressions: list[Suppression] = (),
    today: dt.date | None = None,
) -> Result:
    """Run every enabled rule on one snapshot. Pure: ``today`` is passed in for suppressions."""
    rules_config = rules_config or RulesConfig()
    today = today or dt.date.min
    keys = Keys(snapshot, tokens)
    topology = Topology(snapshot, keys)
    coverage = Coverage(snapshot, topology)
    state = _Run(snapshot, list(suppressions), today)
    notes = [
        f"suppression of {s.rule} on {s.resource} expired on {s.expires}; it no longer suppresses"
        for s in suppressions
        if s.expires is not None and s.expires < today
    ]
    # A partial collection accepted with --allow-partial still says what is missing.
    notes += [f"{name} was not fully collected: {e.message or e.code}"
              for name, status in sorted(snapshot.sources.items()) for e in status.errors]
    ran = {}
    for rule_id, rule in sorted(catalog.items()):
        if rule_id in rules_config.disable:
            continue
        severity = rules_config.severity.get(rule_id, rule.meta.severity)
        ran[rule_id] = rule.meta.info(severity)
        gap = coverage.aws_gap(rule.meta.aws_needs)
        if gap is not None:
            state.skip(rule_id, gap.reason, gap.cause)
            continue
        hosts = []
        layers = rule.meta.host_needs
        for view in topology.host_views:
            host_gap = coverage.host_gap(view, layers) if layers else None
            if host_gap is None:
                hosts.append(view)
            else:
                state.skip(rule_id, host_gap.reason, host_gap.cause, f"host:{keys.host(view.host)}")
        options = options_for(rule, rules_config.options.get(rule_id, {}))
        state.rule(rule, Context(snapshot, keys, topology, options, hosts), severity)
    findings = sorted(state.findings, key=lambda f: (severity_rank(f.severity), f.rule_id, f.resource, f.slot or ""))
    return Result(snapshot.environment, findings, state.skipped, notes, topology, ran)


def run_configured(snapshot: Snapshot, config: Config | None, tokens: list[str], today: dt.date,
                   catalog: dict[str, Rule] | None = None) -> Result:
    catalog = catalog if catalog is not None else configured_catalog(config)
    return run(
        snapshot,
        tokens,
        catalog,
        config.rules if config else None,
        config.suppressions if config else [],
        today,
    )
