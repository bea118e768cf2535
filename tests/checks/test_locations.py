"""A finding about a published port points at its own `ports:` entry (DESIGN "Locations"), read from
real compose files offline: not the service's line, not audit.yaml."""

from __future__ import annotations

import json
from pathlib import Path

from auditor.fixtures import estates
from tests.test_cli import audit


def test_port_findings_point_at_the_ports_entry_at_fault(tmp_path: Path):
    for env in estates.INCIDENT:
        estates.write_hosts(tmp_path, env)
    config = estates.write_config(tmp_path, "http://127.0.0.1:9")
    compose = tmp_path / "envs" / "prod" / "docker-compose.yml"
    # Green publishes blue's 3000 (D601) and a debugger on every interface while nginx fronts it (D605),
    # each entry on its own line; its PORT is among the mapped ports, so D602 stays quiet.
    compose.write_text(compose.read_text().replace('    ports: ["127.0.0.1:4000:3000"]\n', (
        "    ports:\n"
        "      - 127.0.0.1:3000:3000\n"
        "      - 9229:9229\n")))
    lines = compose.read_text().splitlines()
    proc = audit("check", "prod", "--offline", "-c", str(config), "--format", "json", "--fail-on", "never")
    assert proc.returncode == 0, proc.stderr
    found = {f["rule_id"]: (f["file"], f["line"]) for f in json.loads(proc.stdout)["findings"]
             if f["rule_id"] in ("D601", "D602", "D605")}
    assert found == {"D601": ("envs/prod/docker-compose.yml", lines.index("      - 127.0.0.1:3000:3000") + 1),
                     "D605": ("envs/prod/docker-compose.yml", lines.index("      - 9229:9229") + 1)}
