"""Compose files read the way `docker compose config` reads them, into one application model.

Per file: YAML 1.2, top-level `include`, interpolation, `extends`. Then the files merge in the order
given by the Compose Specification's rules ("Merge"): mappings by key, sequences appended, `command`,
`entrypoint` and `healthcheck.test` replaced, `ports`/`volumes`/`secrets`/`configs` by their unique
keys, `!reset` removing and `!override` replacing a value. Then profiles leave services out, and the
merged model is validated against the specification's schema.

Interpolation reads `.env` beside the first file and audit.yaml's `docker.environment`, never the
environment of the machine running audit: results must not depend on where it runs.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditor.collect.host import variables
from auditor.errors import HOST_FILE_LIMIT, parse_yaml, read_text


class Reset:
    """`!reset`: the value is removed from what earlier files said."""


@dataclass
class Override:
    """`!override`: the value replaces what earlier files said, instead of merging with it."""

    value: Any


class _Loader(yaml.SafeLoader):
    """YAML 1.2 integers (unquoted `80:80` is the string "80:80", not PyYAML's base-60 4880) and
    compose's merge tags."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def _plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor("!reset", lambda loader, node: Reset())
_Loader.add_constructor("!override", lambda loader, node: Override(_plain(loader, node)))
_Loader.add_multi_constructor("!", lambda loader, suffix, node: _plain(loader, node))  # other tags: plain values


class ComposeError(Exception):
    """Raised with the message a person reads; collect/docker.py turns it into its DockerError."""


# --- interpolation -------------------------------------------------------------------------------------

def interpolate(text: str, env: dict[str, str], where: str, unset: set[str] | None = None) -> str:
    """Compose's interpolation (collect/host/variables.py), its errors as ComposeError."""
    return variables.interpolate(text, env, where, unset, ComposeError)


def _interpolate_tree(node: Any, env: dict[str, str], where: str, unset: set[str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, where, unset)
    if isinstance(node, list):
        return [_interpolate_tree(v, env, where, unset) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, where, unset) for k, v in node.items()}
    if isinstance(node, Override):
        return Override(_interpolate_tree(node.value, env, where, unset))
    return node


def read_env_file(path: Path, environment: dict[str, str] | None = None) -> dict[str, str]:
    """A `.env` or `env_file`: NAME=value lines, `export` and quotes allowed, comments skipped. As
    compose does, an unquoted or double-quoted value is interpolated with the lines above it (and
    ``environment``, which wins): `COMPOSE_PROFILES=${DOC_ENGINE},${DEVICE}`."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    text = read_text(path, "env file", ComposeError, limit=HOST_FILE_LIMIT)
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        literal = len(value) >= 2 and value[0] == value[-1] == "'"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if not literal and "$" in value:
            try:
                value = interpolate(value, {**values, **(environment or {})}, f"{path}:{number}")
            except ComposeError:
                pass  # `${X:?…}` unset in .env: kept as written; the compose file's use of it will say
        values[name.strip()] = value
    return values


# --- normalizing what may be written two ways -----------------------------------------------------------

# Attributes written as a list of `KEY=VALUE` (or `host:ip`) or as a mapping: merged as mappings.
_MAPPING_OR_LIST = {"environment": "=", "labels": "=", "annotations": "=", "sysctls": "=", "extra_hosts": None}
# Sequences merged by a unique key instead of appended (the specification's "Unique resources").
_UNIQUE = {"ports", "volumes", "secrets", "configs"}
# Shell commands: the later file's value replaces the earlier one.
_REPLACED = {"command", "entrypoint"}


def _as_mapping(name: str, value: Any) -> Any:
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    for item in value:
        text = str(item)
        if name == "extra_hosts":
            host, sep, address = text.partition("=") if "=" in text else text.partition(":")
        else:
            host, sep, address = text.partition("=")
        out[host] = address if sep else None
    return out


def _normalize_service(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    spec = dict(spec)
    for name in _MAPPING_OR_LIST:
        if name in spec and not isinstance(spec[name], (Reset, Override)):
            spec[name] = _as_mapping(name, spec[name])
    if isinstance(spec.get("networks"), list):
        spec["networks"] = {str(n): None for n in spec["networks"]}
    if isinstance(spec.get("depends_on"), list):
        spec["depends_on"] = {str(n): {"condition": "service_started"} for n in spec["depends_on"]}
    return spec


def _unique_key(attribute: str, entry: Any) -> Any:
    """The key two entries of ports/volumes/secrets/configs share when they are the same resource."""
    if attribute == "ports":
        if isinstance(entry, dict):
            return (str(entry.get("host_ip") or ""), str(entry.get("target")), str(entry.get("published") or ""),
                    str(entry.get("protocol") or "tcp"))
        text, _, protocol = str(entry).partition("/")
        parts = text.rsplit(":", 2) if not text.startswith("[") else [text]
        target = parts[-1]
        published = parts[-2] if len(parts) > 1 else ""
        host_ip = parts[-3] if len(parts) > 2 else ""
        return (host_ip, target, published, protocol or "tcp")
    if attribute == "volumes":
        if isinstance(entry, dict):
            return str(entry.get("target"))
        parts = str(entry).split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    if isinstance(entry, dict):  # secrets, configs
        return str(entry.get("target") or entry.get("source"))
    return str(entry)


# --- merging --------------------------------------------------------------------------------------------


def merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """``override`` merged onto ``base`` by the Compose Specification's rules."""
    if isinstance(override, Override):
        return _strip(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            if isinstance(value, Reset):
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, path + (str(key),))
            else:
                out[key] = _strip(value)
        return out
    if isinstance(base, list) and isinstance(override, list):
        attribute = path[-1] if path else ""
        in_service = len(path) >= 3 and path[0] == "services"
        if in_service and (attribute in _REPLACED or path[-2:] == ("healthcheck", "test")):
            return _strip(override)
        if in_service and len(path) == 3 and attribute in _UNIQUE:
            merged = {_unique_key(attribute, entry): entry for entry in base}
            for entry in override:
                merged[_unique_key(attribute, entry)] = _strip(entry)
            return list(merged.values())
        return base + [_strip(v) for v in override if v not in base]
    return _strip(override)


def _strip(value: Any) -> Any:
    """A value from one file alone: its tags have nothing earlier to act on."""
    if isinstance(value, Override):
        return _strip(value.value)
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [_strip(v) for v in value if not isinstance(v, Reset)]
    return None if isinstance(value, Reset) else value


# --- files, includes, extends ------------------------------------------------------------------------------


Place = tuple[Path, int]  # a file and a line in it


@dataclass
class Model:
    """The merged application model, and where each service and each `ports:` entry was written."""

    name: str
    services: dict[str, dict[str, Any]]
    networks: dict[str, Any]
    volumes: dict[str, Any]
    lines: dict[str, Place] = field(default_factory=dict)
    unset: dict[str, set[str]] = field(default_factory=dict)  # per service: variables that were not set
    project_dir: Path = Path(".")
    ports: dict[str, dict[Any, Place]] = field(default_factory=dict)  # per service: entry's unique key -> place

    def port_place(self, service: str, entry: Any) -> Place:
        """Where a merged `ports:` entry was written (the file that last set it); the service's own place
        when no file says (a service extended from another file)."""
        place = self.ports.get(service, {}).get(_unique_key("ports", entry))
        return place or self.lines.get(service, (self.project_dir, 0))


@dataclass
class _File:
    """One file read: its model with includes and extends resolved, and where each thing in it is."""

    model: dict[str, Any]
    lines: dict[str, Place]
    unset: dict[str, set[str]]
    ports: dict[str, dict[Any, Place]]
    included: set[str] = field(default_factory=set)  # services its `include` brought


def load_yaml(path: Path) -> tuple[Any, dict[str, int], dict[str, list[int]]]:
    text = read_text(path, "compose file", ComposeError, limit=HOST_FILE_LIMIT)
    data = parse_yaml(text, path, ComposeError, _Loader)
    if data is None:
        return {}, {}, {}
    if not isinstance(data, dict) or not isinstance(data.get("services", {}) or {}, dict):
        raise ComposeError(f"{path}: not a compose file (expected a mapping with services:)")
    return (data, *_service_lines(text))


def _service_lines(text: str) -> tuple[dict[str, int], dict[str, list[int]]]:
    """The line of each service's key and of each of its `ports:` entries, so findings point at them."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return {}, {}
    lines: dict[str, int] = {}
    ports: dict[str, list[int]] = {}
    services = next((v for k, v in root.value if k.value == "services"), None) \
        if isinstance(root, yaml.MappingNode) else None
    for key, spec in services.value if isinstance(services, yaml.MappingNode) else []:
        lines[str(key.value)] = key.start_mark.line + 1
        entries = next((v for k, v in spec.value if k.value == "ports"), None) \
            if isinstance(spec, yaml.MappingNode) else None
        if isinstance(entries, yaml.SequenceNode):
            ports[str(key.value)] = [entry.start_mark.line + 1 for entry in entries.value]
    return lines, ports


def _port_places(path: Path, spec: Any, lines: list[int]) -> dict[Any, Place]:
    entries = spec.get("ports") if isinstance(spec, dict) else None
    entries = entries.value if isinstance(entries, Override) else entries
    if not isinstance(entries, list) or len(entries) != len(lines):
        return {}
    return {_unique_key("ports", e): (path, line) for e, line in zip(entries, lines) if not isinstance(e, Reset)}


class _Reader:
    """One project's files: each read once, interpolated with the project's variables."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.files: dict[Path, _File] = {}

    def file(self, path: Path, stack: tuple[Path, ...] = ()) -> _File:
        """A file's model with includes added and extends resolved."""
        path = path.resolve()
        if path in stack:
            raise ComposeError(f"{path}: included or extended from itself ({' → '.join(map(str, stack))})")
        if path in self.files:
            return self.files[path]
        data, service_lines, port_lines = load_yaml(path)
        read = _File({}, {str(n): (path, line) for n, line in service_lines.items()}, {}, {})
        services: dict[str, Any] = {}
        for name, spec in (data.get("services") or {}).items():
            where = f"{path}:{service_lines.get(str(name), 0)}: service {name}"
            if not isinstance(spec, (dict, type(None))):
                raise ComposeError(f"{where}: expected a mapping")
            read.unset[str(name)] = set()
            services[str(name)] = _normalize_service(_interpolate_tree(spec or {}, self.env, where,
                                                                       read.unset[str(name)]))
            read.ports[str(name)] = _port_places(path, services[str(name)], port_lines.get(str(name), []))
        read.model = {k: _interpolate_tree(v, self.env, str(path), set()) for k, v in data.items()
                      if k not in ("services", "include")}
        read.model["services"] = services
        includes = data.get("include") or []
        if not isinstance(includes, list):
            raise ComposeError(f"{path}: include: must be a list of files (or of entries with path:)")
        for entry in includes:
            self._include(read, entry, path, stack + (path,))
        for name in list(services):
            services[name] = self._extended(read, name, path, stack + (path,), ())
        self.files[path] = read
        return read

    def _include(self, read: _File, entry: Any, path: Path, stack: tuple[Path, ...]) -> None:
        """An `include` entry as current Compose reads it: each file with its own project directory and env
        files (`project_directory`, `env_file`, else its directory's `.env`), its relative paths resolved
        there; a service this file defines too is this file's definition merged over the included one
        (compose-go #835); two included files defining one service conflict."""
        paths = entry.get("path") if isinstance(entry, dict) else entry
        options = entry if isinstance(entry, dict) else {}
        for relative in paths if isinstance(paths, list) else [paths]:
            included = (path.parent / interpolate(str(relative), self.env, str(path))).resolve()
            if not included.is_file():
                raise ComposeError(f"{path}: include {relative}: no such file")
            base = (path.parent / str(options["project_directory"])).resolve() \
                if options.get("project_directory") else included.parent
            env_files = options.get("env_file") or [base / ".env"]
            env: dict[str, str] = {}
            for env_file in env_files if isinstance(env_files, list) else [env_files]:
                env.update(read_env_file(path.parent / str(env_file), env))
            other = _Reader({**env, **self.env}).file(included, stack)
            for name, spec in other.model.get("services", {}).items():
                spec = _rebased(spec, base)
                if name in read.included:
                    raise ComposeError(f"{path}: include {relative} defines service {name}, which another included "
                                       "file defines too")
                read.included.add(name)
                if name in read.model["services"]:  # this file's definition, over the included one
                    read.model["services"][name] = merge(spec, read.model["services"][name], ("services", name))
                    read.ports[name] = {**other.ports.get(name, {}), **read.ports.get(name, {})}
                    continue
                read.model["services"][name] = spec
                read.unset[name] = other.unset.get(name, set())
                read.lines[name] = other.lines.get(name, (included, 0))  # its own file, not the including one
                read.ports[name] = other.ports.get(name, {})
            for section in ("networks", "volumes"):
                for name, spec in (other.model.get(section) or {}).items():
                    read.model.setdefault(section, {}).setdefault(name, spec)

    def _extended(self, read: _File, name: str, path: Path, stack: tuple[Path, ...],
                  chain: tuple[str, ...]) -> dict[str, Any]:
        services = read.model["services"]
        spec = services[name]
        extends = spec.get("extends") if isinstance(spec, dict) else None
        if not extends:
            return spec
        if name in chain:
            raise ComposeError(f"{path}: service {name} extends itself through {' → '.join(chain)}")
        base_name = str(extends if isinstance(extends, str) else extends.get("service", ""))
        other_file = extends.get("file") if isinstance(extends, dict) else None
        if other_file:
            other_path = (path.parent / str(other_file)).resolve()
            if not other_path.is_file():
                raise ComposeError(f"{path}: service {name} extends {base_name} from {other_file}, which does not "
                                   "exist")
            other, where = self.file(other_path, stack), other_path
        else:
            other, where = read, path
        pool = other.model.get("services", {})
        if base_name not in pool:
            raise ComposeError(f"{path}: service {name} extends {base_name}, which {where} does not define")
        if other is read:
            base = self._extended(read, base_name, where, stack, chain + (name,))
        else:  # Compose resolves the extended service's relative paths against its own file's directory
            base = pool[base_name] if where.parent == path.parent else _rebased(pool[base_name], where.parent)
        read.ports[name] = {**other.ports.get(base_name, {}), **read.ports.get(name, {})}
        local = {k: v for k, v in spec.items() if k != "extends"}
        return merge({k: v for k, v in base.items() if k != "extends"}, local, ("services", name))


def _rebased(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """An included (or extended) service's relative paths (build context, bind-mount sources, env files)
    made absolute against its own project directory (the extended file's), where Compose resolves them."""
    def absolute(value: str) -> str:
        return value if "://" in value or value.startswith(("git@", "/", "~")) else str((base / value).resolve())

    spec = dict(spec)
    build = spec.get("build")
    if isinstance(build, str):
        spec["build"] = absolute(build)
    elif isinstance(build, dict):
        spec["build"] = {**build, "context": absolute(str(build.get("context") or "."))}
    volumes = []
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and volume.get("type") == "bind" and volume.get("source"):
            volume = {**volume, "source": absolute(str(volume["source"]))}
        elif isinstance(volume, str) and volume.startswith("."):
            source, _, rest = volume.partition(":")
            volume = f"{absolute(source)}:{rest}" if rest else absolute(source)
        volumes.append(volume)
    if volumes:
        spec["volumes"] = volumes
    env_files = spec.get("env_file")
    if env_files:
        spec["env_file"] = [{**e, "path": absolute(str(e.get("path")))} if isinstance(e, dict) else absolute(str(e))
                            for e in (env_files if isinstance(env_files, list) else [env_files])]
    return spec


def _project_name(value: str) -> str:
    """Compose's normalization: lower case, only a-z 0-9 _ -, starting with a letter or digit."""
    name = re.sub(r"[^a-z0-9_-]", "", value.lower())
    return name.lstrip("_-") or "default"


def load(files: list[Path], environment: dict[str, str] | None = None,
         profiles: list[str] | None = None) -> Model:
    """The application model of ``files`` merged in order, as `docker compose -f … config` sees it."""
    if not files:
        raise ComposeError("no compose file given")
    first = files[0].resolve()
    env = {**read_env_file(first.parent / ".env", environment), **(environment or {})}
    reader = _Reader(env)
    merged: dict[str, Any] = {}
    lines: dict[str, Place] = {}
    ports: dict[str, dict[Any, Place]] = {}
    unset: dict[str, set[str]] = {}
    for path in files:
        read = reader.file(path)
        merged = merge(merged, read.model)
        for name in read.model.get("services", {}):
            lines.setdefault(name, read.lines.get(name, (path.resolve(), 0)))
            ports.setdefault(name, {}).update(read.ports.get(name, {}))  # a later file's entry replaces one
            unset.setdefault(name, set()).update(read.unset.get(name, set()))
    merged = _strip(merged)
    defined = merged.get("services") or {}
    for name, spec in defined.items():
        missing = sorted(str(d) for d, how in (spec.get("depends_on") or {}).items()
                         if d not in defined and not (isinstance(how, dict) and how.get("required") is False))
        if missing:  # as `docker compose config` refuses it: a file that only makes sense over another
            path, line = lines.get(name, (first, 0))
            raise ComposeError(f"{path}:{line}: service {name} depends on undefined service {missing[0]}")
    active = set(profiles if profiles is not None else
                 [p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()])
    services = {name: spec for name, spec in (merged.get("services") or {}).items()
                if not spec.get("profiles") or "*" in active or active & set(map(str, spec["profiles"]))}
    name = str(merged.get("name") or env.get("COMPOSE_PROJECT_NAME") or first.parent.name)
    return Model(name=_project_name(name), services=services, networks=merged.get("networks") or {},
                 volumes=merged.get("volumes") or {}, lines=lines, unset=unset, project_dir=first.parent, ports=ports)


def command_line(value: Any) -> str | None:
    """`command:`/`entrypoint:` as one shell line: the list form quoted as the shell would need it."""
    if value is None:
        return None
    return shlex.join(str(v) for v in value) if isinstance(value, list) else str(value)


def service_environment(spec: dict[str, Any], project_dir: Path) -> dict[str, str]:
    """A service's environment as the container gets it: its env_files, then `environment` over them.
    A missing env_file adds nothing: repositories ship `*-sample` files the deploy turns into the real one."""
    values: dict[str, str] = {}
    entries = spec.get("env_file") or []
    for entry in entries if isinstance(entries, list) else [entries]:
        relative = entry.get("path") if isinstance(entry, dict) else entry
        values.update(read_env_file(project_dir / str(relative)))
    for key, value in (spec.get("environment") or {}).items():
        values[str(key)] = "" if value is None else str(value)
    return values
