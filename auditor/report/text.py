"""Text output for people: findings grouped by environment and severity, a one-line summary last."""

from __future__ import annotations

import textwrap

import click

from auditor.outcomes import Drift, DriftItem, Finding, Result, Skipped, Verdict, describe, drift_value, summary

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
    """Lines for people. On a terminal (``width`` given) every line is wrapped by word to the terminal,
    with what identifies a finding or a drift item (rule, resource, slot, key, path) kept whole on
    its line and the message wrapped beneath; piped, lines stay whole for grep."""

    def __init__(self, colour: bool, width: int | None = None) -> None:
        self.colour = colour
        self.width = width

    def wrap(self, text: str, indent: str = "    ", hanging: str | None = None) -> list[str]:
        """``text`` on lines starting with ``indent`` (continuations with ``hanging``), never splitting a word."""
        hanging = indent if hanging is None else hanging
        if not self.width:
            return [indent + text]
        return textwrap.wrap(text, width=max(self.width, 40), initial_indent=indent, subsequent_indent=hanging,
                             break_long_words=False, break_on_hyphens=False) or [indent]

    def table(self, headers: list[str], rows: list[list[str]], whole: int) -> str:
        """A table on the terminal: the first ``whole`` columns never wrap, the others wrap by word."""
        from io import StringIO

        from rich import box
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table
        from rich.text import Text as RichText

        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for index, header in enumerate(headers):
            table.add_column(escape(header), no_wrap=index < whole, overflow="fold")
        for row in rows:
            # Cells are data (nginx paths, JSON values) and never rich markup.
            table.add_row(*(RichText(str(cell)) for cell in row))
        out = StringIO()
        Console(file=out, force_terminal=self.colour, no_color=not self.colour, width=self.width or 200).print(table)
        return "\n".join(line.rstrip() for line in out.getvalue().rstrip("\n").splitlines())

    def style(self, text: str, **kwargs: object) -> str:
        return click.style(text, **kwargs) if self.colour else text

    def finding(self, f: Finding) -> list[str]:
        slot = f" [slot {f.slot}]" if f.slot else ""
        muted = " (suppressed: " + (f.suppression_reason or "") + ")" if f.suppressed else ""
        head = f"{self.style(f.severity.upper(), fg=_COLOURS[f.severity], bold=True)} {f.rule_id} {f.rule}  " \
               f"{f.resource}{slot}{muted}"
        where = self.wrap(f"at {f.location}", hanging="       ") if f.file else []
        return [head, *self.wrap(f.message), *where, *self.wrap(f"fix: {' '.join(f.remediation.split())}",
                                                                 hanging="         ")]

    def render_check(self, results: list[Result], fail_on: str = "high") -> str:
        lines: list[str] = []
        for result in results:
            lines.append(self.style(f"== {result.environment}", bold=True))
            for f in result.findings:
                lines += self.finding(f)
            for line in skip_lines(result.skipped):
                lines += self.wrap(line, indent="", hanging="    ")
            for note in result.notes:
                lines += self.wrap(f"note: {note}", indent="", hanging="      ")
        findings = [f for r in results for f in r.findings]
        counts = summary(findings)
        total = sum(counts.values())
        skipped = sum(len({s.rule_id for s in r.skipped}) for r in results)  # rules, not places
        envs = ", ".join(r.environment for r in results)
        lines += self.wrap(f"{envs}: {total} finding{'s' if total != 1 else ''} ("
                           + ", ".join(f"{n} {sev}" for sev, n in counts.items()) + f"), {skipped} skipped", indent="")
        return "\n".join(lines) + "\n"

    def drift_item(self, item: DriftItem, a: str = "a", b: str = "b") -> str:
        mark = f" (expected: {item.reason})" if item.expected else ""
        where = f"{item.key}.{item.path}" if item.path else item.key
        if item.kind == "changed":
            return f"  ~ {where}: {drift_value(item.a, item.path)} → {drift_value(item.b, item.path)}{mark}"
        sign = {"ambiguous": "?", "only_in_a": "-", "only_in_b": "+"}[item.kind]
        return f"  {sign} {where}: {describe(item, a, b)}{mark}"

    def render_diff(self, drifts: list[Drift]) -> str:
        lines = []
        for d in drifts:
            expected = len(d.items) - len(d.unexpected)
            lines.append(self.style(f"{d.a} → {d.b}: {len(d.unexpected)} unexpected, {expected} expected drift",
                                    bold=True))
            for env, shapes in d.shapes.items():
                for shape in shapes or ["(no traffic path)"]:
                    lines += self.wrap(f"path {env}: {shape}", indent="  ", hanging="      ")
            by_type: dict[str, list[DriftItem]] = {}
            for item in d.items:
                by_type.setdefault(item.resource_type, []).append(item)
            for resource_type, items in by_type.items():
                lines.append(f"{resource_type}:")
                for item in items:
                    lines += self.wrap(self.drift_item(item, d.a, d.b).removeprefix("  "), indent="  ",
                                       hanging="      ")
        return "\n".join(lines) + "\n"

    def render_gate(self, result: Result, verdict: Verdict) -> str:
        slots = ", ".join(s or "(no slots)" for s in verdict.slots)
        plan = verdict.plan
        lines = [self.style(f"gate {verdict.environment}, slot {slots}: {verdict.outcome.upper()}", bold=True)]
        if plan is not None:
            lines.append("planned changes:" if plan.changes else "planned changes: none to this environment")
            for change in plan.changes:
                lines += self.wrap(str(change), indent="  ", hanging="      ")
            lines += [f"known only after apply: {u}" for u in plan.unknown]
        if verdict.failing:
            lines.append("would lose traffic:" if verdict.outcome == "fail" else
                         "would lose traffic, if the values known only after apply are as planned:")
            for f in verdict.failing:
                head, *rest = self.finding(f)
                lines.append(head)
                if plan is not None:
                    behind = [str(c) for c in plan.behind.get(f.fingerprint, [])]
                    for change in behind or ["none (so before the plan too)"]:
                        lines += self.wrap(f"planned: {change}", hanging="             ")
                lines += rest
        for line in skip_lines(verdict.missing):
            lines += self.wrap(f"cannot decide: {line}", indent="", hanging="    ")
        if verdict.drift:
            lines.append("path drift against the reference:")
            for item in verdict.drift:
                lines += self.wrap(self.drift_item(item, verdict.environment, "the reference").removeprefix("  "),
                                   indent="  ", hanging="      ")
        if plan is not None:
            lines += [f"resolved by the plan: {f.rule_id} {f.resource}" + (f" [slot {f.slot}]" if f.slot else "")
                      for f in plan.resolved]
            if plan.paths_before != plan.paths_after:
                for label, shapes in (("before:", plan.paths_before), ("after: ", plan.paths_after)):
                    for shape in shapes or ["(no traffic path)"]:
                        lines += self.wrap(f"path {label} {shape}", indent="  ", hanging="      ")
        if verdict.shown:
            lines.append("shown, not gating:")
            lines += [f"  {f.severity.upper()} {f.rule_id} {f.rule}  {f.resource}" + (f" [slot {f.slot}]" if f.slot
                                                                                    else "") for f in verdict.shown]
        if verdict.outcome == "pass":
            lines += self.wrap(f"making {slots} live loses no traffic on the paths audit can follow", indent="")
        return "\n".join(lines) + "\n"
