"""One self-contained HTML file: summary, findings with filters, drift, and a picture of each
environment's traffic path (ALB → TG → nginx → slots) with the broken parts in red.

No network and no external assets: styles, script and the SVG pictures are inline,
so the file can be attached to a CI run and opened anywhere.
"""

from __future__ import annotations

import re
from html import escape
from itertools import zip_longest

from auditor import __version__
from auditor.outcomes import Drift, Finding, Result, Verdict, drift_value, failing, summary

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.summary{margin:8px 0 16px;padding:10px 12px;border-radius:6px;background:#f6f8fa}
.verdict-fail{background:#ffebe9;border:1px solid #ff8182} .verdict-pass{background:#dafbe1;border:1px solid #4ac26b}
.verdict-unknown{background:#fff8c5;border:1px solid #d4a72c}
table{border-collapse:collapse;width:100%;margin:6px 0} th,td{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f6f8fa} td code,td pre{overflow-wrap:anywhere}
td.kind{white-space:nowrap} .fix{margin-top:4px;color:#424a53}
#findings,#drift{table-layout:fixed} #findings td,#drift td{overflow-wrap:break-word}
#findings th,#drift th{overflow-wrap:normal}
code.id{display:inline-block;max-width:100%;overflow-wrap:normal;word-break:normal}
col.sev{width:86px} col.rule{width:17%} col.env{width:104px} col.res{width:19%} col.slot{width:64px}
col.kind{width:110px} col.dres{width:22%} col.dpath{width:20%} .slots{display:inline-flex;flex-direction:column;gap:2px;border-left:2px solid #54aeff;
padding-left:4px}
svg.path{max-width:980px;width:100%;height:auto} .legend{font-size:12px;color:#57606a;margin:2px 0 12px}
.legend span{display:inline-block;width:14px;height:10px;border-radius:3px;margin:0 4px 0 12px;vertical-align:middle}
.legend .l-box{background:#ddf4ff;border:1px solid #54aeff} .legend .l-bad{background:#ffebe9;border:2px solid #cf222e}
.legend .l-off{background:#fff;border:1px dashed #cf222e}
.shapes{display:grid;grid-template-columns:1fr 1fr;gap:6px 16px;margin:6px 0 12px}
.shapes .side{font-weight:600} .shape{display:flex;flex-wrap:wrap;align-items:center;gap:2px}
.hop{border:1px solid #54aeff;background:#ddf4ff;border-radius:4px;padding:1px 6px;font-size:13px}
.hop.off{background:#ffebe9;border:2px solid #cf222e} .shape .to{color:#57606a;padding:0 2px}
.changed-shape{outline:2px solid #d4a72c;outline-offset:2px;border-radius:4px}
.sev{font-weight:600;text-transform:uppercase;font-size:12px}
p.shown{margin:4px 0} .where{margin-top:4px;font-size:12px;color:#57606a}
.critical{color:#8250df}.high{color:#cf222e}.medium{color:#9a6700}.low{color:#0969da}.info{color:#57606a}
.filters select{margin-right:8px} code{background:#f6f8fa;padding:0 3px;border-radius:3px}
svg .box{fill:#ddf4ff;stroke:#54aeff} svg .bad{fill:#ffebe9;stroke:#cf222e;stroke-width:2}
svg .off{fill:#fff;stroke:#cf222e;stroke-width:1.5;stroke-dasharray:4 3}
svg text{font:13px system-ui,sans-serif} svg .arrow{stroke:#57606a;stroke-width:1.5;marker-end:url(#head)}
svg .branch{fill:none;stroke:#57606a;stroke-width:1.5;marker-end:url(#head)}
"""

SCRIPT = """
window.addEventListener('error', function (e) {
  document.getElementById('js-errors').textContent += String(e.message) + '\\n';
});
function applyFilters() {
  var want = {};
  document.querySelectorAll('.filters select').forEach(function (s) { want[s.dataset.key] = s.value; });
  var shown = 0;
  document.querySelectorAll('#findings tbody tr').forEach(function (row) {
    var ok = Object.keys(want).every(function (k) { return !want[k] || row.dataset[k] === want[k]; });
    row.hidden = !ok; if (ok) { shown += 1; }
  });
  var count = document.getElementById('shown');
  if (count) { count.textContent = String(shown); }
}
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('#findings tbody tr').forEach(function (row) {
    ['severity', 'rule', 'environment'].forEach(function (key) {
      var select = document.querySelector('.filters select[data-key="' + key + '"]');
      var value = row.dataset[key];
      if (select && !Array.prototype.some.call(select.options, function (o) { return o.value === value; })) {
        select.add(new Option(value, value));
      }
    });
  });
  // A link can carry a filter: report.html#severity=high&rule=P104
  new URLSearchParams(location.hash.slice(1)).forEach(function (value, key) {
    var select = document.querySelector('.filters select[data-key="' + key + '"]');
    if (select) { select.value = value; }
  });
  document.querySelectorAll('.filters select').forEach(function (s) { s.addEventListener('change', applyFilters); });
  applyFilters();
  // Whether the page fits its window without a sideways scroll (the tests read it at 800 and 1400 px).
  document.body.dataset.fits = document.documentElement.scrollWidth <= window.innerWidth ? '1' : '0';
  // Whether every resource id and field path is broken only at its separators (none runs past its cell).
  var whole = Array.prototype.every.call(document.querySelectorAll('code.id'), function (c) {
    return c.scrollWidth <= c.clientWidth + 1;
  });
  document.body.dataset.ids = whole ? '1' : '0';
  document.body.dataset.ready = '1';
});
"""


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style><script>{SCRIPT}</script></head>",
        "<body>", f"<h1>{escape(title)}</h1>", *body,
        f'<pre id="js-errors" hidden></pre><p><small>auditor {escape(__version__)}</small></p>', "</body></html>",
    ]) + "\n"


_SEPARATORS = re.compile(r"([:/.\-_,\]\[*=])")
_BACKTICKS = re.compile(r"`([^`]+)`")


def _id(text: str) -> str:
    """A resource id, field path or drift value that may break at spaces and after its separators only
    (`target_group:` / `web-*-tg`), never inside a word."""
    return '<code class="id">' + _SEPARATORS.sub(r"\1<wbr>", escape(text)) + "</code>"


def _where(finding: Finding) -> str:
    """The entry at fault (a compose `ports:` item, an nginx directive), under the resource it is about."""
    if not finding.file:
        return ""
    return f'<div class="where">at {_id(finding.location)}</div>'


def _prose(text: str) -> str:
    """A message or fix as text, with its `code` spans as code rather than raw backticks."""
    return _BACKTICKS.sub(r"<code>\1</code>", escape(" ".join(text.split())))


def _findings_table(findings: list[Finding]) -> list[str]:
    if not findings:
        return ["<p>No findings.</p>"]
    # A column that carries nothing for these findings is left out.
    # The fix goes under the finding it answers: a column of its own is cut off at 800 px.
    columns = [("Severity", "sev", True), ("Rule", "rule", True),
               ("Environment", "env", len({f.environment for f in findings}) > 1), ("Resource", "res", True),
               ("Slot", "slot", any(f.slot for f in findings)), ("Finding", "text", True)]
    shown = [name for name, _, keep in columns if keep]
    cols = "".join(f'<col class="{css}">' for _, css, keep in columns if keep)
    out = ['<div class="filters">Filter: ',
           *(f'<select data-key="{k}" aria-label="{k}"><option value="">every {k}</option></select>'
             for k in ("severity", "rule", "environment")),
           f' <span id="shown">{len(findings)}</span> shown</div>',
           f'<table id="findings"><colgroup>{cols}</colgroup><thead><tr>'
           + "".join(f"<th>{name}</th>" for name in shown) + "</tr></thead><tbody>"]
    for f in findings:
        muted = " (suppressed)" if f.suppressed else ""
        cells = {"Severity": f'<td class="sev {f.severity}">{f.severity}{muted}</td>',
                 "Rule": f"<td>{f.rule_id} {escape(f.rule)}</td>", "Environment": f"<td>{escape(f.environment)}</td>",
                 "Resource": f"<td>{_id(f.resource)}{_where(f)}</td>", "Slot": f"<td>{escape(f.slot or '')}</td>",
                 "Finding": f'<td>{_prose(f.message)}<div class="fix"><strong>Fix:</strong> '
                            f"{_prose(f.remediation)}</div></td>"}
        out.append(f'<tr data-severity="{f.severity}" data-rule="{f.rule_id}" data-environment="{escape(f.environment)}">'
                   + "".join(cells[name] for name in shown) + "</tr>")
    return out + ["</tbody></table>"]


LEGEND = ('<div class="legend">Legend:<span class="l-box"></span>a hop of the path'
          '<span class="l-bad"></span>reached, but a path finding names it'
          '<span class="l-off"></span>a slot the path does not reach (no arrow: no traffic gets there)</div>')


def _path_picture(result: Result) -> list[str]:
    """Each listener as a row of boxes; a slot the path does not reach, or a hop a path finding
    names, is drawn red."""
    items = result.traffic.paths
    if not items:
        return ["<p>No traffic path.</p>"]
    broken_slots = {f.slot for f in result.findings if f.rule_id.startswith("P") and f.slot and not f.suppressed}
    rows: dict[str, list[dict[str, object]]] = {}
    for item in items:
        rows.setdefault(str(item["key"]).split("/")[0], []).append(item)
    width, row_h = 980, 34 + 26
    height = 20 + row_h * sum(max(1, len(r)) for r in rows.values())
    svg = [f'<svg class="path" role="img" aria-label="traffic path of {escape(result.environment)}" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
           '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z" fill="#57606a"/></marker></defs>']
    y = 10
    for listener, slot_items in rows.items():
        svg.append(f'<text x="0" y="{y + 12}" font-weight="600">{escape(listener)}</text>')
        y += 16
        above: list[str] = []  # the hops drawn on the row above: a slot sharing them branches off them
        for item in slot_items:
            hops = [str(item[k]) for k in ("alb", "actions", "target_groups", "nginx") if item.get(k)]
            slot = str(item["app"]) if item.get("app") else None
            boxes = [(hop, "box") for hop in hops]
            if slot:
                name = slot.split(":")[0]
                unreached = item.get("reached") is False
                boxes.append((slot, "off" if unreached else "bad" if name in broken_slots else "box"))
            shared = len(hops) if hops and hops == above else 0
            svg += _row(boxes, shared, y, row_h)
            above = hops
            y += row_h
    svg.append("</svg>")
    return [*svg, LEGEND]


def _row(boxes: list[tuple[str, str]], shared: int, y: int, row_h: int) -> list[str]:
    """One path of the picture: its boxes left to right with arrows between. The first ``shared`` hops
    are the row above's (another slot of the same load balancer): not drawn again, the slot hangs off
    the last of them, so one load balancer is never drawn as two."""
    box_w, box_h, gap = 130, 34, 40
    out = []
    x = 0
    for index, (label, kind) in enumerate(boxes):
        if index < shared:
            x += box_w + gap
            continue
        if index == shared and shared:  # down from the shared hop above, then into this slot
            stem = x - gap / 2
            out.append(f'<polyline class="branch" points="{stem},{y - row_h + box_h} {stem},{y + box_h / 2} '
                       f'{x - 4},{y + box_h / 2}"/>' if kind != "off" else "")
        out.append(f'<rect class="{kind}" x="{x}" y="{y}" rx="5" width="{box_w}" '
                   f'height="{box_h}"/><text x="{x + 8}" y="{y + 22}">{escape(label)}</text>')
        if index < len(boxes) - 1 and boxes[index + 1][1] != "off":
            out.append(f'<line class="arrow" x1="{x + box_w}" y1="{y + box_h / 2}" x2="{x + box_w + gap - 4}" '
                       f'y2="{y + box_h / 2}"/>')
        x += box_w + gap
    return [line for line in out if line]


def _summary_line(findings: list[Finding]) -> str:
    counts = summary(findings)
    return ", ".join(f'<span class="{s}">{n} {s}</span>' for s, n in counts.items())


def render_check(results: list[Result], fail_on: str = "high") -> str:
    findings = [f for r in results for f in r.findings]
    skipped = [s for r in results for s in r.skipped]
    noun = "finding" if len(findings) == 1 else "findings"
    failed = failing(results, fail_on)
    verdict = (f"<strong>FAIL</strong>: {len(failed)} finding{'' if len(failed) == 1 else 's'} at "
               f"{escape(fail_on)} or above" if failed else
               f"<strong>PASS</strong>: nothing at {escape(fail_on)} or above")
    body = [f'<div class="summary verdict-{"fail" if failed else "pass"}">{verdict}. {len(findings)} {noun}: '
            f"{_summary_line(findings)}; {len(skipped)} skipped</div>"]
    for result in results:
        body += [f"<h2>Traffic path: {escape(result.environment)}</h2>", *_path_picture(result)]
    body += ["<h2>Findings</h2>", *_findings_table(findings)]
    if skipped:
        body += ["<h2>Skipped for lack of data</h2><ul>"] + [
            f"<li>{s.rule_id} <code>{escape(s.resource or '')}</code>: {escape(s.reason)}</li>" for s in skipped
        ] + ["</ul>"]
    return _page(f"audit check {', '.join(r.environment for r in results)}", body)


def render_gate(result: Result, verdict: Verdict) -> str:
    slots = ", ".join(s or "(no slots)" for s in verdict.slots)
    meaning = {"fail": f"making {slots} live would lose traffic",
               "unknown": "audit cannot decide: data a path rule needs is missing (see below)",
               "pass": f"making {slots} live loses no traffic on the paths audit can follow"}[verdict.outcome]
    body = [f'<div class="summary verdict-{verdict.outcome}">Gate {escape(verdict.environment)}, slot '
            f"{escape(slots)}: <strong>{verdict.outcome.upper()}</strong>: {escape(meaning)}</div>",
            f"<h2>Traffic path: {escape(result.environment)}</h2>", *_path_picture(result),
            "<h2>Findings that fail the gate</h2>", *_findings_table(verdict.failing)]
    plan = verdict.plan
    if plan is not None:
        body += ["<h2>Planned changes</h2><ul>"] + [
            f"<li><code>{escape(c.address)}</code>: {escape(c.detail)}</li>" for c in plan.changes] + (
            [] if plan.changes else ["<li>none to this environment</li>"]) + [
            f"<li>known only after apply: <code>{escape(str(u))}</code></li>" for u in plan.unknown] + ["</ul>"]
    if verdict.missing:
        body += ["<h2>Cannot decide</h2><ul>"] + [f"<li>{s.rule_id}: {escape(s.reason)}</li>" for s in verdict.missing]
        body.append("</ul>")
    if verdict.shown:
        body += ["<h2>Shown, not gating</h2>"] + [
            f'<p class="shown"><span class="sev {f.severity}">{f.severity}</span> {f.rule_id} {escape(f.rule)} '
            f"{_id(f.resource)}{f' [slot {escape(f.slot)}]' if f.slot else ''}: {_prose(f.message)}</p>"
            for f in verdict.shown]
    return _page(f"audit gate {verdict.environment}, slot {slots}", body)


def _shape(shape: str) -> str:
    """A path shape drawn as hops (``ALB:80 → TG:3000 → app{blue:3000, green:4000 ✗}``); an unreached
    slot is marked as in the picture."""
    hops = []
    for hop in shape.split(" → "):
        if hop.startswith("app{") and hop.endswith("}"):
            # the slots are alternatives, one live at a time: stacked, not chained
            slots = [f'<span class="hop{" off" if s.endswith(" ✗") else ""}">{escape(s.removesuffix(" ✗"))}'
                     f'{" (not reached)" if s.endswith(" ✗") else ""}</span>' for s in hop[4:-1].split(", ")]
            hops.append('<span class="slots">' + "".join(slots) + "</span>")
        else:
            hops.append(f'<span class="hop">{escape(hop)}</span>')
    return '<div class="shape">' + '<span class="to">→</span>'.join(hops) + "</div>"


def _shapes(drift: Drift) -> list[str]:
    """Each side's path shapes in its column, row by row; a row whose shapes differ is outlined."""
    out = ['<div class="shapes">', f'<div class="side">{escape(drift.a)}</div><div class="side">{escape(drift.b)}</div>']
    for a, b in zip_longest(drift.shapes[drift.a] or [""], drift.shapes[drift.b] or [""], fillvalue=""):
        mark = "" if a == b else ' class="changed-shape"'
        out += [f"<div{mark}>{_shape(a) if a else '(no traffic path)'}</div>",
                f"<div{mark}>{_shape(b) if b else '(no traffic path)'}</div>"]
    out.append("</div>")
    if any('class="changed-shape"' in line for line in out):
        out.append('<div class="legend"><span class="changed-shape"></span>framed: a path shape that differs '
                   f"between {escape(drift.a)} and {escape(drift.b)}</div>")
    return out


def _value(value: object, path: str) -> str:
    """A drift value in the words every format uses; a long one folds, its start as the summary."""
    if value is None:
        return "<em>(none)</em>"
    text = drift_value(value, path)
    if len(text) <= 300:
        return _id(text)
    return f"<details><summary>{_id(text[:120] + '…')}</summary>{_id(text)}</details>"


def render_diff(drifts: list[Drift]) -> str:
    body = []
    for d in drifts:
        body.append(f'<div class="summary">{escape(d.a)} → {escape(d.b)}: {len(d.unexpected)} unexpected, '
                    f"{len(d.items) - len(d.unexpected)} expected drift</div>")
        body += ["<h2>Path shapes</h2>", *_shapes(d)]
        expected = any(i.expected for i in d.items)
        body += ['<h2>Drift</h2><table id="drift"><colgroup><col class="kind"><col class="dres"><col class="dpath">'
                 "<col><col>" + ("<col>" if expected else "") + "</colgroup>"
                 "<thead><tr><th>Change</th><th>Resource</th><th>Path</th>"
                 f"<th>{escape(d.a)}</th><th>{escape(d.b)}</th>" + ("<th>Expected</th>" if expected else "")
                 + "</tr></thead><tbody>"]
        for i in d.items:
            kind = {"only_in_a": f"only in {d.a}", "only_in_b": f"only in {d.b}"}.get(i.kind, i.kind)
            a, b = _value(i.a, i.path), _value(i.b, i.path)
            if i.kind in ("only_in_a", "only_in_b"):  # the resource itself, on one side
                a, b = ("<em>exists</em>", "<em>absent</em>")[:: 1 if i.kind == "only_in_a" else -1]
            body.append(f'<tr><td class="kind">{escape(kind)}</td>'
                        f"<td>{_id(f'{i.resource_type}:{i.key}')}</td>"
                        f"<td>{_id(i.path) if i.path else ''}</td><td>{a}</td><td>{b}</td>"
                        + (f"<td>{escape(i.reason or '')}</td>" if expected else "") + "</tr>")
        if not d.items:
            body.append('<tr><td colspan="5">No drift.</td></tr>')
        body.append("</tbody></table>")
    return _page("audit diff " + " ".join(f"{d.a} → {d.b}" for d in drifts), body)
