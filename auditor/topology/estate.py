"""The estate's units as the paths see them: target groups and their targets (Unit, Target), a path
per target and slot (SlotPath), the listener actions that forward (Forward), targets no host
describes (Unmatched)."""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.model.refs import Ref
from auditor.model.snapshot import Action, Instance, TargetGroup
from auditor.topology.host import HostView, Reach


@dataclass
class Unit:
    """Target groups that together must reach every slot: one TG, or the TGs of one weighted
    forward action (the ALB is the switch), or the TGs a host declares per slot."""

    resource: Ref | str  # what the findings name; a declared pair names both: "target_group:a,target_group:b"
    target_groups: list[TargetGroup]
    per_slot: dict[str, TargetGroup] | None = None  # declared alb switch: the TG of each slot
    slot_resources: dict[str, Ref] = field(default_factory=dict)  # declared: each slot's TG

    def resource_for(self, slot: str | None) -> Ref | str:
        return self.slot_resources.get(slot or "", self.resource)

    def for_slot(self, slot: str | None) -> list[TargetGroup]:
        if self.per_slot is not None and slot is not None:
            return [self.per_slot[slot]] if slot in self.per_slot else []
        return self.target_groups


@dataclass
class Target:
    """A registered target with its effective port (a target's override, else the TG's)."""

    target_group: TargetGroup
    target_id: str
    port: int
    instance: Instance | None


@dataclass
class SlotPath:
    """One unit, one target instance, one slot: the facts the path rules judge."""

    unit: Unit
    instance_id: str
    host: HostView
    slot: str | None
    live: bool  # this slot is the live one (a host without slots: always)
    live_known: bool
    ports: list[int]  # the ports the unit's TGs send this slot's traffic to on the target
    traffic: list[tuple[Target, Reach]]
    health: list[tuple[Target, int, Reach]]  # (target, health-check port, reach) when the port differs

    @property
    def served(self) -> bool:
        return any(reach.served for _, reach in self.traffic)


@dataclass(frozen=True)
class Forward:
    owner: Ref  # the listener or listener rule
    listener_arn: str
    load_balancer_arn: str
    action: Action


@dataclass(frozen=True)
class Unmatched:
    """A target no path can be followed through: ``reason`` says what data is missing, or is None
    when the instance is known but matches no host in audit.yaml (P113)."""

    unit: Unit
    target: Target
    reason: str | None
