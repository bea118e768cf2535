"""The snapshot: plain facts about one environment, as versioned, deterministic JSON.

Everything after collection reads a Snapshot and nothing else, so a saved file
is enough to run checks, diffs and the gate offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Literal

import msgspec

from auditor import __version__
from auditor.errors import AuditError, SnapshotError, read_bytes
from auditor.model.refs import Location
from auditor.model.typed import key_path, problem, typed

SCHEMA_VERSION = 1


class Model(msgspec.Struct, kw_only=True):
    """A snapshot fact. msgspec validates a whole file while it parses it (a 10k-resource snapshot
    in a quarter of the time json + pydantic took, in less memory). Unknown fields are
    ignored, not refused: a snapshot of the same schema_version written by a newer auditor may carry
    more facts, and must stay readable."""


# AWS returns attribute values as strings; hand-written snapshots may say 60 or true.
Scalar = str | int | float | bool


def _texts(values: dict[str, Scalar]) -> dict[str, str]:
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items()}


# AWS's value of each attribute a describe call may leave out (moto and AWS omit what was never set)
# and a plan need not set: the checks read these, and the plan overlay writes them.
AWS_DEFAULTS: dict[str, Scalar] = {
    "idle_timeout.timeout_seconds": 60,
    "deletion_protection.enabled": False,
    "routing.http.drop_invalid_header_fields.enabled": False,
    "routing.http.desync_mitigation_mode": "defensive",
    "access_logs.s3.enabled": False,
    "deregistration_delay.timeout_seconds": 300,
    "slow_start.duration_seconds": 0,
}


def attribute(attributes: dict[str, str], name: str) -> str:
    """A load balancer's or target group's attribute as text, AWS's default when it is absent."""
    return attributes[name] if name in attributes else _texts({name: AWS_DEFAULTS[name]})[name]


class Resource(Model, kw_only=True):
    account: str = ""
    region: str = ""


# --- AWS ------------------------------------------------------------------------------------


class Subnet(Model, kw_only=True):
    id: str
    cidr: str | None = None
    availability_zone: str | None = None


class LoadBalancer(Resource, kw_only=True):
    arn: str
    name: str
    type: str = "application"
    scheme: str = "internet-facing"
    dns_name: str = ""
    vpc_id: str = ""
    security_groups: list[str] = msgspec.field(default_factory=list)
    subnets: list[Subnet] = msgspec.field(default_factory=list)
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    attributes: dict[str, Scalar] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attributes = _texts(self.attributes)


class ForwardTarget(Model, kw_only=True):
    arn: str
    weight: int = 1


class Action(Model, kw_only=True):
    type: str
    order: int | None = None
    target_groups: list[ForwardTarget] = msgspec.field(default_factory=list)
    redirect: dict[str, Any] | None = None
    fixed_response: dict[str, Any] | None = None


class Listener(Resource, kw_only=True):
    arn: str
    load_balancer_arn: str
    port: int
    protocol: str = "HTTP"
    ssl_policy: str | None = None
    certificates: list[str] = msgspec.field(default_factory=list)
    default_actions: list[Action] = msgspec.field(default_factory=list)


class ListenerRule(Resource, kw_only=True):
    arn: str
    listener_arn: str
    priority: str  # a number, or "default"
    is_default: bool = False
    conditions: list[dict[str, Any]] = msgspec.field(default_factory=list)
    actions: list[Action] = msgspec.field(default_factory=list)


class HealthCheck(Model, kw_only=True):
    enabled: bool = True
    protocol: str = "HTTP"
    port: str = "traffic-port"
    path: str = "/"
    interval_seconds: int = 30
    timeout_seconds: int = 5
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"


class TargetGroup(Resource, kw_only=True):
    arn: str
    name: str
    port: int | None = None
    protocol: str = "HTTP"
    protocol_version: str = "HTTP1"
    target_type: str = "instance"
    vpc_id: str = ""
    load_balancer_arns: list[str] = msgspec.field(default_factory=list)
    health_check: HealthCheck = msgspec.field(default_factory=HealthCheck)
    attributes: dict[str, Scalar] = msgspec.field(default_factory=dict)
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attributes = _texts(self.attributes)

    @property
    def deregistration_delay(self) -> int:
        """Seconds a deregistered target keeps draining (AWS's default 300 when the attribute is absent)."""
        value = attribute(self.attributes, "deregistration_delay.timeout_seconds")
        return int(float(value))


class TargetHealth(Resource, kw_only=True):
    target_group_arn: str
    target_id: str
    port: int | None = None
    availability_zone: str | None = None
    state: str = "healthy"
    reason: str | None = None
    description: str | None = None


class SgRule(Model, kw_only=True):
    """One normalized permission: one protocol/port range and exactly one source or destination."""

    protocol: str = "tcp"  # tcp | udp | icmp | -1 (all)
    from_port: int | None = None
    to_port: int | None = None
    cidr: str | None = None
    ipv6_cidr: str | None = None
    source_group: str | None = None
    prefix_list: str | None = None
    description: str | None = None

    @property
    def peer(self) -> str:
        """The one source (ingress) or destination (egress) the rule names."""
        return self.cidr or self.ipv6_cidr or self.prefix_list or self.source_group or "?"

    def text(self, direction: str, peer: str | None = None) -> str:
        """The rule as people read it, `tcp 3000 from web-*-alb-sg`, `all traffic to 0.0.0.0/0`; ``peer``
        names the peer another way (a group's role key) when given."""
        ports = "all ports" if self.from_port is None else (
            str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}")
        what = "all traffic" if self.protocol == "-1" else f"{self.protocol} {ports}"
        return f"{what} {'from' if direction == 'ingress' else 'to'} {peer or self.peer}"

    def covers_port(self, port: int) -> bool:
        if self.protocol == "-1":
            return True
        if self.protocol not in ("tcp", "6"):
            return False
        if self.from_port is None or self.to_port is None:
            return True
        return self.from_port <= port <= self.to_port


class SecurityGroup(Resource, kw_only=True):
    id: str
    name: str
    vpc_id: str = ""
    description: str = ""
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    ingress: list[SgRule] = msgspec.field(default_factory=list)
    egress: list[SgRule] = msgspec.field(default_factory=list)


class Instance(Resource, kw_only=True):
    id: str
    private_ip: str | None = None
    state: str = "running"
    instance_type: str | None = None
    subnet_id: str | None = None
    vpc_id: str | None = None
    security_groups: list[str] = msgspec.field(default_factory=list)
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class EcsPortMapping(Model, kw_only=True):
    container_port: int
    host_port: int | None = None
    protocol: str = "tcp"


class EcsContainer(Model, kw_only=True):
    name: str
    image: str = ""
    port_mappings: list[EcsPortMapping] = msgspec.field(default_factory=list)
    stop_timeout: int | None = None
    environment: dict[str, str] = msgspec.field(default_factory=dict)


class TaskDefinition(Model, kw_only=True):
    family: str
    revision: int = 1
    network_mode: str = "bridge"
    containers: list[EcsContainer] = msgspec.field(default_factory=list)


class EcsLoadBalancer(Model, kw_only=True):
    target_group_arn: str
    container_name: str
    container_port: int


class EcsService(Resource, kw_only=True):
    arn: str
    cluster: str
    name: str
    launch_type: str | None = None
    desired_count: int = 0
    security_groups: list[str] = msgspec.field(default_factory=list)
    load_balancers: list[EcsLoadBalancer] = msgspec.field(default_factory=list)
    task_definition: TaskDefinition | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)


# --- hosts: nginx and docker -------------------------------------------------------------------


class Listen(Model, kw_only=True):
    address: str | None = None  # None: all addresses
    port: int = 80
    ssl: bool = False
    http2: bool = False
    default_server: bool = False


class IfHeaders(Model, kw_only=True):
    """An `if` block inside a location that sets add_header of its own (and so drops the location's)."""

    line: int = 0
    file: str = ""
    add_headers: list[str] = msgspec.field(default_factory=list)


class NginxLocation(Model, kw_only=True):
    path: str
    modifier: str = ""  # "" | "=" | "^~" | "~" | "~*" | "@"
    file: str = ""
    line: int = 0
    proxy_pass: str | None = None
    grpc_pass: str | None = None
    return_code: int | None = None
    return_text: str | None = None
    root: str | None = None
    alias: str | None = None
    # proxy_set_header in force here (nginx inherits the parent's set only when a level sets none), redacted
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    add_headers: list[str] = msgspec.field(default_factory=list)  # names this location's own add_header sets
    # names in force where the location sits (its enclosing location's, else the server's): what an own
    # add_header drops, since nginx inherits add_header only into a level that sets none
    inherited_add_headers: list[str] | None = None
    proxy_read_timeout: float | None = None  # seconds in force here; None: nginx's default (60)
    lines: dict[str, int] = msgspec.field(default_factory=dict)  # where each directive of the location is
    internal: bool = False  # `internal;`: only internal redirects reach it, never a client
    captures: list[str] = msgspec.field(default_factory=list)  # named captures of its regex: set from the request URI
    # Every other directive of the location as written (name -> its argument lines, values that may carry
    # secrets redacted): what drift compares, so a dropped proxy_next_upstream is seen.
    directives: dict[str, list[str]] = msgspec.field(default_factory=dict)
    if_add_headers: list[IfHeaders] = msgspec.field(default_factory=list)


class NginxServer(Model, kw_only=True):
    file: str = ""
    line: int = 0
    listen: list[Listen] = msgspec.field(default_factory=list)
    server_names: list[str] = msgspec.field(default_factory=list)
    locations: list[NginxLocation] = msgspec.field(default_factory=list)
    return_code: int | None = None  # a server-level `return`, which answers before any location
    return_text: str | None = None
    # Settings in force for the server (its own, else http's); None: nginx's default.
    keepalive_timeout: float | None = None  # default 75
    proxy_read_timeout: float | None = None  # default 60
    server_tokens: str | None = None  # default "on"
    resolver: bool = False
    add_headers: list[str] = msgspec.field(default_factory=list)  # names in force at server level
    lines: dict[str, int] = msgspec.field(default_factory=dict)  # where each setting in force was set
    files: dict[str, str] = msgspec.field(default_factory=dict)  # and in which file, when not the server's
    directives: dict[str, list[str]] = msgspec.field(default_factory=dict)  # the server's own, as for NginxLocation


class NginxIgnore(Model, kw_only=True):
    """`# audit:ignore RULE reason` on the line before a directive."""

    rule: str
    reason: str = ""
    file: str = ""
    line: int = 0  # the directive's line


class UpstreamServer(Model, kw_only=True):
    address: str
    backup: bool = False
    down: bool = False
    resolve: bool = False  # `server NAME resolve;`: re-resolved as its DNS record changes
    file: str = ""
    line: int = 0


class Upstream(Model, kw_only=True):
    name: str
    file: str = ""
    line: int = 0
    servers: list[UpstreamServer] = msgspec.field(default_factory=list)


class Variable(Model, kw_only=True):
    name: str  # without the leading $
    value: str
    file: str = ""
    line: int = 0


class MissingInclude(Model, kw_only=True):
    pattern: str
    file: str = ""
    line: int = 0


class Refusal(Model, kw_only=True):
    """Something nginx would refuse to load (N500): a syntax error, a directive in the wrong context or
    with the wrong arguments, a missing include."""

    message: str
    file: str = ""
    line: int = 0


class NginxConfig(Model, kw_only=True):
    files: list[str] = msgspec.field(default_factory=list)
    refusals: list[Refusal] = msgspec.field(default_factory=list)
    # Parts audit cannot know (an absolute include not in the repository, a template rendered at start):
    # never judged as refused or missing; the paths through this nginx are unknown.
    unreadable: list[Refusal] = msgspec.field(default_factory=list)
    missing_includes: list[MissingInclude] = msgspec.field(default_factory=list)
    # variables (without $) that map/geo/split_clients define, and named regex captures (location,
    # server_name, if, rewrite): nginx defines them too
    maps: list[str] = msgspec.field(default_factory=list)
    ignores: list[NginxIgnore] = msgspec.field(default_factory=list)
    servers: list[NginxServer] = msgspec.field(default_factory=list)
    upstreams: list[Upstream] = msgspec.field(default_factory=list)
    variables: list[Variable] = msgspec.field(default_factory=list)
    # nginx as a compose service: the service it runs as, and the repository files bind-mounted into it
    # one file at a time (a deploy that replaces such a file is never seen by the running container).
    service: str | None = None
    file_mounts: list[str] = msgspec.field(default_factory=list)
    alone: bool = False  # the service runs an nginx image: nothing but nginx listens in its container


class PublishedPort(Model, kw_only=True):
    host_ip: str | None = None  # None or 0.0.0.0/:: = every interface
    host_port: int | None = None  # None: not published (container side only)
    container_port: int
    protocol: str = "tcp"
    file: str = ""  # the compose file and line of its `ports:` entry; "" when docker inspect said it
    line: int = 0


class Container(Model, kw_only=True):
    name: str
    service: str | None = None  # compose service name
    image: str = ""
    built: bool = False  # built from a local `build:` (its image name names the result, not a pull)
    running: bool | None = None  # None: unknown (e.g. read from a compose file)
    ports: list[PublishedPort] = msgspec.field(default_factory=list)
    expose: list[int] = msgspec.field(default_factory=list)
    environment: dict[str, str] = msgspec.field(default_factory=dict)
    privileged: bool = False
    volumes: list[str] = msgspec.field(default_factory=list)  # host paths (or volume names) mounted into it
    command: str | None = None  # as the container runs it (compose's, else the image's), redacted
    entrypoint: str | None = None
    healthcheck: str | None = None  # the healthcheck's test command, redacted
    # Compose networks it joins, each with its aliases; None: network_mode says otherwise.
    networks: dict[str, list[str]] | None = None
    network_mode: str | None = None  # host | none | service:NAME | container:NAME; None: the networks
    extra_hosts: list[str] = msgspec.field(default_factory=list)  # host names `extra_hosts` adds
    links: dict[str, str] = msgspec.field(default_factory=dict)  # name -> service, from `links` (SERVICE[:ALIAS])
    # Services compose restarts this one with when they are recreated (`depends_on: {X: {restart: true}}`).
    restarts_with: list[str] = msgspec.field(default_factory=list)
    file: str = ""
    line: int = 0

    def at(self, port: PublishedPort | None = None) -> Location:
        """Where a finding about this container points: the `ports:` entry of ``port`` when a compose file
        wrote it, else the service."""
        if port is not None and port.file:
            return Location(port.file, port.line or None)
        return Location(self.file, self.line or None)


class App(Model, kw_only=True):
    """What audit.yaml declares the app serves (the snapshot's own copy: it reads what it knows)."""

    health_path: str | None = None
    keepalive_timeout: float | None = None
    port: int | None = None


class Switch(Model, kw_only=True):
    """How the deploy switches slots, as audit.yaml declares it."""

    kind: str
    target_groups: dict[str, str] | None = None


class Network(Model, kw_only=True):
    """A compose network's settings: who can reach what through it is configuration."""

    internal: bool = False  # no route out of it
    external: bool = False  # created outside the project
    driver: str | None = None


class DockerFacts(Model, kw_only=True):
    containers: list[Container] = msgspec.field(default_factory=list)
    networks: dict[str, Network] = msgspec.field(default_factory=dict)  # the compose project's, by name
    slots: dict[str, str] = msgspec.field(default_factory=dict)  # slot -> compose service
    listen_ports: dict[str, int] = msgspec.field(default_factory=dict)  # service -> its port, declared in audit.yaml
    live: str | None = None  # declared in audit.yaml
    switch: Switch | None = None  # declared in audit.yaml


class Host(Resource, kw_only=True):
    name: str
    instance_id: str | None = None  # set when facts were collected per instance
    match: dict[str, str] = msgspec.field(default_factory=dict)
    nginx: NginxConfig | None = None
    # The compose project's other nginx services: not on the load balancer's way in (nginx is), but
    # what each one loads is checked by the rules about nginx alone (N5xx) too.
    nginx_beside: list[NginxConfig] = msgspec.field(default_factory=list)
    docker: DockerFacts | None = None
    # Layers audit.yaml describes but collection could not read (layer -> why): unknown, not absent.
    uncollected: dict[str, str] = msgspec.field(default_factory=dict)
    # Layers audit.yaml describes that this collection did not ask for (--offline never runs commands).
    not_requested: dict[str, str] = msgspec.field(default_factory=dict)
    app: App | None = None  # declared in audit.yaml: what the app serves


# --- the snapshot ------------------------------------------------------------------------------


class SourceError(Model, kw_only=True):
    source: str
    operation: str = ""
    code: str = ""
    message: str = ""


class SourceStatus(Model, kw_only=True):
    # not_requested: nobody asked for this source (--offline, no aws in audit.yaml): its rules skip.
    status: Literal["ok", "partial", "error", "not_requested"] = "ok"
    reason: str = ""  # why it was not requested
    errors: list[SourceError] = msgspec.field(default_factory=list)
    api_calls: dict[str, int] = msgspec.field(default_factory=dict)


class Resources(Model, kw_only=True):
    load_balancers: list[LoadBalancer] = msgspec.field(default_factory=list)
    listeners: list[Listener] = msgspec.field(default_factory=list)
    listener_rules: list[ListenerRule] = msgspec.field(default_factory=list)
    target_groups: list[TargetGroup] = msgspec.field(default_factory=list)
    target_health: list[TargetHealth] = msgspec.field(default_factory=list)
    security_groups: list[SecurityGroup] = msgspec.field(default_factory=list)
    instances: list[Instance] = msgspec.field(default_factory=list)
    ecs_services: list[EcsService] = msgspec.field(default_factory=list)
    hosts: list[Host] = msgspec.field(default_factory=list)


class Snapshot(Model, kw_only=True):
    schema_version: int = SCHEMA_VERSION
    tool_version: str = __version__
    environment: str
    collected_at: str = ""
    sources: dict[str, SourceStatus] = msgspec.field(default_factory=dict)
    # ACCOUNT/REGION slices this snapshot holds, and all the environment has: merge checks both.
    slices: list[str] = msgspec.field(default_factory=list)
    expected_slices: list[str] = msgspec.field(default_factory=list)
    resources: Resources = msgspec.field(default_factory=Resources)


COLLECTIONS = Resources.__struct_fields__
# Each collection's resource type: the singular that findings and drift items name.
RESOURCE_TYPES = {
    "load_balancers": "load_balancer", "listeners": "listener", "listener_rules": "listener_rule",
    "target_groups": "target_group", "target_health": "target_health", "security_groups": "security_group",
    "instances": "instance", "ecs_services": "ecs_service", "hosts": "host",
}

# AWS's names for a resource and where it lives, never its configuration: drift and a plan's
# description of a change leave them out (each adds the fields that only name things in its own view).
AWS_NAMES = frozenset({"arn", "id", "dns_name", "account", "region"})
# How each collection is sorted, and what identifies a resource when shards merge.
IDENTITY = {
    "load_balancers": ("arn",),
    "listeners": ("arn",),
    "listener_rules": ("arn",),
    "target_groups": ("arn",),
    "target_health": ("target_group_arn", "target_id", "port"),
    "security_groups": ("id",),
    "instances": ("id",),
    "ecs_services": ("arn",),
    "hosts": ("name", "instance_id"),
}


def _identity(collection: str, item: dict[str, Any]) -> tuple[str, ...]:
    return (item.get("account", ""), item.get("region", "")) + tuple(
        str(item.get(field) or "") for field in IDENTITY[collection]
    )


_SET_LISTS = {"security_groups", "load_balancer_arns", "ingress", "egress", "certificates", "subnets", "expose"}


def to_data(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as plain JSON data, deterministic: sorted collections and set-like lists.

    Ordered facts (nginx servers and locations, whose order nginx uses) keep file order.
    """
    data = msgspec.to_builtins(snapshot)

    def sort_sets(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: sorted(v, key=lambda x: json.dumps(x, sort_keys=True))
                if k in _SET_LISTS and isinstance(v, list)
                else sort_sets(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [sort_sets(v) for v in node]
        return node

    resources = data["resources"]
    for name in COLLECTIONS:
        resources[name] = sorted(
            (sort_sets(item) for item in resources[name]), key=lambda item: _identity(name, item)
        )
    return data


def dumps(snapshot: Snapshot) -> str:
    # The text json.dumps(indent=2, sort_keys=True, ensure_ascii=False) wrote, a tenth of the time
    # (its indenting encoder is pure Python): only an exponent is written 1e20, not 1e+20.
    encoded = msgspec.json.encode(to_data(snapshot), order="sorted")
    return msgspec.json.format(encoded, indent=2).decode() + "\n"


def write_atomic(path: str | Path, text: str, private: bool = False) -> None:
    """Write ``text`` to ``path`` without ever losing what the user owns there.

    A new or regular file is written through a temp file in the same directory and renamed, so a reader
    never sees half a file and a failure leaves the previous file as it was; a symlink to one keeps
    being the link (its target is what is replaced). A device, FIFO or socket, or a link to one
    (`-o /dev/null`, `/dev/stdout`), is written in place: renaming over it would replace the device
    itself with a file, which as root breaks the machine. A report gets the mode the umask gives any
    new file; a snapshot (``private``) stays readable by its owner only, as the temp file is made."""
    path = Path(path)
    try:
        mode = path.stat().st_mode  # follows links: what a write would reach
    except FileNotFoundError:
        mode = None  # new, or a link to nothing yet
    except OSError as exc:
        raise AuditError(f"{path}: cannot write: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise AuditError(f"{path}: cannot write: it is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        _write_in_place(path, text)
        return
    _replace(Path(os.path.realpath(path)) if path.is_symlink() else path, text, private, shown=path)


def _write_in_place(path: Path, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise AuditError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _replace(path: Path, text: str, private: bool, shown: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise AuditError(f"{shown}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not private:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise AuditError(f"{shown}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def save(snapshot: Snapshot, path: str | Path) -> None:
    write_atomic(path, dumps(snapshot), private=True)


def _version_error(data: Any, source: str) -> str | None:
    """Why ``data`` is no snapshot this audit can read, by its schema_version, or None."""
    if not isinstance(data, dict):
        return f"{source}: not a snapshot (expected a JSON object)"
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        return f"{source}: not a snapshot (schema_version missing or not an integer)"
    if version > SCHEMA_VERSION:
        return (f"{source}: snapshot schema_version {version} is newer than this audit understands "
                f"({SCHEMA_VERSION}); upgrade auditor")
    return None


def _invalid(exc: msgspec.ValidationError, data: Any, source: str) -> SnapshotError:
    keys, words = problem(exc, data, Snapshot)
    return SnapshotError(f"{source}: {key_path(keys) + ': ' if keys else ''}{words}")


def from_data(data: Any, source: str = "snapshot") -> Snapshot:
    error = _version_error(data, source)
    if error:
        raise SnapshotError(error)
    try:
        return typed(data, Snapshot)
    except msgspec.ValidationError as exc:
        raise _invalid(exc, data, source) from None


def validated(snapshot: Snapshot) -> Snapshot:
    """A snapshot built in code, checked and typed as a file is: a model's constructor checks nothing."""
    return from_data(msgspec.to_builtins(snapshot), f"snapshot of {snapshot.environment}")


class _Header(msgspec.Struct):
    schema_version: Any = None


_DECODER = msgspec.json.Decoder(Snapshot, strict=False)


def load(path: str | Path) -> Snapshot:
    """A snapshot file, parsed and validated in one pass; a file that is not one says why."""
    path = Path(path)
    raw = read_bytes(path, "snapshot file", SnapshotError)
    if not raw.strip():
        raise SnapshotError(f"{path}: snapshot file is empty")
    try:
        header = msgspec.json.decode(raw, type=_Header)  # skims the file: the version decides the rest
    except (msgspec.DecodeError, msgspec.ValidationError):
        try:
            data = json.loads(raw)  # for the line number people look for
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise SnapshotError(f"{path}: not valid JSON ({where})") from None
        raise SnapshotError(_version_error(data, str(path)) or f"{path}: not valid JSON") from None
    error = _version_error({"schema_version": header.schema_version}, str(path))
    if error:
        raise SnapshotError(error)
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError:
        return from_data(msgspec.json.decode(raw), str(path))


def tags_match(tags: dict[str, str], wanted: dict[str, str]) -> bool:
    """Whether ``tags`` hold every tag of ``wanted`` with its value: how audit.yaml's `scope` selects
    load balancers and target groups, and a host's `match` its instances."""
    return all(tags.get(k) == v for k, v in wanted.items())


def has_aws(snapshot: Snapshot) -> bool:
    """Whether AWS was read into this snapshot (``aws`` before accounts, ``aws:ACCOUNT/REGION`` after)."""
    return any((name == "aws" or name.startswith("aws:")) and status.status != "not_requested"
               for name, status in snapshot.sources.items())


def _check_slices(shards: list[Snapshot]) -> None:
    """Each ACCOUNT/REGION slice once, and every slice the environment has."""
    seen: dict[str, int] = {}
    for index, shard in enumerate(shards):
        for name in shard.slices:
            if name in seen:
                raise SnapshotError(f"slice {name} of {shard.environment} is in two of the snapshots "
                                    f"(number {seen[name] + 1} and {index + 1})")
            seen[name] = index
    missing = sorted({s for shard in shards for s in shard.expected_slices} - set(seen))
    if missing and seen:
        raise SnapshotError(f"{shards[0].environment} is missing the slices {', '.join(missing)}: collect them "
                            "with audit snapshot ENV --shard ACCOUNT/REGION")


def merge(shards: list[Snapshot]) -> Snapshot:
    """Join shards of one environment (e.g. one per account/region) into one snapshot."""
    if not shards:
        raise SnapshotError("nothing to merge")
    environments = sorted({s.environment for s in shards})
    if len(environments) > 1:
        raise SnapshotError(f"cannot merge snapshots of different environments: {', '.join(environments)}")
    versions = sorted({s.schema_version for s in shards})
    if len(versions) > 1:
        raise SnapshotError(f"cannot merge snapshots of different schema versions: {versions}")
    _check_slices(shards)
    if len(shards) == 1:
        return shards[0]
    merged: dict[str, dict[tuple[str, ...], Any]] = {name: {} for name in COLLECTIONS}
    sources: dict[str, SourceStatus] = {}
    rank = {"not_requested": 0, "ok": 1, "partial": 2, "error": 3}
    for shard in shards:
        for name in COLLECTIONS:
            for item in getattr(shard.resources, name):
                merged[name].setdefault(_identity(name, msgspec.to_builtins(item)), item)
        for source, status in shard.sources.items():
            into = sources.setdefault(source, SourceStatus())
            into.status = max(into.status, status.status, key=rank.__getitem__)
            into.errors.extend(status.errors)
            for op, count in status.api_calls.items():
                into.api_calls[op] = into.api_calls.get(op, 0) + count
    return Snapshot(
        environment=environments[0],
        slices=sorted({s for shard in shards for s in shard.slices}),
        expected_slices=sorted({s for shard in shards for s in shard.expected_slices}),
        collected_at=max(s.collected_at for s in shards),
        tool_version=shards[0].tool_version,
        sources=sources,
        resources=Resources(**{name: list(items.values()) for name, items in merged.items()}),
    )


# --- redaction ------------------------------------------------------------------------------------
# The one policy for secrets, used by every collector: values of names outside SAFE_NAMES are replaced
# (Redactor.named, .mapping, .text); a rendered config keeps what it needs and loses the values of
# secret-named variables (Redactor.rendered).

# The only names whose values may reach a snapshot or report as they are: the rules need them.
# Everything else that carries free text (env values, header values, stderr) is replaced.
SAFE_NAMES = frozenset(
    {
        "PORT", "HOST", "HOSTNAME", "NODE_ENV", "APP_ENV", "ENV", "ENVIRONMENT", "RAILS_ENV",
        "FLASK_ENV", "DJANGO_SETTINGS_MODULE", "KEEP_ALIVE_TIMEOUT", "KEEPALIVE_TIMEOUT",
        "SERVER_PORT", "LISTEN_PORT", "HTTP_PORT", "BIND", "UPSTREAM", "SLOT", "COLOR", "COLOUR",
        "X-FORWARDED-FOR", "X-FORWARDED-PROTO", "X-FORWARDED-HOST", "X-FORWARDED-PORT",
        "X-REAL-IP", "CONNECTION", "UPGRADE",
    }
)

REDACTED = "<redacted>"
# A rendered file (envsubst) needs the values of the variables it names (a backend's address), so it
# cannot be scrubbed by SAFE_NAMES; the values of variables named like secrets are redacted from it.
SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|SALT|DSN|DATABASE_URL|COOKIE", re.IGNORECASE)


class Redactor:
    """Replaces free-text values by an HMAC (equal values stay equal across snapshots) or a marker."""

    def __init__(self, key: str | None) -> None:
        self._key = key.encode() if key else None

    @classmethod
    def from_environment(cls) -> Redactor:
        return cls(os.environ.get("AUDIT_REDACTION_KEY") or None)

    def value(self, value: str) -> str:
        if self._key is None:
            return REDACTED
        return "hmac:" + hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:12]

    def named(self, name: str, value: str) -> str:
        return value if name.upper() in SAFE_NAMES else self.value(value)

    def mapping(self, values: dict[str, str]) -> dict[str, str]:
        return {name: self.named(name, value) for name, value in values.items()}

    _ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*'|\S+)")
    _AWS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")

    def rendered(self, text: str, env: dict[str, str]) -> str:
        """``text`` (JSON of what a rendering wrote) with the value of every secret-named variable of
        ``env`` redacted wherever it landed, longest first."""
        for name, value in sorted(env.items(), key=lambda item: len(item[1]), reverse=True):
            if SECRET_NAME.search(name) and len(value) >= 4:
                text = text.replace(json.dumps(value)[1:-1], self.value(value))
        return text

    def text(self, text: str, known: list[str] = ()) -> str:
        """Scrub free text (errors, stderr): NAME=value pairs outside the allowlist, AWS key ids,
        and any value known to be secret."""
        for secret in sorted(filter(None, known), key=len, reverse=True):
            text = text.replace(secret, self.value(secret))
        text = self._AWS_KEY.sub(lambda m: self.value(m.group(0)), text)
        return self._ASSIGNMENT.sub(
            lambda m: m.group(0)
            if m.group("name").upper() in SAFE_NAMES or m.group("value").startswith(("hmac:", REDACTED))
            else f"{m.group('name')}{m.group('sep')}{self.value(m.group('value'))}",
            text,
        )
