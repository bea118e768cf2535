"""Terraform attributes → the snapshot's models: a planned load balancer, listener, rule, target group,
attachment, security group (and rule), task definition or ECS service as collection would have read it."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from auditor.model.aws_shapes import action_model, containers, sg_rules
from auditor.model.snapshot import (
    AWS_DEFAULTS,
    EcsLoadBalancer,
    EcsService,
    HealthCheck,
    Listener,
    ListenerRule,
    LoadBalancer,
    Redactor,
    SecurityGroup,
    SgRule,
    Subnet,
    TargetGroup,
    TargetHealth,
    TaskDefinition,
)
from auditor.outcomes import Unknown
from auditor.plan.read import PLANNED, Values


def _own_id(v: Values, attribute: str = "arn") -> str:
    return v.get(attribute) or v.get("id") or PLANNED + v.address


def _tags(v: Values) -> dict[str, str]:
    return {str(k): str(val) for k, val in (v.get("tags") or {}).items()}


def load_balancer(v: Values) -> LoadBalancer:
    terraform = {"idle_timeout.timeout_seconds": ("idle_timeout",),
                 "deletion_protection.enabled": ("enable_deletion_protection",),
                 "routing.http.drop_invalid_header_fields.enabled": ("drop_invalid_header_fields",),
                 "routing.http.desync_mitigation_mode": ("desync_mitigation_mode",),
                 "access_logs.s3.enabled": ("access_logs", 0, "enabled")}
    attributes = {name: v.get(*path, default=AWS_DEFAULTS[name]) for name, path in terraform.items()}
    return LoadBalancer(
        arn=_own_id(v), name=v.get("name", default=v.address), type=v.get("load_balancer_type", default="application"),
        scheme="internal" if v.get("internal", default=False) else "internet-facing",
        vpc_id=v.get("vpc_id", default=""), security_groups=v.get("security_groups", default=[]),
        subnets=[Subnet(id=s) for s in v.get("subnets", default=[])], tags=_tags(v),
        attributes={k: str(val).lower() if isinstance(val, bool) else str(val) for k, val in attributes.items()},
    )


def _action(v: Values, path: tuple[Any, ...]) -> dict[str, Any]:
    """A Terraform action block in the API's shape, read by the collector's own reader."""
    shape: dict[str, Any] = {"Type": v.get(*path, "type", default=""), "Order": v.get(*path, "order")}
    if v.get(*path, "target_group_arn"):
        shape["TargetGroupArn"] = v.get(*path, "target_group_arn")
    groups = [{"TargetGroupArn": v.get(*g, "arn"), "Weight": v.get(*g, "weight", default=1)}
              for f in v.blocks(*path, "forward") for g in v.blocks(*f, "target_group")]
    if groups:
        shape["ForwardConfig"] = {"TargetGroups": groups}
    for block, key, fields in (("redirect", "RedirectConfig", ("protocol", "port", "host", "path", "query",
                                                               "status_code")),
                               ("fixed_response", "FixedResponseConfig", ("content_type", "status_code"))):
        for b in v.blocks(*path, block):
            shape[key] = {"".join(w.title() for w in f.split("_")): v.get(*b, f) for f in fields}
    return shape


def listener(v: Values) -> Listener:
    certificate = v.get("certificate_arn")
    return Listener(
        arn=_own_id(v), load_balancer_arn=v.get("load_balancer_arn", default=""), port=v.get("port", default=0),
        protocol=v.get("protocol", default="HTTP"), ssl_policy=v.get("ssl_policy") if certificate else None,
        certificates=[certificate] if certificate else [],
        default_actions=[action_model(_action(v, p)) for p in v.blocks("default_action")],
    )


_CONDITIONS = {"path_pattern": ("path-pattern", "PathPatternConfig"), "host_header": ("host-header", "HostHeaderConfig"),
               "http_request_method": ("http-request-method", "HttpRequestMethodConfig"),
               "source_ip": ("source-ip", "SourceIpConfig")}


def _condition(v: Values, path: tuple[Any, ...]) -> list[dict[str, Any]]:
    out = []
    for name, (field_name, key) in _CONDITIONS.items():
        for b in v.blocks(*path, name):
            values = sorted(v.get(*b, "values", default=[]))
            out.append({"Field": field_name, "Values": values, key: {"Values": values}})
    for b in v.blocks(*path, "http_header"):
        out.append({"Field": "http-header", "HttpHeaderConfig": {
            "HttpHeaderName": v.get(*b, "http_header_name"), "Values": sorted(v.get(*b, "values", default=[]))}})
    for b in v.blocks(*path, "query_string"):
        out.append({"Field": "query-string", "QueryStringConfig": {"Values": [
            {"Key": v.get(*q, "key"), "Value": v.get(*q, "value")} for q in v.blocks(*b)]}})
    return out


def listener_rule(v: Values) -> ListenerRule:
    return ListenerRule(
        arn=_own_id(v), listener_arn=v.get("listener_arn", default=""), priority=str(v.get("priority", default="")),
        conditions=[c for p in v.blocks("condition") for c in _condition(v, p)],
        actions=[action_model(_action(v, p)) for p in v.blocks("action")],
    )


def target_group(v: Values) -> TargetGroup:
    hc = ("health_check", 0)
    attributes = {name: v.get(argument, default=AWS_DEFAULTS[name]) for name, argument in
                  (("deregistration_delay.timeout_seconds", "deregistration_delay"),
                   ("slow_start.duration_seconds", "slow_start"))}
    return TargetGroup(
        arn=_own_id(v), name=v.get("name", default=v.address), port=v.get("port"),
        protocol=v.get("protocol", default="HTTP"), protocol_version=v.get("protocol_version", default="HTTP1"),
        target_type=v.get("target_type", default="instance"), vpc_id=v.get("vpc_id", default=""),
        health_check=HealthCheck(
            enabled=v.get(*hc, "enabled", default=True), protocol=v.get(*hc, "protocol", default="HTTP"),
            port=str(v.get(*hc, "port", default="traffic-port")), path=v.get(*hc, "path", default="/"),
            interval_seconds=v.get(*hc, "interval", default=30), timeout_seconds=v.get(*hc, "timeout", default=5),
            healthy_threshold=v.get(*hc, "healthy_threshold", default=5),
            unhealthy_threshold=v.get(*hc, "unhealthy_threshold", default=2),
            matcher=v.get(*hc, "matcher", default="200")),
        attributes={k: str(val) for k, val in attributes.items()}, tags=_tags(v),
    )


def attachment(v: Values) -> TargetHealth:
    # Registered, not yet checked: AWS's state for a target that has just joined a group.
    return TargetHealth(target_group_arn=v.get("target_group_arn", default=""), target_id=v.get("target_id", default=""),
                        port=v.get("port"), availability_zone=v.get("availability_zone"), state="initial",
                        reason="Elb.RegistrationInProgress")


def group_registrations(v: Values, kind: str) -> tuple[str, list[str]]:
    """An Auto Scaling group's name and the target groups it registers its instances in: an attachment's
    one, or the group's own `target_group_arns` and elbv2 `traffic_source` blocks."""
    if kind == "aws_autoscaling_attachment":
        arn = v.get("lb_target_group_arn")
        return v.get("autoscaling_group_name", default=""), [arn] if arn else []
    sources = [v.get(*path, "identifier", default="") for path in v.blocks("traffic_source")
               if v.get(*path, "type") == "elbv2"]
    if kind == "aws_autoscaling_traffic_source_attachment":
        return v.get("autoscaling_group_name", default=""), sources
    return v.get("name", default=""), list(v.get("target_group_arns", default=[])) + sources


def _permission(v: Values, path: tuple[Any, ...], group: str) -> dict[str, Any]:
    """An inline ingress/egress block as an IpPermission."""
    groups = list(v.get(*path, "security_groups", default=[])) + ([group] if v.get(*path, "self") else [])
    return {"IpProtocol": v.get(*path, "protocol", default="-1"), "FromPort": v.get(*path, "from_port"),
            "ToPort": v.get(*path, "to_port"),
            "IpRanges": [{"CidrIp": c} for c in v.get(*path, "cidr_blocks", default=[])],
            "Ipv6Ranges": [{"CidrIpv6": c} for c in v.get(*path, "ipv6_cidr_blocks", default=[])],
            "UserIdGroupPairs": [{"GroupId": g} for g in groups],
            "PrefixListIds": [{"PrefixListId": p} for p in v.get(*path, "prefix_list_ids", default=[])]}


def without_description(rules: list[SgRule]) -> list[SgRule]:
    return [msgspec.structs.replace(r, description=None) for r in rules]


def security_group(v: Values) -> SecurityGroup:
    group = _own_id(v, "id")
    return SecurityGroup(
        id=group, name=v.get("name", default=v.address), vpc_id=v.get("vpc_id", default=""),
        description=v.get("description", default=""), tags=_tags(v),
        ingress=without_description([r for p in v.blocks("ingress") for r in sg_rules(_permission(v, p, group))]),
        egress=without_description([r for p in v.blocks("egress") for r in sg_rules(_permission(v, p, group))]),
    )


def security_group_rule(v: Values, resource_type: str) -> tuple[str, str, list[SgRule]]:
    """(group id, ingress|egress, its normalized rules) of a separate rule resource."""
    group = v.get("security_group_id", default="")
    if resource_type == "aws_security_group_rule":
        permission = _permission(v, (), group)
        source = v.get("source_security_group_id")
        if source:
            permission["UserIdGroupPairs"].append({"GroupId": source})
        return group, v.get("type", default="ingress"), without_description(sg_rules(permission))
    direction = "ingress" if resource_type.endswith("ingress_rule") else "egress"
    permission = {"IpProtocol": str(v.get("ip_protocol", default="-1")), "FromPort": v.get("from_port"),
                  "ToPort": v.get("to_port"),
                  "IpRanges": [{"CidrIp": v.get("cidr_ipv4")}] if v.get("cidr_ipv4") else [],
                  "Ipv6Ranges": [{"CidrIpv6": v.get("cidr_ipv6")}] if v.get("cidr_ipv6") else [],
                  "UserIdGroupPairs": [{"GroupId": v.get("referenced_security_group_id")}]
                  if v.get("referenced_security_group_id") else [],
                  "PrefixListIds": [{"PrefixListId": v.get("prefix_list_id")}] if v.get("prefix_list_id") else []}
    return group, direction, without_description(sg_rules(permission))


def task_definition(v: Values, redactor: Redactor) -> TaskDefinition:
    text = v.get("container_definitions", default="[]")
    try:
        definitions = json.loads(text) if isinstance(text, str) else []
    except json.JSONDecodeError:
        v.unknown.append(Unknown(v.address, "container_definitions"))
        definitions = []
    return TaskDefinition(
        family=v.get("family", default=""), revision=v.get("revision", default=0),
        network_mode=v.get("network_mode", default="bridge"),
        containers=containers(definitions, redactor),
    )


def ecs_service(v: Values) -> EcsService:
    return EcsService(
        arn=_own_id(v, "id"), cluster=v.get("cluster", default=""), name=v.get("name", default=v.address),
        launch_type=v.get("launch_type"), desired_count=v.get("desired_count", default=0),
        security_groups=v.get("network_configuration", 0, "security_groups", default=[]),
        load_balancers=[EcsLoadBalancer(target_group_arn=v.get(*p, "target_group_arn", default=""),
                                        container_name=v.get(*p, "container_name", default=""),
                                        container_port=v.get(*p, "container_port", default=0))
                        for p in v.blocks("load_balancer")],
        tags=_tags(v),
    )
