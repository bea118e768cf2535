"""nginx shapes gixy-ng knows, read from real config text by the real reader: the exact N findings a
config must produce, and the near misses that must stay quiet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from auditor.collect.host import nginx
from auditor.engine import evaluate
from auditor.engine.catalog import builtin_catalog
from auditor.model.snapshot import Host, Resources, Snapshot, SourceStatus


def n_findings(tmp_path: Path, server: str, http: str = "") -> list[tuple[str, int | None]]:
    """(rule, line) of the N findings (N504, server_tokens, left out) of one server block."""
    path = tmp_path / "nginx.conf"
    path.write_text(f"events {{}}\nhttp {{\n{http}  server {{\n    listen 80;\n    server_tokens off;\n"
                    f"{server}  }}\n}}\n")
    snap = Snapshot(environment="t", sources={"aws": SourceStatus(status="not_requested", reason="--offline")},
                    resources=Resources(hosts=[Host(name="web", nginx=nginx.parse_file(path))]))
    result = evaluate.run(snap, ["t"], builtin_catalog(), today=dt.date(2026, 12, 2))
    return [(f.rule_id, f.line) for f in result.findings if f.rule_id.startswith("N")]


def test_a_scheme_and_host_captured_from_the_uri_into_variables_is_an_open_proxy(tmp_path):
    # gixy-ng's shape: the scheme and the host come from the URI through `set`.
    server = ("    location ~* ^/internal-proxy/(https?)/(.*?)/(.*) {\n"
              "      set $p $1;\n      set $h $2;\n      set $rest $3;\n      proxy_pass $p://$h/$rest;\n    }\n")
    assert n_findings(tmp_path, server) == [("N505", 10)]


def test_a_capture_only_in_the_path_or_a_scheme_variable_is_no_open_proxy(tmp_path):
    server = ("    location ~ ^/api/(.*)$ {\n      proxy_pass http://127.0.0.1:3000/$1;\n    }\n"
              "    location / {\n      proxy_pass $scheme://127.0.0.1:3000;\n    }\n")
    assert n_findings(tmp_path, server) == []


def test_add_header_inherit_off_is_an_explicit_opt_out_not_a_silent_drop(tmp_path):
    http = "  add_header X-Frame-Options DENY;\n"
    quiet = "    location /static/ {\n      add_header_inherit off;\n      add_header Cache-Control public;\n    }\n"
    fires = "    location /static/ {\n      add_header Cache-Control public;\n    }\n"
    assert n_findings(tmp_path, quiet, http) == []
    assert n_findings(tmp_path, fires, http) == [("N506", 8)]


def severity_of(tmp_path: Path, server: str) -> list[tuple[str, str, int | None]]:
    path = tmp_path / "nginx.conf"
    path.write_text(f"events {{}}\nhttp {{\n  server {{\n    listen 80;\n    server_tokens off;\n{server}  }}\n}}\n")
    snap = Snapshot(environment="t", sources={"aws": SourceStatus(status="not_requested", reason="--offline")},
                    resources=Resources(hosts=[Host(name="web", nginx=nginx.parse_file(path))]))
    result = evaluate.run(snap, ["t"], builtin_catalog(), today=dt.date(2026, 12, 2))
    return [(f.rule_id, f.severity, f.line) for f in result.findings if f.rule_id.startswith("N")]


def test_an_alias_without_a_slash_on_either_side_reaches_its_siblings(tmp_path):
    # /files-old/ is served from /home-old/: a partial traversal, medium; the full one (alias with a
    # slash under a location without) stays high. Near misses: both with slashes, and one file aliased.
    partial = "    location /files {\n      alias /home;\n    }\n"
    full = "    location /files {\n      alias /home/;\n    }\n"
    quiet = ("    location /files/ {\n      alias /home/;\n    }\n"
             "    location /favicon.ico {\n      alias /srv/www/favicon.ico;\n    }\n")
    assert severity_of(tmp_path, partial) == [("N507", "medium", 7)]
    assert severity_of(tmp_path, full) == [("N507", "high", 7)]
    assert severity_of(tmp_path, quiet) == []
