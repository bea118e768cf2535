"""AWS API answer shapes -> snapshot models, for what the collector reads and what a plan says it will
write (auditor.plan turns Terraform's attributes into these shapes): one reading of each shape."""

from __future__ import annotations

from typing import Any

from auditor.model.snapshot import (
    Action,
    EcsContainer,
    EcsLoadBalancer,
    EcsPortMapping,
    EcsService,
    ForwardTarget,
    HealthCheck,
    Instance,
    Listener,
    ListenerRule,
    LoadBalancer,
    Redactor,
    SecurityGroup,
    SgRule,
    Subnet,
    TargetGroup,
    TaskDefinition,
)

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
    # A plan names a peer group `ACCOUNT/sg-…` when the provider runs without knowing its account (or
    # across accounts); AWS's answer gives the account apart. A group id never holds a `/`.
    rules += [SgRule(**base, source_group=str(p.get("GroupId") or "").rpartition("/")[2] or None,
                     description=p.get("Description"))
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


def tags_of(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


def account_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


# --- describe calls' answers → snapshot models ---------------------------------------------------


def load_balancer(lb: dict[str, Any], tags: dict[str, str], attrs: dict[str, str],
              subnets: dict[str, Any], region: str) -> LoadBalancer:
    return LoadBalancer(
        arn=lb["LoadBalancerArn"], name=lb["LoadBalancerName"], type=lb.get("Type", "application"),
        scheme=lb.get("Scheme", "internet-facing"), dns_name=lb.get("DNSName", ""), vpc_id=lb.get("VpcId", ""),
        security_groups=lb.get("SecurityGroups", []),
        subnets=[Subnet(id=z["SubnetId"], cidr=subnets.get(z["SubnetId"], {}).get("CidrBlock"),
                        availability_zone=z.get("ZoneName")) for z in lb.get("AvailabilityZones", [])
                 if z.get("SubnetId")],
        tags=tags, attributes=attrs, account=account_of(lb["LoadBalancerArn"]), region=region,
    )

def listener(lst: dict[str, Any], region: str) -> Listener:
    return Listener(
        arn=lst["ListenerArn"], load_balancer_arn=lst["LoadBalancerArn"], port=lst.get("Port", 0),
        protocol=lst.get("Protocol", "HTTP"),
        # moto gives HTTP listeners an SslPolicy; AWS does not. Only TLS listeners have one.
        ssl_policy=lst.get("SslPolicy") if lst.get("Protocol") in ("HTTPS", "TLS") else None,
        certificates=[c["CertificateArn"] for c in lst.get("Certificates", []) if c.get("CertificateArn")],
        default_actions=[action_model(a) for a in lst.get("DefaultActions", [])],
        account=account_of(lst["ListenerArn"]), region=region,
    )

def listener_rule(rule: dict[str, Any], region: str) -> ListenerRule:
    listener_arn = rule["RuleArn"].replace(":listener-rule/", ":listener/").rsplit("/", 1)[0]
    return ListenerRule(
        arn=rule["RuleArn"], listener_arn=listener_arn, priority=str(rule.get("Priority", "default")),
        is_default=bool(rule.get("IsDefault")), conditions=rule.get("Conditions", []),
        actions=[action_model(a) for a in rule.get("Actions", [])],
        account=account_of(rule["RuleArn"]), region=region,
    )

def target_group(tg: dict[str, Any], tags: dict[str, str], attrs: dict[str, str], region: str) -> TargetGroup:
    matcher = tg.get("Matcher", {})
    return TargetGroup(
        arn=tg["TargetGroupArn"], name=tg["TargetGroupName"], port=tg.get("Port"),
        protocol=tg.get("Protocol", "HTTP"), protocol_version=tg.get("ProtocolVersion", "HTTP1"),
        target_type=tg.get("TargetType", "instance"), vpc_id=tg.get("VpcId", ""),
        load_balancer_arns=sorted(set(tg.get("LoadBalancerArns", []))),  # moto may repeat them
        health_check=HealthCheck(
            enabled=tg.get("HealthCheckEnabled", True), protocol=tg.get("HealthCheckProtocol", "HTTP"),
            port=str(tg.get("HealthCheckPort", "traffic-port")), path=tg.get("HealthCheckPath", "/"),
            interval_seconds=tg.get("HealthCheckIntervalSeconds", 30),
            timeout_seconds=tg.get("HealthCheckTimeoutSeconds", 5),
            healthy_threshold=tg.get("HealthyThresholdCount", 5),
            unhealthy_threshold=tg.get("UnhealthyThresholdCount", 2),
            matcher=matcher.get("HttpCode") or matcher.get("GrpcCode") or "200",
        ),
        attributes=attrs, tags=tags, account=account_of(tg["TargetGroupArn"]), region=region,
    )

def security_group(sg: dict[str, Any], region: str) -> SecurityGroup:
    return SecurityGroup(
        id=sg["GroupId"], name=sg.get("GroupName", ""), vpc_id=sg.get("VpcId", ""),
        description=sg.get("Description", ""), tags=tags_of(sg.get("Tags")),
        ingress=[r for p in sg.get("IpPermissions", []) for r in sg_rules(p)],
        egress=[r for p in sg.get("IpPermissionsEgress", []) for r in sg_rules(p)],
        account=sg.get("OwnerId", ""), region=region,
    )

def instance(instance: dict[str, Any], region: str) -> Instance:
    return Instance(
        id=instance["InstanceId"], private_ip=instance.get("PrivateIpAddress"),
        state=instance.get("State", {}).get("Name", "unknown"), instance_type=instance.get("InstanceType"),
        subnet_id=instance.get("SubnetId"), vpc_id=instance.get("VpcId"),
        security_groups=[g["GroupId"] for g in instance.get("SecurityGroups", [])],
        tags=tags_of(instance.get("Tags")), account=instance.get("OwnerId", ""), region=region,
    )

def ecs_service(service: dict[str, Any], definition: dict[str, Any] | None, region: str,
                redactor: Redactor) -> EcsService:
    network = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
    task = None
    if definition:
        task = TaskDefinition(
            family=definition.get("family", ""), revision=definition.get("revision", 1),
            network_mode=definition.get("networkMode", "bridge"),
            containers=containers(definition.get("containerDefinitions", []), redactor),
        )
    return EcsService(
        arn=service["serviceArn"], cluster=service.get("clusterArn", ""), name=service.get("serviceName", ""),
        launch_type=service.get("launchType"), desired_count=service.get("desiredCount", 0),
        security_groups=network.get("securityGroups", []),
        load_balancers=[EcsLoadBalancer(target_group_arn=lb["targetGroupArn"], container_name=lb["containerName"],
                                        container_port=lb["containerPort"])
                        for lb in service.get("loadBalancers", []) if lb.get("targetGroupArn")],
        task_definition=task, account=account_of(service["serviceArn"]), region=region,
    )
