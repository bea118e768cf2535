"""Path rules: each fires on a broken estate and stays quiet on its near miss (gixy's _fp idea)."""

from __future__ import annotations

import pytest

from tests.conftest import container, estate, fired, host, run

CLEAN = ["incident-prod", "switch-upstream", "switch-alb-weighted", "switch-alb-declared", "switch-rewrite",
         "compose-names", "ecs-awsvpc"]


@pytest.mark.parametrize("name", CLEAN)
def test_clean_estates_have_no_path_finding_and_nothing_skipped(name):
    result = run(estate(name))
    assert [f.rule_id for f in result.findings if f.rule_id.startswith("P")] == []
    assert result.skipped == []


# --- P101 / P104: one cause, one finding ------------------------------------------------------------


def test_incident_dev_green_is_unserved_in_one_sentence():
    result = run(estate("incident-dev"))
    unserved = [f for f in result.findings if f.rule_id in ("P101", "P104")]
    assert [(f.rule_id, f.resource, f.slot) for f in unserved] == [("P104", "target_group:web-*-tg", "green")]
    message = unserved[0].message
    assert "green publishes 4000" in message
    assert "sends traffic and health checks to 3000" in message


def test_live_slot_from_running_containers_makes_it_p101_not_p104():
    assert fired(estate("live-running")) == [("P101", "target_group:web-*-tg", "green")]


def test_live_slot_served_leaves_only_the_other_slot_as_p104():
    data = estate("live-running")
    container(data, "app-blue")["running"] = True
    container(data, "app-green")["running"] = False
    assert fired(data) == [("P104", "target_group:web-*-tg", "green")]


def test_declared_live_slot_is_used_when_nothing_else_tells():
    data = estate("incident-dev")
    host(data)["docker"]["live"] = "green"
    assert fired(data, "P101") == [("P101", "target_group:web-*-tg", "green")]
    assert fired(data, "P104") == []


def test_unknown_live_slot_gives_p104_for_every_unserved_slot_and_no_p101():
    data = estate("incident-dev")
    data["resources"]["target_groups"][0]["port"] = 5000
    data["resources"]["target_health"][0]["port"] = 5000
    assert fired(data, "P104") == [("P104", "target_group:web-*-tg", "blue"), ("P104", "target_group:web-*-tg", "green")]
    assert fired(data, "P101") == []


def test_host_without_slots_unserved_is_p101_without_slot():
    data = estate("incident-dev")
    docker = host(data)["docker"]
    docker["slots"] = {}
    docker["containers"] = [c for c in docker["containers"] if c["name"] == "app-green"]
    assert fired(data) == [("P101", "target_group:web-*-tg", None)]


def test_override_port_of_a_target_is_the_port_checked():
    data = estate("incident-dev")
    data["resources"]["target_health"][0]["port"] = 4000  # registered on green's port, TG says 3000
    assert fired(data, "P104") == [("P104", "target_group:web-*-tg", "blue")]


def test_static_proxy_pass_serves_only_the_port_it_names():
    assert fired(estate("switch-static")) == [("P104", "target_group:web-*-tg", "green")]


def test_declared_rewrite_follows_the_slot():
    assert fired(estate("switch-rewrite")) == []


def test_upstream_serves_only_the_slots_it_lists():
    data = estate("switch-upstream")
    host(data)["nginx"]["upstreams"][0]["servers"].pop()  # drop green's 4000
    assert fired(data) == [("P104", "target_group:web-*-tg", "green")]


def test_weighted_forward_is_the_switch_and_a_slot_no_group_reaches_fires_on_the_listener():
    data = estate("switch-alb-weighted")
    container(data, "app-green")["ports"][0]["host_port"] = 4500
    assert fired(data) == [("P104", "listener:web-*-alb:80", "green")]


def test_declared_alb_switch_checks_each_slot_against_its_own_target_group():
    data = estate("switch-alb-declared")
    data["resources"]["target_health"][1]["port"] = 3000  # green TG registered on blue's port
    assert fired(data) == [("P104", "target_group:web-green-tg", "green")]


def test_declared_alb_switch_naming_a_missing_target_group_is_skipped_not_passed():
    data = estate("switch-alb-declared")
    host(data)["docker"]["switch"]["target_groups"]["green"] = "web-teal-tg"
    result = run(data)
    assert any(s.rule_id == "P101" and "web-teal-tg" in s.reason and s.slot == "green" for s in result.skipped)


def test_variable_switch_by_compose_service_name_serves_both_slots():
    data = estate("compose-names")
    host(data)["docker"]["containers"][2]["expose"] = []  # green's container no longer listens on 3000
    host(data)["docker"]["containers"][2]["service"] = "app-green"
    assert fired(data) == []  # the switch rewrites the name; the slot still exists


def test_nginx_in_compose_to_a_port_nothing_proves_or_rules_out_is_skipped_not_p105():
    # app-blue exposes 3000; that proves 3000, and says nothing against 9999: on a compose network a
    # process answers on every port it listens on, exposed or not.
    data = estate("compose-names")
    host(data)["nginx"]["variables"][0]["value"] = "http://app-blue:9999"
    result = run(data)
    assert [f for f in result.findings if f.rule_id.startswith("P")] == []
    reasons = {(s.rule_id, s.reason.split(" (")[0]) for s in result.skipped if s.rule_id == "P105"}
    assert reasons == {("P105", "nginx proxies to app-blue:9999, and nothing proves or rules out that service "
                                "app-blue listens on 9999: declare docker.services.app-blue.port in audit.yaml")}
    assert {s.slot for s in result.skipped if s.rule_id in ("P101", "P104")} == {"blue", "green"}


@pytest.mark.parametrize("rule_out", [
    lambda d: host(d)["docker"].update(listen_ports={"app-blue": 3000}),  # docker.services.app-blue.port
    lambda d: host(d)["docker"]["containers"][1].update(environment={"PORT": "3000"}),  # its own PORT
])
def test_nginx_in_compose_to_a_port_ruled_out_is_p105(rule_out):
    data = estate("compose-names")
    host(data)["nginx"]["variables"][0]["value"] = "http://app-blue:9999"
    rule_out(data)
    assert fired(data) == [("P105", "host:web", None)]


def test_nginx_server_fronting_services_outside_the_slots_is_no_slot_path():
    data = estate("switch-static")
    host(data)["nginx"]["servers"][0]["locations"][0]["proxy_pass"] = "http://127.0.0.1:9000"
    host(data)["docker"]["containers"].append(
        {"name": "docs", "service": "docs", "ports": [{"host_ip": "127.0.0.1", "host_port": 9000, "container_port": 80}]})
    assert fired(data) == []


def test_nginx_proxying_to_another_host_serves_a_host_without_slots():
    data = estate("switch-static")
    docker = host(data)["docker"]
    docker["slots"], docker["containers"] = {}, []
    host(data)["nginx"]["servers"][0]["locations"][0]["proxy_pass"] = "https://api.internal.example.com"
    assert fired(data) == []


def test_host_without_docker_description_is_skipped_not_guessed():
    data = estate("incident-dev")
    host(data)["docker"] = None
    result = run(data)
    assert [f for f in result.findings if f.rule_id.startswith("P")] == []
    # Every rule that reads containers skips that host, the docker rules as much as the path rules.
    assert {s.rule_id for s in result.skipped} == {"P101", "P105", "P119", "D601", "D602", "D603", "D604", "D605"}
    assert all("no docker description" in s.reason for s in result.skipped)
    assert {s.resource for s in result.skipped if s.rule_id.startswith("D")} == {"host:web"}


def test_ecs_bridge_mode_with_dynamic_ports_is_skipped_with_reason():
    result = run(estate("ecs-bridge"))
    assert [f for f in result.findings if f.rule_id.startswith("P")] == []
    assert [s.rule_id for s in result.skipped] == ["P101"]
    assert "dynamic host ports" in result.skipped[0].reason


# --- P102 -------------------------------------------------------------------------------------------


def test_p102_health_check_port_served_by_nothing_is_one_finding_for_the_host():
    data = estate("incident-prod")
    data["resources"]["target_groups"][0]["health_check"]["port"] = "8081"
    assert fired(data, "P102") == [("P102", "target_group:web-*-tg", None)]
    assert fired(data, "P107") == [("P107", "target_group:web-*-tg", None)]  # the SG admits 80 only


def test_p102_quiet_when_nginx_serves_the_health_check_port():
    data = estate("incident-prod")
    data["resources"]["target_groups"][0]["health_check"]["port"] = "8081"
    host(data)["nginx"]["servers"].append({"listen": [{"port": 8081}], "locations": [{"path": "/", "return_code": 200}]})
    assert fired(data, "P102") == []


def test_p102_quiet_when_explicit_port_equals_traffic_port():
    data = estate("incident-prod")
    data["resources"]["target_groups"][0]["health_check"]["port"] = "80"
    assert fired(data) == []


# --- P103 -------------------------------------------------------------------------------------------


def test_p103_health_path_reaches_app_under_another_path_than_it_serves():
    data = estate("incident-prod")
    data["resources"]["target_groups"][0]["health_check"]["path"] = "/healthz"
    assert fired(data) == [("P103", "target_group:web-*-tg", None)]


def test_p103_nginx_has_no_location_for_the_path():
    data = estate("incident-prod")
    server = host(data)["nginx"]["servers"][0]
    server["locations"] = [{"path": "/", "modifier": "=", "return_code": 200},
                           {"path": "/api/", "proxy_pass": "$service_url"}]
    result = run(data)
    (p103,) = [f for f in result.findings if f.rule_id == "P103"]
    assert p103.slot is None
    assert "no location matching /health-check" in p103.message


def test_p103_direct_to_app_with_a_different_declared_path():
    data = estate("incident-dev")
    host(data)["app"]["health_path"] = "/healthz"
    assert ("P103", "target_group:web-*-tg", None) in fired(data)


def test_p103_quiet_without_a_declared_health_path():
    data = estate("incident-prod")
    data["resources"]["target_groups"][0]["health_check"]["path"] = "/healthz"
    host(data)["app"] = None
    assert fired(data) == []


def test_p103_proxy_pass_uri_replaces_the_location_prefix():
    data = estate("incident-prod")
    data["resources"]["target_groups"][0]["health_check"]["path"] = "/api/health-check"
    host(data)["nginx"]["servers"][0]["locations"] = [
        {"path": "/api/", "proxy_pass": "http://127.0.0.1:3000/"},
    ]
    host(data)["docker"]["switch"] = {"kind": "rewrite"}
    assert fired(data) == []


def test_p103_not_reported_for_a_port_nothing_serves():
    data = estate("incident-dev")
    host(data)["app"]["health_path"] = "/healthz"
    data["resources"]["target_groups"][0]["port"] = 5000
    data["resources"]["target_health"][0]["port"] = 5000
    assert {r for r, _, _ in fired(data)} == {"P104", "P106"}


# --- P105 -------------------------------------------------------------------------------------------


def test_p105_variable_pointing_at_no_slot_is_the_one_finding():
    data = estate("incident-prod")
    host(data)["nginx"]["variables"][0]["value"] = "http://127.0.0.1:5000"
    assert fired(data) == [("P105", "host:web", None)]
    (p105,) = [f for f in run(data).findings if f.rule_id == "P105"]
    assert p105.line == 16


def test_p105_upstream_server_that_nothing_serves():
    data = estate("switch-upstream")
    host(data)["nginx"]["upstreams"][0]["servers"].append({"address": "127.0.0.1:5000", "line": 6})
    assert fired(data) == [("P105", "host:web", None)]


def test_p105_unset_variable_is_skipped_not_guessed():
    data = estate("incident-prod")
    host(data)["nginx"]["variables"] = []
    result = run(data)
    assert fired(data) == []
    assert fired(data, "N501") == [("N501", "host:web", None)]  # and the nginx rule names the cause
    assert {s.rule_id for s in result.skipped} >= {"P105"}
    assert all("$service_url" in s.reason for s in result.skipped)


def test_p105_quiet_for_a_host_outside_this_one():
    data = estate("incident-prod")
    host(data)["nginx"]["servers"][0]["locations"].append({"path": "/ext/", "proxy_pass": "https://api.example.com"})
    assert fired(data) == []


# --- P106 -------------------------------------------------------------------------------------------


def test_p106_target_sg_admits_the_alb_on_another_port():
    data = estate("incident-prod")
    rule = data["resources"]["security_groups"][1]["ingress"][0]
    rule["from_port"] = rule["to_port"] = 8080
    assert fired(data) == [("P106", "target_group:web-*-tg", None)]
    (p106,) = [f for f in run(data).findings if f.rule_id == "P106"]
    assert p106.evidence["note"] == "network ACLs are not evaluated"


@pytest.mark.parametrize("cidr,fires", [("10.99.0.0/16", True), ("10.20.0.0/24", True), ("10.20.0.0/16", False),
                                        ("0.0.0.0/0", False)])
def test_p106_cidr_rules_must_cover_every_alb_subnet(cidr, fires):
    data = estate("incident-prod")
    data["resources"]["security_groups"][1]["ingress"] = [{"protocol": "tcp", "from_port": 80, "to_port": 80,
                                                           "cidr": cidr}]
    assert bool(fired(data, "P106")) is fires


def test_p106_quiet_for_all_traffic_from_the_alb_group():
    data = estate("incident-prod")
    data["resources"]["security_groups"][1]["ingress"] = [{"protocol": "-1", "source_group": "sg-0alb0prod"}]
    assert fired(data) == []


def test_p106_new_slot_port_blocked_under_declared_alb_switch_names_the_slot():
    data = estate("switch-alb-declared")
    data["resources"]["security_groups"][1]["ingress"].pop()  # 4000 no longer admitted
    assert fired(data) == [("P106", "target_group:web-green-tg", "green")]


def test_p106_ecs_awsvpc_uses_the_service_security_groups():
    data = estate("ecs-awsvpc")
    data["resources"]["security_groups"][1]["ingress"][0]["source_group"] = "sg-other"
    assert fired(data) == [("P106", "ecs_service:main/api-*", None)]


def test_p106_security_group_missing_from_snapshot_is_skipped():
    data = estate("incident-prod")
    data["resources"]["security_groups"].pop(1)
    result = run(data)
    assert fired(data, "P106") == []
    assert any(s.rule_id == "P106" and "sg-0web0prod" in s.reason for s in result.skipped)


# --- P109 -------------------------------------------------------------------------------------------


def test_p109_loopback_published_port_targeted_instead_of_p104():
    data = estate("incident-dev")
    container(data, "app-blue")["ports"][0]["host_ip"] = "127.0.0.1"
    assert fired(data) == [("P104", "target_group:web-*-tg", "green"), ("P109", "target_group:web-*-tg", "blue")]


@pytest.mark.parametrize("address", ["0.0.0.0", "10.10.0.11", "::"])
def test_p109_quiet_when_published_on_an_address_the_alb_reaches(address):
    data = estate("incident-dev")
    container(data, "app-blue")["ports"][0]["host_ip"] = address
    assert fired(data, "P109") == []


# --- P110 -------------------------------------------------------------------------------------------


def test_p110_container_port_not_mapped():
    data = estate("ecs-awsvpc")
    data["resources"]["ecs_services"][0]["task_definition"]["containers"][0]["port_mappings"][0]["container_port"] = 3000
    assert fired(data) == [("P110", "ecs_service:main/api-*", None)]
    (p110,) = [f for f in run(data).findings if f.rule_id == "P110"]
    assert p110.evidence["port_mappings"] == [3000]


def test_p110_container_name_not_in_task_definition():
    data = estate("ecs-awsvpc")
    data["resources"]["ecs_services"][0]["load_balancers"][0]["container_name"] = "web"
    assert fired(data) == [("P110", "ecs_service:main/api-*", None)]


# --- P113 -------------------------------------------------------------------------------------------


def test_p113_target_instance_matches_no_host():
    data = estate("incident-prod")
    for instance in data["resources"]["instances"]:
        instance["tags"]["Role"] = "worker"
    assert fired(data) == [("P113", "instance:worker", None)]
    (p113,) = [f for f in run(data).findings if f.rule_id == "P113"]
    assert p113.evidence["instances"] == ["i-0prod00000000001", "i-0prod00000000002"]


def test_p113_quiet_when_every_target_has_a_host():
    assert fired(estate("incident-prod"), "P113") == []


def test_instance_matching_two_hosts_is_skipped_not_guessed():
    data = estate("incident-prod")
    twin = dict(host(data), name="web-copy")
    data["resources"]["hosts"].append(twin)
    result = run(data)
    assert fired(data) == []
    assert any("matches several hosts" in s.reason for s in result.skipped)


def test_many_instances_with_one_problem_are_one_finding():
    data = estate("incident-prod")
    host(data)["nginx"]["servers"][0]["listen"][0]["port"] = 8080
    result = run(data)
    p101 = [f for f in result.findings if f.rule_id == "P101"]
    assert len(p101) == 1
    assert p101[0].evidence["instances"] == ["i-0prod00000000001", "i-0prod00000000002"]


# --- P120: the load balancer's own groups --------------------------------------------------------------


def test_a_listener_no_ingress_rule_admits_is_p120_naming_the_listener_and_its_groups():
    data = estate("incident-dev")
    data["resources"]["listeners"][0]["port"] = 8080  # the group still opens 80 only
    assert fired(data, "P120") == [("P120", "listener:web-*-alb:8080", None)]
    (finding,) = [f for f in run(data).findings if f.rule_id == "P120"]
    assert finding.severity == "critical"
    assert finding.evidence["security_groups"] == ["web-*-alb-sg"]
    assert finding.evidence["ingress"] == ["tcp 80 from 0.0.0.0/0"]


def test_p120_is_skipped_when_the_load_balancers_group_is_not_in_the_snapshot():
    data = estate("incident-dev")
    data["resources"]["security_groups"] = [sg for sg in data["resources"]["security_groups"]
                                            if sg["name"] != "web-dev-alb-sg"]
    result = run(data)
    assert [f for f in result.findings if f.rule_id == "P120"] == []
    assert [(s.rule_id, s.resource) for s in result.skipped if s.rule_id == "P120"] == [
        ("P120", "listener:web-*-alb:80")]
