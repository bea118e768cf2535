"""Path rules (P1xx): does traffic from the ALB reach the app, in every deployment slot?

Each function judges the facts auditor.topology gathered. "One cause, one
finding": an unserved slot is P101 when it is live and P104 otherwise; a path
that fails because nginx proxies to nothing at all is P105 alone; a port the
slot publishes only on loopback is P109 alone.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterator

from auditor.engine.api import Context, Problem, Skip, located
from auditor.model.refs import Location, Ref
from auditor.model.snapshot import EcsService, Listener, NginxLocation
from auditor.topology import HostView, ProxyVerdict, SlotPath, WayIn, health_check_port

NACL_NOTE = "network ACLs are not evaluated"


def _ports(ports: list[int]) -> str:
    return ", ".join(str(p) for p in ports) or "no port"


def _target_groups(ctx: Context, sp: SlotPath) -> list[str]:
    return [ctx.topology.tg_key(tg) for tg in sp.unit.for_slot(sp.slot)]


def _sends(sp: SlotPath) -> str:
    same = all(health_check_port(t.target_group, t.port) == t.port for t, _ in sp.traffic)
    return "sends traffic and health checks to" if same else "sends traffic to"


def _unserved(ctx: Context, sp: SlotPath) -> Problem:
    host, slot = sp.host, sp.slot
    tgs = " and ".join(_target_groups(ctx, sp))
    noun = "target groups" if len(sp.unit.for_slot(slot)) > 1 else "target group"
    reach = next((r for _, r in sp.traffic if not r.served), None)
    published = host.published(slot) if slot else []
    if reach is None:
        message = f"Target group {tgs} has no target registered on instance {sp.instance_id} for slot {slot}"
    elif reach.via == "nginx":
        message = (f"{noun.capitalize()} {tgs} {_sends(sp)} {_ports(sp.ports)} on host {host.name}, where "
                   f"{reach.detail}" + (f", which slot {slot} does not serve (it publishes {_ports(published)})"
                                        if slot else ", which no container serves"))
    elif slot:
        message = (f"Slot {slot} publishes {_ports(published)} on host {host.name} while {noun} {tgs} "
                   f"{_sends(sp)} {_ports(sp.ports)}")
    else:
        message = f"{noun.capitalize()} {tgs} {_sends(sp)} {_ports(sp.ports)} on host {host.name}, but {reach.detail}"
    if slot is None or sp.live:
        message += ": live traffic fails now."
    else:
        message += f": deploying {slot} fails the health check and users get 503."
    live, how = host.live
    at = host.slot_port_location(slot) if slot else None  # the slot's `ports:` entry: what a deploy changes
    return Problem(
        resource=sp.unit.resource_for(sp.slot),
        slot=slot,
        message=message,
        evidence={
            "host": host.name,
            "instances": [sp.instance_id],
            "target_groups": _target_groups(ctx, sp),
            "ports": sp.ports,
            "health_check_ports": sorted({health_check_port(t.target_group, t.port) for t, _ in sp.traffic}),
            "slot_publishes": published,
            "live_slot": live,
            "live_slot_from": how,
            "via": reach.via if reach else "none",
            "detail": reach.detail if reach else "",
        },
        identity=("host", "ports"),
        **located(at),
    )


def _unserved_path(ctx: Context, sp: SlotPath, live: bool) -> Iterator[Problem | Skip]:
    if sp.live != live or sp.served:
        return
    skipped = next((r.skipped for _, r in sp.traffic if r.skipped), None)
    if skipped:
        yield Skip(skipped)
    elif not any(r.proxy_broken or r.loopback_only for _, r in sp.traffic):  # else P105 / P109 name the cause
        yield _unserved(ctx, sp)


def _unmatched_skips(ctx: Context) -> Iterator[Skip]:
    for item in ctx.topology.unmatched:
        if item.reason:
            yield Skip(item.reason, ctx.ref(item.target.target_group))
    for host, slot, name in ctx.topology.missing_declared():
        yield Skip(f"host {host} declares target group {name} for slot {slot} (switch: alb), "
                   "but the snapshot has no such target group", Ref("target_group", ctx.keys.strip(name)), slot)


def _ecs_dynamic_ports(ctx: Context) -> Iterator[Skip]:
    for service in ctx.snapshot.resources.ecs_services:
        td = service.task_definition
        if td is None or td.network_mode != "bridge":
            continue
        for lb in service.load_balancers:
            for container in td.containers:
                for mapping in container.port_mappings:
                    if container.name == lb.container_name and mapping.container_port == lb.container_port \
                            and not mapping.host_port:
                        yield Skip(f"ecs_service {ctx.keys.ecs_service(service)} uses bridge mode with dynamic host "
                                   "ports (hostPort 0): the port the target group uses is chosen per task",
                                   ctx.ref(service))


def target_port_unserved(ctx: Context) -> Iterator[Problem | Skip]:
    """P101: the live slot (or a host without slots) is not reached on the port the TG sends to; it
    runs on the whole estate, as the targets that have no path to follow are its to skip."""
    for sp in ctx.topology.slot_paths:
        yield from _unserved_path(ctx, sp, live=True)
    yield from _unmatched_skips(ctx)
    yield from _ecs_dynamic_ports(ctx)


def slot_port_divergence(ctx: Context, sp: SlotPath) -> Iterator[Problem | Skip]:
    """P104: a slot that is not live now (or any, when the live slot is unknown) is not reached."""
    yield from _unserved_path(ctx, sp, live=False)


def health_check_port_unserved(ctx: Context, sp: SlotPath) -> Iterator[Problem | Skip]:
    """P102: an explicit health-check port, different from the traffic port, is served by nothing."""
    for target, port, reach in sp.health:
        if reach.skipped:
            yield Skip(reach.skipped)
        elif not reach.served and not reach.proxy_broken and not reach.loopback_only:
            tg = ctx.ref(target.target_group)
            yield Problem(
                resource=tg,
                slot=sp.slot,
                message=(f"Target group {tg.key} health-checks port {port} on host {sp.host.name}, but "
                         f"{reach.detail}; traffic goes to {target.port}: targets never become healthy."),
                evidence={"host": sp.host.name, "instances": [sp.instance_id], "health_check_port": port,
                          "traffic_port": target.port, "detail": reach.detail},
                identity=("host", "health_check_port"),
            )


def health_check_path_unrouted(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """P103: the health-check port is served, but not the health-check path."""
    view = sp.host
    declared = view.host.app.health_path if view.host.app else None
    for target, reach in sp.traffic:
        hc = target.target_group.health_check
        if not hc.enabled or hc.protocol.upper() not in ("HTTP", "HTTPS"):
            continue
        port = health_check_port(target.target_group, target.port)
        if port != target.port:
            reach = next((r for t, p, r in sp.health if t is target and p == port), reach)
        if not reach.served:
            continue  # an unserved port is P101/P102/P104, not P103
        tg = ctx.ref(target.target_group)
        evidence = {"host": view.host.name, "instances": [sp.instance_id], "health_check_path": hc.path,
                    "health_check_port": port, "app_health_path": declared}
        if reach.via == "nginx":
            server = view.default_server(view.nginx_port_for(port) or port)
            route = view.route(server, hc.path) if server else None
            if route is None or route.location is None:
                at = Location(server.file, server.line) if server else None
                evidence["server"] = at.as_evidence() if at else None
                yield Problem(tg, f"Target group {tg.key} health-checks {hc.path} on port {port}, but the nginx server "
                              f"that answers it ({at or 'none'}) has no location matching {hc.path}: nginx answers "
                              "404 and the target goes unhealthy.",
                              evidence=evidence, identity=("host", "health_check_port", "health_check_path"))
                continue
            app_path = route.app_path
            evidence["location"] = Location(route.location.file, route.location.line).as_evidence()
        else:
            app_path = hc.path
        if app_path is not None and declared and app_path.split("?")[0] != declared:
            evidence["app_receives"] = app_path
            yield Problem(tg, f"Target group {tg.key} health-checks {hc.path} on port {port}; the app on host "
                          f"{view.host.name} receives {app_path} but serves its health check at {declared}: the "
                          "target goes unhealthy.",
                          evidence=evidence, identity=("host", "health_check_port", "health_check_path"))


def proxy_upstream_unserved(ctx: Context, view: HostView) -> Iterator[Problem | Skip]:
    """P105: an nginx proxy_pass or upstream server points at a port no container serves.

    Locations that share a cause (one `set` variable, one upstream) are one finding: the engine joins
    their locations.
    """
    proxies = [(server, loc) for server in view.host.nginx.servers for loc in server.locations if loc.proxy_pass]
    if proxies and view.unknown:
        yield Skip(view.unknown)
        return
    unproved: dict[str, list[str]] = {}  # one skip per unknown port, with every location that uses it
    for server, location in proxies:
        verdict = view.verdict(server, location)  # decided once, in the topology, for the paths too
        at = Location(location.file, location.line)
        if verdict.unresolved:
            yield Skip(f"{verdict.unresolved} ({at})")
        elif verdict.resolver_gap:
            yield _per_request_unserved(view, location, verdict)
        elif verdict.broken:
            yield _proxy_unserved(view, location, verdict)
        else:
            for endpoint in verdict.unproved:
                unproved.setdefault(view.unproved_reason(endpoint), []).append(str(at))
    for reason, places in unproved.items():
        yield Skip(f"{reason} ({', '.join(places)})")


def _per_request_unserved(view: HostView, location: NginxLocation, verdict: ProxyVerdict) -> Problem:
    target, gap = verdict.target, verdict.resolver_gap
    at = Location(location.file, location.line)
    return Problem(
        message=(f"nginx on host {view.name} proxies {location.path} to {location.proxy_pass} at {at}, a host name in "
                 f"a variable that nginx resolves per request, but {gap}: every request there gets 502."),
        evidence={"location": location.path, "proxy_pass": location.proxy_pass, "cause": gap,
                  "unserved": [target.per_request], "host_name": target.per_request, "locations": [at.as_evidence()]},
        identity=("cause", "unserved"), file=location.file, line=location.line)


def _proxy_unserved(view: HostView, location: NginxLocation, verdict: ProxyVerdict) -> Problem:
    target, broken = verdict.target, verdict.broken
    if target.variables:
        cause = f"${target.variables[0]} = {view.variables[target.variables[0]]}"
    elif target.upstream:
        cause = f"upstream {target.upstream.name} ({Location(target.upstream.file, target.upstream.line)})"
    else:
        cause = location.proxy_pass or ""
    at = Location(location.file, location.line)
    slots = {s: view.published(s) for s in sorted(view.slots)}
    serving = "; ".join(f"{s} publishes {_ports(p)}" for s, p in slots.items())
    return Problem(
        message=(f"nginx on host {view.name} proxies {location.path} to {location.proxy_pass}"
                 + (f" ({cause})" if cause != location.proxy_pass else "")
                 + f" at {at}, but no container serves " + ", ".join(str(e) for e in broken)
                 + (f" ({serving})" if serving else "") + ": requests get 502."),
        evidence={"location": location.path, "proxy_pass": location.proxy_pass, "cause": cause,
                  "unserved": [str(e) for e in broken], "locations": [at.as_evidence()], "slot_publishes": slots},
        identity=("cause", "unserved"), file=location.file, line=location.line,
    )


@functools.lru_cache(maxsize=4096)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    # The same few CIDRs (the ALB's subnets, 0.0.0.0/0) are compared for every target.
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _within(address: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    parsed = _address(address)
    return parsed is not None and parsed in network


@functools.lru_cache(maxsize=65536)
def _address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _covered(cidr: str, allowed: list[str]) -> bool:
    return _covered_by(cidr, tuple(allowed))


@functools.lru_cache(maxsize=4096)
def _covered_by(cidr: str, allowed: tuple[str, ...]) -> bool:
    # Cached like _network: every target behind one ALB asks about the same subnets and rules.
    network = _network(cidr)
    return network is not None and any(
        other is not None and network.version == other.version and network.subnet_of(other)
        for other in map(_network, allowed))


def _blocked(ctx: Context, sg_ids: list[str], port: int, alb_groups: list[str], alb_cidrs: list[str]) -> bool:
    """True when no ingress rule of the target's groups admits the ALB on ``port``."""
    cidrs: list[str] = []
    for sg_id in sg_ids:
        for rule in ctx.topology.security_groups[sg_id].ingress:
            if not rule.covers_port(port):
                continue
            if rule.source_group in alb_groups or rule.prefix_list:
                return False  # a prefix list's contents are not in the snapshot: assume it admits
            cidrs += [c for c in (rule.cidr, rule.ipv6_cidr) if c]
    if not alb_cidrs:
        return not cidrs  # without the ALB's subnets, any CIDR may admit it
    return not all(_covered(c, cidrs) for c in alb_cidrs)


def _sg_path(ctx: Context, way: WayIn, health: bool) -> Iterator[Problem | Skip]:
    """P106/P107: the targets' groups must admit the ALB on the traffic port, and on an explicit
    health-check port that differs from it."""
    keys = ctx.keys.security_group
    resource, sg_ids = way.resource, way.security_groups
    port = health_check_port(way.target_group, way.port) if health else way.port
    if health and port == way.port:
        return
    alb_groups, alb_cidrs = ctx.topology.alb_security_groups(way.target_group)
    missing = [g for g in sg_ids if g not in ctx.topology.security_groups]
    if missing or not sg_ids:
        yield Skip(f"security group {missing[0]} of the targets of {resource} is not in the snapshot"
                   if missing else f"the targets of {resource} have no security groups in the snapshot")
    elif not alb_groups and not alb_cidrs:
        yield Skip(f"the load balancer in front of {resource} has no security groups in the snapshot")
    elif _blocked(ctx, sg_ids, port, alb_groups, alb_cidrs):
        target_keys = [keys.get(g, g) for g in sg_ids]
        what = f"health checks on port {port}" if health else f"port {port}"
        yield Problem(
            message=(f"Security groups {', '.join(target_keys)} of the targets of {resource} admit nothing from "
                     f"the load balancer's groups ({', '.join(keys.get(g, g) for g in alb_groups) or 'none'}) on "
                     f"{what}: the ALB cannot connect and every target is unhealthy ({NACL_NOTE})."),
            evidence={"port": port, "target_security_groups": target_keys,
                      "alb_security_groups": [keys.get(g, g) for g in alb_groups], "alb_subnets": alb_cidrs,
                      "instances": list(way.instances), "note": NACL_NOTE},  # the engine may extend it
            identity=("port", "target_security_groups"),
        )


def sg_blocks_alb_to_target(ctx: Context, way: WayIn) -> Iterator[Problem | Skip]:
    """P106: the target's security groups admit nothing from the ALB on the port the TG uses."""
    yield from _sg_path(ctx, way, health=False)


def sg_blocks_health_check(ctx: Context, way: WayIn) -> Iterator[Problem | Skip]:
    """P107: the same for an explicit health-check port that differs from the traffic port."""
    yield from _sg_path(ctx, way, health=True)


def alb_egress_blocks_target(ctx: Context, way: WayIn) -> Iterator[Problem | Skip]:
    """P108: the ALB's own groups let no traffic out to the targets on the TG (or health-check) port."""
    keys = ctx.keys.security_group
    tg = way.target_group
    alb_groups, _ = ctx.topology.alb_security_groups(tg)
    if not alb_groups or any(g not in ctx.topology.security_groups for g in alb_groups):
        return  # P106 reports what is missing
    addresses = [t.instance.private_ip for t in ctx.topology.targets.get(tg.arn, [])
                 if t.instance and t.instance.private_ip]
    for port in sorted({way.port, health_check_port(tg, way.port)}):
        if not _egress_allows(ctx, alb_groups, port, set(way.security_groups), addresses):
            names = [keys.get(g, g) for g in alb_groups]
            yield Problem(message=f"The load balancer's security groups ({', '.join(names)}) allow no egress to the "
                          f"targets of {way.resource} on port {port}: every connection and health check times out "
                          f"({NACL_NOTE}).", evidence={"port": port, "alb_security_groups": names, "note": NACL_NOTE},
                          identity=("port",))


def _egress_allows(ctx: Context, groups: list[str], port: int, targets: set[str], addresses: list[str]) -> bool:
    for group in groups:
        for rule in ctx.topology.security_groups[group].egress:
            if not rule.covers_port(port):
                continue
            if rule.source_group in targets or rule.prefix_list:
                return True
            network = _network(rule.cidr or rule.ipv6_cidr or "")
            if network is not None and (not addresses or all(_within(a, network) for a in addresses if ":" not in a)):
                return True
    return False


def loopback_published_port_targeted(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """P109: the TG targets a port the slot's container publishes only on 127.0.0.1."""
    if sp.served:
        return
    for target, reach in sp.traffic:
        if reach.loopback_only and reach.container:
            yield Problem(message=(f"Target group {ctx.ref(target.target_group).key} sends traffic to port "
                                   f"{target.port} on host {sp.host.name}, but {reach.detail}: the ALB's connections "
                                   "are refused."),
                          evidence={"host": sp.host.name, "instances": [sp.instance_id], "port": target.port,
                                    "container": reach.container.name},
                          identity=("host", "port", "container"),
                          **located(reach.container.at(next((p for p in reach.container.ports
                                                             if p.host_port == target.port), None))))


def ecs_container_port_mismatch(ctx: Context, service: EcsService) -> Iterator[Problem | Skip]:
    """P110: an ECS service's load balancer containerPort is not mapped by its task definition."""
    key = ctx.ref(service).key
    td = service.task_definition
    if service.load_balancers and td is None:
        yield Skip(f"ecs_service {key} has no task definition in the snapshot")
        return
    for lb in service.load_balancers:
        container = next((c for c in td.containers if c.name == lb.container_name), None)
        mapped = sorted(m.container_port for m in container.port_mappings) if container else []
        if container is not None and lb.container_port in mapped:
            continue
        tg = ctx.keys.target_group.get(lb.target_group_arn, lb.target_group_arn)
        why = (f"container {lb.container_name} maps ports {_ports(mapped)}" if container
               else f"task definition {td.family}:{td.revision} has no container {lb.container_name}")
        yield Problem(
            message=(f"ECS service {key} registers {lb.container_name}:{lb.container_port} in target group {tg}, "
                     f"but {why}: no task ever passes the health check."),
            evidence={"container": lb.container_name, "container_port": lb.container_port,
                      "port_mappings": mapped, "target_group": tg, "task_definition": f"{td.family}:{td.revision}"},
            identity=("container", "container_port"),
        )


def host_undescribed(ctx: Context) -> Iterator[Problem]:
    """P113: a target instance matches no host in audit.yaml, so its path cannot be followed."""
    by_role: dict[str, Problem] = {}
    for item in ctx.topology.unmatched:
        instance = item.target.instance
        if item.reason is not None or instance is None:
            continue
        role = ctx.keys.instance.get(instance.id, instance.id)
        tg = ctx.topology.tg_key(item.target.target_group)
        problem = by_role.setdefault(role, Problem(
            resource=Ref("instance", role),
            message=(f"Instance role {role} receives traffic from the load balancer but matches no host in "
                     "audit.yaml, so its nginx and containers are unknown and the path rules cannot run."),
            evidence={"instances": [], "target_groups": [], "tags": instance.tags},
            identity=("role",),
        ))
        problem.evidence["role"] = role
        for field_name, value in (("instances", instance.id), ("target_groups", tg)):
            if value not in problem.evidence[field_name]:
                problem.evidence[field_name].append(value)
    yield from by_role.values()


def listener_port_closed(ctx: Context, listener: Listener) -> Iterator[Problem | Skip]:
    """P120: no ingress rule of the load balancer's own groups admits anyone on the listener's port."""
    lb = ctx.topology.load_balancers.get(listener.load_balancer_arn)
    if lb is None or not lb.security_groups:
        return  # a network load balancer without groups admits what its targets' groups admit
    missing = [g for g in lb.security_groups if g not in ctx.topology.security_groups]
    if missing:
        yield Skip(f"security group {missing[0]} of load balancer {ctx.ref(lb).key} is not in the snapshot")
        return
    groups = [ctx.topology.security_groups[g] for g in lb.security_groups]
    if any(rule.covers_port(listener.port) for group in groups for rule in group.ingress):
        return
    names = [ctx.ref(group).key for group in groups]
    yield Problem(message=(f"Listener {ctx.ref(listener).key} takes traffic on port {listener.port}, but the load "
                           f"balancer's security groups ({', '.join(names)}) admit nothing on {listener.port}: every "
                           "connection to it times out and all its traffic is lost."),
                  evidence={"port": listener.port, "protocol": listener.protocol, "load_balancer": ctx.ref(lb).key,
                            "security_groups": names,
                            "ingress": sorted({r.text("ingress") for group in groups for r in group.ingress})},
                  identity=("port",))
