"""One self-contained HTML file: summary, findings with filters, drift, and a picture of each
environment's traffic path (ALB → TG → nginx → slots) with the broken parts in red.

No network and no external assets: styles, script and the SVG pictures are inline,
so the file can be attached to a CI run and opened anywhere.
"""

from __future__ import annotations

import json
from html import escape

from auditor import __version__
from auditor.diff import Drift
from auditor.findings import Finding, Result, summary
from auditor.gate import Verdict

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.summary{margin:8px 0 16px;padding:10px 12px;border-radius:6px;background:#f6f8fa}
.verdict-fail{background:#ffebe9;border:1px solid #ff8182} .verdict-pass{background:#dafbe1;border:1px solid #4ac26b}
.verdict-unknown{background:#fff8c5;border:1px solid #d4a72c}
table{border-collapse:collapse;width:100%;margin:6px 0} th,td{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top} th{background:#f6f8fa}
.sev{font-weight:600;text-transform:uppercase;font-size:12px}
.critical{color:#8250df}.high{color:#cf222e}.medium{color:#9a6700}.low{color:#0969da}.info{color:#57606a}
.filters select{margin-right:8px} code{background:#f6f8fa;padding:0 3px;border-radius:3px}
svg .box{fill:#ddf4ff;stroke:#54aeff} svg .bad{fill:#ffebe9;stroke:#cf222e;stroke-width:2}
svg text{font:13px system-ui,sans-serif} svg .arrow{stroke:#57606a;stroke-width:1.5;marker-end:url(#head)}
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


def _findings_table(findings: list[Finding]) -> list[str]:
    if not findings:
        return ["<p>No findings.</p>"]
    out = ['<div class="filters">Filter: ',
           *(f'<select data-key="{k}" aria-label="{k}"><option value="">every {k}</option></select>'
             for k in ("severity", "rule", "environment")),
           f' <span id="shown">{len(findings)}</span> shown</div>',
           '<table id="findings"><thead><tr><th>Severity</th><th>Rule</th><th>Environment</th><th>Resource</th>'
           "<th>Slot</th><th>Finding</th><th>Fix</th></tr></thead><tbody>"]
    for f in findings:
        muted = " (suppressed)" if f.suppressed else ""
        out.append(
            f'<tr data-severity="{f.severity}" data-rule="{f.rule_id}" data-environment="{escape(f.environment)}">'
            f'<td class="sev {f.severity}">{f.severity}{muted}</td><td>{f.rule_id} {escape(f.rule)}</td>'
            f"<td>{escape(f.environment)}</td><td><code>{escape(f.resource)}</code></td><td>{escape(f.slot or '')}</td>"
            f"<td>{escape(f.message)}</td><td>{escape(' '.join(f.remediation.split()))}</td></tr>")
    return out + ["</tbody></table>"]


def _path_picture(result: Result) -> list[str]:
    """Each listener as a row of boxes; a slot the path does not reach, or a hop a path finding
    names, is drawn red."""
    items = result.topology.path_items
    if not items:
        return ["<p>No traffic path.</p>"]
    broken_slots = {f.slot for f in result.findings if f.rule_id.startswith("P") and f.slot and not f.suppressed}
    rows: dict[str, list[dict[str, object]]] = {}
    for item in items:
        rows.setdefault(str(item["key"]).split("/")[0], []).append(item)
    width, box_w, box_h, gap, row_h = 980, 130, 34, 40, 34 + 26
    height = 20 + row_h * sum(max(1, len(r)) for r in rows.values())
    svg = [f'<svg role="img" aria-label="traffic path of {escape(result.environment)}" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
           '<defs><marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z" fill="#57606a"/></marker></defs>']
    y = 10
    for listener, slot_items in rows.items():
        svg.append(f'<text x="0" y="{y + 12}" font-weight="600">{escape(listener)}</text>')
        y += 16
        for item in slot_items:
            hops = [str(item[k]) for k in ("alb", "actions", "target_groups", "nginx") if item.get(k)]
            slot = str(item["app"]) if item.get("app") else None
            boxes = [(hop, False) for hop in hops]
            if slot:
                name = slot.split(":")[0]
                boxes.append((slot, item.get("reached") is False or name in broken_slots))
            x = 0
            for index, (label, bad) in enumerate(boxes):
                svg.append(f'<rect class="{"bad" if bad else "box"}" x="{x}" y="{y}" rx="5" width="{box_w}" '
                           f'height="{box_h}"/><text x="{x + 8}" y="{y + 22}">{escape(label)}</text>')
                if index < len(boxes) - 1:
                    svg.append(f'<line class="arrow" x1="{x + box_w}" y1="{y + box_h / 2}" x2="{x + box_w + gap - 4}" '
                               f'y2="{y + box_h / 2}"/>')
                x += box_w + gap
            y += row_h
    svg.append("</svg>")
    return svg


def _summary_line(findings: list[Finding]) -> str:
    counts = summary(findings)
    return ", ".join(f'<span class="{s}">{n} {s}</span>' for s, n in counts.items())


def render_check(results: list[Result], fail_on: str = "high") -> str:
    findings = [f for r in results for f in r.findings]
    skipped = [s for r in results for s in r.skipped]
    noun = "finding" if len(findings) == 1 else "findings"
    body = [f'<div class="summary">{len(findings)} {noun}: {_summary_line(findings)}; {len(skipped)} skipped '
            f"(failing at {escape(fail_on)} and above)</div>"]
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
    body = [f'<div class="summary verdict-{verdict.outcome}">Gate {escape(verdict.environment)}, slot '
            f"{escape(slots)}: <strong>{verdict.outcome.upper()}</strong></div>",
            f"<h2>Traffic path: {escape(result.environment)}</h2>", *_path_picture(result),
            "<h2>Findings that fail the gate</h2>", *_findings_table(verdict.failing)]
    if verdict.missing:
        body += ["<h2>Cannot decide</h2><ul>"] + [f"<li>{s.rule_id}: {escape(s.reason)}</li>" for s in verdict.missing]
        body.append("</ul>")
    if verdict.shown:
        body += ["<h2>Shown, not gating</h2>"] + [
            f"<p>{f.rule_id} <code>{escape(f.resource)}</code> {escape(f.slot or '')}: {escape(f.message)}</p>"
            for f in verdict.shown]
    return _page(f"audit gate {verdict.environment}", body)


def render_diff(drifts: list[Drift]) -> str:
    body = []
    for d in drifts:
        body.append(f'<div class="summary">{escape(d.a)} → {escape(d.b)}: {len(d.unexpected)} unexpected, '
                    f"{len(d.items) - len(d.unexpected)} expected drift</div>")
        body += ["<h2>Path shapes</h2><ul>"] + [
            f"<li><strong>{escape(env)}</strong>: <code>{escape(shape)}</code></li>"
            for env, shapes in d.shapes.items() for shape in shapes] + ["</ul>"]
        body += ['<h2>Drift</h2><table id="drift"><thead><tr><th>Change</th><th>Resource</th><th>Path</th>'
                 f"<th>{escape(d.a)}</th><th>{escape(d.b)}</th><th>Expected</th></tr></thead><tbody>"]
        for i in d.items:
            body.append(f"<tr><td>{i.kind}</td><td><code>{escape(i.resource_type)}:{escape(i.key)}</code></td>"
                        f"<td><code>{escape(i.path)}</code></td><td><code>{escape(json.dumps(i.a))}</code></td>"
                        f"<td><code>{escape(json.dumps(i.b))}</code></td><td>{escape(i.reason or '')}</td></tr>")
        body.append("</tbody></table>")
    return _page("audit diff " + " ".join(f"{d.a} → {d.b}" for d in drifts), body)
