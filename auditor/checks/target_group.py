"""Target groups (T3xx): health-check timing and matching, use, protocol against what the host serves."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.engine.api import Context, Problem
from auditor.model.refs import Location
from auditor.model.snapshot import Listen, TargetGroup
from auditor.topology import SlotPath



def _codes(matcher: str) -> list[tuple[int, int]]:
    """`200`, `200,302`, `200-399` as ranges; gRPC codes are not HTTP statuses and are left alone."""
    ranges = []
    for part in matcher.replace(" ", "").split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and (not high or high.isdigit()):
            ranges.append((int(low), int(high or low)))
    return ranges


def health_check_matcher_lenient(ctx: Context, tg: TargetGroup) -> Iterator[Problem]:
    """T301: the matcher counts a redirect or a client/server error as healthy."""
    lenient = [f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in _codes(tg.health_check.matcher) if hi >= 300]
    if lenient and tg.protocol_version != "GRPC":
        yield Problem(message=f"Target group {ctx.ref(tg).key} counts HTTP {', '.join(lenient)} from "
                      f"{tg.health_check.path} as healthy: a login redirect or a 404 from nginx keeps a broken target "
                      "in service.", evidence={"matcher": tg.health_check.matcher, "path": tg.health_check.path},
                      identity=("matcher",))


def _timing(ctx: Context, tg: TargetGroup, limit: int, threshold: str, what: str) -> Iterator[Problem]:
    hc = tg.health_check
    count = getattr(hc, threshold)
    total = hc.interval_seconds * count
    if hc.enabled and total > limit:
        yield Problem(message=f"Target group {ctx.ref(tg).key} needs {count} checks {hc.interval_seconds} s apart "
                      f"({total} s) {what}.", evidence={"interval_seconds": hc.interval_seconds, threshold: count,
                                                        "seconds": total, "limit": limit}, identity=("limit",))


def slow_to_healthy(ctx: Context, tg: TargetGroup) -> Iterator[Problem]:
    """T302: interval × healthy threshold > 60 s: every deploy and scale-out waits that long."""
    yield from _timing(ctx, tg, 60, "healthy_threshold", "before a new target takes traffic")


def health_check_slow_detection(ctx: Context, tg: TargetGroup) -> Iterator[Problem]:
    """T303: interval × unhealthy threshold > 90 s: a dead target keeps receiving traffic that long."""
    yield from _timing(ctx, tg, 90, "unhealthy_threshold", "before a dead target stops receiving traffic")


def target_group_unused(ctx: Context) -> Iterator[Problem]:
    """T304: nothing forwards to the target group (and no declared blue/green switch will)."""
    used = {tg.arn for tg in ctx.topology.forwarded} | {tg.arn for u in ctx.topology.units for tg in u.target_groups}
    used |= set(ctx.topology.ecs_by_tg)
    for tg in ctx.snapshot.resources.target_groups:
        if tg.arn not in used:
            ref = ctx.ref(tg)
            yield Problem(ref, f"No listener or rule forwards to target group {ref.key}.",
                          evidence={"port": tg.port, "load_balancers": len(tg.load_balancer_arns)})


def deregistration_delay_blocks_deploy(ctx: Context, tg: TargetGroup) -> Iterator[Problem]:
    """T306: the deregistration delay is longer than the deploy's drain budget (rules.options.T306.drain_budget)."""
    budget = ctx.options["drain_budget"]  # declared in rules/T306.yaml
    if tg.deregistration_delay > budget:
        yield Problem(message=f"Target group {ctx.ref(tg).key} drains deregistered targets for "
                      f"{tg.deregistration_delay} s, longer than the deploy's budget of {budget} s: deploys stall or "
                      "kill connections mid-drain.",
                      evidence={"deregistration_delay": tg.deregistration_delay, "drain_budget": budget},
                      identity=("drain_budget",))


def _nginx_listens(sp: SlotPath) -> Iterator[tuple[TargetGroup, int, list[Listen], list[object]]]:
    """For each target reached through nginx: its TG, the port, nginx's listens there and its servers."""
    for target, reach in sp.traffic:
        if reach.via != "nginx":
            continue
        port = sp.host.nginx_port_for(target.port) or target.port
        pairs = sp.host.servers_by_port.get(port, [])
        yield target.target_group, port, [listen for _, listen in pairs], [server for server, _ in pairs]


def protocol_mismatch(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """T305: the TG speaks HTTPS to a plain-HTTP nginx listen, or HTTP to a TLS one."""
    for tg, port, listens, _ in _nginx_listens(sp):
        tls = any(listen.ssl for listen in listens)
        if (tg.protocol == "HTTPS") != tls:
            ref = ctx.ref(tg)
            yield Problem(ref, f"Target group {ref.key} speaks {tg.protocol} to port {port} on host {sp.host.name}, "
                          f"where nginx serves {'TLS' if tls else 'plain HTTP'}: every health check fails.",
                          evidence={"protocol": tg.protocol, "port": port, "host": sp.host.name, "nginx_tls": tls},
                          identity=("port", "host"))


def protocol_version_mismatch(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """T307: an HTTP2/GRPC target group in front of nginx without http2, or gRPC through proxy_pass."""
    for tg, port, listens, servers in _nginx_listens(sp):
        if tg.protocol_version not in ("HTTP2", "GRPC"):
            continue
        problems = []
        if not any(listen.http2 for listen in listens):
            problems.append(f"nginx on {port} has no http2 listen")
        proxied = [loc for server in servers for loc in server.locations if loc.proxy_pass]
        if tg.protocol_version == "GRPC" and proxied:
            at = Location(proxied[0].file, proxied[0].line)
            problems.append(f"it forwards with proxy_pass, not grpc_pass ({at})")
        if problems:
            ref = ctx.ref(tg)
            yield Problem(ref, f"Target group {ref.key} speaks {tg.protocol_version} to host {sp.host.name}, but "
                          f"{' and '.join(problems)}.",
                          evidence={"protocol_version": tg.protocol_version, "port": port, "host": sp.host.name,
                                    "problems": problems}, identity=("port", "host"))
