"""AWS API answer shapes -> snapshot models, for what the collector reads and what a plan says it will
write (auditor.plan turns Terraform's attributes into these shapes): one reading of each shape."""

from __future__ import annotations

from typing import Any

from auditor.model.snapshot import Action, EcsContainer, EcsPortMapping, ForwardTarget, Redactor, SgRule

_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


def forward_targets(action: dict[str, Any]) -> list[ForwardTarget]:
    if action.get("Type") != "forward":
        return []
    groups = action.get("ForwardConfig", {}).get("TargetGroups")
    if groups:
        return [ForwardTarget(arn=g["TargetGroupArn"], weight=g.get("Weight", 1)) for g in groups]
    # moto (and older API answers) give a single forward as TargetGroupArn only.
    return [ForwardTarget(arn=action["TargetGroupArn"])] if action.get("TargetGroupArn") else []


def action_model(action: dict[str, Any]) -> Action:
    return Action(type=action.get("Type", ""), order=action.get("Order"), target_groups=forward_targets(action),
                  redirect=action.get("RedirectConfig"), fixed_response=action.get("FixedResponseConfig"))


def sg_rules(permission: dict[str, Any]) -> list[SgRule]:
    """One IpPermission as normalized rules: one source each."""
    protocol = str(permission.get("IpProtocol", "-1"))
    base = {"protocol": _PROTOCOLS.get(protocol, protocol), "from_port": permission.get("FromPort"),
            "to_port": permission.get("ToPort")}
    if base["protocol"] == "-1":
        base["from_port"] = base["to_port"] = None
    rules = [SgRule(**base, cidr=r["CidrIp"], description=r.get("Description")) for r in permission.get("IpRanges", [])]
    rules += [SgRule(**base, ipv6_cidr=r["CidrIpv6"], description=r.get("Description"))
              for r in permission.get("Ipv6Ranges", [])]
    rules += [SgRule(**base, source_group=p.get("GroupId"), description=p.get("Description"))
              for p in permission.get("UserIdGroupPairs", [])]
    rules += [SgRule(**base, prefix_list=p.get("PrefixListId"), description=p.get("Description"))
              for p in permission.get("PrefixListIds", [])]
    return rules


def containers(definitions: list[dict[str, Any]], redactor: Redactor) -> list[EcsContainer]:
    """A task definition's containerDefinitions (the API's, or a plan's container_definitions JSON, which
    has the same shape), environment values redacted."""
    return [EcsContainer(
        name=c.get("name", ""), image=c.get("image", ""), stop_timeout=c.get("stopTimeout"),
        port_mappings=[EcsPortMapping(container_port=m["containerPort"], host_port=m.get("hostPort"),
                                      protocol=m.get("protocol", "tcp"))
                       for m in c.get("portMappings") or [] if "containerPort" in m],
        environment=redactor.mapping({e["name"]: str(e.get("value", "")) for e in c.get("environment") or []}),
    ) for c in definitions if isinstance(c, dict)]
