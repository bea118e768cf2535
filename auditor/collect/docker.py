"""Docker: containers and their published ports, from compose files or `docker inspect` JSON."""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from auditor.errors import AuditError, read_text
from auditor.snapshot import Container, PublishedPort, Redactor


class DockerError(AuditError):
    """A compose file or inspect output that cannot be read; the message names file and service."""


# --- YAML as compose reads it -------------------------------------------------------------------------


class _ComposeLoader(yaml.SafeLoader):
    """YAML 1.2 integers: unquoted `80:80` is the string "80:80", not PyYAML's base-60 4880."""


_ComposeLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
# compose's own tags (`!reset`, `!override`) carry no port facts: read them as their plain value.
_ComposeLoader.add_multi_constructor("!", lambda loader, suffix, node: (
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
    else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
    else loader.construct_mapping(node)))


_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def interpolate(text: str, env: dict[str, str], where: str) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `$VAR`, `$$`."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expression = match["braced"] if match["braced"] is not None else match["plain"]
        found = re.match(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", expression, re.S)
        if not found:
            raise DockerError(f"{where}: invalid interpolation ${{{expression}}}")
        name, op, arg = found["name"], found["op"], found["arg"] or ""
        value = env.get(name)
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return interpolate(arg, env, where) if unset else value or ""
        if op in ("?", ":?"):
            if unset:
                raise DockerError(f"{where}: required variable {name} is not set ({arg or 'no message'})")
            return value or ""
        if op in ("+", ":+"):
            return "" if unset else interpolate(arg, env, where)
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolate_tree(node: Any, env: dict[str, str], where: str) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, list):
        return [_interpolate_tree(v, env, where) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, where) for k, v in node.items()}
    return node


# --- ports ------------------------------------------------------------------------------------------


def _port_number(text: str, where: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise DockerError(f"{where}: port {text!r} is not a number from 1 to 65535")
    return int(text)


def _port_range(text: str, where: str) -> list[int]:
    start, _, end = text.partition("-")
    first = _port_number(start, where)
    last = _port_number(end, where) if end else first
    if last < first:
        raise DockerError(f"{where}: port range {text!r} runs backwards")
    return list(range(first, last + 1))


def parse_port(spec: Any, where: str) -> list[PublishedPort]:
    """One `ports:` entry, short or long syntax, as published ports."""
    if isinstance(spec, dict):
        if "target" not in spec:
            raise DockerError(f"{where}: long-syntax port needs target")
        targets = _port_range(str(spec["target"]), where)
        published = spec.get("published")
        hosts = _port_range(str(published), where) if published not in (None, "") else [None] * len(targets)
        protocol = str(spec.get("protocol") or "tcp")
        if len(hosts) != len(targets):
            hosts = [hosts[0]] * len(targets) if len(targets) == 1 else hosts
        host_ip = spec.get("host_ip") or None
        if host_ip is not None and not isinstance(host_ip, str):
            raise DockerError(f"{where}: host_ip {host_ip!r} is not an address")
        return [PublishedPort(host_ip=host_ip, host_port=h, container_port=t, protocol=protocol)
                for h, t in zip(hosts, targets)]
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise DockerError(f"{where}: port {spec!r} is neither a string, a number nor a mapping")
    text, _, protocol = str(spec).partition("/")
    host_ip = None
    if text.startswith("["):  # [::1]:80:80
        host_ip, _, text = text[1:].partition("]")
        text = text.lstrip(":")
    parts = text.split(":")
    if len(parts) == 3:
        host_ip, host, container = parts
    elif len(parts) == 2:
        host, container = parts
    elif len(parts) == 1:
        host, container = "", parts[0]
    else:
        raise DockerError(f"{where}: port {spec!r} is not [HOST_IP:][HOST:]CONTAINER[/PROTOCOL]")
    containers = _port_range(container, where)
    hosts: list[int | None] = _port_range(host, where) if host else [None] * len(containers)
    if len(hosts) != len(containers):
        if len(containers) != 1:
            raise DockerError(f"{where}: port {spec!r} maps {len(hosts)} host ports to {len(containers)}")
        # "6005-6015:80": one of the host range per replica; each may be the one published.
        containers = containers * len(hosts)
    return [PublishedPort(host_ip=host_ip or None, host_port=h, container_port=c, protocol=protocol or "tcp")
            for h, c in zip(hosts, containers)]


def _expose(values: Any, where: str) -> list[int]:
    ports: list[int] = []
    for value in values or []:
        text = str(value).split("/")[0]
        ports += _port_range(text, where)
    return ports


def _volume_source(volume: Any) -> str:
    """What a `volumes:` entry mounts: `/var/run/docker.sock:/var/run/docker.sock:ro` → its source."""
    if isinstance(volume, dict):
        return str(volume.get("source") or "")
    return str(volume).split(":")[0]


def _environment(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    out = {}
    for item in value or []:
        name, _, val = str(item).partition("=")
        out[name] = val
    return out


# --- compose -------------------------------------------------------------------------------------------

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "compose-spec.json"


@functools.cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def _validate(data: Any, path: Path, lines: dict[str, int]) -> None:
    """The Compose Specification's own schema, so a malformed file gets a precise error, not a guess."""
    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is None:
        return
    location = list(error.absolute_path)
    service = str(location[1]) if len(location) > 1 and location[0] == "services" else None
    line = f":{lines[service]}" if service in lines else ""
    key = ".".join(str(p) for p in location) or "(top level)"
    raise DockerError(f"{path}{line}: {key}: {error.message}")



def _service_lines(text: str) -> dict[str, int]:
    """Line of each service's key, for evidence that points at the file."""
    try:
        root = yaml.compose(text, Loader=_ComposeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "services" and isinstance(value, yaml.MappingNode):
                for service_key, _ in value.value:
                    lines[str(service_key.value)] = service_key.start_mark.line + 1
    return lines


def parse_compose(path: str | Path, redactor: Redactor | None = None, environ: dict[str, str] | None = None,
                  ) -> list[Container]:
    """The services of a compose file as containers (running state unknown: a file says what should run)."""
    path = Path(path)
    redactor = redactor or Redactor(None)
    text = read_text(path, "compose file", DockerError)
    try:
        data = yaml.load(text, Loader=_ComposeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise DockerError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("services", {}), dict):
        raise DockerError(f"{path}: not a compose file (expected a mapping with services:)")
    lines = _service_lines(text)
    _validate(data, path, lines)
    # compose reads .env beside the file; the shell's environment wins over it.
    env = {**read_env_file(path.parent / ".env"), **(os.environ if environ is None else environ)}
    project = str(data.get("name") or path.resolve().parent.name).lower()
    containers = []
    for service, spec in (data.get("services") or {}).items():
        where = f"{path}:{lines.get(str(service), 0)}: service {service}"
        spec = _interpolate_tree(spec or {}, env, where)
        if not isinstance(spec, dict):
            raise DockerError(f"{where}: expected a mapping")
        ports = [p for entry in spec.get("ports") or [] for p in parse_port(entry, where)]
        containers.append(Container(
            name=str(spec.get("container_name") or f"{project}-{service}-1"),
            service=str(service),
            image=str(spec.get("image") or ""),
            running=None,
            ports=ports,
            expose=_expose(spec.get("expose"), where),
            environment=redactor.mapping(_environment(spec.get("environment"))),
            privileged=bool(spec.get("privileged")),
            volumes=[_volume_source(v) for v in spec.get("volumes") or []],
            file=str(path),
            line=lines.get(str(service), 0),
        ))
    return containers


# --- docker inspect ---------------------------------------------------------------------------------------


def _obj(value: Any, where: str, key: str) -> dict[str, Any]:
    """A JSON object field of `docker inspect` output (absent or null: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DockerError(f"{where}: {key} should be an object, not {type(value).__name__}")
    return value


def _list(value: Any, where: str, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DockerError(f"{where}: {key} should be a list, not {type(value).__name__}")
    return value


def _bindings(ports: Any, where: str, key: str) -> list[PublishedPort]:
    out = []
    for name, bindings in _obj(ports, where, key).items():
        number, _, protocol = str(name).partition("/")
        container_port = _port_number(number, where)
        if not bindings:
            out.append(PublishedPort(container_port=container_port, protocol=protocol or "tcp"))
            continue
        for binding in _list(bindings, where, f"{key}[{name}]"):
            binding = _obj(binding, where, f"{key}[{name}] entries")
            host_port = str(binding.get("HostPort") or "")
            out.append(PublishedPort(host_ip=str(binding.get("HostIp") or "") or None,
                                     host_port=_port_number(host_port, where) if host_port else None,
                                     container_port=container_port, protocol=protocol or "tcp"))
    return out


def parse_inspect(text: str, source: str, redactor: Redactor | None = None) -> list[Container]:
    """`docker inspect` JSON: running state, and published ports even for stopped containers."""
    redactor = redactor or Redactor(None)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DockerError(f"{source}: not docker inspect JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, list):
        raise DockerError(f"{source}: expected the JSON list `docker inspect` prints")
    containers = []
    for item in data:
        if not isinstance(item, dict):
            raise DockerError(f"{source}: expected container objects in the list")
        name = str(item.get("Name") or item.get("Id") or "").lstrip("/")
        where = f"{source}: container {name}"
        config = _obj(item.get("Config"), where, "Config")
        state = _obj(item.get("State"), where, "State")
        host_config = _obj(item.get("HostConfig"), where, "HostConfig")
        running = bool(state.get("Running"))
        # A stopped container has no NetworkSettings.Ports but keeps HostConfig.PortBindings.
        live_ports = _obj(item.get("NetworkSettings"), where, "NetworkSettings").get("Ports")
        ports = (_bindings(live_ports, where, "NetworkSettings.Ports") if running and live_ports
                 else _bindings(host_config.get("PortBindings"), where, "HostConfig.PortBindings"))
        published = {p.container_port for p in ports}
        exposed = [int(k.split("/")[0]) for k in _obj(config.get("ExposedPorts"), where, "Config.ExposedPorts")
                   if k.split("/")[0].isdigit()]
        labels = _obj(config.get("Labels"), where, "Config.Labels")
        mounts = [_obj(m, where, "Mounts entries") for m in _list(item.get("Mounts"), where, "Mounts")]
        containers.append(Container(
            name=name,
            service=str(labels.get("com.docker.compose.service") or name),
            image=str(config.get("Image") or item.get("Image") or ""),
            running=running,
            ports=ports,
            expose=sorted(p for p in exposed if p not in published and 0 < p <= 65535),
            environment=redactor.mapping(_environment(_list(config.get("Env"), where, "Config.Env"))),
            privileged=bool(host_config.get("Privileged")),
            volumes=[str(m.get("Source") or m.get("Name") or "") for m in mounts],
            file=source,
        ))
    return containers
