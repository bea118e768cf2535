"""JUnit XML for CI test reports: one testsuite per environment, one testcase per rule and resource.

A finding at or above --fail-on is a failure carrying message and remediation; a
rule that found nothing is a passing testcase, so the report shows what was
checked; a rule that could not decide is skipped with its reason.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from auditor.outcomes import Drift, Finding, Result, Verdict, at_or_above, describe


def _suite(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, "testsuite", name=name)


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")


def _failure(case: ET.Element, finding: Finding, tag: str = "failure", planned: list[object] = ()) -> None:
    body = (f"{finding.message}\n\n" + "".join(f"Planned: {c}\n" for c in planned) + ("\n" if planned else "")
            + f"Fix: {' '.join(finding.remediation.split())}\n\nEvidence:\n"
            f"{json.dumps(finding.evidence, indent=2, sort_keys=True)}")
    ET.SubElement(case, tag, message=finding.message, type=finding.severity).text = body


def _name(finding: Finding) -> str:
    return f"{finding.rule_id} {finding.rule} {finding.resource}" + (f" [slot {finding.slot}]" if finding.slot else "")


def _finish(root: ET.Element) -> str:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root:
        cases = suite.findall("testcase")
        counts = {"tests": len(cases), "failures": sum(1 for c in cases if c.find("failure") is not None),
                  "errors": sum(1 for c in cases if c.find("error") is not None),
                  "skipped": sum(1 for c in cases if c.find("skipped") is not None)}
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", "0")
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _findings_suite(root: ET.Element, result: Result, name: str, fail_on: str) -> None:
    suite = _suite(root, name)
    env = result.environment
    for finding in result.findings:
        case = _case(suite, f"{env}.{finding.rule_id}", _name(finding))
        if finding.suppressed:
            ET.SubElement(case, "skipped", message=f"suppressed: {finding.suppression_reason or ''}")
        elif at_or_above(finding.severity, fail_on):
            _failure(case, finding)
        else:
            ET.SubElement(case, "system-out").text = f"{finding.severity}: {finding.message}"
    for skipped in result.skipped:
        case = _case(suite, f"{env}.{skipped.rule_id}", f"{skipped.rule_id} {skipped.resource or ''}".strip())
        # A check that raised is an error of the run; data that was missing is a skip.
        ET.SubElement(case, "error" if skipped.cause == "internal_error" else "skipped", message=skipped.reason)
    seen = {f.rule_id for f in result.findings} | {s.rule_id for s in result.skipped}
    for rule_id, meta in result.rules.items():
        if rule_id not in seen:
            _case(suite, f"{env}.{rule_id}", f"{rule_id} {meta.name}")


def render_check(results: list[Result], fail_on: str = "high") -> str:
    root = ET.Element("testsuites", name="auditor check")
    for result in results:
        _findings_suite(root, result, result.environment, fail_on)
    return _finish(root)


def render_gate(result: Result, verdict: Verdict) -> str:
    slots = ",".join(s or "-" for s in verdict.slots)
    root = ET.Element("testsuites", name="auditor gate")
    suite = _suite(root, f"gate {result.environment} slot {slots}")
    classname = f"{result.environment}.gate"
    behind = verdict.plan.behind if verdict.plan else {}
    for finding in verdict.failing:
        _failure(_case(suite, classname, _name(finding)), finding, planned=behind.get(finding.fingerprint, []))
    for skipped in verdict.missing:
        case = _case(suite, classname, f"{skipped.rule_id} {skipped.resource or ''}".strip())
        ET.SubElement(case, "error", message=f"cannot decide: {skipped.reason}", type="missing-data")
    for item in verdict.drift:
        case = _case(suite, classname, f"path drift {item.key}.{item.path}")
        ET.SubElement(case, "failure", message=f"{item.a!r} → {item.b!r}", type="drift")
    if verdict.passed:
        _case(suite, classname, f"making {slots} live loses no traffic")
    if verdict.plan is not None:  # what the plan changes, beside the cases, as the text report lists it
        ET.SubElement(suite, "system-out").text = "planned changes:\n" + (
            "\n".join(f"  {c}" for c in verdict.plan.changes) or "  none to this environment") + "".join(
            f"\nknown only after apply: {u}" for u in verdict.plan.unknown)
    return _finish(root)


def render_diff(drifts: list[Drift]) -> str:
    root = ET.Element("testsuites", name="auditor diff")
    for d in drifts:
        suite = _suite(root, f"drift {d.a} → {d.b}")
        for item in d.items:
            where = f"{item.resource_type}:{item.key}" + (f".{item.path}" if item.path else "")
            case = _case(suite, f"{d.a}-{d.b}.{item.resource_type}", f"{item.kind} {where}")
            detail = describe(item, d.a, d.b)
            if item.expected:
                ET.SubElement(case, "system-out").text = f"expected: {item.reason}; {detail}"
            else:
                ET.SubElement(case, "failure", message=f"{item.kind}: {where}", type="drift").text = detail
        if not d.items:
            _case(suite, f"{d.a}-{d.b}", "no drift")
    return _finish(root)
