"""The HTML report in real headless Chromium: it loads with no script error, the filters work, and a
screenshot (kept in .test-artifacts/) shows the traffic paths."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, SNAPSHOTS
from tests.test_cli import audit

ARTIFACTS = ROOT / ".test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; `make test` installs it with apt-get as root")
        pytest.skip("chromium is not installed (make test installs Debian's chromium when run as root)")
    return binary


def browse(chromium: str, url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--v=0", *args, url], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    proc = audit("check", str(SNAPSHOTS / "incident-dev.json"), str(SNAPSHOTS / "live-running.json"),
                 str(SNAPSHOTS / "incident-prod.json"), "--format", "html", "-o", str(path))
    assert proc.returncode == 1, proc.stderr
    return path


def test_report_is_self_contained(report):
    text = report.read_text()
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_loads_without_script_errors_and_builds_the_filters(chromium, report, tmp_path):
    proc = browse(chromium, report.as_uri(), tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert 'data-ready="1"' in dom
    assert '<pre id="js-errors" hidden=""></pre>' in dom
    assert "Uncaught" not in proc.stderr
    assert '<option value="P104">P104</option>' in dom and '<option value="stage">stage</option>' in dom


def test_filter_from_the_link_hides_other_rows(chromium, report, tmp_path):
    dom = browse(chromium, report.as_uri() + "#rule=P101", tmp_path, "--dump-dom").stdout
    assert '<span id="shown">1</span>' in dom
    assert dom.count('<tr data-severity="high" data-rule="P104" data-environment="dev" hidden="">') == 1


def test_screenshot_shows_the_paths(chromium, report, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = browse(chromium, report.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,1000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert "traffic path of dev" in report.read_text() and "green:4000" in report.read_text()


def test_an_unreached_slot_gets_no_arrow_and_the_picture_has_a_legend(tmp_path):
    page = tmp_path / "gate.html"
    audit("gate", str(SNAPSHOTS / "incident-dev.json"), "--slot", "green", "--format", "html", "-o", str(page))
    html = page.read_text()
    # dev: ALB → TG → blue, and green:4000 unreached below it, drawn apart (dashed, no arrow into it); the load
    # balancer and target group are drawn once, never as a second load balancer
    assert html.count('<rect class="off"') == 1 and html.count('class="arrow"') == 2
    assert html.count("<rect ") == 4 and html.count(">ALB:80</text>") == 1 and 'class="branch"' not in html
    assert 'class="legend"' in html and "a slot the path does not reach" in html
    assert "<title>audit gate dev, slot green</title>" in html
    assert "<strong>FAIL</strong>: making green live would lose traffic</div>" in html
    # shown, not gating: each with its severity, and no space before the colon
    shown = html[html.index("<h2>Shown, not gating</h2>"):]
    assert '<p class="shown"><span class="sev medium">medium</span> A201 http-not-redirected <code class="id">' in shown
    assert " :" not in shown.replace("&#x27;", "'")


def test_a_second_slot_of_one_load_balancer_branches_off_its_hops(tmp_path):
    page = tmp_path / "check.html"
    audit("check", str(SNAPSHOTS / "incident-prod.json"), "--format", "html", "-o", str(page))
    html = page.read_text()
    # prod: ALB → TG → nginx → blue, and green hanging off nginx: one of each hop, one branch into green
    assert html.count(">ALB:80</text>") == 1 and html.count(">nginx:80</text>") == 1
    assert html.count('class="branch"') == 1 and html.count('class="arrow"') == 3


def test_the_check_page_leads_with_its_verdict_and_fix_text_has_code_not_backticks(tmp_path):
    page = tmp_path / "check.html"
    audit("check", str(SNAPSHOTS / "incident-dev.json"), "--format", "html", "-o", str(page))
    html = page.read_text()
    assert '<div class="summary verdict-fail"><strong>FAIL</strong>: 1 finding at high or above.' in html
    where = re.sub("<wbr>", "", html)  # P104 names the entry at fault under its resource
    assert 'web-*-tg</code><div class="where">at <code class="id">envs/dev/docker-compose.yml:11</code></div>' in where
    passed = tmp_path / "pass.html"
    audit("check", str(SNAPSHOTS / "incident-dev.json"), "--fail-on", "critical", "--format", "html", "-o", str(passed))
    assert '<div class="summary verdict-pass"><strong>PASS</strong>: nothing at critical or above.' in passed.read_text()
    nginx = tmp_path / "nginx.html"
    audit("check", str(SNAPSHOTS / "incident-prod.json"), "--format", "html", "-o", str(nginx))
    table = nginx.read_text()[nginx.read_text().index('<table id="findings">'):]
    assert "`" not in table and "<code>" in table.split('class="fix"', 1)[1]


def test_diff_draws_the_shapes_side_by_side_and_values_readable(tmp_path):
    page = tmp_path / "diff.html"
    audit("diff", str(SNAPSHOTS / "incident-dev.json"), str(SNAPSHOTS / "incident-prod.json"), "--format", "html",
          "-o", str(page))
    html = page.read_text()
    assert '<div class="shapes">' in html and html.count('<div class="side">') == 2
    assert '<span class="hop off">green:4000 (not reached)</span>' in html
    table = html[html.index('<table id="drift">'):]
    assert "<th>Expected</th>" not in table  # nothing is expected here: the column is dropped
    assert "{&quot;" not in table and "[&quot;" not in table  # no JSON dumps
    words = re.sub(r"<wbr>", "", table)
    assert '<code class="id">tcp 3000 from web-*-alb-sg, tcp 4000 from web-*-alb-sg</code>' in words
    assert "<em>exists</em>" in table
    assert '<code class="id">not reached</code></td><td><code class="id">reached</code>' in words
    assert "<code></code>" not in table  # a row with no path (target health) shows no empty chip
    assert "framed: a path shape that differs between dev and prod" in html


@pytest.mark.parametrize("width", [800, 1400])
def test_check_diff_and_gate_pages_load_and_fit_the_window_at_800_and_1400_px(chromium, tmp_path, width):
    ARTIFACTS.mkdir(exist_ok=True)
    for args in (["check", str(SNAPSHOTS / "incident-dev.json"), str(SNAPSHOTS / "incident-prod.json")],
                 ["diff", str(SNAPSHOTS / "incident-dev.json"), str(SNAPSHOTS / "incident-prod.json")],
                 ["gate", str(SNAPSHOTS / "incident-dev.json"), "--slot", "green"]):
        page = tmp_path / f"{args[0]}.html"
        audit(*args, "--format", "html", "-o", str(page))
        dom = browse(chromium, page.as_uri(), tmp_path, "--dump-dom", f"--window-size={width},1000").stdout
        assert 'data-ready="1"' in dom and 'data-fits="1"' in dom, (args[0], width)
        assert 'data-ids="1"' in dom, (args[0], width)  # every id and value breaks at its separators only
        assert '<pre id="js-errors" hidden=""></pre>' in dom
    # what a person sees, kept for review: each page at this width
    for name in ("check", "diff", "gate"):
        shot = ARTIFACTS / f"{name}-{width}.png"
        shot.unlink(missing_ok=True)
        browse(chromium, (tmp_path / f"{name}.html").as_uri(), tmp_path, f"--screenshot={shot}",
               f"--window-size={width},1200")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
