"""Every reader through the command line, as a user runs it: whatever a file holds, `audit` reads it or
exits 2 with one line naming that file — never a traceback, never an internal error, never a write
beside `-o`, and within a bounded time (hypothesis's deadline). The readers: audit.yaml, a compose
file, an nginx config, a Dockerfile, a Terraform plan, a snapshot, a baseline."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.cli import main
from tests.conftest import SNAPSHOTS

# 40 examples a reader in the suite; AUDIT_EXAMPLES=1000 for a deeper search by hand.
SETTINGS = settings(max_examples=int(os.environ.get("AUDIT_EXAMPLES", "40")), deadline=dt.timedelta(seconds=20),
                    suppress_health_check=[HealthCheck.too_slow])
scalars = st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12)


def tree(keys: list[str]) -> st.SearchStrategy:
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(keys), inner, max_size=4), max_leaves=20)


def yaml_text(keys: list[str]) -> st.SearchStrategy[str]:
    """Text that is mostly YAML of the right keys, sometimes with a key given twice, sometimes noise."""
    dumped = tree(keys).map(lambda data: yaml.safe_dump(data, sort_keys=False))
    doubled = dumped.map(lambda text: text + text.splitlines()[0] + "\n" if ":" in text.splitlines()[0] else text)
    return dumped | doubled | st.text(max_size=200)


def json_text(keys: list[str]) -> st.SearchStrategy[str]:
    return tree(keys).map(json.dumps) | st.text(max_size=200)


CONFIG = ("version: 1\nenvironments:\n  dev:\n    hosts:\n      - name: web\n        match: {tags: {Role: web}}\n"
          "        nginx: {path: nginx.conf}\n        docker: {compose: [docker-compose.yml]}\n")
COMPOSE = "services:\n  app:\n    build: .\n    ports: ['3000:3000']\n"
NGINX = "events {}\nhttp { server { listen 80; location / { proxy_pass http://127.0.0.1:3000; } } }\n"
DOCKERFILE = "FROM node:20\nEXPOSE 3000\n"


def repository(directory: Path) -> None:
    """A small valid repository, one of whose files each test replaces with what hypothesis makes."""
    for name, text in [("audit.yaml", CONFIG), ("docker-compose.yml", COMPOSE), ("nginx.conf", NGINX),
                       ("Dockerfile", DOCKERFILE)]:
        (directory / name).write_text(text)
    shutil.copy(SNAPSHOTS / "incident-dev.json", directory / "snap.json")
    (directory / "plan.json").write_text('{"format_version": "1.2", "resource_changes": []}\n')
    (directory / "base.json").write_text('{"schema_version": 1, "tool": "auditor", "findings": []}\n')


def files(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in directory.rglob("*") if p.is_file()}


def read_as_a_user_would(name: str, text: str, args: Callable[[Path], list[str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        repository(directory)
        (directory / name).write_text(text)
        before = files(directory)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([*args(directory), "-o", str(directory / "report.out")])
                code = 0
            except SystemExit as exc:
                code = exc.code
        after = files(directory)
    stderr = err.getvalue()
    assert code in (0, 1, 2), (code, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("audit: error: ") and name in lines[0], stderr
    assert {k: v for k, v in after.items() if k != "report.out"} == before  # nothing written beside -o


def offline(directory: Path) -> list[str]:
    return ["check", "dev", "--offline", "-c", str(directory / "audit.yaml")]


@SETTINGS
@given(yaml_text(["version", "environments", "dev", "hosts", "name", "match", "tags", "nginx", "docker", "path",
                  "compose", "slots", "blue", "service", "rules", "diff", "suppressions", "aws", "region"]))
def test_audit_yaml(text):
    read_as_a_user_would("audit.yaml", text, offline)


@SETTINGS
@given(yaml_text(["services", "app", "image", "build", "ports", "expose", "environment", "volumes", "include",
                  "extends", "profiles", "networks", "target", "published", "context", "dockerfile"]))
def test_compose_file(text):
    read_as_a_user_would("docker-compose.yml", text, offline)


NGINX_WORDS = ["server", "listen", "80", "location", "/", "proxy_pass", "http://app:3000", "include", "*.conf",
               "set", "$x", "upstream", "return", "200", "http", "events", "{", "}", ";", "#", "\n", "'", '"', "\\"]


@SETTINGS
@given(st.lists(st.sampled_from(NGINX_WORDS), max_size=60).map(" ".join) | st.text(max_size=200))
def test_nginx_config(text):
    read_as_a_user_would("nginx.conf", text, offline)


DOCKER_WORDS = ["FROM", "node:20", "AS", "build", "EXPOSE", "3000", "8080/tcp", "ENV", "PORT=4000", "ARG", "CMD",
                "ENTRYPOINT", "COPY", ".", "/app", "RUN", "\\\n", "\n", "${PORT}", "#"]


@SETTINGS
@given(st.lists(st.sampled_from(DOCKER_WORDS), max_size=40).map(" ".join) | st.text(max_size=200))
def test_dockerfile(text):
    read_as_a_user_would("Dockerfile", text, offline)


@SETTINGS
@given(json_text(["format_version", "resource_changes", "address", "type", "change", "actions", "before", "after",
                  "after_unknown", "configuration", "root_module", "resources", "expressions", "port", "name",
                  "aws_lb_target_group", "create", "update", "delete", "references"]))
def test_terraform_plan(text):
    read_as_a_user_would("plan.json", text, lambda d: ["gate", "dev", "--snapshot", str(d / "snap.json"),
                                                       "--plan", str(d / "plan.json")])


@SETTINGS
@given(json_text(["schema_version", "environment", "resources", "sources", "target_groups", "hosts", "port",
                  "name", "docker", "containers", "status"]))
def test_snapshot(text):
    read_as_a_user_would("snap.json", text, lambda d: ["check", str(d / "snap.json")])


@SETTINGS
@given(json_text(["schema_version", "tool", "findings", "rule_id", "resource", "fingerprint"]))
def test_baseline(text):
    read_as_a_user_would("base.json", text, lambda d: ["check", str(d / "snap.json"), "--baseline",
                                                       str(d / "base.json")])
