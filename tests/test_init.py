"""`audit init`: a draft audit.yaml from the repository (and the account with --aws) that runs as it is.
On every project of ../shared/realworld the draft runs `audit check --offline` without edits; on the demo
estate (live on moto) it finds dev and prod, their hosts, slots, nginx and scope, and its gate refuses
green in dev as the hand-written audit.yaml does."""

from __future__ import annotations


import pytest
import yaml

from tests.conftest import SHARED
from tests.test_cli import assert_one_line_error, audit

PROJECTS = sorted(p.name for p in (SHARED / "realworld").iterdir() if p.is_dir())


@pytest.mark.parametrize("project", PROJECTS)
def test_the_draft_of_a_real_project_runs_offline_as_it_is(project, tmp_path):
    out = tmp_path / "audit.yaml"
    proc = audit("init", str(SHARED / "realworld" / project), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {out}: ")
    environments = list(yaml.safe_load(out.read_text())["environments"])
    assert environments, proc.stdout
    check = audit("check", *environments, "--offline", "-c", str(out), "--fail-on", "never")
    assert check.returncode == 0, check.stderr


def test_what_the_draft_finds_in_real_projects(tmp_path):
    def draft(project: str) -> dict:
        out = tmp_path / f"{project}.yaml"
        assert audit("init", str(SHARED / "realworld" / project), "-o", str(out)).returncode == 0
        return yaml.safe_load(out.read_text())["environments"]

    onyx = draft("onyx-dot-app__onyx")
    assert sorted(onyx) == ["dev", "prod", "prod-no-letsencrypt"]
    assert onyx["prod"]["hosts"][0]["nginx"] == {"service": "nginx"}
    django = draft("testdrivenio__django-on-docker")
    assert sorted(django) == ["default", "prod"]
    assert django["prod"]["hosts"][0]["docker"]["compose"][0].endswith("docker-compose.prod.yml")


def test_init_never_overwrites(tmp_path):
    (tmp_path / "audit.yaml").write_text("version: 1\n")
    assert_one_line_error(audit("init", str(tmp_path)), "audit.yaml exists: audit init never overwrites it")
    assert (tmp_path / "audit.yaml").read_text() == "version: 1\n"


def draft_of(tmp_path, files: dict[str, str]) -> tuple[dict, str]:
    for name, text in files.items():
        path = tmp_path / "repo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    out = tmp_path / "audit.yaml"
    proc = audit("init", str(tmp_path / "repo"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(out.read_text())["environments"], proc.stdout


def test_include_fragments_are_not_environments_and_a_variant_that_needs_the_base_stacks_on_it(tmp_path):
    environments, _ = draft_of(tmp_path, {
        "compose.yml": "include: [api/compose.yml]\nservices:\n  db:\n    image: postgres:16\n",
        "api/compose.yml": "services:\n  api:\n    image: example/api:1\n",
        # e2e alone depends on db, which only the base defines: compose refuses it alone
        "compose.e2e.yml": "services:\n  tests:\n    image: example/e2e:1\n    depends_on: [db]\n",
    })
    assert sorted(environments) == ["default", "e2e"]
    assert [p.rsplit("/", 1)[-1] for p in environments["e2e"]["hosts"][0]["docker"]["compose"]] == [
        "compose.yml", "compose.e2e.yml"]


def test_two_nginx_services_are_both_named_and_a_caddy_is_not_nginx(tmp_path):
    nginx = "    image: nginx:1.27.2\n"
    environments, said = draft_of(tmp_path, {"compose.yml": (
        "services:\n  edge:\n" + nginx + "    ports: ['80:80']\n  static:\n" + nginx +
        "  app:\n    image: example/app:1\n")})
    assert environments["default"]["hosts"][0]["nginx"] == {"service": "edge"}
    assert "nginx services edge, static: edge fronts" in said
    environments, said = draft_of(tmp_path / "c", {"compose.yml": (
        "services:\n  proxy:\n    image: caddy:2.8\n    ports: ['80:80']\n  app:\n    image: example/app:1\n")})
    assert "nginx" not in environments["default"]["hosts"][0]
    assert "service proxy runs caddy:2.8, a proxy audit does not read as nginx" in said
    assert "no nginx found" not in said


def test_a_snippet_a_compose_nginx_mounts_is_not_a_host_nginxs_main_file():
    # oauth2-proxy: the nginx variant mounts ./nginx.conf as conf.d/default.conf; the base environment
    # beside it has no nginx, and must not get that snippet as a host nginx.path.
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audit.yaml"
        assert audit("init", str(SHARED / "realworld" / "oauth2-proxy__oauth2-proxy"), "-o", str(out)).returncode == 0
        environments = yaml.safe_load(out.read_text())["environments"]
    assert "nginx" not in environments["local-environment"]["hosts"][0]
    assert environments["nginx"]["hosts"][0]["nginx"] == {"service": "nginx"}


def test_a_start_script_that_renders_the_nginx_template_finds_that_nginx(tmp_path):
    # Whatever the image is called, a service whose start renders nginx's config is the nginx. The near
    # miss: a start script that renders something else.
    script = "#!/bin/sh\nenvsubst '${UPSTREAM}' < /tpl/app.conf.template > {dest}\nexec nginx -g 'daemon off;'\n"
    files = {"compose.yml": "services:\n  edge:\n    image: registry.example.com/edge:3\n    ports: ['80:80']\n"
                            "    entrypoint: /nginx-entrypoint.sh\n    volumes: ['./edge/nginx-entrypoint.sh:"
                            "/nginx-entrypoint.sh', './edge:/tpl']\n  app:\n    image: example/app:1\n",
             "edge/app.conf.template": "server { listen 80; location / { proxy_pass http://${UPSTREAM}; } }\n"}
    environments, _ = draft_of(tmp_path, {**files, "edge/nginx-entrypoint.sh": script.replace(
        "{dest}", "/etc/nginx/conf.d/app.conf")})
    assert environments["default"]["hosts"][0]["nginx"] == {"service": "edge"}
    environments, _ = draft_of(tmp_path / "miss", {**files, "edge/nginx-entrypoint.sh": script.replace(
        "{dest}", "/srv/app.conf")})
    assert "nginx" not in environments["default"]["hosts"][0]
