"""`audit demo`, as a new user meets it: the story, the three commands, next steps; and with --keep, a
live estate that the commands it prints work on, until Ctrl-C, then offline."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys



def test_a_kept_demo_serves_the_commands_it_prints_until_ctrl_c(tmp_path):
    keep = tmp_path / "estate"
    demo = subprocess.Popen([sys.executable, "-m", "auditor", "demo", "--keep", str(keep)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        printed = []
        for line in demo.stdout:
            printed.append(line.rstrip("\n"))
            if line.startswith("  audit check"):  # the last command it prints
                break
        commands = [line.strip() for line in printed if line.startswith(("  audit ", "  export "))]
        env = dict(os.environ)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(name, None)
        export = next(c for c in commands if c.startswith("export "))
        env.update(item.split("=", 1) for item in shlex.split(export)[1:])

        def run(command: str) -> subprocess.CompletedProcess[str]:
            argv = shlex.split(command)
            return subprocess.run([sys.executable, "-m", "auditor", *argv[1:]], capture_output=True, text=True,
                                  env=env, cwd=tmp_path, timeout=120)

        live = [c for c in commands if c.startswith("audit ") and str(keep / ".audit") not in c]
        codes = {c.split(" -c ")[0]: run(c).returncode for c in live}
        assert codes == {"audit gate dev --slot green": 1, "audit gate prod": 0, "audit diff dev prod": 1,
                         "audit snapshot dev": 0}
        assert (tmp_path / "dev.json").is_file()
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=30)
        assert demo.returncode == 0 and "demo endpoint stopped" in out
        offline = [c for c in commands if str(keep / ".audit") in c]
        assert [run(c).returncode for c in offline] == [1, 1]  # the gate refuses green; check finds P104
    finally:
        if demo.poll() is None:
            demo.kill()


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
    assert lines[-4] == "Next:" and "audit demo --keep" in proc.stdout
    assert "audit-demo-" not in proc.stdout
    assert max(len(line) for line in lines[:3] + lines[-4:]) <= 80
    # Installed now: nothing to do until pyproject.toml changes (-W pretends it did).
    assert subprocess.run([*make, "-q", ".venv/.installed-demo"]).returncode == 0
    assert subprocess.run([*make, "-q", "-W", "pyproject.toml", ".venv/.installed-demo"]).returncode == 1
