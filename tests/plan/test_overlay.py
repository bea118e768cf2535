"""The overlay on hand-written plans, for what the terraform estate does not show: modules, another
environment's resources in the same plan, references that stay unknown, rules read back with new ids,
and plan files that are not plans."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec

from auditor import plan
from auditor.plan.read import Plan
from auditor.model import snapshot
from tests.plan.conftest import PLANS
from tests.test_cli import assert_one_line_error, audit

BASE = snapshot.load(PLANS / "snapshot.json")
LISTENER = next(l for l in BASE.resources.listeners if l.port == 80)
APP_SG = next(g for g in BASE.resources.security_groups if g.name == "web-prod-app")
ALB_SG = next(g for g in BASE.resources.security_groups if g.name == "web-prod-alb")


def change(address: str, actions: list[str], before: Any, after: Any, unknown: dict[str, Any] | None = None):
    kind = address.split(".")[-2]
    return {"address": address, "mode": "managed", "type": kind,
            "change": {"actions": actions, "before": before, "after": after, "after_unknown": unknown or {}}}


def tg(name: str, tags: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "port": 80, "protocol": "HTTP", "target_type": "instance", "tags": tags,
            "health_check": [{"path": "/health", "matcher": "200", "port": "traffic-port", "protocol": "HTTP"}]}


def test_a_module_rule_forwards_to_the_group_it_creates_and_another_environments_group_stays_out():
    data = {"format_version": "1.2", "resource_changes": [
        change("module.web.aws_lb_target_group.green", ["create"], None, tg("web-prod-green", {}), {"arn": True}),
        change("module.web.aws_lb_listener_rule.green", ["create"], None, {
            "listener_arn": LISTENER.arn, "priority": 20,
            "action": [{"type": "forward"}], "condition": [{"host_header": [{"values": ["green.example.com"]}]}]},
            {"arn": True, "action": [{"target_group_arn": True}]}),
        change("aws_lb_target_group.dev", ["create"], None, tg("web-dev-tg", {"Environment": "dev"}), {"arn": True}),
    ], "configuration": {"root_module": {"module_calls": {"web": {"module": {"resources": [
        {"address": "aws_lb_listener_rule.green", "expressions": {"action": [{"target_group_arn": {
            "references": ["aws_lb_target_group.green.arn", "aws_lb_target_group.green"]}}]}},
    ]}}}}}}
    planned = plan.apply(BASE, data, {"Environment": "prod"})
    rule = next(r for r in planned.snapshot.resources.listener_rules if r.priority == "20")
    assert [t.arn for a in rule.actions for t in a.target_groups] == ["planned:module.web.aws_lb_target_group.green"]
    assert rule.conditions[0]["Field"] == "host-header"
    assert [c.address for c in planned.changes] == ["module.web.aws_lb_target_group.green",
                                                    "module.web.aws_lb_listener_rule.green"]
    assert planned.outside == ["aws_lb_target_group.dev"]
    assert planned.unknown == []


def test_a_reference_to_something_the_plan_does_not_hold_stays_unknown():
    data = {"format_version": "1.2", "resource_changes": [
        change("aws_lb_listener_rule.x", ["create"], None, {
            "listener_arn": LISTENER.arn, "priority": 30, "action": [{"type": "forward"}],
            "condition": [{"path_pattern": [{"values": ["/x/*"]}]}]}, {"arn": True, "action": [{"target_group_arn": True}]}),
    ], "configuration": {"root_module": {"resources": [{"address": "aws_lb_listener_rule.x", "expressions": {
        "action": [{"target_group_arn": {"references": ["data.aws_lb_target_group.shared.arn"]}}]}}]}}}
    planned = plan.apply(BASE, data, {"Environment": "prod"})
    assert [str(u) for u in planned.unknown] == ["aws_lb_listener_rule.x.action[0].target_group_arn"]


def test_rules_read_back_with_new_ids_change_nothing_and_a_removed_one_is_named():
    rule = {"security_group_id": APP_SG.id, "ip_protocol": "tcp", "from_port": 80, "to_port": 80,
            "referenced_security_group_id": ALB_SG.id}
    same = change("aws_vpc_security_group_ingress_rule.web", ["delete", "create"], {**rule, "id": "sgr-1"},
                  rule, {"id": True})
    gone = change("aws_security_group_rule.alb_to_app", ["delete"], {
        "type": "ingress", "security_group_id": APP_SG.id, "protocol": "tcp", "from_port": 0, "to_port": 65535,
        "source_security_group_id": ALB_SG.id}, None)
    planned = plan.apply(BASE, {"format_version": "1.2", "resource_changes": [same, gone]}, {"Environment": "prod"})
    assert [str(c) for c in planned.changes] == [
        f"aws_security_group_rule.alb_to_app: removes ingress tcp 0-65535 from {ALB_SG.id} (web-prod-alb)"]
    app = next(g for g in planned.snapshot.resources.security_groups if g.id == APP_SG.id)
    assert not any(r.source_group == ALB_SG.id for r in app.ingress)


def test_a_peer_group_named_with_its_account_is_the_group_the_snapshot_holds():
    # A provider that does not know its account (or a peer in another account) writes `ACCOUNT/sg-…`;
    # AWS's answer in the snapshot says `sg-…`. The removal must still remove that rule, and the
    # near miss (the same rule written without the account) reads the same.
    for peer in (f"123456789012/{ALB_SG.id}", ALB_SG.id):
        gone = change("aws_security_group_rule.alb_to_app", ["delete"], {
            "type": "ingress", "security_group_id": APP_SG.id, "protocol": "tcp", "from_port": 0, "to_port": 65535,
            "source_security_group_id": peer}, None)
        planned = plan.apply(BASE, {"format_version": "1.2", "resource_changes": [gone]}, {"Environment": "prod"})
        assert [str(c) for c in planned.changes] == [
            f"aws_security_group_rule.alb_to_app: removes ingress tcp 0-65535 from {ALB_SG.id} (web-prod-alb)"]
        app = next(g for g in planned.snapshot.resources.security_groups if g.id == APP_SG.id)
        assert not any(r.source_group == ALB_SG.id for r in app.ingress), peer


def test_a_file_that_is_not_a_plan_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text("{not json")
    args = ("gate", "prod", "--snapshot", str(PLANS / "snapshot.json"), "-c", str(PLANS.parent / "estate" / "audit.yaml"))
    assert_one_line_error(audit(*args, "--plan", str(bad)), str(bad), "not valid JSON", "terraform show -json")
    bad.write_text(json.dumps({"resources": []}))
    assert_one_line_error(audit(*args, "--plan", str(bad)), str(bad), "not a Terraform JSON plan")
    assert_one_line_error(audit(*args, "--plan", str(tmp_path / "none.json")), "none.json", "not found")


def test_a_service_and_its_group_created_for_another_environment_do_not_vouch_for_each_other():
    service = {"name": "worker", "cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/dev", "desired_count": 1,
               "tags": {"Environment": "dev"}, "load_balancer": [{"container_name": "w", "container_port": 80}]}
    data = {"format_version": "1.2", "resource_changes": [
        change("aws_lb_target_group.dev", ["create"], None, tg("worker-dev-tg", {"Environment": "dev"}), {"arn": True}),
        change("aws_ecs_service.dev", ["create"], None, service,
               {"id": True, "load_balancer": [{"target_group_arn": True}]}),
    ], "configuration": {"root_module": {"resources": [{"address": "aws_ecs_service.dev", "expressions": {
        "load_balancer": [{"target_group_arn": {"references": ["aws_lb_target_group.dev.arn"]}}]}}]}}}
    planned = plan.apply(BASE, data, {"Environment": "prod"})
    assert planned.outside == ["aws_ecs_service.dev", "aws_lb_target_group.dev"]
    assert planned.changes == [] and planned.unknown == []


def test_for_each_instances_refer_to_their_own_key_and_an_unknown_arn_is_matched_by_name():
    rule = {"listener_arn": LISTENER.arn, "action": [{"type": "forward"}],
            "condition": [{"host_header": [{"values": ["x.example.com"]}]}]}
    data = {"format_version": "1.2", "resource_changes": [
        change('aws_lb_target_group.slot["blue"]', ["create"], None, tg("web-prod-blue", {}), {"arn": True}),
        change('aws_lb_target_group.slot["green"]', ["create"], None, tg("web-prod-green", {}), {"arn": True}),
        change('aws_lb_listener_rule.slot["blue"]', ["create"], None, {**rule, "priority": 41},
               {"arn": True, "action": [{"target_group_arn": True}]}),
        change('aws_lb_listener_rule.slot["green"]', ["create"], None, {**rule, "priority": 42},
               {"arn": True, "action": [{"target_group_arn": True}]}),
        # a state whose ARN is not the snapshot's (another copy of the account): matched by name
        change("aws_lb_target_group.web", ["update"], {**tg("web-prod-tg", {}), "arn": "arn:other"},
               {**tg("web-prod-tg", {}), "arn": "arn:other", "port": 8080}),
    ], "configuration": {"root_module": {"resources": [{"address": "aws_lb_listener_rule.slot", "expressions": {
        "action": [{"target_group_arn": {"references": ["aws_lb_target_group.slot[each.key].arn",
                                                        "aws_lb_target_group.slot"]}}]}}]}}}
    planned = plan.apply(BASE, data, {"Environment": "prod"})
    forwards = {r.priority: [t.arn for a in r.actions for t in a.target_groups]
                for r in planned.snapshot.resources.listener_rules}
    assert forwards["41"] == ['planned:aws_lb_target_group.slot["blue"]']
    assert forwards["42"] == ['planned:aws_lb_target_group.slot["green"]']
    web = next(t for t in planned.snapshot.resources.target_groups if t.name == "web-prod-tg")
    assert web.port == 8080 and "aws_lb_target_group.web: port 80 → 8080" in [str(c) for c in planned.changes]


def _dynamic_listener(*groups: str) -> dict[str, Any]:
    """terraform-aws-modules/alb's shape: the listener's forward comes from a `dynamic "default_action"`
    block, so the configuration has no expression for it, and its target group is created in the plan."""
    before = {"arn": LISTENER.arn, "load_balancer_arn": LISTENER.load_balancer_arn, "port": 80, "protocol": "HTTP",
              "default_action": [{"type": "forward", "target_group_arn": LISTENER.default_actions[0].target_groups[0].arn}]}
    after = {**before, "default_action": [{"type": "forward"}]}
    changes = [change(f"module.alb.aws_lb_target_group.this[\"{g}\"]", ["create"], None, tg(f"web-prod-{g}", {}),
                      {"arn": True}) for g in groups]
    changes.append(change("module.alb.aws_lb_listener.this[\"http\"]", ["update"], before, after,
                          {"default_action": [{"target_group_arn": True}]}))
    return {"format_version": "1.2", "resource_changes": changes, "configuration": {"root_module": {"module_calls": {
        "alb": {"module": {"resources": [{"address": "aws_lb_listener.this", "expressions": {
            "load_balancer_arn": {"references": ["aws_lb.this[0].arn"]}, "port": {"references": ["each.value.port"]}}}]}}}}}}


def test_a_forward_a_dynamic_block_writes_goes_to_the_one_group_the_plan_creates():
    planned = plan.apply(BASE, _dynamic_listener("app"), {"Environment": "prod"})
    listener = next(l for l in planned.snapshot.resources.listeners if l.arn == LISTENER.arn)
    assert [t.arn for t in listener.default_actions[0].target_groups] == [
        'planned:module.alb.aws_lb_target_group.this["app"]']
    assert planned.unknown == []


def test_a_forward_a_dynamic_block_writes_with_two_new_groups_is_unknown_never_the_default():
    planned = plan.apply(BASE, _dynamic_listener("app", "api"), {"Environment": "prod"})
    assert [str(u) for u in planned.unknown] == [
        'module.alb.aws_lb_listener.this["http"].default_action[0].target_group_arn']


def test_a_list_of_references_is_resolved_element_by_element_and_a_variable_in_it_is_unknown():
    lb = BASE.resources.load_balancers[0]
    before = {"arn": lb.arn, "name": lb.name, "internal": False, "load_balancer_type": "application",
              "security_groups": list(lb.security_groups), "subnets": [s.id for s in lb.subnets]}
    new_group = {"name": "web-prod-alb-2", "vpc_id": lb.vpc_id, "ingress": [], "egress": [], "tags": {}}
    for references, unknown in ((["aws_security_group.this[0].id", "aws_security_group.this[0]",
                                  "aws_security_group.this"], []),
                                (["aws_security_group.this[0].id", "aws_security_group.this[0]",
                                  "aws_security_group.this", "var.security_groups"], ["aws_lb.web.security_groups"])):
        data = {"format_version": "1.2", "resource_changes": [
            change("aws_security_group.this[0]", ["create"], None, new_group, {"id": True}),
            change("aws_lb.web", ["update"], before, {**before, "security_groups": None}, {"security_groups": True}),
        ], "configuration": {"root_module": {"resources": [{"address": "aws_lb.web", "expressions": {
            "security_groups": {"references": references}}}]}}}
        planned = plan.apply(BASE, data, {"Environment": "prod"})  # was a ValidationError at $.security_groups
        assert [str(u) for u in planned.unknown] == unknown
        if not unknown:
            (web,) = [b for b in planned.snapshot.resources.load_balancers if b.arn == lb.arn]
            assert web.security_groups == ["planned:aws_security_group.this[0]"]


def test_a_value_of_a_shape_terraform_never_writes_is_one_line_naming_the_resource(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"format_version": "1.2", "resource_changes": [
        change("aws_lb_target_group.bad", ["create"], None, {**tg("web-prod-bad", {}), "tags": ["x"]}, {"arn": True})]}))
    args = ("gate", "prod", "--snapshot", str(PLANS / "snapshot.json"), "-c", str(PLANS.parent / "estate" / "audit.yaml"))
    assert_one_line_error(audit(*args, "--plan", str(bad)), f"{bad}: aws_lb_target_group.bad: a value this reader "
                          "does not understand")
    bad.write_text(json.dumps({"format_version": "1.2", "resource_changes": [
        change("aws_lb_target_group.bad", ["create"], None, {**tg("web-prod-bad", {}), "port": "eighty"}, {"arn": True})]}))
    assert_one_line_error(audit(*args, "--plan", str(bad)), f"{bad}: aws_lb_target_group.bad: a value this reader "
                          "does not understand", "port")


def test_a_name_from_name_prefix_and_an_unknown_protocol_version_do_not_make_the_gate_unknown():
    # terraform-aws-modules/alb: `name_prefix` (AWS appends a suffix) and `protocol_version =
    # try(each.value.protocol_version, null)`; a port change replaces the group. Neither is read by a
    # gating rule: the port change is judged, nothing is left unknown. Near miss: the port itself
    # unknown through a variable stays unknown, named.
    web = next(t for t in BASE.resources.target_groups if t.name == "web-prod-tg")
    before = {**tg("web-prod-tg", {}), "arn": web.arn}
    for port, unknown in ((8080, []), (None, ["aws_lb_target_group.web.port"])):
        after = {**tg(None, {}), "name_prefix": "web-", "port": port}
        after_unknown = {"arn": True, "name": True, "protocol_version": True, **({"port": True} if port is None else {})}
        data = {"format_version": "1.2", "resource_changes": [
            change("aws_lb_target_group.web", ["delete", "create"], before, after, after_unknown)],
            "configuration": {"root_module": {"resources": [{"address": "aws_lb_target_group.web", "expressions": {
                "name_prefix": {"constant_value": "web-"}, "port": {"references": ["var.port"]},
                "protocol_version": {"references": ["each.value.protocol_version", "each.value"]}}}]}}}
        planned = plan.apply(BASE, data, {"Environment": "prod"})
        assert [str(u) for u in planned.unknown] == unknown
        if port:
            assert any(t.name == "web-" and t.port == 8080 for t in planned.snapshot.resources.target_groups)


def test_a_modules_input_is_followed_to_its_caller_and_its_default():
    # terraform-aws-modules/alb: security_groups = concat(var.create_security_group ? [aws_security_group
    # .this[0].id] : [], var.security_groups). The call sets neither input: the defaults (true, []) add
    # nothing, so the ALB's groups are the one the module creates. Near miss: the caller passes a root
    # variable, which nothing here knows: unknown, named.
    lb = BASE.resources.load_balancers[0]
    before = {"arn": lb.arn, "name": lb.name, "internal": False, "load_balancer_type": "application",
              "security_groups": list(lb.security_groups), "subnets": [s.id for s in lb.subnets]}
    new_group = {"name": "web-prod-alb-2", "vpc_id": lb.vpc_id, "ingress": [], "egress": [], "tags": {}}
    references = ["var.create_security_group", "aws_security_group.this[0].id", "aws_security_group.this[0]",
                  "aws_security_group.this", "var.security_groups", "var.security_groups"]
    for call, unknown in (({}, []), ({"security_groups": {"references": ["var.extra_groups"]}},
                                     ["module.alb.aws_lb.this[0].security_groups"])):
        data = {"format_version": "1.2", "resource_changes": [
            change("module.alb.aws_security_group.this[0]", ["create"], None, new_group, {"id": True}),
            change("module.alb.aws_lb.this[0]", ["update"], before, {**before, "security_groups": None},
                   {"security_groups": True}),
        ], "configuration": {"root_module": {"module_calls": {"alb": {"expressions": call, "module": {
            "variables": {"create_security_group": {"default": True}, "security_groups": {"default": []}},
            "resources": [{"address": "aws_lb.this", "expressions": {
                "security_groups": {"references": references}}}]}}}}}}
        planned = plan.apply(BASE, data, {"Environment": "prod"})
        assert [str(u) for u in planned.unknown] == unknown
        if not unknown:
            (web,) = [b for b in planned.snapshot.resources.load_balancers if b.arn == lb.arn]
            assert web.security_groups == ["planned:module.alb.aws_security_group.this[0]"]


def test_an_auto_scaling_group_moving_between_groups_moves_the_instances_it_launched():
    # A group's instances are the snapshot's tagged with its name: they leave web-prod-tg and join
    # worker-prod-tg on that group's port. Near miss: a group the snapshot has no instance of yet.
    res = copy.deepcopy(BASE.resources)
    web, worker = res.target_groups
    (instance,) = res.instances
    instance.tags["aws:autoscaling:groupName"] = "web-asg"
    base = msgspec.structs.replace(BASE, resources=res)
    for name, unknown in (("web-asg", []), ("new-asg", ["aws_autoscaling_group.web.instances"])):
        group = {"name": name, "target_group_arns": [web.arn], "health_check_type": "EC2"}
        moved = change("aws_autoscaling_group.web", ["update"], group, {**group, "target_group_arns": [worker.arn]})
        planned = plan.apply(base, {"format_version": "1.2", "resource_changes": [moved]}, {"Environment": "prod"})
        health = [(h.target_group_arn, h.target_id, h.port) for h in planned.snapshot.resources.target_health]
        assert [str(u) for u in planned.unknown] == unknown
        if not unknown:
            assert health == [(worker.arn, instance.id, 8080)]
            assert [str(c) for c in planned.changes] == [
                f"aws_autoscaling_group.web: deregisters {instance.id} from web-prod-tg; registers {instance.id} of "
                "web-asg in worker-prod-tg on port 8080"]


def test_a_registration_in_a_group_nobody_can_name_is_unknown_not_outside():
    # The module's traffic source, its identifier an `each.value` of a map that refers to two groups.
    created = change("module.asg.aws_autoscaling_traffic_source_attachment.this[\"a\"]", ["create"], None,
                     {"autoscaling_group_name": "web-asg", "traffic_source": [{"type": "elbv2"}]},
                     {"traffic_source": [{"identifier": True}]})
    groups = [change(f"aws_lb_target_group.{k}", ["create"], None, tg(f"web-prod-{k}", {"Environment": "prod"}),
                     {"arn": True}) for k in "ab"]
    data = {"format_version": "1.2", "resource_changes": [*groups, created], "configuration": {"root_module": {
        "module_calls": {"asg": {"module": {"resources": [{
            "address": "aws_autoscaling_traffic_source_attachment.this",
            "for_each_expression": {"references": ["var.traffic_source_attachments"]},
            "expressions": {"traffic_source": [{"identifier": {"references": ["each.value.identifier", "each.value"]}}]},
        }]}, "expressions": {"traffic_source_attachments": {"references": [
            "aws_lb_target_group.a.arn", "aws_lb_target_group.a", "aws_lb_target_group.b.arn", "aws_lb_target_group.b"]}}}}}}}
    planned = plan.apply(BASE, data, {"Environment": "prod"})
    assert planned.outside == []
    assert [str(u) for u in planned.unknown] == [
        'module.asg.aws_autoscaling_traffic_source_attachment.this["a"].traffic_source[0].identifier']


def test_a_root_variable_beside_a_followed_reference_is_a_key_only_when_it_was_used_as_one():
    # `security_groups = [aws_security_group.x.id, var.extra]`: var.extra holds an id nobody can follow,
    # so the list is unknown; it is not taken for the key of an index.
    plan = Plan({"format_version": "1.2", "variables": {"extra": {"value": "sg-0123456789abcdef0"}}, "resource_changes": [
        change("aws_security_group.x", ["create"], None, {"name": "x"}, {"id": True})],
        "configuration": {"root_module": {"resources": [{"address": "aws_lb.web", "expressions": {
            "security_groups": {"references": ["aws_security_group.x.id", "aws_security_group.x", "var.extra"]}}}]}}})
    assert plan.references("aws_lb.web", ("security_groups",)) == (["aws_security_group.x"], False)
