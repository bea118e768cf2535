"""Docker and ECS (D6xx): how containers publish, what they run and what they can touch."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

from auditor.engine.api import Context, Problem, located
from auditor.model.snapshot import Container, EcsContainer, EcsService, PublishedPort
from auditor.topology import ANY_ADDRESS, HostView, port_variable

DOCKER_SOCKET = ("/var/run/docker.sock", "/run/docker.sock")


def _named(container: Container) -> dict[str, object]:
    return {"container": container.name, "service": container.service}


def _at(container: Container, port: PublishedPort | None = None) -> dict[str, object]:
    """The compose file and line of a container (of its `ports:` entry, for a finding about a port)."""
    return located(container.at(port))


def _ecs_containers(service: EcsService) -> list[EcsContainer]:
    return service.task_definition.containers if service.task_definition else []


def slot_port_collision(ctx: Context, view: HostView) -> Iterator[Problem]:
    """D601: two slots publish the same host port: the second one cannot start while the first runs."""
    owners: dict[int, list[str]] = defaultdict(list)
    for slot in sorted(view.slots):
        for port in view.published(slot):
            owners[port].append(slot)
    for port, slots in sorted(owners.items()):
        if len(slots) > 1:
            yield Problem(message=f"Slots {' and '.join(slots)} on host {view.name} both publish port {port}: the "
                          "new colour cannot start beside the old one, so the switch has nothing to switch to.",
                          evidence={"port": port, "slots": slots}, identity=("port",),
                          **located(view.slot_port_location(slots[-1], port)))


def app_port_mismatch(ctx: Context, subject: HostView | EcsService) -> Iterator[Problem]:
    """D602: a port mapping targets a container port the app does not listen on (its PORT)."""
    if isinstance(subject, EcsService):
        for container in _ecs_containers(subject):
            port = port_variable(container.environment)
            mapped = sorted(m.container_port for m in container.port_mappings)
            if port is not None and mapped and port not in mapped:
                yield Problem(message=f"ECS container {container.name} of {ctx.ref(subject).key} listens on PORT "
                              f"{port} but maps {', '.join(map(str, mapped))}.",
                              evidence={"container": container.name, "app_port": port, "mapped": mapped},
                              identity=("container", "app_port"))
        return
    yield from _nginx_port_mismatch(subject)
    for container in subject.containers:
        port = subject.listen_port(container)  # declared in audit.yaml, else its PORT: as the paths read it
        mapped = sorted({p.container_port for p in container.ports if p.host_port})
        if port is not None and mapped and port not in mapped:
            said = f"PORT {port}" if port == port_variable(container.environment) else \
                f"{port} (docker.services.{container.service}.port)"
            yield Problem(message=f"Container {container.name} on host {subject.name} listens on {said} but "
                          f"publishes container port{'s' if len(mapped) > 1 else ''} "
                          f"{', '.join(map(str, mapped))}: connections are refused.",
                          evidence={**_named(container), "app_port": port, "mapped": mapped},
                          identity=("container", "app_port"),
                          **_at(container, next(p for p in container.ports if p.host_port)))


def _nginx_port_mismatch(view: HostView) -> Iterator[Problem]:
    """nginx's own ports are known exactly from its config (a proved negative, unlike an app's): a
    published container port no `listen` serves is refused."""
    container = view.nginx_container
    if container is None or container.network_mode == "host":
        return
    listening = sorted(view.servers_by_port)
    for entry in container.ports:
        if entry.host_port and view.nginx_ruled_out(entry.container_port):
            said = f"listens on {', '.join(map(str, listening))}" if listening else "listens on no port"
            yield Problem(message=f"nginx's container {container.name} on host {view.name} publishes container port "
                          f"{entry.container_port} (host {entry.host_port}), but its config {said}: connections to "
                          f"{entry.host_port} are refused.",
                          evidence={**_named(container), "port": entry.container_port, "listening": listening},
                          identity=("container", "port"), remediation=(
                              f"Publish a port nginx listens on (`{entry.host_port}:{listening[0]}`), or add "
                              f"`listen {entry.container_port};` to the server that should answer it."
                              if listening else f"Add `listen {entry.container_port};` to a server."),
                          **_at(container, entry))


def privileged_or_socket(ctx: Context, view: HostView) -> Iterator[Problem]:
    """D603: a privileged container or one with the Docker socket owns the host."""
    for container in view.containers:
        socket = [v for v in container.volumes if v in DOCKER_SOCKET]
        if container.privileged or socket:
            what = "runs privileged" if container.privileged else f"mounts {socket[0]}"
            yield Problem(message=f"Container {container.name} on host {view.name} {what}: whoever controls it "
                          "controls the host.", evidence={**_named(container), "privileged": container.privileged,
                                                          "docker_socket": bool(socket)},
                          identity=("container",), **_at(container))


# Tags that move: channels, and tags naming only a distro or a major version (alpine, 14-alpine).
_MOVING_TAG = re.compile(
    r"^(?:latest|stable|edge|nightly|mainline|lts|current|main|master|develop|dev|beta|rc"
    r"|(?:v?\d+|alpine|slim|bookworm|bullseye|buster|trixie|jammy|focal|noble|jessie|stretch)"
    r"(?:-(?:alpine|slim|bookworm|bullseye|buster|trixie|jammy|focal|noble|perl|otel))*)$")


def _mutable(image: str) -> bool:
    if not image or "@sha256:" in image:
        return False
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return True  # no tag is latest
    return bool(_MOVING_TAG.match(name.rsplit(":", 1)[1]))


def _pin(image: str) -> str:
    repository = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image.split("@")[0]
    return f"Pin {repository} to a full version tag ({repository}:<major.minor.patch>) or a digest ({repository}@sha256:…)."


def mutable_image_tag(ctx: Context, subject: HostView | EcsService) -> Iterator[Problem]:
    """D604: a pulled image with a tag that moves: what runs can change with no deploy, and differs between
    slots. Images built from a local `build:` are exempt."""
    if isinstance(subject, EcsService):
        for container in _ecs_containers(subject):
            if _mutable(container.image):
                yield Problem(message=f"ECS container {container.name} of {ctx.ref(subject).key} runs "
                              f"{container.image}, a tag that moves.",
                              evidence={"container": container.name, "image": container.image},
                              identity=("container", "image"))
        return
    for container in subject.containers:
        if not container.built and _mutable(container.image):
            yield Problem(message=f"Container {container.name} on host {subject.name} runs {container.image}, a tag "
                          "that moves.", evidence={**_named(container), "image": container.image},
                          identity=("container", "image"), remediation=_pin(container.image), **_at(container))


def app_port_exposed_beside_proxy(ctx: Context, view: HostView) -> Iterator[Problem]:
    """D605: nginx fronts the slots, yet a slot publishes on every interface, where Docker's iptables
    rules let it bypass the host firewall."""
    if not view.fronted_by_nginx:
        return
    for slot in sorted(view.slots):
        for container in view.slot_containers(slot):
            entries = [p for p in container.ports if p.host_port and p.host_ip in ANY_ADDRESS]
            exposed = sorted({p.host_port for p in entries})
            if exposed:
                yield Problem(message=f"Slot {slot} ({container.name}) publishes {', '.join(map(str, exposed))} on "
                              f"every interface of host {view.name} while nginx fronts it: bind it to 127.0.0.1.",
                              evidence={**_named(container), "ports": exposed}, identity=("container",),
                              **_at(container, entries[0]))
