"""Ports: the one place that decides whether a container is proved to serve a port, is ruled out, or
is unknown (DESIGN "Ports are proved, or the rule skips"). Published and exposed ports, a healthcheck's,
a Dockerfile's EXPOSE and `docker inspect` prove a port is served; only the port audit.yaml declares
or the container's own PORT variable rules the others out."""

from __future__ import annotations

import re

from auditor.model.refs import Location
from auditor.model.snapshot import Container, Host, PublishedPort
from auditor.topology.names import ANY_ADDRESS
from auditor.topology.targets import Endpoint

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


class Ports:
    """Who serves a port on the host: the ports part of a HostView (auditor.topology.host)."""

    host: Host
    containers: list[Container]
    nginx_container: Container | None
    private_ip: str | None
    slots: dict[str, str]
    by_service: dict[str, list[Container]]

    def slot_containers(self, slot: str) -> list[Container]:
        return self.by_service.get(self.slots[slot], [])

    def published(self, slot: str) -> list[int]:
        return sorted({p.host_port for c in self.slot_containers(slot) for p in c.ports if p.host_port})

    def slot_port_location(self, slot: str, host_port: int | None = None) -> Location | None:
        """Where a finding about a slot's published port points: the `ports:` entry publishing
        ``host_port`` (else its first published one), else the slot's service; None with no container."""
        containers = self.slot_containers(slot)
        entries = [(c, p) for c in containers for p in c.ports if p.host_port and host_port in (None, p.host_port)]
        if entries:
            return entries[0][0].at(entries[0][1])
        return containers[0].at() if containers else None

    def _reachable_binding(self, port: PublishedPort) -> bool:
        return port.host_ip in ANY_ADDRESS or port.host_ip == self.private_ip

    def publishers(self, host_port: int) -> list[tuple[Container, PublishedPort]]:
        return [(c, p) for c in self.containers for p in c.ports if p.host_port == host_port]

    def nginx_ruled_out(self, port: int) -> bool:
        """Whether nginx's own container is proved not to listen on container port ``port``: an nginx
        image runs nginx alone, and its whole config was read."""
        nginx = self.host.nginx
        return (self.nginx_container is not None and nginx is not None and nginx.alone and not nginx.unreadable
                and port not in self.servers_by_port)

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
