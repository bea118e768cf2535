"""README's examples are real runs: each block marked `<!-- example: PLACE -->` is run here, command by
command, and must print what README shows (to a line `...` or `…`, which elides the rest), with the exit
code an `$ echo $?` line shows. PLACE is where it runs: `demo` the incident built live on moto (as
`audit demo --keep` leaves it), `repo` the checkout, `plan` the plan-gate estate of tests/plan, `module`
its terraform-aws-modules estate (tests/plan/modules)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.fixtures import estates
from tests.conftest import ROOT

BLOCK = re.compile(r"<!-- example: (\w+) -->\n\n((?:    .*\n|\n)+)")


def examples() -> list[tuple[str, str, int]]:
    text = (ROOT / "README.md").read_text()
    return [(m.group(1), m.group(2), text[: m.start()].count("\n") + 1) for m in BLOCK.finditer(text)]


def steps(block: str) -> list[tuple[str, list[str], int | None]]:
    """(command, expected output lines, expected exit code or None) for each `$ audit` line."""
    out: list[tuple[str, list[str], int | None]] = []
    for line in [line[4:] for line in block.rstrip("\n").splitlines()]:
        if line.startswith("$ echo $?"):
            out[-1] = (out[-1][0], out[-1][1], -1)  # the next line is the code
        elif line.startswith("$ "):
            out.append((line[2:].split("  #")[0].strip(), [], None))
        elif out and out[-1][2] == -1:
            out[-1] = (out[-1][0], out[-1][1], int(line))
        elif out:
            out[-1][1].append(line)
    return out


def place(name: str, tmp_path: Path, endpoint: str | None) -> Path:
    if name == "repo":
        return ROOT
    if name == "demo":
        estates.build_incident(tmp_path, endpoint)
        return tmp_path
    estate, plan = {"plan": ("", "port-unserved"), "module": ("modules", "group-port-unserved")}[name]
    root = ROOT / "tests" / "plan" / estate
    shutil.copytree(root / "estate", tmp_path, dirs_exist_ok=True)
    (tmp_path / ".audit").mkdir()
    shutil.copy(root / "plans" / "snapshot.json", tmp_path / ".audit" / "prod.json")
    shutil.copy(root / "plans" / f"{plan}.json", tmp_path / "plan.json")
    return tmp_path


def test_readme_has_examples():
    assert {name for name, _, _ in examples()} == {"demo", "repo", "plan", "module"}


@pytest.mark.parametrize("name,block,line", examples(), ids=lambda v: str(v) if isinstance(v, int) else None)
def test_readme_example_is_what_audit_prints(name, block, line, aws, tmp_path):
    where = place(name, tmp_path, aws)
    for command, expected, code in steps(block):
        argv = shlex.split(command)
        if argv[0] != "audit":
            continue  # terraform and the like: their result is in the files placed above
        proc = subprocess.run([sys.executable, "-m", "auditor", *argv[1:]], capture_output=True, text=True,
                              cwd=where, timeout=120)
        shown = proc.stdout.splitlines()
        cut = next((i for i, e in enumerate(expected) if e.strip() in ("...", "…") or e.strip().startswith("… (")),
                   len(expected))
        assert shown[:cut] == expected[:cut], f"README.md:{line}: `{command}` prints otherwise"
        if cut == len(expected):
            assert len(shown) == cut, f"README.md:{line}: `{command}` prints more than README shows"
        if code is not None:
            assert proc.returncode == code, f"README.md:{line}: `{command}` exits {proc.returncode}"
