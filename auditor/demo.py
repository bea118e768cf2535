"""`audit demo`: the incident, live. moto in server mode on a free loopback port inside this process,
the estate from fixtures/estates.py, then the three commands a team would run."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import click

from auditor import collect, config, diff, engine, gate, snapshot
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


def run(keep: str | None, colour: bool, width: int | None = None) -> None:
    """The demo; with ``keep``, the estate stays in that directory and its endpoint up until Ctrl-C,
    so that the commands it prints work as shown."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise AuditError("audit demo needs moto's server: pip install 'auditor[demo]' (make demo does)") from None
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
                _serve(root, f"http://127.0.0.1:{port}")
            else:
                click.echo("\nNext:\n  audit explain P104               why it fires, and the fix\n"
                           "  audit demo --keep ./audit-demo   keep this estate and its endpoint up,\n"
                           "                                   and run the commands yourself")
    finally:
        server.stop()


def _serve(root: Path, endpoint: str) -> None:
    config_path = root / "audit.yaml"
    keys = " ".join(f"{k}={v}" for k, v in DEMO_KEYS.items())
    click.echo(f"""
The estate is kept in {root}
and its AWS endpoint ({endpoint}) stays up until Ctrl-C.
In another terminal (the keys are the demo endpoint's; they open nothing else):

  export {keys}
  audit gate dev --slot green -c {config_path}
  audit gate prod -c {config_path}
  audit diff dev prod -c {config_path}
  audit snapshot dev -c {config_path} -o dev.json

After Ctrl-C the saved snapshots still work, offline:

  audit gate {root / ".audit" / "dev.json"} --slot green
  audit check {root / ".audit" / "dev.json"}""")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("\ndemo endpoint stopped; the files stay in " + str(root))


def _run(root: Path, endpoint: str, text: Text, started: float) -> None:
    say = click.echo
    say(STORY)
    config_path = estates.build_incident(root, endpoint)
    cfg = config.load(config_path)
    snapshots = {}
    for env in ("dev", "prod"):
        snapshots[env] = collect.collect(cfg, env, collect.CollectOptions())
        snapshot.save(snapshots[env], root / ".audit" / f"{env}.json")
    calls = {env: sum(n for s in snap.sources.values() for n in s.api_calls.values()) for env, snap in snapshots.items()}
    say(text.style("\n$ audit diff dev prod", bold=True))
    say(text.render_diff([diff.compare(snapshots["dev"], snapshots["prod"], ["dev"], ["prod"], cfg.diff)]), nl=False)
    today = dt.date.today()
    result = engine.run_configured(snapshots["dev"], cfg, ["dev"], today)
    say(text.style("\n$ audit check dev", bold=True))
    say(text.render_check([result]), nl=False)
    verdict = gate.evaluate(result, "green", "high")
    say(text.style("\n$ audit gate dev --slot green", bold=True))
    say(text.render_gate(result, verdict), nl=False)
    say(f"exit {0 if verdict.passed else 1}: the gate refuses green" if not verdict.passed else "exit 0")
    say(f"\nThe demo built dev and prod on a local AWS endpoint (moto) and read them\n"
        f"back with {calls['dev']} + {calls['prod']} API calls in {time.monotonic() - started:.1f} s.")
