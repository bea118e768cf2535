"""nginx as a compose service: found without configuration, its config read through the service's
mounts, image and start as the container sees it (DESIGN.md "Nginx inside compose")."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest

from auditor import config as config_module
from auditor.collect import CollectOptions, collect
from auditor.collect.host import dockerfile, nginx_service
from auditor.collect.host.compose import load
from auditor.model.snapshot import Redactor
from tests.collect.test_nginx import _nginx_t, real_nginx  # noqa: F401 - the fixture
from tests.conftest import run

SITE = "server {\n    listen 80;\n    location / {\n        proxy_pass http://web:8000;\n    }\n}\n"


def project(tmp_path: Path, compose: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(compose))
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path / "compose.yaml"


def read(compose: Path, declared: str | None = None, main: Path | None = None):
    model = load([compose])
    found = nginx_service.front(model, nginx_service.find(model, declared))
    assert found is not None
    env = {k: str(v) for k, v in (model.services[found.service].get("environment") or {}).items()}
    return nginx_service.read(model, found, main, env, Redactor(None))


def snapshot_of(tmp_path: Path, hosts: str):
    (tmp_path / "audit.yaml").write_text("version: 1\nenvironments:\n  prod:\n    hosts:\n" + textwrap.indent(
        textwrap.dedent(hosts), "      "))
    cfg = config_module.load(tmp_path / "audit.yaml")
    return collect(cfg, "prod", CollectOptions(offline=True, allow_partial=True))


COMPOSE = """\
    services:
      proxy:
        image: {image}
        ports: ["8080:80"]
        volumes: ["./nginx/site.conf:/etc/nginx/conf.d/default.conf:ro"]
      web:
        image: example/web:1.2.3
        expose: ["8000"]
    """


def with_web(*lines: str, top: str = "", expose: bool = True) -> str:
    """COMPOSE (nginx:1.27.2) with more keys for service web, and top-level keys."""
    text = COMPOSE.format(image="nginx:1.27.2").rstrip(" ")
    if not expose:
        text = text.replace('        expose: ["8000"]\n', "")
    return text + "".join(f"        {line}\n" for line in lines) + (f"    {top}\n" if top else "")


@pytest.mark.parametrize("image", ["nginx:1.27.2", "docker.io/library/nginx:1.27-alpine",
                                   "nginxinc/nginx-unprivileged:1.27.2", "nginx@sha256:" + "a" * 64])
def test_nginx_is_found_by_its_image_and_read_through_its_mount(tmp_path, image):
    compose = project(tmp_path, COMPOSE.format(image=image), {"nginx/site.conf": SITE})
    config = read(compose)
    assert config.service == "proxy"
    assert config.refusals == [] and config.missing_includes == [] and config.unreadable == []
    # the image's nginx.conf includes conf.d/*.conf; the mounted file replaced its default.conf
    assert [(Path(s.file).name, s.listen[0].port) for s in config.servers] == [("site.conf", 80)]
    assert config.servers[0].locations[0].proxy_pass == "http://web:8000"
    assert config.file_mounts == [str(tmp_path / "nginx" / "site.conf")]


@pytest.mark.parametrize("image,family", [
    ("nginx:1.27.2", "nginx"), ("library/nginx", "nginx"), ("docker.io/library/nginx:1.27-alpine", "nginx"),
    ("mirror.gcr.io/library/nginx:1.27", "nginx"), ("public.ecr.aws/docker/library/nginx:stable", "nginx"),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.27", "nginx"),
    ("public.ecr.aws/nginx/nginx:1.27", "nginx"), ("nginx@sha256:" + "a" * 64, "nginx"),
    ("nginxinc/nginx-unprivileged:1.27", "nginx-unprivileged"), ("openresty/openresty:alpine", "openresty"),
    # someone's own images, however their names end
    ("ghcr.io/mailcow/nginx:1.03", None), ("bitnami/nginx:1.27", None), ("localhost:5000/nginx:1.27", None),
    ("nginx/nginx-ingress:3.6", None), ("example/nginx-exporter:1.0", None),
])
def test_only_the_official_images_are_official(image, family):
    assert nginx_service.official(image) == family


def test_someones_own_nginx_image_is_unknown_not_judged_as_the_stock_one(tmp_path):
    # A pulled image named …/nginx whose start writes its own nginx.conf: what runs is unknown. The near
    # miss: the same project built FROM the official image is read (and its site served).
    compose = project(tmp_path, COMPOSE.format(image="ghcr.io/acme/nginx:1.2"), {"nginx/site.conf": SITE})
    config = read(compose)
    assert config.servers == [] and config.missing_includes == []
    assert config.unreadable[0].message.startswith(
        "service proxy runs ghcr.io/acme/nginx:1.2, which is not an official nginx image")
    built = project(tmp_path, COMPOSE.replace("image: {image}", "build: ./nginx"),
                    {"nginx/Dockerfile": "FROM nginx:1.27.2\n"})
    assert [Path(s.file).name for s in read(built).servers] == ["site.conf"]
    (tmp_path / "nginx" / "Dockerfile").write_text("FROM ghcr.io/acme/nginx:1.2\n")
    assert "not an official nginx image" in read(built).unreadable[0].message


def test_a_look_alike_image_is_not_nginx(tmp_path):
    compose = project(tmp_path, COMPOSE.format(image="example/nginx-exporter:1.0"), {"nginx/site.conf": SITE})
    assert nginx_service.find(load([compose]), None) == []


def test_a_mount_beside_the_default_keeps_the_images_default_server(tmp_path):
    compose = project(tmp_path, COMPOSE.replace("/etc/nginx/conf.d/default.conf", "/etc/nginx/conf.d/app.conf")
                      .format(image="nginx:1.27.2"), {"nginx/site.conf": SITE})
    config = read(compose)
    assert [Path(s.file).name for s in config.servers] == ["site.conf", "default.conf"]  # app.conf < default.conf
    assert config.files[-1] == "nginx:1.27.2 image: /etc/nginx/conf.d/default.conf"


def test_includes_resolve_through_the_mounts_against_etc_nginx(tmp_path):
    compose = project(tmp_path, """\
        services:
          proxy:
            image: nginx:1.27.2
            volumes: ["./conf:/etc/nginx/conf.d", "./snippets:/etc/nginx/snippets:ro"]
        """, {
        "conf/site.conf": "server {\n listen 80;\n include mime.types;\n include snippets/proxy.conf;\n"
                          " include /etc/nginx/snippets/missing.conf;\n include /etc/nginx/extra/*.conf;\n}\n",
        "snippets/proxy.conf": "client_max_body_size 10m;\n",
    })
    config = read(compose)
    # mime.types is stock; snippets/ is the mount; a missing literal include under a mounted directory is
    # what nginx refuses; a glob under /etc/nginx that nothing fills matches nothing (N502)
    missing = 'open() "/etc/nginx/snippets/missing.conf" failed (No such file or directory)'
    assert [r.message for r in config.refusals] == [missing]
    assert [m.pattern for m in config.missing_includes] == ["/etc/nginx/extra/*.conf"]
    assert config.servers[0].directives["client_max_body_size"] == ["10m"]


def test_a_mount_whose_source_is_not_in_the_repository_is_unknown_not_missing(tmp_path):
    compose = project(tmp_path, """\
        services:
          proxy:
            image: nginx:1.27.2
            volumes: ["./conf:/etc/nginx/conf.d", "./certbot/conf:/etc/letsencrypt", "tls:/etc/nginx/tls"]
        volumes: {tls: {}}
        """, {"conf/site.conf": "server {\n listen 443 ssl;\n include /etc/letsencrypt/options-ssl-nginx.conf;\n"
                                " include /etc/nginx/tls/params.conf;\n}\n"})
    config = read(compose)
    assert config.refusals == [] and config.missing_includes == []
    assert [u.message for u in config.unreadable] == [
        "/etc/letsencrypt/options-ssl-nginx.conf is bind-mounted from ./certbot/conf, which is not in the repository",
        "/etc/nginx/tls/params.conf is on volume tls, whose contents audit cannot read"]


def test_official_templates_are_rendered_with_the_services_environment_only(tmp_path):
    compose = project(tmp_path, """\
        services:
          proxy:
            image: nginx:1.27.2
            environment: {BACKEND: "web:8000"}
            volumes: ["./templates:/etc/nginx/templates"]
        """, {"templates/default.conf.template": "server {\n listen 80;\n location / {\n"
                                                 "  proxy_set_header Host $host;\n  proxy_pass http://${BACKEND};\n }\n}\n"})
    config = read(compose)
    location = config.servers[0].locations[0]
    assert location.proxy_pass == "http://web:8000"
    assert location.headers == {"Host": "$host"}  # only defined variables are substituted
    assert config.servers[0].file == str(tmp_path / "templates" / "default.conf.template")
    # The official entrypoint renders templates only when the command starts nginx: a shell command
    # leaves only the image's default server.
    (tmp_path / "compose.yaml").write_text((tmp_path / "compose.yaml").read_text().replace(
        "    environment:", "    command: [\"sh\", \"-c\", \"exec nginx -g 'daemon off;'\"]\n    environment:"))
    assert [Path(s.file).name for s in read(compose).servers] == ["default.conf"]


def test_an_envsubst_start_command_is_rendered_as_it_runs(tmp_path):
    # awesome-compose nginx-flask-mongo: envsubst with no allow-list erases every nginx $variable
    compose = project(tmp_path, """\
        services:
          web:
            image: nginx:1.27.2
            volumes: ["./nginx/nginx.conf:/tmp/nginx.conf"]
            environment: ["FLASK_SERVER_ADDR=backend:9091"]
            command: /bin/bash -c "envsubst < /tmp/nginx.conf > /etc/nginx/conf.d/default.conf && nginx -g 'daemon off;'"
        """, {"nginx/nginx.conf": "server {\n listen 80;\n location / {\n  proxy_set_header Host $host;\n"
                                  "  proxy_pass http://$FLASK_SERVER_ADDR;\n }\n}\n"})
    config = read(compose)
    assert config.servers[0].locations[0].proxy_pass == "http://backend:9091"
    # `proxy_set_header Host $host;` became `proxy_set_header Host ;`: nginx refuses it
    assert [(r.message, r.line) for r in config.refusals] == [
        ('invalid number of arguments in "proxy_set_header" directive', 4)]


def test_a_start_that_writes_the_config_otherwise_is_unknown(tmp_path):
    compose = project(tmp_path, """\
        services:
          proxy:
            image: nginx:1.27.2
            volumes: ["./site.conf:/etc/nginx/conf.d/default.conf"]
            command: sh -c "sed -i s/APP/web/ /etc/nginx/conf.d/default.conf && nginx -g 'daemon off;'"
        """, {"site.conf": SITE})
    config = read(compose)
    assert config.servers == [] and "writes nginx's config at start" in config.unreadable[0].message


def test_a_built_image_is_read_from_its_dockerfile(tmp_path):
    # awesome-compose nginx-nodejs-redis: the default server removed, the site COPYed in its place
    compose = project(tmp_path, """\
        services:
          nginx:
            build: ./nginx
            ports: ["80:80"]
        """, {"nginx/Dockerfile": "FROM nginx:1.21.6 AS base\nRUN rm /etc/nginx/conf.d/default.conf\n"
                                  "COPY nginx.conf /etc/nginx/conf.d/default.conf\nEXPOSE 80\n",
              "nginx/nginx.conf": SITE})
    config = read(compose)
    assert [Path(s.file).name for s in config.servers] == ["nginx.conf"]
    assert config.file_mounts == []  # baked in: a deploy rebuilds it


def test_a_build_that_edits_etc_nginx_is_unknown(tmp_path):
    compose = project(tmp_path, "services:\n  app:\n    build: {context: ., dockerfile: nginx.dockerfile}\n",
                      {"nginx.dockerfile": "FROM nginx:stable-alpine\n"
                                           "RUN sed -i 's/user  nginx/user laravel/g' /etc/nginx/nginx.conf\n"})
    config = read(compose)
    assert "nginx.dockerfile:2: the build changes /etc/nginx" in config.unreadable[0].message


def test_a_proxy_that_writes_its_config_at_run_time_is_opaque(tmp_path):
    compose = project(tmp_path, "services:\n  proxy:\n    image: jwilder/nginx-proxy:1.3-alpine\n"
                                "    ports: ['80:80']\n")
    config = read(compose)
    assert "writes its config at run time" in config.unreadable[0].message


def test_dockerfile_target_stage_and_its_parents():
    stages = dockerfile.parse("ARG V=1.25\nFROM nginx:${V} AS base\nEXPOSE 80\nFROM base AS app\nEXPOSE 8080\n"
                              "FROM python:3.12\nEXPOSE 9000\n")
    assert [(s.base, s.name, s.expose) for s in stages] == [("nginx:1.25", "base", [80]), ("base", "app", [8080]),
                                                            ("python:3.12", None, [9000])]


# --- the whole path: collection, topology and rules ---------------------------------------------------------


HOST = """\
- name: web
  match: {tags: {Role: web}}
  docker: {compose: [compose.yaml]%s}
"""


def findings(tmp_path, compose: str, files: dict[str, str], docker_extra: str = ""):
    project(tmp_path, compose, files)
    result = run(msgspec.to_builtins(snapshot_of(tmp_path, HOST % docker_extra)))
    return result


def test_a_port_published_into_nginx_that_no_listen_serves_is_d602_at_its_line(tmp_path):
    # Compose publishes 80:80 into nginx whose mounted nginx.conf listens only on 8080 and 8443: refused,
    # offline too. Near misses: publishing 8080 is quiet; so is the same port on an image that may run
    # more than nginx (its other processes may listen there).
    main = ("events {}\nhttp {\n  server {\n    listen 8080;\n    location / { proxy_pass http://web:8000; }\n  }\n"
            "  server {\n    listen 8443;\n    return 204;\n  }\n}\n")
    compose = COMPOSE.replace("./nginx/site.conf:/etc/nginx/conf.d/default.conf", "./nginx/nginx.conf:/etc/nginx/nginx.conf")
    compose = compose.replace('ports: ["8080:80"]', 'ports:\n          - "8081:8080"\n          - "80:80"')
    result = findings(tmp_path, compose.format(image="nginx:1.27.2"), {"nginx/nginx.conf": main})
    d602 = [(f.message.split(" on host ")[1], f.file, f.line) for f in result.findings if f.rule_id == "D602"]
    assert d602 == [("web publishes container port 80 (host 80), but its config listens on 8080, 8443: connections "
                     "to 80 are refused.", "compose.yaml", 6)]
    result = findings(tmp_path, compose.replace('"80:80"', '"80:8443"').format(image="nginx:1.27.2"),
                      {"nginx/nginx.conf": main})
    assert [f for f in result.findings if f.rule_id == "D602"] == []
    project(tmp_path, compose.format(image="example/app-with-nginx:1.0"), {"nginx/nginx.conf": main})
    declared = snapshot_of(tmp_path, HOST % "" + "  nginx: {service: proxy, path: nginx/nginx.conf}\n")
    assert [s.listen[0].port for s in declared.resources.hosts[0].nginx.servers] == [8080, 8443]
    assert [f for f in run(msgspec.to_builtins(declared)).findings if f.rule_id == "D602"] == []


def test_n508_judges_upstream_servers_like_proxy_pass_and_is_quiet_when_compose_restarts_nginx(tmp_path):
    # web twice by proxy_pass (one finding, at the first), api in an upstream block, cache there with
    # `resolve`. Compose restarting nginx with web (`depends_on: {web: {restart: true}}`) quiets web only.
    site = ("upstream api { server api:9000; }\nupstream cache { server cache:6379 resolve; }\n"
            "server {\n    listen 80;\n    location / { proxy_pass http://web:8000; }\n"
            "    location /b { proxy_pass http://web:8000/b; }\n    location /api { proxy_pass http://api; }\n}\n")
    compose = with_web() + "      api:\n        image: example/api:1\n        expose: ['9000']\n" \
        "      cache:\n        image: redis:7\n        expose: ['6379']\n"

    def n508(text: str) -> list[tuple[str, int]]:
        result = findings(tmp_path, text, {"nginx/site.conf": site})
        return [(f.evidence["host"], f.line) for f in result.findings if f.rule_id == "N508"]

    assert n508(compose) == [("web", 5), ("api", 1)]
    restarted = compose.replace("      web:\n", "      web:\n        depends_on: [api]\n", 1).replace(
        '        volumes: ["./nginx', '        depends_on: {web: {condition: service_started, restart: true}}\n'
        '        volumes: ["./nginx', 1)
    assert n508(restarted) == [("api", 1)]
    assert n508(compose.replace("restart: true", "restart: false")) == [("web", 5), ("api", 1)]


def test_a_typo_in_a_literal_upstream_host_is_n500(tmp_path):
    result = findings(tmp_path, COMPOSE.format(image="nginx:1.27.2"),
                      {"nginx/site.conf": SITE.replace("web:8000", "wbe:8000")})
    assert [(f.rule_id, f.line) for f in result.findings if f.severity in ("critical", "high")] == [("N500", 4)]
    assert 'host not found in upstream "wbe:8000"' in result.findings[0].message


@pytest.mark.parametrize("host_name", ["web", "www.example.com", "localhost", "10.0.0.5"])
def test_names_nginx_can_resolve_are_not_n500(tmp_path, host_name):
    result = findings(tmp_path, COMPOSE.format(image="nginx:1.27.2"),
                      {"nginx/site.conf": SITE.replace("web:8000", f"{host_name}:8000")})
    assert [f.rule_id for f in result.findings if f.rule_id == "N500"] == []


def test_a_service_on_another_network_does_not_resolve(tmp_path):
    compose = with_web("networks: [back]", top="networks: {back: {}}")
    result = findings(tmp_path, compose, {"nginx/site.conf": SITE})
    assert [f.rule_id for f in result.findings if f.rule_id == "N500"] == ["N500"]


def test_an_alias_on_a_shared_network_resolves(tmp_path):
    site = {"nginx/site.conf": SITE.replace("web:8000", "api:8000")}
    result = findings(tmp_path, with_web("networks: {default: {aliases: [api]}}"), site)
    assert [f.rule_id for f in result.findings if f.rule_id in ("N500", "P105")] == []
    result = findings(tmp_path, with_web("networks: {default: {aliases: [app]}}"), site)
    assert [f.rule_id for f in result.findings if f.rule_id in ("N500", "P105")] == ["N500"]


def test_a_variable_host_without_a_resolver_is_p105_and_with_one_passes(tmp_path):
    site = ("server {\n listen 80;\n set $app http://web:8000;\n location / {\n  proxy_pass $app;\n }\n}\n")
    result = findings(tmp_path, COMPOSE.format(image="nginx:1.27.2"), {"nginx/site.conf": site})
    assert [(f.rule_id, f.evidence["cause"]) for f in result.findings if f.rule_id == "P105"] == [
        ("P105", "no resolver is set to resolve web per request")]
    fixed = site.replace(" set $app", " resolver 127.0.0.11 valid=10s;\n set $app")
    result = findings(tmp_path, COMPOSE.format(image="nginx:1.27.2"), {"nginx/site.conf": fixed})
    assert [f.rule_id for f in result.findings if f.rule_id in ("P105", "N500")] == []


def test_p105_fires_when_the_port_is_ruled_out_and_is_skipped_when_unproved(tmp_path):
    compose = with_web(expose=False)
    result = findings(tmp_path, compose, {"nginx/site.conf": SITE})
    assert [f.rule_id for f in result.findings if f.rule_id == "P105"] == []
    assert any(s.rule_id == "P105" and "declare docker.services.web.port" in s.reason for s in result.skipped)
    result = findings(tmp_path, compose, {"nginx/site.conf": SITE}, ", services: {web: {port: 9000}}")
    assert [f.rule_id for f in result.findings if f.rule_id == "P105"] == ["P105"]
    healthy = with_web("healthcheck: {test: [CMD-SHELL, 'curl -f http://localhost:8000/health || exit 1']}",
                       expose=False)
    result = findings(tmp_path, healthy, {"nginx/site.conf": SITE})
    assert not any(s.rule_id == "P105" for s in result.skipped)  # its healthcheck proves 8000


def test_real_nginx_refuses_an_unresolvable_upstream_host(real_nginx, tmp_path):  # noqa: F811
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n server {\n  listen 8080;\n  location / { proxy_pass http://bakend-typo-x:80; }\n"
                    " }\n}\n")
    proc = _nginx_t(real_nginx, conf, tmp_path)
    assert proc.returncode != 0 and "host not found in upstream" in proc.stderr, proc.stderr


START_TEMPLATE = """\
    events {}
    http {
      server {
        listen 80;
        location / {
          proxy_pass http://${BACKEND};
          proxy_set_header Upgrade $http_upgrade;
          proxy_set_header Connection "upgrade";
        }
      }
    }
    """


def start_project(tmp_path: Path, envsubst: str) -> None:
    """A build FROM nginx that copies its own env.sh over /docker-entrypoint.sh and empties conf.d;
    env.sh renders nginx.conf from a template with ``envsubst``."""
    project(tmp_path, """\
        services:
          proxy:
            build: ./nginx
            ports: ["80:80"]
            environment: {BACKEND: "app:3000"}
          app:
            image: example/app:1
            expose: ["3000"]
        """, {"nginx/Dockerfile": "FROM nginx:1.27.2\nCOPY env.sh /docker-entrypoint.sh\n"
                                  "COPY nginx.conf.template /etc/nginx/nginx.conf.template\n"
                                  "RUN rm -f /etc/nginx/conf.d/default.conf\n",
              "nginx/env.sh": f"#!/bin/sh\n{envsubst} < /etc/nginx/nginx.conf.template > /etc/nginx/nginx.conf\n"
                              'exec "$@"\n',
              "nginx/nginx.conf.template": START_TEMPLATE})


def test_a_script_copied_over_the_entrypoint_runs_instead_of_the_official_start(tmp_path):
    # envsubst with no list blanks $http_upgrade too: `proxy_set_header Upgrade ;`, which nginx refuses.
    # The stock nginx.conf (conf.d emptied) never runs: no N502, no D602 on its missing server.
    start_project(tmp_path, "envsubst")
    result = run(msgspec.to_builtins(snapshot_of(tmp_path, HOST % "")))
    serious = [(f.rule_id, Path(f.file or "").name, f.line) for f in result.findings
               if f.severity in ("critical", "high")]
    assert serious == [("N500", "nginx.conf.template", 7)]
    assert 'invalid number of arguments in "proxy_set_header"' in result.findings[0].message
    # The near miss: the same start with an allow-list keeps $http_upgrade, and nginx listens on 80.
    start_project(tmp_path, "envsubst '${BACKEND}'")
    result = run(msgspec.to_builtins(snapshot_of(tmp_path, HOST % "")))
    assert [f.rule_id for f in result.findings if f.severity in ("critical", "high")] == []


def test_real_nginx_refuses_what_envsubst_without_a_list_leaves(real_nginx, tmp_path):  # noqa: F811
    # What `envsubst` writes from START_TEMPLATE with BACKEND=app:3000 set: every other $name blanked.
    conf = tmp_path / "nginx.conf"
    blanked = textwrap.dedent(START_TEMPLATE).replace("${BACKEND}", "127.0.0.1:3000")
    conf.write_text(blanked.replace("$http_upgrade", ""))
    proc = _nginx_t(real_nginx, conf, tmp_path)
    assert proc.returncode != 0 and 'invalid number of arguments in "proxy_set_header"' in proc.stderr, proc.stderr
    conf.write_text(blanked)
    assert _nginx_t(real_nginx, conf, tmp_path).returncode == 0


@pytest.mark.parametrize("compose,files,unknown", [
    ("services:\n  p:\n    build: https://github.com/x/y.git#main\n    image: nginx:1.27.2\n", {},
     "is a remote repository, not in this checkout"),
    ("services:\n  p:\n    image: nginx:1.27.2\n    volumes: ['/etc/nginx/conf.d']\n", {},
     "/etc/nginx/conf.d is on volume (anonymous), whose contents audit cannot read"),
    ("services:\n  p:\n    image: nginx:1.27.2\n    command: /start.sh\n    volumes: ['./s:/start.sh']\n",
     {"s/a": "x"}, "start script /start.sh is not in the repository"),
])
def test_odd_projects_say_what_is_unknown(tmp_path, compose, files, unknown):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "compose.yaml").write_text(compose)
    config = read(tmp_path / "compose.yaml")
    assert config.servers == [] and unknown in config.unreadable[0].message


def test_nginx_sharing_an_apps_network_namespace_reaches_it_on_loopback(tmp_path):
    compose = ("services:\n  app: {image: example/app:1.0, expose: ['3000']}\n  proxy:\n    image: nginx:1.27.2\n"
               "    network_mode: 'service:app'\n    volumes: ['./d.conf:/etc/nginx/conf.d/default.conf']\n")
    site = "server { listen 80; location / { proxy_pass http://127.0.0.1:%d; } }\n"
    (tmp_path / "d.conf").write_text(site % 3000)
    result = findings(tmp_path, compose, {})
    assert [f.rule_id for f in result.findings if f.rule_id in ("P105", "N500")] == []
    (tmp_path / "d.conf").write_text(site % 3001)  # not proved, not ruled out: app runs more than nginx
    result = findings(tmp_path, compose, {})
    assert any(s.rule_id == "P105" and "service app listens on 3001" in s.reason for s in result.skipped)


def test_links_name_a_service_for_nginx_and_fastcgi_hosts_must_resolve(tmp_path):
    compose = ("services:\n  php: {image: example/php:8.3, expose: ['9000']}\n  proxy:\n    image: nginx:1.27.2\n"
               "    links: ['php:backend']\n    volumes: ['./d.conf:/etc/nginx/conf.d/default.conf']\n")
    site = "server { listen 80; location ~ \\.php$ { fastcgi_pass %s:9000; } }\n"
    for name, refused in (("backend", []), ("php", []), ("phpfpm", ["N500"])):
        (tmp_path / "d.conf").write_text(site % name)
        result = findings(tmp_path, compose, {})
        assert [f.rule_id for f in result.findings if f.rule_id == "N500"] == refused, name


def test_nginx_on_the_host_network_reaches_published_ports_and_no_service_names(tmp_path):
    compose = ("services:\n  app: {image: example/app:1.0, ports: ['127.0.0.1:3000:3000']}\n  proxy:\n"
               "    image: nginx:1.27.2\n    network_mode: host\n"
               "    volumes: ['./d.conf:/etc/nginx/conf.d/default.conf']\n")
    site = "server { listen 80; location / { proxy_pass http://%s:3000; } }\n"
    (tmp_path / "d.conf").write_text(site % "127.0.0.1")  # the host's loopback: app's published port
    result = findings(tmp_path, compose, {})
    assert [f.rule_id for f in result.findings if f.rule_id in ("P105", "N500")] == []
    (tmp_path / "d.conf").write_text(site % "app")  # no compose DNS on the host network
    result = findings(tmp_path, compose, {})
    assert [f.rule_id for f in result.findings if f.rule_id in ("P105", "N500")] == ["N500"]


def test_a_secret_a_start_renders_into_the_config_never_reaches_the_snapshot(tmp_path):
    compose = project(tmp_path, """\
        services:
          proxy:
            image: nginx:1.27.2
            environment: {API_TOKEN: "s3cr3t-t0ken", BACKEND: "web:8000"}
            volumes: ["./templates:/etc/nginx/templates"]
        """, {"templates/default.conf.template": "server {\n listen 80;\n set $token ${API_TOKEN};\n"
                                                 " location / { proxy_pass http://${BACKEND}; }\n}\n"})
    config = read(compose)
    assert "s3cr3t-t0ken" not in msgspec.json.encode(config).decode()
    assert config.servers[0].locations[0].proxy_pass == "http://web:8000"


def test_each_nginx_service_is_checked_and_the_front_one_carries_the_path(tmp_path):
    # proxy publishes 8080 and fronts; admin, a second nginx beside it, proxies to a service with a typo
    # (nginx refuses: N500 on admin's file, naming the service) and exposes its version (N504 is about
    # server_tokens). Near miss: admin's config corrected leaves nothing on it; the front one is unchanged.
    compose = COMPOSE.format(image="nginx:1.27.2").rstrip(" ") + (
        "      admin:\n        image: nginx:1.27.2\n"
        '        volumes: ["./nginx/admin.conf:/etc/nginx/conf.d/default.conf:ro"]\n')
    admin = "server {\n    listen 8081;\n    location / {\n        proxy_pass http://wbe:8000;\n    }\n}\n"
    result = findings(tmp_path, compose, {"nginx/site.conf": SITE, "nginx/admin.conf": admin})
    snapshot = snapshot_of(tmp_path, HOST % "")
    host = snapshot.resources.hosts[0]
    assert (host.nginx.service, [n.service for n in host.nginx_beside]) == ("proxy", ["admin"])
    refused = [(f.rule_id, f.resource, f.file, f.line) for f in result.findings if f.rule_id == "N500"]
    assert refused == [("N500", "host:web", "nginx/admin.conf", 4)]
    assert [f.message for f in result.findings if f.rule_id == "N500"][0].startswith(
        'nginx service admin on host web refuses its config: host not found in upstream "wbe:8000"')
    # the paths follow the front nginx only: admin's refusal makes no path unknown
    assert [f.rule_id for f in result.findings if f.rule_id.startswith("P")] == []
    # corrected, admin's config is the front's but for its port: the same rules find the same things in each
    fixed = findings(tmp_path, compose, {"nginx/site.conf": SITE, "nginx/admin.conf": admin.replace("wbe", "web")})
    per_file = {name: sorted(f.rule_id for f in fixed.findings if f.file == f"nginx/{name}")
                for name in ("site.conf", "admin.conf")}
    assert per_file["admin.conf"] == per_file["site.conf"] == ["N504", "N508"]


def test_a_declared_nginx_service_fronts_and_the_other_nginx_is_still_checked(tmp_path):
    compose = COMPOSE.format(image="nginx:1.27.2").rstrip(" ") + (
        "      admin:\n        image: nginx:1.27.2\n"
        '        volumes: ["./nginx/admin.conf:/etc/nginx/conf.d/default.conf:ro"]\n')
    project(tmp_path, compose, {"nginx/site.conf": SITE, "nginx/admin.conf": SITE.replace("web:8000", "wbe:8000")})
    declared = snapshot_of(tmp_path, HOST % "" + "  nginx: {service: proxy}\n")
    assert [n.service for n in declared.resources.hosts[0].nginx_beside] == ["admin"]
    assert [(f.rule_id, f.file) for f in run(msgspec.to_builtins(declared)).findings if f.rule_id == "N500"] == [
        ("N500", "nginx/admin.conf")]
