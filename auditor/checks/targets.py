"""Registered targets (P111, P112): a forward to nothing, and what AWS says of target health now."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from auditor.engine.api import Context, Problem
from auditor.model.refs import Ref

UNHEALTHY = {"unhealthy", "unavailable"}


def forward_to_empty_target_group(ctx: Context) -> Iterator[Problem]:
    """P111: a listener or rule forwards to a TG with no registered targets (ECS registers its tasks
    itself, so a TG an ECS service names is left to P110)."""
    topology = ctx.topology
    candidates = {tg.arn: tg for tg in topology.forwarded}
    candidates |= {tg.arn: tg for unit in topology.units for tg in unit.target_groups}
    for arn, tg in sorted(candidates.items()):
        if not topology.targets.get(arn) and arn not in topology.ecs_by_tg:
            ref = ctx.ref(tg)
            yield Problem(ref, f"Target group {ref.key} has no registered targets: the load balancer "
                          "answers 503 for everything routed to it.", evidence={"port": tg.port})


def target_unhealthy(ctx: Context) -> Iterator[Problem]:
    """P112: AWS reports targets unhealthy or unavailable now, with its reason code."""
    by_tg: dict[str, list[dict[str, object]]] = defaultdict(list)
    for health in ctx.snapshot.resources.target_health:
        if health.state in UNHEALTHY:
            by_tg[health.target_group_arn].append({"target": health.target_id, "port": health.port,
                                                   "state": health.state, "reason": health.reason,
                                                   "description": health.description})
    for arn, targets in sorted(by_tg.items()):
        key = ctx.keys.target_group.get(arn, arn)
        reasons = sorted({str(t["reason"]) for t in targets if t["reason"]})
        yield Problem(Ref("target_group", key), f"{len(targets)} target{'s' if len(targets) > 1 else ''} of {key} "
                      f"{'are' if len(targets) > 1 else 'is'} {targets[0]['state']}"
                      + (f" ({', '.join(reasons)})" if reasons else "") + ".",
                      evidence={"targets": targets, "reasons": reasons}, identity=("reasons",))
