"""Fail closed: what was not collected is never a pass, a failure cannot turn into a pass, and a typo
in audit.yaml is an error, not a silent default."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from junitparser import JUnitXml

from auditor.model import snapshot
from auditor.engine.catalog import builtin_catalog
from auditor.fixtures import estates
from tests.conftest import estate, host, run
from tests.test_cli import DEV, assert_one_line_error, audit

AWS_RULES = sorted(rule_id for rule_id, rule in builtin_catalog().items() if rule.meta.aws_needs)


@pytest.fixture
def offline(tmp_path: Path) -> Path:
    """The incident's host files and audit.yaml, with an AWS endpoint nobody may call."""
    for env in estates.INCIDENT:
        estates.write_hosts(tmp_path, env)
    return estates.write_config(tmp_path, "http://127.0.0.1:9")


def edit_config(path: Path, change) -> Path:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    return path


# --- coverage: --offline, a host without docker ------------------------------------------------------


def test_offline_check_skips_every_rule_that_reads_aws_and_keeps_its_exit_code(offline):
    proc = audit("check", "dev", "--offline", "-c", str(offline), "--format", "json")
    assert proc.returncode == 0, proc.stderr  # skips of what was not asked for never change check's answer
    report = json.loads(proc.stdout)
    skipped = {s["rule_id"]: s for s in report["skipped"]}
    assert sorted(skipped) == AWS_RULES
    assert {s["reason"] for s in skipped.values()} == {"AWS not collected (--offline)"}
    assert {s["cause"] for s in skipped.values()} == {"not_requested"}
    text = audit("check", "dev", "--offline", "-c", str(offline)).stdout
    assert f"{len(AWS_RULES)} rules not run: AWS not collected (--offline) (A201, A202," in text


def test_offline_junit_marks_the_rules_it_could_not_run_skipped(offline):
    proc = audit("check", "prod", "--offline", "-c", str(offline), "--format", "junit")
    suite = next(iter(JUnitXml.fromstring(proc.stdout.encode())))
    assert suite.skipped == len(AWS_RULES)
    assert suite.tests == len(builtin_catalog())


def test_offline_sarif_lists_the_skips_as_tool_notifications(offline):
    proc = audit("check", "dev", "--offline", "-c", str(offline), "--format", "sarif")
    (invocation,) = json.loads(proc.stdout)["runs"][0]["invocations"]
    notes = invocation["toolExecutionNotifications"]
    assert sorted(n["descriptor"]["id"] for n in notes) == AWS_RULES
    assert {n["level"] for n in notes} == {"note"} and invocation["executionSuccessful"] is True


def test_explain_shows_a_rules_options():
    out = audit("explain", "T306").stdout
    assert "Options (audit.yaml rules.options.T306):\n  drain_budget (int, default 300): seconds" in out


def test_offline_gate_is_unknown_not_pass(offline):
    for env, slot in (("dev", "green"), ("dev", "blue"), ("prod", "green")):
        proc = audit("gate", env, "--offline", "--slot", slot, "-c", str(offline))
        assert proc.returncode == 2, (env, slot, proc.stdout)
        assert f"gate {env}, slot {slot}: UNKNOWN" in proc.stdout
        assert "unknown: cannot decide P101: AWS not collected (--offline)" in proc.stderr


def test_offline_gate_still_fails_on_an_nginx_config_nginx_refuses(offline):
    conf = offline.parent / "envs" / "prod" / "nginx" / "nginx.conf"
    conf.write_text(conf.read_text().replace("listen 80 default_server;", "listen 80 default_server", 1))
    proc = audit("gate", "prod", "--offline", "--slot", "green", "-c", str(offline), "--format", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a proven breakage outranks what is unknown
    gate = json.loads(proc.stdout)
    failing = [f for f in gate["findings"] if f["fingerprint"] in gate["gate"]["failing"]]
    assert [(f["rule_id"], f["resource"], f["file"]) for f in failing] == [
        ("N500", "host:web", "envs/prod/nginx/nginx.conf")]
    assert 'invalid parameter "server_name"' in failing[0]["message"]


def test_the_same_refusal_fails_a_live_gate_on_a_snapshot():
    data = estate("incident-prod")
    host(data)["nginx"]["refusals"] = [{"message": '"proxy_pass" directive is not allowed here',
                                        "file": "nginx.conf", "line": 3}]
    result = run(data)
    assert [(f.rule_id, f.resource, f.severity) for f in result.findings if f.rule_id == "N500"] == [
        ("N500", "host:web", "critical")]
    # The paths through that nginx are unknown, not judged on half a config.
    assert {s.rule_id for s in result.skipped if "nginx refuses its config" in s.reason} >= {"P101", "P104"}


def test_a_host_without_docker_skips_the_docker_rules_too():
    data = estate("incident-prod")
    host(data)["docker"] = None
    result = run(data)
    docker_rules = {rule_id for rule_id, rule in builtin_catalog().items() if "docker" in rule.meta.host_needs}
    skipped = {s.rule_id for s in result.skipped if s.resource == "host:web" and "no docker description" in s.reason}
    assert skipped == docker_rules
    assert not [f for f in result.findings if f.rule_id in docker_rules]


def test_a_host_without_nginx_meets_the_nginx_rules():
    result = run(estate("incident-dev"))  # dev has no nginx: a fact, not missing data
    assert not [s for s in result.skipped if s.rule_id.startswith("N")]


# --- a failing check is contained ----------------------------------------------------------------------


def team_rule(tmp_path: Path, body: str) -> Path:
    rules = tmp_path / "team"
    rules.mkdir()
    (rules / "X901.yaml").write_text(
        "id: X901\nname: team-check\nseverity: high\ntitle: t\nrationale: r\nremediation: r\n"
        "check: ours.check\n")
    (rules / "ours.py").write_text(body)
    return rules


def test_a_check_that_raises_is_that_rule_skipped_and_the_command_exits_2(tmp_path):
    rules = team_rule(tmp_path, "def check(ctx):\n    yield from ()\n    raise KeyError('surprise')\n")
    config = tmp_path / "audit.yaml"
    config.write_text(f"version: 1\nenvironments: {{dev: {{}}}}\nrules: {{paths: [{rules}]}}\n")
    proc = audit("check", DEV, "-c", str(config), "--format", "json")
    assert proc.returncode == 2
    report = json.loads(proc.stdout)  # the report is still written, with every other rule's result
    assert ("P104", "target_group:web-*-tg", "green") in {(f["rule_id"], f["resource"], f["slot"])
                                                          for f in report["findings"]}
    (error,) = [s for s in report["skipped"] if s["rule_id"] == "X901"]
    assert error["cause"] == "internal_error" and error["reason"] == "internal error in X901: KeyError: 'surprise'"
    assert_one_line_error(proc, "internal error in X901")
    gate = audit("gate", DEV, "--slot", "blue", "-c", str(config))
    assert gate.returncode == 2 and "UNKNOWN" in gate.stdout


def test_a_snapshot_location_without_file_does_not_crash_a_rule(write_json):
    data = estate("incident-prod")
    location = host(data)["nginx"]["servers"][0]["locations"][0]
    del location["file"]
    location["proxy_pass"] = "http://$nowhere"
    proc = audit("check", str(write_json(data)), "--format", "json")
    assert proc.returncode == 1, proc.stderr  # N501 is high
    report = json.loads(proc.stdout)
    assert [(f["rule_id"], f["file"]) for f in report["findings"] if f["rule_id"] == "N501"] == [("N501", None)]
    assert not [s for s in report["skipped"] if s["cause"] == "internal_error"]


# --- rule options have a schema ------------------------------------------------------------------------


@pytest.mark.parametrize("options,words", [
    ({"T306": {"drain_buget": 900}}, ["rules.options.T306.drain_buget: unknown option (T306 takes: drain_budget)"]),
    ({"T306": {"drain_budget": "ten"}}, ["rules.options.T306.drain_budget: expected int, got 'ten'"]),
    ({"S401": {"ports": [22, True]}}, ["rules.options.S401.ports: got a boolean"]),
    ({"P101": {"anything": 1}}, ["rules.options.P101.anything: unknown option (P101 takes: no options)"]),
])
def test_an_unknown_or_ill_typed_rule_option_is_a_config_error(tmp_path, options, words):
    config = tmp_path / "audit.yaml"
    config.write_text(yaml.safe_dump({"version": 1, "environments": {"dev": {}}, "rules": {"options": options}}))
    assert_one_line_error(audit("check", DEV, "-c", str(config)), str(config), *words)


def test_declared_option_defaults_and_overrides_reach_the_check():
    data = estate("incident-prod")
    data["resources"]["target_groups"][0]["attributes"]["deregistration_delay.timeout_seconds"] = "400"
    assert [f.evidence["drain_budget"] for f in run(data).findings if f.rule_id == "T306"] == [300]


# --- the snapshot owns its types -----------------------------------------------------------------------


def test_a_snapshot_with_fields_this_version_does_not_know_loads(write_json):
    data = estate("incident-dev")
    host(data)["app"]["readiness_path"] = "/ready"  # written by a newer auditor of the same schema
    host(data)["docker"]["switch"] = {"kind": "canary", "weights": {"blue": 90}}
    data["resources"]["target_groups"][0]["ip_address_type"] = "ipv4"
    snap = snapshot.load(write_json(data))
    assert snap.resources.hosts[0].app.health_path == "/health-check"
    assert audit("gate", str(write_json(data)), "--slot", "green").returncode == 1


def test_only_a_newer_schema_version_is_refused(write_json):
    data = estate("incident-dev")
    data["schema_version"] = 2
    assert_one_line_error(audit("check", str(write_json(data))), "schema_version 2 is newer")


# --- an offline snapshot never replaces one with AWS facts ---------------------------------------------


def test_offline_snapshot_does_not_replace_one_that_holds_aws(offline):
    root = offline.parent
    kept = root / ".audit" / "dev.json"
    kept.parent.mkdir()
    kept.write_text(Path(DEV).read_text())
    proc = audit("snapshot", "dev", "--offline", "-c", str(offline), cwd=root)
    assert_one_line_error(proc, ".audit/dev.json holds AWS facts", "(--offline)", "-o FILE")
    assert kept.read_text() == Path(DEV).read_text()
    named = audit("snapshot", "dev", "--offline", "-c", str(offline), "-o", ".audit/dev.json", cwd=root)
    assert named.returncode == 0, named.stderr
    assert snapshot.load(kept).sources["aws"].status == "not_requested"
    # and an offline snapshot may replace an offline one
    assert audit("snapshot", "dev", "--offline", "-c", str(offline), cwd=root).returncode == 0
    # and is checked as it is, without --allow-partial: AWS was not asked for, not read in part; its rules skip
    report = audit("check", ".audit/dev.json", "--format", "json", cwd=root)
    assert report.returncode in (0, 1), report.stderr
    skipped = json.loads(report.stdout)["skipped"]
    assert {s["cause"] for s in skipped if s["rule_id"] == "P101"} == {"not_requested"}


# --- reports honour the umask; a bad -o is one line -----------------------------------------------------


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_reports_honour_the_umask_and_snapshots_stay_private(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        audit("check", DEV, "--format", "json", "-o", str(tmp_path / "report.json"))
        audit("merge", DEV, "-o", str(tmp_path / "snap.json"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "snap.json").stat().st_mode) == 0o600


def test_an_output_path_that_cannot_be_written_is_one_line(tmp_path):
    assert_one_line_error(audit("check", DEV, "-o", str(tmp_path)), str(tmp_path), "cannot write", "directory")
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "report.txt"
    assert_one_line_error(audit("check", DEV, "-o", str(target)), str(target), "cannot write")


def test_allow_partial_never_passes_the_nginx_rules_on_a_compose_project_it_could_not_read(tmp_path):
    # The compose file that may run nginx is refused: nginx is unknown, not absent, so N500-N508 are
    # skipped naming the refusal. The near miss: the same project read, with no nginx in it, meets them.
    (tmp_path / "compose.yaml").write_text("services: [\n")
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments:\n  prod:\n    hosts: [{name: web, match: "
                                         "{tags: {Role: web}}, docker: {compose: [compose.yaml]}}]\n")
    nginx_rules = {f"N50{i}" for i in range(9)} - {"N503"}  # N503 reads the ALB too: skipped --offline anyway

    def skipped() -> dict[str, str]:
        proc = audit("check", "prod", "--offline", "--allow-partial", "-c", str(tmp_path / "audit.yaml"),
                     "--format", "json")
        assert proc.returncode == 0, proc.stderr
        return {s["rule_id"]: s["reason"] for s in json.loads(proc.stdout)["skipped"] if s["rule_id"] in nginx_rules}

    reasons = skipped()
    assert set(reasons) == nginx_rules
    assert all("the compose project that may run it was not read" in r and "invalid YAML" in r
               for r in reasons.values())
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: example/app:1\n")
    assert skipped() == {}
