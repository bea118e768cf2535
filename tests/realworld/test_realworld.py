"""Real public projects (../shared/realworld, SOURCES.md there) audited offline with the audit.yaml beside
this file: every finding at medium or above is listed and was judged by reading the project's files (the
comment says why it is true); what audit cannot see is a named skip, never a finding.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor import config
from auditor.collect import CollectOptions, collect
from auditor.engine import evaluate
from auditor.engine.catalog import builtin_catalog
from auditor.outcomes import Result

HERE = Path(__file__).parent


def audit(project: str, env: str) -> Result:
    cfg = config.load(HERE / project / "audit.yaml")
    snapshot = collect(cfg, env, CollectOptions(offline=True))
    return evaluate.run(snapshot, [env], builtin_catalog())


def serious(result: Result) -> list[tuple[str, str, str, int | None]]:
    """(rule, severity, file name, line) of every finding at medium or above."""
    return sorted((f.rule_id, f.severity, os.path.basename(f.file or ""), f.line)
                  for f in result.findings if f.severity in ("critical", "high", "medium"))


def host_skips(result: Result) -> dict[str, str]:
    """Rule -> reason, for the rules skipped for a host's own data (not the --offline AWS ones)."""
    return {s.rule_id: s.reason for s in result.skipped if "AWS not collected" not in s.reason}


# N508 (medium) is true wherever compose nginx proxies to a service by a literal name, in proxy_pass or in an
# upstream's server (none of these projects restarts nginx with `depends_on: {X: {restart: true}}`): nginx
# resolves it once at start, and a recreated container (a new address) gets 502 until nginx restarts. Each
# host once, at its first place.
EXPECTED = [
    # upstream web1/web2:5000, published 81/82:5000: proved, served; config baked in by COPY (rm default.conf)
    ("awesome-compose", "nodejs-redis", [("N508", "medium", "nginx.conf", 2), ("N508", "medium", "nginx.conf", 3)]),
    ("awesome-compose", "golang", [("N508", "medium", "nginx.conf", 4)]),
    # envsubst with no allow-list in `command:`: rendered, $FLASK_SERVER_ADDR → backend:9091
    ("awesome-compose", "flask-mongo", [("N508", "medium", "nginx.conf", 4)]),
    # start.sh (COPYed to /app) renders default.conf with an allow-list; flask-app publishes 8000
    ("awesome-compose", "wsgi-flask", [("N508", "medium", "default.conf", 7)]),
    ("awesome-compose", "flask-mysql", [("N508", "medium", "conf", 5)]),
    ("django-on-docker", "dev", []),  # no nginx in dev: the ALB would reach web directly
    # upstream hello_django { server web:8000; }, web exposes 8000
    ("django-on-docker", "prod", [("N508", "medium", "nginx.conf", 2)]),
    ("laravel", "dev", []),  # its nginx build edits nginx.conf with sed: unknown, skipped below
    ("netbox", "prod", []),
    ("defectdojo", "prod", []),
    ("frappe", "pwd", []),
    ("frappe", "noproxy", []),
    ("openwisp", "prod", []),
    ("ragflow", "cpu", []),  # nginx runs inside the app image, which is not an nginx image: no nginx found
    # declared: localhost:9380/9381 are the container itself, whose ports publish 9380/9381 (proved)
    ("ragflow", "nginx-declared", []),
    ("nginx-certbot", "prod", [("N508", "medium", "app.conf", 26)]),  # example.org, a placeholder, resolved once
    ("oauth2-proxy", "nginx", [("N508", "medium", "nginx.conf", 10), ("N508", "medium", "nginx.conf", 26)]),
    ("onyx", "dev", [("N508", "medium", "app.conf.template.dev", 16), ("N508", "medium", "app.conf.template.dev", 20)]),
    ("onyx", "prod", [("N508", "medium", "app.conf.template.no-letsencrypt", 34),
                      ("N508", "medium", "app.conf.template.no-letsencrypt", 38)]),
    # The defect pin: run-nginx.sh's envsubst allow-list lost $DOMAIN (ad4efb5f), so ${DOMAIN} stays in
    # ssl_certificate(_key) and nginx refuses `unknown "domain" variable` (real nginx -t agrees, below).
    ("onyx", "prod-letsencrypt", [("N500", "critical", "app.conf.template", 116),
                                  ("N500", "critical", "app.conf.template", 117),
                                  ("N508", "medium", "app.conf.template", 34), ("N508", "medium", "app.conf.template", 38)]),
    # openvidu-server mounts /var/run/docker.sock (docker-compose.yml): control of the host
    ("openvidu", "ce", [("D603", "high", "docker-compose.yml", 24)]),
    # jwilder/nginx-proxy mounts /var/run/docker.sock to read container labels: same
    ("zero-downtime", "prod", [("D603", "high", "docker-compose.yml", 18)]),
]


@pytest.mark.parametrize("project,env,expected", EXPECTED, ids=[f"{p}-{e}" for p, e, _ in EXPECTED])
def test_findings_on_real_projects_are_the_judged_ones(project, env, expected):
    assert serious(audit(project, env)) == expected


# Where what nginx loads cannot be known from the repository, every nginx rule is skipped with the reason.
UNKNOWN = [
    ("defectdojo", "prod", "entrypoint-nginx.sh:22 writes nginx's config at start"),
    ("frappe", "pwd", "start script nginx-entrypoint.sh is not in the repository"),
    ("laravel", "dev", "nginx.dockerfile:14: the build changes /etc/nginx"),
    ("netbox", "prod", "/etc/netbox-nginx/nginx.conf is on volume netbox-nginx-config"),
    ("openwisp", "prod", "init_command.sh:70 writes nginx's config at start"),
    ("zero-downtime", "prod", "runs jwilder/nginx-proxy:1.3-alpine, which writes its config at run time"),
]


@pytest.mark.parametrize("project,env,reason", UNKNOWN, ids=[f"{p}-{e}" for p, e, _ in UNKNOWN])
def test_an_nginx_audit_cannot_read_skips_its_rules_naming_why(project, env, reason):
    skips = host_skips(audit(project, env))
    assert {"N500", "N501", "N502", "N506", "N508", "P105", "P119"} <= set(skips)
    assert all(reason in skips[rule] for rule in ("N500", "P105"))


@pytest.mark.parametrize("project,env,service", [
    ("awesome-compose", "golang", "backend"),  # the Go backend's port is in its source, not the compose file
    ("oauth2-proxy", "nginx", "httpbin"),
    ("onyx", "dev", "web_server"),  # Next.js's default 3000; its Dockerfile deliberately has no EXPOSE
])
def test_a_port_nothing_proves_or_rules_out_is_a_named_skip(project, env, service):
    skips = host_skips(audit(project, env))
    assert f"declare docker.services.{service}.port in audit.yaml" in skips["P105"]


def test_declaring_the_port_proves_it():
    cfg = config.load(HERE / "onyx" / "audit.yaml")
    docker = cfg.environments["dev"].hosts[0].docker
    docker.services = {"web_server": config.Service(port=3000)}
    result = evaluate.run(collect(cfg, "dev", CollectOptions(offline=True)), ["dev"], builtin_catalog())
    assert "P105" not in host_skips(result) and [f for f in serious(result) if f[0] != "N508"] == []
    docker.services = {"web_server": config.Service(port=8000)}  # declared wrong: nginx's 3000 is ruled out
    result = evaluate.run(collect(cfg, "dev", CollectOptions(offline=True)), ["dev"], builtin_catalog())
    assert [f[0] for f in serious(result) if f[0] != "N508"] == ["P105"]


def test_real_nginx_refuses_what_the_onyx_rendering_leaves(tmp_path):
    from tests.collect.test_nginx import _nginx_binary, _nginx_t

    binary = _nginx_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed; `make test` installs it")
        pytest.skip("nginx is not installed")
    conf = tmp_path / "nginx.conf"
    conf.write_text("events {}\nhttp {\n server {\n  listen 8443 ssl;\n"
                    "  ssl_certificate /etc/letsencrypt/live/${DOMAIN}/fullchain.pem;\n"
                    "  ssl_certificate_key /etc/letsencrypt/live/${DOMAIN}/privkey.pem;\n }\n}\n")
    proc = _nginx_t(binary, conf, tmp_path)
    assert proc.returncode != 0 and 'unknown "domain" variable' in proc.stderr, proc.stderr
