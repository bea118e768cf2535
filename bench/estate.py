"""Synthetic estates of N resources, as snapshot data, for the benchmarks.

A realistic mix per service: an ALB with HTTP and HTTPS listeners and a path
rule, two target groups (blue/green behind a weighted forward), three
instances registered in both, an ALB and an app security group with a few
rules, and a host description with nginx and two slot containers. Two
environments built from one seed differ in every id, ARN, IP and account, and
in ``drift`` deliberate settings, so a diff has real work and a known answer.
"""

from __future__ import annotations

import random
from typing import Any

PER_SERVICE = 1 + 2 + 1 + 2 + 6 + 2 + 3 + 1  # LB, listeners, rule, TGs, target health, SGs, instances, host


def _arn(account: str, kind: str, name: str, suffix: str) -> str:
    return f"arn:aws:elasticloadbalancing:eu-west-1:{account}:{kind}/{name}/{suffix}"


def service(i: int, env: str, account: str, rng: random.Random, changed: bool) -> dict[str, list[dict[str, Any]]]:
    name = f"svc{i:05d}"
    ident = f"{rng.getrandbits(48):012x}"
    lb_arn = _arn(account, "loadbalancer/app", f"{name}-{env}-alb", ident)
    tgs = [_arn(account, "targetgroup", f"{name}-{env}-{c}-tg", ident + c) for c in ("blue", "green")]
    alb_sg, app_sg = f"sg-{ident}a", f"sg-{ident}b"
    instances = [f"i-{ident}{n}" for n in range(3)]
    subnet = f"10.{i % 250}.{i // 250}"
    common = {"account": account, "region": "eu-west-1"}
    idle = "120" if changed else "60"
    return {
        "load_balancers": [{
            "arn": lb_arn, "name": f"{name}-{env}-alb", "dns_name": f"{name}-{env}-{ident}.elb.amazonaws.com",
            "security_groups": [alb_sg], "tags": {"Environment": env, "Service": name},
            "subnets": [{"id": f"subnet-{ident}{z}", "cidr": f"10.{i % 250}.{k}.0/24", "availability_zone": f"eu-west-1{z}"}
                        for k, z in enumerate("ab")],
            "attributes": {"idle_timeout.timeout_seconds": idle, "access_logs.s3.enabled": "true",
                           "access_logs.s3.bucket": f"{name}-{env}-logs"}, **common}],
        "listeners": [
            {"arn": f"{lb_arn}/l80", "load_balancer_arn": lb_arn, "port": 80, "protocol": "HTTP",
             "default_actions": [{"type": "redirect", "redirect": {"Protocol": "HTTPS", "Port": "443",
                                                                   "StatusCode": "HTTP_301"}}], **common},
            {"arn": f"{lb_arn}/l443", "load_balancer_arn": lb_arn, "port": 443, "protocol": "HTTPS",
             "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "certificates": [f"arn:aws:acm:cert/{ident}"],
             "default_actions": [{"type": "forward", "target_groups": [{"arn": tgs[0], "weight": 100},
                                                                       {"arn": tgs[1], "weight": 0}]}], **common},
        ],
        "listener_rules": [{"arn": f"{lb_arn}/l443/r10", "listener_arn": f"{lb_arn}/l443", "priority": "10",
                            "conditions": [{"Field": "path-pattern", "Values": ["/api/*"]}],
                            "actions": [{"type": "forward", "target_groups": [{"arn": tgs[0]}]}], **common}],
        "target_groups": [
            {"arn": arn, "name": f"{name}-{env}-{c}-tg", "port": port, "vpc_id": f"vpc-{ident}",
             "load_balancer_arns": [lb_arn], "tags": {"Environment": env},
             "health_check": {"path": "/health-check", "interval_seconds": 15 if changed else 30},
             "attributes": {"deregistration_delay.timeout_seconds": "30"}, **common}
            for arn, c, port in zip(tgs, ("blue", "green"), (3000, 4000), strict=True)],
        "target_health": [{"target_group_arn": tg, "target_id": inst, "port": None, **common}
                          for tg in tgs for inst in instances],
        "security_groups": [
            {"id": alb_sg, "name": f"{name}-{env}-alb-sg", "ingress": [
                {"protocol": "tcp", "from_port": p, "to_port": p, "cidr": "0.0.0.0/0"} for p in (80, 443)],
             "egress": [{"protocol": "-1", "cidr": "0.0.0.0/0"}], **common},
            {"id": app_sg, "name": f"{name}-{env}-app-sg", "ingress": [
                {"protocol": "tcp", "from_port": p, "to_port": p, "source_group": alb_sg} for p in (3000, 4000)]
             + ([{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}] if changed else []),
             "egress": [{"protocol": "-1", "cidr": "0.0.0.0/0"}], **common},
        ],
        "instances": [{"id": inst, "private_ip": f"{subnet}.{10 + n}", "security_groups": [app_sg],
                       "instance_type": "t3.small", "tags": {"Name": f"{name}-{env}-{n + 1}", "Role": name,
                                                            "Environment": env}, **common}
                      for n, inst in enumerate(instances)],
        "hosts": [{
            "name": name, "match": {"Role": name},
            "nginx": {"servers": [{"file": f"envs/{env}/{name}/nginx.conf", "line": 3, "listen": [{"port": 8080}],
                                   "locations": [{"path": "/", "proxy_pass": "$service_url", "line": 6}]}],
                      "variables": [{"name": "service_url", "value": "http://127.0.0.1:3000", "line": 1}]},
            "docker": {"containers": [
                {"name": f"{name}-app-{c}", "service": f"app-{c}", "image": f"web:{'1.2' if changed else '1.1'}",
                 "ports": [{"host_port": port, "container_port": 3000}],
                 "environment": {"PORT": "3000"}}
                for c, port in (("blue", 3000), ("green", 4000))],
                "slots": {"blue": "app-blue", "green": "app-green"}},
            "app": {"health_path": "/health-check"}, **common}],
    }


def generate(n: int, env: str, seed: int = 7, drift: int = 0) -> dict[str, Any]:
    """A snapshot (as data) of about ``n`` resources; the first ``drift`` services have changed settings."""
    rng = random.Random(f"{seed}-{env}")
    account = f"{rng.randrange(10 ** 11, 10 ** 12)}"
    resources: dict[str, list[dict[str, Any]]] = {}
    for i in range(max(1, n // PER_SERVICE)):
        for collection, items in service(i, env, account, rng, i < drift).items():
            resources.setdefault(collection, []).extend(items)
    return {"schema_version": 1, "environment": env, "collected_at": "2026-11-25T00:00:00+00:00",
            "sources": {"aws": {"status": "ok"}}, "resources": resources}


def count(data: dict[str, Any]) -> int:
    return sum(len(items) for items in data["resources"].values())
