"""`audit demo`: the incident, live. moto in server mode on a free loopback port inside this process,
the estate from fixtures/estates.py, then the three commands a team would run."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import click

from auditor import app, collect, config
from auditor.errors import AuditError
from auditor.fixtures import estates
from auditor.report.text import Text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The incident, told before the commands that find it.
STORY = (
    "The incident: in dev the target group sends to port 3000, the blue slot\n"
    "publishes 3000, green 4000, and there is no nginx (prod's follows the slot).\n"
    "Deploying green lost dev's traffic. audit finds that seam before the deploy:"
)
# The demo endpoint's keys: moto accepts any, and these open nothing anywhere else.
DEMO_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# What the demo wrote in a kept directory (path → sha256): a later run may replace those files, and
# only those, unchanged.
MANIFEST = ".audit-demo.json"


def run(keep: str | None, colour: bool, width: int | None = None) -> None:
    """The demo; with ``keep``, the estate stays in that directory and its endpoint up until Ctrl-C,
    so that the commands it prints work as shown."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise AuditError("audit demo needs moto's server: pip install 'auditor[demo]' (make demo does)") from None
    if keep:
        claim(Path(keep))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on the user's terminal
    os.environ.update(DEMO_KEYS)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    started = time.monotonic()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="audit-demo-") as scratch:
            root = Path(keep).resolve() if keep else Path(scratch)
            _run(root, f"http://127.0.0.1:{port}", Text(colour, width), started)
            if keep:
                _sign(root)
                _serve(root, f"http://127.0.0.1:{port}")
            else:
                audit = audit_command(absolute=False)
                click.echo(f"\nNext:\n  {audit} explain P104\n      why it fires, and the fix\n"
                           f"  {audit} demo --keep ./audit-demo\n"
                           "      keep this estate and its endpoint up, and run the commands yourself")
    finally:
        server.stop()


def audit_command(absolute: bool) -> str:
    """How to call this audit where the demo prints it: `audit` when that is on PATH and is this
    install; else this install's script by its path (after `make demo` the venv is not activated);
    else `python -m auditor` with this interpreter."""
    script = Path(sys.executable).parent / "audit"
    found = shutil.which("audit")
    if found and script.exists() and Path(found).resolve() == script.resolve():
        return "audit"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m auditor"
    if not absolute and script.resolve().is_relative_to(Path.cwd().resolve()):
        return shlex.quote(os.path.relpath(script))
    return shlex.quote(str(script))


def claim(root: Path) -> None:
    """Refuse a directory that holds a file the demo did not write there, or one changed since: a
    hand-written audit.yaml must never be replaced by the demo's."""
    if not root.exists():
        return
    if not root.is_dir():
        raise AuditError(f"{root}: not a directory (audit demo --keep needs a new or empty one)")
    try:
        written = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        written = {}
    for path, name in _files(root):
        if not isinstance(written, dict) or written.get(name) != _digest(path):
            raise AuditError(f"{path}: audit demo --keep did not write this file (or it changed since); "
                             "give a new or empty directory")


def _files(root: Path) -> list[tuple[Path, str]]:
    found = [(p, p.relative_to(root).as_posix()) for p in sorted(root.rglob("*")) if not p.is_dir()]
    return [(p, name) for p, name in found if name != MANIFEST]


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""  # unreadable, a dangling link: not what the demo wrote


def _sign(root: Path) -> None:
    from auditor.model.snapshot import write_atomic

    write_atomic(root / MANIFEST, json.dumps({name: _digest(p) for p, name in _files(root)}, indent=2) + "\n")


def _serve(root: Path, endpoint: str) -> None:
    config_path = shlex.quote(str(root / "audit.yaml"))
    saved = shlex.quote(str(root / ".audit" / "dev.json"))
    keys = " ".join(f"{k}={v}" for k, v in DEMO_KEYS.items())
    audit = audit_command(absolute=True)
    click.echo(f"""
The estate is kept in {root}
and its AWS endpoint ({endpoint}) stays up until Ctrl-C.
In another terminal (the keys are the demo endpoint's; they open nothing else):

  export {keys}
  {audit} gate dev --slot green -c {config_path}
  {audit} gate prod -c {config_path}
  {audit} diff dev prod -c {config_path}
  {audit} snapshot dev -c {config_path} -o dev.json

After Ctrl-C the saved snapshots still work, offline:

  {audit} gate {saved} --slot green
  {audit} check {saved}""")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("\ndemo endpoint stopped; the files stay in " + str(root))


def _run(root: Path, endpoint: str, text: Text, started: float) -> None:
    say = click.echo
    say(STORY)
    cfg = config.load(estates.build_incident(root, endpoint))
    snapshots = {env: collect.collect(cfg, env, collect.CollectOptions()) for env in ("dev", "prod")}
    for env, snap in snapshots.items():
        app.save_snapshot(snap, str(root / ".audit" / f"{env}.json"))
    calls = {env: sum(n for s in snap.sources.values() for n in s.api_calls.values()) for env, snap in snapshots.items()}
    inputs = app.Inputs(cfg, snapshots.__getitem__)  # the use cases the commands run, on what was just collected
    say(text.style("\n$ audit diff dev prod", bold=True))
    say(text.render_diff(app.diff(inputs, [snapshots["dev"], snapshots["prod"]])), nl=False)
    say(text.style("\n$ audit check dev", bold=True))
    say(text.render_check(app.check(inputs, [snapshots["dev"]])), nl=False)
    answer = app.gate(inputs, "dev", "green", "high")
    say(text.style("\n$ audit gate dev --slot green", bold=True))
    say(text.render_gate(answer.result, answer.verdict), nl=False)
    passed = answer.verdict.passed
    say(f"exit {0 if passed else 1}: the gate refuses green" if not passed else "exit 0")
    say(f"\nThe demo built dev and prod on a local AWS endpoint (moto) and read them\n"
        f"back with {calls['dev']} + {calls['prod']} API calls in {time.monotonic() - started:.1f} s.")
