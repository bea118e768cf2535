"""AWS faults through a proxy of our own between boto3 and moto: throttling, 5xx and resets are
retried to the same snapshot; AccessDenied is one line naming the IAM action, or with
--allow-partial a partial snapshot whose rules say what they could not decide; an interrupted
collection never replaces the previous snapshot."""

from __future__ import annotations

import json
import os
import signal
import socket
import re
import subprocess
import sys
import threading
import time

import pytest
import yaml

from auditor import collect, config
from auditor.model import snapshot
from auditor.fixtures import estates
from tests.faults import RESET, FaultProxy, first, query_error
from tests.test_cli import audit


@pytest.fixture
def built(aws, tmp_path):
    estates.build_incident(tmp_path, aws)
    return tmp_path


def point_at(root, endpoint: str) -> str:
    path = root / "audit.yaml"
    data = yaml.safe_load(path.read_text())
    for env in data["environments"].values():
        env["aws"]["endpoint_url"] = endpoint
    path.write_text(yaml.safe_dump(data))
    return str(path)


def resources(path_or_snap) -> dict:
    snap = snapshot.load(path_or_snap) if not isinstance(path_or_snap, snapshot.Snapshot) else path_or_snap
    return snapshot.to_data(snap)["resources"]


def test_throttling_5xx_and_resets_are_retried_to_the_same_snapshot(built, aws):
    clean = collect.collect(config.load(built / "audit.yaml"), "prod", collect.CollectOptions())
    with FaultProxy(aws) as proxy:
        proxy.rules += [first(3, "DescribeTargetHealth", query_error("Throttling", "Rate exceeded")),
                        first(2, "DescribeListeners", query_error("ServiceUnavailable", "try again", 503)),
                        first(1, "DescribeInstances", RESET),
                        first(2, "DescribeSecurityGroups", query_error("RequestLimitExceeded", "slow down", 503))]
        faulty = collect.collect(config.load(point_at(built, proxy.url)), "prod", collect.CollectOptions())
    assert resources(faulty) == resources(clean)
    assert all(s.status == "ok" for s in faulty.sources.values())


@pytest.mark.parametrize("action,iam", [("DescribeTargetHealth", "elasticloadbalancing:DescribeTargetHealth"),
                                        ("DescribeSecurityGroups", "ec2:DescribeSecurityGroups")])
def test_access_denied_is_one_line_naming_the_iam_action(built, aws, tmp_path, action, iam):
    with FaultProxy(aws) as proxy:
        proxy.rules.append(first(100, action, query_error("AccessDenied", "not authorized", 403)))
        config_path = point_at(built, proxy.url)
        out = tmp_path / "prod.json"
        out.write_text("previous")
        proc = audit("snapshot", "prod", "-c", config_path, "-o", str(out))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert f"was denied: grant {iam}" in proc.stderr
        assert out.read_text() == "previous"
        assert audit("snapshot", "prod", "-c", config_path, "-o", str(out), "--allow-partial").returncode == 0
    snap = snapshot.load(out)
    status = snap.sources["aws:default/us-east-1"]
    assert status.status == "partial" and [e.code for e in status.errors] == ["AccessDenied"]
    report = json.loads(audit("check", str(out), "--allow-partial", "--format", "json").stdout)
    skipped = {s["rule_id"] for s in report["skipped"]}
    assert "P106" in skipped  # both operations feed the security-group path rule
    assert "P106" not in {f["rule_id"] for f in report["findings"]}
    gate = audit("gate", str(out), "--slot", "blue")
    assert gate.returncode == 2 and "was partial" in gate.stderr  # the gate refuses partial data


def test_interrupted_collection_stops_within_two_seconds_and_keeps_the_previous_snapshot(built, aws, tmp_path):
    with FaultProxy(aws) as proxy:
        proxy.rules.append(first(100, "DescribeTargetHealth", 20.0))  # a response that hangs
        config_path = point_at(built, proxy.url)
        out = tmp_path / "prod.json"
        out.write_text("previous")
        proc = subprocess.Popen([sys.executable, "-m", "auditor", "snapshot", "prod", "-c", config_path,
                                 "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ})
        time.sleep(3)
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - interrupted
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    assert stopped_after < 2, f"Ctrl-C took {stopped_after:.1f} s"
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".prod.json")] == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def test_a_dead_endpoint_fails_within_the_timeout_naming_it(built, tmp_path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    out = tmp_path / "prod.json"
    out.write_text("previous")
    started = time.monotonic()
    proc = audit("snapshot", "prod", "-c", point_at(built, endpoint), "-o", str(out), "--timeout", "5")
    took = time.monotonic() - started
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    # Refused connections are retried a few times, not for the whole --timeout: it fails sooner.
    assert f'Could not connect to the endpoint URL: "{endpoint}/"' in proc.stderr
    assert "aws:default/us-east-1 could not be read" in proc.stderr and "partial" not in proc.stderr
    assert took < 5 + 2 + 1.5, f"took {took:.1f} s"  # T + 2 s, and the interpreter's start
    assert out.read_text() == "previous"


def test_a_hung_endpoint_fails_within_the_timeout(built, aws, tmp_path):
    with FaultProxy(aws) as proxy:
        proxy.rules.append(first(100, "DescribeLoadBalancers", 30.0))
        started = time.monotonic()
        proc = audit("snapshot", "prod", "-c", point_at(built, proxy.url), "-o", str(tmp_path / "p.json"),
                     "--timeout", "4")
        took = time.monotonic() - started
    assert proc.returncode == 2 and "did not finish within --timeout 4 s" in proc.stderr, proc.stderr
    assert took < 4 + 2 + 1.5, f"took {took:.1f} s"
    assert not (tmp_path / "p.json").exists()


def test_a_response_slower_than_the_read_timeout_is_retried(built, aws):
    clean = collect.collect(config.load(built / "audit.yaml"), "prod", collect.CollectOptions())
    with FaultProxy(aws) as proxy:
        proxy.rules.append(first(1, "DescribeTargetHealth", 4.0))  # past the 3 s read timeout of --timeout 9
        faulty = collect.collect(config.load(point_at(built, proxy.url)), "prod", collect.CollectOptions(timeout=9))
    assert resources(faulty) == resources(clean)


def test_two_snapshot_runs_writing_one_file_leave_one_valid_file(built, tmp_path):
    out = tmp_path / "out" / "prod.json"
    runs = [subprocess.Popen([sys.executable, "-m", "auditor", "snapshot", "prod", "-c", str(built / "audit.yaml"),
                              "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    assert [run.wait(timeout=60) for run in runs] == [0, 0]
    assert snapshot.load(out).resources.load_balancers[0].name == "web-prod-alb"
    assert [p.name for p in out.parent.iterdir()] == ["prod.json"]


def test_each_read_starts_when_the_ids_it_needs_are_known(built, aws):
    """Instances wait for target health only, not for the listeners' rules; ECS waits for nothing."""
    slow = {"DescribeRules": 1.0, "DescribeLoadBalancers": 1.0}  # seconds the proxy holds each
    sent: list[tuple[float, str]] = []

    def record(body: bytes) -> float | None:
        # ELB and EC2 name the action in the form body; ECS speaks JSON (its action is in a header).
        action = "ecs" if body.startswith(b"{") else next(
            (p.split("=", 1)[1] for p in body.decode().split("&") if p.startswith("Action=")), "?")
        sent.append((time.monotonic(), action))
        return slow.get(action)

    with FaultProxy(aws) as proxy:
        proxy.rules.append(record)
        snap = collect.collect(config.load(point_at(built, proxy.url)), "prod", collect.CollectOptions())
    assert snap.resources.instances and snap.resources.listener_rules
    first_at = {action: min(t for t, a in sent if a == action) for _, action in sent}
    rules_answered = max(t for t, a in sent if a == "DescribeRules") + slow["DescribeRules"]
    listed = first_at["DescribeLoadBalancers"] + slow["DescribeLoadBalancers"]
    # Phase by phase, instances were read after every rule was in, and ECS after the load balancers.
    assert first_at["DescribeInstances"] < rules_answered - 0.5, sent
    assert first_at["ecs"] < listed - 0.7, sent


class StalledEndpoint:
    """An endpoint that accepts every connection and never answers (a hung proxy, a black-holed VPC
    endpoint). Closing it closes the connections, so the threads still waiting on them end."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.server.accept()[0])
            except OSError:
                return

    def __enter__(self) -> StalledEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


def test_a_stalled_endpoint_ends_the_collection_naming_it_and_says_what_it_awaits(built, monkeypatch):
    from auditor.collect.aws import api as aws_module
    from auditor.errors import CollectionStopped

    # The contract's 90 s and 10 s, shortened: the same code path, in seconds of the suite.
    monkeypatch.setattr(aws_module, "STALLED_AFTER", 2.0)
    monkeypatch.setattr(collect, "HEARTBEAT", 0.5)
    lines: list[str] = []
    with StalledEndpoint() as endpoint:
        cfg = config.load(point_at(built, endpoint.url))
        with pytest.raises(CollectionStopped) as stopped:
            collect.collect(cfg, "prod", collect.CollectOptions(heartbeat=lines.append))
    assert re.fullmatch(rf"AWS at {endpoint.url} has not answered (elbv2|ec2|ecs):\w+ in 2 s: is it up and "
                        "reachable\\?", str(stopped.value)), str(stopped.value)
    assert lines and all(re.fullmatch(rf"prod: waiting for AWS at {endpoint.url}: \w+:\w+( and \d+ more "
                                      r"requests)?, \d+ s \(no answer yet\)", line) for line in lines), lines


def test_a_stalled_endpoint_tells_a_log_what_it_waits_for_and_exits_2(built, tmp_path):
    # The real command, its constants shortened as above, stderr a file (a nightly job's log).
    script = ("import sys; from auditor import collect; from auditor.collect.aws import api as aws; "
              "aws.STALLED_AFTER = 3.0; collect.HEARTBEAT = 1.0; from auditor.cli import run; "
              "sys.argv = ['audit', *sys.argv[1:]]; run()")
    with StalledEndpoint() as endpoint:
        log = tmp_path / "log"
        with open(log, "w") as stderr:
            proc = subprocess.run([sys.executable, "-c", script, "snapshot", "prod", "-c", point_at(built, endpoint.url),
                                   "-o", str(tmp_path / "prod.json")], stderr=stderr, text=True, timeout=60)
    lines = log.read_text().splitlines()
    assert proc.returncode == 2
    assert lines[0].startswith(f"audit: prod: waiting for AWS at {endpoint.url}: ")
    assert lines[-1].startswith(f"audit: error: AWS at {endpoint.url} has not answered ")
    assert len(lines) >= 3 and not (tmp_path / "prod.json").exists()
