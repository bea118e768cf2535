"""The rule catalog: one YAML file per rule, shipped inside the package (rules/ in the repository is
the package auditor.rules), plus a team's own rules from the directories `rules.paths` names.

A rule file declares what its check reads (`needs`) and the options it takes, with their types and
defaults, so the engine can skip what was not collected and audit.yaml's typos are errors.
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from auditor.model import fieldpath
from auditor.errors import CONFIG_LIMIT, ConfigError, parse_yaml, read_text
from auditor.outcomes import RuleInfo
from auditor.model.refs import Ref
from auditor.model.typed import Strict, key_path, problem, typed
from auditor.model.snapshot import RESOURCE_TYPES
from auditor.engine.subjects import Kind

if TYPE_CHECKING:
    from auditor.config import Config
    from auditor.engine.api import Context, Problem, Skip


# Host layers a rule may need besides AWS operations (`elbv2:DescribeTargetHealth`).
HOST_LAYERS = ("host.nginx", "host.docker")
_AWS_OPERATION = re.compile(r"^[a-z0-9]+:[A-Z][A-Za-z0-9]+$")

OptionType = Literal["int", "number", "string", "bool", "list[int]", "list[string]"]
_OPTION_TYPES: dict[str, Any] = {
    "int": int, "number": float, "string": str, "bool": bool, "list[int]": list[int], "list[string]": list[str],
}


class OptionSpec(Strict, kw_only=True):
    """One option a rule takes in audit.yaml's rules.options.RULE."""

    type: OptionType
    default: Any
    description: str = ""

    def coerce(self, value: Any) -> Any:
        """The value as its declared type; ValueError when it is not one (strict: "30" is no int)."""
        if self.type in ("int", "list[int]") and any(isinstance(v, bool) for v in _items(value)):
            raise ValueError("got a boolean")
        try:
            return msgspec.convert(value, _OPTION_TYPES[self.type], strict=self.type != "number")
        except msgspec.ValidationError:
            raise ValueError(f"expected {self.type}, got {value!r}") from None


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


Op = Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "matches", "exists", "missing"]


class Condition(Strict, kw_only=True):
    """A team rule's single declarative condition over one resource type."""

    resource_type: str
    key: str
    op: Op
    value: Any = None


class RuleFile(RuleInfo, Strict, kw_only=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Z][0-9]{3}$")]
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9-]+$")]
    check: str | None = None  # MODULE.FUNCTION: auditor/checks, or a module beside a team's rule
    condition: Condition | None = None
    # What the check reads: AWS operations and host layers. The engine skips the rule where one
    # was not collected, so a rule never passes on data nobody read.
    needs: list[str] = msgspec.field(default_factory=list)
    options: dict[str, OptionSpec] = msgspec.field(default_factory=dict)
    # What the check runs on (engine/subjects.py): `check(ctx)` once, or `check(ctx, subject)` per subject.
    on: list[Kind] = msgspec.field(default_factory=lambda: ["snapshot"])
    # `slots`: a problem found in every slot of a host is one finding about the host, with no slot.
    merge: Literal["slots"] | None = None

    def __post_init__(self) -> None:
        for need in self.needs:
            if need not in HOST_LAYERS and not _AWS_OPERATION.match(need):
                raise ValueError(f"needs: {need!r} is neither an AWS operation (service:Operation) nor one of "
                                 f"{HOST_LAYERS}")
        if (self.check is None) == (self.condition is None):
            raise ValueError("give exactly one of check or condition")
        for name, spec in self.options.items():
            try:
                spec.coerce(spec.default)
            except ValueError as exc:
                raise ValueError(f"options.{name}.default: {exc}") from None

    @property
    def aws_needs(self) -> list[str]:
        return [n for n in self.needs if n not in HOST_LAYERS]

    @property
    def host_needs(self) -> list[str]:
        return [n.removeprefix("host.") for n in self.needs if n in HOST_LAYERS]

    def info(self, severity: str | None = None) -> RuleInfo:
        shared = {name: getattr(self, name) for name in RuleInfo.__struct_fields__}
        return RuleInfo(**{**shared, "severity": severity or self.severity})


CheckFunction = Callable[..., Iterable["Problem | Skip"]]  # (ctx) or (ctx, subject), as `on:` says


@dataclass
class Rule:
    meta: RuleFile
    run: CheckFunction

    @property
    def id(self) -> str:
        return self.meta.id


def _load_check(reference: str, source: Path, team: bool) -> CheckFunction:
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


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b, "matches": lambda a, b: re.search(str(b), str(a)) is not None,
}
_COLLECTION_OF = {singular: collection for collection, singular in RESOURCE_TYPES.items()}


def _condition_check(condition: Condition, source: Path) -> CheckFunction:
    from auditor.engine.api import Problem

    collection = _COLLECTION_OF.get(condition.resource_type)
    if collection is None:
        raise ConfigError(f"{source}: condition.resource_type: expected one of {', '.join(_COLLECTION_OF)}")

    def check(ctx: Context) -> Iterator[Problem]:
        for resource in getattr(ctx.snapshot.resources, collection):
            found, value = fieldpath.lookup(msgspec.to_builtins(resource), condition.key)
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
                yield Problem(Ref(condition.resource_type, key),
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


def load_rule(path: Path, team: bool = False, text: str | None = None) -> Rule:
    if text is None:
        text = read_text(path, "rule file", ConfigError, limit=CONFIG_LIMIT)
    data = parse_yaml(text, path, ConfigError)
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as true (as in GitHub's workflow files)
    if isinstance(data, dict) and isinstance(data.get("on"), str):
        data["on"] = [data["on"]]  # `on: host` is short for `on: [host]`
    try:
        meta = typed(data, RuleFile)
    except msgspec.ValidationError as exc:
        keys, words = problem(exc, data, RuleFile)
        raise ConfigError(f"{path}: {key_path(keys) or '(top level)'}: {words}") from None
    if path.stem != meta.id:
        raise ConfigError(f"{path}: file name must be the rule id {meta.id}")
    if team and not re.fullmatch(r"X9[0-9]{2}", meta.id):
        raise ConfigError(f"{path}: a team's own rule needs an id X900-X999, not {meta.id}")
    if meta.condition is not None:
        return Rule(meta, _condition_check(meta.condition, path))
    return Rule(meta, _load_check(meta.check or "", path, team))


def builtin_catalog() -> dict[str, Rule]:
    """The rules shipped with auditor. An empty or unreadable catalog is an error, never "no findings"."""
    try:
        files = sorted((f for f in importlib.resources.files("auditor.rules").iterdir() if f.name.endswith(".yaml")),
                       key=lambda f: f.name)
    except (ModuleNotFoundError, OSError) as exc:
        raise ConfigError(f"the rule catalog (auditor.rules) cannot be read: {exc}; reinstall auditor") from None
    if not files:
        raise ConfigError("the rule catalog (auditor.rules) holds no rule: reinstall auditor")
    rules = [load_rule(Path(f.name), text=f.read_text(encoding="utf-8")) for f in files]
    return {r.id: r for r in rules}


def load_directory(directory: Path, team: bool = False) -> dict[str, Rule]:
    rules = [load_rule(p, team) for p in sorted(directory.glob("*.yaml"))]
    return {r.id: r for r in rules}


def configured_catalog(config: Config | None) -> dict[str, Rule]:
    """The built-in catalog plus a team's own rules from rules.paths, with audit.yaml's rules checked
    against it: unknown ids, unknown options and ill-typed option values are errors."""
    catalog = builtin_catalog()
    if config is None:
        return catalog
    for directory in config.rules.paths:
        if not directory.is_dir():
            raise ConfigError(f"{config.source}: rules.paths: {directory} is not a directory")
        catalog.update(load_directory(directory, team=True))
    unknown = sorted((set(config.rules.disable) | set(config.rules.severity) | set(config.rules.options))
                     - set(catalog))
    if unknown:
        raise ConfigError(f"{config.source}: rules: unknown rule id {unknown[0]} (see `audit rules`)")
    for rule_id, given in sorted(config.rules.options.items()):
        declared = catalog[rule_id].meta.options
        for name, value in given.items():
            where = f"{config.source}: rules.options.{rule_id}.{name}"
            if name not in declared:
                takes = ", ".join(sorted(declared)) or "no options"
                raise ConfigError(f"{where}: unknown option ({rule_id} takes: {takes})")
            try:
                declared[name].coerce(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    return catalog


def options_for(rule: Rule, given: dict[str, Any]) -> dict[str, Any]:
    """The rule's options: each declared default, overridden by what audit.yaml gives (validated)."""
    return {name: spec.coerce(given[name]) if name in given else spec.coerce(spec.default)
            for name, spec in rule.meta.options.items()}
