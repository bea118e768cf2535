"""What a rule runs on: the `on:` of its YAML. The engine calls a check once per subject of each kind
it names, so a check judges one host, one slot path or one target group and never loops over the
estate by hand; `snapshot` (the default) calls it once with the whole snapshot.

A subject is named by its Ref (engine.api.ref_of); a slot path also gives its slot. Hosts whose
layers a rule needs were not read are skipped by the engine before this (coverage), and a host
without nginx (a fact: the ALB reaches the containers directly) is no subject of an nginx rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from auditor.engine.api import Context

Kind = Literal["snapshot", "host", "slot_path", "way_in", "load_balancer", "listener", "listener_rule",
               "target_group", "security_group", "ecs_service"]


def _hosts(ctx: Context, layers: list[str]) -> Iterable[Any]:
    return [view for view in ctx.hosts if all(getattr(view.host, layer) is not None for layer in layers)]


def _slot_paths(ctx: Context, layers: list[str]) -> Iterable[Any]:
    if not layers:
        return ctx.topology.slot_paths
    judged = {id(view) for view in _hosts(ctx, layers)}
    return [sp for sp in ctx.topology.slot_paths if id(sp.host) in judged]


_SUBJECTS: dict[str, Callable[[Context, list[str]], Iterable[Any]]] = {
    "host": _hosts,
    "slot_path": _slot_paths,
    "way_in": lambda ctx, _: ctx.topology.ways_in,
    "load_balancer": lambda ctx, _: ctx.snapshot.resources.load_balancers,
    "listener": lambda ctx, _: ctx.snapshot.resources.listeners,
    "listener_rule": lambda ctx, _: ctx.snapshot.resources.listener_rules,
    "target_group": lambda ctx, _: ctx.snapshot.resources.target_groups,
    "security_group": lambda ctx, _: ctx.snapshot.resources.security_groups,
    "ecs_service": lambda ctx, _: ctx.snapshot.resources.ecs_services,
}
KINDS: tuple[str, ...] = ("snapshot", *_SUBJECTS)


def subjects(kind: str, ctx: Context, layers: list[str]) -> Iterable[Any]:
    """The subjects of ``kind`` in ``ctx``: the hosts (and their slot paths) that hold every host
    layer in ``layers``, or every resource of that type."""
    return _SUBJECTS[kind](ctx, layers)
