"""Every rule of the catalog, yamllint/gixy style: a case that fires and a near miss one step on the
safe side that must stay quiet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from auditor.model import snapshot
from auditor.engine import evaluate
from auditor.engine.catalog import builtin_catalog
from auditor.outcomes import Finding
from auditor.config import RulesConfig
from tests.conftest import container, estate, fired, host

Data = dict[str, Any]


def res(d: Data, collection: str, index: int = 0) -> Data:
    return d["resources"][collection][index]


def location(d: Data, index: int = 0) -> Data:
    return host(d)["nginx"]["servers"][0]["locations"][index]


def https_listener(d: Data, policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06") -> None:
    lb, tg = res(d, "load_balancers"), res(d, "target_groups")
    sg_rule(d, next(sg["name"] for sg in d["resources"]["security_groups"] if sg["id"] == lb["security_groups"][0]),
            from_port=443, to_port=443, cidr="0.0.0.0/0")
    d["resources"]["listeners"].append({"arn": "l-443", "load_balancer_arn": lb["arn"], "port": 443,
                                        "protocol": "HTTPS", "ssl_policy": policy, "default_actions": [
                                            {"type": "forward", "target_groups": [{"arn": tg["arn"]}]}]})


def sg_rule(d: Data, name: str, **rule: Any) -> None:
    next(sg for sg in d["resources"]["security_groups"] if sg["name"] == name)["ingress"].append(
        {"protocol": "tcp", **rule})


def rules_10_20(d: Data, first: str) -> None:
    listener = res(d, "listeners")
    for priority, path in (("10", first), ("20", "/api/*")):
        d["resources"].setdefault("listener_rules", []).append({
            "arn": f"r{priority}", "listener_arn": listener["arn"], "priority": priority,
            "conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}}],
            "actions": [{"type": "forward", "target_groups": [{"arn": res(d, "target_groups")["arn"]}]}]})


def hc(d: Data, **values: Any) -> None:
    res(d, "target_groups")["health_check"].update(values)


def attr(collection: str, name: str, value: str) -> Callable[[Data], None]:
    return lambda d: res(d, collection)["attributes"].__setitem__(name, value)


def compose_nginx(mounted: list[str]) -> Callable[[Data], None]:
    """compose-names with nginx as the compose service `proxy`, the switch include mounted as given."""
    def change(d: Data) -> None:
        host(d)["nginx"].update(service="proxy", file_mounts=mounted)
        for c in host(d)["docker"]["containers"]:
            c["networks"] = {"default": []}
    return change


def nothing(d: Data) -> None:
    pass


PROD, DEV, ECS = "incident-prod", "incident-dev", "ecs-awsvpc"
# (rule, estate, make it fire, the near miss that must stay quiet)
CASES: list[tuple[str, str, Callable[[Data], None], Callable[[Data], None]]] = [
    ("P107", PROD,
     lambda d: (hc(d, port="8081"), host(d)["nginx"]["servers"][0]["listen"].append({"port": 8081})),
     lambda d: (hc(d, port="8081"), host(d)["nginx"]["servers"][0]["listen"].append({"port": 8081}),
                sg_rule(d, "web-prod-app-sg", from_port=8081, to_port=8081, source_group="sg-0alb0prod"))),
    ("P108", PROD, lambda d: res(d, "security_groups")["egress"].clear(),
     lambda d: res(d, "security_groups").__setitem__("egress", [
         {"protocol": "tcp", "from_port": 80, "to_port": 80, "source_group": "sg-0web0prod"}])),
    # By address: the egress CIDR must hold every target (10.20.0.11 and 10.20.1.12), not just one.
    ("P108", PROD, lambda d: res(d, "security_groups").__setitem__("egress", [
         {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "10.20.0.0/24"}]),
     lambda d: res(d, "security_groups").__setitem__("egress", [
         {"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "10.20.0.0/23"}])),
    ("P111", PROD, lambda d: d["resources"]["target_health"].clear(), nothing),
    # P120: the listener moved to 8080, the ALB's group still opens 80; the near miss opens 8080 to a range.
    ("P120", DEV, lambda d: res(d, "listeners").update(port=8080),
     lambda d: (res(d, "listeners").update(port=8080),
                sg_rule(d, "web-dev-alb-sg", from_port=8080, to_port=8080, cidr="10.0.0.0/8"))),
    # A narrowed rule: the group's only rule now opens 443; any source on 80 (a prefix list) is enough.
    ("P120", DEV, lambda d: res(d, "security_groups")["ingress"][0].update(from_port=443, to_port=443),
     lambda d: (res(d, "security_groups")["ingress"][0].update(from_port=443, to_port=443),
                sg_rule(d, "web-dev-alb-sg", from_port=80, to_port=80, prefix_list="pl-0clients"))),
    ("P112", PROD, lambda d: res(d, "target_health").update(state="unhealthy", reason="Target.Timeout"),
     lambda d: res(d, "target_health").update(state="initial")),
    ("P114", DEV, nothing, lambda d: host(d)["app"].update(keepalive_timeout=65)),
    ("P114", PROD, lambda d: host(d)["nginx"]["servers"][0].update(keepalive_timeout=60), nothing),
    ("P115", PROD, lambda d: (https_listener(d), location(d)["headers"].update({"X-Forwarded-Proto": "$scheme"})),
     lambda d: https_listener(d)),
    ("P115", PROD, lambda d: (https_listener(d), host(d)["nginx"]["servers"][0].update(
        return_code=301, return_text="https://$host$request_uri")),
     lambda d: host(d)["nginx"]["servers"][0].update(return_code=301, return_text="https://$host$request_uri")),
    ("P116", PROD, lambda d: location(d, 1).update(proxy_pass=None, return_code=200), nothing),
    ("P117", ECS, lambda d: attr("target_groups", "deregistration_delay.timeout_seconds", "300")(d),
     lambda d: (attr("target_groups", "deregistration_delay.timeout_seconds", "300")(d),
                res(d, "ecs_services")["task_definition"]["containers"][0].update(stop_timeout=300))),
    ("P118", PROD, attr("load_balancers", "idle_timeout.timeout_seconds", "120"),
     lambda d: (attr("load_balancers", "idle_timeout.timeout_seconds", "120")(d),
                [loc.update(proxy_read_timeout=120) for loc in host(d)["nginx"]["servers"][0]["locations"]])),
    ("A201", PROD, nothing, lambda d: res(d, "listeners")["default_actions"].__setitem__(
        0, {"type": "redirect", "redirect": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}})),
    ("A201", PROD, nothing, lambda d: res(d, "load_balancers").update(scheme="internal")),
    ("A202", PROD, lambda d: https_listener(d, "ELBSecurityPolicy-2016-08"), https_listener),
    ("A203", PROD, nothing, attr("load_balancers", "deletion_protection.enabled", "true")),
    ("A204", PROD, nothing, attr("load_balancers", "access_logs.s3.enabled", "true")),
    ("A205", PROD, nothing, attr("load_balancers", "routing.http.drop_invalid_header_fields.enabled", "true")),
    ("A206", PROD, attr("load_balancers", "routing.http.desync_mitigation_mode", "monitor"),
     attr("load_balancers", "routing.http.desync_mitigation_mode", "defensive")),
    ("A207", PROD, lambda d: rules_10_20(d, "/*"), lambda d: rules_10_20(d, "/web/*")),
    ("T301", PROD, lambda d: hc(d, matcher="200-399"), lambda d: hc(d, matcher="200-299")),
    ("T302", PROD, nothing, lambda d: hc(d, interval_seconds=10, healthy_threshold=3)),
    ("T303", PROD, lambda d: hc(d, interval_seconds=60, unhealthy_threshold=2),
     lambda d: hc(d, interval_seconds=30, unhealthy_threshold=3)),
    ("T304", PROD, lambda d: d["resources"]["target_groups"].append({"arn": "tg-old", "name": "old-tg", "port": 8080}),
     nothing),
    ("T304", "switch-alb-declared", lambda d: host(d)["docker"].pop("switch"), nothing),
    ("T305", PROD, lambda d: res(d, "target_groups").update(protocol="HTTPS"),
     lambda d: (res(d, "target_groups").update(protocol="HTTPS"),
                host(d)["nginx"]["servers"][0]["listen"][0].update(ssl=True))),
    ("T306", PROD, attr("target_groups", "deregistration_delay.timeout_seconds", "600"),
     attr("target_groups", "deregistration_delay.timeout_seconds", "300")),
    ("T307", PROD, lambda d: res(d, "target_groups").update(protocol_version="HTTP2"),
     lambda d: (res(d, "target_groups").update(protocol_version="HTTP2"),
                host(d)["nginx"]["servers"][0]["listen"][0].update(http2=True))),
    ("T307", PROD, lambda d: (res(d, "target_groups").update(protocol_version="GRPC"),
                              host(d)["nginx"]["servers"][0]["listen"][0].update(http2=True)),
     lambda d: (res(d, "target_groups").update(protocol_version="GRPC"),
                host(d)["nginx"]["servers"][0]["listen"][0].update(http2=True),
                [loc.update(proxy_pass=None, grpc_pass="grpc://127.0.0.1:3000")
                 for loc in host(d)["nginx"]["servers"][0]["locations"]])),
    ("S401", PROD, lambda d: sg_rule(d, "web-prod-app-sg", from_port=22, to_port=22, cidr="0.0.0.0/0"),
     lambda d: sg_rule(d, "web-prod-app-sg", from_port=22, to_port=22, cidr="10.0.0.0/8")),
    ("S401", PROD, lambda d: sg_rule(d, "web-prod-app-sg", from_port=5000, to_port=6500, ipv6_cidr="::/0"),
     lambda d: sg_rule(d, "web-prod-app-sg", from_port=8000, to_port=8100, ipv6_cidr="::/0")),
    ("S402", PROD, lambda d: sg_rule(d, "web-prod-app-sg", from_port=80, to_port=80, cidr="0.0.0.0/0"),
     lambda d: sg_rule(d, "web-prod-app-sg", from_port=443, to_port=443, cidr="0.0.0.0/0")),
    ("S403", PROD, lambda d: sg_rule(d, "web-prod-app-sg", protocol="-1", cidr="0.0.0.0/0"),
     lambda d: sg_rule(d, "web-prod-app-sg", protocol="-1", source_group="sg-0alb0prod")),
    ("N500", PROD, lambda d: host(d)["nginx"].update(refusals=[{"message": '"proxy_pass" directive is not allowed '
                                                                  'here', "file": "n.conf", "line": 4}]), nothing),
    ("N501", PROD, lambda d: host(d)["nginx"].update(variables=[]),
     lambda d: host(d)["nginx"].update(variables=[], maps=["service_url"])),
    ("N502", PROD, lambda d: host(d)["nginx"].update(missing_includes=[{"pattern": "ssl/*.conf", "file": "n.conf",
                                                                         "line": 3}]), nothing),
    ("N503", PROD, nothing, lambda d: location(d, 1).update(headers=location(d, 0)["headers"])),
    ("N504", PROD, nothing, lambda d: host(d)["nginx"]["servers"][0].update(server_tokens="off")),
    ("N505", PROD, lambda d: location(d).update(proxy_pass="http://$http_x_backend"),
     lambda d: location(d).update(proxy_pass="http://127.0.0.1:3000$request_uri")),
    # an open proxy through a capture of the URI, and a request header on an internal location
    ("N505", PROD, lambda d: location(d).update(modifier="~", path="/proxy/(?P<target>.*)$", captures=["target"],
                                                proxy_pass="http://$target"),
     lambda d: location(d).update(proxy_pass="http://$http_x_backend", internal=True)),
    # a named capture is a defined variable: no N501
    ("N501", PROD, lambda d: location(d).update(proxy_pass="http://$target"),
     lambda d: (location(d).update(proxy_pass="http://$target"), host(d)["nginx"].update(maps=["target"]))),
    # a nested location drops what its enclosing location added, not only the server's headers
    ("N506", PROD, lambda d: location(d).update(add_headers=["Content-Disposition"],
                                                inherited_add_headers=["Cache-Control"]),
     lambda d: location(d).update(add_headers=["Content-Disposition", "Cache-Control"],
                                  inherited_add_headers=["Cache-Control"])),
    ("N506", PROD, lambda d: (host(d)["nginx"]["servers"][0].update(add_headers=["X-Frame-Options"]),
                              location(d).update(add_headers=["Cache-Control"])),
     lambda d: (host(d)["nginx"]["servers"][0].update(add_headers=["X-Frame-Options"]),
                location(d).update(add_headers=["Cache-Control", "X-Frame-Options"]))),
    ("N507", PROD, lambda d: host(d)["nginx"]["servers"][0]["locations"].append({"path": "/static",
                                                                                 "alias": "/srv/static/"}),
     lambda d: host(d)["nginx"]["servers"][0]["locations"].append({"path": "/static/", "alias": "/srv/static/"})),
    ("N508", PROD, lambda d: location(d).update(proxy_pass="http://app-blue:3000"),
     lambda d: location(d).update(proxy_pass="http://127.0.0.1:3000")),
    ("P119", "compose-names", compose_nginx(["nginx/service-url.inc"]), compose_nginx(["nginx/default.conf"])),
    ("D601", DEV, lambda d: container(d, "app-green")["ports"][0].update(host_port=3000), nothing),
    ("D602", DEV, lambda d: container(d, "app-green")["ports"][0].update(container_port=4000), nothing),
    # The port audit.yaml declares (docker.services.NAME.port) is the app's, as the paths read it; with no
    # PORT variable, D602 reads it too. The near miss declares the port it publishes.
    ("D602", DEV, lambda d: (container(d, "app-blue")["environment"].pop("PORT"),
                             host(d)["docker"].update(listen_ports={"app-blue": 8080})),
     lambda d: (container(d, "app-blue")["environment"].pop("PORT"), host(d)["docker"].update(listen_ports={"app-blue": 3000}))),
    ("D603", DEV, lambda d: container(d, "app-blue").update(privileged=True),
     lambda d: container(d, "app-blue").update(volumes=["/srv/data"])),
    ("D603", DEV, lambda d: container(d, "app-blue").update(volumes=["/var/run/docker.sock"]), nothing),
    ("D604", DEV, lambda d: container(d, "app-blue").update(image="registry.example.com/web:latest"),
     lambda d: container(d, "app-blue").update(image="registry.example.com:5000/web@sha256:" + "a" * 64)),
    ("D604", DEV, lambda d: container(d, "app-blue").update(image="registry.example.com:5000/web"), nothing),
    ("D605", PROD, lambda d: container(d, "app-blue")["ports"][0].update(host_ip=None), nothing),
]


@pytest.mark.parametrize("rule,name,fire,quiet", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fires_and_its_near_miss_stays_quiet(rule, name, fire, quiet):
    firing, near = estate(name), estate(name)
    fire(firing)
    quiet(near)
    assert fired(firing, rule), f"{rule} did not fire"
    assert fired(near, rule) == [], f"{rule} fired on its near miss"
    finding = next(f for f in run_one(firing) if f.rule_id == rule)
    assert finding.message and finding.remediation and finding.evidence


def run_one(data: Data) -> list[Finding]:
    from tests.conftest import run

    return run(data).findings


def test_every_catalog_rule_has_a_case_here_or_in_the_path_tests():
    from pathlib import Path

    covered = {c[0] for c in CASES} | {"P101", "P102", "P103", "P104", "P105", "P106", "P109", "P110", "P113"}
    assert covered == set(builtin_catalog())
    path_tests = (Path(__file__).parent / "test_path.py").read_text()
    assert all(rule in path_tests for rule in ("P101", "P102", "P103", "P104", "P105", "P106", "P109", "P110",
                                                "P113"))


def test_every_rule_file_carries_its_metadata():
    catalog = builtin_catalog()
    assert len(catalog) == 51
    for rule in catalog.values():
        meta = rule.meta
        assert meta.title and len(meta.rationale) > 80 and len(meta.remediation) > 30
        assert meta.references and all(r.startswith("https://") for r in meta.references)
        assert meta.check


def test_rule_options_drain_budget_and_admin_ports():
    data = estate(PROD)
    attr("target_groups", "deregistration_delay.timeout_seconds", "600")(data)
    sg_rule(data, "web-prod-app-sg", from_port=2222, to_port=2222, cidr="0.0.0.0/0")
    snap = snapshot.from_data(data)

    def ids(options: dict[str, Any]) -> set[str]:
        result = evaluate.run(snap, ["prod"], builtin_catalog(), RulesConfig(options=options), today=dt.date.today())
        return {f.rule_id for f in result.findings}

    assert "T306" in ids({}) and "T306" not in ids({"T306": {"drain_budget": 900}})
    assert "S401" not in ids({}) and "S401" in ids({"S401": {"ports": [2222]}})
