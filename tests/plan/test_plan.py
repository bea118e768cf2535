"""`audit gate prod --plan PLAN.json`: each case is one change to the estate in terraform/, with the exit
code, the gating findings (rule, resource, slot) and the Terraform address behind them it must give.

The plans in cases/ were written by real terraform against moto (and the snapshot beside them by audit from
the same moto); the parser tests read them wherever terraform is absent. With terraform present, the same
cases run against freshly made plans: the committed files cannot drift from what terraform writes.
To rewrite them: AUDIT_WRITE_PLAN_CASES=1 python -m pytest tests/plan -k terraform.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plan.conftest import ASG, ESTATE, FIXTURES, MODULE, RESOURCES, Source, plan_summary

CASES = [(source, name) for source in (RESOURCES, MODULE, ASG) for name in sorted(source.cases)]
IDS = [f"{source.name}-{name}" for source, name in CASES]


def gate(plan: Path, snapshot: Path, *extra: str, config: Path = ESTATE / "audit.yaml") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditor", "gate", "prod", "--plan", str(plan), "--snapshot",
                           str(snapshot), "-c", str(config), *extra],
                          capture_output=True, text=True, timeout=120)


def _named(resource: str) -> str:
    """A group named by name_prefix is the prefix and 26 digits once created: `app-…` in the cases."""
    return re.sub(r"-\d{20,}$", "-…", resource)


def assert_case(source: Source, name: str, plan: Path, snapshot: Path) -> None:
    case = source.cases[name]
    proc = gate(plan, snapshot, "--format", "json", config=source.config)
    assert proc.returncode == case.code, proc.stderr
    report = json.loads(proc.stdout)
    failing = set(report["gate"]["failing"])
    found = sorted((f["rule_id"], _named(f["resource"]), f["slot"]) for f in report["findings"]
                   if f["fingerprint"] in failing)
    assert found == sorted(case.failing)
    planned = report["gate"]["plan"]
    assert sorted(c["address"] for c in planned["changes"]) == sorted(case.changes)
    for fingerprint in failing:
        assert any(case.behind in change for change in planned["behind"][fingerprint]), planned["behind"]
    if name == "unknown-until-apply":
        assert planned["unknown_until_apply"] == ["aws_lb_target_group.web.health_check[0].path"]
        assert "aws_lb_target_group.web.health_check[0].path is known only after apply" in proc.stderr
        assert proc.stderr.count("\n") == 1
        # The finding that rests on the unknown path is shown, not gating: it proves nothing yet.
        assert [(f["rule_id"], f["resource"]) for f in report["findings"]
                if f["fingerprint"] in planned["new_findings"]] == [("P103", "target_group:web-*-tg")]
    else:
        assert planned["unknown_until_apply"] == []
    if source is MODULE and name == "forward-moved-unserved":
        # The listener's default rule follows its new default action: the path after goes to the new group.
        assert planned["paths"]["after"] == ["ALB:80 → TG:8080 → app ✗"]
        (change,) = [c for c in planned["changes"] if c["address"] == 'module.alb.aws_lb_listener.this["http"]']
        assert re.fullmatch(r"default_actions forward to app-\d+ → forward to api-", change["detail"])
    if name == "group-replaced":
        (change,) = [c for c in planned["changes"] if c["address"] == "aws_lb_target_group.web"]
        assert change["action"] == "replace"
        assert "traffic waits for the new group's health checks" in change["detail"]


@pytest.mark.parametrize(("source", "name"), CASES, ids=IDS)
def test_committed_plan(source: Source, name: str) -> None:
    assert_case(source, name, source.plans / f"{name}.json", source.plans / "snapshot.json")


@pytest.mark.parametrize(("source", "name"), CASES, ids=IDS)
def test_terraform_plan(source: Source, name: str, request: pytest.FixtureRequest) -> None:
    estate = request.getfixturevalue(FIXTURES[source.name])
    plan = estate.plans[name]
    assert_case(source, name, plan, estate.snapshot)
    if os.environ.get("AUDIT_WRITE_PLAN_CASES") == "1":
        source.plans.mkdir(exist_ok=True)
        shutil.copy(plan, source.plans / f"{name}.json")
        shutil.copy(estate.snapshot, source.plans / "snapshot.json")
    assert plan_summary(plan) == plan_summary(source.plans / f"{name}.json"), \
        "the committed plan differs from terraform's: rewrite cases/ (see this module's docstring)"


def test_every_gate_format_shows_the_planned_changes_and_the_one_behind_each_finding():
    plan, snapshot = MODULE.plans / "group-port-unserved.json", MODULE.plans / "snapshot.json"
    replaced = 'module.alb.aws_lb_target_group.this["app"]: replaced'
    out = {fmt: gate(plan, snapshot, "--format", fmt, config=MODULE.config) for fmt in ("sarif", "junit", "html")}
    assert {fmt: proc.returncode for fmt, proc in out.items()} == {"sarif": 1, "junit": 1, "html": 1}
    run = json.loads(out["sarif"].stdout)["runs"][0]
    assert run["properties"]["gate"]["plan"]["changes"][0].startswith(replaced)
    failing = set(run["properties"]["gate"]["failing"])
    behind = [r["properties"]["planned"] for r in run["results"] if r["partialFingerprints"]["auditFingerprint/v1"] in failing]
    assert len(behind) == 2 and all(p[0].startswith(replaced) for p in behind)
    assert all(" Planned: " + replaced in r["message"]["text"] for r in run["results"]
               if r["partialFingerprints"]["auditFingerprint/v1"] in failing)
    assert out["junit"].stdout.count("Planned: " + replaced) == 2 and "<system-out>planned changes:" in out["junit"].stdout
    assert "<h2>Planned changes</h2>" in out["html"].stdout
    assert "aws_lb_target_group_attachment.web[0]</code>: registers" in out["html"].stdout
