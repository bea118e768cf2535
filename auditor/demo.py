"""`audit demo`: the incident, live. moto in server mode on a free loopback port inside this process,
the estate from fixtures/estates.py, then the three commands a team would run."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
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


def run(keep: str | None, colour: bool) -> None:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise AuditError("audit demo needs moto's server: pip install 'auditor[demo]' (make demo does)") from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on the user's terminal
    # The demo talks only to its own endpoint; these keys open nothing anywhere else.
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")
    os.environ.pop("AWS_PROFILE", None)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    started = time.monotonic()
    server.start()
    try:
        with tempfile.TemporaryDirectory(prefix="audit-demo-") as scratch:
            root = Path(keep) if keep else Path(scratch)
            _run(root, f"http://127.0.0.1:{port}", colour, started, keep is not None)
    finally:
        server.stop()


def _run(root: Path, endpoint: str, colour: bool, started: float, kept: bool) -> None:
    text = Text(colour)
    say = click.echo
    config_path = estates.build_incident(root, endpoint)
    say(f"Built the incident's dev and prod on a local AWS endpoint ({endpoint}) in {root}")
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
    say(f"\n{calls['dev']} + {calls['prod']} API calls; demo took {time.monotonic() - started:.1f} s"
        + (f"; estate kept in {root} (audit.yaml, envs/, .audit/)" if kept else ""))
