"""Proxy targets: where an nginx `proxy_pass` (or upstream) sends a request, as parsed from its URL."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.model.snapshot import Upstream


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
