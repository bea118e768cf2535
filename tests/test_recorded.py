"""The findings of every fixture estate, recorded as exact lists (as cfn-lint keeps recorded results
per template): any change of behaviour shows as a diff of tests/recorded/ESTATE.json. After a change
that is meant, record them again and read the diff before committing it:

    python -m tests.test_recorded
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import SNAPSHOTS, estate, run

RECORDED = Path(__file__).resolve().parent / "recorded"
ESTATES = sorted(p.stem for p in SNAPSHOTS.glob("*.json"))


def findings_of(name: str) -> list[list[object]]:
    """(rule, severity, resource, slot, file, line) of every finding, and (rule, resource, slot, reason)
    of every skip, in the engine's order."""
    result = run(estate(name))
    found = [[f.rule_id, f.severity, f.resource, f.slot, f.file, f.line] for f in result.findings]
    skipped = [[s.rule_id, s.resource, s.slot, s.reason] for s in result.skipped]
    return [*found, *skipped]


@pytest.mark.parametrize("name", ESTATES)
def test_the_findings_of_each_fixture_estate_are_as_recorded(name):
    recorded = json.loads((RECORDED / f"{name}.json").read_text())
    assert findings_of(name) == recorded


def record() -> None:
    RECORDED.mkdir(exist_ok=True)
    for name in ESTATES:
        lines = ",\n".join(" " + json.dumps(entry) for entry in findings_of(name))  # one a line: diffs read well
        (RECORDED / f"{name}.json").write_text(f"[\n{lines}\n]\n")
    print(f"recorded {len(ESTATES)} estates into {RECORDED}", file=sys.stderr)


if __name__ == "__main__":
    record()
