"""The rule engine: loads the catalog in rules/, runs each rule's check, applies configuration.

A check is a plain function ``check(ctx) -> Iterable[Problem | Skip]`` in
auditor/checks; the engine adds the rule's metadata, the fingerprint and the
suppression state, so checks stay small and know nothing of output.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from auditor.config import Config, RulesConfig, Suppression
from auditor.errors import ConfigError
from auditor.keys import Keys
from auditor.snapshot import Snapshot
from auditor.topology import Topology

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it


def severity_rank(severity: str) -> int:
    """0 for critical … 4 for info; lower is worse."""
    return SEVERITIES.index(severity)


@dataclass
class Problem:
    """What a check yields when it finds something; ``identity`` names the evidence fields that
    identify the problem (for the fingerprint), so rewording a message never breaks a baseline."""

    resource: str
    message: str
    slot: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    identity: tuple[str, ...] = ()


@dataclass
class Skip:
    """A check could not decide for lack of data; ``reason`` names the data."""

    reason: str
    resource: str | None = None
    slot: str | None = None


@dataclass
class Context:
    """What every check may read: the snapshot, its keys and topology, and the rule's options."""

    snapshot: Snapshot
    keys: Keys
    topology: Topology
    options: dict[str, Any] = field(default_factory=dict)


Op = Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "matches", "exists", "missing"]


class Condition(BaseModel):
    """A team rule's single declarative condition over one resource type."""

    model_config = ConfigDict(extra="forbid")
    resource_type: str
    key: str
    op: Op
    value: Any = None


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Z][0-9]{3}$")
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    severity: Severity
    title: str
    rationale: str
    remediation: str
    references: list[str] = Field(default_factory=list)
    check: str | None = None  # MODULE.FUNCTION: auditor/checks, or a module beside a team's rule
    condition: Condition | None = None
    # AWS operations whose data the rule reads: if one failed in collection, the rule is skipped.
    needs: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_check(self) -> RuleFile:
        if (self.check is None) == (self.condition is None):
            raise ValueError("give exactly one of check or condition")
        return self


@dataclass
class Rule:
    meta: RuleFile
    run: Callable[[Context], Iterable[Problem | Skip]]

    @property
    def id(self) -> str:
        return self.meta.id


class Finding(BaseModel):
    rule_id: str
    rule: str
    severity: Severity
    environment: str
    resource: str
    slot: str | None = None
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    remediation: str
    fingerprint: str
    suppressed: bool = False
    suppression_reason: str | None = None


class Skipped(BaseModel):
    rule_id: str
    reason: str
    environment: str
    resource: str | None = None
    slot: str | None = None


@dataclass
class Result:
    environment: str
    findings: list[Finding]
    skipped: list[Skipped]
    notes: list[str]
    topology: Topology
    rules: dict[str, RuleFile] = field(default_factory=dict)  # what ran, severities as configured


def _load_check(reference: str, source: Path, team: bool) -> Callable[[Context], Iterable[Problem | Skip]]:
    module_name, _, function = reference.rpartition(".")
    if not module_name:
        raise ConfigError(f"{source}: check {reference!r} must be MODULE.FUNCTION")
    try:
        if team:  # a Python module beside the team's rule file
            path = source.parent / f"{module_name}.py"
            spec = importlib.util.spec_from_file_location(f"audit_team_rules.{source.parent.name}.{module_name}", path)
            if spec is None or spec.loader is None or not path.is_file():
                raise ConfigError(f"{source}: check {reference!r} needs {path}")
            module = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
            if spec.name not in sys.modules:
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
        else:
            module = importlib.import_module(f"auditor.checks.{module_name}")
        return getattr(module, function)
    except AttributeError:
        raise ConfigError(f"{source}: check {reference!r}: no function {function} in {module_name}") from None
    except ImportError:
        raise ConfigError(f"{source}: check {reference!r} does not exist in auditor/checks") from None
    except SyntaxError as exc:
        raise ConfigError(f"{source}: check {reference!r}: {exc.filename}:{exc.lineno}: {exc.msg}") from None


_SINGULAR_TO_COLLECTION = {
    "load_balancer": "load_balancers", "listener": "listeners", "listener_rule": "listener_rules",
    "target_group": "target_groups", "target_health": "target_health", "security_group": "security_groups",
    "instance": "instances", "ecs_service": "ecs_services", "host": "hosts",
}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b, "matches": lambda a, b: re.search(str(b), str(a)) is not None,
}


def _field(resource: Any, key: str) -> tuple[bool, Any]:
    """A dotted field of a resource (`health_check.interval_seconds`, `attributes["a.b"]`, `tags.Team`)."""
    value: Any = resource.model_dump(mode="json")
    for part in re.findall(r'\["([^"]*)"\]|([^.\[\]]+)', key):
        name = part[0] or part[1]
        if not isinstance(value, dict) or name not in value:
            return False, None
        value = value[name]
    return True, value


def _condition_check(condition: Condition, source: Path) -> Callable[[Context], Iterable[Problem | Skip]]:
    collection = _SINGULAR_TO_COLLECTION.get(condition.resource_type)
    if collection is None:
        raise ConfigError(f"{source}: condition.resource_type: expected one of {', '.join(_SINGULAR_TO_COLLECTION)}")

    def check(ctx: Context) -> Iterator[Problem]:
        for resource in getattr(ctx.snapshot.resources, collection):
            found, value = _field(resource, condition.key)
            if condition.op == "exists":
                holds = found
            elif condition.op == "missing":
                holds = not found
            else:
                try:
                    holds = found and _OPS[condition.op](_number(value), _number(condition.value))
                except TypeError:
                    holds = False  # a value of another type does not meet the condition
            if holds:
                key = ctx.keys.of(collection, resource)
                yield Problem(f"{condition.resource_type}:{key}",
                              f"{condition.resource_type} {key}: {condition.key} is {value!r} "
                              f"({condition.op} {condition.value!r}).",
                              evidence={"key": condition.key, "value": value}, identity=("key",))

    return check


def _number(value: Any) -> Any:
    """AWS gives attribute values as strings: "60" compares as 60."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_rule(path: Path, team: bool = False) -> Rule:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
        meta = RuleFile.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read rule: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {first['msg'].removeprefix('Value error, ')}") from None
    if path.stem != meta.id:
        raise ConfigError(f"{path}: file name must be the rule id {meta.id}")
    if team and not re.fullmatch(r"X9[0-9]{2}", meta.id):
        raise ConfigError(f"{path}: a team's own rule needs an id X900-X999, not {meta.id}")
    if meta.condition is not None:
        return Rule(meta, _condition_check(meta.condition, path))
    return Rule(meta, _load_check(meta.check or "", path, team))


def load_catalog(directory: Path = RULES_DIR, team: bool = False) -> dict[str, Rule]:
    rules = [load_rule(p, team) for p in sorted(directory.glob("*.yaml"))]
    return {r.id: r for r in rules}


def fingerprint(rule_id: str, resource: str, slot: str | None, identity: dict[str, Any]) -> str:
    blob = json.dumps([rule_id, resource, slot, identity], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _suppression_for(finding: Finding, suppressions: Iterable[Suppression], today: dt.date) -> Suppression | None:
    for s in suppressions:
        if s.rule == finding.rule_id and fnmatch.fnmatchcase(finding.resource, s.resource):
            if s.expires is None or s.expires >= today:
                return s
    return None


def run(
    snapshot: Snapshot,
    tokens: Iterable[str],
    catalog: dict[str, Rule],
    rules_config: RulesConfig | None = None,
    suppressions: list[Suppression] = (),
    today: dt.date | None = None,
) -> Result:
    """Run every enabled rule on one snapshot. Pure: ``today`` is passed in for suppressions."""
    rules_config = rules_config or RulesConfig()
    today = today or dt.date.min
    keys = Keys(snapshot, tokens)
    topology = Topology(snapshot, keys)
    findings: list[Finding] = []
    skipped: list[Skipped] = []
    notes = [
        f"suppression of {s.rule} on {s.resource} expired on {s.expires}; it no longer suppresses"
        for s in suppressions
        if s.expires is not None and s.expires < today
    ]
    # A partial collection accepted with --allow-partial still says what is missing.
    notes += [f"{name} was not fully collected: {e.message or e.code}"
              for name, status in sorted(snapshot.sources.items()) for e in status.errors]
    # `# audit:ignore RULE reason` on the line before an nginx directive suppresses that rule there.
    ignores = {(i.rule, i.file, i.line): i.reason for h in snapshot.resources.hosts if h.nginx
               for i in h.nginx.ignores}
    failed = {e.operation: e for status in snapshot.sources.values() for e in status.errors if e.operation}
    for rule_id, rule in sorted(catalog.items()):
        if rule_id in rules_config.disable:
            continue
        lacking = [failed[op] for op in rule.meta.needs if op in failed]
        if lacking:
            error = lacking[0]
            skipped.append(Skipped(rule_id=rule_id, environment=snapshot.environment, reason=(
                f"{error.operation} failed during collection ({error.code or 'error'}): the data this rule reads "
                f"is incomplete")))
            continue
        ctx = Context(snapshot, keys, topology, rules_config.options.get(rule_id, {}))
        severity = rules_config.severity.get(rule_id, rule.meta.severity)
        for item in rule.run(ctx):
            if isinstance(item, Skip):
                entry = Skipped(rule_id=rule_id, reason=item.reason, environment=snapshot.environment,
                                resource=item.resource, slot=item.slot)
                if entry not in skipped:
                    skipped.append(entry)
                continue
            identity = {k: item.evidence.get(k) for k in item.identity}
            finding = Finding(
                rule_id=rule_id,
                rule=rule.meta.name,
                severity=severity,
                environment=snapshot.environment,
                resource=item.resource,
                slot=item.slot,
                message=item.message,
                evidence=item.evidence,
                remediation=rule.meta.remediation.strip(),
                fingerprint=fingerprint(rule_id, item.resource, item.slot, identity),
            )
            suppression = _suppression_for(finding, suppressions, today)
            inline = ignores.get((rule_id, str(item.evidence.get("file")), item.evidence.get("line")))
            if suppression or inline is not None:
                finding.suppressed = True
                finding.suppression_reason = suppression.reason if suppression else f"audit:ignore {inline}".strip()
            findings.append(finding)
    findings.sort(key=lambda f: (severity_rank(f.severity), f.rule_id, f.resource, f.slot or ""))
    ran = {rule_id: rule.meta.model_copy(update={"severity": rules_config.severity.get(rule_id, rule.meta.severity)})
           for rule_id, rule in sorted(catalog.items()) if rule_id not in rules_config.disable}
    return Result(snapshot.environment, findings, skipped, notes, topology, ran)


def configured_catalog(config: Config | None) -> dict[str, Rule]:
    """The built-in catalog plus a team's own rules from rules.paths."""
    catalog = load_catalog()
    if config:
        for directory in config.rules.paths:
            if not directory.is_dir():
                raise ConfigError(f"rules.paths: {directory} is not a directory")
            catalog.update(load_catalog(directory, team=True))
        unknown = sorted((set(config.rules.disable) | set(config.rules.severity) | set(config.rules.options))
                         - set(catalog))
        if unknown:
            raise ConfigError(f"rules: unknown rule id {unknown[0]} (see `audit rules`)")
    return catalog


def run_configured(snapshot: Snapshot, config: Config | None, tokens: list[str], today: dt.date,
                   catalog: dict[str, Rule] | None = None) -> Result:
    catalog = catalog if catalog is not None else configured_catalog(config)
    return run(
        snapshot,
        tokens,
        catalog,
        config.rules if config else None,
        config.suppressions if config else [],
        today,
    )
