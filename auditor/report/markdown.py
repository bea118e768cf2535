"""Markdown for a pull-request or issue comment: a summary line, a table of what matters, and the
rest folded into <details>."""

from __future__ import annotations

import json
from itertools import zip_longest

from auditor.outcomes import Drift, DriftItem, Finding, Result, Verdict, at_or_above, drift_value, summary


CELL = 300  # characters a table cell shows: a PR comment stays readable (JSON has every value whole)


def _cell(text: object) -> str:
    text = str(text).replace("\n", " ")
    text = text if len(text) <= CELL else text[:CELL - 1] + "…"
    return text.replace("|", "\\|")


def _code(text: object) -> str:
    return f"`{_cell(text)}`" if text not in (None, "") else ""


def _counts(findings: list[Finding]) -> str:
    counts = summary(findings)
    total = sum(counts.values())
    return f"{total} finding{'s' if total != 1 else ''} (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")"


def _where(finding: Finding) -> str:
    """The entry at fault (`envs/dev/docker-compose.yml:11`, relative to audit.yaml), under the resource."""
    if not finding.file:
        return ""
    return "<br>" + _code(finding.location)


def _table(findings: list[Finding]) -> list[str]:
    lines = ["| Severity | Rule | Resource | Slot | Finding |", "|---|---|---|---|---|"]
    lines += [f"| {f.severity} | {f.rule_id} {f.rule} | {_code(f.resource)}{_where(f)} | {f.slot or ''} "
              f"| {_cell(f.message)} |" for f in findings]
    return lines


def _details(findings: list[Finding], title: str) -> list[str]:
    if not findings:
        return []
    lines = ["", f"<details><summary>{title}</summary>", ""]
    for f in findings:
        slot = f" (slot {f.slot})" if f.slot else ""
        lines += [f"#### {f.rule_id} {_code(f.resource)}{slot}", "", f.message, "",
                  f"**Fix:** {' '.join(f.remediation.split())}", "", "```json",
                  json.dumps(f.evidence, indent=2, sort_keys=True), "```", ""]
    return lines + ["</details>"]


def _shown(findings: list[Finding], fail_on: str) -> tuple[list[Finding], list[Finding]]:
    important = [f for f in findings if not f.suppressed and at_or_above(f.severity, fail_on)]
    chosen = {id(f) for f in important}
    return important, [f for f in findings if id(f) not in chosen]


def render_check(results: list[Result], fail_on: str = "high") -> str:
    findings = [f for r in results for f in r.findings]
    important, rest = _shown(findings, fail_on)
    envs = ", ".join(r.environment for r in results)
    lines = [f"### audit check {envs}: {_counts(findings)}", ""]
    if important:
        lines += _table(important)
    else:
        lines.append(f"No finding at or above `{fail_on}`.")
    lines += _details(important, "Details and remediation")
    if rest:
        lines += ["", f"<details><summary>{len(rest)} below {fail_on} or suppressed</summary>", ""]
        lines += _table(rest) + ["", "</details>"]
    skipped = [s for r in results for s in r.skipped]
    if skipped:
        lines += ["", f"<details><summary>{len(skipped)} skipped for lack of data</summary>", ""]
        lines += [f"- {s.rule_id} {_code(s.resource)}: {_cell(s.reason)}" for s in skipped] + ["", "</details>"]
    return "\n".join(lines) + "\n"


def _drift_rows(items: list[DriftItem], a: str, b: str) -> list[str]:
    lines = [f"| Change | Resource | Path | {a} | {b} |", "|---|---|---|---|---|"]
    for i in items:
        kind = {"changed": "changed", "only_in_a": f"only in {a}", "only_in_b": f"only in {b}",
                "ambiguous": "ambiguous"}[i.kind]
        value_a = drift_value(i.a, i.path) if i.kind == "changed" else (i.a if i.kind == "ambiguous" else "")
        value_b = drift_value(i.b, i.path) if i.kind == "changed" else (i.b if i.kind == "ambiguous" else "")
        lines.append(f"| {kind} | {_code(f'{i.resource_type}:{i.key}')} | {_code(i.path)} | {_code(value_a)} "
                     f"| {_code(value_b)} |")
    return lines


def render_diff(drifts: list[Drift]) -> str:
    lines: list[str] = []
    for d in drifts:
        expected = [i for i in d.items if i.expected]
        lines += [f"### audit diff {d.a} → {d.b}: {len(d.unexpected)} unexpected, {len(expected)} expected", ""]
        for env, shapes in d.shapes.items():
            lines += [f"- **{env}**: {_code(shape)}" for shape in shapes or ["(no traffic path)"]]
        lines.append("")
        lines += _drift_rows(d.unexpected, d.a, d.b) if d.unexpected else ["No unexpected drift."]
        if expected:
            lines += ["", f"<details><summary>{len(expected)} expected</summary>", ""]
            lines += [f"- {_code(f'{i.resource_type}:{i.key}')} {_code(i.path)}: {_cell(i.reason)}" for i in expected]
            lines += ["", "</details>"]
        lines.append("")
    return "\n".join(lines)


def _plan_lines(verdict: Verdict) -> list[str]:
    """What the plan changes, in findings and path shapes, for the pull request that carries it."""
    plan = verdict.plan
    if plan is None:
        return []
    lines = ["", "**Planned changes**", ""]
    lines += [f"- {_code(c.address)}: {_cell(c.detail)}" for c in plan.changes] or ["- none to this environment"]
    lines += [f"- known only after apply: {_code(u)}" for u in plan.unknown]
    new = [f for f in verdict.failing + verdict.shown if f.fingerprint in plan.new]
    if new:
        lines += ["", "**New findings**", "", "| Severity | Rule | Resource | Slot | Planned change |",
                  "|---|---|---|---|---|"]
        lines += [f"| {f.severity} | {f.rule_id} {f.rule} | {_code(f.resource)} | {f.slot or ''} | "
                  + "<br>".join(_code(c) for c in plan.behind.get(f.fingerprint, [])) + " |" for f in new]
    if plan.resolved:
        lines += ["", "**Resolved findings**", ""] + _table(plan.resolved)
    lines += ["", "**Path shapes**", "", "| Before | After |", "|---|---|"]
    for a, b in zip_longest(plan.paths_before or ["(no traffic path)"], plan.paths_after or ["(no traffic path)"],
                            fillvalue=""):
        lines.append(f"| {_code(a)} | {_code(b)}{'' if a == b else ' (changed)'} |")
    return lines


def render_gate(result: Result, verdict: Verdict) -> str:
    slots = ", ".join(s or "(no slots)" for s in verdict.slots)
    title = " with the plan" if verdict.plan is not None else ""
    lines = [f"### audit gate {verdict.environment}{title}, slot {slots}: **{verdict.outcome.upper()}**", ""]
    if verdict.failing:
        lines += _table(verdict.failing)
        lines += _details(verdict.failing, "Details and remediation")
    for s in verdict.missing:
        lines.append(f"- cannot decide {s.rule_id} {_code(s.resource)}: {_cell(s.reason)}")
    if verdict.drift:
        lines += ["", "Path drift against the reference:", ""] + _drift_rows(verdict.drift, "this", "reference")
    lines += _plan_lines(verdict)
    if verdict.outcome == "pass":
        lines += ["", f"Making {slots} live loses no traffic on the paths audit can follow."]
    if verdict.shown:
        lines += ["", f"<details><summary>{len(verdict.shown)} shown, not gating</summary>", ""]
        lines += _table(verdict.shown) + ["", "</details>"]
    return "\n".join(lines) + "\n"
