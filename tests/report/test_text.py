"""Text: plain lines when piped, wrapped to the terminal's width on one; data is never read as markup."""

from __future__ import annotations

import re

from auditor.report.text import Text
from tests.conftest import estate, run


def test_plain_text_has_one_block_per_finding_and_the_summary_last():
    out = Text(False).render_check([run(estate("incident-dev"))])
    assert "\x1b[" not in out
    assert out.splitlines()[1].startswith("HIGH P104 slot-port-divergence  target_group:web-*-tg [slot green]")
    assert out.splitlines()[-1] == "dev: 7 findings (0 critical, 1 high, 4 medium, 2 low, 0 info), 0 skipped"


def test_terminal_output_wraps_to_its_width_and_keeps_brackets_in_data():
    result = run(estate("incident-dev"))
    result.findings[0].message = "[a-z] [b]x[/b]"
    out = re.sub(r"\x1b\[[0-9;]*m", "", Text(True, 80).render_check([result]))
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "    [a-z] [b]x[/b]" in out.splitlines()
    assert out.rstrip().splitlines()[-1].endswith("0 skipped")
