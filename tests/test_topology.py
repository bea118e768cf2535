"""Topology: nginx's location choice, proxy resolution, the live slot, the path shape."""

from __future__ import annotations

import msgspec
import pytest

from auditor.model import snapshot
from auditor.model.keys import Keys, strip_tokens
from auditor.model.snapshot import NginxLocation
from auditor.topology import Endpoint, HostView, Topology, match_location, parse_url
from tests.conftest import container, estate, host


def topology(data) -> Topology:
    snap = snapshot.from_data(data)
    return Topology(snap, Keys(snap, [snap.environment]))


def view(data, name="web") -> HostView:
    return HostView(msgspec.convert(host(data, name), snapshot.Host, strict=False))


LOCATIONS = [
    NginxLocation(path="/", line=1),
    NginxLocation(path="/health", modifier="=", line=2),
    NginxLocation(path="/static/", modifier="^~", line=3),
    NginxLocation(path=r"\.(png|css)$", modifier="~*", line=4),
    NginxLocation(path="/api/", line=5),
]


@pytest.mark.parametrize("path,line", [
    ("/health", 2),          # exact wins
    ("/health/deep", 1),     # exact only matches exactly
    ("/static/a.png", 3),    # ^~ stops the regex search
    ("/img/a.PNG", 4),       # case-insensitive regex beats a prefix
    ("/api/users", 5),       # longest prefix
    ("/other", 1),
])
def test_location_matching_follows_nginx(path, line):
    assert match_location(LOCATIONS, path).line == line


def test_no_location_matches_without_a_catch_all():
    assert match_location([NginxLocation(path="/api/")], "/health-check") is None


@pytest.mark.parametrize("url,expected", [
    ("http://127.0.0.1:3000", ("127.0.0.1", 3000, None, "http")),
    ("http://app-green:3000/api/", ("app-green", 3000, "/api/", "http")),
    ("https://backend", ("backend", None, None, "https")),
    ("http://[::1]:8080", ("::1", 8080, None, "http")),
    ("unix:/run/app.sock", None),
])
def test_parse_url(url, expected):
    assert parse_url(url) == expected


def test_variables_resolve_through_chains_and_upstreams():
    data = estate("switch-upstream")
    nginx = host(data)["nginx"]
    nginx["variables"] = [{"name": "backend", "value": "app"}, {"name": "url", "value": "http://$backend"}]
    hv = view(data)
    target = hv.resolve("$url")
    assert target.upstream is not None and target.variables == ["url", "backend"]
    assert target.endpoints == [Endpoint("127.0.0.1", 3000), Endpoint("127.0.0.1", 4000)]
    assert "has no `set` value" in hv.resolve("http://$nowhere:3000").unresolved


@pytest.mark.parametrize("change,live,how", [
    (lambda d: None, "blue", "nginx points at it"),
    (lambda d: host(d)["nginx"]["variables"][0].update(value="http://127.0.0.1:4000"), "green", "nginx points at it"),
])
def test_live_slot_from_nginx(change, live, how):
    data = estate("incident-prod")
    change(data)
    assert view(data).live == (live, how)


def test_live_slot_order_running_then_declared_then_unknown():
    data = estate("incident-dev")
    assert view(data).live == (None, "unknown")  # both running, nothing declared
    host(data)["docker"]["live"] = "blue"
    assert view(data).live == ("blue", "audit.yaml declares it")
    container(data, "app-blue")["running"] = False
    assert view(data).live == ("green", "it is the only running slot")
    container(data, "app-blue")["running"] = None  # unknown state: running cannot tell
    assert view(data).live == ("blue", "audit.yaml declares it")


def test_path_shapes_show_the_incident():
    assert topology(estate("incident-dev")).shapes() == ["ALB:80 → TG:3000 → app{blue:3000, green:4000 ✗}"]
    assert topology(estate("incident-prod")).shapes() == ["ALB:80 → TG:80 → nginx:80 → app{blue:3000, green:4000}"]


def test_path_shapes_per_slot_under_the_alb_switch():
    per_slot = ["ALB:80 → TG:3000 → app{blue:3000}", "ALB:80 → TG:4000 → app{green:4000}"]
    assert topology(estate("switch-alb-weighted")).shapes() == per_slot
    assert topology(estate("switch-alb-declared")).shapes() == per_slot


@pytest.mark.parametrize("name,tokens,key", [
    ("web-dev-tg", ["dev"], "web-*-tg"),
    ("web_development.tg", ["dev", "development"], "web_*.tg"),
    ("devops-web-tg", ["dev"], "devops-web-tg"),  # only whole delimited parts
    ("web-DEV-tg", ["dev"], "web-*-tg"),
])
def test_env_tokens_become_star_only_as_whole_parts(name, tokens, key):
    assert strip_tokens(name, tokens) == key


def test_instance_role_key_prefers_role_then_name_without_index():
    data = estate("incident-prod")
    data["resources"]["instances"][1]["tags"].pop("Role")
    snap = snapshot.from_data(data)
    keys = Keys(snap, ["prod"])
    assert keys.instance["i-0prod00000000001"] == "web"
    assert keys.instance["i-0prod00000000002"] == "web-*"


@pytest.mark.parametrize("command,port", [
    ("curl --silent --fail localhost:8000/flask-health-check || exit 1", 8000),
    ('exec 3<>/dev/tcp/127.0.0.1/9000 && echo -e "GET /_health/ HTTP/1.1" >&3', 9000),  # getsentry/self-hosted
    ("echo stats | nc 127.0.0.1 11211", 11211),
    ("wget -qO- http://[::1]:3000/health", 3000),
    ("pg_isready -h localhost", None),
    ("curl -f http://example.com:8080/", None),  # another host proves nothing about this container
])
def test_a_healthcheck_proves_the_port_it_asks_the_container_itself_on(command, port):
    from auditor.topology import healthcheck_port

    assert healthcheck_port(command) == port


def test_of_two_nginx_services_the_one_publishing_the_target_groups_port_fronts():
    # prod's target group sends to 80. Collection took edge (it publishes 8080) for the front and read
    # admin beside it; admin publishes 80, so the paths go through admin and edge is checked beside it.
    # Near miss: admin publishing 8081 leaves edge in front.
    def with_two(admin_port: int) -> Topology:
        data = estate("incident-prod")
        web = host(data)
        edge = dict(web["nginx"], service="edge")
        web["nginx"], web["nginx_beside"] = edge, [dict(edge, service="admin")]
        for name, port in (("edge", 8080), ("admin", admin_port)):
            web["docker"]["containers"].append({"name": name, "service": name, "image": "nginx:1.27.2", "running": True,
                                                "ports": [{"host_port": port, "container_port": 80}]})
        return topology(data)

    fronted = with_two(80)
    assert [(v.nginx_service, v.front) for v in fronted.nginx_views] == [("admin", True), ("edge", False)]
    assert {v.nginx_service for v in fronted.host_views} == {"admin"}
    near = with_two(8081)
    assert [(v.nginx_service, v.front) for v in near.nginx_views] == [("edge", True), ("admin", False)]
