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
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from auditor.config import Config, RulesConfig, Suppression
from auditor.engine.api import IDENTITY_JSON, MERGED_EVIDENCE, Context, Problem, Skip, fingerprint
from auditor.engine.subjects import subjects
from auditor.engine.catalog import Rule, configured_catalog, options_for
from auditor.engine.coverage import Coverage
from auditor.outcomes import Finding, Result, SkipCause, Skipped, Traffic, severity_rank
from auditor.model.keys import Keys
from auditor.model.refs import Ref
from auditor.model.snapshot import Snapshot
from auditor.topology import Topology, joined


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
        self.ignores = {(i.rule, i.file, i.line): i.reason for h in snapshot.resources.hosts
                        for nginx in [h.nginx, *h.nginx_beside] if nginx for i in nginx.ignores}

    def skip(self, rule_id: str, reason: str, cause: SkipCause, resource: str | None = None,
             slot: str | None = None) -> None:
        key = (rule_id, reason, resource, slot)
        if key not in self._skip_keys:
            self._skip_keys.add(key)
            self.skipped.append(Skipped(rule_id=rule_id, reason=reason, environment=self.snapshot.environment,
                                        resource=resource, slot=slot, cause=cause))

    def rule(self, rule: Rule, ctx: Context, severity: str) -> None:
        """Run one check; a check that raises is that rule skipped, never the whole run lost."""
        problems: dict[str, Problem] = {}
        try:
            for item, subject in _yields(rule, ctx):
                if item.resource is None and subject is not None:  # the subject names what it is about
                    item.resource, item.slot = ctx.ref(subject), getattr(subject, "slot", None)
                if isinstance(item, Skip):
                    self.skip(rule.id, item.reason, "missing_data", _text(item.resource), item.slot)
                else:
                    _merge_into(problems, rule.id, item)
        except Exception as exc:  # noqa: BLE001 - a bug in one check must not hide the others' results
            self.skip(rule.id, f"internal error in {rule.id}: {type(exc).__name__}: {exc}", "internal_error")
            return
        if rule.meta.merge == "slots":
            problems = _merge_slots(rule.id, problems, ctx)
        self.findings.extend(self._finding(rule, item, severity, key) for key, item in problems.items())

    def _finding(self, rule: Rule, item: Problem, severity: str, key: str) -> Finding:
        if item.at_most and severity_rank(item.at_most) > severity_rank(severity):
            severity = item.at_most
        finding = Finding(
            rule_id=rule.id, rule=rule.meta.name, severity=severity, environment=self.snapshot.environment,
            resource=str(item.resource), slot=item.slot, message=item.message, evidence=item.evidence,
            remediation=(item.remediation or rule.meta.remediation).strip(), fingerprint=key, file=item.file or None,
            line=item.line or None,
        )
        suppression = _suppression_for(finding, self.suppressions, self.today)
        inline = self.ignores.get((rule.id, item.file, item.line)) if item.file else None
        if suppression or inline is not None:
            finding.suppressed = True
            finding.suppression_reason = suppression.reason if suppression else f"audit:ignore {inline}".strip()
        return finding


def _yields(rule: Rule, ctx: Context) -> Iterator[tuple[Problem | Skip, Any]]:
    """What the check yields, each with the subject it ran on (None for the whole snapshot)."""
    check = rule.run
    for kind in rule.meta.on:
        if kind == "snapshot":
            for item in check(ctx):
                yield item, None
            continue
        for subject in subjects(kind, ctx, rule.meta.host_needs):
            for item in check(ctx, subject):
                yield item, subject


def _text(resource: Ref | str | None) -> str | None:
    return None if resource is None else str(resource)


def _merge_into(problems: dict[str, Problem], rule_id: str, item: Problem) -> None:
    """One cause, one finding: a problem seen again (another instance, another place) joins the first."""
    key = fingerprint(rule_id, item.resource, item.slot, item.identity_values())
    first = problems.setdefault(key, item)
    if first is not item:
        for name in MERGED_EVIDENCE:
            if isinstance(first.evidence.get(name), list):
                first.evidence[name].extend(v for v in item.evidence.get(name, []) if v not in first.evidence[name])


def _merge_slots(rule_id: str, problems: dict[str, Problem], ctx: Context) -> dict[str, Problem]:
    """`merge: slots`: a problem found in every slot of its host (evidence `host`) is about the host:
    one finding with no slot."""
    slots_of = {sp.host.name: max(1, len(sp.host.slots)) for sp in ctx.topology.slot_paths}
    groups: dict[tuple[str, str], list[Problem]] = defaultdict(list)
    for item in problems.values():
        groups[(str(item.resource), IDENTITY_JSON.encode(item.identity_values()))].append(item)
    merged: dict[str, Problem] = {}
    for group in groups.values():
        slots = {item.slot for item in group}
        if len(slots) > 1 and len(slots) >= slots_of.get(group[0].evidence.get("host", ""), 0):
            group[0].slot = None
            group = group[:1]
        merged |= {fingerprint(rule_id, item.resource, item.slot, item.identity_values()): item for item in group}
    return merged


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
    topology = joined(snapshot, list(tokens))
    keys = topology.keys
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
        # A rule about nginx alone judges every nginx a host runs; the others follow the way in (the front one).
        for view in topology.nginx_views if layers == ["nginx"] else topology.host_views:
            host_gap = coverage.host_gap(view, layers) if layers else None
            if host_gap is None:
                hosts.append(view)
            else:
                state.skip(rule_id, host_gap.reason, host_gap.cause, str(Ref("host", keys.host(view.host))))
        options = options_for(rule, rules_config.options.get(rule_id, {}))
        state.rule(rule, Context(snapshot, keys, topology, options, hosts), severity)
    findings = sorted(state.findings, key=lambda f: (severity_rank(f.severity), f.rule_id, f.resource, f.slot or ""))
    return Result(snapshot.environment, findings, state.skipped, notes, ran, lambda: traffic(topology, keys))


def traffic(topology: Topology, keys: Keys) -> Traffic:
    """What the gate and the reports read of the traffic paths, as plain data."""
    live: set[str] = set()
    for view in topology.host_views:
        slot, _ = view.live
        live |= {slot} if slot else set(view.slots)
    slots = sorted({s for view in topology.host_views for s in view.slots})
    return Traffic(topology.path_items, topology.shapes(), slots, sorted(live),
                   [(keys.host(sp.host.host), sp.slot) for sp in topology.slot_paths])


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
