"""audit.yaml: the contract in DESIGN.md, read into msgspec Structs (auditor.model.typed).

Every problem becomes one ConfigError line naming the file, the key path and
what was expected, e.g. ``audit.yaml: environments.dev.hosts[0].nginx.pathx:
unknown key``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import shlex
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from auditor.errors import CONFIG_LIMIT, ConfigError, parse_yaml, read_text
from auditor.model.typed import Strict, key_path, problem, typed


def _argv(value: str | list[str] | None) -> list[str] | None:
    # A command string is split with shell rules but never given to a shell.
    return shlex.split(value) if isinstance(value, str) else value


NonEmpty = msgspec.Meta(min_length=1)


class TagMatch(Strict, kw_only=True):
    tags: Annotated[dict[str, str], NonEmpty]


class Account(Strict, kw_only=True):
    role_arn: str
    regions: list[str] = msgspec.field(default_factory=list)


class Aws(Strict, kw_only=True):
    region: str | None = None
    regions: list[str] = msgspec.field(default_factory=list)
    profile: str | None = None
    role_arn: str | None = None
    endpoint_url: str | None = None
    accounts: list[Account] = msgspec.field(default_factory=list)
    scope: TagMatch | None = None

    def __post_init__(self) -> None:
        if self.region and self.regions:
            raise ValueError("give either region or regions, not both")


class Nginx(Strict, kw_only=True):
    path: Path | None = None
    command: str | list[str] | None = None  # a list after __post_init__
    # nginx as a compose service: which service (else found by its image), and `path` its main file
    service: str | None = None
    # the directory `path` stands for on its host: absolute includes under it are read below path's directory
    prefix: str | None = None

    def __post_init__(self) -> None:
        self.command = _argv(self.command)
        if self.service is not None:
            if self.command is not None:
                raise ValueError("service reads the config from the compose files; give path, not command")
            return
        if (self.path is None) == (self.command is None):
            raise ValueError("give exactly one of path, command or service")
        if self.prefix is not None and self.path is None:
            raise ValueError("prefix is for path")


class Slot(Strict, kw_only=True):
    service: str


SwitchKind = Literal["variable", "upstream", "rewrite", "alb"]


class Switch(Strict, kw_only=True):
    kind: SwitchKind
    target_groups: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.target_groups is not None and self.kind != "alb":
            raise ValueError("target_groups is only for kind: alb")


class Service(Strict, kw_only=True):
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]  # the port the service's process listens on


class Docker(Strict, kw_only=True):
    compose: list[Path] = msgspec.field(default_factory=list)
    # Interpolation values beside .env (never the shell's: results must not depend on where audit runs),
    # and the compose profiles to enable (default: COMPOSE_PROFILES from .env).
    environment: dict[str, str] = msgspec.field(default_factory=dict)
    profiles: list[str] | None = None
    services: dict[str, Service] = msgspec.field(default_factory=dict)
    inspect: Path | None = None
    command: str | list[str] | None = None  # a list after __post_init__
    slots: dict[str, Slot] = msgspec.field(default_factory=dict)
    live: str | None = None
    switch: Switch | None = None

    def __post_init__(self) -> None:
        self.command = _argv(self.command)
        sources = sum([bool(self.compose), self.inspect is not None, self.command is not None])
        if sources != 1:
            raise ValueError("give exactly one of compose, inspect or command")
        if self.live is not None and self.live not in self.slots:
            raise ValueError(f"live slot {self.live!r} is not one of the slots {sorted(self.slots)}")
        if self.switch and self.switch.target_groups:
            unknown = sorted(set(self.switch.target_groups) - set(self.slots))
            if unknown:
                raise ValueError(f"switch.target_groups names unknown slots {unknown}")


class App(Strict, kw_only=True):
    health_path: str | None = None
    keepalive_timeout: float | None = None
    port: int | None = None


class Host(Strict, kw_only=True):
    name: str
    match: TagMatch
    nginx: Nginx | None = None
    docker: Docker | None = None
    app: App | None = None


class Environment(Strict, kw_only=True):
    tokens: list[str] = msgspec.field(default_factory=list)
    aws: Aws | None = None
    hosts: list[Host] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        names = [h.name for h in self.hosts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"host names must be unique, repeated: {dupes}")


class Pairing(Strict, kw_only=True):
    resource_type: str
    a: str
    b: str


class Expected(Strict, kw_only=True):
    path: str
    reason: Annotated[str, NonEmpty]


class DiffConfig(Strict, kw_only=True):
    match: list[Pairing] = msgspec.field(default_factory=list)
    expected: list[Expected] = msgspec.field(default_factory=list)
    ignore: list[str] = msgspec.field(default_factory=list)


class RulesConfig(Strict, kw_only=True):
    disable: list[str] = msgspec.field(default_factory=list)
    severity: dict[str, Literal["critical", "high", "medium", "low", "info"]] = msgspec.field(default_factory=dict)
    options: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    paths: list[Path] = msgspec.field(default_factory=list)


class Suppression(Strict, kw_only=True):
    rule: str
    resource: str = "*"
    reason: Annotated[str, NonEmpty]
    expires: dt.date | None = None


class Config(Strict, kw_only=True):
    base_dir: Path = Path(".")  # set by load(), not read from the file: relative paths start here
    source: str = "audit.yaml"  # set by load(): the file, for errors found after loading
    lines: dict[str, int] = msgspec.field(default_factory=dict)  # set by load(): environment → line of its key
    version: Literal[1]
    environments: Annotated[dict[str, Environment], NonEmpty]
    diff: DiffConfig = msgspec.field(default_factory=DiffConfig)
    rules: RulesConfig = msgspec.field(default_factory=RulesConfig)
    suppressions: list[Suppression] = msgspec.field(default_factory=list)

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(f"unknown environment {name!r} (audit.yaml defines: {known})") from None


_SET_BY_LOAD = ("base_dir", "source", "lines")  # Config's fields that are not keys of the file


def tokens_for(config: Config | None, env: str) -> list[str]:
    """Words that name an environment inside resource names (default: its name)."""
    if config and env in config.environments and config.environments[env].tokens:
        return config.environments[env].tokens
    return [env]


def _resolve_paths(config: Config, base: Path) -> None:
    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    for env in config.environments.values():
        for host in env.hosts:
            if host.nginx and host.nginx.path:
                host.nginx.path = resolve(host.nginx.path)
            if host.docker:
                host.docker.compose = [resolve(p) for p in host.docker.compose]
                if host.docker.inspect:
                    host.docker.inspect = resolve(host.docker.inspect)
    config.rules.paths = [resolve(p) for p in config.rules.paths]


def parse(data: Any, source: str = "audit.yaml", base: Path | None = None) -> Config:
    """Validate already-loaded YAML data; relative paths resolve against ``base``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    for key in _SET_BY_LOAD:
        if key in data:
            raise ConfigError(f"{source}: {key}: unknown key")
    try:
        config = typed(data, Config)
    except msgspec.ValidationError as exc:
        keys, words = problem(exc, data, Config)
        hint = ""
        if words == "unknown key" and len(keys) == 1:  # a typo (`environmnets:`) is what to fix
            keys_of_file = [f for f in Config.__struct_fields__ if f not in _SET_BY_LOAD]
            close = difflib.get_close_matches(str(keys[0]), keys_of_file, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{source}: {key_path(keys) or '(top level)'}: {words}{hint}") from None
    config.base_dir = base or Path.cwd()
    config.source = source
    _resolve_paths(config, config.base_dir)
    return config


def load(path: str | Path) -> Config:
    path = Path(path)
    text = read_text(path, "config file", ConfigError, " (give one with --config)", limit=CONFIG_LIMIT)
    data = parse_yaml(text, path, ConfigError, yaml.SafeLoader)
    if data is None:
        raise ConfigError(f"{path}: config file is empty")
    config = parse(data, str(path), path.resolve().parent)
    config.lines = _environment_lines(text)
    return config


def _environment_lines(text: str) -> dict[str, int]:
    """The line of each environment's key (`dev:`): where a report points for what that environment
    describes. The text has already parsed, so it composes."""
    top = yaml.compose(text, Loader=yaml.SafeLoader)
    environments = next((value for key, value in top.value if key.value == "environments"), None)
    if not isinstance(environments, yaml.MappingNode):
        return {}
    return {key.value: key.start_mark.line + 1 for key, _ in environments.value}
