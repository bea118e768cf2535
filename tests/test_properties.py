"""Property-based: no input makes the loaders and parsers raise anything but the tool's own error."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor import config
from auditor.model import snapshot
from auditor.collect.host import docker, nginx
from auditor.errors import AuditError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=20)


def tree_of(keys: list[str], leaves: st.SearchStrategy = scalars) -> st.SearchStrategy:
    """Nested lists and mappings whose keys are the ones a loader looks for: deep inputs, not noise."""
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(keys), inner, max_size=5), max_leaves=30)


def survives(loader, name: str, text: str) -> None:
    """A file with this text makes the loader succeed or raise the tool's own error, nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text)
        try:
            loader(path)
        except AuditError:
            pass


KEYS = ["version", "environments", "dev", "hosts", "aws", "region", "name", "match", "tags", "nginx", "docker",
        "compose", "slots", "blue", "service", "live", "switch", "kind", "rules", "diff", "suppressions", "path"]
config_like = tree_of(KEYS)


@SETTINGS
@given(config_like)
def test_config_raises_only_config_errors(data):
    try:
        config.parse(data, "audit.yaml", Path("/tmp"))
    except AuditError as error:
        assert "\n" not in str(error)


@SETTINGS
@given(st.text(max_size=200))
def test_config_files_of_any_text(text):
    survives(config.load, "audit.yaml", text)


SNAPSHOT_KEYS = ["schema_version", "environment", "resources", "sources", "load_balancers", "target_groups",
                 "arn", "name", "port", "hosts", "docker", "containers", "ports", "host_port", "status"]
snapshot_like = tree_of(SNAPSHOT_KEYS)


@SETTINGS
@given(snapshot_like)
def test_snapshot_loader_raises_only_snapshot_errors(data):
    try:
        snapshot.from_data(data)
    except AuditError:
        pass


@SETTINGS
@given(st.text(max_size=300))
def test_snapshot_files_of_any_text(text):
    survives(snapshot.load, "s.json", text)


port_text = st.text(alphabet=string.digits + ":-/[].abcudptx ", max_size=24)
long_port = st.dictionaries(st.sampled_from(["target", "published", "host_ip", "protocol", "mode"]),
                            scalars | port_text, max_size=5)


@SETTINGS
@given(port_text | st.integers(-5, 10**6) | long_port | scalars)
def test_compose_ports_raise_only_docker_errors(spec):
    try:
        for port in docker.parse_port(spec, "f.yml: service web"):
            assert port.container_port and 0 < port.container_port <= 65535
    except AuditError:
        pass


@SETTINGS
@given(st.text(max_size=60), st.dictionaries(st.sampled_from(["A", "B", "PORT"]), st.text(max_size=5)))
def test_interpolation_raises_only_docker_errors(text, env):
    try:
        docker.interpolate(text, env, "f.yml")
    except AuditError:
        pass


COMPOSE_KEYS = ["image", "ports", "expose", "environment", "volumes", "container_name", "privileged", "target",
                "published", "host_ip", "protocol", "source", "name", "services"]
compose_like = tree_of(COMPOSE_KEYS, scalars | port_text)


@SETTINGS
@given(compose_like)
def test_compose_files_of_any_shape(tree):
    text = yaml.safe_dump({"services": tree} if isinstance(tree, dict) else tree)
    survives(lambda path: docker.parse_compose(path, environ={}), "docker-compose.yml", text)


NGINX_WORDS = ["server", "listen", "location", "proxy_pass", "include", "set", "upstream", "return", "http",
               "{", "}", ";", "80", "$x", "/", "=", "~", "alias", "add_header", "#", "\n", " ", "'", '"', "\\"]


@SETTINGS
@given(st.lists(st.sampled_from(NGINX_WORDS), max_size=40))
def test_nginx_configs_of_any_shape(words):
    survives(nginx.parse_file, "nginx.conf", " ".join(words))


@SETTINGS
@given(st.lists(st.sampled_from(NGINX_WORDS + ["# configuration file /etc/nginx/nginx.conf:\n"]), max_size=40))
def test_nginx_dumps_of_any_shape(words):
    try:
        nginx.parse_dump(" ".join(words))
    except AuditError:
        pass


INSPECT_KEYS = ["Name", "Id", "Config", "State", "HostConfig", "NetworkSettings", "Ports", "PortBindings", "Env",
                "Labels", "Running", "Image", "Mounts", "ExposedPorts", "3000/tcp", "HostIp", "HostPort", "Source",
                "Privileged", "com.docker.compose.service"]
inspect_like = tree_of(INSPECT_KEYS)


@SETTINGS
@given(st.lists(inspect_like, max_size=3) | inspect_like)
def test_inspect_output_of_any_json_shape(tree):
    try:
        docker.parse_inspect(json.dumps(tree), "inspect.json")
    except AuditError:
        pass
