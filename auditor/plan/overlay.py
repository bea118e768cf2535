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
from dataclasses import dataclass
from typing import Any

import msgspec

from auditor.model.snapshot import (
    AWS_NAMES,
    EcsService,
    Listener,
    Redactor,
    Resources,
    SgRule,
    Snapshot,
    TargetHealth,
    TaskDefinition,
    validated,
)
from auditor.model.scope import members
from auditor.model.typed import typed
from auditor.outcomes import Change, Unknown
from auditor.plan.convert import (
    without_description,
    attachment,
    ecs_service,
    group_registrations,
    listener,
    listener_rule,
    load_balancer,
    security_group,
    security_group_rule,
    target_group,
    task_definition,
)
from auditor.plan.read import KNOWN_AFTER_APPLY, PLANNED, TYPES, Plan, PlanError, Values


NOTE_REPLACED_TG = "traffic waits for the new group's health checks"


@dataclass
class Planned:
    snapshot: Snapshot
    changes: list[Change]
    unknown: list[Unknown]
    outside: list[str]  # addresses of changes to resources that are not this environment's


_CONVERT = {"load_balancers": load_balancer, "listeners": listener, "listener_rules": listener_rule,
            "target_groups": target_group, "security_groups": security_group, "ecs_services": ecs_service}
# The order changes are applied in: what a later collection refers to exists by then.
_ORDER = ("load_balancers", "target_groups", "listeners", "listener_rules", "task_definitions", "ecs_services",
          "target_health", "group_registrations", "security_groups", "security_group_rules")
# The tag AWS puts on each instance an Auto Scaling group launches: how its instances are known.
GROUP_TAG = "aws:autoscaling:groupName"
# A change describes configuration: names, and what the plan links by them, are not what changed.
_IGNORED_FIELDS = AWS_NAMES | {"load_balancer_arns", "task_definition"}


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
        self.created: list[tuple[str, str, Any]] = []  # (address, collection, model): joins if it belongs here
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
        """A created model in this account and region, checked as a snapshot's would be: a value of the
        wrong type (a port written as text) is the resource's error, not the whole snapshot's."""
        placed = msgspec.structs.replace(model, account=self._account, region=self._region)
        return typed(msgspec.to_builtins(placed), type(placed))

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
            updated = typed(update, type(existing))
            items[items.index(existing)] = updated
            if collection == "listeners":
                self._default_rule(updated)
            detail = ", ".join(f"{path} {self._value_text(path, a)} → {self._value_text(path, b)}"
                               for path, a, b in differences)
            self.changes.append(Change(address, action, collection, detail, {_identity(collection, existing)}))
            return
        if collection == "ecs_services":
            after = msgspec.structs.replace(after, task_definition=self.service_task(rc, existing)[1])
        new = self.place(after)
        items.append(new)
        identity = _identity(collection, new)
        if existing is None:
            self.created.append((address, collection, new))
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

    def _default_rule(self, listener: Listener) -> None:
        """AWS keeps a listener's default action as its default rule too: it follows the listener."""
        self.res.listener_rules = [msgspec.structs.replace(r, actions=list(listener.default_actions))
                                   if r.is_default and r.listener_arn == listener.arn else r
                                   for r in self.res.listener_rules]

    def _value_text(self, path: str, value: Any) -> str:
        """A changed value in the change's words; actions as what they do (`forward to api-`)."""
        if path.endswith("actions") and isinstance(value, list):
            names = {tg.arn: tg.name for tg in self.res.target_groups}
            return "; ".join(
                f"forward to {', '.join(names.get(t.get('arn'), t.get('arn')) for t in a.get('target_groups') or [])}"
                if a.get("type") == "forward" else str(a.get("type")) for a in value if isinstance(a, dict)) or "none"
        return _change_value(value)

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
        self.created.append((address, "target_health", new))
        again = " again, in the replaced group" if new.target_group_arn.startswith(PLANNED) and action == "replace" else ""
        self.changes.append(Change(address, action, "target_health", f"registers {new.target_id}"
                                   + (f" on port {new.port}" if new.port else "") + again, {new.target_group_arn}))

    def group_registration(self, rc: dict[str, Any], action: str) -> None:
        """An Auto Scaling group joins or leaves target groups: its instances (the snapshot's, tagged with
        the group's name) are registered on each group's port, or deregistered."""
        address, kind = rc["address"], rc["type"]
        name, before = group_registrations(self.values(rc, "before"), kind) if action != "create" else ("", [])
        after_name, after = group_registrations(self.values(rc, "after"), kind) if action != "delete" else ("", [])
        groups = {tg.arn: tg for tg in self.res.target_groups}
        held = {h.target_group_arn for h in self.res.target_health} | set(groups)  # a replaced group's, too
        left = [a for a in before if a not in after and a in held]
        joined = [a for a in after if a not in before and a in groups]
        if KNOWN_AFTER_APPLY in after:  # its unknown (named by Values) decides whether the gate can answer
            self.changes.append(Change(address, action, "target_health",
                                       "registers its instances in a target group known only after apply", set()))
            return
        if not left and not joined:
            if set(before) != set(after):
                self.outside.append(address)  # another environment's target groups
            return
        name = after_name or name
        instances = sorted(i.id for i in self.res.instances if i.tags.get(GROUP_TAG) == name)
        if not instances:  # a group the snapshot has no instance of yet: which targets it brings is unknown
            self.unknown_of.setdefault(address, []).append(Unknown(address, "instances"))
        self.res.target_health = [h for h in self.res.target_health
                                  if not (h.target_group_arn in left and h.target_id in instances)]
        parts = [f"deregisters {', '.join(instances) or 'its instances'} from "
                 f"{groups[a].name if a in groups else 'the replaced group'}" for a in left]
        for arn in joined:
            for instance in instances:
                new = self.place(TargetHealth(target_group_arn=arn, target_id=instance, port=groups[arn].port,
                                              state="initial", reason="Elb.RegistrationInProgress"))
                self.res.target_health.append(new)
                self.created.append((address, "target_health", new))
            parts.append(f"registers {', '.join(instances) or 'its instances'} of {name} in {groups[arn].name} "
                         f"on port {groups[arn].port}")
        self.changes.append(Change(address, action, "target_health", "; ".join(parts), set(left + joined)))

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
        rules = [r for r in without_description(getattr(sg, direction)) if r not in removed]
        rules += [r for r in added if r not in rules]
        setattr(sg, direction, rules)
        parts = [f"removes {direction} {self.rule_text(direction, r)}" for r in removed if r not in added]
        parts += [f"adds {direction} {self.rule_text(direction, r)}" for r in added if r not in removed]
        self.changes.append(Change(address, action, "security_groups", "; ".join(parts), {sg.id}))

    def rule_text(self, direction: str, rule: SgRule) -> str:
        name = next((g.name for g in self.res.security_groups if g.id == rule.source_group), None)
        return rule.text(direction) + (f" ({name})" if name else "")

    def settle(self) -> None:
        """Created resources that are not this environment's by the collector's rule (model/scope.py)
        leave it: another environment's resources in the same plan."""
        created = {id(m) for _, _, m in self.created}
        known = [m for field in self.res.__struct_fields__ for m in getattr(self.res, field) if id(m) not in created]
        inside = members(self.res, self.scope, known)
        for address, collection, model in self.created:
            if id(model) not in inside:
                getattr(self.res, collection).remove(model)
                self.outside.append(address)
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


def _apply_one(overlay: _Overlay, rc: dict[str, Any], collection: str, action: str) -> None:
    if collection == "task_definitions":
        overlay.task_definition(rc, action)
    elif collection == "target_health":
        overlay.attachment(rc, action)
    elif collection == "security_group_rules":
        overlay.sg_rule(rc, action)
    elif collection == "group_registrations":
        overlay.group_registration(rc, action)
    else:
        overlay.resource(rc, collection, action)


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
            try:
                _apply_one(overlay, rc, collection, action)
            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
                # A shape this reader does not follow is one line naming the resource, never an internal error.
                raise PlanError(f"{rc['address']}: a value this reader does not understand "
                                f"({type(exc).__name__}: {exc})") from None
    overlay.settle()
    overlay.rename()
    used = {c.address for c in overlay.changes}
    unknown = sorted({u for address in used for u in overlay.unknown_of.get(address, [])}, key=str)
    planned = validated(msgspec.structs.replace(snapshot, resources=overlay.res))
    return Planned(planned, overlay.changes, unknown, sorted(set(overlay.outside)))
