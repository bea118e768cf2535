"""Nginx (N5xx): configuration that breaks or exposes the hop behind the load balancer.

Our own checks over the crossplane model in the snapshot, so they run offline on
snapshots like every other rule (gixy-ng reads config files at check time; see
README "Nginx security").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from auditor.engine.api import Context, Problem
from auditor.model.refs import Location
from auditor.model.snapshot import NginxLocation, NginxServer
from auditor.topology import NGINX_VARIABLE, HostView, SlotPath, is_address, is_loopback, parse_url
# Variables nginx defines itself (ngx_http_core_module and friends), plus request-data prefixes.
BUILTIN = {
    "host", "scheme", "request_uri", "uri", "document_uri", "args", "query_string", "is_args", "remote_addr",
    "remote_port", "server_name", "server_port", "server_addr", "server_protocol", "request_method", "request",
    "proxy_add_x_forwarded_for", "proxy_host", "proxy_port", "binary_remote_addr", "hostname", "https",
    "content_type", "content_length", "request_id", "realpath_root", "document_root", "status", "time_iso8601",
    "msec", "connection", "nginx_version", "pid", "request_body", "limit_rate", "remote_user",
}
REQUEST_PREFIXES = ("http_", "arg_", "cookie_", "sent_http_", "upstream_", "ssl_", "jwt_")
# Request data an attacker controls, when it picks the host nginx connects to.
ATTACKER_CONTROLLED = re.compile(r"\$\{?(host|http_[a-z0-9_]+|arg_[a-z0-9_]+|cookie_[a-z0-9_]+)\b")
# The host of a proxy URL: up to its port or path, variables included ($host:3000, backend$request_uri).
# The host of a proxy_pass URL; its scheme may itself be a variable or a capture (`$p://$h/…`).
_URL_HOST = re.compile(r"^(?:(?:[a-z]+|\$\{?\w+\}?)://)?(\[[^\]]*\]|(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\$\d|[^:/$])*)")
FORWARDED = ("X-Forwarded-For", "X-Forwarded-Proto")


def _locations(view: HostView) -> Iterator[tuple[NginxServer, NginxLocation]]:
    for server in view.host.nginx.servers:
        for location in server.locations:
            yield server, location


def _line(location: NginxLocation, directive: str) -> int:
    return location.lines.get(directive, location.line)


def nginx_refuses_config(ctx: Context, view: HostView) -> Iterator[Problem]:
    """N500: nginx would refuse to load this config (`nginx -t` fails): every path through it is unknown."""
    for refusal in view.host.nginx.refusals:
        yield Problem(message=f"{view.nginx_named} refuses its config: {refusal.message} at "
                      f"{Location(refusal.file, refusal.line)}; it does not start, and a reload keeps the old one.",
                      evidence={"host": view.name, "error": refusal.message}, identity=("error", "file", "line"),
                      file=refusal.file, line=refusal.line)
    for address, file, line in view.unresolvable:
        message = f'host not found in upstream "{address}"'
        yield Problem(message=f"{view.nginx_named} refuses its config: {message} at {Location(file, line)}: "
                      f"no service, alias or extra_hosts entry on a network of service {view.nginx_service} "
                      "has that name, so nginx does not start.",
                      evidence={"host": view.name, "error": message}, identity=("error", "file", "line"),
                      file=file, line=line)


def proxy_variable_unset(ctx: Context, view: HostView) -> Iterator[Problem]:
    """N501: proxy_pass uses a variable that no set or map defines, so nginx sends the request nowhere."""
    defined = {v.name for v in view.host.nginx.variables} | set(view.host.nginx.maps)
    undefined: dict[str, list[Location]] = {}
    for _, location in _locations(view):
        for name in NGINX_VARIABLE.findall(location.proxy_pass or ""):
            if not (name in defined or name in BUILTIN or name.startswith(REQUEST_PREFIXES)):
                places = undefined.setdefault(name, [])
                place = Location(location.file, _line(location, "proxy_pass"))
                if place not in places:
                    places.append(place)
    for name, places in undefined.items():
        listed = ", ".join(map(str, places))
        yield Problem(message=f"proxy_pass at {listed} uses ${name}, which no set, map or capture defines: "
                      f'nginx refuses to load the config (unknown "{name}" variable), so it does not start and a '
                      "reload keeps the old config.",
                      evidence={"variable": name, "locations": [p.as_evidence() for p in places]},
                      identity=("variable",), file=places[0].file, line=places[0].line)


def include_missing(ctx: Context, view: HostView) -> Iterator[Problem]:
    """N502: an include glob matches no file: nginx starts, and the part is silently gone."""
    for missing in view.host.nginx.missing_includes:
        yield Problem(message=f"include {missing.pattern} at {Location(missing.file, missing.line)} matches no file: "
                      "what it should pull in is silently missing.",
                      evidence={"pattern": missing.pattern}, identity=("pattern",), file=missing.file,
                      line=missing.line)


def forwarded_headers_missing(ctx: Context, sp: SlotPath) -> Iterator[Problem]:
    """N503: a proxying location behind the ALB does not pass X-Forwarded-For/Proto: the app sees nginx's
    address and `http`, so it logs the wrong client and builds http:// redirects."""
    ports = dict.fromkeys(sp.host.nginx_port_for(target.port) or target.port
                          for target, reach in sp.traffic if reach.via == "nginx")
    for port in ports:
        for server in sp.host.servers_on(port):
            for location in server.locations:
                names = {h.lower() for h in location.headers}
                missing = [h for h in FORWARDED if h.lower() not in names]
                if location.proxy_pass and missing:
                    yield Problem(ctx.ref(sp.host),
                                  f"Location {location.path} at {Location(location.file, location.line)} proxies "
                                  f"without {' and '.join(missing)}.",
                                  evidence={"missing": missing}, identity=("file", "line"),
                                  file=location.file, line=location.line)


def server_tokens_on(ctx: Context, view: HostView) -> Iterator[Problem]:
    """N504: nginx names its version in every error page and Server header."""
    for server in view.host.nginx.servers:
        if (server.server_tokens or "on") == "off":
            continue
        file = server.files.get("server_tokens", server.file)
        line = server.lines.get("server_tokens", server.line)
        yield Problem(message=f"The server at {Location(server.file, server.line)} sends nginx's version "
                      f"(server_tokens {server.server_tokens or 'on, the default'}).",
                      evidence={"server_tokens": server.server_tokens or "on"}, identity=("file", "line"),
                      file=file, line=line)


def ssrf_proxy_pass(ctx: Context, view: HostView) -> Iterator[Problem]:
    """N505: the host nginx connects to comes from the request (a header, an argument, or a capture of the
    URI): anyone can make it reach internal services."""
    values = {v.name: v.value for v in view.host.nginx.variables}
    for _, location in _locations(view):
        target = location.proxy_pass or ""
        if location.internal:
            continue  # only internal redirects reach it: a client cannot choose the host
        expanded = NGINX_VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), target)
        host_part = _URL_HOST.match(expanded).group(1)
        from_uri = location.modifier in ("~", "~*") and (
            re.search(r"\$\d", host_part)
            or any(name in location.captures for name in NGINX_VARIABLE.findall(host_part)))
        if ATTACKER_CONTROLLED.search(host_part) or from_uri:
            line = _line(location, "proxy_pass")
            yield Problem(message=f"proxy_pass {target} at {Location(location.file, line)} takes its host from "
                          "the request.", evidence={"proxy_pass": target}, identity=("file", "line"),
                          file=location.file, line=line)


def add_header_redefined(ctx: Context, view: HostView) -> Iterator[Problem]:
    """N506: an add_header in a location drops every add_header of the server and http levels."""
    for server, location in _locations(view):
        # A snapshot written before inherited_add_headers was recorded knows only the server's.
        above = server.add_headers if location.inherited_add_headers is None else location.inherited_add_headers
        dropped = [h for h in above if h.lower() not in {a.lower() for a in location.add_headers}]
        if location.add_headers and dropped:
            line = _line(location, "add_header")
            yield Problem(message=f"add_header in location {location.path} at {Location(location.file, line)} "
                          f"drops {', '.join(dropped)} set above it.",
                          evidence={"dropped": dropped}, identity=("file", "line"), file=location.file,
                          line=line)
        # An `if` that sets its own add_header drops the location's (and what the location inherited).
        in_force = location.add_headers or above
        for block in location.if_add_headers:
            lost = [h for h in in_force if h.lower() not in {a.lower() for a in block.add_headers}]
            if lost:
                file = block.file or location.file
                yield Problem(message=f"add_header inside `if` at {Location(file, block.line)} (location "
                              f"{location.path}) drops {', '.join(lost)} for requests that match it.",
                              evidence={"dropped": lost}, identity=("file", "line"), file=file, line=block.line)


def alias_traversal(ctx: Context, view: HostView) -> Iterator[Problem]:
    """N507: a prefix location without a trailing slash maps whatever follows it onto its alias:
    `location /x { alias /y/; }` serves /x../ as /y/../ (the parent directory), and `location /x { alias
    /y; }` serves /x-old/ as /y-old/ (every directory beside /y whose name starts with it)."""
    for _, location in _locations(view):
        if not location.alias or location.modifier not in ("", "^~") or location.path.endswith("/"):
            continue
        partial = not location.alias.endswith("/")
        if partial and "." in location.path.rsplit("/", 1)[-1]:
            continue  # one file aliased (`location /favicon.ico { alias /srv/favicon.ico; }`)
        reach = (f"{location.path}-old/ serves {location.alias}-old/: every directory beside {location.alias} "
                 "whose name starts with it") if partial else f"{location.path}../ reaches the parent directory"
        yield Problem(message=f"location {location.path} at {Location(location.file, location.line)} has alias "
                      f"{location.alias}: {reach}.",
                      evidence={"location": location.path, "alias": location.alias},
                      identity=("file", "line"), file=location.file, line=_line(location, "alias"),
                      at_most="medium" if partial else None)

def _is_name(host: str) -> bool:
    return not is_address(host) and not is_loopback(host)


def upstream_resolved_once(ctx: Context, view: HostView) -> Iterator[Problem]:
    """N508: a literal host name in proxy_pass or in an upstream's `server` (without `resolve`) is resolved
    once at start and stale after that container is recreated; each host once, at its first place. Quiet
    when compose restarts nginx whenever the service behind the name is recreated."""
    nginx = view.host.nginx
    upstreams = {u.name for u in nginx.upstreams}
    named: dict[str, tuple[str, Location, int]] = {}  # host -> (how it is written, where, port)
    for _, location in _locations(view):
        target = location.proxy_pass or ""
        parsed = parse_url(target) if "$" not in target else None
        if parsed and parsed[0] not in upstreams and _is_name(parsed[0]):
            place = Location(location.file, _line(location, "proxy_pass"))
            named.setdefault(parsed[0], (f"proxy_pass {target}", place, parsed[1] or 80))
    for upstream in nginx.upstreams:
        for server in upstream.servers:
            parsed = parse_url(f"http://{server.address}") if "$" not in server.address else None
            if parsed and not server.resolve and _is_name(parsed[0]):
                written = f"server {server.address} in upstream {upstream.name}"
                named.setdefault(parsed[0], (written, Location(server.file, server.line), parsed[1] or 80))
    restarted = set(view.nginx_container.restarts_with) if view.nginx_container else set()
    for name, (written, place, port) in named.items():
        services = {c.service for c in view.names.get(name, [])}
        if services and services <= restarted:
            continue  # `depends_on: {X: {restart: true}}`: compose restarts nginx with it
        yield Problem(message=f"{written} at {place} names host {name}, which nginx resolves once at start and "
                      "keeps after the container's address changes.",
                      evidence={"host": name}, identity=("file", "line"), file=place.file, line=place.line,
                      remediation=_resolved_once_fix(view, name, port, written.startswith("server ")))


def _resolved_once_fix(view: HostView, name: str, port: int, in_upstream: bool) -> str:
    if view.containerized:
        service = next((c.service for c in view.names.get(name, []) if c.service), None)
        per_request = ("add `resolve` to that server with `resolver 127.0.0.11 valid=10s;` (nginx 1.27.3 or later)"
                       if in_upstream else f"resolve per request with Docker's DNS: `resolver 127.0.0.11 valid=10s; "
                       f"set $upstream http://{name}:{port}; proxy_pass $upstream;`")
        restart = (f"restart it whenever {service} is recreated (`depends_on: {{{service}: {{condition: "
                   f"service_started, restart: true}}}}`), or " if service else "")
        return f"nginx runs as compose service {view.nginx_service}: {restart}{per_request}."
    return (f"Proxy to the port the container publishes on loopback (`proxy_pass http://127.0.0.1:{port};`"
            f" with the container published as 127.0.0.1:{port}:…), or resolve per request: `resolver "
            f"<your DNS> valid=10s; set $upstream http://{name}:{port}; proxy_pass $upstream;`.")
