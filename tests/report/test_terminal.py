"""The text output as a person sees it: run in a real pseudo-terminal at 80 and 160 columns. No line is
wider than the terminal, and what identifies a row (rule, resource, slot; key and path) is whole on its
line, never cut; the fix is shown."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import sys
import termios

import pytest

from tests.conftest import SNAPSHOTS
from tests.test_cli import audit

DEV, PROD = str(SNAPSHOTS / "incident-dev.json"), str(SNAPSHOTS / "incident-prod.json")
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def in_terminal(columns: int, *args: str) -> list[str]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: audit with the pty as its terminal
        os.environ.pop("COLUMNS", None)
        os.execv(sys.executable, [sys.executable, "-m", "auditor", *args])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return ANSI.sub("", out.decode()).replace("\r", "").splitlines()


def assert_fits(lines: list[str], columns: int) -> None:
    too_wide = [line for line in lines if len(line) > columns]
    assert not too_wide, too_wide


@pytest.mark.parametrize("columns", [80, 160])
def test_check_keeps_rule_resource_and_slot_whole_and_shows_the_fix(columns):
    lines = in_terminal(columns, "check", DEV)
    assert_fits(lines, columns)
    findings = json.loads(audit("check", DEV, "--format", "json").stdout)["findings"]
    for f in findings:
        head = f"{f['rule_id']} {f['rule']}  {f['resource']}" + (f" [slot {f['slot']}]" if f["slot"] else "")
        assert any(line.endswith(head) for line in lines), head
    assert sum(line.lstrip().startswith("fix: ") for line in lines) == len(findings)
    # where: each finding about a file names its entry at fault, just before its fix; AWS findings name none
    located = [line.strip() for line in lines if line.lstrip().startswith("at ")]
    assert located == [f"at {f['file']}:{f['line']}" for f in findings if f["file"]] == [
        "at envs/dev/docker-compose.yml:11"]


@pytest.mark.parametrize("columns", [80, 160])
def test_diff_rows_are_told_apart_by_their_whole_key_and_path(columns):
    lines = in_terminal(columns, "diff", DEV, PROD)
    assert_fits(lines, columns)
    drift = json.loads(audit("diff", DEV, PROD, "--format", "json").stdout)["drift"]
    heads = [f"{d['key']}.{d['path']}" if d["path"] else d["key"] for d in drift]
    for head in heads:
        assert sum(line[4:].startswith(head + ":") for line in lines) == 1, head
    assert "  ~ web.docker.containers.app-blue.ports: " in "\n".join(lines)
    assert "  ~ web.docker.containers.app-green.ports: " in "\n".join(lines)


@pytest.mark.parametrize("columns", [80, 160])
def test_rules_is_a_table_wrapped_by_word(columns):
    lines = in_terminal(columns, "rules")
    assert_fits(lines, columns)
    catalog = json.loads(audit("rules", "--format", "json").stdout)
    for rule in catalog:
        assert any(re.match(rf"\s*{rule['id']}\s+{rule['severity']}\s+{re.escape(rule['name'])}\b", line)
                   for line in lines), rule["id"]
    # Wrapped by word: every word in the title column is a whole word of some rule's title.
    header = next(i for i, line in enumerate(lines) if "Fires when" in line)
    start = lines[header].index("Fires when")
    words = {w for rule in catalog for w in rule["title"].split()}
    cells = [w for line in lines[header + 2:] for w in line[start:].split()]
    assert cells and set(cells) <= words


@pytest.mark.parametrize("columns", [80, 160])
def test_gate_failing_finding_is_whole(columns):
    lines = in_terminal(columns, "gate", DEV, "--slot", "green")
    assert_fits(lines, columns)
    assert "HIGH P104 slot-port-divergence  target_group:web-*-tg [slot green]" in lines


@pytest.mark.parametrize("columns", [80, 160])
def test_diff_cuts_no_value_and_says_it_in_words_most_important_first(columns):
    lines = in_terminal(columns, "diff", DEV, PROD)
    assert [line for line in lines if line.rstrip().endswith("…")] == []  # wrapped, never cut
    drift = [line for line in lines if line.lstrip().startswith(("~ ", "+ ", "- "))]
    assert drift and [line for line in drift if '{"' in line or '["' in line] == []  # no JSON object or list
    assert lines.index("path:") < lines.index("target_group:")
    text = " ".join(line.strip() for line in lines)
    assert "~ web-*-alb:80/green.reached: not reached → reached" in text
    assert "+ web.nginx: only in prod" in text


def test_a_note_on_stderr_wraps_by_word_at_the_terminals_edge():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="audit-") as tmp:  # short: the path fits a line, the note does not
        path = Path(tmp) / ("baseline-" * 5 + ".json")
        lines = in_terminal(80, "check", DEV, "--write-baseline", str(path))
    assert_fits(lines, 80)
    assert len(f"wrote {path} (6 findings)") > 80  # so it wrapped, by word: the path is whole on its line
    assert any(line.strip() == str(path) or line.strip().startswith(f"wrote {path}") for line in lines), lines
