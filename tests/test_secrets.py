"""Secrets planted everywhere a host can carry them never reach a snapshot or any report."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.test_cli import audit

SECRETS = {
    "compose_env": "pk_live_COMPOSE_51Hx",
    "dot_env": "DOTENV-s3cr3t-Value",
    "inspect_env": "INSPECT-token-9f8e7d",
    "nginx_header": "QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
    "nginx_body": "return-body-SECRET-42",
    "stderr": "stderr-leak-PASSWORD-77",
}


@pytest.fixture
def estate(tmp_path):
    (tmp_path / ".env").write_text(f"DB_PASSWORD={SECRETS['dot_env']}\n")
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent(f"""\
        services:
          app-blue:
            image: web:1.2.3
            ports: ["3000:3000"]
            environment:
              PORT: "3000"
              STRIPE_KEY: {SECRETS['compose_env']}
              DATABASE_URL: "postgres://app:${{DB_PASSWORD}}@db/app"
        """))
    (tmp_path / "nginx.conf").write_text(textwrap.dedent(f"""\
        http {{
          server {{
            listen 80;
            location / {{
              proxy_set_header Authorization "Basic {SECRETS['nginx_header']}";
              proxy_pass http://127.0.0.1:3000;
            }}
            location = /status {{ return 200 "{SECRETS['nginx_body']}"; }}
          }}
        }}
        """))
    (tmp_path / "inspect.json").write_text(json.dumps([{
        "Name": "/api-1", "State": {"Running": True},
        "Config": {"Image": "api:1.0.0", "Env": ["PORT=8080", f"API_TOKEN={SECRETS['inspect_env']}"]},
        "HostConfig": {"PortBindings": {"8080/tcp": [{"HostPort": "8080"}]}}}]))
    (tmp_path / "stderr.txt").write_text(f"connect failed: {SECRETS['stderr']}")
    fail = "import sys; sys.stderr.write(open('stderr.txt').read()); sys.exit(3)"
    (tmp_path / "audit.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        environments:
          dev:
            hosts:
              - name: web
                match: {{tags: {{Role: web}}}}
                nginx: {{path: nginx.conf}}
                docker: {{compose: [docker-compose.yml]}}
              - name: api
                match: {{tags: {{Role: api}}}}
                nginx: {{command: ["python3", "-c", "{fail}"]}}
                docker: {{inspect: inspect.json}}
        """))
    return tmp_path


@pytest.mark.parametrize("key", [None, "audit-test-key"])
def test_no_planted_secret_reaches_a_snapshot_or_a_report(estate, monkeypatch, key):
    if key:
        monkeypatch.setenv("AUDIT_REDACTION_KEY", key)
    else:
        monkeypatch.delenv("AUDIT_REDACTION_KEY", raising=False)
    out = estate / "dev.json"
    proc = audit("snapshot", "dev", "-o", str(out), "--allow-commands", "--allow-partial", cwd=estate)
    assert proc.returncode == 0, proc.stderr
    texts = {"snapshot": out.read_text(), "stderr": proc.stderr}
    failing = audit("snapshot", "dev", "-o", str(estate / "x.json"), "--allow-commands", cwd=estate)
    texts["error line"] = failing.stderr
    assert "exited 3" in failing.stderr
    other = estate / "stage.json"
    other.write_text(out.read_text().replace('"environment": "dev"', '"environment": "stage"'))
    for fmt in ("text", "json", "sarif", "junit", "markdown", "html"):
        texts[f"check {fmt}"] = audit("check", str(out), "--format", fmt, "--allow-partial", cwd=estate).stdout
        texts[f"diff {fmt}"] = audit("diff", str(out), str(other), "--format", fmt, "--allow-partial",
                                     cwd=estate).stdout
    assert all(texts[f"check {fmt}"] for fmt in ("text", "json", "sarif", "junit", "markdown", "html"))
    for where, text in texts.items():
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} leaked into {where}"
    snap = json.loads(texts["snapshot"])
    web = next(h for h in snap["resources"]["hosts"] if h["name"] == "web")
    env = web["docker"]["containers"][0]["environment"]
    assert env["PORT"] == "3000"
    marker = "hmac:" if key else "<redacted>"
    assert env["STRIPE_KEY"].startswith(marker) and env["DATABASE_URL"].startswith(marker)
    assert "api" in {h["name"] for h in snap["resources"]["hosts"]}
