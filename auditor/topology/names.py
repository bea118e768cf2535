"""Names as nginx resolves them: which containers a host name reaches from nginx's container (services,
container names, aliases on shared networks, links), which literal names nginx cannot resolve at start,
and whether a name held in a variable resolves per request."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from functools import cached_property

from auditor.model.snapshot import Container, Host, NginxServer, Upstream
from auditor.topology.targets import Endpoint, ProxyTarget, parse_url

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


def is_address(host: str) -> bool:
    """An IP address (IPv6 with or without brackets): nothing to resolve."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Names:
    """What the host's nginx can resolve: the names part of a HostView (auditor.topology.host)."""

    host: Host
    containers: list[Container]
    by_service: dict[str, list[Container]]
    nginx_container: Container | None
    containerized: bool
    private_ip: str | None
    upstreams: dict[str, Upstream]

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
