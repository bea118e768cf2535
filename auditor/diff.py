"""Drift between two environments: resources matched by role key, compared by what they do.

Identity (ARNs, ids, DNS names, private IPs, accounts, regions, file lines) never
counts, and values that differ only by the environment token are equal. The
path shape of each environment is compared as the `paths` collection.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from typing import Any

import msgspec

from auditor.model import fieldpath
from auditor.config import DiffConfig
from auditor.model.keys import TRAILING_INDEX
from auditor.outcomes import Drift, DriftItem
from auditor.model.snapshot import AWS_NAMES, COLLECTIONS, RESOURCE_TYPES, SgRule, Snapshot
from auditor.topology import joined

# The drift collections: the snapshot's, and the path shapes of each environment.
SINGULAR = {**RESOURCE_TYPES, "paths": "path"}
PLURAL = {v: k for k, v in SINGULAR.items()}

# Fields that name a resource rather than describe it.
IDENTITY_FIELDS = AWS_NAMES | {
    "private_ip", "vpc_id", "subnet_id", "instance_id", "target_id", "name",
    "file", "line", "files", "lines",  # provenance: where a fact was read
}
# Entries keyed by name inside a host (services, nginx servers, their locations, upstreams): one that
# exists on one side only is one only_in item, not a changed line per field.
_KEYED = {("docker", "containers"), ("docker", "networks"), ("nginx", "servers"), ("nginx", "upstreams")}
_EMPTY = (None, {}, [])  # absent and empty compare equal: `environment: {}` is no environment


# --- normalizing a resource into what it does ------------------------------------------------------


class _Normalizer:
    def __init__(self, snapshot: Snapshot, tokens: list[str]) -> None:
        self.topology = joined(snapshot, tokens)
        self.keys = self.topology.keys
        self.references = {
            **self.keys.load_balancer,
            **self.keys.target_group,
            **self.keys.security_group,
            **self.keys.instance,
            **self.keys.listener,
        }

    def value(self, value: Any) -> Any:
        """A fact as it compares across environments: references as role keys, tokens as `*`,
        identity fields gone, set-like lists sorted."""
        kind = type(value)
        if kind is str:
            return self.references.get(value) or self.keys.strip(value)
        if kind is dict:
            return {k: self.value(v) for k, v in value.items() if k not in IDENTITY_FIELDS}
        if kind is list:
            items = [self.value(v) for v in value]
            return sorted(items, key=repr) if len(items) > 1 else items
        return value

    def collection(self, name: str) -> dict[str, list[dict[str, Any]]]:
        """Role key → normalized resources with that key."""
        keyed: dict[str, list[dict[str, Any]]] = defaultdict(list)
        resources = getattr(self.topology.snapshot.resources, name)
        for resource in resources:
            data = msgspec.to_builtins(resource)
            keyed[self.keys.of(name, resource)].append(self._normalize(name, data))
        if name == "instances":
            return {key: [_group(items)] for key, items in keyed.items()}
        if name == "target_health":
            return {key: [{"count": len(items), "states": sorted({i.get("state") for i in items})}]
                    for key, items in keyed.items()}
        return keyed

    def _normalize(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        if name == "listener_rules":
            data.pop("priority", None)  # part of the key
        if name == "listeners":
            data["certificates"] = len(data["certificates"])  # ARNs differ per account; how many does not
        if name == "hosts":
            data.pop("match", None)
        if name == "load_balancers":
            # Subnet CIDRs are addressing, like private IPs; the zones the ALB spans are behaviour.
            data["subnets"] = sorted({s.get("availability_zone") or "" for s in data["subnets"]})
        if name == "instances" and "Name" in data["tags"]:
            data["tags"]["Name"] = TRAILING_INDEX.sub("", data["tags"]["Name"])
        if name == "security_groups":
            for direction in ("ingress", "egress"):
                data[direction] = sorted({self._rule(direction, r) for r in data[direction]})
        if name == "hosts":
            data["docker"] = _docker(data["docker"])
            data["nginx"] = _nginx(data["nginx"])
            data["nginx_beside"] = {n["service"]: _nginx(n) for n in data.get("nginx_beside", [])}
        return self.value(data)

    def _rule(self, direction: str, rule: dict[str, Any]) -> str:
        """A security-group rule as one comparable line, its group named by role key: `tcp 3000 from
        web-*-alb-sg` (its description changes nothing)."""
        typed = SgRule(**rule)
        return typed.text(direction, self.references.get(typed.peer))


def _port(p: dict[str, Any]) -> str:
    host = f"{p['host_ip']}:" if p["host_ip"] else ""
    published = f"{host}{p['host_port']}:" if p["host_port"] else ""
    return f"{published}{p['container_port']}/{p['protocol']}"


def _docker(docker: dict[str, Any] | None) -> dict[str, Any] | None:
    """Containers by compose service, ports as `[ip:]host:container/proto` lines."""
    if docker is None:
        return None
    containers = {}
    for c in docker["containers"]:
        containers[c["service"] or c["name"]] = {
            "image": c["image"], "running": c["running"], "ports": sorted(_port(p) for p in c["ports"]),
            "expose": sorted(c["expose"]), "environment": c["environment"], "privileged": c["privileged"],
            "volumes": sorted(c["volumes"]), "built": c.get("built", False),
            "restarts_with": sorted(c.get("restarts_with") or []),  # compose restarts it when these are recreated
            **{k: c.get(k) for k in ("command", "entrypoint", "healthcheck", "network_mode", "extra_hosts")},
            **_memberships(c.get("networks"))}
    return {**docker, "containers": containers}


def _memberships(networks: dict[str, list[str]] | None) -> dict[str, Any]:
    """A service's networks as a list of names (a network joined with no alias is membership, not an empty
    value that equals absent) and its aliases on each."""
    if networks is None:
        return {"networks": None}
    return {"networks": sorted(networks), "aliases": {n: a for n, a in sorted(networks.items()) if a}}


def _nginx(nginx: dict[str, Any] | None) -> dict[str, Any] | None:
    """Servers by what they listen on, locations by modifier and path, upstreams and variables by name."""
    if nginx is None:
        return None

    def listen(entry: dict[str, Any]) -> str:
        flags = [f for f in ("ssl", "http2", "default_server") if entry[f]]
        return " ".join([f"{entry['address']}:{entry['port']}" if entry["address"] else str(entry["port"]), *flags])

    servers = {}
    for server in nginx["servers"]:
        key = ", ".join(sorted(listen(entry) for entry in server["listen"]))
        if server["server_names"]:
            key += " " + " ".join(server["server_names"])
        servers[key] = {
            f"{loc['modifier']} {loc['path']}".strip(): {k: v for k, v in loc.items() if k not in ("modifier", "path")}
            for loc in server["locations"]}
        # The server's own settings compare beside its locations (a key no location path can take).
        servers[key]["(server)"] = {k: server.get(k) for k in (
            "directives", "keepalive_timeout", "proxy_read_timeout", "server_tokens", "resolver", "add_headers",
            "return_code", "return_text")}
    return {
        "service": nginx.get("service"),
        "servers": servers,
        "upstreams": {u["name"]: sorted(x["address"] + (" backup" if x["backup"] else "") for x in u["servers"])
                      for u in nginx["upstreams"]},
        "variables": {v["name"]: v["value"] for v in nginx["variables"]},
        "missing_includes": sorted(m["pattern"] for m in nginx["missing_includes"]),
    }


def _group(instances: list[dict[str, Any]]) -> dict[str, Any]:
    """Instances of one role compare as a group: how many, and the settings they share."""
    flat = [_flatten(i) for i in instances]
    shared: dict[str, Any] = {"count": len(instances)}
    for path, value in flat[0].items():
        if path != ("state",) and all(f.get(path) == value for f in flat):
            node = shared
            for segment in path[:-1]:
                node = node.setdefault(segment, {})
            node[path[-1]] = value
    return shared


def _flatten(value: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(value, dict) and value:
        out: dict[tuple[str, ...], Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, prefix + (str(k),)))
        return out
    return {prefix: value}


def matches(pattern: str, item: DriftItem) -> bool:
    """Whether ``COLLECTION[KEY].PATH`` (``*`` within a segment, leading ``*.`` any prefix) names an item."""
    collection = PLURAL.get(item.resource_type, item.resource_type)
    subject = [collection, f"[{item.key}]"] + (fieldpath.segments(item.path) if item.path else [])
    wanted = fieldpath.segments(pattern)
    if pattern.startswith("*.") and wanted and wanted[0] == "*":
        tail = wanted[1:]
        return len(tail) <= len(subject) and _segments_match(tail, subject[len(subject) - len(tail):])
    return len(wanted) == len(subject) and _segments_match(wanted, subject)


def _segments_match(pattern: list[str], subject: list[str]) -> bool:
    # fnmatch's [] is a character class; keys are compared inside their brackets instead.
    for p, s in zip(pattern, subject):
        if p.startswith("[") and s.startswith("["):
            if not fnmatch.fnmatchcase(s[1:-1], p[1:-1].replace("[", "[[]")):
                return False
        elif not fnmatch.fnmatchcase(s, p.replace("[", "[[]")):
            return False
    return True


# --- the comparison ---------------------------------------------------------------------------------


def _compare(resource_type: str, a: dict[str, list[dict[str, Any]]], b: dict[str, list[dict[str, Any]]]) -> list[DriftItem]:
    items = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key, []), b.get(key, [])
        if len(left) > 1 or len(right) > 1:
            items.append(DriftItem(kind="ambiguous", resource_type=resource_type, key=key, path="",
                                   a=len(left), b=len(right)))
        elif not right:
            items.append(DriftItem(kind="only_in_a", resource_type=resource_type, key=key, path=""))
        elif not left:
            items.append(DriftItem(kind="only_in_b", resource_type=resource_type, key=key, path=""))
        elif left[0] != right[0]:
            flat_a, flat_b = _flatten(left[0]), _flatten(right[0])
            reported: set[tuple[str, ...]] = set()
            for path in sorted(set(flat_a) | set(flat_b)):
                # A section present on one side only (nginx: null vs an nginx config) is one item.
                whole = next((path[:n] for n in range(1, len(path))
                              if flat_a.get(path[:n], 0) is None or flat_b.get(path[:n], 0) is None), path)
                keyed = next((path[:n] for n in range(1, len(path) + 1) if _is_keyed(path[:n]) and
                              (fieldpath.dig(left[0], path[:n]) is None) != (fieldpath.dig(right[0], path[:n]) is None)),
                             None)
                # A keyed entry, or a whole section of the resource (a host's nginx), on one side only is
                # one only_in item naming it, never a dump of its model.
                one_sided = keyed if whole == path else whole if len(whole) == 1 else None
                if one_sided is not None:
                    if one_sided not in reported:
                        reported.add(one_sided)
                        kind = "only_in_a" if fieldpath.dig(right[0], one_sided) is None else "only_in_b"
                        items.append(DriftItem(kind=kind, resource_type=resource_type, key=key,
                                               path=fieldpath.join(one_sided)))
                    continue
                if whole == path:
                    va, vb = flat_a.get(path), flat_b.get(path)
                else:
                    va, vb = fieldpath.dig(left[0], whole), fieldpath.dig(right[0], whole)
                if va != vb and not (va in _EMPTY and vb in _EMPTY) and whole not in reported:
                    reported.add(whole)
                    items.append(DriftItem(kind="changed", resource_type=resource_type, key=key,
                                           path=fieldpath.join(whole), a=va, b=vb))
    return items


# The order a reviewer reads drift in (DESIGN "Drift"): what it does to traffic first. The path shapes (a
# slot reached or not before anything), then what stands on the path, then the other facts, hygiene last.
_ALONG_THE_PATH = ("path", "load_balancer", "listener", "listener_rule", "target_group", "target_health",
                   "security_group", "host", "ecs_service", "instance")
_CARRIES_TRAFFIC = {
    "port", "protocol", "health_check", "ingress", "egress", "actions", "default_actions", "conditions",
    "nginx", "nginx_beside", "ports", "running", "networks", "aliases", "network_mode", "expose", "internal",
    "external", "driver", "slots", "live", "switch", "listen_ports", "states", "load_balancers", "scheme",
    "security_groups", "target_type", "proxy_pass", "listen",
}
_HYGIENE = {"tags", "description", "instance_type", "count", "image", "environment", "volumes", "privileged",
            "deletion_protection", "built"}


def impact(item: DriftItem) -> tuple[int, int]:
    """Where a drift item sorts: 0 a slot reached or not, 1 the rest of a path's shape, 2 what carries
    traffic (a port, a rule, nginx, a network, a service or section on one side only), 3 any other fact,
    4 hygiene (tags, sizes, image tags); then along the path, load balancer to instance."""
    parts = fieldpath.segments(item.path) if item.path else []
    if item.resource_type == "path":
        rank = 0 if parts[-1:] == ["reached"] else 1
    elif item.kind != "changed" or not parts or parts[0] in _CARRIES_TRAFFIC or parts[-1] in _CARRIES_TRAFFIC:
        rank = 2
    else:
        rank = 4 if parts[0] in _HYGIENE or parts[-1] in _HYGIENE else 3
    along = _ALONG_THE_PATH.index(item.resource_type) if item.resource_type in _ALONG_THE_PATH else len(_ALONG_THE_PATH)
    return rank, along


def _is_keyed(path: tuple[str, ...]) -> bool:
    """A compose service, an nginx server or upstream, a location of a server, or an nginx service beside
    the front one."""
    return (len(path) == 3 and path[:2] in _KEYED) or (len(path) == 4 and path[:2] == ("nginx", "servers")) \
        or (len(path) == 2 and path[0] == "nginx_beside")


def compare(a: Snapshot, b: Snapshot, tokens_a: list[str], tokens_b: list[str],
            config: DiffConfig | None = None) -> Drift:
    """Drift from environment ``a`` to ``b``. Pure."""
    config = config or DiffConfig()
    na, nb = _Normalizer(a, tokens_a), _Normalizer(b, tokens_b)
    items: list[DriftItem] = []
    for name in COLLECTIONS:
        left, right = na.collection(name), nb.collection(name)
        for pairing in config.match:
            if PLURAL.get(pairing.resource_type) == name:
                _pair(left, right, na.keys.strip(pairing.a), nb.keys.strip(pairing.b))
        items += _compare(SINGULAR[name], left, right)
    items += _compare("path", _paths(na), _paths(nb))
    items.sort(key=impact)
    kept = []
    for item in items:
        if any(matches(p, item) for p in config.ignore):
            continue
        for expected in config.expected:
            if matches(expected.path, item):
                item.expected, item.reason = True, expected.reason
                break
        kept.append(item)
    name_a, name_b = labels(a, b)
    return Drift(name_a, name_b, kept, {name_a: na.topology.shapes(), name_b: nb.topology.shapes()}, a.environment)


def labels(a: Snapshot, b: Snapshot) -> tuple[str, str]:
    """What a report calls each side: the environment's name, and for one environment at two times
    (yesterday's snapshot against today's) the name at the minute it was collected."""
    if a.environment != b.environment:
        return a.environment, b.environment
    for width in (16, 19, None):  # to the minute, the second, or all of collected_at
        left, right = a.collected_at[:width], b.collected_at[:width]
        if left != right:
            return f"{a.environment}@{left}", f"{b.environment}@{right}"
    return f"{a.environment} (first)", f"{b.environment} (second)"


def _pair(left: dict[str, Any], right: dict[str, Any], key_a: str, key_b: str) -> None:
    """diff.match: compare resource ``key_a`` of a with ``key_b`` of b under one key."""
    if key_a in left and key_b in right and key_a != key_b:
        right[key_a] = right.pop(key_b)


def _paths(normalizer: _Normalizer) -> dict[str, list[dict[str, Any]]]:
    return {path["key"]: [{k: v for k, v in path.items() if k != "key"}]
            for path in normalizer.topology.path_items}
