"""Compose as `docker compose config` reads it: the Compose Specification's own Merge and Extend
examples, profiles, includes, project names, env_file, and a real project's base + override."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest

from auditor.collect.host import compose, docker
from tests.conftest import SHARED

P = docker.PublishedPort


def files(tmp_path: Path, **texts: str) -> list[Path]:
    paths = []
    for name, text in texts.items():
        path = tmp_path / name.replace("__", ".")
        path.write_text(textwrap.dedent(text))
        paths.append(path)
    return paths


def merged(tmp_path: Path, *texts: str, **kwargs) -> compose.Model:
    paths = files(tmp_path, **{f"f{i}__yml": t for i, t in enumerate(texts)})
    return compose.load(paths, **kwargs)


# --- the specification's Merge page ----------------------------------------------------------------------


def test_mappings_merge_by_key(tmp_path):
    model = merged(tmp_path, "services:\n  foo:\n    key1: value1\n    key2: value2\n",
                   "services:\n  foo:\n    key2: VALUE\n    key3: value3\n")
    assert model.services["foo"] == {"key1": "value1", "key2": "VALUE", "key3": "value3"}


def test_sequences_are_appended(tmp_path):
    model = merged(tmp_path, "services:\n  foo:\n    dns:\n      - 1.1.1.1\n",
                   "services:\n  foo:\n    dns:\n      - 8.8.8.8\n")
    assert model.services["foo"]["dns"] == ["1.1.1.1", "8.8.8.8"]


def test_shell_commands_are_replaced(tmp_path):
    model = merged(tmp_path, 'services:\n  foo:\n    command: ["echo", "foo"]\n    healthcheck: {test: ["CMD", "a"]}\n',
                   'services:\n  foo:\n    command: ["echo", "bar"]\n    healthcheck: {test: ["CMD", "b"]}\n')
    assert model.services["foo"]["command"] == ["echo", "bar"]
    assert model.services["foo"]["healthcheck"]["test"] == ["CMD", "b"]


def test_unique_resources_merge_by_their_keys(tmp_path):
    model = merged(tmp_path,
                   "services:\n  foo:\n    ports: ['8080:80', '443:443']\n    volumes: ['./a:/data', './c:/cache']\n",
                   "services:\n  foo:\n    ports: ['8080:80', '9090:90']\n    volumes: ['./b:/data']\n")
    assert model.services["foo"]["ports"] == ["8080:80", "443:443", "9090:90"]
    assert model.services["foo"]["volumes"] == ["./b:/data", "./c:/cache"]  # the later source wins for /data


def test_environment_lists_and_mappings_merge_as_mappings(tmp_path):
    model = merged(tmp_path, "services:\n  foo:\n    environment: ['A=1', 'B=2']\n",
                   "services:\n  foo:\n    environment: {B: 3, C: 4}\n")
    assert model.services["foo"]["environment"] == {"A": "1", "B": 3, "C": 4}


def test_reset_removes_and_override_replaces(tmp_path):
    model = merged(tmp_path, "services:\n  foo:\n    image: a\n    ports: ['8080:80', '443:443']\n"
                             "    environment: {A: 1}\n",
                   "services:\n  foo:\n    ports: !reset []\n    environment: !override {B: 2}\n")
    assert "ports" not in model.services["foo"]
    assert model.services["foo"]["environment"] == {"B": 2}


def test_an_empty_list_in_an_override_does_not_clear_the_base_ports(tmp_path):
    # oauth2-proxy's override says `ports: []` for the proxy: sequences append, so 4180 stays published.
    root = SHARED / "realworld" / "oauth2-proxy__oauth2-proxy" / "contrib" / "local-environment"
    containers = docker.parse_compose_files([root / "docker-compose.yaml", root / "docker-compose-nginx.yaml"])
    by_service = {c.service: c for c in containers}
    assert by_service["oauth2-proxy"].ports == [P(host_port=4180, container_port=4180,
                                                  file=str(root / "docker-compose.yaml"), line=23)]
    # The defect at this pin: the override publishes dex's host port 5556 again, to the wrong target.
    assert sorted((p.host_port, p.container_port) for p in by_service["dex"].ports) == [(5556, 4181), (5556, 5556)]
    assert len(containers) == len(by_service) == 5  # one project, not two files concatenated


# --- the specification's Extend page, include, profiles, names ------------------------------------------


def test_extends_in_the_same_file_and_from_another(tmp_path):
    (tmp_path / "common.yml").write_text("services:\n  base:\n    image: app:1\n    environment: {A: 1, B: 1}\n")
    (main,) = files(tmp_path, compose__yml="""\
        services:
          web:
            extends: {file: common.yml, service: base}
            environment: {B: 2}
          worker:
            extends: web
            command: run
        """)
    model = compose.load([main])
    assert model.services["web"] == {"image": "app:1", "environment": {"A": 1, "B": 2}}
    assert model.services["worker"] == {"image": "app:1", "environment": {"A": 1, "B": 2}, "command": "run"}


def test_a_service_extended_from_another_directory_keeps_its_paths_there(tmp_path):
    # Compose resolves the extended service's build context, bind sources and env files against the
    # extended file's directory; the extending file's own keys stay against its own. Near miss: a base
    # in the same directory is not rewritten.
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "base.yml").write_text(
        "services:\n  web:\n    build: ./app\n    env_file: web.env\n"
        "    volumes: ['./nginx.conf:/etc/nginx/conf.d/default.conf:ro', 'data:/data']\n")
    (main,) = files(tmp_path, compose__yml="""\
        services:
          web:
            extends: {file: common/base.yml, service: web}
            volumes: ['./local.conf:/etc/local.conf']
        """)
    web = compose.load([main]).services["web"]
    common = (tmp_path / "common").resolve()
    assert (web["build"], web["env_file"]) == (str(common / "app"), [str(common / "web.env")])
    sources = sorted(v.split(":")[0] if isinstance(v, str) else v["source"] for v in web["volumes"])
    assert str(common / "nginx.conf") in sources and "data" in sources
    assert any(s.endswith("local.conf") and not s.startswith(str(common)) for s in sources)
    (tmp_path / "base.yml").write_text("services:\n  web:\n    build: ./app\n")
    (main,) = files(tmp_path, compose__yml="services:\n  web:\n    extends: {file: base.yml, service: web}\n")
    assert compose.load([main]).services["web"]["build"] == "./app"


def test_include_adds_services_and_refuses_a_conflict(tmp_path):
    (tmp_path / "base.yml").write_text("services:\n  db:\n    image: postgres:16\n    environment: {A: 1}\n")
    (main,) = files(tmp_path, compose__yml="include: [base.yml]\nservices:\n  web:\n    image: app:1\n")
    assert set(compose.load([main]).services) == {"db", "web"}
    # The including file redefining part of an included service is merged over it (compose-go #835).
    main.write_text("include: [base.yml]\nservices:\n  db:\n    image: mysql:8\n")
    assert compose.load([main]).services["db"] == {"image": "mysql:8", "environment": {"A": 1}}
    # Two included files defining one service conflict.
    (tmp_path / "other.yml").write_text("services:\n  db:\n    image: mariadb:11\n")
    main.write_text("include: [base.yml, other.yml]\nservices: {}\n")
    with pytest.raises(compose.ComposeError, match="include other.yml defines service db, which another included"):
        compose.load([main])


def test_an_include_entry_reads_with_its_own_project_directory_and_env_file(tmp_path):
    # A root file including service files: each interpolated from its entry's env_file and its relative
    # paths resolved against its project_directory, as `docker compose config` does.
    service = tmp_path / "services" / "api"
    service.mkdir(parents=True)
    (service / "compose.yml").write_text("services:\n  api:\n    build: .\n    ports: ['${API_PORT}:3000']\n"
                                         "    volumes: ['./conf:/etc/api']\n")
    (service / "Dockerfile").write_text("FROM node:20\nEXPOSE 3000\n")
    (tmp_path / "api.env").write_text("API_PORT=8081\n")
    (main,) = files(tmp_path, compose__yml="include:\n  - path: services/api/compose.yml\n"
                                           "    env_file: api.env\nservices: {}\n")
    (container,) = docker.parse_compose_files([main])
    assert [(p.host_port, p.container_port) for p in container.ports] == [(8081, 3000)]
    assert container.expose == [3000]  # the Dockerfile beside the included file, not beside the root
    assert container.volumes == [str(service / "conf")]
    assert (Path(container.file).name, container.line) == ("compose.yml", 2)


def test_each_published_port_is_placed_at_the_entry_that_wrote_it(tmp_path):
    # Findings about a port point at its `ports:` line: the override's entry where it replaces the
    # base's, the included file for an included service, the base file's for an extended one.
    (tmp_path / "web.yml").write_text("services:\n  web:\n    image: app\n    ports:\n      - 3000:3000\n")
    (tmp_path / "common.yml").write_text("services:\n  base:\n    image: w\n    ports: ['9000:9000']\n")
    base, override = files(tmp_path, compose__yml="""\
        include: [web.yml]
        services:
          green:
            image: app
            ports:
              - "4000:3000"
              - target: 9229
                published: 9229
          worker:
            extends: {file: common.yml, service: base}
        """, override__yml="""\
        services:
          green:
            ports:
              - "4000:3000"
        """)
    by_service = {c.service: c for c in docker.parse_compose_files([base, override])}
    assert [(p.container_port, Path(p.file).name, p.line) for p in by_service["green"].ports] == [
        (3000, "override.yml", 4), (9229, "compose.yml", 7)]
    assert [(Path(p.file).name, p.line) for p in by_service["web"].ports] == [("web.yml", 5)]
    assert (Path(by_service["web"].file).name, by_service["web"].line) == ("web.yml", 2)
    assert [(Path(p.file).name, p.line) for p in by_service["worker"].ports] == [("common.yml", 4)]


def test_profiles_from_audit_yaml_else_compose_profiles_in_env(tmp_path):
    (main,) = files(tmp_path, compose__yml="""\
        services:
          web: {image: app}
          cpu: {image: cpu, profiles: [cpu]}
          gpu: {image: gpu, profiles: [gpu]}
        """)
    assert set(compose.load([main]).services) == {"web"}
    (tmp_path / ".env").write_text("COMPOSE_PROFILES=gpu\n")
    assert set(compose.load([main]).services) == {"web", "gpu"}
    assert set(compose.load([main], profiles=["cpu"]).services) == {"web", "cpu"}


@pytest.mark.parametrize("text,env,name", [
    ("name: My_Project\nservices: {web: {image: a}}\n", {}, "my_project"),
    ("services: {web: {image: a}}\n", {"COMPOSE_PROJECT_NAME": "shop"}, "shop"),
    ("services: {web: {image: a}}\n", {}, None),  # the directory's name
])
def test_the_project_name(tmp_path, text, env, name):
    (main,) = files(tmp_path, compose__yml=text)
    (container,) = docker.parse_compose_files([main], environment=env)
    assert container.name == f"{name or tmp_path.name.lower()}-web-1"


def test_env_file_feeds_the_container_and_environment_wins(tmp_path):
    (tmp_path / "app.env").write_text("PORT=4000\nNODE_ENV=production\n")
    (main,) = files(tmp_path, compose__yml="services:\n  web:\n    image: a\n    env_file: [app.env, missing.env]\n"
                                           "    environment: {NODE_ENV: staging}\n")
    (container,) = docker.parse_compose_files([main])
    assert container.environment == {"PORT": "4000", "NODE_ENV": "staging"}


def test_interpolation_reads_env_and_audit_yaml_never_the_shell(tmp_path, monkeypatch):
    monkeypatch.setenv("APP_PORT", "9999")
    (tmp_path / ".env").write_text("TAG=1.2\n")
    (main,) = files(tmp_path, compose__yml="services:\n  web:\n    image: app:${TAG}\n    ports: ['${APP_PORT:-80}:80']\n")
    (container,) = docker.parse_compose_files([main])
    place = {"file": str(main), "line": 4}
    assert (container.image, container.ports) == ("app:1.2", [P(host_port=80, container_port=80, **place)])
    (container,) = docker.parse_compose_files([main], environment={"APP_PORT": "8080"})
    assert container.ports == [P(host_port=8080, container_port=80, **place)]


def test_an_unset_variable_that_breaks_a_port_is_named(tmp_path):
    (main,) = files(tmp_path, compose__yml="services:\n  web:\n    image: a\n    expose: ['${WEB_PORT}']\n")
    message = r"compose.yml:2: service web: port '' is not a number .* \(variable WEB_PORT is not set\)"
    with pytest.raises(docker.DockerError, match=message):
        docker.parse_compose_files([main])


@pytest.mark.parametrize("spec,fires", [
    ("image: node:14-alpine", True), ("image: redis:alpine", True), ("image: app:nightly", True),
    ("image: nginx", True), ("image: nginx:1.27-alpine", False), ("image: python:3.12-slim", False),
    ("build: ./web\n    image: web:latest", False),  # built here from the checkout: exempt
])
def test_d604_fires_on_pulled_images_with_moving_tags_only(tmp_path, spec, fires):
    from tests.conftest import run

    (main,) = files(tmp_path, compose__yml=f"services:\n  web:\n    {spec}\n")
    (container,) = docker.parse_compose_files([main])
    data = {"schema_version": 1, "environment": "dev", "resources": {"hosts": [
        {"name": "web", "docker": {"containers": [msgspec.to_builtins(container)]}}]}}
    assert [f.rule_id for f in run(data).findings if f.rule_id == "D604"] == (["D604"] if fires else [])


def test_a_dependency_on_an_undefined_service_is_refused_as_compose_refuses_it(tmp_path):
    (main,) = files(tmp_path, compose__yml="services:\n  web:\n    image: app:1\n    depends_on: [db]\n")
    with pytest.raises(compose.ComposeError, match=r"compose.yml:2: service web depends on undefined service db"):
        compose.load([main])
    main.write_text("services:\n  web:\n    image: app:1\n    depends_on: {db: {condition: service_started, "
                    "required: false}}\n")
    assert set(compose.load([main]).services) == {"web"}
