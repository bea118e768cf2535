"""What a new user meets in the first hour: help, errors that name the typo, options that belong to the
command, formats a command can produce, and diffs that name the environments."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import SNAPSHOTS
from tests.test_cli import assert_one_line_error, audit

DEV, PROD = str(SNAPSHOTS / "incident-dev.json"), str(SNAPSHOTS / "incident-prod.json")


def test_bare_audit_shows_the_help_and_exits_0():
    proc = audit()
    assert proc.returncode == 0 and proc.stderr == ""
    assert "Usage: audit [OPTIONS] COMMAND" in proc.stdout and "gate" in proc.stdout


def test_a_typo_in_a_top_level_key_is_named_before_the_key_it_hides(tmp_path):
    path = tmp_path / "audit.yaml"
    path.write_text("version: 1\nenvironmnets:\n  dev: {}\n")
    assert_one_line_error(audit("check", "dev", "-c", str(path)),
                          "environmnets: unknown key (did you mean environments?)")


@pytest.mark.parametrize("command,absent", [
    ("snapshot", ["--format", "--fail-on", "--baseline"]),
    ("merge", ["--format", "--fail-on", "--offline", "--allow-commands"]),
    ("rules", ["--fail-on", "--offline", "--allow-commands", "--timeout"]),
    ("explain", ["--fail-on", "--offline", "--allow-commands", "--allow-partial"]),
    ("demo", ["--format", "--fail-on", "--offline", "--config"]),
    ("gate", ["--allow-partial", "--baseline"]),
])
def test_each_command_lists_only_the_options_that_apply_to_it(command, absent):
    help_text = audit(command, "--help").stdout
    for option in absent:
        assert option not in help_text, (command, option)


def test_a_format_a_command_cannot_produce_is_an_error_and_markdown_is_produced():
    assert_one_line_error(audit("rules", "--format", "sarif"), "'sarif' is not one of 'text', 'json', 'markdown'")
    assert_one_line_error(audit("explain", "P101", "--format", "junit"), "'junit' is not one of")
    assert_one_line_error(audit("snapshot", "dev", "--format", "json"), "No such option '--format'")
    rules = audit("rules", "--format", "markdown").stdout.splitlines()
    assert rules[0] == "| Rule | Severity | Name | Fires when |" and any(r.startswith("| P101 | critical |") for r in rules)
    explain = audit("explain", "P101", "--format", "markdown").stdout
    assert explain.startswith("### P101 target-port-unserved (critical)") and "**Fix:**" in explain


def test_diff_names_the_environments_in_text_junit_and_sarif():
    text = audit("diff", DEV, PROD).stdout
    assert "only in a" not in text and "only in b" not in text
    assert "only in prod" in text
    junit = audit("diff", DEV, PROD, "--format", "junit").stdout
    assert "null in" not in junit
    failures = [f.text for f in ET.fromstring(junit).iter("failure")]
    assert "only in prod" in failures and "3000 in dev, 80 in prod" in failures
    assert "(none) in dev, nginx:80 in prod" in failures
    sarif = json.loads(audit("diff", DEV, PROD, "--format", "sarif").stdout)
    messages = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert "target_health:web-*-tg/web:80: only in prod" in messages and not any("null in" in m for m in messages)
    assert json.loads(audit("diff", DEV, PROD, "--format", "json").stdout)["a"] == "dev"


def test_one_environment_at_two_times_diffs_and_shards_still_merge(tmp_path):
    data = json.loads((SNAPSHOTS / "incident-prod.json").read_text())
    yesterday, today = tmp_path / "yesterday.json", tmp_path / "today.json"
    yesterday.write_text(json.dumps({**data, "collected_at": "2026-11-25T03:17:00+00:00"}))
    data["resources"]["target_groups"][0]["health_check"]["path"] = "/healthz"
    today.write_text(json.dumps({**data, "collected_at": "2026-11-26T03:17:00+00:00"}))
    proc = audit("diff", str(yesterday), str(today), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["a"], report["b"]) == ("prod@2026-11-25T03:17", "prod@2026-11-26T03:17")
    assert [(d["key"], d["path"], d["a"], d["b"]) for d in report["drift"]] == [
        ("web-*-tg", "health_check.path", "/health-check", "/healthz")]
    # the near miss: the same file twice is no drift
    assert audit("diff", str(yesterday), str(yesterday)).returncode == 0


def test_nightly_example_publishes_what_changed_since_last_night():
    import yaml

    from tests.conftest import ROOT

    workflow = yaml.safe_load((ROOT / "examples" / "github" / "audit.yml").read_text())
    runs = " ".join(str(s.get("run", s.get("uses", ""))) for s in workflow["jobs"]["nightly"]["steps"])
    assert "actions/cache/restore@v4" in runs and "actions/cache/save@v4" in runs
    assert 'audit diff "yesterday/$env.json" ".audit/$env.json" --format markdown' in runs
    assert "GITHUB_STEP_SUMMARY" in runs
