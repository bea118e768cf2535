"""nginx on a host: what a `proxy_pass` resolves to (set variables, upstreams), which slots it serves
and how the switch follows them, which server answers a port, and which location answers a path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from auditor.model.snapshot import Container, Host, Listen, NginxLocation, NginxServer, Upstream
from auditor.topology.names import is_address, is_loopback
from auditor.topology.ports import unproved_reason
from auditor.topology.targets import NGINX_VARIABLE, Endpoint, ProxyTarget, parse_url

@dataclass(frozen=True)
class Route:
    """Which nginx location answers a path on a server, and what the app then sees."""

    location: NginxLocation | None
    app_path: str | None  # the path the request reaches the app with; None: it does not reach the app


def match_location(locations: list[NginxLocation], path: str) -> NginxLocation | None:
    """nginx's location choice: exact `=`, then the longest prefix (stop if `^~`), then the first
    matching regex in file order, else that longest prefix."""
    longest: NginxLocation | None = None
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


@dataclass(frozen=True)
class ProxyVerdict:
    """What one location's proxy_pass reaches, decided once for the path rules and P105 alike: why it
    cannot be followed (``unresolved``), a name held in a variable that nothing resolves per request
    (``resolver_gap``: every request 502), the endpoints nothing serves (``broken``: ruled out), and
    those nothing proves or rules out (``unproved``)."""

    target: ProxyTarget
    unresolved: str | None = None
    resolver_gap: str | None = None
    broken: list[Endpoint] = field(default_factory=list)
    unproved: list[Endpoint] = field(default_factory=list)


class Proxying:
    """nginx's part of a HostView (auditor.topology.host): its servers, proxy targets and locations."""

    host: Host
    slots: dict[str, str]
    nginx_container: Container | None
    servers_by_port: dict[int, list[tuple[NginxServer, Listen]]]
    variables: dict[str, str]
    upstreams: dict[str, Upstream]
    _resolved: dict[str, ProxyTarget]
    _verdicts: dict[tuple[int, int], ProxyVerdict]

    def verdict(self, server: NginxServer, location: NginxLocation) -> ProxyVerdict:
        """The verdict on ``location``'s proxy_pass, computed once per location."""
        key = (id(server), id(location))
        if key not in self._verdicts:
            target = self.resolve(location.proxy_pass or "")
            gap = None if target.unresolved else self.resolver_gap(server, target)
            followed = not target.unresolved and not gap
            self._verdicts[key] = ProxyVerdict(target, target.unresolved, gap,
                                               self.proxy_broken(target) if followed else [],
                                               self.proxy_unproved(target) if followed else [])
        return self._verdicts[key]

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

    def nginx_port_for(self, port: int) -> int | None:
        """The port nginx listens on for traffic arriving on a host port (nginx in a container of no
        slot sees the container side of the mapping), or None when nginx does not take it."""
        if self.servers_on(port) and not self.containerized:
            return port
        for container, published in self.publishers(port):
            if self.slot_of(container) is None and self.servers_on(published.container_port):
                return published.container_port
        return None

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
