"""The pre-deploy gate: would making this slot live lose traffic? It fails closed.

Path findings (P1xx) for the slot, and those that belong to no slot, fail it,
and so does N500 (nginx refuses its config) on a host of the judged path;
findings about other slots, P112 (the health of what is live now) and the
hygiene rules are shown but do not. In this order: a gating finding is exit 1;
else a gating rule that was skipped for the slot (data not collected, not
asked for, or a check that raised) makes the answer unknown (exit 2), never a
pass; else exit 0.

With a plan (`--plan`), the gate judges the environment as the plan leaves it.
A value the plan knows only after apply comes first: it makes the answer
unknown even beside a failing finding, which may rest on that very value.
"""

from __future__ import annotations

from auditor.errors import AuditError
from auditor.outcomes import Drift, Result, Review, Verdict, at_or_above

# P112 reports the health of what is live now, not what the next deploy would break.
NOT_GATING = {"P112"}
# nginx refusing its config breaks every path through it, whatever the slot.
GATING_BEYOND_PATHS = {"N500"}


def gate_slots(result: Result, slot: str | None) -> list[str | None]:
    """The slots the gate judges: the one named, else each host's live slot (every slot where the
    live slot is unknown). [None] for an estate without slots."""
    if slot is not None:
        if slot not in result.traffic.slots:
            raise AuditError(f"unknown slot {slot!r} in environment {result.environment} "
                             f"(its hosts define: {', '.join(result.traffic.slots) or 'no slots'})")
        return [slot]
    return list(result.traffic.live_slots) or [None]


def _gating_rule(rule_id: str) -> bool:
    return (rule_id.startswith("P") and rule_id not in NOT_GATING) or rule_id in GATING_BEYOND_PATHS


def _on_judged_path(result: Result, resource: str | None, slots: list[str | None]) -> bool:
    """Whether a host-level item (N500) concerns the judged path: its host is on a path of a judged
    slot, or no path is known at all (AWS not collected), so it may be."""
    if not resource or not resource.startswith("host:"):
        return True
    if not result.traffic.path_hosts:
        return True
    name = resource.removeprefix("host:")
    return any(host == name for host, slot in result.traffic.path_hosts if slot is None or slot in slots)


def _relevant(result: Result, rule_id: str, resource: str | None, item_slot: str | None,
              slots: list[str | None]) -> bool:
    if not _gating_rule(rule_id) or (item_slot is not None and item_slot not in slots):
        return False
    return rule_id not in GATING_BEYOND_PATHS or _on_judged_path(result, resource, slots)


def _resting_on_unknown(plan: Review | None) -> set[str]:
    """Findings the plan brings through a change with a value known only after apply: they prove nothing."""
    if plan is None or not plan.unknown:
        return set()
    unknown = {u.address for u in plan.unknown}
    return {fingerprint for fingerprint, changes in plan.behind.items()
            if any(c.address in unknown for c in changes)}


def evaluate(result: Result, slot: str | None, fail_on: str, drift: Drift | None = None,
             plan: Review | None = None) -> Verdict:
    slots = gate_slots(result, slot)
    failing, shown = [], []
    resting = _resting_on_unknown(plan)
    for finding in result.findings:
        gating = (_relevant(result, finding.rule_id, finding.resource, finding.slot, slots)
                  and not finding.suppressed and at_or_above(finding.severity, fail_on)
                  and finding.fingerprint not in resting)
        (failing if gating else shown).append(finding)
    # A check that raised could have found anything: the answer is unknown, whichever rule it was.
    missing = [s for s in result.skipped if s.cause == "internal_error"
               or _relevant(result, s.rule_id, s.resource, s.slot, slots)]
    path_drift = [i for i in drift.unexpected if i.resource_type == "path"] if drift else []
    return Verdict(result.environment, slots, failing, shown, missing, path_drift, plan)
