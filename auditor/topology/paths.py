"""Traffic paths: listener → target group → target → host → nginx → container, once per slot.

Pure: a Snapshot in, facts about paths out. Judging those facts (which rule a broken path breaks) is for
auditor/checks; this package only answers "does traffic arriving on this port of this host reach this
slot, and how". The semantics follow DESIGN.md "Slots and the switch": every path is evaluated as if
each slot were live, because the next deploy makes it so.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property

import msgspec

from auditor.model.keys import Keys
from auditor.model.refs import Ref
from auditor.model.snapshot import (EcsService, Host, Instance, NginxConfig, SecurityGroup, Snapshot, TargetGroup,
                                     tags_match)
from auditor.topology.estate import Forward, SlotPath, Target, Unit, Unmatched
from auditor.topology.host import HostView
from auditor.topology.shapes import Shapes
from auditor.topology.ways_in import WaysIn

# The last few snapshots joined: the checks, drift and a plan's review of one run read the same
# snapshot (`gate --plan --against` reads three), and joining 10k resources takes a tenth of a second.
_JOINED: dict[tuple[int, tuple[str, ...]], tuple[Snapshot, Topology]] = {}
_KEEP = 4


def joined(snapshot: Snapshot, tokens: list[str] | tuple[str, ...]) -> Topology:
    """The snapshot's keys and paths, built once per snapshot and tokens (snapshots are not changed
    once read: a plan's overlay and the checkout's hosts make new ones)."""
    key = (id(snapshot), tuple(tokens))
    hit = _JOINED.get(key)
    if hit is not None and hit[0] is snapshot:
        return hit[1]
    topology = Topology(snapshot, Keys(snapshot, tokens))
    _JOINED[key] = (snapshot, topology)  # holding the snapshot keeps its id from being reused
    while len(_JOINED) > _KEEP:
        del _JOINED[next(iter(_JOINED))]
    return topology


class Topology(WaysIn, Shapes):
    """The estate's traffic paths, indexed once. Everything the path rules need, nothing they judge."""

    def __init__(self, snapshot: Snapshot, keys: Keys) -> None:
        self.snapshot = snapshot
        self.keys = keys
        res = snapshot.resources
        self.target_groups = {tg.arn: tg for tg in res.target_groups}
        self.tg_by_name = {tg.name: tg for tg in res.target_groups}
        self.security_groups: dict[str, SecurityGroup] = {sg.id: sg for sg in res.security_groups}
        self.instances = {i.id: i for i in res.instances}
        self.instance_by_ip = {i.private_ip: i for i in res.instances if i.private_ip}
        self.load_balancers = {lb.arn: lb for lb in res.load_balancers}
        self.listeners = {lst.arn: lst for lst in res.listeners}
        self.ecs_by_tg: dict[str, list[EcsService]] = defaultdict(list)
        for service in res.ecs_services:
            for lb in service.load_balancers:
                self.ecs_by_tg[lb.target_group_arn].append(service)
        self.targets: dict[str, list[Target]] = defaultdict(list)
        for health in res.target_health:
            tg = self.target_groups.get(health.target_group_arn)
            if tg is None:
                continue
            port = health.port or tg.port
            if port is None:
                continue
            instance = self.instances.get(health.target_id) or self.instance_by_ip.get(health.target_id)
            self.targets[tg.arn].append(Target(tg, health.target_id, port, instance))
        self.hosts_by_instance: dict[str, Host] = {h.instance_id: h for h in res.hosts if h.instance_id}
        # Hosts indexed by one of their match tags: an instance looks up only hosts that could match.
        self._hosts_by_tag: dict[tuple[str, str], list[Host]] = defaultdict(list)
        for host in res.hosts:
            if not host.instance_id and host.match:
                self._hosts_by_tag[min(host.match.items())].append(host)
        self._views: dict[tuple[str, str | None], HostView] = {}
        # The load balancers that send traffic to each TG: AWS's own list, and the listeners'.
        self.lbs_of_tg: dict[str, set[str]] = defaultdict(set)
        for tg in res.target_groups:
            self.lbs_of_tg[tg.arn].update(tg.load_balancer_arns)
        for forward in self.forward_actions:
            for target in forward.action.target_groups:
                self.lbs_of_tg[target.arn].add(forward.load_balancer_arn)

    # --- listeners and forward actions -----------------------------------------------------------

    @cached_property
    def forward_actions(self) -> list[Forward]:
        """Every forward action of every listener and listener rule, with who owns it."""
        out = []
        for listener in self.snapshot.resources.listeners:
            owner = Ref("listener", self.keys.listener[listener.arn])
            out += [Forward(owner, listener.arn, listener.load_balancer_arn, a) for a in listener.default_actions]
        for rule in self.snapshot.resources.listener_rules:
            listener = self.listeners.get(rule.listener_arn)
            lb = listener.load_balancer_arn if listener else ""
            owner = Ref("listener_rule", self.keys.listener_rule(rule))
            out += [Forward(owner, rule.listener_arn, lb, a) for a in rule.actions]
        return [f for f in out if f.action.type == "forward"]

    @cached_property
    def tls_at_alb(self) -> set[str]:
        """The TGs an HTTPS listener (or its rules) forwards to: TLS ends at the ALB for them."""
        protocol = {lst.arn: lst.protocol for lst in self.snapshot.resources.listeners}
        return {t.arn for f in self.forward_actions if protocol.get(f.listener_arn) == "HTTPS"
                for t in f.action.target_groups}

    def tg_key(self, tg: TargetGroup) -> str:
        return self.keys.target_group[tg.arn]

    @cached_property
    def forwarded(self) -> list[TargetGroup]:
        arns = sorted({t.arn for f in self.forward_actions for t in f.action.target_groups})
        return [self.target_groups[a] for a in arns if a in self.target_groups]

    # --- hosts -----------------------------------------------------------------------------------

    def host_for(self, instance: Instance) -> tuple[Host | None, str | None]:
        """The host description for an instance, or (None, why not)."""
        if instance.id in self.hosts_by_instance:
            return self.hosts_by_instance[instance.id], None
        candidates = [h for tag in instance.tags.items() for h in self._hosts_by_tag.get(tag, [])]
        matches = [h for h in candidates if tags_match(instance.tags, h.match)]
        if len(matches) > 1:
            names = ", ".join(h.name for h in matches)
            return None, f"instance {instance.id} matches several hosts in audit.yaml ({names})"
        if not matches:
            return None, None
        return matches[0], None

    def view(self, host: Host, instance: Instance | None) -> HostView:
        host = self._fronted(host)
        ip = instance.private_ip if instance else None
        # An instance's address changes a host's answers only where its facts name that address (a
        # port published on it, nginx proxying to it); elsewhere the instances of a host share a view.
        if ip is not None and ip not in _addresses(host):
            ip = None
        key = (host.name + (host.instance_id or ""), ip)
        if key not in self._views:
            self._views[key] = HostView(host, ip)
        return self._views[key]

    def _fronted(self, host: Host) -> Host:
        """A host whose compose project runs several nginx services, with the one publishing the port its
        target groups send to as its nginx (DESIGN: that one is the front). Collection cannot know the
        port and took the first that publishes any; it stands unless another one publishes the port."""
        if not host.nginx_beside or host.nginx is None or host.docker is None:
            return host
        ports = {t.port for targets in self.targets.values() for t in targets
                 if t.instance is not None and self.host_for(t.instance)[0] is host}

        def publishes(nginx: NginxConfig) -> bool:
            return any(p.host_port in ports for c in host.docker.containers if c.service == nginx.service
                       for p in c.ports)

        if publishes(host.nginx):
            return host
        front = next((n for n in host.nginx_beside if publishes(n)), None)
        if front is None:
            return host
        rest = [host.nginx, *(n for n in host.nginx_beside if n is not front)]
        return msgspec.structs.replace(host, nginx=front, nginx_beside=rest)

    @cached_property
    def host_views(self) -> list[HostView]:
        """Every host description once (per instance where facts were collected per instance)."""
        return [self.view(h, self.instances.get(h.instance_id or "")) for h in self.snapshot.resources.hosts]

    @cached_property
    def nginx_views(self) -> list[HostView]:
        """Every nginx of every host: the host's view, then one per nginx service beside its front one
        (the subjects of the rules about nginx alone)."""
        views = []
        for view in self.host_views:
            views.append(view)
            views += [HostView(msgspec.structs.replace(view.host, nginx=other, nginx_beside=[]), view.private_ip,
                               front=False) for other in view.host.nginx_beside]
        return views

    # --- units -----------------------------------------------------------------------------------

    @cached_property
    def declared_alb(self) -> dict[str, dict[str, str]]:
        """Host name → {slot: target group name} for hosts that declare the ALB as the switch."""
        out = {}
        for host in self.snapshot.resources.hosts:
            switch = host.docker.switch if host.docker else None
            if switch and switch.kind == "alb" and switch.target_groups:
                out[host.name] = switch.target_groups
        return out

    @cached_property
    def units(self) -> list[Unit]:
        units: list[Unit] = []
        grouped: set[str] = set()
        for mapping in {tuple(sorted(m.items())) for m in self.declared_alb.values()}:
            per_slot = {slot: self.tg_by_name[name] for slot, name in mapping if name in self.tg_by_name}
            tgs = sorted(per_slot.values(), key=self.tg_key)
            grouped |= {tg.arn for tg in tgs}
            resources = {slot: Ref("target_group", self.tg_key(tg)) for slot, tg in per_slot.items()}
            units.append(Unit(",".join(sorted(map(str, resources.values()))), tgs, per_slot, resources))
        for forward in self.forward_actions:
            arns = [t.arn for t in forward.action.target_groups if t.arn in self.target_groups and t.arn not in grouped]
            if len(arns) > 1:
                units.append(Unit(forward.owner, [self.target_groups[a] for a in sorted(arns)]))
                grouped |= set(arns)
        for tg in self.forwarded:
            if tg.arn not in grouped and tg.arn not in self.ecs_by_tg:
                units.append(Unit(Ref("target_group", self.tg_key(tg)), [tg]))
        return units

    def missing_declared(self) -> list[tuple[str, str, str]]:
        """(host, slot, target group name) declared for the alb switch but absent from the snapshot."""
        return [
            (host, slot, name)
            for host, mapping in sorted(self.declared_alb.items())
            for slot, name in sorted(mapping.items())
            if name not in self.tg_by_name
        ]

    # --- slot paths ------------------------------------------------------------------------------

    @property
    def slot_paths(self) -> list[SlotPath]:
        return self._evaluated[0]

    @property
    def unmatched(self) -> list[Unmatched]:
        """Targets whose host is unknown, so no path through them can be followed."""
        return self._evaluated[1]

    @cached_property
    def _evaluated(self) -> tuple[list[SlotPath], list[Unmatched]]:
        unmatched: list[Unmatched] = []
        paths: list[SlotPath] = []
        for unit in self.units:
            by_instance: dict[str, list[Target]] = defaultdict(list)
            for tg in unit.target_groups:
                for target in self.targets.get(tg.arn, []):
                    if target.instance is None:
                        reason = (f"target {target.target_id} of {self.tg_key(tg)} matches no instance or ECS "
                                  "service in the snapshot")
                        unmatched.append(Unmatched(unit, target, reason))
                    else:
                        by_instance[target.instance.id].append(target)
            for instance_id, targets in sorted(by_instance.items()):
                instance = self.instances[instance_id]
                host, why = self.host_for(instance)
                if host is None:
                    unmatched.extend(Unmatched(unit, t, why) for t in targets)
                else:
                    paths.extend(self._paths_for(unit, instance, self.view(host, instance), targets))
        return paths, unmatched

    def _paths_for(self, unit: Unit, instance: Instance, view: HostView, targets: list[Target]) -> list[SlotPath]:
        live, _ = view.live
        slots: list[str | None] = sorted(view.slots) or [None]
        out = []
        for slot in slots:
            arns = {tg.arn for tg in unit.for_slot(slot)}
            mine = [t for t in targets if t.target_group.arn in arns]
            traffic = [(t, view.reach(t.port, slot)) for t in mine]
            health = []
            for t in mine:
                hc_port = health_check_port(t.target_group, t.port)
                if hc_port != t.port:
                    health.append((t, hc_port, view.reach(hc_port, slot)))
            out.append(
                SlotPath(
                    unit=unit,
                    instance_id=instance.id,
                    host=view,
                    slot=slot,
                    live=slot is None or slot == live,
                    live_known=slot is None or live is not None,
                    ports=sorted({t.port for t in mine}),
                    traffic=traffic,
                    health=health,
                )
            )
        return out


def _addresses(host: Host) -> str:
    """The host's facts that may name an address: published ports' bindings, nginx's variables,
    proxy targets and upstream servers (one string to search)."""
    parts = [p.host_ip or "" for c in (host.docker.containers if host.docker else []) for p in c.ports]
    if host.nginx is not None:
        parts += [v.value for v in host.nginx.variables]
        parts += [loc.proxy_pass or "" for server in host.nginx.servers for loc in server.locations]
        parts += [entry.address for upstream in host.nginx.upstreams for entry in upstream.servers]
    return " ".join(parts)


def health_check_port(tg: TargetGroup, traffic_port: int) -> int:
    port = tg.health_check.port
    return traffic_port if port in ("traffic-port", "", None) else int(port)
