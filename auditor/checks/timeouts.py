"""Timeouts along the path (P114, P117, P118): the ALB, nginx and the app must agree on who closes
a connection first, or clients get random 502s and 504s."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.engine.api import Context, Problem
from auditor.model.snapshot import AWS_DEFAULTS, EcsService, TargetGroup, attribute
from auditor.topology import SlotPath

ALB_IDLE_DEFAULT = AWS_DEFAULTS["idle_timeout.timeout_seconds"]
NGINX_KEEPALIVE_DEFAULT = 75  # nginx keepalive_timeout
NGINX_READ_DEFAULT = 60  # nginx proxy_read_timeout
ECS_STOP_DEFAULT = 30  # ECS stopTimeout


def _idle(ctx: Context, tg: TargetGroup) -> tuple[float, list[str]]:
    """The longest idle timeout of the load balancers in front of a TG, and their keys."""
    arns = sorted(ctx.topology.lbs_of_tg.get(tg.arn, ()))
    lbs = [ctx.topology.load_balancers[a] for a in arns if a in ctx.topology.load_balancers]
    values = [float(attribute(lb.attributes, "idle_timeout.timeout_seconds")) for lb in lbs]
    return max(values, default=ALB_IDLE_DEFAULT), [ctx.keys.load_balancer[lb.arn] for lb in lbs]


def keepalive_shorter_than_idle(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """P114: the first hop behind the ALB closes idle connections no later than the ALB does."""
    for target, reach in sp.traffic:
        if not reach.served:
            continue
        idle, lbs = _idle(ctx, target.target_group)
        if reach.via == "nginx" and reach.server is not None:
            keepalive = reach.server.keepalive_timeout
            keepalive = NGINX_KEEPALIVE_DEFAULT if keepalive is None else keepalive
            hop, file = "nginx keepalive_timeout", reach.server.files.get("keepalive_timeout", reach.server.file)
            line = reach.server.lines.get("keepalive_timeout", reach.server.line)
        elif reach.via == "container" and sp.host.host.app and sp.host.host.app.keepalive_timeout is not None:
            keepalive, hop, file, line = sp.host.host.app.keepalive_timeout, "the app's keep-alive", "", 0
        else:
            continue
        if keepalive <= idle:
            yield Problem(ctx.ref(target.target_group),
                          f"On host {sp.host.name}, {hop} is {keepalive:g} s, not longer than the load balancer's "
                          f"idle timeout of {idle:g} s: the ALB reuses connections the target already closed, and "
                          "clients get random 502s.",
                          evidence={"host": sp.host.name, "hop": hop, "keepalive": keepalive, "idle_timeout": idle,
                                    "load_balancers": lbs},
                          identity=("host", "hop"), file=file or None, line=line or None)


def idle_timeout_raise_defeated(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """P118: the ALB idle timeout was raised above nginx's proxy_read_timeout: slow requests still get
    504 from nginx at its limit."""
    for target, reach in sp.traffic:
        if reach.via != "nginx" or reach.server is None:
            continue
        idle, lbs = _idle(ctx, target.target_group)
        for location in reach.server.locations:
            read = NGINX_READ_DEFAULT if location.proxy_read_timeout is None else location.proxy_read_timeout
            if location.proxy_pass and idle > read:
                yield Problem(ctx.ref(target.target_group),
                              f"The load balancer waits {idle:g} s for a response, but nginx on host {sp.host.name} "
                              f"gives up after {read:g} s (proxy_read_timeout, location {location.path}): slow "
                              "requests get 504 from nginx and the raised idle timeout does nothing.",
                              evidence={"host": sp.host.name, "idle_timeout": idle, "proxy_read_timeout": read,
                                        "load_balancers": lbs},
                              identity=("host", "file", "line"), file=location.file, line=location.line)


def stop_before_drain(ctx: Context, service: EcsService) -> Iterator[Problem]:
    """P117: an ECS container stops sooner than the TG drains it: in-flight requests are cut on every deploy."""
    td = service.task_definition
    for lb in service.load_balancers if td is not None else []:
        tg = ctx.topology.target_groups.get(lb.target_group_arn)
        container = next((c for c in td.containers if c.name == lb.container_name), None)
        if tg is None or container is None:
            continue
        delay = float(tg.deregistration_delay)
        stop = float(container.stop_timeout if container.stop_timeout is not None else ECS_STOP_DEFAULT)
        if stop < delay:
            name = ctx.ref(tg).key
            yield Problem(message=f"Container {container.name} of {ctx.ref(service).key} is killed {stop:g} s after "
                          f"SIGTERM, but {name} keeps sending it requests for up to {delay:g} s while it drains.",
                          evidence={"container": container.name, "stop_timeout": stop,
                                    "deregistration_delay": delay, "target_group": name},
                          identity=("container",))
