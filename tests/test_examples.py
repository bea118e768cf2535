"""The CI examples are valid YAML that says what README says, and the hook runs offline."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT
from tests.test_cli import audit


def test_github_workflow_has_the_nightly_and_gate_jobs():
    workflow = yaml.safe_load((ROOT / "examples" / "github" / "audit.yml").read_text())
    steps = {job: " ".join(str(s.get("run", s.get("uses", ""))) for s in spec["steps"])
             for job, spec in workflow["jobs"].items()}
    assert "audit snapshot dev" in steps["nightly"] and "--format sarif" in steps["nightly"]
    assert "github/codeql-action/upload-sarif" in steps["nightly"] and "upload-artifact" in steps["nightly"]
    assert "audit gate" in steps["gate"]
    assert workflow["permissions"]["security-events"] == "write"


def test_gitlab_snippet_reports_junit():
    snippet = yaml.safe_load((ROOT / "examples" / "gitlab" / "audit.gitlab-ci.yml").read_text())
    assert snippet["audit:gate"]["artifacts"]["reports"]["junit"] == "gate.xml"


def test_pre_commit_hook_checks_host_files_offline(tmp_path):
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "audit-hosts" and "--offline" in hook["entry"]
    (tmp_path / "docker-compose.yml").write_text("services:\n  app:\n    image: web:1\n    ports: ['3000:3000']\n")
    (tmp_path / "audit.yaml").write_text(
        "version: 1\nenvironments:\n  dev:\n    aws: {region: eu-west-1}\n    hosts:\n"
        "      - {name: web, match: {tags: {Role: web}}, docker: {compose: [docker-compose.yml]}}\n")
    proc = audit(*hook["entry"].split()[1:], "dev", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "docker-compose.yml").write_text("services:\n  app:\n    ports: ['99999:3000']\n")
    proc = audit(*hook["entry"].split()[1:], "dev", cwd=tmp_path)
    assert proc.returncode == 2
    assert "docker-compose.yml:2: service app: port '99999' is not a number from 1 to 65535" in proc.stderr
    proc = audit(*hook["entry"].split()[1:], "dev", "--allow-partial", cwd=tmp_path)
    assert "host:web was not fully collected" in proc.stdout and "99999" in proc.stdout


def test_sharded_workflow_collects_slices_in_a_matrix_and_joins_them():
    workflow = yaml.safe_load((ROOT / "examples" / "github" / "audit-sharded.yml").read_text())
    slice_job, join = workflow["jobs"]["slice"], workflow["jobs"]["join"]
    assert all({"env", "account", "region"} <= set(m) for m in slice_job["strategy"]["matrix"]["include"])
    assert "--shard ${{ matrix.account }}/${{ matrix.region }}" in " ".join(
        s.get("run", "") for s in slice_job["steps"])
    join_runs = " ".join(str(s.get("run", s.get("uses", ""))) for s in join["steps"])
    assert join["needs"] == "slice"
    assert "audit merge" in join_runs and "--format sarif" in join_runs and "upload-sarif" in join_runs


def test_plan_workflow_plans_gates_and_comments_on_the_pull_request():
    workflow = yaml.safe_load((ROOT / "examples" / "github" / "audit-plan.yml").read_text())
    (job,) = workflow["jobs"].values()
    runs = [str(s.get("run", s.get("uses", ""))) for s in job["steps"]]
    text = " ".join(runs)
    assert workflow[True]["pull_request"]["paths"]  # `on:` is YAML 1.1's true
    assert "terraform show -json plan.out > ../plan.json" in text
    assert "audit gate prod --plan plan.json --format markdown -o gate.md" in text
    assert "gh pr comment" in text and workflow["permissions"]["pull-requests"] == "write"
    # Terraform's wrapper would mix its own lines into `show -json`; the last step fails the job on 1 or 2.
    assert any(s.get("with", {}).get("terraform_wrapper") is False for s in job["steps"])
    assert runs[-1] == "exit ${{ steps.gate.outputs.code }}"
