"""One host as the paths see it: its nginx and containers indexed for the question "does traffic
arriving on this port reach this slot, and how" (Reach), and which slot is live now."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

from auditor.model.refs import Location
from auditor.model.snapshot import Container, Host, Listen, NginxServer, Upstream
from auditor.topology.names import Names, is_loopback
from auditor.topology.nginx import Proxying, ProxyVerdict
from auditor.topology.ports import Ports
from auditor.topology.targets import ProxyTarget

@dataclass(frozen=True)
class Reach:
    """Whether traffic arriving on a host port reaches a slot, and the reason in words."""

    served: bool
    via: str  # "nginx" | "container" | "none"
    detail: str
    skipped: str | None = None  # data the answer needed but the snapshot lacks
    loopback_only: bool = False  # the slot publishes the port, but only on 127.0.0.1 (P109)
    proxy_broken: bool = False  # nginx answers but proxies only to targets nothing serves (P105)
    server: NginxServer | None = None
    container: Container | None = None


class HostView(Names, Ports, Proxying):
    """One host's nginx and containers, indexed for the questions paths ask: what names resolve
    (Names), who serves a port (Ports), where nginx sends a request (Proxying), and here whether a
    port reaches a slot and which slot is live."""

    def __init__(self, host: Host, private_ip: str | None = None, front: bool = True) -> None:
        self.host = host
        self.private_ip = private_ip
        self.front = front  # False: an nginx service beside the one the load balancer reaches
        docker = host.docker
        self.nginx_service = host.nginx.service if host.nginx else None
        self.slots: dict[str, str] = dict(docker.slots) if docker else {}
        self.slot_of_service = {service: slot for slot, service in self.slots.items()}
        self.containers = list(docker.containers) if docker else []
        self.by_service: dict[str, list[Container]] = defaultdict(list)
        for container in self.containers:
            self.by_service[container.service or container.name].append(container)
        nginx = host.nginx
        self._resolved: dict[str, ProxyTarget] = {}
        self._verdicts: dict[tuple[int, int], ProxyVerdict] = {}
        self._reached: dict[tuple[int, str | None], Reach] = {}
        self.servers_by_port: dict[int, list[tuple[NginxServer, Listen]]] = defaultdict(list)
        self.variables: dict[str, str] = {}
        self.upstreams: dict[str, Upstream] = {}
        if nginx:
            for server in nginx.servers:
                for listen in server.listen:
                    self.servers_by_port[listen.port].append((server, listen))
            # nginx evaluates `set` at request time; the last one in file order is what a
            # deploy script that rewrites an included file leaves in force.
            for variable in nginx.variables:
                self.variables[variable.name] = variable.value
            self.upstreams = {u.name: u for u in nginx.upstreams}
        found = self.by_service.get(self.nginx_service or "", [])
        self.nginx_container: Container | None = found[0] if found else None
        # nginx in its own network namespace (a compose service not on the host network): loopback is
        # the container itself (or the service whose namespace it shares), names resolve on its networks.
        self.containerized = self.nginx_container is not None and self.nginx_container.network_mode != "host"

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def nginx_named(self) -> str:
        """How a finding names this view's nginx: the host's, or which other nginx service of it."""
        return f"nginx on host {self.name}" if self.front else \
            f"nginx service {self.nginx_service} on host {self.name}"

    @cached_property
    def layer_gaps(self) -> dict[str, tuple[str, str]]:
        """Each host layer ("nginx", "docker") not read here: why, and whether it was not asked for
        ("not_requested") or failed ("not_collected"). No nginx is a fact (the ALB or the proxy reaches
        the containers directly); no docker description is not."""
        gaps = {layer: (f"host {self.name}: {layer} not collected ({why})", "not_requested")
                for layer, why in self.host.not_requested.items()}
        gaps |= {layer: (f"host {self.name}: {layer} was not collected ({why})", "not_collected")
                 for layer, why in self.host.uncollected.items()}
        if self.host.docker is None and "docker" not in gaps:
            gaps["docker"] = (f"host {self.name} has no docker description in audit.yaml, so the container layer is "
                              "unknown", "not_requested")
        return gaps

    @cached_property
    def unknown(self) -> str | None:
        """Why the paths through this host cannot be followed, or None when they can."""
        for layer in [*sorted(self.host.uncollected), *sorted(self.host.not_requested)]:
            return self.layer_gaps[layer][0]
        if self.host.nginx is not None and self.host.nginx.unreadable:
            first = self.host.nginx.unreadable[0]
            return f"host {self.name}: nginx {first.message} ({str(Location(first.file, first.line)) or first.file})"
        if self.host.nginx is not None and self.host.nginx.refusals:
            first = self.host.nginx.refusals[0]
            return f"host {self.name}: nginx refuses its config ({first.message} at {Location(first.file, first.line)})"
        if self.unresolvable:
            address, file, line = self.unresolvable[0]
            return f'host {self.name}: nginx refuses its config (host not found in upstream "{address}" at ' \
                   f"{Location(file, line)})"
        return self.layer_gaps["docker"][0] if "docker" in self.layer_gaps else None

    def slot_of(self, container: Container) -> str | None:
        return self.slot_of_service.get(container.service or container.name)

    def in_slot(self, container: Container, slot: str | None) -> bool:
        """Containers of no slot (a database, nginx itself) are there whatever slot is live."""
        owner = self.slot_of(container)
        return owner is None or owner == slot

    def reach(self, port: int, slot: str | None) -> Reach:
        """Does traffic arriving on ``port`` of this host reach ``slot`` (None: a host without slots)?
        Cached: every target group, slot and rule asks about the same few ports of a host."""
        if (port, slot) not in self._reached:
            self._reached[port, slot] = self._reach(port, slot)
        return self._reached[port, slot]

    def _reach(self, port: int, slot: str | None) -> Reach:
        if self.unknown:
            return Reach(False, "none", "", skipped=self.unknown)
        direct = [(c, p) for c, p in self.publishers(port) if self.in_slot(c, slot)]
        slot_direct = [(c, p) for c, p in direct if self.slot_of(c) == slot]
        for container, published in slot_direct:
            if self._reachable_binding(published):
                return Reach(True, "container", f"container {container.name} publishes {port}", container=container)
        nginx_port = self.nginx_port_for(port)
        if nginx_port is not None:
            return self._reach_through_nginx(port, nginx_port, slot)
        if slot_direct:
            container, published = slot_direct[0]
            return Reach(False, "container", f"container {container.name} publishes {port} only on "
                         f"{published.host_ip}, which the load balancer cannot reach",
                         loopback_only=is_loopback(published.host_ip), container=container)
        for container, published in direct:
            if self._reachable_binding(published):
                return Reach(True, "container", f"container {container.name} publishes {port}", container=container)
        others = sorted({self.slot_of(c) or c.name for c, _ in self.publishers(port)})
        if others:
            return Reach(False, "none", f"port {port} on host {self.name} is published by {', '.join(others)} only")
        return Reach(False, "none", f"nothing on host {self.name} listens on port {port}")

    def _reach_through_nginx(self, port: int, nginx_port: int, slot: str | None) -> Reach:
        servers = self.servers_on(nginx_port)
        proxies = [(s, loc) for s in servers for loc in s.locations if loc.proxy_pass]
        first = servers[0]
        listens = f"nginx listens on {nginx_port} ({Location(first.file, first.line)})"
        if not proxies:
            return Reach(True, "nginx", f"{listens} and answers itself", server=first)
        unresolved: list[str] = []
        broken = 0
        slot_related = False
        for server, location in proxies:
            verdict = self.verdict(server, location)
            target = verdict.target
            if verdict.unresolved:
                unresolved.append(f"{verdict.unresolved} ({Location(location.file, location.line)})")
                continue
            if verdict.resolver_gap:
                broken += 1  # every request through it gets 502 (P105)
                slot_related = slot_related or self.follows_slot(target)
                continue
            if self.proxy_reaches(target, slot):
                how = "the switch" if self.follows_slot(target) else str(target.raw)
                return Reach(True, "nginx", f"{listens} and proxies to slot {slot} through {how}", server=server)
            if verdict.unproved:
                unresolved.append(self.unproved_reason(verdict.unproved[0]) +
                                  f" ({Location(location.file, location.line)})")
                continue
            if target.endpoints and len(verdict.broken) == len(target.endpoints):
                broken += 1
            slot_related = slot_related or self.follows_slot(target) or any(
                (self.slots_served(e) or set()) - {None} for e in target.endpoints)
        if unresolved:
            return Reach(False, "nginx", listens, skipped=unresolved[0], server=first)
        server, location = proxies[0]
        targets = ", ".join(sorted({loc.proxy_pass or "" for _, loc in proxies}))
        detail = f"{listens} and proxies to {targets} ({Location(location.file, location.line)})"
        if not slot_related and broken < len(proxies):
            # This server fronts services outside the slots (or other hosts): no slot depends on it.
            return Reach(True, "nginx", detail, server=server)
        return Reach(False, "nginx", detail, proxy_broken=broken == len(proxies), server=server)

    @cached_property
    def live(self) -> tuple[str | None, str]:
        """The live slot and how it was found (DESIGN.md order), or (None, reason)."""
        if not self.slots:
            return None, "the host has no slots"
        pointed: set[str] = set()
        for servers in self.servers_by_port.values():
            for server, _ in servers:
                for location in server.locations:
                    if not location.proxy_pass:
                        continue
                    target = self.resolve(location.proxy_pass)
                    if target.upstream is None:
                        pointed |= {s for e in target.endpoints for s in (self.slots_served(e) or set())} - {None}
        if len(pointed) == 1:
            return pointed.pop(), "nginx points at it"
        running = {s for s in self.slots if any(c.running for c in self.slot_containers(s))}
        known = all(c.running is not None for s in self.slots for c in self.slot_containers(s))
        if len(running) == 1 and known:
            return next(iter(running)), "it is the only running slot"
        declared = self.host.docker.live if self.host.docker else None
        if declared:
            return declared, "audit.yaml declares it"
        return None, "unknown"
