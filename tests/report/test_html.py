"""The HTML report in real headless Chromium: it loads with no script error, the filters work, and a
screenshot (kept in .test-artifacts/) shows the traffic paths."""

from __future__ import annotations

import os
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
    # dev: ALB → TG → blue, and ALB → TG then green:4000 unreached, drawn apart (dashed, no arrow into it)
    assert html.count('<rect class="off"') == 1 and html.count('class="arrow"') == 3
    assert 'class="legend"' in html and "a slot the path does not reach" in html


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
    assert "<code>tcp 3000 from web-*-alb-sg, tcp 4000 from web-*-alb-sg</code>" in table and "<em>exists</em>" in table
    assert "<code>not reached</code></td><td><code>reached</code>" in table
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
        assert '<pre id="js-errors" hidden=""></pre>' in dom
    # what a person sees, kept for review: the diff, whose tables are the widest
    shot = ARTIFACTS / f"diff-{width}.png"
    shot.unlink(missing_ok=True)
    browse(chromium, (tmp_path / "diff.html").as_uri(), tmp_path, f"--screenshot={shot}", f"--window-size={width},1200")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
