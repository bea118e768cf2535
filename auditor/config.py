"""audit.yaml: the contract in DESIGN.md, validated with pydantic.

Every problem becomes one ConfigError line naming the file, the key path and
what was expected, e.g. ``audit.yaml: environments.dev.hosts[0].nginx.pathx:
unknown key``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import shlex
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditor.errors import ConfigError, read_text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _argv(value: Any) -> Any:
    # A command string is split with shell rules but never given to a shell.
    return shlex.split(value) if isinstance(value, str) else value


class TagMatch(Strict):
    tags: dict[str, str] = Field(min_length=1)


class Account(Strict):
    role_arn: str
    regions: list[str] = Field(default_factory=list)


class Aws(Strict):
    region: str | None = None
    regions: list[str] = Field(default_factory=list)
    profile: str | None = None
    role_arn: str | None = None
    endpoint_url: str | None = None
    accounts: list[Account] = Field(default_factory=list)
    scope: TagMatch | None = None

    @model_validator(mode="after")
    def _one_region_form(self) -> Aws:
        if self.region and self.regions:
            raise ValueError("give either region or regions, not both")
        return self


class Nginx(Strict):
    path: Path | None = None
    command: list[str] | None = None
    # nginx as a compose service: which service (else found by its image), and `path` its main file
    service: str | None = None
    # the directory `path` stands for on its host: absolute includes under it are read below path's directory
    prefix: str | None = None

    _split = field_validator("command", mode="before")(_argv)

    @model_validator(mode="after")
    def _one_source(self) -> Nginx:
        if self.service is not None:
            if self.command is not None:
                raise ValueError("service reads the config from the compose files; give path, not command")
            return self
        if (self.path is None) == (self.command is None):
            raise ValueError("give exactly one of path, command or service")
        if self.prefix is not None and self.path is None:
            raise ValueError("prefix is for path")
        return self


class Slot(Strict):
    service: str


SwitchKind = Literal["variable", "upstream", "rewrite", "alb"]


class Switch(Strict):
    kind: SwitchKind
    target_groups: dict[str, str] | None = None

    @model_validator(mode="after")
    def _target_groups_for_alb(self) -> Switch:
        if self.target_groups is not None and self.kind != "alb":
            raise ValueError("target_groups is only for kind: alb")
        return self


class Service(Strict):
    port: int = Field(ge=1, le=65535)  # the port the service's process listens on


class Docker(Strict):
    compose: list[Path] = Field(default_factory=list)
    # Interpolation values beside .env (never the shell's: results must not depend on where audit runs),
    # and the compose profiles to enable (default: COMPOSE_PROFILES from .env).
    environment: dict[str, str] = Field(default_factory=dict)
    profiles: list[str] | None = None
    services: dict[str, Service] = Field(default_factory=dict)
    inspect: Path | None = None
    command: list[str] | None = None
    slots: dict[str, Slot] = Field(default_factory=dict)
    live: str | None = None
    switch: Switch | None = None

    _split = field_validator("command", mode="before")(_argv)

    @model_validator(mode="after")
    def _consistent(self) -> Docker:
        sources = sum([bool(self.compose), self.inspect is not None, self.command is not None])
        if sources != 1:
            raise ValueError("give exactly one of compose, inspect or command")
        if self.live is not None and self.live not in self.slots:
            raise ValueError(f"live slot {self.live!r} is not one of the slots {sorted(self.slots)}")
        if self.switch and self.switch.target_groups:
            unknown = sorted(set(self.switch.target_groups) - set(self.slots))
            if unknown:
                raise ValueError(f"switch.target_groups names unknown slots {unknown}")
        return self


class App(Strict):
    health_path: str | None = None
    keepalive_timeout: float | None = None
    port: int | None = None


class Host(Strict):
    name: str
    match: TagMatch
    nginx: Nginx | None = None
    docker: Docker | None = None
    app: App | None = None


class Environment(Strict):
    tokens: list[str] = Field(default_factory=list)
    aws: Aws | None = None
    hosts: list[Host] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_hosts(self) -> Environment:
        names = [h.name for h in self.hosts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"host names must be unique, repeated: {dupes}")
        return self


class Pairing(Strict):
    resource_type: str
    a: str
    b: str


class Expected(Strict):
    path: str
    reason: str = Field(min_length=1)


class DiffConfig(Strict):
    match: list[Pairing] = Field(default_factory=list)
    expected: list[Expected] = Field(default_factory=list)
    ignore: list[str] = Field(default_factory=list)


class RulesConfig(Strict):
    disable: list[str] = Field(default_factory=list)
    severity: dict[str, Literal["critical", "high", "medium", "low", "info"]] = Field(default_factory=dict)
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    paths: list[Path] = Field(default_factory=list)


class Suppression(Strict):
    rule: str
    resource: str = "*"
    reason: str = Field(min_length=1)
    expires: dt.date | None = None


class Config(Strict):
    base_dir: Path = Field(default=Path("."), exclude=True)  # set by load(): relative paths start here
    source: str = Field(default="audit.yaml", exclude=True)  # the file, for errors found after loading
    version: Literal[1]
    environments: dict[str, Environment] = Field(min_length=1)
    diff: DiffConfig = Field(default_factory=DiffConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    suppressions: list[Suppression] = Field(default_factory=list)

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(f"unknown environment {name!r} (audit.yaml defines: {known})") from None


def tokens_for(config: Config | None, env: str) -> list[str]:
    """Words that name an environment inside resource names (default: its name)."""
    if config and env in config.environments and config.environments[env].tokens:
        return config.environments[env].tokens
    return [env]


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "literal[", "list[", "dict[")):
            out += f".{part}" if out else part
    return out or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"expected {error['ctx']['expected']}, got {error['input']!r}"
    message = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{message}, got {error['input']!r}"
    return message


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
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        # An unknown key first: a typo (`environmnets:`) also makes a required key missing, and the
        # typo is what to fix.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        more = len(errors) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        hint = ""
        if first["type"] == "extra_forbidden" and len(first["loc"]) == 1:
            close = difflib.get_close_matches(str(first["loc"][0]), Config.model_fields, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"{source}: {_key_path(first['loc'])}: {_describe(first)}{hint}{suffix}") from None
    config.base_dir = base or Path.cwd()
    config.source = source
    _resolve_paths(config, config.base_dir)
    return config


def load(path: str | Path) -> Config:
    path = Path(path)
    text = read_text(path, "config file", ConfigError, " (give one with --config)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    if data is None:
        raise ConfigError(f"{path}: config file is empty")
    return parse(data, str(path), path.resolve().parent)
