"""SARIF 2.1.0 for GitHub code scanning: one run per environment, rules with help text and
`security-severity`, results with levels and stable fingerprints.

Every location is relative to one base, `%SRCROOT%` (DESIGN "Locations"), so GitHub annotates the
line of the pull request. Findings from files (nginx, compose) point at their file and line. AWS
findings have no file: they carry a logical location (the ARN-free role key) and, because GitHub
code scanning rejects a result without a physical location, point at the entry that describes the
environment (its key in audit.yaml, or the snapshot file it came from).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from auditor import __version__
from auditor.outcomes import Drift, Finding, Places, Result, RuleInfo, Skipped, Verdict, describe
from auditor.model.typed import plain

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub maps security-severity to its own critical (>= 9.0), high (7.0-8.9), medium and low.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def _rule(meta: RuleInfo) -> dict[str, Any]:
    help_text = " ".join(meta.remediation.split())
    references = "".join(f"\n- {r}" for r in meta.references)
    return {
        "id": meta.id,
        "name": meta.name,
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": " ".join(meta.rationale.split())},
        "help": {"text": help_text, "markdown": f"**Fix:** {help_text}" + (f"\n\nReferences:{references}"
                                                                           if references else "")},
        **({"helpUri": meta.references[0]} if meta.references else {}),
        "defaultConfiguration": {"level": LEVEL[meta.severity]},
        "properties": {"security-severity": SECURITY_SEVERITY[meta.severity], "precision": "high",
                       "tags": ["reliability", {"P": "traffic-path", "A": "alb", "T": "target-group",
                                                "S": "security-group", "N": "nginx", "D": "docker"}.get(
                                                    meta.id[0], "custom")]},
    }


def _physical(uri: str, line: int) -> dict[str, Any]:
    # An entry outside the work tree (a snapshot elsewhere) is an absolute file: URI, on no base.
    artifact = {"uri": uri} if uri.startswith("file:") else {"uri": uri, "uriBaseId": SRCROOT}
    return {"artifactLocation": artifact, "region": {"startLine": max(1, line)}}


def _uri(finding: Finding, places: Places) -> str | None:
    # A file of an image (nginx's stock default server), of a host (its /etc/nginx) or beside the work
    # tree is in no repository: such a finding points at its environment's entry, and its message names it.
    return places.file(finding.file) if finding.file and " image: " not in finding.file else None


def _location(finding: Finding, places: Places) -> dict[str, Any]:
    uri = _uri(finding, places)
    physical = _physical(uri, finding.line or 1) if uri else _physical(*places.entry(finding.environment))
    return {
        "physicalLocation": physical,
        "logicalLocations": [{"name": finding.resource.split(":", 1)[-1], "kind": "resource",
                              "fullyQualifiedName": f"{finding.environment}/{finding.resource}"}],
    }


def _result(finding: Finding, index: dict[str, int], places: Places) -> dict[str, Any]:
    slot = f" (slot {finding.slot})" if finding.slot else ""
    elsewhere = f" [{finding.location}]" if finding.file and not _uri(finding, places) else ""
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "level": LEVEL[finding.severity],
        "message": {"text": f"{finding.message}{slot}{elsewhere}"},
        "locations": [_location(finding, places)],
        "partialFingerprints": {"auditFingerprint/v1": finding.fingerprint},
        "properties": {"environment": finding.environment, "resource": finding.resource, "slot": finding.slot,
                       "severity": finding.severity, "evidence": finding.evidence},
    }
    if finding.rule_id in index:
        result["ruleIndex"] = index[finding.rule_id]
    if finding.suppressed:
        result["suppressions"] = [{"kind": "external", "justification": finding.suppression_reason or ""}]
    return result


def _notification(skipped: Skipped, index: dict[str, int]) -> dict[str, Any]:
    """A rule that did not run somewhere: a tool execution notification, an error when its check raised."""
    where = " ".join(filter(None, [skipped.resource, f"slot {skipped.slot}" if skipped.slot else None]))
    descriptor: dict[str, Any] = {"id": skipped.rule_id}
    if skipped.rule_id in index:
        descriptor["index"] = index[skipped.rule_id]
    return {"descriptor": descriptor, "level": "error" if skipped.cause == "internal_error" else "note",
            "message": {"text": f"{skipped.rule_id} skipped{' on ' + where if where else ''}: {skipped.reason}"},
            "properties": {"cause": skipped.cause}}


def _bases(places: Places) -> dict[str, Any]:
    """originalUriBaseIds: where %SRCROOT% is on the machine that wrote the log (a viewer may rebase it)."""
    if not places.root:
        return {}
    return {"originalUriBaseIds": {SRCROOT: {"uri": "file://" + quote(places.root.rstrip("/") + "/")}}}


def _run(result: Result, places: Places, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    rules = list(result.rules.values())
    index = {meta.id: i for i, meta in enumerate(rules)}
    return {
        "invocations": [{"executionSuccessful": not result.internal_errors,
                         "toolExecutionNotifications": [_notification(s, index) for s in result.skipped]}],
        "tool": {"driver": {"name": "auditor", "version": __version__,
                            "rules": [_rule(meta) for meta in rules]}},
        "automationDetails": {"id": f"audit/{result.environment}/"},
        **_bases(places),
        "results": [_result(f, index, places) for f in result.findings],
        "properties": {"skipped": [plain(s) for s in result.skipped], **(extra or {})},
    }


def _log(runs: list[dict[str, Any]]) -> str:
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": runs}, indent=2) + "\n"


def render_check(results: list[Result], fail_on: str = "high", places: Places | None = None) -> str:
    return _log([_run(r, places or Places()) for r in results])


def render_gate(result: Result, verdict: Verdict, places: Places | None = None) -> str:
    gate: dict[str, Any] = {"slots": verdict.slots, "result": verdict.outcome,
                            "failing": [f.fingerprint for f in verdict.failing]}
    run = _run(result, places or Places(), {"gate": gate})
    plan = verdict.plan
    if plan is not None:
        # What the plan changes, as text and JSON say it; each finding it brings names its changes.
        gate["plan"] = {"changes": [str(c) for c in plan.changes], "unknown_until_apply": [str(u) for u in plan.unknown],
                        "new_findings": sorted(plan.new), "resolved": [f.fingerprint for f in plan.resolved],
                        "paths_before": plan.paths_before, "paths_after": plan.paths_after}
        for entry in run["results"]:
            behind = plan.behind.get(entry["partialFingerprints"]["auditFingerprint/v1"], [])
            if behind:
                entry["message"]["text"] += " Planned: " + "; ".join(map(str, behind)) + "."
                entry["properties"]["planned"] = [str(c) for c in behind]
    return _log([run])


DRIFT_RULES = {
    "changed": "A setting differs between environments",
    "only_in_a": "A resource exists only in the first environment",
    "only_in_b": "A resource exists only in the reference environment",
    "ambiguous": "Several resources share one role key, so they were not compared",
}


def render_diff(drifts: list[Drift], places: Places | None = None) -> str:
    places = places or Places()
    rules = [{"id": f"drift/{kind}", "name": f"drift-{kind.replace('_', '-')}", "shortDescription": {"text": text},
              "defaultConfiguration": {"level": "warning"}, "properties": {"security-severity": "5.5"}}
             for kind, text in DRIFT_RULES.items()]
    index = {r["id"]: i for i, r in enumerate(rules)}
    runs = []
    for d in drifts:
        results = []
        for item in d.items:
            where = f"{item.resource_type}:{item.key}" + (f".{item.path}" if item.path else "")
            text = f"{where}: {describe(item, d.a, d.b)}"
            result: dict[str, Any] = {
                "ruleId": f"drift/{item.kind}", "ruleIndex": index[f"drift/{item.kind}"],
                "level": "note" if item.expected else "warning", "message": {"text": text},
                "locations": [{"physicalLocation": _physical(*places.entry(d.environment or d.a)),
                               "logicalLocations": [{"name": item.key, "kind": "resource",
                                                     "fullyQualifiedName": where}]}],
                "partialFingerprints": {"auditDrift/v1": f"{d.a}>{d.b}:{where}"},
            }
            if item.expected:
                result["suppressions"] = [{"kind": "external", "justification": item.reason or ""}]
            results.append(result)
        runs.append({"tool": {"driver": {"name": "auditor", "version": __version__, "rules": rules}},
                     "automationDetails": {"id": f"audit-diff/{d.a}-{d.b}/"}, **_bases(places), "results": results})
    return _log(runs)
