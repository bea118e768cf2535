"""Which resources are an environment's (DESIGN "audit.yaml": scope selects load balancers and target
groups by their tags; what they reference comes too, tagged or not).

One rule with two callers: the collector reads by it step by step (it must know what to read next), and
the plan places the resources it creates by `members`, so a planned snapshot holds what `audit snapshot`
would read once the plan is applied."""

from __future__ import annotations

from collections.abc import Iterable

from auditor.model.snapshot import (
    EcsService,
    Instance,
    Listener,
    ListenerRule,
    LoadBalancer,
    Resources,
    SecurityGroup,
    TargetGroup,
    tags_match,
)


def selected(tags: dict[str, str], scope: dict[str, str] | None) -> bool:
    """A load balancer or target group the scope selects by its tags; no scope selects every one."""
    return not scope or tags_match(tags, scope)


def attached(groups: Iterable[TargetGroup]) -> set[str]:
    """The load balancers these target groups are attached to: a selected group brings its own."""
    return {lb for tg in groups for lb in tg.load_balancer_arns}


def forwarded(listeners: Iterable[Listener], rules: Iterable[ListenerRule]) -> set[str]:
    """The target groups the listeners and their rules forward to: the environment's, tagged or not."""
    actions = [a for lst in listeners for a in lst.default_actions] + [a for r in rules for a in r.actions]
    return {t.arn for a in actions for t in a.target_groups}


def registered(services: Iterable[EcsService]) -> set[str]:
    """The target groups these ECS services register their tasks in."""
    return {lb.target_group_arn for s in services for lb in s.load_balancers if lb.target_group_arn}


def registering(services: Iterable[EcsService], groups: set[str]) -> list[EcsService]:
    """The ECS services that register tasks in one of these target groups."""
    return [s for s in services if any(lb.target_group_arn in groups for lb in s.load_balancers)]


def used_groups(load_balancers: Iterable[LoadBalancer], instances: Iterable[Instance],
                services: Iterable[EcsService]) -> set[str]:
    """The security groups the load balancers, instances and ECS services run in."""
    return ({g for lb in load_balancers for g in lb.security_groups} | {g for i in instances for g in i.security_groups}
            | {g for s in services for g in s.security_groups})


def peers(groups: Iterable[SecurityGroup]) -> set[str]:
    """The security groups these groups' rules name as peers: read too, to say who they admit."""
    return {r.source_group for g in groups for r in g.ingress + g.egress if r.source_group}


def members(res: Resources, scope: dict[str, str] | None, known: Iterable[object]) -> set[int]:
    """The ids of the resources that are the environment's: `known` ones (a live snapshot's) and what the
    rules above reach from them and from the scope, grown until nothing joins. Two resources that only
    name each other (an ECS service and the group it registers in, both another environment's) stay out."""
    inside = {id(m) for m in known}

    def of(items: Iterable[object]) -> list:
        return [m for m in items if id(m) in inside]

    while True:
        before = len(inside)
        tagged_groups = [tg for tg in res.target_groups if selected(tg.tags, scope)]
        balancers = attached(tagged_groups)
        inside |= {id(lb) for lb in res.load_balancers if selected(lb.tags, scope) or lb.arn in balancers}
        arns = {lb.arn for lb in of(res.load_balancers)}
        inside |= {id(lst) for lst in res.listeners if lst.load_balancer_arn in arns}
        arns = {lst.arn for lst in of(res.listeners)}
        inside |= {id(r) for r in res.listener_rules if r.listener_arn in arns}
        groups = forwarded(of(res.listeners), of(res.listener_rules)) | registered(of(res.ecs_services))
        inside |= {id(tg) for tg in res.target_groups if selected(tg.tags, scope) or tg.arn in groups}
        arns = {tg.arn for tg in of(res.target_groups)}
        inside |= {id(h) for h in res.target_health if h.target_group_arn in arns}
        inside |= {id(s) for s in registering(res.ecs_services, arns)}
        inside |= {id(m) for m in res.instances + res.hosts}  # what plans never create
        used = used_groups(of(res.load_balancers), res.instances, of(res.ecs_services))
        used |= peers(g for g in res.security_groups if g.id in used)
        inside |= {id(g) for g in res.security_groups if g.id in used}
        if len(inside) == before:
            return inside
