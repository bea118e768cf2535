"""The command line as users and CI call it: exit codes, one-line errors, output contracts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SNAPSHOTS, estate, host

DEV = str(SNAPSHOTS / "incident-dev.json")
PROD = str(SNAPSHOTS / "incident-prod.json")


def audit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0]


# --- the gate: the reason this tool exists ----------------------------------------------------------


@pytest.mark.parametrize("snap,slot,code", [(DEV, "green", 1), (DEV, "blue", 0), (PROD, "green", 0),
                                            (PROD, "blue", 0)])
def test_gate_on_the_incident(snap, slot, code):
    proc = audit("gate", snap, "--slot", slot)
    assert proc.returncode == code, proc.stdout + proc.stderr


def test_gate_says_why_in_one_sentence():
    proc = audit("gate", DEV, "--slot", "green")
    assert "green publishes 4000" in proc.stdout
    assert "sends traffic and health checks to 3000" in proc.stdout


def test_gate_without_slot_judges_every_slot_when_the_live_one_is_unknown():
    assert audit("gate", DEV).returncode == 1


def test_gate_fails_closed_on_a_skipped_path_rule(write_json):
    data = estate("incident-prod")
    host(data)["nginx"]["variables"] = []  # proxy_pass $service_url cannot be followed
    proc = audit("gate", str(write_json(data)), "--slot", "blue")
    assert proc.returncode == 2
    assert "cannot decide" in proc.stderr and "$service_url" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gate_ignores_hygiene_and_other_slots_but_fails_on_slotless_path_findings(write_json):
    data = estate("incident-dev")
    rule = data["resources"]["security_groups"][1]["ingress"]
    rule[:] = [r for r in rule if r["from_port"] != 3000]  # blocks blue's port: P106, no slot
    proc = audit("gate", str(write_json(data)), "--slot", "blue")
    assert proc.returncode == 1
    assert "P106" in proc.stdout


def test_gate_refuses_allow_partial_and_unknown_slots():
    proc = audit("gate", DEV, "--allow-partial")
    assert proc.returncode == 2 and "refuses --allow-partial" in proc.stderr
    assert_one_line_error(audit("gate", DEV, "--slot", "purple"), "unknown slot 'purple'")


def test_gate_against_a_reference_fails_on_path_drift():
    proc = audit("gate", PROD, "--slot", "blue", "--against", DEV)
    assert proc.returncode == 1
    assert "path drift" in proc.stdout


def test_gate_json_carries_the_verdict():
    proc = audit("gate", DEV, "--slot", "green", "--format", "json")
    data = json.loads(proc.stdout)
    assert data["gate"]["result"] == "fail"
    assert data["gate"]["slots"] == ["green"]
    assert data["gate"]["failing"] == [data["findings"][0]["fingerprint"]]


# --- check --------------------------------------------------------------------------------------------


def test_check_json_follows_the_contract():
    proc = audit("check", DEV, "--format", "json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert set(data) == {"schema_version", "tool", "environments", "findings", "skipped", "summary"}
    assert data["tool"]["name"] == "auditor" and data["environments"] == ["dev"]
    finding = next(f for f in data["findings"] if f["severity"] == "high")
    assert set(finding) == {"rule_id", "rule", "severity", "environment", "resource", "slot", "message",
                            "evidence", "remediation", "fingerprint", "suppressed", "file", "line"}
    assert (finding["rule_id"], finding["rule"], finding["resource"], finding["slot"]) == (
        "P104", "slot-port-divergence", "target_group:web-*-tg", "green")
    assert data["summary"] == {"critical": 0, "high": 1, "medium": 4, "low": 2, "info": 0}


def test_fingerprint_ignores_message_wording_and_instance_ids(write_json):
    first = next(f for f in json.loads(audit("check", DEV, "--format", "json").stdout)["findings"]
                 if f["rule_id"] == "P104")
    data = estate("incident-dev")
    data["resources"]["instances"][0]["id"] = "i-0another"
    data["resources"]["target_health"][0]["target_id"] = "i-0another"
    again = next(f for f in json.loads(audit("check", str(write_json(data)), "--format", "json").stdout)["findings"]
                 if f["rule_id"] == "P104")
    assert again["fingerprint"] == first["fingerprint"]


@pytest.mark.parametrize("fail_on,code", [("critical", 0), ("high", 1), ("info", 1), ("never", 0)])
def test_fail_on_sets_the_threshold(fail_on, code):
    assert audit("check", DEV, "--fail-on", fail_on).returncode == code


def test_clean_estate_exits_zero_with_a_summary_last():
    proc = audit("check", PROD)
    assert proc.returncode == 0
    assert proc.stdout.strip().splitlines()[-1].startswith("prod: 7 findings (0 critical, 0 high,")


def test_output_file_and_options_after_arguments(tmp_path):
    out = tmp_path / "report.json"
    proc = audit("check", DEV, "-o", str(out), "--format", "json", "--quiet")
    assert proc.returncode == 1 and proc.stdout == ""
    assert json.loads(out.read_text())["findings"][0]["rule_id"] == "P104"  # worst first


def test_shards_of_one_environment_merge_and_several_environments_each_report(write_json):
    a, b = estate("incident-prod"), estate("incident-prod")
    a["resources"]["instances"].pop()
    b["resources"]["instances"].pop(0)
    proc = audit("check", str(write_json(a, "a.json")), str(write_json(b, "b.json")), DEV, "--format", "json")
    data = json.loads(proc.stdout)
    assert data["environments"] == ["prod", "dev"]
    assert [f["environment"] for f in data["findings"] if f["severity"] == "high"] == ["dev"]


def test_config_suppressions_and_severity_apply(tmp_path):
    (tmp_path / "audit.yaml").write_text(
        "version: 1\nenvironments: {dev: {}}\n"
        "suppressions: [{rule: P104, resource: 'target_group:web-*', reason: 'green retired, OPS-7'}]\n")
    proc = audit("check", DEV, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["findings"][0]["suppressed"] is True
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments: {dev: {}}\nrules: {severity: {P104: low}}\n")
    assert audit("check", DEV, cwd=tmp_path).returncode == 0


def test_expired_suppression_stops_suppressing_and_says_so(tmp_path):
    (tmp_path / "audit.yaml").write_text(
        "version: 1\nenvironments: {dev: {}}\n"
        "suppressions: [{rule: P104, resource: '*', reason: 'x', expires: 2020-01-01}]\n")
    proc = audit("check", DEV, cwd=tmp_path)
    assert proc.returncode == 1
    assert "expired on 2020-01-01" in proc.stdout


# --- diff ---------------------------------------------------------------------------------------------


def test_diff_of_the_incident_shows_the_path_shapes_and_exits_one():
    proc = audit("diff", DEV, PROD)
    assert proc.returncode == 1
    assert "path dev: ALB:80 → TG:3000 → app{blue:3000, green:4000 ✗}" in proc.stdout
    assert "path prod: ALB:80 → TG:80 → nginx:80 → app{blue:3000, green:4000}" in proc.stdout
    data = json.loads(audit("diff", DEV, PROD, "--format", "json").stdout)
    assert {"kind": "changed", "resource_type": "path", "key": "web-*-alb:80/green", "path": "nginx", "a": None,
            "b": "nginx:80", "expected": False, "reason": None} in data["drift"]
    assert data["summary"]["unexpected"] == len(data["drift"])


def test_diff_needs_two_sides():
    proc = audit("diff", PROD)
    assert proc.returncode == 2 and "diff needs two environments, or one environment at two times" in proc.stderr


# --- rules, explain, errors -------------------------------------------------------------------------------


def test_rules_and_explain():
    proc = audit("rules", "--format", "json")
    ids = [r["id"] for r in json.loads(proc.stdout)]
    assert {"P101", "P102", "P103", "P104", "P105", "P106", "P109", "P110", "P113"} <= set(ids)
    text = audit("explain", "p104").stdout
    assert text.startswith("P104 slot-port-divergence (high)")
    assert "Why:" in text and "Fix:" in text and "References:" in text
    assert_one_line_error(audit("explain", "Z999"), "unknown rule id")


@pytest.mark.parametrize("args,words", [
    (["check", "missing.json"], ["missing.json", "not found"]),
    (["check", "dev"], ["dev", "not a snapshot file", "give --config"]),
    (["check", DEV, "-c", "nope.yaml"], ["nope.yaml", "config file not found"]),
])
def test_errors_are_one_line_and_exit_two(args, words):
    assert_one_line_error(audit(*args), *words)


def test_bad_config_and_bad_snapshot_name_the_file(tmp_path, write_json):
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments: {dev: {colour: blue}}\n")
    assert_one_line_error(audit("check", DEV, cwd=tmp_path), "audit.yaml", "environments.dev.colour: unknown key")
    newer = estate("incident-dev")
    newer["schema_version"] = 9
    assert_one_line_error(audit("check", str(write_json(newer))), "newer")


def test_unknown_environment_name_in_config(tmp_path):
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments: {dev: {}}\n")
    assert_one_line_error(audit("check", "qa", cwd=tmp_path), "unknown environment 'qa'")


def test_partial_snapshot_needs_allow_partial(write_json):
    data = estate("incident-dev")
    data["sources"]["aws"]["status"] = "partial"
    path = str(write_json(data))
    assert_one_line_error(audit("check", path), "partial", "--allow-partial")
    assert audit("check", path, "--allow-partial").returncode == 1


def test_usage_errors_exit_two():
    assert audit("check").returncode == 2
    assert audit("frobnicate").returncode == 2
    assert audit("--help").returncode == 0


def test_merge_writes_one_snapshot_and_refuses_different_environments(tmp_path):
    out = tmp_path / "m.json"
    assert audit("merge", PROD, PROD, "-o", str(out)).returncode == 0
    assert json.loads(out.read_text())["environment"] == "prod"
    assert_one_line_error(audit("merge", PROD, DEV, "-o", str(out)), "different environments")


def test_help_and_version_do_not_import_the_heavy_libraries():
    """Start-up stays fast: boto3, botocore, rich, crossplane and jsonschema load only when
    a command needs them (asserted on sys.modules, not timed)."""
    code = ("import sys\nfrom auditor.cli import main\n"
            "for args in (['--help'], ['--version'], ['check', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('boto3', 'botocore', 'rich', 'crossplane', 'jsonschema')"
            " if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_usage_errors_are_one_line_too():
    assert_one_line_error(audit("check"), "Missing argument", "audit check --help")
    assert_one_line_error(audit("check", DEV, "--format", "pdf"), "'pdf' is not one of")
    assert_one_line_error(audit("frobnicate"), "No such command")


def test_the_snapshot_note_counts_one_resource_in_the_singular(tmp_path):
    (tmp_path / "docker-compose.yml").write_text("services:\n  app:\n    image: app:1\n")
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments:\n  dev:\n    hosts:\n      - name: web\n"
                                         "        match: {tags: {Role: web}}\n"
                                         "        docker: {compose: [docker-compose.yml]}\n")
    proc = audit("snapshot", "dev", "--offline", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "dev: wrote .audit/dev.json (1 host; 0 API calls)\n", proc.stderr
