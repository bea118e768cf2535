"""DESIGN "Locations" in SARIF: every result on one base, %SRCROOT% (the git work tree holding audit.yaml,
else its directory, else the working directory), file findings at the entry at fault, AWS findings at
their environment's key in audit.yaml (or the snapshot file), never audit.yaml:1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema

from fixtures.estates import INCIDENT, write_config, write_hosts
from tests.conftest import SHARED, SNAPSHOTS
from tests.test_cli import audit

SARIF_SCHEMA = json.loads((SHARED / "schemas" / "sarif-2.1.0.json").read_text())


def demo_repository(tmp_path: Path) -> Path:
    """A repository holding the demo estate under keep/ (audit.yaml, envs/, .audit/ snapshots)."""
    repo = tmp_path / "repo"
    keep = repo / "keep"
    (repo / ".git").mkdir(parents=True)
    keep.mkdir()
    for env in INCIDENT:
        write_hosts(keep, env)
    write_config(keep, "http://127.0.0.1:9")
    (keep / ".audit").mkdir()
    for env in ("dev", "prod"):
        shutil.copy(SNAPSHOTS / f"incident-{env}.json", keep / ".audit" / f"{env}.json")
    return repo


def results(sarif: dict) -> list[tuple[str, str, str, int]]:
    out = []
    for run in sarif["runs"]:
        for result in run["results"]:
            physical = result["locations"][0]["physicalLocation"]
            artifact = physical["artifactLocation"]
            out.append((result["ruleId"], artifact.get("uriBaseId", ""), artifact["uri"],
                        physical["region"]["startLine"]))
    return out


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip() == text)


def test_the_demo_in_a_repository_points_every_result_at_its_line_under_srcroot(tmp_path):
    repo = demo_repository(tmp_path)
    proc = audit("check", "-c", "keep/audit.yaml", "keep/.audit/dev.json", "keep/.audit/prod.json",
                 "--format", "sarif", cwd=repo)
    assert proc.returncode == 1, proc.stderr
    sarif = json.loads(proc.stdout)
    jsonschema.validate(sarif, SARIF_SCHEMA)
    assert {json.dumps(run["originalUriBaseIds"]) for run in sarif["runs"]} == {
        json.dumps({"%SRCROOT%": {"uri": repo.resolve().as_uri() + "/"}})}
    found = results(sarif)
    assert {base for _, base, _, _ in found} == {"%SRCROOT%"}
    # the incident: green's `ports:` entry in dev's compose file, relative to the repository root
    compose = repo / "keep" / "envs" / "dev" / "docker-compose.yml"
    p104 = [(uri, line) for rule, _, uri, line in found if rule == "P104"]
    assert p104 == [("keep/envs/dev/docker-compose.yml", 11)]
    lines = compose.read_text().splitlines()
    assert lines[10].strip() == 'ports: ["4000:3000"]'
    assert [line.strip() for line in lines[:10] if line.startswith("  ") and not line.startswith("   ")][-1] == \
        "app-green:"
    # AWS findings at their environment's key in audit.yaml; no result at audit.yaml:1
    config = repo / "keep" / "audit.yaml"
    dev, prod = line_of(config, "dev:"), line_of(config, "prod:")
    a201 = sorted((uri, line) for rule, _, uri, line in found if rule == "A201")
    assert a201 == [("keep/audit.yaml", dev), ("keep/audit.yaml", prod)]
    assert [r for r in found if r[2].endswith("audit.yaml") and r[3] == 1] == []
    # nginx's findings in prod's config, under the same base
    assert {uri for rule, _, uri, _ in found if rule.startswith("N")} <= {"keep/envs/prod/nginx/nginx.conf"}


def test_without_git_the_base_is_audit_yamls_directory_and_an_absolute_config_changes_nothing(tmp_path):
    repo = demo_repository(tmp_path)
    shutil.rmtree(repo / ".git")
    keep = repo / "keep"
    relative = json.loads(audit("check", "-c", "keep/audit.yaml", "keep/.audit/dev.json", "--format", "sarif",
                                cwd=repo).stdout)
    absolute = json.loads(audit("check", "-c", str(keep / "audit.yaml"), str(keep / ".audit" / "dev.json"),
                                "--format", "sarif", cwd=tmp_path).stdout)
    assert relative == absolute
    assert relative["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == keep.resolve().as_uri() + "/"
    found = results(relative)
    assert ("P104", "%SRCROOT%", "envs/dev/docker-compose.yml", 11) in found
    assert ("A201", "%SRCROOT%", "audit.yaml", line_of(keep / "audit.yaml", "dev:")) in found


def test_snapshots_alone_point_aws_findings_at_the_snapshot_file(tmp_path):
    shutil.copy(SNAPSHOTS / "incident-dev.json", tmp_path / "dev.json")
    sarif = json.loads(audit("check", "dev.json", "--format", "sarif", cwd=tmp_path).stdout)
    jsonschema.validate(sarif, SARIF_SCHEMA)
    assert sarif["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    found = results(sarif)
    assert ("A201", "%SRCROOT%", "dev.json", 1) in found
    assert [r for r in found if "audit.yaml" in r[2]] == []
