"""Shared helpers: the hand-written estates in fixtures/ and a way to run the rules on them."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from auditor.model import snapshot
from auditor.engine import evaluate
from auditor.engine.catalog import builtin_catalog
from auditor.outcomes import Result

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "fixtures" / "snapshots"
SHARED = ROOT.parent / "shared"


def estate(name: str) -> dict[str, Any]:
    """A fixture snapshot as plain data, to be changed by a test before it is checked."""
    return copy.deepcopy(json.loads((SNAPSHOTS / f"{name}.json").read_text()))


def run(data: dict[str, Any], tokens: list[str] | None = None) -> Result:
    snap = snapshot.from_data(data)
    return evaluate.run(snap, tokens or [snap.environment], builtin_catalog(), today=dt.date(2026, 11, 25))


def fired(data: dict[str, Any], rule_id: str | None = None) -> list[tuple[str, str, str | None]]:
    """(rule id, resource, slot) of the findings of one rule, or (by default) of every path rule."""
    return [(f.rule_id, f.resource, f.slot) for f in run(data).findings
            if (f.rule_id == rule_id if rule_id else f.rule_id.startswith("P"))]


def host(data: dict[str, Any], name: str = "web") -> dict[str, Any]:
    return next(h for h in data["resources"]["hosts"] if h["name"] == name)


def container(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for h in data["resources"]["hosts"] for c in h["docker"]["containers"] if c["name"] == name)


@pytest.fixture
def write_json(tmp_path: Path):
    def write(data: Any, name: str = "snap.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    return write


def pytest_collection_modifyitems(config, items):
    """The corpus and schemas live in ../shared beside the checkout (as in CI); without them the
    corpus tests would silently collect nothing, so say it loudly instead."""
    if not (SHARED / "corpus").is_dir():
        raise pytest.UsageError(f"{SHARED}/corpus is missing: the tests read the shared corpus beside the checkout")


def pytest_configure(config):
    """The real-terraform estate of tests/plan is built once per session, by the process that runs it
    (xdist's controller, which idles while its workers test), in the background."""
    if not hasattr(config, "workerinput"):
        from tests.plan.conftest import start_estate

        start_estate(config)


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        from tests.plan.conftest import stop_estate

        stop_estate(config)
