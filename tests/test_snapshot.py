"""Snapshot: deterministic JSON, atomic writes, versions, shards, redaction."""

from __future__ import annotations

import json
import os
import random

import pytest

from auditor.model import snapshot
from auditor.errors import SnapshotError
from tests.conftest import SNAPSHOTS, estate


def test_output_is_deterministic_whatever_the_input_order():
    data = estate("incident-prod")
    shuffled = estate("incident-prod")
    for name in ("instances", "target_health", "security_groups"):
        random.Random(1).shuffle(shuffled["resources"][name])
    shuffled["resources"]["security_groups"][1]["ingress"].reverse()
    assert snapshot.dumps(snapshot.from_data(data)) == snapshot.dumps(snapshot.from_data(shuffled))


def test_round_trip_keeps_every_fact(tmp_path):
    original = snapshot.load(SNAPSHOTS / "incident-prod.json")
    path = tmp_path / "out" / "prod.json"
    snapshot.save(original, path)
    again = snapshot.load(path)
    assert snapshot.dumps(again) == snapshot.dumps(original)
    text = path.read_text()
    assert text.index('"collected_at"') < text.index('"environment"')  # sorted keys


def test_nginx_location_order_is_kept_because_nginx_uses_it():
    data = estate("incident-prod")
    locations = data["resources"]["hosts"][0]["nginx"]["servers"][0]["locations"]
    locations.reverse()
    out = json.loads(snapshot.dumps(snapshot.from_data(data)))
    assert [loc["path"] for loc in out["resources"]["hosts"][0]["nginx"]["servers"][0]["locations"]] == [
        loc["path"] for loc in locations]


def test_newer_schema_is_refused_with_a_clear_error(write_json):
    data = estate("incident-dev")
    data["schema_version"] = 2
    with pytest.raises(SnapshotError, match="schema_version 2 is newer than this audit understands"):
        snapshot.load(write_json(data))


@pytest.mark.parametrize("text,expected", [
    ("", "snapshot file is empty"),
    ('{"schema_version": 1, "environment": "dev"', "not valid JSON"),
    ("[1, 2]", "not a snapshot"),
    ('{"environment": "dev"}', "schema_version missing"),
    ('{"schema_version": 1, "environment": "dev", "resources": {"listeners": [{"arn": "l"}]}}',
     "resources.listeners[0].load_balancer_arn: required key is missing"),
    ('{"schema_version": 1, "environment": "dev", "resources": {"target_groups": [{"arn": "x"}]}}',
     "resources.target_groups[0].name"),
    # A mapping's key is named: the slot whose service is not text.
    ('{"schema_version": 1, "environment": "dev", "resources": {"hosts": [{"name": "web", "docker": '
     '{"slots": {"blue": "app-blue", "green": ["app-green"]}}}]}}',
     "resources.hosts[0].docker.slots.green: expected text, got ['app-green']"),
])
def test_bad_snapshots_are_one_line_errors(tmp_path, text, expected):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SnapshotError) as error:
        snapshot.load(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_failed_write_leaves_the_previous_file_and_no_temp_file(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text("previous")

    with pytest.raises(TypeError):  # the write fails half-way
        snapshot.write_atomic(path, object())  # type: ignore[arg-type]
    assert path.read_text() == "previous"
    assert os.listdir(tmp_path) == ["dev.json"]


def test_merge_joins_shards_and_refuses_other_environments():
    whole = snapshot.from_data(estate("incident-prod"))
    a, b = estate("incident-prod"), estate("incident-prod")
    a["resources"]["instances"] = a["resources"]["instances"][:1]
    b["resources"]["instances"] = b["resources"]["instances"][1:]
    b["sources"]["aws"] = {"status": "partial", "errors": [{"source": "aws", "operation": "DescribeInstances"}],
                           "api_calls": {"elbv2.DescribeLoadBalancers": 2}}
    merged = snapshot.merge([snapshot.from_data(a), snapshot.from_data(b)])
    assert snapshot.to_data(merged)["resources"] == snapshot.to_data(whole)["resources"]
    assert merged.sources["aws"].status == "partial"
    assert merged.sources["aws"].api_calls == {"elbv2.DescribeLoadBalancers": 3}
    with pytest.raises(SnapshotError, match="different environments: dev, prod"):
        snapshot.merge([whole, snapshot.from_data(estate("incident-dev"))])


def test_redaction_is_an_hmac_that_compares_equal_across_snapshots_or_a_marker():
    keyed = snapshot.Redactor("k1")
    assert keyed.value("s3cret") == keyed.value("s3cret")
    assert keyed.value("s3cret").startswith("hmac:") and len(keyed.value("s3cret")) == 17
    assert keyed.value("s3cret") != snapshot.Redactor("k2").value("s3cret")
    assert snapshot.Redactor(None).value("s3cret") == "<redacted>"


def test_redaction_keeps_only_the_allowlisted_names():
    redactor = snapshot.Redactor(None)
    env = redactor.mapping({"PORT": "3000", "NODE_ENV": "production", "DATABASE_URL": "postgres://u:pw@db/x",
                            "STRIPE_KEY": "sk_live_123"})
    assert env == {"PORT": "3000", "NODE_ENV": "production", "DATABASE_URL": "<redacted>",
                   "STRIPE_KEY": "<redacted>"}


def test_free_text_is_scrubbed_of_assignments_key_ids_and_known_secrets():
    redactor = snapshot.Redactor(None)
    text = redactor.text("failed: PASSWORD=hunter2 PORT=3000 key AKIAABCDEFGHIJKLMNOP token xyzzy",
                         known=["xyzzy"])
    assert "hunter2" not in text and "AKIAABCDEFGHIJKLMNOP" not in text and "xyzzy" not in text
    assert "PORT=3000" in text


def test_same_version_snapshots_with_more_facts_stay_readable_and_values_are_coerced():
    data = estate("incident-dev")
    data["resources"]["widgets"] = [{"a": 1}]
    data["resources"]["target_groups"][0]["future_field"] = True
    data["resources"]["target_groups"][0]["health_check"]["port"] = 3000
    data["resources"]["load_balancers"][0]["attributes"] = {"idle_timeout.timeout_seconds": 60,
                                                            "deletion_protection.enabled": False}
    snap = snapshot.from_data(data)
    assert snap.resources.target_groups[0].health_check.port == "3000"
    assert snap.resources.load_balancers[0].attributes == {"idle_timeout.timeout_seconds": "60",
                                                           "deletion_protection.enabled": "false"}
