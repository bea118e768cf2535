"""Reading a Terraform/OpenTofu JSON plan (`terraform show -json plan.out`, "JSON Output Format"):
its resource changes and the configuration's expressions, indexed by address, and one change's values,
where a value unknown until apply is resolved through a reference to another planned resource, or is
the provider's default (AWS's) when the configuration does not set it, or stays unknown, named."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor.errors import AuditError, read_text
from auditor.model import fieldpath
from auditor.outcomes import Unknown


# Terraform type -> the snapshot collection it changes.
TYPES = {
    "aws_lb": "load_balancers", "aws_alb": "load_balancers",
    "aws_lb_listener": "listeners", "aws_alb_listener": "listeners",
    "aws_lb_listener_rule": "listener_rules", "aws_alb_listener_rule": "listener_rules",
    "aws_lb_target_group": "target_groups", "aws_alb_target_group": "target_groups",
    "aws_lb_target_group_attachment": "target_health", "aws_alb_target_group_attachment": "target_health",
    "aws_security_group": "security_groups",
    "aws_security_group_rule": "security_group_rules",
    "aws_vpc_security_group_ingress_rule": "security_group_rules",
    "aws_vpc_security_group_egress_rule": "security_group_rules",
    "aws_ecs_task_definition": "task_definitions",
    "aws_ecs_service": "ecs_services",
    # An Auto Scaling group's instances are targets of the groups it registers in (DESIGN "Planned changes").
    "aws_autoscaling_group": "group_registrations",
    "aws_autoscaling_attachment": "group_registrations",
    "aws_autoscaling_traffic_source_attachment": "group_registrations",
}
PLANNED = "planned:"  # the identity of a resource that exists only once the plan is applied
KNOWN_AFTER_APPLY = "(known after apply)"
class PlanError(AuditError):
    pass


def load(path: str | Path) -> dict[str, Any]:
    """A JSON plan, refused in one line when it is not one."""
    text = read_text(Path(path), "plan file", PlanError)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); give the output of "
                        "`terraform show -json plan.out`") from None
    if not isinstance(data, dict) or not isinstance(data.get("resource_changes", []), list) \
            or "format_version" not in data:
        raise PlanError(f"{path}: not a Terraform JSON plan (no format_version); give the output of "
                        "`terraform show -json plan.out`")
    if data.get("errored"):
        raise PlanError(f"{path}: the plan errored: Terraform could not plan, so there is nothing to judge")
    _shape(data, path)
    return data


def _shape(data: dict[str, Any], path: str | Path) -> None:
    """The parts of the format this reader walks, each of the type Terraform writes: a hand-made or
    damaged file is one line naming the part, never an error inside the overlay."""
    if not isinstance(data.get("configuration") or {}, dict):
        raise PlanError(f"{path}: configuration: not an object, as Terraform writes it")
    for index, rc in enumerate(data.get("resource_changes") or []):
        where = f"{path}: resource_changes[{index}]"
        if not isinstance(rc, dict) or not isinstance(rc.get("address"), str) or not isinstance(rc.get("type"), str):
            raise PlanError(f"{where}: not a resource change (an object with address and type)")
        change = rc.get("change")
        if not isinstance(change, dict) or not isinstance(change.get("actions", []), list):
            raise PlanError(f"{where} ({rc['address']}): change: not an object with a list of actions")
        for side in ("before", "after", "after_unknown"):
            if not isinstance(change.get(side) or {}, dict):
                raise PlanError(f"{where} ({rc['address']}): change.{side}: not an object")


# --- reading one resource change ---------------------------------------------------------------


_INDEX = re.compile(r"\[[^\]]*\]$")


def _base(address: str) -> str:
    """A resource instance's address without its count/for_each index."""
    return _INDEX.sub("", address)


def _module_prefix(address: str) -> str:
    parts = _base(address).split(".")
    return ".".join(parts[:-2]) + "." if len(parts) > 2 else ""


class Plan:
    """The plan's resource changes and the configuration's expressions, indexed by address."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.changes = [rc for rc in data.get("resource_changes") or []
                        if rc.get("mode", "managed") == "managed" and rc.get("type") in TYPES]
        self.by_address = {rc["address"]: rc for rc in self.changes}
        self.expressions: dict[str, dict[str, Any]] = {}
        self.for_each: dict[str, list[Any]] = {}  # address -> what its for_each expression refers to
        self.outputs: dict[str, list[str]] = {}  # `module.alb.target_groups` -> what its expression refers to
        # `module.alb.var.security_groups` -> the call's expression for it, or the module's default
        self.inputs: dict[str, dict[str, Any]] = {}
        variables = data.get("variables")
        # The root module's variable values: a key a reference indexes with (`target_groups[var.attach_to]`).
        self.variables = {f"var.{name}": v.get("value") for name, v in variables.items() if isinstance(v, dict)} \
            if isinstance(variables, dict) else {}
        self._index((data.get("configuration") or {}).get("root_module"), "")
        self.identity: dict[str, str] = {}  # address -> the ARN or id it has after apply (or planned:ADDRESS)

    def _index(self, module: Any, prefix: str) -> None:
        """Each resource's expressions by address, through module calls; what is not of the shape
        Terraform writes holds no expressions."""
        if not isinstance(module, dict):
            return
        resources = module.get("resources")
        for resource in resources if isinstance(resources, list) else []:
            if isinstance(resource, dict) and isinstance(resource.get("address"), str):
                expressions = resource.get("expressions")
                self.expressions[prefix + resource["address"]] = expressions if isinstance(expressions, dict) else {}
                for_each = resource.get("for_each_expression")
                if isinstance(for_each, dict) and isinstance(for_each.get("references"), list):
                    self.for_each[prefix + resource["address"]] = for_each["references"]
        outputs = module.get("outputs")
        for name, output in outputs.items() if isinstance(outputs, dict) and prefix else []:
            expression = output.get("expression") if isinstance(output, dict) else None
            references = expression.get("references") if isinstance(expression, dict) else None
            self.outputs[prefix + name] = [prefix + r for r in references or [] if isinstance(r, str)]
        calls = module.get("module_calls")
        for name, call in calls.items() if isinstance(calls, dict) else []:
            if isinstance(call, dict):
                self._inputs(call, f"{prefix}module.{name}.")
                self._index(call.get("module"), f"{prefix}module.{name}.")

    def _inputs(self, call: dict[str, Any], inner: str) -> None:
        """A module call's inputs, as the module's `var.` references read them: the call's expression
        (its references relative to the caller), else the variable's default."""
        variables = (call.get("module") or {}).get("variables") if isinstance(call.get("module"), dict) else None
        for name, variable in variables.items() if isinstance(variables, dict) else []:
            if isinstance(variable, dict) and "default" in variable:
                self.inputs[f"{inner}var.{name}"] = {"constant_value": variable["default"]}
        expressions = call.get("expressions")
        for name, expression in expressions.items() if isinstance(expressions, dict) else []:
            if isinstance(expression, dict):
                self.inputs[f"{inner}var.{name}"] = expression

    def expression(self, address: str, path: tuple[Any, ...]) -> dict[str, Any] | None:
        node = fieldpath.dig(self.expressions.get(_base(address)), path)
        if isinstance(node, list) and len(node) == 1:  # an attribute set from one block: its expression
            node = node[0]
        return node if isinstance(node, dict) else None

    def referenced(self, address: str, path: tuple[Any, ...]) -> str | None:
        """The planned resource the configuration's expression at ``path`` refers to, if exactly one."""
        found, _ = self.references(address, path)
        return found[0] if len(found) == 1 else None

    def references(self, address: str, path: tuple[Any, ...]) -> tuple[list[str], bool]:
        """The planned resources the expression at ``path`` refers to, in order, and whether every
        reference was followed (a module's input is followed to its caller; `local.` and `data.` are not)."""
        references = (self.expression(address, path) or {}).get("references") or []
        if references and all(str(r).startswith("each.value") for r in references):
            # `each.value.X` is an element of the map the for_each expression builds: followed when that
            # map refers to exactly one resource (its `local.` conditions aside), else unknown.
            found, _ = self._followed([r for r in self.for_each.get(_base(address), []) if not str(r).startswith(
                "local.")], _module_prefix(address), address, 0)
            return found, len(found) == 1
        return self._followed(references, _module_prefix(address), address, 0)

    def _followed(self, references: list[Any], prefix: str, referrer: str, depth: int) -> tuple[list[str], bool]:
        found: list[str] = []
        unfollowed = []
        references = references if isinstance(references, list) else []
        # Terraform lists the variables an index is written with beside what it indexes; their values
        # are the keys it may take (a module's own variables are not known here).
        keys = tuple(dict.fromkeys(value for r in references
                                   if isinstance(value := self.variables.get(f"{prefix}{r}"), str)))
        for reference in references:
            target = self._resolve(prefix + str(reference), referrer, keys)
            if target is None:
                unfollowed.append(prefix + str(reference))
            elif target not in found:
                found.append(target)
        whole = True
        used = {k for k in keys if any(t.endswith(f'["{k}"]') for t in found)}
        for reference in unfollowed:
            if self._part_of(reference, found) or self.variables.get(reference) in used:
                continue  # a repeat of what was followed, or the key it was followed at
            more, known = self._input(reference, referrer, depth)
            found += [t for t in more if t not in found]
            whole = whole and known
        return found, whole

    def _input(self, reference: str, referrer: str, depth: int) -> tuple[list[str], bool]:
        """What a variable adds: nothing when its value is written out with no resource id in it (a default
        `[]`, a flag, a root variable's `true`), the resources a module caller's expression refers to,
        else unknown."""
        if reference in self.variables:  # the root module's: its value is in the plan
            return [], not _may_be_id(self.variables[reference])
        variable = _VARIABLE.match(reference)
        expression = self.inputs.get(variable[0]) if variable else None
        if expression is None or depth > 8:
            return [], False
        if "constant_value" in expression:
            value = expression["constant_value"]
            return [], not (isinstance(value, str) or isinstance(value, list) and any(isinstance(v, str) for v in value))
        return self._followed(expression.get("references") or [], _caller(variable["module"]), referrer, depth + 1)

    def _part_of(self, reference: str, found: list[str]) -> bool:
        """Whether an unfollowed reference only repeats one followed: the same resource, its module, or
        the module output (`module.alb.target_groups`) that holds it."""
        output = _OUTPUT.match(reference)
        inner = self.outputs.get(output["output"], []) if output else []
        return _names_part_of(reference, found) or any(_names_part_of(i, found) for i in inner)

    def _resolve(self, reference: str, referrer: str, keys: tuple[str, ...] = ()) -> str | None:
        """The planned resource a reference names, through a module's output: `module.alb.target_groups
        ["app"].arn` is what the output `target_groups` refers to, `module.alb.aws_lb_target_group.this`,
        at key "app"; indexed by a variable (`[var.attach_to]`), at the one key of ``keys`` it holds."""
        found = _resolve_reference(reference, referrer, self.by_address)
        output = _OUTPUT.match(reference)
        if found is not None or output is None or output["output"] not in self.outputs:
            return found
        for inner in self.outputs[output["output"]]:
            indexed = [output["key"]] if output["key"] else [f'["{k}"]' for k in keys]
            keyed = [f"{_base(inner)}{key}" for key in indexed if f"{_base(inner)}{key}" in self.by_address]
            if len(keyed) == 1:
                return keyed[0]
            if not output["key"] and f"{_base(inner)}" in self.by_address:
                return _base(inner)
            found = _resolve_reference(inner, referrer, self.by_address)
            if found is not None:
                return found
        return None

    def block_written(self, address: str, name: str) -> bool:
        """Whether the configuration writes block ``name`` literally; one made by a `dynamic` block (as
        terraform-aws-modules writes every listener action) has no expressions in the JSON plan."""
        return name in (self.expressions.get(_base(address)) or {})

    def sole_planned(self, resource_types: tuple[str, ...]) -> str | None:
        """The one resource of these types the plan creates (or replaces) with an identity unknown until
        apply, when there is exactly one: the only thing a reference nobody wrote down can name."""
        planned = [a for a, i in self.identity.items()
                   if i == PLANNED + a and self.by_address[a]["type"] in resource_types]
        return planned[0] if len(planned) == 1 else None


# Attributes no gating rule reads, which terraform-aws-modules writes as `try(…, null)` and so plans as
# unknown until apply: a target group's protocol_version (T307 only), a health check's timeout, an
# action's order (forwards are found by their type). They must not make the gate's answer unknown.
_UNJUDGED = frozenset({"protocol_version", "timeout", "order"})
# `module.alb.var.security_groups…`: a module's input variable.
_VARIABLE = re.compile(r"^(?P<module>(?:module\.[^.\[]+\.)+)var\.[A-Za-z0-9_-]+")
# `module.NAME.OUTPUT["key"]…`: a module output, and the key taken from it.
_OUTPUT = re.compile(r'^(?P<output>(?:module\.[^.\[]+\.)+[^.\[]+)(?P<key>\[[^\]]*\])?')
# An ARN attribute inside a block, and the resource types that can hold it.
_HOLDERS = {"target_group_arn": ("aws_lb_target_group", "aws_alb_target_group")}


# An id or ARN a value may hold in place of a reference: `sg-0123…`, `arn:aws:…`.
_ID = re.compile(r"^(?:arn:|[a-z]+(?:-[a-z]+)*-[0-9a-f]{8,17}$)")


def _may_be_id(value: Any) -> bool:
    return any(isinstance(v, str) and _ID.match(v) for v in (value if isinstance(value, list) else [value]))


def _caller(module: str) -> str:
    """The prefix of the module that calls ``module`` (`module.a.module.b.` -> `module.a.`)."""
    return module[: module[:-1].rstrip(".").rfind("module.")] if module.count("module.") > 1 else ""


def _names_part_of(reference: str, found: list[str]) -> bool:
    """Terraform lists `aws_lb.web.arn`, `aws_lb.web` and `slot[each.key].arn` beside `slot`, and the module
    (`module.alb`) beside its output: a reference to a resource already followed, by its index or without
    one, or to the module that holds it, adds nothing."""
    def bare(address: str) -> str:
        return re.sub(r"\[[^\]]*\]", "", address)

    return any(bare(reference) == bare(t) or bare(reference).startswith(bare(t) + ".")
               or (reference.startswith("module.") and bare(t).startswith(bare(reference) + ".")) for t in found)


def _resolve_reference(reference: str, referrer: str, addresses: dict[str, Any]) -> str | None:
    parts = reference.split(".")
    start = 0
    while parts[start:start + 1] == ["module"]:
        start += 2
    if len(parts) < start + 2 or parts[start] in ("var", "local", "data", "each", "count", "path", "self"):
        return None
    candidate = ".".join(parts[: start + 2])
    if candidate in addresses:
        return candidate
    if "[" in candidate:
        return None
    instances = [a for a in addresses if _base(a) == candidate]
    if len(instances) == 1:
        return instances[0]
    index = _INDEX.search(referrer)  # aws_lb_listener_rule.api[0] refers to aws_lb_target_group.api[0]
    return candidate + index.group(0) if index and candidate + index.group(0) in addresses else None


class Values:
    """One side (before or after) of a resource change, read attribute by attribute."""

    def __init__(self, plan: Plan, rc: dict[str, Any], side: str, unknown: list[Unknown]) -> None:
        self.plan, self.address = plan, rc["address"]
        self.data = rc["change"].get(side) or {}
        self.unknown_tree = rc["change"].get("after_unknown") or {} if side == "after" else {}
        self.unknown = unknown

    def get(self, *path: Any, default: Any = None) -> Any:
        if fieldpath.dig(self.unknown_tree, path) is True:
            return self._unknown(path, default)
        value = fieldpath.dig(self.data, path)
        return default if value is None else value

    def _unknown(self, path: tuple[Any, ...], default: Any) -> Any:
        """A value known only after apply: followed through the configuration's references, element by
        element for a list; the provider's default when the configuration does not set it; else named."""
        if path == ("name",) and self.data.get("name_prefix"):
            return self.data["name_prefix"]  # AWS appends a random suffix: the prefix is what names it
        if path[-1] in _UNJUDGED:
            return default  # no gating rule reads it: an unknown one never decides the gate
        expression = self.plan.expression(self.address, path)
        if expression is None and (len(path) == 1 or self.plan.block_written(self.address, path[0])):
            return default  # not set in the configuration: the provider's default is AWS's
        if expression is None:  # inside a block a `dynamic` wrote: only an ARN one planned group can hold
            target = self.plan.sole_planned(_HOLDERS.get(path[-1], ()))
            targets, whole = ([target], True) if target else ([], False)
        else:
            targets, whole = self.plan.references(self.address, path)
        if targets and whole and (isinstance(default, list) or len(targets) == 1):
            identities = [self.plan.identity.get(t, PLANNED + t) for t in targets]
            return identities if isinstance(default, list) else identities[0]
        self.unknown.append(Unknown(self.address, fieldpath.join(path)))
        return KNOWN_AFTER_APPLY if isinstance(default, str) else default

    def blocks(self, *path: Any) -> Iterator[tuple[Any, ...]]:
        """The paths of each block of a nested block list (``default_action``, ``ingress``)."""
        if fieldpath.dig(self.unknown_tree, path) is True:
            self.get(*path)
            return
        for index, _ in enumerate(fieldpath.dig(self.data, path) or []):
            yield (*path, index)
