"""Docker: containers and their published ports, from compose files or `docker inspect` JSON."""

from __future__ import annotations

import functools
import importlib.resources
import json
from pathlib import Path
from typing import Any

import msgspec

from auditor.collect.host import compose, dockerfile
from auditor.errors import AuditError
from auditor.model.snapshot import Container, Network, PublishedPort, Redactor


class DockerError(AuditError):
    """A compose file or inspect output that cannot be read; the message names file and service."""


def interpolate(text: str, env: dict[str, str], where: str) -> str:
    """Compose's interpolation (see collect/compose.py), raising this module's error."""
    try:
        return compose.interpolate(text, env, where)
    except compose.ComposeError as exc:
        raise DockerError(str(exc)) from None


# --- ports ------------------------------------------------------------------------------------------


def _port_number(text: str, where: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= 65535:
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
    """`docker inspect`'s Config.Env: a list of NAME=value."""
    out = {}
    for item in value or []:
        name, _, val = str(item).partition("=")
        out[name] = val
    return out


# --- compose -------------------------------------------------------------------------------------------

# The Compose Specification's schema, shipped in the package (auditor/schemas, its NOTICE beside it).
SCHEMA = importlib.resources.files("auditor.schemas") / "compose-spec.json"


@functools.cache
def _validator() -> Any:
    # Imported here: jsonschema takes a tenth of a second to import, and only compose files need it.
    import jsonschema

    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def _validate(model: compose.Model, first: Path) -> None:
    """The Compose Specification's own schema on the merged model (an override file alone need not be
    valid), so a malformed file gets a precise error, not a guess."""
    data = {"services": model.services, "networks": model.networks, "volumes": model.volumes}
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(data))
    if error is None:
        return
    location = list(error.absolute_path)
    service = str(location[1]) if len(location) > 1 and location[0] == "services" else None
    file, line = model.lines.get(service or "", (first, 0))  # a top-level key: the project's first file
    key = ".".join(str(p) for p in location) or "(top level)"
    raise DockerError(f"{file}{':' + str(line) if line else ''}: {key}: {error.message}")


def load_project(paths: list[Path], environment: dict[str, str] | None = None,
                 profiles: list[str] | None = None) -> compose.Model:
    """Compose files merged as one project (`docker compose -f a -f b config`), validated."""
    try:
        model = compose.load([Path(p) for p in paths], environment, profiles)
    except compose.ComposeError as exc:
        raise DockerError(str(exc)) from None
    _validate(model, Path(paths[0]))
    return model


def _healthcheck(spec: Any) -> str | None:
    """The test a healthcheck runs, as one command line; None when there is none."""
    if not isinstance(spec, dict) or spec.get("disable"):
        return None
    test = spec.get("test")
    if isinstance(test, list):
        if not test or test[0] == "NONE":
            return None
        return " ".join(str(t) for t in (test[1:] if test[0] in ("CMD", "CMD-SHELL") else test))
    return str(test) if test else None


def _networks(spec: dict[str, Any]) -> dict[str, list[str]] | None:
    if spec.get("network_mode"):
        return None
    networks = spec.get("networks") or {"default": None}
    return {str(name): sorted(str(a) for a in ((options or {}).get("aliases") or []))
            for name, options in networks.items()}


def _scrub(redactor: Redactor, secrets: list[str], text: str | None) -> str | None:
    """A command line as the snapshot keeps it: NAME=value pairs and the service's own values redacted."""
    return redactor.text(text, secrets) if text else None


def _placed(port: PublishedPort, place: compose.Place) -> PublishedPort:
    return msgspec.structs.replace(port, file=str(place[0]), line=place[1])


def containers(model: compose.Model, redactor: Redactor | None = None) -> list[Container]:
    """The services of a project as containers; their running state is unknown: files say what should run."""
    redactor = redactor or Redactor(None)
    out = []
    for service, spec in model.services.items():
        file, line = model.lines.get(service, (model.project_dir, 0))
        where = f"{file}:{line}: service {service}"
        try:
            ports = [_placed(p, model.port_place(service, entry)) for entry in spec.get("ports") or []
                     for p in parse_port(entry, where)]
            expose = _expose(spec.get("expose"), where)
        except DockerError as exc:
            unset = sorted(model.unset.get(service, ()))
            if not unset:
                raise
            raise DockerError(f"{exc} (variable{'s' if len(unset) > 1 else ''} {', '.join(unset)} "
                              f"{'are' if len(unset) > 1 else 'is'} not set)") from None
        built, _ = dockerfile.of_service(spec, model.project_dir)  # unreadable: its ports are unknown
        environment = compose.service_environment(spec, model.project_dir)
        secrets = list(environment.values())
        scrub = functools.partial(_scrub, redactor, secrets)
        out.append(Container(
            name=str(spec.get("container_name") or f"{model.name}-{service}-1"),
            service=str(service),
            image=str(spec.get("image") or ""),
            built=bool(spec.get("build")),
            running=None,
            ports=ports,
            # A local build's Dockerfile EXPOSE proves a port as `docker inspect` would show it.
            expose=sorted(set(expose) | set(built.expose if built else [])),
            environment=redactor.mapping(environment),
            privileged=bool(spec.get("privileged")),
            volumes=[_volume_source(v) for v in spec.get("volumes") or []],
            command=scrub(compose.command_line(spec.get("command")) or (built.cmd if built else None)),
            entrypoint=scrub(compose.command_line(spec.get("entrypoint")) or (built.entrypoint if built else None)),
            healthcheck=scrub(_healthcheck(spec.get("healthcheck"))),
            networks=_networks(spec),
            network_mode=str(spec["network_mode"]) if spec.get("network_mode") else None,
            extra_hosts=sorted(str(h) for h in (spec.get("extra_hosts") or {})),
            links={alias: service for service, _, alias in (str(x).partition(":") for x in spec.get("links") or [])
                   for alias in {service, alias or service}},
            restarts_with=sorted(str(name) for name, how in (spec.get("depends_on") or {}).items()
                                 if isinstance(how, dict) and how.get("restart") is True),
            file=str(file),
            line=line,
        ))
    return out


def networks(model: compose.Model) -> dict[str, Network]:
    """The project's networks as its file declares them (`internal`, `external`, driver)."""
    out = {}
    for name, spec in sorted(model.networks.items()):
        spec = spec if isinstance(spec, dict) else {}
        out[str(name)] = Network(internal=spec.get("internal") is True, external=bool(spec.get("external")),
                                 driver=str(spec["driver"]) if spec.get("driver") else None)
    return out


def parse_compose_files(paths: list[Path], redactor: Redactor | None = None,
                        environment: dict[str, str] | None = None,
                        profiles: list[str] | None = None) -> list[Container]:
    """The services of compose files merged as one project, as containers."""
    return containers(load_project(paths, environment, profiles), redactor)


def parse_compose(path: str | Path, redactor: Redactor | None = None, environ: dict[str, str] | None = None,
                  ) -> list[Container]:
    """One compose file (see parse_compose_files)."""
    return parse_compose_files([Path(path)], redactor, environ)


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
