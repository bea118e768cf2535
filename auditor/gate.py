"""The pre-deploy gate: would making this slot live lose traffic? It fails closed.

Path findings (P1xx) for the slot, and those that belong to no slot, fail it;
findings about other slots, P112 (the health of what is live now) and the
hygiene rules are shown but do not. A path rule that could not decide for lack
of data makes the answer unknown (exit 2), never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.diff import Drift, DriftItem
from auditor.engine import Finding, Result, Skipped, severity_rank
from auditor.errors import AuditError

# P112 reports the health of what is live now, not what the next deploy would break.
NOT_GATING = {"P112"}


@dataclass
class Verdict:
    environment: str
    slots: list[str | None]
    failing: list[Finding]
    shown: list[Finding]
    missing: list[Skipped]
    drift: list[DriftItem] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failing and not self.missing and not self.drift

    @property
    def outcome(self) -> str:
        if self.missing:
            return "unknown"
        return "pass" if self.passed else "fail"


def gate_slots(result: Result, slot: str | None) -> list[str | None]:
    """The slots the gate judges: the one named, else each host's live slot (every slot where the
    live slot is unknown). [None] for an estate without slots."""
    views = result.topology.host_views
    known = sorted({s for v in views for s in v.slots})
    if slot is not None:
        if slot not in known:
            raise AuditError(f"unknown slot {slot!r} in environment {result.environment} "
                             f"(its hosts define: {', '.join(known) or 'no slots'})")
        return [slot]
    chosen: set[str] = set()
    for view in views:
        live, _ = view.live
        chosen |= {live} if live else set(view.slots)
    return sorted(chosen) or [None]


def _relevant(rule_id: str, item_slot: str | None, slots: list[str | None]) -> bool:
    return rule_id.startswith("P") and rule_id not in NOT_GATING and (item_slot is None or item_slot in slots)


def evaluate(result: Result, slot: str | None, fail_on: str, drift: Drift | None = None) -> Verdict:
    slots = gate_slots(result, slot)
    threshold = severity_rank(fail_on) if fail_on != "never" else -1
    failing, shown = [], []
    for finding in result.findings:
        gating = (_relevant(finding.rule_id, finding.slot, slots) and not finding.suppressed
                  and severity_rank(finding.severity) <= threshold)
        (failing if gating else shown).append(finding)
    missing = [s for s in result.skipped if _relevant(s.rule_id, s.slot, slots)]
    path_drift = [i for i in drift.unexpected if i.resource_type == "path"] if drift else []
    return Verdict(result.environment, slots, failing, shown, missing, path_drift)
