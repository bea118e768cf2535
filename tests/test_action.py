"""action.yml, the GitHub Action users `uses:`: its shell steps run as GitHub's runner runs them (bash -eo
pipefail, env from its expressions). Here with the checkout's audit on PATH; tests/wheel/smoke.sh runs
the install step too, with the built wheel."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jsonschema
import yaml

from tests.action_runner import ROOT, run_action
from tests.conftest import SHARED, SNAPSHOTS

BIN = [str(Path(sys.executable).parent)]


def workdir(tmp_path: Path) -> Path:
    for env in ("dev", "prod"):
        shutil.copy(SNAPSHOTS / f"incident-{env}.json", tmp_path / f"{env}.json")
    return tmp_path


def test_the_action_is_composite_with_the_documented_inputs():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"command", "environment", "format", "fail-on", "upload-sarif", "args", "config"} <= set(action["inputs"])
    assert [s.get("uses", "").split("@")[0] for s in action["runs"]["steps"]].count(
        "github/codeql-action/upload-sarif") == 1
    readme = (ROOT / "README.md").read_text()
    assert "uses: OWNER/auditor@" in readme and all(f"`{name}`" in readme for name in action["inputs"])


def test_a_failing_gate_uploads_its_sarif_then_fails_the_step(tmp_path):
    run = run_action(workdir(tmp_path), {"command": "gate", "environment": "dev.json", "args": "--slot green"},
                     path=BIN, skip=("Install auditor",))
    assert run.outputs["audit"] == {"exit-code": "1", "report": "audit.sarif"}
    assert run.uses["Upload SARIF"] == {"sarif_file": "audit.sarif", "category": "audit-gate"}
    sarif = json.loads((tmp_path / "audit.sarif").read_text())
    jsonschema.validate(sarif, json.loads((SHARED / "schemas" / "sarif-2.1.0.json").read_text()))
    assert [r["ruleId"] for r in sarif["runs"][0]["results"] if r["level"] == "error"] == ["P104"]
    assert run.exit_codes == {"Run audit": 0, "Verdict": 1}  # the step that fails is the last, after the upload


def test_a_passing_check_in_markdown_writes_the_step_summary_and_passes(tmp_path):
    run = run_action(workdir(tmp_path), {"command": "check", "environment": "dev.json prod.json",
                                         "format": "markdown", "fail-on": "critical"},
                     path=BIN, skip=("Install auditor",))
    assert run.outputs["audit"] == {"exit-code": "0", "report": "audit.md"}
    assert run.summary.startswith("### ") and "P104" in run.summary
    assert run.exit_codes["Verdict"] == 0


def test_a_command_the_action_does_not_run_is_refused_by_name(tmp_path):
    run = run_action(workdir(tmp_path), {"command": "snapshot", "environment": "dev"}, path=BIN,
                     skip=("Install auditor",))
    assert run.exit_codes["Run audit"] == 2 and run.outputs["audit"] == {}
