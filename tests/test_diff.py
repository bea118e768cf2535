"""Drift: matched by role, compared by behaviour; identity noise never counts."""

from __future__ import annotations

import json

import pytest

from auditor import diff
from auditor.model import snapshot
from auditor.config import DiffConfig
from auditor.model.typed import typed
from tests.conftest import estate, host


def renamed(data, old: str, new: str, account: str):
    """The same estate in another environment: every id, ARN, IP, DNS name and account differs."""
    text = json.dumps(data)
    text = text.replace(f"-{old}", f"-{new}").replace(f'"{old}"', f'"{new}"').replace(f"/{old}/", f"/{new}/")
    text = text.replace("222222222222", account).replace("i-0prod", "i-0stg").replace("sg-0", "sg-9")
    text = text.replace("10.20.", "10.30.").replace("bbb1", "ccc7").replace("/t9", "/x4")
    return json.loads(text)


def compare(a, b, config: DiffConfig | None = None, tokens=None):
    sa, sb = snapshot.from_data(a), snapshot.from_data(b)
    return diff.compare(sa, sb, tokens or [sa.environment], [sb.environment], config)


def test_estates_that_differ_only_in_identity_noise_have_no_drift():
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    assert staging != prod
    assert compare(staging, prod).items == []


def test_the_incident_drift_names_the_path_and_the_port():
    drift = compare(estate("incident-dev"), estate("incident-prod"))
    found = {(i.resource_type, i.key, i.path): (i.a, i.b) for i in drift.items}
    assert found[("target_group", "web-*-tg", "port")] == (3000, 80)
    assert found[("path", "web-*-alb:80/blue", "nginx")] == (None, "nginx:80")
    assert found[("path", "web-*-alb:80/green", "reached")] == (False, True)
    assert found[("instance", "web", "count")] == (1, 2)


def test_semantic_changes_are_found_with_their_values():
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    staging["resources"]["target_groups"][0]["health_check"]["path"] = "/healthz"
    staging["resources"]["load_balancers"][0]["attributes"]["idle_timeout.timeout_seconds"] = "120"
    staging["resources"]["load_balancers"][0]["scheme"] = "internal"
    items = {(i.resource_type, i.path): (i.a, i.b) for i in compare(staging, prod).items}
    assert items == {
        ("target_group", "health_check.path"): ("/healthz", "/health-check"),
        ("load_balancer", 'attributes["idle_timeout.timeout_seconds"]'): ("120", "60"),
        ("load_balancer", "scheme"): ("internal", "internet-facing"),
    }


@pytest.mark.parametrize("pattern", [
    "load_balancers[*].scheme", "load_balancers[web-*-alb].scheme", "*.scheme", "load_balancers[*].sch*",
])
def test_expected_patterns_mark_drift_expected(pattern):
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    staging["resources"]["load_balancers"][0]["scheme"] = "internal"
    drift = compare(staging, prod, typed({"expected": [{"path": pattern, "reason": "internal"}]}, DiffConfig))
    assert [(i.path, i.expected, i.reason) for i in drift.items] == [("scheme", True, "internal")]
    assert drift.unexpected == []


def test_ignore_patterns_with_quoted_dotted_keys_and_leading_star():
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    staging["resources"]["load_balancers"][0]["attributes"]["idle_timeout.timeout_seconds"] = "120"
    staging["resources"]["target_groups"][0]["tags"]["CostCenter"] = "42"
    config = typed(
        {"ignore": ['load_balancers[*].attributes["idle_timeout.timeout_seconds"]', "*.tags.CostCenter"]}, DiffConfig)
    assert compare(staging, prod, config).items == []
    wrong = typed({"ignore": ["load_balancers[*].attributes.idle_timeout"]}, DiffConfig)
    assert len(compare(staging, prod, wrong).items) == 2


def test_paths_collection_can_be_expected():
    config = typed({"expected": [{"path": "paths[*].nginx", "reason": "dev has no nginx"}]}, DiffConfig)
    drift = compare(estate("incident-dev"), estate("incident-prod"), config)
    assert {i.key for i in drift.items if i.expected} == {"web-*-alb:80/blue", "web-*-alb:80/green"}


def test_two_resources_with_one_key_are_ambiguous_never_guessed():
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    twin = dict(staging["resources"]["target_groups"][0], arn="tg-twin", port=8080)
    staging["resources"]["target_groups"].append(twin)
    items = [i for i in compare(staging, prod).items if i.resource_type == "target_group"]
    assert [(i.kind, i.key) for i in items] == [("ambiguous", "web-*-tg")]


def test_only_in_one_environment():
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    staging["resources"]["security_groups"].append({"id": "sg-extra", "name": "bastion-staging-sg"})
    items = compare(staging, prod).items
    assert [(i.kind, i.resource_type, i.key) for i in items] == [("only_in_a", "security_group", "bastion-*-sg")]


def test_diff_match_pairs_differently_named_resources():
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    staging["resources"]["target_groups"][0]["name"] = "legacy-web-tg"
    assert {i.kind for i in compare(staging, prod).items} >= {"only_in_a", "only_in_b"}
    config = typed({"match": [{"resource_type": "target_group", "a": "legacy-web-tg",
                                                   "b": "web-prod-tg"}]}, DiffConfig)
    assert [i for i in compare(staging, prod, config).items if i.resource_type == "target_group"] == []


def test_nginx_present_on_one_side_is_one_item_naming_it_never_a_dump():
    dev, prod = estate("incident-dev"), estate("incident-prod")
    items = [i for i in compare(dev, prod).items if i.resource_type == "host" and i.path.startswith("nginx")]
    assert [(i.kind, i.path, i.a, i.b) for i in items] == [("only_in_b", "nginx", None, None)]
    # near miss: nginx on both sides with one variable changed is one change of that variable
    changed = estate("incident-prod")
    host(changed)["nginx"]["variables"][0]["value"] = "http://127.0.0.1:4000"
    items = [(i.kind, i.path) for i in compare(prod, changed).items if i.resource_type == "host"]
    assert items == [("changed", "nginx.variables.service_url")]


def test_drift_is_ordered_by_what_it_does_to_traffic():
    # The incident: green not reached in dev and reached in prod comes first, then the rest of the
    # path's shape, what carries traffic, other facts, and hygiene (image tag, instance size) last.
    items = compare(estate("incident-dev"), estate("incident-prod")).items
    order = [f"{i.resource_type}:{i.key}.{i.path}" for i in items]
    assert order[0] == "path:web-*-alb:80/green.reached"
    assert [o.split(":")[0] for o in order[:5]] == ["path"] * 5
    assert order[-3:] == ["host:web.docker.containers.app-green.image", "instance:web.count",
                          "instance:web.instance_type"]
    assert order.index("host:web.nginx") < order.index("host:web.docker.containers.app-green.image")


def test_drift_values_are_words_never_json_objects():
    from auditor.outcomes import drift_value

    assert (drift_value(False, "reached"), drift_value(True, "reached")) == ("not reached", "reached")
    assert drift_value(True, "docker.containers.app.running") == "running"
    assert drift_value(True, "docker.networks.back.internal") == "internal"
    assert drift_value(False, "privileged") == "false"
    assert drift_value(["tcp 80 from a", "tcp 443 from a"]) == "tcp 80 from a, tcp 443 from a"
    assert drift_value({"test": ["CMD", "curl"], "retries": 3}) == "retries=3; test=[CMD, curl]"
    assert (drift_value([]), drift_value(None), drift_value(3000)) == ("(none)", "(none)", "3000")


def test_security_group_rules_compare_as_sets_of_normalized_lines():
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    staging["resources"]["security_groups"][1]["ingress"].append(
        {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"})
    (item,) = compare(staging, prod).items
    assert (item.resource_type, item.key, item.path) == ("security_group", "web-*-app-sg", "ingress")
    assert item.a == ["tcp 22 from 0.0.0.0/0", "tcp 80 from web-*-alb-sg"] and item.b == ["tcp 80 from web-*-alb-sg"]


def test_containers_compare_by_service_and_port_mapping():
    prod = estate("incident-prod")
    staging = renamed(prod, "prod", "staging", "333333333333")
    host(staging)["docker"]["containers"][1]["ports"][0]["host_port"] = 5000
    host(staging)["docker"]["containers"][1]["name"] = "renamed-container"  # identity: not drift
    (item,) = [i for i in compare(staging, prod).items if i.resource_type == "host"]
    assert (item.path, item.a, item.b) == ("docker.containers.app-green.ports", ["127.0.0.1:5000:3000/tcp"],
                                           ["127.0.0.1:4000:3000/tcp"])


def test_one_environment_over_a_release_lists_only_what_a_reviewer_cares_about():
    before = estate("incident-prod")
    after = json.loads(json.dumps(before))
    nginx = host(after)["nginx"]
    for server in nginx["servers"]:  # every line moved down by three: provenance, not configuration
        server["line"] += 3
        for location in server["locations"]:
            location["line"] += 3
            location["lines"] = {k: v + 3 for k, v in location.get("lines", {}).items()}
    nginx["servers"][0]["locations"] = [loc for loc in nginx["servers"][0]["locations"]
                                        if loc["path"] != "/health-check"]
    containers = host(after)["docker"]["containers"]
    containers.append({"name": "web-worker-1", "service": "worker", "image": "app:2", "ports": []})
    containers[0]["volumes"] = ["/var/run/docker.sock"]
    items = {(i.kind, i.path) for i in compare(before, after).items}
    assert items == {
        ("only_in_a", 'nginx.servers["80 default_server _"]["= /health-check"]'),  # one item, not one per field
        ("only_in_b", "docker.containers.worker"),
        ("changed", "docker.containers.app-blue.volumes"),
    }
    # A pattern may quote such keys or not (DESIGN quotes only keys with dots): both address the item.
    gone = next(i for i in compare(before, after).items if i.kind == "only_in_a")
    assert diff.matches('hosts[*].nginx.servers["80 default_server _"]["= /health-check"]', gone)
    assert diff.matches("hosts[*].nginx.servers.80 default_server _.= /health-check", gone)


def test_two_releases_of_a_real_project_drift_only_in_what_changes_behaviour(tmp_path):
    """oauth2-proxy's nginx example, and a next release of it: comment lines that move every nginx line,
    a header dropped, a service's command changed, a docker.sock mount added, a service added."""
    import shutil

    from auditor import config as config_module
    from auditor.collect import CollectOptions, collect
    from tests.conftest import SHARED

    source = SHARED / "realworld" / "oauth2-proxy__oauth2-proxy" / "contrib" / "local-environment"
    for release in ("r1", "r2"):
        shutil.copytree(source, tmp_path / release)
    b = tmp_path / "r2"
    conf = (b / "nginx.conf").read_text()
    (b / "nginx.conf").write_text("# release 2\n# (every line moves)\n" + conf.replace(
        "    proxy_set_header X-Real-IP  $remote_addr;\n", "", 1))
    nginx_file = (b / "docker-compose-nginx.yaml").read_text()
    # dex's command in the override replaces the base file's (a change to the base's would not count)
    nginx_file = nginx_file.replace("command: dex serve /dex.yaml", "command: dex serve --log-level debug /dex.yaml")
    nginx_file = nginx_file.replace('      - "./nginx.conf:/etc/nginx/conf.d/default.conf"\n',
                                    '      - "./nginx.conf:/etc/nginx/conf.d/default.conf"\n'
                                    "      - /var/run/docker.sock:/var/run/docker.sock:ro\n")
    nginx_file = nginx_file.replace("services:\n", "services:\n  whoami:\n    image: traefik/whoami:v1.10.3\n", 1)
    (b / "docker-compose-nginx.yaml").write_text(nginx_file)
    (tmp_path / "audit.yaml").write_text(
        "version: 1\nenvironments:\n"
        + "".join(f"  {r}:\n    hosts: [{{name: web, match: {{tags: {{Role: web}}}}, docker: {{compose: "
                  f"[{r}/docker-compose.yaml, {r}/docker-compose-nginx.yaml]}}}}]\n" for r in ("r1", "r2")))
    cfg = config_module.load(tmp_path / "audit.yaml")
    snaps = [collect(cfg, r, CollectOptions(offline=True)) for r in ("r1", "r2")]
    drift = diff.compare(snaps[0], snaps[1], ["r1"], ["r2"])
    items = sorted((i.kind, i.path) for i in drift.items)
    assert items == [
        ("changed", "docker.containers.dex.command"),
        ("changed", "docker.containers.nginx.volumes"),
        ("changed", 'nginx.servers["80 oauth2-proxy.oauth2-proxy.localhost"]["/"].directives.proxy_set_header'),
        ("changed", 'nginx.servers["80 oauth2-proxy.oauth2-proxy.localhost"]["/"].headers.X-Real-IP'),
        ("only_in_b", "docker.containers.whoami"),
    ], items


def test_networks_are_configuration_membership_aliases_and_settings(tmp_path):
    # Release 2 moves the app off an `internal: true` network onto the default one (membership with no
    # aliases is not "empty"), gives the proxy an alias, and makes the backend network external.
    from auditor import config as config_module
    from auditor.collect import CollectOptions, collect

    r1 = ("services:\n  proxy:\n    image: nginx:1.27.2\n    networks: [front, back]\n"
          "  app:\n    image: example/app:1\n    networks: [back]\n"
          "networks:\n  front: {}\n  back: {internal: true}\n")
    r2 = ("services:\n  proxy:\n    image: nginx:1.27.2\n    networks:\n      front: {aliases: [edge]}\n      back: {}\n"
          "      default: {}\n  app:\n    image: example/app:1\n"
          "networks:\n  front: {}\n  back: {external: true}\n")
    for name, text in (("r1", r1), ("r2", r2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "compose.yaml").write_text(text)
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments:\n" + "".join(
        f"  {r}:\n    hosts: [{{name: web, match: {{tags: {{Role: web}}}}, docker: {{compose: [{r}/compose.yaml]}}}}]\n"
        for r in ("r1", "r2")))
    cfg = config_module.load(tmp_path / "audit.yaml")
    snaps = [collect(cfg, r, CollectOptions(offline=True)) for r in ("r1", "r2")]
    items = {(i.kind, i.path, str(i.a), str(i.b)) for i in diff.compare(snaps[0], snaps[1], ["r1"], ["r2"]).items
             if i.path.startswith("docker.")}
    assert items == {
        ("changed", "docker.containers.app.networks", "['back']", "['default']"),
        ("changed", "docker.containers.proxy.networks", "['back', 'front']", "['back', 'default', 'front']"),
        ("changed", "docker.containers.proxy.aliases.front", "None", "['edge']"),
        ("changed", "docker.networks.back.internal", "True", "False"),
        ("changed", "docker.networks.back.external", "False", "True"),
    }
    # The near miss: the same release against itself is no drift, networks and all.
    assert diff.compare(snaps[0], snaps[0], ["r1"], ["r1"]).items == []


def test_an_nginx_service_beside_the_front_one_is_compared_by_its_name(tmp_path):
    # Release 2 adds a second nginx (admin) beside the front proxy: one only_in item for the service's config,
    # never a dump of it; release 3 changes what admin proxies to: one item about that directive.
    from auditor import config as config_module
    from auditor.collect import CollectOptions, collect

    front = "  proxy:\n    image: nginx:1.27.2\n    ports: ['80:80']\n"
    admin = "  admin:\n    image: nginx:1.27.2\n    volumes: ['./admin.conf:/etc/nginx/conf.d/default.conf:ro']\n"
    site = "server {\n    listen 8081;\n    location / { proxy_pass http://app:%d; }\n}\n"
    releases = {"r1": ("services:\n" + front, 3000), "r2": ("services:\n" + front + admin, 3000),
                "r3": ("services:\n" + front + admin, 4000)}
    for name, (compose, port) in releases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "compose.yaml").write_text(compose)
        (tmp_path / name / "admin.conf").write_text(site % port)
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments:\n" + "".join(
        f"  {r}:\n    hosts: [{{name: web, match: {{tags: {{Role: web}}}}, docker: {{compose: [{r}/compose.yaml]}}}}]\n"
        for r in releases))
    cfg = config_module.load(tmp_path / "audit.yaml")
    r1, r2, r3 = (collect(cfg, r, CollectOptions(offline=True)) for r in releases)
    beside = [(i.kind, i.path) for i in diff.compare(r1, r2, ["r1"], ["r2"]).items if i.path.startswith("nginx")]
    assert beside == [("only_in_b", "nginx_beside.admin")]
    changed = [(i.path, i.a, i.b) for i in diff.compare(r2, r3, ["r2"], ["r3"]).items]
    assert changed == [('nginx_beside.admin.servers.8081["/"].proxy_pass', "http://app:3000", "http://app:4000")]


def test_compose_restarting_nginx_with_a_service_is_configuration():
    # `depends_on: {web: {restart: true}}` is what keeps nginx off a stale address (N508): dropping it is drift
    a, b = estate("incident-prod"), estate("incident-prod")
    for container in host(a)["docker"]["containers"]:
        container["restarts_with"] = ["app-blue"] if container["service"] == "app-green" else []
    items = [(i.path, i.a, i.b) for i in compare(a, b).items]
    assert items == [("docker.containers.app-green.restarts_with", ["app-blue"], [])]
    assert compare(a, a).items == []
