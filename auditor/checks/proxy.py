"""What nginx does to requests on the path (P115, P116): the scheme it reports and the health
check it answers."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.engine.api import Context, Problem
from auditor.model.refs import Location
from auditor.topology import HostView, SlotPath


def forwarded_proto_overwritten(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """P115: TLS ends at the ALB, the TG is HTTP, and nginx reports `http` (X-Forwarded-Proto $scheme)
    or redirects every request to https (a loop, and the health check sees 301)."""
    for target, reach in sp.traffic:
        tg = target.target_group
        if tg.arn not in ctx.topology.tls_at_alb or tg.protocol != "HTTP" or reach.via != "nginx" \
                or reach.server is None:
            continue
        server = reach.server
        causes = []
        if server.return_code in (301, 302, 307, 308) and (server.return_text or "").startswith("https://"):
            causes.append((f"answers every request with return {server.return_code} {server.return_text}",
                           server.file, server.lines.get("return", server.line)))
        for location in server.locations:
            proto = next((v for k, v in location.headers.items() if k.lower() == "x-forwarded-proto"), None)
            if location.proxy_pass and proto == "$scheme":
                causes.append((f"sets X-Forwarded-Proto $scheme in location {location.path}", location.file,
                               location.line))
            if location.path == "/" and location.modifier == "" and location.return_code in (301, 302, 307, 308) \
                    and (location.return_text or "").startswith("https://"):
                causes.append((f"redirects location / to {location.return_text}", location.file, location.line))
        for cause, file, line in causes:
            ref = ctx.ref(tg)
            yield Problem(ref, f"TLS ends at the load balancer and {ref.key} speaks HTTP, but nginx on host "
                          f"{sp.host.name} {cause} ({Location(file, line)}): the app sees http and redirects in a "
                          "loop. Pass the ALB's value: proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto.",
                          evidence={"host": sp.host.name, "cause": cause},
                          identity=("host", "file", "line"), file=file, line=line)


def health_check_answered_by_proxy(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """P116: the health-check path is answered by nginx itself (return or a static file) while nginx
    proxies the rest to the app: a dead app stays healthy."""
    for target, reach in sp.traffic:
        hc = target.target_group.health_check
        if reach.via != "nginx" or not hc.enabled or hc.protocol.upper() not in ("HTTP", "HTTPS"):
            continue
        server = sp.host.default_server(sp.host.nginx_port_for(target.port) or target.port)
        if server is None or not any(loc.proxy_pass for loc in server.locations):
            continue
        location = sp.host.route(server, hc.path).location
        if location is None or location.proxy_pass or location.grpc_pass:
            continue
        how = f"return {location.return_code}" if location.return_code else "a static file"
        ref = ctx.ref(target.target_group)
        yield Problem(ref, f"Target group {ref.key} health-checks {hc.path}, which nginx on host {sp.host.name} "
                      f"answers with {how} (location {location.path}, {Location(location.file, location.line)}) "
                      "instead of asking the app: a dead app stays healthy.",
                      evidence={"host": sp.host.name, "health_check_path": hc.path},
                      identity=("host", "file", "line"), file=location.file, line=location.line)


def switch_file_bind_mounted(ctx: Context, view: HostView) -> Iterator[Problem]:
    """P119: the include holding the switch variable is bind-mounted alone into a containerized nginx:
    a deploy that replaces the file is never seen by the running container."""
    nginx = view.host.nginx
    if not view.containerized or not view.slots:
        return
    mounted = set(nginx.file_mounts)
    targets = [view.resolve(location.proxy_pass) for server in nginx.servers for location in server.locations
               if location.proxy_pass]
    switches = {name for target in targets if view.follows_slot(target) for name in target.variables}
    for variable in nginx.variables:
        if variable.name in switches and variable.file in mounted:
            yield Problem(message=f"${variable.name}, which switches slots, is set in {variable.file}, bind-mounted "
                          f"alone into nginx's container (service {view.nginx_service}): a deploy that rewrites it "
                          "as a new file (sed -i, rename) is never seen there, and traffic stays on the old slot.",
                          evidence={"variable": variable.name, "file": variable.file, "service": view.nginx_service},
                          identity=("variable", "file"), file=variable.file, line=variable.line)
