"""ALB and listener rules (A2xx): settings of one load balancer or listener, read from AWS."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from auditor.engine.api import Context, Problem
from auditor.model.refs import Ref
from auditor.model.snapshot import Listener, ListenerRule, LoadBalancer, attribute

# ELB security policies that still accept TLS 1.0 or 1.1 (AWS "Security policies for your ALB").
WEAK_TLS_POLICIES = {
    "ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS-1-0-2015-04", "ELBSecurityPolicy-TLS-1-1-2017-01",
    "ELBSecurityPolicy-2015-05", "ELBSecurityPolicy-FS-2018-06", "ELBSecurityPolicy-FS-1-1-2019-08",
    "ELBSecurityPolicy-TLS13-1-0-2021-06", "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04", "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09", "ELBSecurityPolicy-TLS13-1-1-PQ-2025-09",
}


def _attribute(ctx: Context, lb: LoadBalancer, name: str, message: str, fires: Any,
               internet_facing_only: bool = False) -> Iterator[Problem]:
    """A finding when the load balancer's attribute ``name`` makes ``fires`` true."""
    if internet_facing_only and lb.scheme != "internet-facing":
        return
    # moto and AWS omit attributes that were never set: a missing key is AWS's default.
    value = attribute(lb.attributes, name)
    if fires(value):
        yield Problem(message=message.format(lb=ctx.ref(lb).key, value=value),
                      evidence={"attribute": name, "value": value, "scheme": lb.scheme}, identity=("attribute",))


def http_not_redirected(ctx: Context, listener: Listener) -> Iterator[Problem]:
    """A201: an internet-facing ALB's HTTP listener serves content instead of redirecting to HTTPS."""
    lb = ctx.topology.load_balancers.get(listener.load_balancer_arn)
    if listener.protocol != "HTTP" or lb is None or lb.scheme != "internet-facing":
        return
    actions = [a for a in listener.default_actions if a.type != "authenticate-oidc"]
    if any(a.type == "redirect" and (a.redirect or {}).get("Protocol", "").upper() == "HTTPS" for a in actions):
        return
    yield Problem(message=f"Listener {ctx.ref(listener).key} serves plain HTTP on an internet-facing load balancer "
                  "instead of redirecting to HTTPS: credentials and cookies cross the internet in clear text.",
                  evidence={"port": listener.port, "actions": [a.type for a in actions]}, identity=("port",))


def weak_tls_policy(ctx: Context, listener: Listener) -> Iterator[Problem]:
    """A202: an HTTPS listener's security policy still accepts TLS 1.0 or 1.1."""
    if listener.protocol == "HTTPS" and listener.ssl_policy in WEAK_TLS_POLICIES:
        yield Problem(message=f"Listener {ctx.ref(listener).key} uses {listener.ssl_policy}, which accepts "
                      "TLS 1.0/1.1.",
                      evidence={"ssl_policy": listener.ssl_policy}, identity=("ssl_policy",))


def _off(value: str) -> bool:
    return value.lower() != "true"


def deletion_protection_off(ctx: Context, lb: LoadBalancer) -> Iterator[Problem]:
    """A203: an internet-facing ALB can be deleted by one API call or a stray `terraform destroy`."""
    yield from _attribute(ctx, lb, "deletion_protection.enabled",
                          "Load balancer {lb} is internet-facing with deletion protection off.", _off,
                          internet_facing_only=True)


def access_logs_off(ctx: Context, lb: LoadBalancer) -> Iterator[Problem]:
    """A204: no access logs, so the 502/503/504 of an incident leave no trace."""
    yield from _attribute(ctx, lb, "access_logs.s3.enabled", "Load balancer {lb} keeps no access logs.", _off)


def invalid_headers_kept(ctx: Context, lb: LoadBalancer) -> Iterator[Problem]:
    """A205: headers with invalid names reach the targets (request smuggling material)."""
    yield from _attribute(ctx, lb, "routing.http.drop_invalid_header_fields.enabled",
                          "Load balancer {lb} forwards HTTP headers with invalid names to its targets.", _off)


def desync_mitigation_monitor(ctx: Context, lb: LoadBalancer) -> Iterator[Problem]:
    """A206: desync mitigation only monitors, so ambiguous requests reach the targets."""
    yield from _attribute(ctx, lb, "routing.http.desync_mitigation_mode",
                          "Load balancer {lb} has desync mitigation mode {value}: requests that may smuggle "
                          "another request reach the targets.", lambda v: v.lower() == "monitor")


def _values(condition: dict[str, Any]) -> list[str]:
    """The patterns of a rule condition (either the old Values or the *Config form)."""
    for key, value in condition.items():
        if key.endswith("Config") and isinstance(value, dict) and isinstance(value.get("Values"), list):
            return [str(v) for v in value["Values"]]
    return [str(v) for v in condition.get("Values") or []]


def _covers(broad: ListenerRule, narrow: ListenerRule) -> bool:
    """Whether every request ``narrow`` matches is matched by ``broad`` too."""
    by_field = defaultdict(list)
    for condition in narrow.conditions:
        by_field[condition.get("Field")].append(condition)
    for condition in broad.conditions:
        field = condition.get("Field")
        if field not in ("path-pattern", "host-header") or field not in by_field:
            return False  # a condition we cannot compare, or one narrow does not have: broad may be narrower
        patterns = _values(condition)
        for other in by_field[field]:
            if not all(any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)
                       for value in _values(other)):
                return False
    return True


def shadowed_listener_rule(ctx: Context) -> Iterator[Problem]:
    """A207: a rule never matches because a higher-priority rule matches everything it matches."""
    by_listener: dict[str, list[ListenerRule]] = defaultdict(list)
    for rule in ctx.snapshot.resources.listener_rules:
        if not rule.is_default and rule.priority.isdigit():
            by_listener[rule.listener_arn].append(rule)
    for rules in by_listener.values():
        rules.sort(key=lambda r: int(r.priority))
        for index, rule in enumerate(rules):
            shadow = next((r for r in rules[:index] if _covers(r, rule)), None)
            if shadow is not None:
                key = ctx.keys.listener_rule(rule)
                yield Problem(Ref("listener_rule", key),
                              f"Rule {key} never matches: rule priority {shadow.priority} matches every request "
                              "it would.", evidence={"priority": rule.priority, "shadowed_by": shadow.priority,
                                                     "conditions": rule.conditions}, identity=("shadowed_by",))
