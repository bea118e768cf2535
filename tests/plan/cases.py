"""The plan-gate cases: each one change to the estate in terraform/ (its variables), and what
`audit gate prod --plan` must answer: the exit code, the gating findings (rule, resource, slot), the
Terraform address every one of them names, and the addresses the plan changes in this environment."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Case:
    variables: dict[str, str]
    code: int
    failing: list[tuple[str, str, str | None]] = field(default_factory=list)
    behind: str = ""  # the address every failing finding names
    changes: list[str] = field(default_factory=list)  # addresses the plan changes in this environment


CASE = {
    # A target-group port change (a replacement) leaves the live slot unserved: nginx listens on 80 only.
    "port-unserved": Case({"tg_port": "8080"}, 1, [("P101", "target_group:web-*-tg", "blue")],
                          "aws_lb_target_group.web", ["aws_lb_target_group.web", "aws_lb_target_group_attachment.web"]),
    # A health-check path the app does not serve (nginx proxies everything; the app answers /health).
    "health-path-unrouted": Case({"health_path": "/healthz"}, 1, [("P103", "target_group:web-*-tg", None)],
                                 "aws_lb_target_group.web", ["aws_lb_target_group.web"]),
    # The rule that lets the ALB's group reach the targets' group is removed: both target groups lose it.
    "alb-rule-removed": Case({"alb_to_app": "false"}, 1, [("P106", "ecs_service:*/worker", None),
                                                          ("P106", "target_group:web-*-tg", None)],
                             "aws_security_group_rule.alb_to_app[0]", ["aws_security_group_rule.alb_to_app[0]"]),
    # The web listener moves to 9000 while the ALB's own group admits only 80 and 8080-8089: nobody
    # reaches it (P120). The near miss moves it to 8085, which the group admits.
    "listener-port-closed": Case({"http_port": "9000"}, 1, [("P120", "listener:web-*-alb:9000", None)],
                                 "aws_lb_listener.http", ["aws_lb_listener.http"]),
    "listener-port-admitted": Case({"http_port": "8085"}, 0, changes=["aws_lb_listener.http"]),
    # Near miss: tags only.
    "tags-only": Case({"extra_tags": '{"Team":"web"}'}, 0, changes=["aws_lb_target_group.web"]),
    # A new target group and listener rule that nginx and the app serve.
    "new-group-served": Case({"api_group": "true"}, 0, changes=[
        "aws_lb_listener_rule.api[0]", "aws_lb_target_group.api[0]", "aws_lb_target_group_attachment.api[0]"]),
    # A replaced target group (a new name) that serves the live slot: passes, with the health-check note.
    "group-replaced": Case({"tg_name": "web-prod-tg-v2"}, 0,
                           changes=["aws_lb_target_group.web", "aws_lb_target_group_attachment.web"]),
    # A task definition whose container port no longer matches the service's target group.
    "task-port-mismatch": Case({"worker_port": "9090"}, 1, [("P110", "ecs_service:*/worker", None)],
                               "aws_ecs_task_definition.worker", ["aws_ecs_service.worker"]),
    # A health-check path known only after apply: the gate cannot decide.
    "unknown-until-apply": Case({"health_path_after_apply": "true"}, 2, changes=["aws_lb_target_group.web"]),
    # Nothing the rules read changes (moto reads the ECS service back with a perpetual diff).
    "no-change": Case({}, 0),
}

APP = 'module.alb.aws_lb_target_group.this["app"]'
INSTANCE_RULE = "aws_vpc_security_group_ingress_rule.alb_to_app[0]"
API = 'module.alb.aws_lb_target_group.this["api"]'
LISTENER = 'module.alb.aws_lb_listener.this["http"]'
ATTACHED = ["aws_lb_target_group_attachment.web[0]", "aws_lb_target_group_attachment.web[1]"]
API_ATTACHED = ["aws_lb_target_group_attachment.api[0]", "aws_lb_target_group_attachment.api[1]"]
# The estate in modules/, built with terraform-aws-modules/alb v9.17.0: every action a `dynamic` block,
# target groups named by name_prefix (a live one is `app-` and 26 digits: written `app-…` here), root
# attachments through the module's output. Each was a false PASS, an internal error or an unknown
# before issue #27.
MODULE_CASE = {
    # The listener moves to 8080; the module's group admits 80 only: nobody reaches it.
    "listener-port-closed": Case({"listener_port": "8080"}, 1, [("P120", "listener:web-*-alb:8080", None)],
                                 LISTENER, [LISTENER]),
    # The instances' rule from the ALB's group narrowed from 3000 to 4000.
    "instance-rule-narrowed": Case({"instance_port": "4000"}, 1, [("P106", "target_group:app-…", None)],
                                   INSTANCE_RULE, [INSTANCE_RULE]),
    # The instances' rule from the ALB's group removed: nothing admits the ALB.
    "instance-rule-removed": Case({"instance_rule": "false"}, 1, [("P106", "target_group:app-…", None)],
                                  INSTANCE_RULE, [INSTANCE_RULE]),
    # A second security group on the ALB (the module's `security_groups` input, beside its own), which
    # the instances admit on 3000: the load balancer's groups become a list resolved element by element.
    "alb-group-added": Case({"extra_alb_sg": "true"}, 0, changes=[
        "aws_security_group.alb_extra[0]", "module.alb.aws_lb.this[0]",
        "aws_vpc_security_group_ingress_rule.extra_to_app[0]"]),
    # The group's port 3000 -> 8080 (a replacement, name and protocol_version unknown until apply; the
    # attachments follow the module's output): nothing serves 8080 and the instances' group admits 3000.
    "group-port-unserved": Case({"app_port": "8080"}, 1, [("P101", "target_group:app-", None),
                                                         ("P106", "target_group:app-", None)], APP, [APP, *ATTACHED]),
    "health-path-unrouted": Case({"health_path": "/healthz"}, 1, [("P103", "target_group:app-…", None)], APP, [APP]),
    "tags-only": Case({"extra_tags": '{"Team":"web"}'}, 0, changes=[APP]),
    # A new group and a /api/* rule through the module, attached through its output, served on 3000.
    "new-group-served": Case({"api_group": "true"}, 0,
                             changes=[API, 'module.alb.aws_lb_listener_rule.this["http/api"]', *API_ATTACHED]),
    # The listener's forward moved to that new group, on 8080, which nothing serves.
    "forward-moved-unserved": Case({"api_group": "true", "forward_to": "api", "api_port": "8080"}, 1,
                                   [("P101", "target_group:api-", None), ("P106", "target_group:api-", None)], API,
                                   [API, LISTENER, 'module.alb.aws_lb_listener_rule.this["http/api"]', *API_ATTACHED]),
    "no-change": Case({}, 0),
}

ASG = "module.asg.aws_autoscaling_group.this[0]"
ASG_ATTACHMENT = "aws_autoscaling_attachment.web"
# The estate in asg/: terraform-aws-modules/autoscaling v8.3.1 behind the ALB module, its two instances
# registered in "app" by a root aws_autoscaling_attachment through the module's output. Its instances are
# the targets of whatever group it joins, on that group's port (issue #27).
ASG_CASE = {
    # "app" moves to 8080 (a replacement): the group's instances follow it there, where nothing listens.
    "group-port-unserved": Case({"app_port": "8080"}, 1, [("P101", "target_group:app-", None),
                                                         ("P106", "target_group:app-", None)], APP,
                                [APP, ASG_ATTACHMENT]),
    # ELB health checks for the group: nothing on the path changes.
    "health-check-type": Case({"health_check_type": "ELB"}, 0),
    # The group leaves "app" (which the listener forwards to) for a new "api" on 8080: "app" is empty.
    "group-swapped": Case({"api_group": "true", "api_port": "8080", "attach_to": "api"}, 1,
                          [("P111", "target_group:app-…", None)], ASG_ATTACHMENT, [API, ASG_ATTACHMENT]),
    # The module's own traffic source joins a new "api" on 3000, which the instances serve.
    "traffic-source-served": Case({"api_group": "true", "traffic_source": "api"}, 0,
                                  changes=[API, 'module.asg.aws_autoscaling_traffic_source_attachment.this["extra"]']),
    "no-change": Case({}, 0),
}
