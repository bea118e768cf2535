"""A Terraform/OpenTofu JSON plan applied to an environment's snapshot: its AWS side as it will be after apply.

Input is what `terraform show -json plan.out` writes ("JSON Output Format"): ``resource_changes`` with
``change.actions``, ``before``, ``after`` and ``after_unknown``, and ``configuration`` with the references
between resources. Only the resource types the path rules read are applied; a resource the plan does not
change (``no-op``, ``read``) is not re-read, the snapshot already holds it.

Matching: by ARN or id; else a load balancer or target group by name, a listener by load balancer and port;
security group rules by group, direction, protocol, ports and peer. An update applies only the attributes
it changes (before and after differ), so a group whose rules live in separate rule resources keeps them.

A value unknown until apply is resolved in this order: a reference to another planned resource (a created
target group's ARN in a listener's action) stands for that resource; an attribute the configuration does
not set is the provider's default, which is AWS's; anything else stays unknown and is reported with its
address and attribute, so that the gate can say it cannot decide.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from auditor.model.aws_shapes import action_model, containers, sg_rules
from auditor.errors import AuditError, read_text
from auditor.model import fieldpath
from auditor.model.keys import Keys
from auditor.model.typed import typed
from auditor.outcomes import Change, Finding, Result, Review, Unknown
from auditor.model.snapshot import (
    AWS_DEFAULTS,
    EcsLoadBalancer,
    EcsService,
    HealthCheck,
    Listener,
    ListenerRule,
    LoadBalancer,
    RESOURCE_TYPES,
    Redactor,
    Resources,
    SecurityGroup,
    SgRule,
    Snapshot,
    Subnet,
    TargetGroup,
    TargetHealth,
    TaskDefinition,
    tags_match,
    validated,
)

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
}
PLANNED = "planned:"  # the identity of a resource that exists only once the plan is applied
KNOWN_AFTER_APPLY = "(known after apply)"
NOTE_REPLACED_TG = "traffic waits for the new group's health checks"


class PlanError(AuditError):
    pass


@dataclass
class Planned:
    snapshot: Snapshot
    changes: list[Change]
    unknown: list[Unknown]
    outside: list[str]  # addresses of changes to resources that are not this environment's


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
    return data


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
        self._index(data.get("configuration", {}).get("root_module", {}), "")
        self.identity: dict[str, str] = {}  # address -> the ARN or id it has after apply (or planned:ADDRESS)

    def _index(self, module: dict[str, Any], prefix: str) -> None:
        for resource in module.get("resources") or []:
            self.expressions[prefix + resource["address"]] = resource.get("expressions") or {}
        for name, call in (module.get("module_calls") or {}).items():
            self._index(call.get("module") or {}, f"{prefix}module.{name}.")

    def expression(self, address: str, path: tuple[Any, ...]) -> dict[str, Any] | None:
        node = fieldpath.dig(self.expressions.get(_base(address)), path)
        if isinstance(node, list) and len(node) == 1:  # an attribute set from one block: its expression
            node = node[0]
        return node if isinstance(node, dict) else None

    def referenced(self, address: str, path: tuple[Any, ...]) -> str | None:
        """The planned resource the configuration's expression at ``path`` refers to, if exactly one."""
        expression = self.expression(address, path) or {}
        found = set()
        for reference in expression.get("references") or []:
            target = _resolve_reference(_module_prefix(address) + reference, address, self.by_address)
            if target:
                found.add(target)
        return found.pop() if len(found) == 1 else None


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
            expression = self.plan.expression(self.address, path)
            if expression is None:
                return default  # not set in the configuration: the provider's default is AWS's
            target = self.plan.referenced(self.address, path)
            if target is not None:
                return self.plan.identity.get(target, PLANNED + target)
            self.unknown.append(Unknown(self.address, fieldpath.join(path)))
            return KNOWN_AFTER_APPLY if isinstance(default, str) else default
        value = fieldpath.dig(self.data, path)
        return default if value is None else value

    def blocks(self, *path: Any) -> Iterator[tuple[Any, ...]]:
        """The paths of each block of a nested block list (``default_action``, ``ingress``)."""
        if fieldpath.dig(self.unknown_tree, path) is True:
            self.get(*path)
            return
        for index, _ in enumerate(fieldpath.dig(self.data, path) or []):
            yield (*path, index)


# --- Terraform attributes -> snapshot models --------------------------------------------------------


def _own_id(v: Values, attribute: str = "arn") -> str:
    return v.get(attribute) or v.get("id") or PLANNED + v.address


def _tags(v: Values) -> dict[str, str]:
    return {str(k): str(val) for k, val in (v.get("tags") or {}).items()}


def load_balancer(v: Values) -> LoadBalancer:
    terraform = {"idle_timeout.timeout_seconds": ("idle_timeout",),
                 "deletion_protection.enabled": ("enable_deletion_protection",),
                 "routing.http.drop_invalid_header_fields.enabled": ("drop_invalid_header_fields",),
                 "routing.http.desync_mitigation_mode": ("desync_mitigation_mode",),
                 "access_logs.s3.enabled": ("access_logs", 0, "enabled")}
    attributes = {name: v.get(*path, default=AWS_DEFAULTS[name]) for name, path in terraform.items()}
    return LoadBalancer(
        arn=_own_id(v), name=v.get("name", default=v.address), type=v.get("load_balancer_type", default="application"),
        scheme="internal" if v.get("internal", default=False) else "internet-facing",
        vpc_id=v.get("vpc_id", default=""), security_groups=v.get("security_groups", default=[]),
        subnets=[Subnet(id=s) for s in v.get("subnets", default=[])], tags=_tags(v),
        attributes={k: str(val).lower() if isinstance(val, bool) else str(val) for k, val in attributes.items()},
    )


def _action(v: Values, path: tuple[Any, ...]) -> dict[str, Any]:
    """A Terraform action block in the API's shape, read by the collector's own reader."""
    shape: dict[str, Any] = {"Type": v.get(*path, "type", default=""), "Order": v.get(*path, "order")}
    if v.get(*path, "target_group_arn"):
        shape["TargetGroupArn"] = v.get(*path, "target_group_arn")
    groups = [{"TargetGroupArn": v.get(*g, "arn"), "Weight": v.get(*g, "weight", default=1)}
              for f in v.blocks(*path, "forward") for g in v.blocks(*f, "target_group")]
    if groups:
        shape["ForwardConfig"] = {"TargetGroups": groups}
    for block, key, fields in (("redirect", "RedirectConfig", ("protocol", "port", "host", "path", "query",
                                                               "status_code")),
                               ("fixed_response", "FixedResponseConfig", ("content_type", "status_code"))):
        for b in v.blocks(*path, block):
            shape[key] = {"".join(w.title() for w in f.split("_")): v.get(*b, f) for f in fields}
    return shape


def listener(v: Values) -> Listener:
    certificate = v.get("certificate_arn")
    return Listener(
        arn=_own_id(v), load_balancer_arn=v.get("load_balancer_arn", default=""), port=v.get("port", default=0),
        protocol=v.get("protocol", default="HTTP"), ssl_policy=v.get("ssl_policy") if certificate else None,
        certificates=[certificate] if certificate else [],
        default_actions=[action_model(_action(v, p)) for p in v.blocks("default_action")],
    )


_CONDITIONS = {"path_pattern": ("path-pattern", "PathPatternConfig"), "host_header": ("host-header", "HostHeaderConfig"),
               "http_request_method": ("http-request-method", "HttpRequestMethodConfig"),
               "source_ip": ("source-ip", "SourceIpConfig")}


def _condition(v: Values, path: tuple[Any, ...]) -> list[dict[str, Any]]:
    out = []
    for name, (field_name, key) in _CONDITIONS.items():
        for b in v.blocks(*path, name):
            values = sorted(v.get(*b, "values", default=[]))
            out.append({"Field": field_name, "Values": values, key: {"Values": values}})
    for b in v.blocks(*path, "http_header"):
        out.append({"Field": "http-header", "HttpHeaderConfig": {
            "HttpHeaderName": v.get(*b, "http_header_name"), "Values": sorted(v.get(*b, "values", default=[]))}})
    for b in v.blocks(*path, "query_string"):
        out.append({"Field": "query-string", "QueryStringConfig": {"Values": [
            {"Key": v.get(*q, "key"), "Value": v.get(*q, "value")} for q in v.blocks(*b)]}})
    return out


def listener_rule(v: Values) -> ListenerRule:
    return ListenerRule(
        arn=_own_id(v), listener_arn=v.get("listener_arn", default=""), priority=str(v.get("priority", default="")),
        conditions=[c for p in v.blocks("condition") for c in _condition(v, p)],
        actions=[action_model(_action(v, p)) for p in v.blocks("action")],
    )


def target_group(v: Values) -> TargetGroup:
    hc = ("health_check", 0)
    attributes = {name: v.get(argument, default=AWS_DEFAULTS[name]) for name, argument in
                  (("deregistration_delay.timeout_seconds", "deregistration_delay"),
                   ("slow_start.duration_seconds", "slow_start"))}
    return TargetGroup(
        arn=_own_id(v), name=v.get("name", default=v.address), port=v.get("port"),
        protocol=v.get("protocol", default="HTTP"), protocol_version=v.get("protocol_version", default="HTTP1"),
        target_type=v.get("target_type", default="instance"), vpc_id=v.get("vpc_id", default=""),
        health_check=HealthCheck(
            enabled=v.get(*hc, "enabled", default=True), protocol=v.get(*hc, "protocol", default="HTTP"),
            port=str(v.get(*hc, "port", default="traffic-port")), path=v.get(*hc, "path", default="/"),
            interval_seconds=v.get(*hc, "interval", default=30), timeout_seconds=v.get(*hc, "timeout", default=5),
            healthy_threshold=v.get(*hc, "healthy_threshold", default=5),
            unhealthy_threshold=v.get(*hc, "unhealthy_threshold", default=2),
            matcher=v.get(*hc, "matcher", default="200")),
        attributes={k: str(val) for k, val in attributes.items()}, tags=_tags(v),
    )


def attachment(v: Values) -> TargetHealth:
    # Registered, not yet checked: AWS's state for a target that has just joined a group.
    return TargetHealth(target_group_arn=v.get("target_group_arn", default=""), target_id=v.get("target_id", default=""),
                        port=v.get("port"), availability_zone=v.get("availability_zone"), state="initial",
                        reason="Elb.RegistrationInProgress")


def _permission(v: Values, path: tuple[Any, ...], group: str) -> dict[str, Any]:
    """An inline ingress/egress block as an IpPermission."""
    groups = list(v.get(*path, "security_groups", default=[])) + ([group] if v.get(*path, "self") else [])
    return {"IpProtocol": v.get(*path, "protocol", default="-1"), "FromPort": v.get(*path, "from_port"),
            "ToPort": v.get(*path, "to_port"),
            "IpRanges": [{"CidrIp": c} for c in v.get(*path, "cidr_blocks", default=[])],
            "Ipv6Ranges": [{"CidrIpv6": c} for c in v.get(*path, "ipv6_cidr_blocks", default=[])],
            "UserIdGroupPairs": [{"GroupId": g} for g in groups],
            "PrefixListIds": [{"PrefixListId": p} for p in v.get(*path, "prefix_list_ids", default=[])]}


def _without_description(rules: list[SgRule]) -> list[SgRule]:
    return [msgspec.structs.replace(r, description=None) for r in rules]


def security_group(v: Values) -> SecurityGroup:
    group = _own_id(v, "id")
    return SecurityGroup(
        id=group, name=v.get("name", default=v.address), vpc_id=v.get("vpc_id", default=""),
        description=v.get("description", default=""), tags=_tags(v),
        ingress=_without_description([r for p in v.blocks("ingress") for r in sg_rules(_permission(v, p, group))]),
        egress=_without_description([r for p in v.blocks("egress") for r in sg_rules(_permission(v, p, group))]),
    )


def security_group_rule(v: Values, resource_type: str) -> tuple[str, str, list[SgRule]]:
    """(group id, ingress|egress, its normalized rules) of a separate rule resource."""
    group = v.get("security_group_id", default="")
    if resource_type == "aws_security_group_rule":
        permission = _permission(v, (), group)
        source = v.get("source_security_group_id")
        if source:
            permission["UserIdGroupPairs"].append({"GroupId": source})
        return group, v.get("type", default="ingress"), _without_description(sg_rules(permission))
    direction = "ingress" if resource_type.endswith("ingress_rule") else "egress"
    permission = {"IpProtocol": str(v.get("ip_protocol", default="-1")), "FromPort": v.get("from_port"),
                  "ToPort": v.get("to_port"),
                  "IpRanges": [{"CidrIp": v.get("cidr_ipv4")}] if v.get("cidr_ipv4") else [],
                  "Ipv6Ranges": [{"CidrIpv6": v.get("cidr_ipv6")}] if v.get("cidr_ipv6") else [],
                  "UserIdGroupPairs": [{"GroupId": v.get("referenced_security_group_id")}]
                  if v.get("referenced_security_group_id") else [],
                  "PrefixListIds": [{"PrefixListId": v.get("prefix_list_id")}] if v.get("prefix_list_id") else []}
    return group, direction, _without_description(sg_rules(permission))


def task_definition(v: Values, redactor: Redactor) -> TaskDefinition:
    text = v.get("container_definitions", default="[]")
    try:
        definitions = json.loads(text) if isinstance(text, str) else []
    except json.JSONDecodeError:
        v.unknown.append(Unknown(v.address, "container_definitions"))
        definitions = []
    return TaskDefinition(
        family=v.get("family", default=""), revision=v.get("revision", default=0),
        network_mode=v.get("network_mode", default="bridge"),
        containers=containers(definitions, redactor),
    )


def ecs_service(v: Values) -> EcsService:
    return EcsService(
        arn=_own_id(v, "id"), cluster=v.get("cluster", default=""), name=v.get("name", default=v.address),
        launch_type=v.get("launch_type"), desired_count=v.get("desired_count", default=0),
        security_groups=v.get("network_configuration", 0, "security_groups", default=[]),
        load_balancers=[EcsLoadBalancer(target_group_arn=v.get(*p, "target_group_arn", default=""),
                                        container_name=v.get(*p, "container_name", default=""),
                                        container_port=v.get(*p, "container_port", default=0))
                        for p in v.blocks("load_balancer")],
        tags=_tags(v),
    )


# --- the overlay ------------------------------------------------------------------------------------

_CONVERT = {"load_balancers": load_balancer, "listeners": listener, "listener_rules": listener_rule,
            "target_groups": target_group, "security_groups": security_group, "ecs_services": ecs_service}
# The order changes are applied in: what a later collection refers to exists by then.
_ORDER = ("load_balancers", "target_groups", "listeners", "listener_rules", "task_definitions", "ecs_services",
          "target_health", "security_groups", "security_group_rules")
_IGNORED_FIELDS = {"arn", "id", "account", "region", "dns_name", "load_balancer_arns", "task_definition"}


def _identity(collection: str, model: Any) -> str:
    return model.id if collection == "security_groups" else model.arn


def _action_of(rc: dict[str, Any]) -> str:
    actions = rc["change"].get("actions") or []
    if len(actions) == 2:
        return "replace"
    return actions[0] if actions and actions[0] in ("create", "update", "delete") else ""


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(field path, before, after) of each field that differs; mappings compared key by key."""
    out = []
    for name in sorted(set(old) | set(new)):
        if not prefix and name in _IGNORED_FIELDS:
            continue
        a, b = old.get(name), new.get(name)
        if isinstance(a, dict) and isinstance(b, dict) and name not in ("redirect", "fixed_response"):
            out += _differences(a, b, f"{prefix}{name}.")
        elif a != b:
            out.append((prefix + name, a, b))
    return out


def _shown(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return "(none)"
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return ", ".join(map(str, value))
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class _Overlay:
    def __init__(self, plan: Plan, snapshot: Snapshot, scope: dict[str, str], redactor: Redactor) -> None:
        self.plan, self.scope, self.redactor = plan, scope, redactor
        self.res: Resources = copy.deepcopy(snapshot.resources)
        self.changes: list[Change] = []
        self.unknown_of: dict[str, list[Unknown]] = {}
        self.outside: list[str] = []
        self.created: dict[str, tuple[str, Any]] = {}  # address -> (collection, model): joins if it belongs here
        self.task_definitions: dict[str, tuple[str, TaskDefinition]] = {}  # identity -> (address, model)
        self.renamed: dict[str, str] = {}  # a replaced resource's identity -> its successor's
        self._account = next((r.account for c in ("load_balancers", "target_groups", "security_groups")
                              for r in getattr(self.res, c) if r.account), "")
        self._region = next((r.region for c in ("load_balancers", "target_groups", "security_groups")
                             for r in getattr(self.res, c) if r.region), "")

    def values(self, rc: dict[str, Any], side: str) -> Values:
        return Values(self.plan, rc, side, self.unknown_of.setdefault(rc["address"], []))

    def find(self, collection: str, v: Values) -> Any:
        items = getattr(self.res, collection)
        identity = v.get("id" if collection == "security_groups" else "arn") or v.get("id")
        for item in items:
            if _identity(collection, item) == identity:
                return item
        name = v.get("name")
        if collection in ("load_balancers", "target_groups") and name:
            return next((i for i in items if i.name == name), None)
        if collection == "listeners":
            lb, port = v.get("load_balancer_arn"), v.get("port")
            return next((i for i in items if i.load_balancer_arn == lb and i.port == port), None)
        if collection == "ecs_services" and name:
            cluster = v.get("cluster")
            return next((i for i in items if i.name == name and i.cluster == cluster), None)
        return None

    def place(self, model: Any) -> Any:
        return msgspec.structs.replace(model, account=self._account, region=self._region)

    # --- resources the snapshot models one to one --------------------------------------------------

    def resource(self, rc: dict[str, Any], collection: str, action: str) -> None:
        address, items = rc["address"], getattr(self.res, collection)
        before = self.values(rc, "before") if action != "create" else None
        existing = self.find(collection, before) if before else None
        if action in ("update", "delete") and existing is None:
            self.outside.append(address)
            return
        if action == "delete":
            items.remove(existing)
            self.changes.append(Change(address, action, collection, "deleted", {_identity(collection, existing)}))
            return
        after = _CONVERT[collection](self.values(rc, "after"))
        if action == "update":
            old = _renamed(msgspec.to_builtins(_CONVERT[collection](before)), self.renamed)
            differences = _differences(old, msgspec.to_builtins(after))
            task_address, task = self.service_task(rc, existing) if collection == "ecs_services" else ("", None)
            if task is not None:
                differences.append(("task_definition", _change_value(existing.task_definition),
                                    f"{task_address}: {_change_value(task)}"))
            if not differences:
                return  # nothing the rules read changes (moto's perpetual diffs, descriptions)
            update = _merged(msgspec.to_builtins(existing), msgspec.to_builtins(after), differences)
            if task is not None:
                update["task_definition"] = task
            items[items.index(existing)] = typed(update, type(existing))
            detail = ", ".join(f"{path} {_change_value(a)} → {_change_value(b)}" for path, a, b in differences)
            self.changes.append(Change(address, action, collection, detail, {_identity(collection, existing)}))
            return
        if collection == "ecs_services":
            after = msgspec.structs.replace(after, task_definition=self.service_task(rc, existing)[1])
        new = self.place(after)
        items.append(new)
        identity = _identity(collection, new)
        if existing is None:
            self.created[address] = (collection, new)
            self.changes.append(Change(address, action, collection, "created", {identity}))
            return
        items.remove(existing)
        old = _identity(collection, existing)
        self.renamed[old] = identity
        differences = _differences(msgspec.to_builtins(_CONVERT[collection](before)), msgspec.to_builtins(after))
        detail = "replaced" + (" (" + ", ".join(f"{p} {_change_value(a)} → {_change_value(b)}"
                                                  for p, a, b in differences) + ")" if differences else "")
        if collection == "target_groups":
            detail += f"; {NOTE_REPLACED_TG}"
            self.res.target_health = [h for h in self.res.target_health if h.target_group_arn != old]
        self.changes.append(Change(address, action, collection, detail, {old, identity}))

    def service_task(self, rc: dict[str, Any], existing: EcsService | None) -> tuple[str, TaskDefinition | None]:
        """The task definition a created or updated service runs, and the address of the planned one
        (else ""): a planned one it refers to, else its current one when unchanged (None for an update:
        nothing to change); a definition the plan does not hold is unknown."""
        after, before = self.values(rc, "after"), rc["change"].get("before") or {}
        arn = after.get("task_definition")
        if arn in self.task_definitions:
            return self.task_definitions[arn]
        if existing is not None and arn == before.get("task_definition"):
            return "", None if rc["change"]["actions"] == ["update"] else existing.task_definition
        self.unknown_of[rc["address"]].append(Unknown(rc["address"], "task_definition"))
        return "", None

    def task_definition(self, rc: dict[str, Any], action: str) -> None:
        if action in ("create", "replace"):
            v = self.values(rc, "after")
            self.task_definitions[self.plan.identity[rc["address"]]] = (rc["address"],
                                                                         task_definition(v, self.redactor))

    def attachment(self, rc: dict[str, Any], action: str) -> None:
        address = rc["address"]
        if action != "create":
            old = attachment(self.values(rc, "before"))
            kept = [h for h in self.res.target_health if not (
                h.target_group_arn == old.target_group_arn and h.target_id == old.target_id
                and (old.port is None or h.port == old.port))]
            if len(kept) == len(self.res.target_health) and action == "delete":
                self.outside.append(address)
                return
            self.res.target_health = kept
            if action == "delete":
                self.changes.append(Change(address, action, "target_health",
                                           f"deregisters {old.target_id}", {old.target_group_arn}))
                return
        new = self.place(attachment(self.values(rc, "after")))
        self.res.target_health.append(new)
        self.created[address] = ("target_health", new)
        again = " again, in the replaced group" if new.target_group_arn.startswith(PLANNED) and action == "replace" else ""
        self.changes.append(Change(address, action, "target_health", f"registers {new.target_id}"
                                   + (f" on port {new.port}" if new.port else "") + again, {new.target_group_arn}))

    def sg_rule(self, rc: dict[str, Any], action: str) -> None:
        address, kind = rc["address"], rc["type"]
        removed: list[SgRule] = []
        added: list[SgRule] = []
        group = direction = None
        if action != "create":
            group, direction, removed = security_group_rule(self.values(rc, "before"), kind)
        if action != "delete":
            group, direction, added = security_group_rule(self.values(rc, "after"), kind)
        sg = next((g for g in self.res.security_groups if g.id == group), None)
        if sg is None:
            self.outside.append(address)
            return
        if sorted(map(str, removed)) == sorted(map(str, added)):
            return  # read back with a new id, the same rule (moto's vpc_security_group rules)
        rules = [r for r in _without_description(getattr(sg, direction)) if r not in removed]
        rules += [r for r in added if r not in rules]
        setattr(sg, direction, rules)
        parts = [f"removes {direction} {self.rule_text(direction, r)}" for r in removed if r not in added]
        parts += [f"adds {direction} {self.rule_text(direction, r)}" for r in added if r not in removed]
        self.changes.append(Change(address, action, "security_groups", "; ".join(parts), {sg.id}))

    def rule_text(self, direction: str, rule: SgRule) -> str:
        ports = "all ports" if rule.from_port is None else (
            str(rule.from_port) if rule.from_port == rule.to_port else f"{rule.from_port}-{rule.to_port}")
        protocol = "all traffic" if rule.protocol == "-1" else f"{rule.protocol} {ports}"
        peer = rule.cidr or rule.ipv6_cidr or rule.prefix_list or rule.source_group or "?"
        name = next((g.name for g in self.res.security_groups if g.id == rule.source_group), None)
        return f"{protocol} {'from' if direction == 'ingress' else 'to'} {peer}" + (f" ({name})" if name else "")

    # --- which created resources are this environment's --------------------------------------------

    def _scoped(self, model: Any) -> bool:
        return tags_match(getattr(model, "tags", {}), self.scope)

    def belongs(self, collection: str, model: Any, pending: set[int]) -> bool:
        """Whether a created resource is this environment's: in its scope, or reached from what is. An
        ECS service and the group it registers in, both created, vouch for neither: one must be anchored."""
        res = self.res
        if collection == "load_balancers":
            return self._scoped(model)
        if collection == "listeners":
            return any(lb.arn == model.load_balancer_arn for lb in res.load_balancers)
        if collection == "listener_rules":
            return any(lst.arn == model.listener_arn for lst in res.listeners)
        forwarded = {t.arn for lst in res.listeners for a in lst.default_actions for t in a.target_groups}
        forwarded |= {t.arn for r in res.listener_rules for a in r.actions for t in a.target_groups}
        scoped = bool(self.scope) and self._scoped(model)
        if collection == "target_groups":
            anchored = {lb.target_group_arn for s in res.ecs_services if id(s) not in pending or
                        (self.scope and self._scoped(s)) for lb in s.load_balancers}
            return model.arn in forwarded | anchored or scoped
        if collection == "target_health":
            return any(tg.arn == model.target_group_arn for tg in res.target_groups)
        if collection == "security_groups":
            used = {g for lb in res.load_balancers for g in lb.security_groups}
            used |= {g for s in res.ecs_services for g in s.security_groups}
            return model.id in used or scoped
        if collection == "ecs_services":
            groups = {tg.arn for tg in res.target_groups if id(tg) not in pending} | forwarded
            return scoped or any(lb.target_group_arn in groups for lb in model.load_balancers)
        return True

    def settle(self) -> None:
        """Created resources that belong to no part of the environment leave it (another environment's
        resources in the same plan), until what is left all belongs."""
        pending = dict(self.created)
        while pending:
            ids = {id(m) for _, m in pending.values()}
            leaving = [a for a, (c, m) in pending.items() if not self.belongs(c, m, ids)]
            for address in leaving:
                collection, model = pending.pop(address)
                getattr(self.res, collection).remove(model)
                self.outside.append(address)
            if not leaving:
                break
        gone = set(self.outside)
        self.changes = [c for c in self.changes if c.address not in gone]

    def rename(self) -> None:
        """References to a replaced resource now name its successor (Terraform plans those updates too;
        this covers references it does not manage)."""
        if not self.renamed:
            return
        data = _renamed(msgspec.to_builtins(self.res), self.renamed)
        self.res = typed(data, Resources)


def _merged(existing: dict[str, Any], after: dict[str, Any], differences: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    """The existing resource with each differing field set to the plan's value (mappings key by key)."""
    for path, _, _ in differences:
        head, _, rest = path.partition(".")
        if rest:
            node = existing.setdefault(head, {})
            if rest in (after.get(head) or {}):
                node[rest] = after[head][rest]
            else:
                node.pop(rest, None)
        else:
            existing[head] = after.get(head)
    return existing


def _change_value(value: Any) -> str:
    if isinstance(value, TaskDefinition):
        ports = sorted({m.container_port for c in value.containers for m in c.port_mappings})
        return f"{value.family or '(new)'} (container ports {', '.join(map(str, ports)) or 'none'})"
    return _shown(value)


def _renamed(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _renamed(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    return names.get(node, node) if isinstance(node, str) else node


def apply(snapshot: Snapshot, data: dict[str, Any], scope: dict[str, str] | None = None,
          redactor: Redactor | None = None) -> Planned:
    """The snapshot with the plan's changes to this environment applied."""
    plan = Plan(data)
    for rc in plan.changes:
        after, unknown = rc["change"].get("after") or {}, rc["change"].get("after_unknown") or {}
        before = rc["change"].get("before") or {}
        own = "id" if rc["type"] in ("aws_security_group", "aws_ecs_service") else "arn"
        known = after.get(own) if not unknown.get(own) else None
        plan.identity[rc["address"]] = known or (before.get(own) if _action_of(rc) == "update" else None) \
            or PLANNED + rc["address"]
    overlay = _Overlay(plan, snapshot, scope or {}, redactor or Redactor(None))
    for collection in _ORDER:
        for rc in plan.changes:
            action = _action_of(rc)
            if TYPES[rc["type"]] != collection or not action:
                continue
            if collection == "task_definitions":
                overlay.task_definition(rc, action)
            elif collection == "target_health":
                overlay.attachment(rc, action)
            elif collection == "security_group_rules":
                overlay.sg_rule(rc, action)
            else:
                overlay.resource(rc, collection, action)
    overlay.settle()
    overlay.rename()
    used = {c.address for c in overlay.changes}
    unknown = sorted({u for address in used for u in overlay.unknown_of.get(address, [])}, key=str)
    planned = validated(msgspec.structs.replace(snapshot, resources=overlay.res))
    return Planned(planned, overlay.changes, unknown, sorted(set(overlay.outside)))


# --- what the plan does to the findings and the paths --------------------------------------------------


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _touched_keys(change: Change, sides: list[tuple[Keys, Snapshot]]) -> set[str]:
    """The role keys (and ids) of what a change touches, in the snapshot before or after the plan."""
    found = set(change.ids)
    for keys, snapshot in sides:
        res = snapshot.resources
        for identity in change.ids:
            for table in (keys.load_balancer, keys.target_group, keys.security_group, keys.listener):
                if identity in table:
                    found.add(table[identity])
            found |= {keys.listener_rule(r) for r in res.listener_rules if r.arn == identity}
            found |= {keys.ecs_service(s) for s in res.ecs_services if s.arn == identity}
    return found


def _behind(finding: Finding, touched: list[tuple[Change, set[str]]]) -> list[Change]:
    """The changes that name a resource of the finding; those to the finding's own kind of resource
    first (a replaced group, not the attachments that follow it)."""
    kind, _, key = finding.resource.partition(":")
    mentioned = set(_strings(finding.evidence)) | {key}
    matched = [change for change, keys in touched
               if keys & mentioned or any(key.startswith(k + sep) for k in keys for sep in ":#/")]
    own = [change for change in matched if RESOURCE_TYPES.get(change.collection) == kind]
    return own or matched


def review(planned: Planned, before: Result, after: Result, snapshot: Snapshot, tokens: list[str]) -> Review:
    """Compare the checks of the environment as it is (``before``, of ``snapshot``) and as the plan
    leaves it (``after``)."""
    was = {f.fingerprint for f in before.findings}
    now = {f.fingerprint for f in after.findings}
    sides = [(Keys(side, tokens), side) for side in (snapshot, planned.snapshot)]
    touched = [(c, _touched_keys(c, sides)) for c in planned.changes]
    behind = {}
    for finding in after.findings:
        if finding.fingerprint in was:
            continue
        # A finding the plan brings is its doing: when no change names a resource of the finding,
        # every change stands behind it rather than none.
        behind[finding.fingerprint] = _behind(finding, touched) or list(planned.changes)
    return Review(planned.changes, planned.unknown, planned.outside, now - was,
                  [f for f in before.findings if f.fingerprint not in now], behind,
                  before.traffic.shapes, after.traffic.shapes)
