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
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.config import Config, RulesConfig, Suppression
from auditor.errors import ConfigError
from auditor.keys import Keys
from auditor.snapshot import Snapshot
from auditor.topology import Topology

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
RULES_DIR = Path(__file__).resolve().parent.parent / "rules"


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


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Z][0-9]{3}$")
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    severity: Severity
    title: str
    rationale: str
    remediation: str
    references: list[str] = Field(default_factory=list)
    check: str


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


def _load_check(reference: str, source: Path) -> Callable[[Context], Iterable[Problem | Skip]]:
    module_name, _, function = reference.rpartition(".")
    if not module_name:
        raise ConfigError(f"{source}: check {reference!r} must be MODULE.FUNCTION")
    try:
        module = importlib.import_module(f"auditor.checks.{module_name}")
        return getattr(module, function)
    except (ImportError, AttributeError):
        raise ConfigError(f"{source}: check {reference!r} does not exist in auditor/checks") from None


def load_rule(path: Path) -> Rule:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        meta = RuleFile.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read rule: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    if path.stem != meta.id:
        raise ConfigError(f"{path}: file name must be the rule id {meta.id}")
    return Rule(meta, _load_check(meta.check, path))


def load_catalog(directory: Path = RULES_DIR) -> dict[str, Rule]:
    rules = [load_rule(p) for p in sorted(directory.glob("*.yaml"))]
    return {r.id: r for r in rules}


def fingerprint(rule_id: str, resource: str, slot: str | None, identity: dict[str, Any]) -> str:
    blob = json.dumps([rule_id, resource, slot, identity], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _suppression_for(finding: Finding, suppressions: list[Suppression], today: dt.date) -> Suppression | None:
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
    for rule_id, rule in sorted(catalog.items()):
        if rule_id in rules_config.disable:
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
            suppression = _suppression_for(finding, list(suppressions), today)
            if suppression:
                finding.suppressed = True
                finding.suppression_reason = suppression.reason
            findings.append(finding)
    findings.sort(key=lambda f: (severity_rank(f.severity), f.rule_id, f.resource, f.slot or ""))
    ran = {rule_id: rule.meta.model_copy(update={"severity": rules_config.severity.get(rule_id, rule.meta.severity)})
           for rule_id, rule in sorted(catalog.items()) if rule_id not in rules_config.disable}
    return Result(snapshot.environment, findings, skipped, notes, topology, ran)


def run_configured(snapshot: Snapshot, config: Config | None, tokens: list[str], today: dt.date) -> Result:
    catalog = load_catalog()
    if config:
        for directory in config.rules.paths:
            if not directory.is_dir():
                raise ConfigError(f"rules.paths: {directory} is not a directory")
            catalog.update(load_catalog(directory))
        unknown = sorted((set(config.rules.disable) | set(config.rules.severity)) - set(catalog))
        if unknown:
            raise ConfigError(f"rules: unknown rule id {unknown[0]} (see `audit rules`)")
    return run(
        snapshot,
        tokens,
        catalog,
        config.rules if config else None,
        config.suppressions if config else [],
        today,
    )
