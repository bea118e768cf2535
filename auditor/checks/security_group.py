"""Security groups (S4xx): what the internet can reach directly."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.engine.api import Context, Problem
from auditor.model.snapshot import SecurityGroup, SgRule

WORLD = {"0.0.0.0/0", "::/0"}


def _open_to_world(sg: SecurityGroup) -> Iterator[tuple[SgRule, str]]:
    for rule in sg.ingress:
        for source in (rule.cidr, rule.ipv6_cidr):
            if source in WORLD:
                yield rule, source


def _ports(rule: SgRule) -> str:
    if rule.protocol == "-1":
        return "all traffic"
    return f"{rule.protocol}/{rule.from_port}" + (f"-{rule.to_port}" if rule.to_port != rule.from_port else "")


def admin_port_open_to_world(ctx: Context, sg: SecurityGroup) -> Iterator[Problem]:
    """S401: an admin or database port (rules.options.S401.ports) open to 0.0.0.0/0 or ::/0."""
    ports = ctx.options["ports"]  # declared in rules/S401.yaml
    for rule, source in _open_to_world(sg):
        exposed = [p for p in ports if rule.covers_port(p)]
        if exposed and rule.protocol != "-1":  # all traffic is S403's to say, once
            yield Problem(message=f"Security group {ctx.ref(sg).key} opens {_ports(rule)} to {source}, which "
                          f"includes admin port{'s' if len(exposed) > 1 else ''} {', '.join(map(str, exposed))}.",
                          evidence={"rule": _ports(rule), "source": source, "admin_ports": exposed},
                          identity=("rule", "source"))


def target_port_open_to_world(ctx: Context) -> Iterator[Problem]:
    """S402: the targets' own security group opens the app port to the internet, bypassing the ALB."""
    for targets in ctx.topology.targets.values():
        for target in targets:
            if target.instance is None:
                continue
            for sg_id in target.instance.security_groups:
                sg = ctx.topology.security_groups.get(sg_id)
                if sg is None:
                    continue
                for rule, source in _open_to_world(sg):
                    if rule.protocol != "-1" and rule.covers_port(target.port):
                        ref = ctx.ref(sg)
                        yield Problem(ref,
                                      f"Security group {ref.key} of the targets opens port {target.port} to {source}: "
                                      "the app is reachable around the load balancer, its TLS and its rules.",
                                      evidence={"port": target.port, "source": source, "rule": _ports(rule),
                                                "target_group": ctx.topology.tg_key(target.target_group)},
                                      identity=("port", "source"))
                        break


def all_traffic_open_to_world(ctx: Context, sg: SecurityGroup) -> Iterator[Problem]:
    """S403: every protocol and port open to the internet."""
    for rule, source in _open_to_world(sg):
        if rule.protocol == "-1":
            yield Problem(message=f"Security group {ctx.ref(sg).key} admits all traffic from {source}.",
                          evidence={"source": source}, identity=("source",))
