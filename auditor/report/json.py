"""JSON output: the contracts in DESIGN.md ("Findings JSON", "Drift JSON"); the gate adds a `gate` key."""

from __future__ import annotations

import json
from typing import Any

from auditor import __version__
from auditor.outcomes import Drift, Finding, Result, Verdict, summary
from auditor.model.typed import plain

SCHEMA_VERSION = 1


def _finding(finding: Finding) -> dict[str, Any]:
    data = plain(finding)
    del data["suppression_reason"]
    return data


def check_data(results: list[Result]) -> dict[str, Any]:
    findings = [f for r in results for f in r.findings]
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "auditor", "version": __version__},
        "environments": [r.environment for r in results],
        "findings": [_finding(f) for f in findings],
        "skipped": [plain(s) for r in results for s in r.skipped],
        "summary": summary(findings),
    }


def diff_data(drift: Drift) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "a": drift.a,
        "b": drift.b,
        "drift": [plain(i) for i in drift.items],
        "summary": {"unexpected": len(drift.unexpected), "expected": len(drift.items) - len(drift.unexpected)},
    }


def render_check(results: list[Result], fail_on: str = "high") -> str:
    return json.dumps(check_data(results), indent=2, sort_keys=False) + "\n"


def render_diff(drifts: list[Drift]) -> str:
    data: Any = diff_data(drifts[0]) if len(drifts) == 1 else [diff_data(d) for d in drifts]
    return json.dumps(data, indent=2) + "\n"


def render_gate(result: Result, verdict: Verdict) -> str:
    data = check_data([result])
    data["gate"] = {
        "environment": verdict.environment,
        "slots": verdict.slots,
        "result": verdict.outcome,
        "failing": [f.fingerprint for f in verdict.failing],
        "missing_data": [plain(s) for s in verdict.missing],
        "path_drift": [plain(i) for i in verdict.drift],
    }
    plan = verdict.plan
    if plan is not None:
        data["gate"]["plan"] = {
            "changes": [{"address": c.address, "action": c.action, "detail": c.detail} for c in plan.changes],
            "unknown_until_apply": [str(u) for u in plan.unknown],
            "outside_environment": plan.outside,
            "new_findings": sorted(plan.new),
            "behind": {fingerprint: [str(c) for c in changes] for fingerprint, changes in plan.behind.items()},
            "resolved_findings": [plain(f) for f in plan.resolved],
            "paths": {"before": plan.paths_before, "after": plan.paths_after},
        }
    return json.dumps(data, indent=2) + "\n"
