"""Commands: argv without a shell, a timeout, only with --allow-commands, per instance, redacted."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from auditor import collect, config
from auditor.model import snapshot
from auditor.collect.host import commands
from auditor.model.snapshot import Redactor
from tests.collect.test_docker import INSPECT
from tests.test_cli import audit


def test_argv_is_never_given_to_a_shell():
    out = commands.run(["echo", "a; echo injected", "$HOME"], "test", Redactor(None))
    assert out == "a; echo injected $HOME\n"


def test_timeout_and_missing_binary_and_failure_are_one_redacted_line():
    with pytest.raises(commands.CommandError, match="did not finish within 0.3 s"):
        commands.run(["sleep", "5"], "host web: nginx.command", Redactor(None), timeout=0.3)
    with pytest.raises(commands.CommandError, match="command not found: no-such-binary"):
        commands.run(["no-such-binary"], "host web: nginx.command", Redactor(None))
    with pytest.raises(commands.CommandError) as error:
        commands.run([sys.executable, "-c", "import sys; sys.stderr.write('login failed PASSWORD=hunter2\\n'); "
                                            "sys.exit(3)"], "host web: docker.command", Redactor(None))
    assert "exited 3 (stderr <redacted>)" in str(error.value) and "hunter2" not in str(error.value)
    assert "\n" not in str(error.value)


def test_expansion_names_the_instance():
    facts = commands.HostFacts("i-123", "10.0.0.5")
    assert commands.expand(["ssh", "{private_ip}", "docker inspect --host {instance_id}"], facts) == [
        "ssh", "10.0.0.5", "docker inspect --host i-123"]
    assert commands.per_instance(["ssh", "{private_ip}"]) and not commands.per_instance(["cat", "x"])


@pytest.fixture
def command_config(aws, tmp_path):
    """The incident's prod, its containers read per instance by a command."""
    from auditor.fixtures import estates

    path = estates.build_incident(tmp_path, aws)
    data = yaml.safe_load(path.read_text())
    data["environments"]["prod"]["hosts"][0]["docker"] = {
        "command": ["cat", str(tmp_path / "inspect-{instance_id}.json")],
        "slots": {"blue": {"service": "app-blue"}, "green": {"service": "app-green"}},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_commands_need_allow_commands_and_run_once_per_instance(command_config, tmp_path):
    assert_denied = audit("snapshot", "prod", "-c", str(command_config), "-o", str(tmp_path / "p.json"))
    assert assert_denied.returncode == 2
    assert "docker.command runs a command; commands run only with --allow-commands" in assert_denied.stderr
    cfg = config.load(command_config)
    instances = sorted(i.id for i in collect.collect(cfg, "prod", collect.CollectOptions(
        allow_commands=True, allow_partial=True)).resources.instances)
    # a half-switched fleet: green runs on the second instance
    second = [dict(c, State={"Running": not c["State"]["Running"]}) for c in INSPECT]
    (tmp_path / f"inspect-{instances[0]}.json").write_text(json.dumps(INSPECT))
    (tmp_path / f"inspect-{instances[1]}.json").write_text(json.dumps(second))
    proc = audit("snapshot", "prod", "-c", str(command_config), "-o", str(tmp_path / "p.json"), "--allow-commands")
    assert proc.returncode == 0, proc.stderr
    hosts = snapshot.load(tmp_path / "p.json").resources.hosts
    assert [h.instance_id for h in hosts] == instances
    running = [[c.service for c in h.docker.containers if c.running] for h in hosts]
    assert running == [["app-blue"], ["app-green"]]


def test_offline_never_runs_a_command_and_says_what_was_not_collected(command_config, tmp_path):
    proc = audit("snapshot", "prod", "-c", str(command_config), "-o", str(tmp_path / "p.json"), "--offline",
                 "--allow-commands")
    assert proc.returncode == 0, proc.stderr
    snap = snapshot.load(tmp_path / "p.json")
    assert snap.resources.load_balancers == []  # no AWS either
    assert snap.resources.hosts[0].not_requested == {"docker": "--offline never runs commands"}
    assert snap.resources.hosts[0].uncollected == {}
