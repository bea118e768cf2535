"""Text output for people: findings grouped by environment and severity, a one-line summary last."""

from __future__ import annotations

import json

import click

from auditor.diff import Drift, DriftItem
from auditor.findings import Finding, Result, Skipped, summary
from auditor.gate import Verdict

_COLOURS = {"critical": "magenta", "high": "red", "medium": "yellow", "low": "cyan", "info": "white"}


def skip_lines(skipped: list[Skipped]) -> list[str]:
    """One line per reason: which rules did not run, where, and why."""
    groups: dict[str, list[Skipped]] = {}
    for entry in skipped:
        groups.setdefault(entry.reason, []).append(entry)
    lines = []
    for reason, entries in groups.items():
        rules = sorted({e.rule_id for e in entries})
        places = sorted({e.resource + (f" [slot {e.slot}]" if e.slot else "") for e in entries if e.resource})
        shown = ", ".join(rules[:12]) + (f", … ({len(rules)} in all)" if len(rules) > 12 else "")
        where = f" on {', '.join(places[:6])}" + (" …" if len(places) > 6 else "") if places else ""
        noun = "rule" if len(rules) == 1 else "rules"
        lines.append(f"{len(rules)} {noun} not run{where}: {reason} ({shown})")
    return lines


class Text:
    """Plain lines when piped; rich tables with colour on a terminal."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    @staticmethod
    def _severity(f: Finding) -> object:
        from rich.text import Text as RichText

        return RichText(f.severity + (" (suppressed)" if f.suppressed else ""), style=_COLOURS[f.severity])

    def table(self, headers: list[str], rows: list[list[object]]) -> str:
        from io import StringIO
        from shutil import get_terminal_size

        from rich.console import Console
        from rich.table import Table

        from rich.markup import escape
        from rich.text import Text as RichText

        table = Table(*(escape(h) for h in headers), show_lines=False, header_style="bold")
        for row in rows:
            # Cells are data (nginx paths, JSON values) and never rich markup; colour comes as Text.
            table.add_row(*(cell if isinstance(cell, RichText) else RichText(str(cell)) for cell in row))
        out = StringIO()
        Console(file=out, force_terminal=True, width=get_terminal_size((120, 40)).columns).print(table)
        return out.getvalue().rstrip("\n")

    def style(self, text: str, **kwargs: object) -> str:
        return click.style(text, **kwargs) if self.colour else text

    def finding(self, f: Finding) -> list[str]:
        slot = f" [slot {f.slot}]" if f.slot else ""
        muted = " (suppressed: " + (f.suppression_reason or "") + ")" if f.suppressed else ""
        head = f"{self.style(f.severity.upper(), fg=_COLOURS[f.severity], bold=True)} {f.rule_id} {f.rule}  " \
               f"{f.resource}{slot}{muted}"
        return [head, f"    {f.message}", f"    fix: {' '.join(f.remediation.split())}"]

    def render_check(self, results: list[Result], fail_on: str = "high") -> str:
        lines: list[str] = []
        for result in results:
            lines.append(self.style(f"== {result.environment}", bold=True))
            if self.colour and result.findings:
                lines.append(self.table(["Severity", "Rule", "Resource", "Slot", "Finding"], [
                    [self._severity(f),
                     f"{f.rule_id} {f.rule}", f.resource, f.slot or "", f.message] for f in result.findings]))
            else:
                for f in result.findings:
                    lines += self.finding(f)
            lines += skip_lines(result.skipped)
            for note in result.notes:
                lines.append(f"note: {note}")
        findings = [f for r in results for f in r.findings]
        counts = summary(findings)
        total = sum(counts.values())
        skipped = sum(len({s.rule_id for s in r.skipped}) for r in results)  # rules, not places
        envs = ", ".join(r.environment for r in results)
        lines.append(f"{envs}: {total} finding{'s' if total != 1 else ''} ("
                     + ", ".join(f"{n} {sev}" for sev, n in counts.items()) + f"), {skipped} skipped")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _value(value: object, width: int = 160) -> str:
        """A drift value on one line; long ones are cut (the JSON output has them whole)."""
        if value is None:
            return "(none)"
        text = json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else str(value)
        return text if len(text) <= width else text[:width - 1] + "…"

    def drift_item(self, item: DriftItem, a: str = "a", b: str = "b") -> str:
        mark = f" (expected: {item.reason})" if item.expected else ""
        where = f"{item.key}.{item.path}" if item.path else item.key
        if item.kind == "changed":
            return f"  ~ {where}: {self._value(item.a)} → {self._value(item.b)}{mark}"
        if item.kind == "ambiguous":
            return f"  ? {where}: ambiguous key ({item.a} in {a}, {item.b} in {b}), not compared{mark}"
        sign = "-" if item.kind == "only_in_a" else "+"
        return f"  {sign} {where}: only in {a if sign == '-' else b}{mark}"

    def render_diff(self, drifts: list[Drift]) -> str:
        lines = []
        for d in drifts:
            expected = len(d.items) - len(d.unexpected)
            lines.append(self.style(f"{d.a} → {d.b}: {len(d.unexpected)} unexpected, {expected} expected drift",
                                    bold=True))
            for env, shapes in d.shapes.items():
                for shape in shapes or ["(no traffic path)"]:
                    lines.append(f"  path {env}: {shape}")
            by_type: dict[str, list[DriftItem]] = {}
            for item in d.items:
                by_type.setdefault(item.resource_type, []).append(item)
            for resource_type, items in by_type.items():
                lines.append(f"{resource_type}:")
                if self.colour:
                    lines.append(self.table(["Change", "Key", "Path", d.a, d.b], [
                        [i.kind + (f" (expected: {i.reason})" if i.expected else ""), i.key, i.path,
                         self._value(i.a, 60) if i.kind != "only_in_b" else "", self._value(i.b, 60)
                         if i.kind != "only_in_a" else ""] for i in items]))
                else:
                    lines += [self.drift_item(i, d.a, d.b) for i in items]
        return "\n".join(lines) + "\n"

    def render_gate(self, result: Result, verdict: Verdict) -> str:
        slots = ", ".join(s or "(no slots)" for s in verdict.slots)
        plan = verdict.plan
        lines = [self.style(f"gate {verdict.environment}, slot {slots}: {verdict.outcome.upper()}", bold=True)]
        if plan is not None:
            lines.append("planned changes:" if plan.changes else "planned changes: none to this environment")
            lines += [f"  {change}" for change in plan.changes]
            lines += [f"known only after apply: {u}" for u in plan.unknown]
        if verdict.failing:
            lines.append("would lose traffic:" if verdict.outcome == "fail" else
                         "would lose traffic, if the values known only after apply are as planned:")
            for f in verdict.failing:
                head, *rest = self.finding(f)
                lines.append(head)
                if plan is not None:
                    lines += [f"    planned: {c}" for c in plan.behind.get(f.fingerprint, [])] or \
                        ["    planned: none (so before the plan too)"]
                lines += rest
        lines += [f"cannot decide: {line}" for line in skip_lines(verdict.missing)]
        if verdict.drift:
            lines.append("path drift against the reference:")
            lines += [self.drift_item(i, verdict.environment, "the reference") for i in verdict.drift]
        if plan is not None:
            lines += [f"resolved by the plan: {f.rule_id} {f.resource}" + (f" [slot {f.slot}]" if f.slot else "")
                      for f in plan.resolved]
            if plan.paths_before != plan.paths_after:
                lines += [f"  path before: {shape}" for shape in plan.paths_before or ["(no traffic path)"]]
                lines += [f"  path after:  {shape}" for shape in plan.paths_after or ["(no traffic path)"]]
        if verdict.shown:
            lines.append("shown, not gating:")
            lines += [f"  {f.severity.upper()} {f.rule_id} {f.rule}  {f.resource}" + (f" [slot {f.slot}]" if f.slot
                                                                                    else "") for f in verdict.shown]
        if verdict.outcome == "pass":
            lines.append(f"making {slots} live loses no traffic on the paths audit can follow")
        return "\n".join(lines) + "\n"
