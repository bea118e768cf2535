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
