"""Markdown for PR comments: summary first, a table of what matters, the rest folded."""

from __future__ import annotations

from auditor import diff, gate
from auditor.model import snapshot
from auditor.config import DiffConfig
from auditor.model.typed import typed
from auditor.report import markdown
from tests.conftest import SNAPSHOTS, estate, run


def folded_table(result) -> str:
    return markdown.render_check([result], "critical")


def test_check_lists_findings_at_or_above_the_threshold_and_folds_the_rest():
    result = run(estate("incident-dev"))
    text = markdown.render_check([result], "high")
    lines = text.splitlines()
    assert lines[0] == "### audit check dev: 7 findings (0 critical, 1 high, 4 medium, 2 low, 0 info)"
    # the entry at fault under the resource: a reviewer sees where without opening another file
    assert "| high | P104 slot-port-divergence | `target_group:web-*-tg`<br>`envs/dev/docker-compose.yml:11` | green " \
           "| Slot green publishes 4000" in text
    assert "| medium | A201 http-not-redirected | `listener:web-*-alb:80` |" in folded_table(result)  # AWS: no file
    assert "<details><summary>Details and remediation</summary>" in text
    assert "| medium | P114" not in text.split("<details>")[0]  # below the threshold: folded
    folded = markdown.render_check([result], "critical")
    assert "No finding at or above `critical`." in folded
    assert "<details><summary>7 below critical or suppressed</summary>" in folded


def test_pipes_in_messages_do_not_break_the_table():
    result = run(estate("incident-dev"))
    result.findings[0].message = "a | b"  # P104, the one high finding
    assert "| a \\| b |" in markdown.render_check([result])


def test_diff_shows_shapes_unexpected_rows_and_folds_expected_items():
    a, b = (snapshot.load(SNAPSHOTS / f"incident-{e}.json") for e in ("dev", "prod"))
    config = typed({"expected": [{"path": "paths[*].nginx", "reason": "dev has no nginx"}]}, DiffConfig)
    text = markdown.render_diff([diff.compare(a, b, ["dev"], ["prod"], config)])
    assert text.startswith("### audit diff dev → prod: 14 unexpected, 2 expected")
    assert "- **dev**: `ALB:80 → TG:3000 → app{blue:3000, green:4000 ✗}`" in text
    assert "| changed | `target_group:web-*-tg` | `port` | `3000` | `80` |" in text
    assert "<details><summary>2 expected</summary>" in text and "dev has no nginx" in text


def test_gate_states_the_verdict():
    result = run(estate("incident-dev"))
    assert "**FAIL**" in markdown.render_gate(result, gate.evaluate(result, "green", "high"))
    passed = markdown.render_gate(result, gate.evaluate(result, "blue", "high"))
    assert "**PASS**" in passed and "7 shown, not gating" in passed


def test_no_cell_is_longer_than_300_characters():
    a, b = run(estate("incident-dev")), run(estate("incident-prod"))
    a.findings[0].message = "x " * 400
    text = markdown.render_check([a, b], "info") + markdown.render_diff(
        [diff.compare(snapshot.from_data(estate("incident-dev")), snapshot.from_data(estate("incident-prod")),
                      ["dev"], ["prod"])])
    cells = [cell.strip() for line in text.splitlines() if line.startswith("|") for cell in line.split(" | ")]
    assert cells and max(map(len, cells)) <= 300 + 2  # a cell and its code backticks
