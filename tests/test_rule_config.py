"""Suppressions, inline nginx suppression, baselines and a team's own rules, through the CLI."""

from __future__ import annotations

import json
import textwrap

from tests.conftest import SNAPSHOTS, estate, host
from tests.test_cli import assert_one_line_error, audit

DEV = str(SNAPSHOTS / "incident-dev.json")


def test_baseline_round_trip_reports_only_new_findings(tmp_path, write_json):
    base = tmp_path / "baseline.json"
    proc = audit("check", DEV, "--write-baseline", str(base))
    assert proc.returncode == 0 and "wrote" in proc.stderr
    assert {f["rule_id"] for f in json.loads(base.read_text())["findings"]} >= {"P104", "A201"}
    proc = audit("check", DEV, "--baseline", str(base), "--format", "json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == []
    data = estate("incident-dev")
    data["resources"]["security_groups"][1]["ingress"].append(
        {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"})
    proc = audit("check", str(write_json(data)), "--baseline", str(base), "--format", "json")
    assert proc.returncode == 1
    assert [f["rule_id"] for f in json.loads(proc.stdout)["findings"]] == ["S401"]


def test_baseline_survives_reworded_messages_but_not_a_new_port(tmp_path, write_json):
    base = tmp_path / "baseline.json"
    audit("check", DEV, "--write-baseline", str(base))
    data = estate("incident-dev")
    data["resources"]["target_groups"][0]["port"] = 3001  # a different problem: a new fingerprint
    data["resources"]["target_health"][0]["port"] = 3001
    proc = audit("check", str(write_json(data)), "--baseline", str(base), "--format", "json")
    assert "P104" in {f["rule_id"] for f in json.loads(proc.stdout)["findings"]}


def test_bad_baseline_is_one_line(tmp_path):
    (tmp_path / "b.json").write_text("[]")
    assert_one_line_error(audit("check", DEV, "--baseline", str(tmp_path / "b.json")), "not a baseline")


def test_inline_nginx_ignore_suppresses_that_rule_on_that_directive(write_json):
    data = estate("incident-prod")
    server = host(data)["nginx"]["servers"][0]
    host(data)["nginx"]["ignores"] = [{"rule": "N504", "reason": "legacy box", "file": server["file"],
                                       "line": server["line"]}]
    findings = json.loads(audit("check", str(write_json(data)), "--format", "json").stdout)["findings"]
    (n504,) = [f for f in findings if f["rule_id"] == "N504"]
    assert n504["suppressed"] is True
    other = [f for f in findings if f["rule_id"] == "N503"]
    assert other and not other[0]["suppressed"]


def test_inline_ignore_from_a_real_nginx_file(tmp_path):
    from auditor.collect.host import nginx

    conf = tmp_path / "nginx.conf"
    conf.write_text("http {\n  # audit:ignore N504 version shown on purpose\n  server { listen 80; }\n}\n")
    (ignore,) = nginx.parse_file(conf).ignores
    assert (ignore.rule, ignore.reason, ignore.line) == ("N504", "version shown on purpose", 3)


def team_rules(tmp_path, *files: tuple[str, str]) -> None:
    directory = tmp_path / "audit-rules"
    directory.mkdir()
    for name, text in files:
        (directory / name).write_text(textwrap.dedent(text))
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments: {dev: {}}\nrules: {paths: [audit-rules/]}\n")


RULE = """\
    id: {id}
    name: {name}
    severity: high
    title: A team rule
    rationale: Our platform needs it.
    remediation: Change it.
    references: [https://wiki.example.com/alb]
    """


def test_team_rule_with_a_declarative_condition(tmp_path):
    team_rules(tmp_path, ("X901.yaml", RULE.format(id="X901", name="hc-interval") + textwrap.dedent("""\
        condition: {resource_type: target_group, key: health_check.interval_seconds, op: gt, value: 20}
        """)))
    proc = audit("check", DEV, "--format", "json", cwd=tmp_path)
    (finding,) = [f for f in json.loads(proc.stdout)["findings"] if f["rule_id"] == "X901"]
    assert finding["resource"] == "target_group:web-*-tg" and finding["evidence"]["value"] == 30
    assert "X901" in audit("rules", cwd=tmp_path).stdout
    assert audit("explain", "X901", cwd=tmp_path).stdout.startswith("X901 hc-interval (high)")


def test_team_rule_with_a_python_check_beside_it(tmp_path):
    team_rules(tmp_path, ("X902.yaml", RULE.format(id="X902", name="needs-team-tag") + "check: tags.team_tag\n"),
               ("tags.py", """\
        from auditor.engine.api import Problem

        def team_tag(ctx):
            for lb in ctx.snapshot.resources.load_balancers:
                if "Team" not in lb.tags:
                    yield Problem(f"load_balancer:{ctx.keys.load_balancer[lb.arn]}", "no Team tag")
        """))
    proc = audit("check", DEV, "--format", "json", cwd=tmp_path)
    assert [f["resource"] for f in json.loads(proc.stdout)["findings"] if f["rule_id"] == "X902"] == [
        "load_balancer:web-*-alb"]


def test_a_team_rule_on_a_kind_judges_one_subject_and_the_engine_names_it(tmp_path):
    # `on: target_group`: the check is called once per target group and leaves the naming to the engine;
    # a Skip with no resource is about the subject too. The near miss (a group with a Team tag) stays quiet.
    team_rules(tmp_path, ("X906.yaml", RULE.format(id="X906", name="tg-team-tag")
                          + "check: tags.tg_tag\n    on: target_group\n"),
               ("tags.py", """\
        from auditor.engine.api import Problem, Skip

        def tg_tag(ctx, tg):
            if tg.port == 3000:
                yield Skip("port 3000 is not judged here")
            elif "Team" not in tg.tags:
                yield Problem(message=f"{ctx.ref(tg).key} has no Team tag")
        """))
    pair = str(SNAPSHOTS / "switch-alb-weighted.json")  # web-blue-tg on 3000, web-green-tg on 4000
    result = json.loads(audit("check", pair, "--format", "json", cwd=tmp_path).stdout)
    assert [(f["resource"], f["message"]) for f in result["findings"] if f["rule_id"] == "X906"] == [
        ("target_group:web-green-tg", "web-green-tg has no Team tag")]
    assert [(s["resource"], s["reason"]) for s in result["skipped"] if s["rule_id"] == "X906"] == [
        ("target_group:web-blue-tg", "port 3000 is not judged here")]


def test_a_rule_on_a_kind_that_does_not_exist_is_one_line(tmp_path):
    team_rules(tmp_path, ("X907.yaml", RULE.format(id="X907", name="x") + "check: a.b\n    on: lambda\n"))
    assert_one_line_error(audit("check", DEV, cwd=tmp_path), "X907.yaml", "on[0]: expected 'snapshot', 'host',",
                          "got 'lambda'")


def test_team_rules_are_validated(tmp_path):
    team_rules(tmp_path, ("P999.yaml", RULE.format(id="P999", name="x") + "check: a.b\n"))
    assert_one_line_error(audit("check", DEV, cwd=tmp_path), "P999.yaml", "X900-X999")


def test_team_rule_needs_one_of_check_or_condition(tmp_path):
    team_rules(tmp_path, ("X903.yaml", RULE.format(id="X903", name="x")))
    assert_one_line_error(audit("check", DEV, cwd=tmp_path), "X903.yaml", "exactly one of check or condition")


def test_unknown_rule_in_options_is_an_error(tmp_path):
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments: {dev: {}}\nrules: {options: {Z123: {}}}\n")
    assert_one_line_error(audit("check", DEV, cwd=tmp_path), "unknown rule id Z123")


def test_a_team_rule_option_of_an_unknown_type_is_named_by_its_key(tmp_path):
    team_rules(tmp_path, ("X904.yaml", RULE.format(id="X904", name="x") + "check: a.b\n"
                          "    options: {window: {type: int, default: 1}, budget: {type: float, default: 1}}\n"))
    assert_one_line_error(audit("check", DEV, cwd=tmp_path), "X904.yaml",
                          "options.budget.type: expected 'int', 'number', 'string', 'bool', 'list[int]' or "
                          "'list[string]', got 'float'")


def test_a_rule_file_that_is_not_yaml_is_one_line_naming_its_line(tmp_path):
    team_rules(tmp_path, ("X905.yaml", RULE.format(id="X905", name="x") + "  check: [a\n"))
    assert_one_line_error(audit("check", DEV, cwd=tmp_path), "X905.yaml:", "invalid YAML")
