"""How the load balancer reaches its targets through security groups: the ALB's own groups and
subnets per target group, and every way in (targets grouped by their security groups and port, an
awsvpc ECS service with its own groups) that P106, P107 and P108 judge."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from auditor.model.keys import Keys
from auditor.model.refs import Ref
from auditor.model.snapshot import LoadBalancer, Snapshot, TargetGroup
from auditor.topology.estate import Target, Unit


@dataclass(frozen=True)
class WayIn:
    """Targets of one TG that share security groups and a port: what the ALB must be let into."""

    resource: Ref  # what the findings name
    slot: str | None
    security_groups: list[str]
    port: int
    instances: list[str]  # instance ids (none for an ECS service)
    target_group: TargetGroup


class WaysIn:
    """The security-group part of a Topology (auditor.topology.paths)."""

    snapshot: Snapshot
    keys: Keys
    units: list[Unit]
    targets: dict[str, list[Target]]
    target_groups: dict[str, TargetGroup]
    load_balancers: dict[str, LoadBalancer]
    lbs_of_tg: dict[str, set[str]]
    tg_key: Callable[[TargetGroup], str]

    def alb_security_groups(self, tg: TargetGroup) -> tuple[list[str], list[str]]:
        """(security group ids, subnet CIDRs) of the load balancers that send to a TG."""
        arns = self.lbs_of_tg.get(tg.arn) or {
            # A slot's TG under a declared alb switch may be detached until its deploy: it will
            # sit behind the load balancers its sibling TGs use now.
            lb for unit in self.units if unit.per_slot and tg in unit.target_groups
            for sibling in unit.target_groups for lb in self.lbs_of_tg.get(sibling.arn, ())
        }
        lbs = [self.load_balancers[a] for a in sorted(arns) if a in self.load_balancers]
        groups = sorted({g for lb in lbs for g in lb.security_groups})
        cidrs = sorted({s.cidr for lb in lbs for s in lb.subnets if s.cidr})
        return groups, cidrs

    @cached_property
    def ways_in(self) -> list[WayIn]:
        """Every way the load balancer connects to targets: per TG, its targets grouped by their
        security groups and port, and each ECS service in awsvpc mode with its own groups."""
        out = []
        for unit in self.units:
            slot_of = {tg.arn: s for s, tg in (unit.per_slot or {}).items()}
            for tg in unit.target_groups:
                groups: dict[tuple[tuple[str, ...], int], list[str]] = defaultdict(list)
                for target in self.targets.get(tg.arn, []):
                    if target.instance is not None:
                        groups[(tuple(sorted(target.instance.security_groups)), target.port)].append(
                            target.instance.id)
                for (sgs, port), instances in sorted(groups.items()):
                    out.append(WayIn(Ref("target_group", self.tg_key(tg)), slot_of.get(tg.arn), list(sgs), port,
                                     instances, tg))
        for service in self.snapshot.resources.ecs_services:
            td = service.task_definition
            if td is None or td.network_mode != "awsvpc":
                continue
            for lb in service.load_balancers:
                tg = self.target_groups.get(lb.target_group_arn)
                if tg is not None:
                    out.append(WayIn(Ref("ecs_service", self.keys.ecs_service(service)), None,
                                     sorted(service.security_groups), lb.container_port, [], tg))
        return out
