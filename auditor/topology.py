"""Traffic paths: listener → target group → target → host → nginx → container, once per slot.

Pure: a Snapshot in, facts about paths out. Judging those facts (which rule a
broken path breaks) is for auditor/checks; this module only answers "does
traffic arriving on this port of this host reach this slot, and how".

The semantics follow DESIGN.md "Slots and the switch": every path is evaluated
as if each slot were live, because the next deploy makes it so.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from auditor.model.keys import Keys
from auditor.model.snapshot import (
    Action,
    Container,
    EcsService,
    Host,
    Instance,
    Listen,
    Location,
    NginxServer,
    PublishedPort,
    SecurityGroup,
    Snapshot,
    TargetGroup,
    Upstream,
    tags_match,
)

# FastCGI, uwsgi and SCGI backends: nginx resolves their literal hosts at start as it does proxy_pass's.
_OTHER_PASSES = ("fastcgi_pass", "uwsgi_pass", "scgi_pass")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "host.docker.internal", "172.17.0.1"}
ANY_ADDRESS = {None, "", "*", "0.0.0.0", "::", "[::]"}


def is_loopback(address: str | None) -> bool:
    if address in LOOPBACK_NAMES:
        return address not in ("0.0.0.0",)
    try:
        return ipaddress.ip_address((address or "").strip("[]")).is_loopback
    except ValueError:
        return False


def where(file: str, line: int) -> str:
    return f"{file}:{line}" if file else ""


# --- proxy targets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where nginx sends a request: a host name or address and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


# An nginx variable reference, `$name` or `${name}`: the one pattern every nginx question uses.
NGINX_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
_URL = re.compile(r"^(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?(?P<uri>/.*)?$")


@dataclass
class ProxyTarget:
    """A proxy_pass resolved against `set` variables and `upstream` blocks, as configured now."""

    raw: str
    endpoints: list[Endpoint] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)  # variables the value came through
    upstream: Upstream | None = None
    uri: str | None = None  # the URI part of proxy_pass, which replaces the location prefix
    unresolved: str | None = None  # why it could not be resolved (missing data)
    # The host name when a variable supplies it: nginx resolves it per request, with a `resolver`
    # (an `upstream` block's name or an IP address needs none).
    per_request: str | None = None


def parse_url(value: str) -> tuple[str, int | None, str | None, str] | None:
    """(host, port or None, uri or None, scheme) of a proxy URL, or None if it is not one."""
    match = _URL.match(value.strip())
    if not match or value.startswith("unix:"):
        return None
    port = int(match["port"]) if match["port"] else None
    return match["host"].strip("[]") if match["host"].startswith("[") else match["host"], port, match["uri"], (
        match["scheme"] or "http"
    )


# --- what a host is, indexed -----------------------------------------------------------------------


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


@dataclass(frozen=True)
class Route:
    """Which nginx location answers a path on a server, and what the app then sees."""

    location: Location | None
    app_path: str | None  # the path the request reaches the app with; None: it does not reach the app


class HostView:
    """One host's nginx and containers, indexed for the questions paths ask."""

    def __init__(self, host: Host, private_ip: str | None = None) -> None:
        self.host = host
        self.private_ip = private_ip
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

    # --- names, as nginx in its container resolves them ----------------------------------------

    def _namespace(self) -> Container | None:
        """The container whose network namespace nginx runs in (`network_mode: service:X` shares X's)."""
        me = self.nginx_container
        if me is not None and me.network_mode and me.network_mode.startswith("service:"):
            owner = self.by_service.get(me.network_mode.split(":", 1)[1], [])
            return owner[0] if owner else None
        return me

    @cached_property
    def names(self) -> dict[str, list[Container]]:
        """Name -> containers it resolves to from nginx's container: services, container names and
        aliases on a network they share with it."""
        own = self._namespace()
        out: dict[str, list[Container]] = defaultdict(list)
        if own is None or own.network_mode == "host":
            return out
        mine = set(own.networks or {})
        for container in self.containers:
            networks = container.networks or {}
            shared = mine & set(networks)
            if not shared:
                continue
            names = {container.service or container.name, container.name}
            names |= {alias for network in shared for alias in networks[network]}
            for name in names:
                if container not in out[name]:
                    out[name].append(container)
        for alias, service in own.links.items():  # `links: [web:backend]` names web `backend` for nginx
            for container in self.by_service.get(service, []):
                if container not in out[alias]:
                    out[alias].append(container)
        return out

    def resolves(self, name: str) -> bool:
        """Whether nginx can resolve a literal host name at start."""
        own = self._namespace()
        if is_address(name) or name in LOOPBACK_NAMES or "." in name or name in self.upstreams:
            return True
        return name in self.names or (own is not None and name in own.extra_hosts)

    @cached_property
    def unresolvable(self) -> list[tuple[str, str, int]]:
        """(host:port as written, file, line) of literal proxy hosts nginx in a compose container cannot
        resolve: it refuses to start ("host not found in upstream")."""
        if self.nginx_container is None or self.host.nginx is None:
            return []  # nginx on the host: its /etc/hosts and DNS are not in the snapshot
        out = []
        for server in self.host.nginx.servers:
            for location in server.locations:
                passes = {"proxy_pass": [location.proxy_pass], "grpc_pass": [location.grpc_pass]}
                passes.update({name: location.directives.get(name, []) for name in _OTHER_PASSES})
                for name, values in passes.items():
                    for value in values:
                        if not value or "$" in value:
                            continue
                        parsed = parse_url(value)
                        if parsed and not self.resolves(parsed[0]):
                            line = location.lines.get(name, location.line)
                            out.append((value.split("://", 1)[-1].split("/", 1)[0], location.file, line))
        for upstream in self.upstreams.values():
            for entry in upstream.servers:
                parsed = parse_url(entry.address)
                if parsed and not self.resolves(parsed[0]):
                    out.append((entry.address, entry.file, entry.line))
        return out

    def resolver_gap(self, server: NginxServer, target: ProxyTarget) -> str | None:
        """Why a host nginx resolves per request answers nothing (every request 502), or None."""
        if target.per_request is None:
            return None
        if not server.resolver:
            return f"no resolver is set to resolve {target.per_request} per request"
        if self.nginx_container is not None and target.per_request not in self.names \
                and "." not in target.per_request:
            return f"{target.per_request} is no service or alias on a network nginx's container shares"
        return None

    @cached_property
    def unknown(self) -> str | None:
        """Why the paths through this host cannot be followed, or None when they can."""
        if self.host.uncollected:
            layer, why = sorted(self.host.uncollected.items())[0]
            return f"host {self.name}: {layer} was not collected ({why})"
        if self.host.not_requested:
            layer, why = sorted(self.host.not_requested.items())[0]
            return f"host {self.name}: {layer} not collected ({why})"
        if self.host.nginx is not None and self.host.nginx.unreadable:
            first = self.host.nginx.unreadable[0]
            return f"host {self.name}: nginx {first.message} ({where(first.file, first.line) or first.file})"
        if self.host.nginx is not None and self.host.nginx.refusals:
            first = self.host.nginx.refusals[0]
            return f"host {self.name}: nginx refuses its config ({first.message} at {where(first.file, first.line)})"
        if self.unresolvable:
            address, file, line = self.unresolvable[0]
            return f'host {self.name}: nginx refuses its config (host not found in upstream "{address}" at ' \
                   f"{where(file, line)})"
        if self.host.docker is None:
            return f"host {self.name} has no docker description in audit.yaml, so the container layer is unknown"
        return None

    def slot_of(self, container: Container) -> str | None:
        return self.slot_of_service.get(container.service or container.name)

    def in_slot(self, container: Container, slot: str | None) -> bool:
        """Containers of no slot (a database, nginx itself) are there whatever slot is live."""
        owner = self.slot_of(container)
        return owner is None or owner == slot

    def slot_containers(self, slot: str) -> list[Container]:
        return self.by_service.get(self.slots[slot], [])

    def published(self, slot: str) -> list[int]:
        return sorted({p.host_port for c in self.slot_containers(slot) for p in c.ports if p.host_port})

    # --- who serves a port on the host -------------------------------------------------------

    def _reachable_binding(self, port: PublishedPort) -> bool:
        return port.host_ip in ANY_ADDRESS or port.host_ip == self.private_ip

    def publishers(self, host_port: int) -> list[tuple[Container, PublishedPort]]:
        return [(c, p) for c in self.containers for p in c.ports if p.host_port == host_port]

    def _addressed(self, endpoint: Endpoint) -> list[Container] | str | None:
        """The containers an nginx proxy endpoint names, "host" for the host's own ports, or None for a
        host outside this one."""
        if self.containerized:
            if endpoint.host in ("host.docker.internal", "172.17.0.1") or endpoint.host == self.private_ip:
                return "host"
            if is_loopback(endpoint.host):
                own = self._namespace()
                return [own] if own is not None else []
            return self.names.get(endpoint.host)
        if is_loopback(endpoint.host) or endpoint.host == self.private_ip:
            return "host"
        if self.nginx_container is not None:
            return None  # a compose nginx on the host network: service names do not resolve there
        # Compose service names resolve on the project network to the container port.
        return self.by_service.get(endpoint.host)

    def _listens(self, container: Container, port: int) -> bool:
        if container is self.nginx_container and self.host.nginx is not None and self.host.nginx.alone:
            return port in self.servers_by_port  # an nginx image runs nginx alone
        return port in self.container_ports(container)

    def serves_endpoint(self, endpoint: Endpoint) -> list[Container] | None:
        """Containers that answer an nginx proxy endpoint, or None for a host outside this one."""
        addressed = self._addressed(endpoint)
        if addressed is None:
            return None
        if addressed == "host":
            return [c for c, _ in self.publishers(endpoint.port)]
        return [c for c in addressed if self._listens(c, endpoint.port)]

    def unproved(self, endpoint: Endpoint) -> list[Container]:
        """Containers nginx proxies to by name, on a port nothing proves and nothing rules out: on a
        compose network a process answers on every port it listens on, declared or not."""
        addressed = self._addressed(endpoint)
        if not isinstance(addressed, list):
            return []
        alone = self.host.nginx is not None and self.host.nginx.alone
        return [c for c in addressed if not (c is self.nginx_container and alone)
                and not self._listens(c, endpoint.port) and self.listen_port(c) is None]

    def listen_port(self, container: Container) -> int | None:
        """The one port a container's process listens on, when something says so: audit.yaml
        (docker.services.NAME.port) or a PORT variable in its own environment. Only this rules a port out."""
        declared = self.host.docker.listen_ports.get(container.service or "") if self.host.docker else None
        if declared:
            return declared
        return port_variable(container.environment)

    def container_ports(self, container: Container) -> set[int]:
        """Ports a container is proved to serve: published (container side), exposed (compose, its
        Dockerfile, docker inspect), its healthcheck's, declared."""
        ports = {p.container_port for p in container.ports} | set(container.expose)
        checked = healthcheck_port(container.healthcheck)
        if checked:
            ports.add(checked)  # its own healthcheck reaches it there
        if self.listen_port(container):
            ports.add(self.listen_port(container))
        if not ports and self.host.app and self.host.app.port:
            ports.add(self.host.app.port)
        return ports

    # --- nginx --------------------------------------------------------------------------------

    def resolve(self, proxy_pass: str) -> ProxyTarget:
        """Cached: every slot and rule asks about the same few proxy_pass values of a host."""
        if proxy_pass not in self._resolved:
            self._resolved[proxy_pass] = self._resolve(proxy_pass)
        return self._resolved[proxy_pass]

    def _resolve(self, proxy_pass: str) -> ProxyTarget:
        target = ProxyTarget(raw=proxy_pass)
        value = proxy_pass
        for _ in range(5):  # a variable may be set from another variable
            names = NGINX_VARIABLE.findall(value)
            if not names:
                break
            missing = [n for n in names if n not in self.variables]
            if missing:
                target.unresolved = f"nginx variable ${missing[0]} in proxy_pass {proxy_pass} has no `set` value"
                return target
            target.variables.extend(n for n in names if n not in target.variables)
            value = NGINX_VARIABLE.sub(lambda m: self.variables[m.group(1)], value)
        parsed = parse_url(value)
        if parsed is None:
            target.unresolved = f"proxy_pass {proxy_pass} is not an http(s) URL ({value})"
            return target
        host, port, target.uri, scheme = parsed
        raw_host = parse_url(proxy_pass)
        if target.variables and (raw_host is None or "$" in raw_host[0]) and host not in self.upstreams \
                and not is_address(host):
            target.per_request = host
        if port is None and host in self.upstreams:
            target.upstream = self.upstreams[host]
            for server in target.upstream.servers:
                if server.down:
                    continue
                server_url = parse_url(server.address)
                if server_url is None:
                    target.unresolved = f"upstream {host} server {server.address} is not host:port"
                    return target
                target.endpoints.append(Endpoint(server_url[0], server_url[1] or 80))
        else:
            target.endpoints.append(Endpoint(host, port or (443 if scheme == "https" else 80)))
        return target

    def slots_served(self, endpoint: Endpoint) -> set[str | None] | None:
        """The slots whose containers answer an endpoint (None in the set: a container of no slot)."""
        containers = self.serves_endpoint(endpoint)
        if containers is None:
            return None
        return {self.slot_of(c) for c in containers}

    @cached_property
    def switch_kind(self) -> str | None:
        return self.host.docker.switch.kind if self.host.docker and self.host.docker.switch else None

    def follows_slot(self, target: ProxyTarget) -> bool:
        """Whether this proxy target is the switch: it moves to whichever slot is live.

        A variable (`set $service_url …`) or a declared rewrite is the switch when it points
        at some slot now; an upstream is not a follower but lists the slots it serves.
        """
        if target.upstream is not None or target.unresolved:
            return False
        pointed = {s for e in target.endpoints for s in (self.slots_served(e) or set())} - {None}
        if not pointed:
            return False
        if target.variables:
            return self.switch_kind in (None, "variable", "rewrite")
        return self.switch_kind == "rewrite"

    def proxy_reaches(self, target: ProxyTarget, slot: str | None) -> bool:
        if self.follows_slot(target):
            return slot is not None and bool(self.slot_containers(slot))
        return any(slot in (self.slots_served(e) or set()) for e in target.endpoints)

    def proxy_broken(self, target: ProxyTarget) -> list[Endpoint]:
        """Endpoints on this host that no container serves now, in any slot (ruled out, not unproved)."""
        return [e for e in target.endpoints if self.serves_endpoint(e) == [] and not self.unproved(e)]

    def unproved_reason(self, endpoint: Endpoint) -> str:
        containers = self.unproved(endpoint)
        return unproved_reason(endpoint, containers[0].service if containers else None)

    def proxy_unproved(self, target: ProxyTarget) -> list[Endpoint]:
        """Endpoints whose port nothing proves or rules out: whether they answer is unknown."""
        return [e for e in target.endpoints if self.serves_endpoint(e) == [] and self.unproved(e)]

    @cached_property
    def fronted_by_nginx(self) -> bool:
        """Whether nginx on this host proxies to a slot (a fact of the host's own files: no AWS needed)."""
        if not self.slots:
            return False
        return any(self.proxy_reaches(self.resolve(location.proxy_pass), slot)
                   for servers in self.servers_by_port.values() for server, _ in servers
                   for location in server.locations if location.proxy_pass for slot in self.slots)

    def servers_on(self, port: int) -> list[NginxServer]:
        """Servers that accept connections from the load balancer on a port (not loopback-only)."""
        seen: list[NginxServer] = []
        for server, listen in self.servers_by_port.get(port, []):
            if not is_loopback(listen.address) and server not in seen:
                seen.append(server)
        return seen

    def default_server(self, port: int) -> NginxServer | None:
        """The server that answers a request whose Host matches no server_name.

        ALB health checks send the target's IP as Host, so this is the server they reach.
        """
        servers = self.servers_on(port)
        for server, listen in self.servers_by_port.get(port, []):
            if listen.default_server and server in servers:
                return server
        return servers[0] if servers else None

    # --- the answer ---------------------------------------------------------------------------

    def nginx_port_for(self, port: int) -> int | None:
        """The port nginx listens on for traffic arriving on a host port (nginx in a container of no
        slot sees the container side of the mapping), or None when nginx does not take it."""
        if self.servers_on(port) and not self.containerized:
            return port
        for container, published in self.publishers(port):
            if self.slot_of(container) is None and self.servers_on(published.container_port):
                return published.container_port
        return None

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
        listens = f"nginx listens on {nginx_port} ({where(first.file, first.line)})"
        if not proxies:
            return Reach(True, "nginx", f"{listens} and answers itself", server=first)
        unresolved: list[str] = []
        broken = 0
        slot_related = False
        for server, location in proxies:
            target = self.resolve(location.proxy_pass or "")
            if target.unresolved:
                unresolved.append(f"{target.unresolved} ({where(location.file, location.line)})")
                continue
            if self.resolver_gap(server, target):
                broken += 1  # every request through it gets 502 (P105)
                slot_related = slot_related or self.follows_slot(target)
                continue
            if self.proxy_reaches(target, slot):
                how = "the switch" if self.follows_slot(target) else str(target.raw)
                return Reach(True, "nginx", f"{listens} and proxies to slot {slot} through {how}", server=server)
            unknown = self.proxy_unproved(target)
            if unknown:
                unresolved.append(self.unproved_reason(unknown[0]) + f" ({where(location.file, location.line)})")
                continue
            if target.endpoints and len(self.proxy_broken(target)) == len(target.endpoints):
                broken += 1
            slot_related = slot_related or self.follows_slot(target) or any(
                (self.slots_served(e) or set()) - {None} for e in target.endpoints)
        if unresolved:
            return Reach(False, "nginx", listens, skipped=unresolved[0], server=first)
        server, location = proxies[0]
        targets = ", ".join(sorted({loc.proxy_pass or "" for _, loc in proxies}))
        detail = f"{listens} and proxies to {targets} ({where(location.file, location.line)})"
        if not slot_related and broken < len(proxies):
            # This server fronts services outside the slots (or other hosts): no slot depends on it.
            return Reach(True, "nginx", detail, server=server)
        return Reach(False, "nginx", detail, proxy_broken=broken == len(proxies), server=server)

    def route(self, server: NginxServer, path: str) -> Route:
        """The location nginx picks for a request path, by nginx's own order of matching."""
        location = match_location(server.locations, path)
        if location is None or not location.proxy_pass:
            return Route(location, None)
        uri = self.resolve(location.proxy_pass).uri
        if uri is None or location.modifier in ("~", "~*"):
            return Route(location, path)
        # proxy_pass with a URI replaces the matched location prefix with that URI.
        return Route(location, uri + path[len(location.path):] if path.startswith(location.path) else uri)

    # --- which slot is live now ---------------------------------------------------------------

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


def _addresses(host: Host) -> str:
    """The host's facts that may name an address: published ports' bindings, nginx's variables,
    proxy targets and upstream servers (one string to search)."""
    parts = [p.host_ip or "" for c in (host.docker.containers if host.docker else []) for p in c.ports]
    if host.nginx is not None:
        parts += [v.value for v in host.nginx.variables]
        parts += [loc.proxy_pass or "" for server in host.nginx.servers for loc in server.locations]
        parts += [entry.address for upstream in host.nginx.upstreams for entry in upstream.servers]
    return " ".join(parts)


def is_address(host: str) -> bool:
    """An IP address (IPv6 with or without brackets): nothing to resolve."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# A healthcheck that asks the container itself on a port: `curl -f http://localhost:8000/health`, bash's
# `/dev/tcp/127.0.0.1/9000`, `nc 127.0.0.1 11211`.
_SELF = r"(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])"
_HEALTHCHECK_PORT = re.compile(rf"(?:^|[\s/@]){_SELF}:(\d{{1,5}})\b|/dev/tcp/{_SELF}/(\d{{1,5}})\b"
                               rf"|\bnc\s+(?:-\w+\s+)*{_SELF}\s+(\d{{1,5}})\b")


def healthcheck_port(command: str | None) -> int | None:
    match = _HEALTHCHECK_PORT.search(command or "")
    port = int(next(g for g in match.groups() if g)) if match else 0
    return port if 0 < port <= 65535 else None


def port_variable(environment: dict[str, str]) -> int | None:
    """The port a container's own PORT variable names (redacted or absent: None)."""
    value = environment.get("PORT", "")
    return int(value) if value.isdigit() else None


def unproved_reason(endpoint: Endpoint, service: str | None = None) -> str:
    """Why a proxied port is unknown, naming the compose service behind the address (nginx sharing a
    service's network namespace reaches it on 127.0.0.1)."""
    service = service or endpoint.host
    return (f"nginx proxies to {endpoint}, and nothing proves or rules out that service {service} listens "
            f"on {endpoint.port}: declare docker.services.{service}.port in audit.yaml")


def match_location(locations: list[Location], path: str) -> Location | None:
    """nginx's location choice: exact `=`, then the longest prefix (stop if `^~`), then the first
    matching regex in file order, else that longest prefix."""
    longest: Location | None = None
    for location in locations:
        if location.modifier == "=":
            if location.path == path:
                return location
        elif location.modifier in ("", "^~") and path.startswith(location.path):
            if longest is None or len(location.path) > len(longest.path):
                longest = location
    if longest is not None and longest.modifier == "^~":
        return longest
    for location in locations:
        if location.modifier in ("~", "~*"):
            flags = re.IGNORECASE if location.modifier == "~*" else 0
            try:
                if re.search(location.path, path, flags):
                    return location
            except re.error:
                continue
    return longest


# --- the estate: units of target groups and their targets ------------------------------------------


@dataclass
class Unit:
    """Target groups that together must reach every slot: one TG, or the TGs of one weighted
    forward action (the ALB is the switch), or the TGs a host declares per slot."""

    resource: str  # RESOURCE_TYPE:KEY the findings name
    target_groups: list[TargetGroup]
    per_slot: dict[str, TargetGroup] | None = None  # declared alb switch: the TG of each slot
    slot_resources: dict[str, str] = field(default_factory=dict)  # declared: each slot's TG resource

    def resource_for(self, slot: str | None) -> str:
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
class WayIn:
    """Targets of one TG that share security groups and a port: what the ALB must be let into."""

    resource: str  # RESOURCE_TYPE:KEY the findings name
    slot: str | None
    security_groups: list[str]
    port: int
    instances: list[str]  # instance ids (none for an ECS service)
    target_group: TargetGroup


@dataclass(frozen=True)
class Forward:
    owner: str  # the listener or listener rule, as RESOURCE_TYPE:KEY
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


class Topology:
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
            owner = f"listener:{self.keys.listener[listener.arn]}"
            out += [Forward(owner, listener.arn, listener.load_balancer_arn, a) for a in listener.default_actions]
        for rule in self.snapshot.resources.listener_rules:
            listener = self.listeners.get(rule.listener_arn)
            lb = listener.load_balancer_arn if listener else ""
            owner = f"listener_rule:{self.keys.listener_rule(rule)}"
            out += [Forward(owner, rule.listener_arn, lb, a) for a in rule.actions]
        return [f for f in out if f.action.type == "forward"]

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
        ip = instance.private_ip if instance else None
        # An instance's address changes a host's answers only where its facts name that address (a
        # port published on it, nginx proxying to it); elsewhere the instances of a host share a view.
        if ip is not None and ip not in _addresses(host):
            ip = None
        key = (host.name + (host.instance_id or ""), ip)
        if key not in self._views:
            self._views[key] = HostView(host, ip)
        return self._views[key]

    @cached_property
    def host_views(self) -> list[HostView]:
        """Every host description once (per instance where facts were collected per instance)."""
        return [self.view(h, self.instances.get(h.instance_id or "")) for h in self.snapshot.resources.hosts]

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
            resources = {slot: f"target_group:{self.tg_key(tg)}" for slot, tg in per_slot.items()}
            units.append(Unit(",".join(sorted(resources.values())), tgs, per_slot, resources))
        for forward in self.forward_actions:
            arns = [t.arn for t in forward.action.target_groups if t.arn in self.target_groups and t.arn not in grouped]
            if len(arns) > 1:
                units.append(Unit(forward.owner, [self.target_groups[a] for a in sorted(arns)]))
                grouped |= set(arns)
        for tg in self.forwarded:
            if tg.arn not in grouped and tg.arn not in self.ecs_by_tg:
                units.append(Unit(f"target_group:{self.tg_key(tg)}", [tg]))
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

    # --- security groups -------------------------------------------------------------------------

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
                    out.append(WayIn(f"target_group:{self.tg_key(tg)}", slot_of.get(tg.arn), list(sgs), port,
                                     instances, tg))
        for service in self.snapshot.resources.ecs_services:
            td = service.task_definition
            if td is None or td.network_mode != "awsvpc":
                continue
            for lb in service.load_balancers:
                tg = self.target_groups.get(lb.target_group_arn)
                if tg is not None:
                    out.append(WayIn(f"ecs_service:{self.keys.ecs_service(service)}", None,
                                     sorted(service.security_groups), lb.container_port, [], tg))
        return out

    # --- the path shape, for drift and for people ------------------------------------------------

    @cached_property
    def path_items(self) -> list[dict[str, object]]:
        """One item per listener and slot: ALB port → TG ports → nginx port → the slot's ports."""
        tgs_of_listener: dict[str, set[str]] = defaultdict(set)
        for forward in self.forward_actions:
            tgs_of_listener[forward.listener_arn] |= {t.arn for t in forward.action.target_groups}
        paths_of_tg: dict[str, list[SlotPath]] = defaultdict(list)
        for sp in self.slot_paths:
            for tg in sp.unit.for_slot(sp.slot):
                paths_of_tg[tg.arn].append(sp)
        # Under a declared alb switch a listener will forward to each slot's TG in turn.
        declared_siblings = {tg.arn: {t.arn for t in unit.target_groups}
                             for unit in self.units if unit.per_slot for tg in unit.target_groups}
        items: list[dict[str, object]] = []
        for listener in sorted(self.snapshot.resources.listeners, key=lambda x: self.keys.listener[x.arn]):
            key = self.keys.listener[listener.arn]
            tg_arns = set(tgs_of_listener[listener.arn])
            tg_arns |= {s for arn in tg_arns for s in declared_siblings.get(arn, ())}
            by_slot: dict[str | None, list[SlotPath]] = defaultdict(list)
            seen: set[int] = set()
            for arn in sorted(tg_arns):
                for sp in paths_of_tg.get(arn, []):
                    if id(sp) not in seen:
                        seen.add(id(sp))
                        by_slot[sp.slot].append(sp)
            if not by_slot:
                tgs = sorted({f"TG:{self.target_groups[a].port}" for a in tg_arns if a in self.target_groups})
                actions = sorted({a.type for a in listener.default_actions if a.type != "forward"})
                items.append({"key": key, "alb": f"ALB:{listener.port}", "target_groups": ",".join(tgs) or None,
                              "nginx": None, "app": None, "reached": None, "actions": ",".join(actions) or None})
                continue
            for slot, paths in sorted(by_slot.items(), key=lambda kv: kv[0] or ""):
                pairs = [(sp, t, r) for sp in paths for t, r in sp.traffic]
                pairs = [p for p in pairs if p[2].served] or pairs  # under the alb switch: the TG of the slot
                nginx = sorted({(sp.host.nginx_port_for(t.port) or t.port) for sp, t, r in pairs
                                if r.via == "nginx"})
                published = sorted({p for sp in paths for p in (sp.host.published(slot) if slot else [])})
                items.append({
                    "key": f"{key}/{slot}" if slot else key,
                    "alb": f"ALB:{listener.port}",
                    "target_groups": ",".join(f"TG:{p}" for p in sorted({t.port for _, t, _ in pairs})) or None,
                    "nginx": ",".join(f"nginx:{p}" for p in nginx) or None,
                    "app": f"{slot}:{','.join(map(str, published)) or '-'}" if slot else "app",
                    "reached": all(sp.served for sp in paths),
                    "actions": None,
                })
        return items

    def shapes(self) -> list[str]:
        """Each listener's path shape in one line, e.g. ``ALB:443 → TG:80 → nginx:80 → app{blue:3000, green:4000}``;
        a slot the path does not reach is marked ✗."""
        by_listener: dict[str, list[dict[str, object]]] = defaultdict(list)
        for item in self.path_items:
            by_listener[str(item["key"]).split("/")[0]].append(item)
        lines = []
        for items in by_listener.values():
            hops = {tuple(i[k] for k in ("alb", "target_groups", "nginx", "actions")) for i in items}
            groups = [items] if len(hops) == 1 else [[i] for i in items]
            for group in groups:
                first = group[0]
                parts = [str(first["alb"])] + [str(first[k]) for k in ("actions", "target_groups", "nginx") if first[k]]
                apps = [f"{i['app']}{'' if i['reached'] in (True, None) else ' ✗'}" for i in group if i["app"]]
                if apps:
                    parts.append("app{" + ", ".join(apps) + "}" if any(":" in a for a in apps) else apps[0])
                lines.append(" → ".join(parts))
        return lines


def health_check_port(tg: TargetGroup, traffic_port: int) -> int:
    port = tg.health_check.port
    return traffic_port if port in ("traffic-port", "", None) else int(port)
