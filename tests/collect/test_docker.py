"""Docker: every compose port syntax, interpolation, the public corpus, and `docker inspect`."""

from __future__ import annotations

import json
import textwrap

import msgspec
import pytest

from auditor.collect.host import docker
from auditor.model.snapshot import PublishedPort, Redactor
from tests.conftest import SHARED

CORPUS = sorted((SHARED / "corpus" / "compose").glob("*.yml"))


def P(host_port, container_port, host_ip=None, protocol="tcp", file="", line=0):
    return PublishedPort(host_ip=host_ip, host_port=host_port, container_port=container_port, protocol=protocol,
                         file=str(file), line=line)


@pytest.mark.parametrize("spec,expected", [
    ("3000", [P(None, 3000)]),
    (3000, [P(None, 3000)]),
    ("4000:3000", [P(4000, 3000)]),
    ("127.0.0.1:4000:3000", [P(4000, 3000, "127.0.0.1")]),
    ("[::1]:8080:80", [P(8080, 80, "::1")]),
    ("53:53/udp", [P(53, 53, protocol="udp")]),
    ("9090-9091:8080-8081", [P(9090, 8080), P(9091, 8081)]),
    ("3001-3002", [P(None, 3001), P(None, 3002)]),
    ("6005-6006:80", [P(6005, 80), P(6006, 80)]),
    ({"target": 80, "published": "8080", "host_ip": "127.0.0.1", "protocol": "tcp", "mode": "host"},
     [P(8080, 80, "127.0.0.1")]),
    ({"target": 3000}, [P(None, 3000)]),
])
def test_port_syntaxes(spec, expected):
    assert docker.parse_port(spec, "f.yml: service web") == expected


@pytest.mark.parametrize("spec,message", [
    ("99999:80", "port '99999' is not a number from 1 to 65535"),
    ("abc", "port 'abc' is not a number"),
    ("1:2:3:4", "is not [HOST_IP:][HOST:]CONTAINER"),
    ("3005-3001:80", "runs backwards"),
    ("8000-8001:80-82", "maps 2 host ports to 3"),
    (True, "neither a string"),
])
def test_bad_ports_name_the_file_and_service(spec, message):
    with pytest.raises(docker.DockerError) as error:
        docker.parse_port(spec, "f.yml:3: service web")
    assert str(error.value).startswith("f.yml:3: service web: ")
    assert message in str(error.value)


def compose(tmp_path, text: str, env: str | None = None):
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent(text))
    if env is not None:
        (tmp_path / ".env").write_text(env)
    return tmp_path / "docker-compose.yml"


def test_interpolation_from_dot_env_with_defaults_and_shell_overrides(tmp_path):
    path = compose(tmp_path, """\
        services:
          app-green:
            image: "web:${TAG:-latest}"
            ports: ["${BIND:-127.0.0.1}:${GREEN_PORT}:3000", "$$HOME:1"]
            environment: {PORT: "${PORT-3000}"}
        """, env="GREEN_PORT=4000\nTAG='1.43.0'\n")
    with pytest.raises(docker.DockerError, match="port '\\$HOME' is not a number"):
        docker.parse_compose(path, environ={})
    path.write_text(path.read_text().replace(', "$$HOME:1"', ""))
    (container,) = docker.parse_compose(path, environ={"BIND": "0.0.0.0"})
    assert container.image == "web:1.43.0"
    assert container.ports == [P(4000, 3000, "0.0.0.0", file=path, line=4)]
    assert container.environment == {"PORT": "3000"}
    assert (container.service, container.line, container.running) == ("app-green", 2, None)


def test_required_variable_error_names_the_service(tmp_path):
    path = compose(tmp_path, "services:\n  db:\n    image: \"pg:${PG_TAG:?set PG_TAG}\"\n")
    with pytest.raises(docker.DockerError, match=r"docker-compose.yml:2: service db: required variable PG_TAG"):
        docker.parse_compose(path, environ={})


def test_unquoted_port_is_not_a_base_60_number(tmp_path):
    path = compose(tmp_path, "services:\n  proxy:\n    image: nginx\n    ports:\n      - 80:80\n")
    assert docker.parse_compose(path, environ={})[0].ports == [P(80, 80, file=path, line=5)]


def test_env_values_are_redacted_except_the_allowlist(tmp_path):
    path = compose(tmp_path, "services:\n  app:\n    image: a\n    environment:\n      - PORT=3000\n"
                             "      - STRIPE_KEY=sk_live_abc\n")
    assert docker.parse_compose(path, Redactor("k"), environ={})[0].environment["STRIPE_KEY"].startswith("hmac:")
    assert "sk_live_abc" not in msgspec.json.encode(docker.parse_compose(path, Redactor("k"), environ={})[0]).decode()


@pytest.mark.parametrize("text,message", [
    ("services: [\n", "invalid YAML"),
    ("- a\n", "not a compose file"),
    ("services:\n  web:\n    image: x\n    portz: [80]\n", "services.web: 'portz' does not match"),
    ("services:\n  web:\n    ports: {a: 1}\n", "services.web.ports"),
])
def test_invalid_compose_files_are_one_precise_error(tmp_path, text, message):
    path = compose(tmp_path, text)
    with pytest.raises(docker.DockerError) as error:
        docker.parse_compose(path, environ={})
    assert str(path) in str(error.value) and message in str(error.value)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_corpus_file_is_read_or_refused_clearly(path):
    try:
        containers = docker.parse_compose(path, environ={})
    except docker.DockerError as error:
        # the reasons `docker compose config` refuses a file for, naming it
        assert str(path) in str(error) and ("required variable" in str(error) or "which does not exist" in str(error)
                                            or "no such file" in str(error)
                                            or "depends on undefined service" in str(error)), error
        return
    assert all(c.service for c in containers)


def test_corpus_block_scalar_ports_in_env_are_not_compose_ports():
    (web,) = docker.parse_compose(SHARED / "corpus" / "compose" / "14-nginx-proxy-expose-multiport-block-scalar.yml",
                                  environ={})
    assert web.ports == []
    assert web.expose == [81, 82, 83, 84, 881, 882, 883, 884]


def test_demo_compose_files_follow_the_compose_specification(tmp_path):
    import jsonschema
    import yaml

    from auditor.fixtures import estates

    schema = json.loads((SHARED / "schemas" / "compose-spec.json").read_text())
    for env in estates.INCIDENT:
        estates.write_hosts(tmp_path, env)
        data = yaml.safe_load((tmp_path / "envs" / env.name / "docker-compose.yml").read_text())
        jsonschema.Draft7Validator(schema).validate(data)


INSPECT = [
    {"Id": "a1", "Name": "/web-app-blue-1", "State": {"Running": True},
     "Config": {"Image": "web:1.42.0", "Env": ["PORT=3000", "SECRET_KEY=abc123"],
                "Labels": {"com.docker.compose.service": "app-blue"}, "ExposedPorts": {"3000/tcp": {}}},
     "HostConfig": {"PortBindings": {"3000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "3000"}]}, "Privileged": False},
     "NetworkSettings": {"Ports": {"3000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "3000"}]}}},
    {"Id": "b2", "Name": "/web-app-green-1", "State": {"Running": False},
     "Config": {"Image": "web:1.43.0", "Env": [], "Labels": {"com.docker.compose.service": "app-green"},
                "ExposedPorts": {"3000/tcp": {}, "9229/tcp": {}}},
     "HostConfig": {"PortBindings": {"3000/tcp": [{"HostIp": "", "HostPort": "4000"}]}, "Privileged": True},
     "NetworkSettings": {"Ports": {}}},
]


def test_docker_inspect_running_state_and_ports_kept_by_stopped_containers():
    blue, green = docker.parse_inspect(json.dumps(INSPECT), "inspect.json", Redactor(None))
    assert (blue.name, blue.service, blue.running, blue.ports) == ("web-app-blue-1", "app-blue", True,
                                                                  [P(3000, 3000, "127.0.0.1")])
    assert blue.environment == {"PORT": "3000", "SECRET_KEY": "<redacted>"}
    assert (green.running, green.ports, green.expose, green.privileged) == (False, [P(4000, 3000)], [9229], True)


@pytest.mark.parametrize("text,message", [
    ("{", "not docker inspect JSON"), ('{"a": 1}', "expected the JSON list"), ("[1]", "expected container objects"),
])
def test_bad_inspect_output(text, message):
    with pytest.raises(docker.DockerError, match=message):
        docker.parse_inspect(text, "inspect.json")


def test_live_slot_comes_from_inspect_running_state():
    from auditor.model.snapshot import DockerFacts, Host
    from auditor.topology import HostView

    containers = docker.parse_inspect(json.dumps(INSPECT), "inspect.json")
    host = Host(name="web", docker=DockerFacts(containers=containers, slots={"blue": "app-blue", "green": "app-green"}))
    assert HostView(host).live == ("blue", "it is the only running slot")
