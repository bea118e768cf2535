"""Every format for check, diff and gate on the incident, validated against its standard."""

from __future__ import annotations

import json

import jsonschema
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped
from referencing import Registry, Resource

from tests.conftest import ROOT, SHARED, SNAPSHOTS
from tests.test_cli import audit

DEV, PROD = str(SNAPSHOTS / "incident-dev.json"), str(SNAPSHOTS / "incident-prod.json")
COMMANDS = {"check": ["check", DEV, PROD], "diff": ["diff", DEV, PROD], "gate": ["gate", DEV, "--slot", "green"]}


def output(command: str, fmt: str) -> str:
    proc = audit(*COMMANDS[command], "--format", fmt)
    assert proc.returncode == 1, proc.stderr  # the incident fails each of them
    return proc.stdout


def schema(name: str) -> jsonschema.protocols.Validator:
    schemas = {p.name: json.loads(p.read_text()) for p in (ROOT / "schemas").glob("*.json")}
    registry = Registry().with_resources(
        (f"auditor/{n}", Resource.from_contents(s)) for n, s in schemas.items())
    return jsonschema.Draft202012Validator(schemas[name], registry=registry)


@pytest.mark.parametrize("command,name", [("check", "findings.schema.json"), ("gate", "findings.schema.json"),
                                          ("diff", "drift.schema.json")])
def test_json_outputs_follow_their_published_schemas(command, name):
    schema(name).validate(json.loads(output(command, "json")))


def test_published_schemas_reject_a_broken_finding():
    data = json.loads(output("check", "json"))
    data["findings"][0]["severity"] = "urgent"
    with pytest.raises(jsonschema.ValidationError):
        schema("findings.schema.json").validate(data)


@pytest.mark.parametrize("command", COMMANDS)
def test_sarif_is_valid_sarif_2_1_0(command):
    data = json.loads(output(command, "sarif"))
    jsonschema.validate(data, json.loads((SHARED / "schemas" / "sarif-2.1.0.json").read_text()))
    for run in data["runs"]:
        for result in run["results"]:
            assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]  # GitHub needs a file


def test_sarif_rules_carry_help_and_security_severity_and_results_their_level():
    data = json.loads(output("check", "sarif"))
    dev = next(r for r in data["runs"] if r["automationDetails"]["id"] == "audit/dev/")
    rules = {r["id"]: r for r in dev["tool"]["driver"]["rules"]}
    assert rules["P104"]["properties"]["security-severity"] == "8.0"
    assert rules["P104"]["help"]["text"].startswith("Put a switch")
    result = next(r for r in dev["results"] if r["ruleId"] == "P104")
    assert result["level"] == "error"
    assert {r["level"] for r in dev["results"] if r["ruleId"] == "A204"} == {"note"}
    assert dev["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "P104"
    logical = result["locations"][0]["logicalLocations"][0]
    assert logical["fullyQualifiedName"] == "dev/target_group:web-*-tg"
    assert "arn:" not in json.dumps(result["locations"])


def test_sarif_points_file_findings_at_file_and_line(write_json):
    from tests.conftest import estate, host

    data = estate("incident-prod")
    host(data)["nginx"]["variables"][0]["value"] = "http://127.0.0.1:5000"
    sarif = json.loads(audit("check", str(write_json(data)), "--format", "sarif").stdout)
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "P105")
    physical = result["locations"][0]["physicalLocation"]
    assert (result["ruleId"], physical["artifactLocation"]["uri"], physical["region"]["startLine"]) == (
        "P105", "envs/prod/nginx/nginx.conf", 16)


def test_sarif_points_a_finding_in_an_images_own_file_at_the_environments_entry(write_json):
    # The stock default server is in no repository: the finding points where the environment is described
    # (here, with no audit.yaml, the snapshot file; outside the working directory, as an absolute URI).
    from tests.conftest import estate, host

    data = estate("incident-prod")
    for server in host(data)["nginx"]["servers"]:
        server["file"] = "nginx:1.27.2 image: /etc/nginx/conf.d/default.conf"  # the stock default server
    path = write_json(data)
    sarif = json.loads(audit("check", str(path), "--format", "sarif").stdout)
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "N504")
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": path.resolve().as_uri()}


def test_junit_has_a_suite_per_environment_and_a_case_per_rule_and_resource(tmp_path):
    path = tmp_path / "report.xml"
    path.write_text(output("check", "junit"))
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(path))}
    assert set(suites) == {"dev", "prod"}
    dev = list(suites["dev"])
    failures = [c for c in dev if any(isinstance(r, Failure) for r in c.result)]
    assert [c.name for c in failures] == ["P104 slot-port-divergence target_group:web-*-tg [slot green]"]
    below = [c for c in dev if c.name.startswith("A204") and not c.result]  # low: reported, not failing
    assert below and below[0].system_out
    failure = failures[0].result[0]
    assert "green publishes 4000" in failure.message and "Fix: Put a switch" in failure.text
    assert suites["prod"].failures == 0 and suites["prod"].tests == len(dev)


def test_junit_for_diff_and_gate(tmp_path):
    (tmp_path / "d.xml").write_text(output("diff", "junit"))
    (suite,) = JUnitXml.fromfile(str(tmp_path / "d.xml"))
    assert suite.failures == suite.tests > 0
    (tmp_path / "g.xml").write_text(output("gate", "junit"))
    (suite,) = JUnitXml.fromfile(str(tmp_path / "g.xml"))
    assert (suite.name, suite.failures) == ("gate dev slot green", 1)


def test_junit_skipped_and_missing_data(write_json, tmp_path):
    from tests.conftest import estate, host

    data = estate("incident-prod")
    host(data)["nginx"]["variables"] = []
    snap = str(write_json(data))
    (tmp_path / "c.xml").write_text(audit("check", snap, "--format", "junit").stdout)
    cases = [c for suite in JUnitXml.fromfile(str(tmp_path / "c.xml")) for c in suite]
    assert any(isinstance(r, Skipped) and "$service_url" in r.message for c in cases for r in c.result)
    proc = audit("gate", snap, "--slot", "blue", "--format", "junit")
    assert proc.returncode == 2
    (tmp_path / "g.xml").write_text(proc.stdout)
    cases = [c for suite in JUnitXml.fromfile(str(tmp_path / "g.xml")) for c in suite]
    assert any(isinstance(r, Error) for c in cases for r in c.result)
