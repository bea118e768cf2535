"""The use cases (auditor/app.py) as one run of the command line sees them."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from auditor.cli import main
from auditor.topology import Topology

PLANS = Path(__file__).resolve().parent / "plan" / "plans"
ESTATE = Path(__file__).resolve().parent / "plan" / "estate" / "audit.yaml"


def test_gate_with_a_plan_and_against_joins_each_snapshot_once(monkeypatch):
    # The checks, the plan's review and the drift against REF read the same snapshots: the environment
    # now, as the plan leaves it, and REF. Each is joined into paths once (it was four Topologies and
    # four more Keys: joining 10k resources takes a tenth of a second).
    joined: list[int] = []
    original = Topology.__init__

    def counting(self, snapshot, keys):
        joined.append(id(snapshot))
        original(self, snapshot, keys)

    monkeypatch.setattr(Topology, "__init__", counting)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(["gate", "prod", "--plan", str(PLANS / "port-unserved.json"), "--snapshot",
                  str(PLANS / "snapshot.json"), "-c", str(ESTATE), "--against", str(PLANS / "snapshot.json")])
        except SystemExit as exc:
            assert exc.code == 1, out.getvalue()  # the plan leaves the port unserved
    assert len(joined) == 3 and len(set(joined)) == 3
