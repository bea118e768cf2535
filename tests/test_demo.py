"""`audit demo`, as a new user meets it: the story, the three commands, next steps; and with --keep, a
live estate that the commands it prints work on, until Ctrl-C, then offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.errors import AuditError


def _shell(command: str, cwd: Path, exports: str = "") -> subprocess.CompletedProcess[str]:
    """A printed command run as a user pastes it: by a shell whose PATH has no venv (nothing activated,
    as after `make demo`), with no AWS settings of the machine's."""
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    script = f"{exports}\n{command}" if exports else command
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_a_kept_demo_serves_the_commands_it_prints_until_ctrl_c(tmp_path):
    keep = tmp_path / "estate"
    # As after `make demo`: the venv is not on PATH, so what it prints must name this audit by its path.
    demo = subprocess.Popen([sys.executable, "-m", "auditor", "demo", "--keep", str(keep)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PATH": "/usr/bin:/bin"})
    try:
        printed, offline_part = [], False
        for line in demo.stdout:
            printed.append(line.rstrip("\n"))
            offline_part = offline_part or line.startswith("After Ctrl-C")
            if offline_part and " check " in line:  # the last command it prints
                break
        start = next(i for i, line in enumerate(printed) if line.startswith("In another terminal"))
        marker = next(i for i, line in enumerate(printed) if line.startswith("After Ctrl-C"))
        live = [line.strip() for line in printed[start:marker] if line.startswith("  ")]
        export = live.pop(0)
        assert export.startswith("export AWS_ACCESS_KEY_ID=")
        offline = [line.strip() for line in printed[marker:] if line.startswith("  ")]
        codes = {" ".join(c.split()[1:3]): _shell(c, tmp_path, export).returncode for c in live}
        assert codes == {"gate dev": 1, "gate prod": 0, "diff dev": 1, "snapshot dev": 0}
        assert (tmp_path / "dev.json").is_file()
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=30)
        assert demo.returncode == 0 and "demo endpoint stopped" in out
        assert [_shell(c, tmp_path).returncode for c in offline] == [1, 1]  # the gate refuses green; check: P104
    finally:
        if demo.poll() is None:
            demo.kill()


def test_a_kept_demo_refuses_a_directory_holding_files_it_did_not_write(tmp_path):
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments: {mine: {}}\n")
    proc = subprocess.run([sys.executable, "-m", "auditor", "demo", "--keep", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{tmp_path / 'audit.yaml'}: audit demo --keep did not write this file" in proc.stderr
    assert (tmp_path / "audit.yaml").read_text() == "version: 1\nenvironments: {mine: {}}\n"


def test_a_kept_demo_may_replace_only_its_own_unchanged_files(tmp_path):
    from auditor import demo

    demo.claim(tmp_path / "new")  # a directory that is not there yet
    (tmp_path / ".audit").mkdir()
    (tmp_path / "audit.yaml").write_text("written by the demo\n")
    (tmp_path / ".audit" / "dev.json").write_text("{}\n")
    demo._sign(tmp_path)
    demo.claim(tmp_path)  # a second run over its own files
    (tmp_path / ".audit" / "dev.json").write_text('{"edited": true}\n')
    with pytest.raises(AuditError, match=r"dev\.json: audit demo --keep did not write this file \(or it changed"):
        demo.claim(tmp_path)


def test_make_demo_tells_the_incident_alone_and_installs_once_per_change_of_pyproject():
    from tests.conftest import ROOT

    make = ["make", "--no-print-directory", "-C", str(ROOT)]
    proc = subprocess.run([*make, "demo"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.startswith("The incident:")
    # the story in three lines, the commands, next steps; never a temporary directory that is gone
    lines = proc.stdout.splitlines()
    assert lines[2].endswith("audit finds that seam before the deploy:")
    assert "exit 1: the gate refuses green" in proc.stdout
    assert lines[-5] == "Next:" and "audit demo --keep" in proc.stdout
    assert "audit-demo-" not in proc.stdout
    assert max(len(line) for line in lines[:3] + lines[-5:]) <= 80
    # The next steps run where they are printed, though make did not put the venv on PATH.
    explain = lines[-4].strip()
    assert explain.endswith(" explain P104")
    ran = _shell(explain, ROOT)
    assert ran.returncode == 0 and ran.stdout.startswith("P104 slot-port-divergence"), ran.stderr
    # Installed now: nothing to do until pyproject.toml changes (-W pretends it did).
    assert subprocess.run([*make, "-q", ".venv/.installed-demo"]).returncode == 0
    assert subprocess.run([*make, "-q", "-W", "pyproject.toml", ".venv/.installed-demo"]).returncode == 1
