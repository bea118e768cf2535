"""DESIGN "Nothing the user owns is lost, nothing hangs": what `-o` may replace, inputs it must not,
YAML that Compose would refuse, sizes, a full disk, an empty repository — each as a user meets it,
through the command line, as root (CI runs as root, like users' containers)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import SNAPSHOTS
from tests.test_cli import assert_one_line_error, audit

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="device nodes are made with mknod, which needs root")


@pytest.fixture
def snap(tmp_path: Path) -> Path:
    path = tmp_path / "dev.json"
    shutil.copy(SNAPSHOTS / "incident-dev.json", path)
    return path


def _null_device(path: Path) -> Path:
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is, in a directory of the test's
    return path


# --- `-o` never replaces a device, a FIFO or a link ---------------------------------------------------


@root_only
def test_output_to_a_device_writes_into_it_and_leaves_it_a_device(tmp_path, snap):
    null = _null_device(tmp_path / "null")
    proc = audit("check", str(snap), "--format", "json", "-o", str(null))
    assert proc.returncode == 1, proc.stderr  # the incident's findings; written into the device
    assert stat.S_ISCHR(null.lstat().st_mode) and null.stat().st_rdev == os.makedev(1, 3)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


@root_only
def test_output_through_a_link_to_a_device_keeps_both(tmp_path, snap):
    null = _null_device(tmp_path / "null")
    stdout = tmp_path / "stdout"
    stdout.symlink_to(null)  # as /dev/stdout links to a device
    assert audit("check", str(snap), "-o", str(stdout)).returncode == 1
    assert stdout.is_symlink() and os.readlink(stdout) == str(null)
    assert stat.S_ISCHR(null.lstat().st_mode)


def test_output_into_a_fifo_reaches_its_reader_and_leaves_the_fifo(tmp_path, snap):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    proc = audit("check", str(snap), "--format", "json", "-o", str(fifo))
    reader.join(timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert b'"rule_id": "P104"' in received[0]


def test_output_through_a_link_to_a_file_replaces_the_file_and_keeps_the_link(tmp_path, snap):
    target = tmp_path / "reports" / "latest.json"
    target.parent.mkdir()
    target.write_text("yesterday\n")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    assert audit("check", str(snap), "--format", "json", "-o", str(link)).returncode == 1
    assert link.is_symlink() and link.resolve() == target
    assert '"rule_id": "P104"' in target.read_text()


# --- `-o` never names an input ------------------------------------------------------------------------


def test_output_over_the_snapshot_it_reads_is_refused(tmp_path, snap):
    before = snap.read_bytes()
    proc = audit("check", str(snap), "--format", "json", "-o", str(snap))
    assert_one_line_error(proc, f"{snap}: -o names a file this command reads")
    assert snap.read_bytes() == before


def test_output_over_the_same_file_by_another_path_is_refused(tmp_path, snap):
    (tmp_path / "sub").mkdir()
    other = tmp_path / "sub" / ".." / "dev.json"
    assert_one_line_error(audit("check", str(snap), "-o", str(other)), "-o names a file this command reads")


def test_output_over_audit_yaml_is_refused(tmp_path, snap):
    config = tmp_path / "audit.yaml"
    config.write_text("version: 1\nenvironments:\n  dev: {}\n")
    for args in (["check", str(snap)], ["rules"], ["explain", "P104"]):
        proc = audit(*args, "-c", str(config), "-o", str(config))
        assert_one_line_error(proc, f"{config}: -o names a file this command reads ({config})")
    assert config.read_text() == "version: 1\nenvironments:\n  dev: {}\n"


def test_output_over_a_plan_or_a_diff_side_or_a_shard_is_refused(tmp_path, snap):
    plan = tmp_path / "plan.json"
    plan.write_text('{"format_version": "1.2", "resource_changes": []}\n')
    assert_one_line_error(audit("gate", "dev", "--snapshot", str(snap), "--plan", str(plan), "-o", str(plan)),
                          f"{plan}: -o names a file this command reads")
    prod = tmp_path / "prod.json"
    shutil.copy(SNAPSHOTS / "incident-prod.json", prod)
    assert_one_line_error(audit("diff", str(snap), str(prod), "-o", str(prod)), f"{prod}: -o names")
    assert_one_line_error(audit("merge", str(snap), "-o", str(snap)), f"{snap}: -o names")
    assert plan.read_text().startswith('{"format_version"')


def test_a_baseline_written_over_an_input_is_refused(tmp_path, snap):
    proc = audit("check", str(snap), "--write-baseline", str(snap))
    assert_one_line_error(proc, f"{snap}: --write-baseline names a file this command reads")


def test_a_new_output_beside_the_input_is_written(tmp_path, snap):
    out = tmp_path / "report.json"
    assert audit("check", str(snap), "--format", "json", "-o", str(out)).returncode == 1
    assert '"rule_id": "P104"' in out.read_text()


# --- stdout that cannot be written ----------------------------------------------------------------------


@root_only
def test_stdout_to_a_full_disk_is_one_line_naming_it(tmp_path, snap):
    full = tmp_path / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # /dev/full: every write is ENOSPC
    with open(full, "w") as stdout:
        proc = subprocess.run([sys.executable, "-m", "auditor", "check", str(snap)], stdout=stdout,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert_one_line_error(proc, "stdout: cannot write the report: No space left on device")


def test_a_reader_that_goes_away_is_no_error(snap):
    # `true` reads nothing and is gone before the report is written: the write meets a closed pipe.
    proc = subprocess.run(f"{sys.executable} -m auditor check {snap} --format json | true; "
                          f"echo ${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash", capture_output=True,
                          text=True, timeout=60)
    assert proc.stderr == "" and proc.stdout == "1\n"  # the findings' exit code, nothing said


# --- YAML as Compose reads it ---------------------------------------------------------------------------


def test_a_duplicate_environment_in_audit_yaml_names_both_lines(tmp_path, snap):
    config = tmp_path / "audit.yaml"
    config.write_text("version: 1\nenvironments:\n  dev:\n    hosts: []\n  dev: {}\n")
    assert_one_line_error(audit("check", "dev", "--offline", "-c", str(config)),
                          f'{config}:5: invalid YAML: mapping key "dev" already defined at line 3')


def _check_compose(directory: Path, compose: str) -> subprocess.CompletedProcess:
    """`check --offline` of one host whose compose file holds ``compose``."""
    (directory / "docker-compose.yml").write_text(compose)
    (directory / "audit.yaml").write_text("version: 1\nenvironments:\n  dev:\n    hosts:\n      - name: web\n"
                                          "        match: {tags: {Role: web}}\n"
                                          "        docker: {compose: [docker-compose.yml]}\n")
    return audit("check", "dev", "--offline", "-c", str(directory / "audit.yaml"))


def test_a_duplicate_compose_service_is_refused_as_compose_refuses_it(tmp_path):
    proc = _check_compose(tmp_path, "services:\n  app:\n    image: app:1\n    ports: ['3000:3000']\n"
                                    "  app:\n    image: app:2\n")
    assert_one_line_error(proc, 'docker-compose.yml:5: invalid YAML: mapping key "app" already defined at line 2')


def test_a_merge_key_overridden_by_its_own_key_is_no_duplicate(tmp_path):
    from auditor.collect.host import compose

    path = tmp_path / "compose.yaml"
    path.write_text("x-base: &base {image: app:1, restart: always}\n"
                    "services:\n  app:\n    <<: *base\n    image: app:2\n")
    data, _, _ = compose.load_yaml(path)
    assert data["services"]["app"] == {"image": "app:2", "restart": "always"}


def test_a_duplicate_key_in_a_teams_rule_file_is_refused(tmp_path, snap):
    rules = tmp_path / "audit-rules"
    rules.mkdir()
    (rules / "X901.yaml").write_text("id: X901\nname: a\nname: b\n")
    config = tmp_path / "audit.yaml"
    config.write_text("version: 1\nenvironments: {dev: {}}\nrules: {paths: [audit-rules]}\n")
    assert_one_line_error(audit("check", str(snap), "-c", str(config)),
                          'X901.yaml:3: invalid YAML: mapping key "name" already defined at line 2')


# --- sizes ----------------------------------------------------------------------------------------------


def test_an_audit_yaml_over_1_mb_is_refused_unread(tmp_path, snap):
    config = tmp_path / "audit.yaml"
    config.write_text("version: 1\n# " + "x" * 1_000_000 + "\n")
    assert_one_line_error(audit("check", str(snap), "-c", str(config)),
                          f"{config}: config file is over 1 MB, more than any real one: refused unread")


def test_a_compose_file_over_16_mb_is_refused_by_name(tmp_path):
    proc = _check_compose(tmp_path, "services: {}\n# " + "x" * 16_000_000 + "\n")
    assert_one_line_error(proc, "docker-compose.yml: compose file is over 16 MB")


def test_an_nginx_file_over_16_mb_is_refused_by_name(tmp_path):
    from auditor.collect.host import nginx

    path = tmp_path / "nginx.conf"
    path.write_text("events {}\n# " + "x" * 16_000_000 + "\n")
    with pytest.raises(nginx.NginxError, match="nginx.conf: nginx file is over 16 MB"):
        nginx.parse_file(path)


def test_an_nginx_comment_line_of_a_megabyte_is_read(tmp_path):
    # crossplane's own lexer took over 100 s on this; bench/ measures the time, this the result.
    from auditor.collect.host import nginx

    path = tmp_path / "nginx.conf"
    path.write_text("# " + "x" * 1_000_000 + "\nevents {}\nhttp {\n  server {\n    listen 8080;\n"
                    "    server_name " + "a" * 1_000_000 + ";\n  }\n}\n")
    config = nginx.parse_file(path)
    assert [(s.listen[0].port, s.line, len(s.server_names[0])) for s in config.servers] == [(8080, 4, 1_000_000)]
    assert config.refusals == []


# --- `audit init` -----------------------------------------------------------------------------------------


def test_init_in_an_empty_directory_writes_nothing(tmp_path):
    proc = audit("init", str(tmp_path))
    assert_one_line_error(proc, f"{tmp_path}: nothing to draft: no compose file below it; nothing was written")
    assert list(tmp_path.iterdir()) == []

