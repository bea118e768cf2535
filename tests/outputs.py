"""Every output audit writes, recorded into a directory, to prove a move changes no behaviour:

    python -m tests.outputs BEFORE_DIR     # on the commit before the move
    python -m tests.outputs AFTER_DIR      # after it
    diff -r BEFORE_DIR AFTER_DIR           # nothing

check, gate and diff in every format on every fixture estate, the plan gate on every recorded plan,
check on each real project of ../shared/realworld (offline, with tests/realworld's audit.yaml), check
and diff of the 10k-resource bench estate, and the catalog (rules, explain). Each file holds stdout,
then the exit code and stderr. Not a test: the recording takes about two minutes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "fixtures" / "snapshots"
PLANS = ROOT / "tests" / "plan" / "plans"
FORMATS = ("text", "json", "sarif", "junit", "markdown", "html")


def commands(scratch: Path) -> dict[str, list[str]]:
    """Output file name → audit's arguments."""
    out: dict[str, list[str]] = {}
    for snap in sorted(SNAPSHOTS.glob("*.json")):
        for fmt in FORMATS:
            out[f"check-{snap.stem}.{fmt}"] = ["check", str(snap), "--format", fmt]
            out[f"gate-{snap.stem}.{fmt}"] = ["gate", str(snap), "--format", fmt]
            out[f"gate-green-{snap.stem}.{fmt}"] = ["gate", str(snap), "--slot", "green", "--format", fmt]
    for fmt in FORMATS:
        out[f"diff-incident.{fmt}"] = ["diff", str(SNAPSHOTS / "incident-dev.json"),
                                       str(SNAPSHOTS / "incident-prod.json"), "--format", fmt]
        out[f"gate-against-incident.{fmt}"] = ["gate", str(SNAPSHOTS / "incident-dev.json"), "--against",
                                               str(SNAPSHOTS / "incident-prod.json"), "--format", fmt]
    for plan in sorted(PLANS.glob("*.json")):
        if plan.name == "snapshot.json":
            continue
        for fmt in ("text", "json", "markdown"):
            out[f"plan-{plan.stem}.{fmt}"] = ["gate", "prod", "--plan", str(plan), "--snapshot",
                                              str(PLANS / "snapshot.json"), "-c",
                                              str(ROOT / "tests" / "plan" / "estate" / "audit.yaml"), "--format", fmt]
    for config in sorted((ROOT / "tests" / "realworld").glob("*/audit.yaml")):
        for env in sorted(_environments(config)):
            for fmt in ("text", "json", "sarif"):
                out[f"real-{config.parent.name}-{env}.{fmt}"] = ["check", env, "--offline", "-c", str(config),
                                                                 "--format", fmt]
    dev, prod = _bench_estate(scratch)
    for fmt in ("text", "json"):
        out[f"bench-check-10k.{fmt}"] = ["check", str(dev), "--format", fmt]
        out[f"bench-diff-10k.{fmt}"] = ["diff", str(dev), str(prod), "--format", fmt]
    for fmt in ("text", "json", "markdown"):
        out[f"rules.{fmt}"] = ["rules", "--format", fmt]
        out[f"explain-P104.{fmt}"] = ["explain", "P104", "--format", fmt]
    return out


def _environments(config: Path) -> list[str]:
    import yaml

    return list((yaml.safe_load(config.read_text()) or {}).get("environments", {}))


def _bench_estate(scratch: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    from bench import estate

    paths = []
    for env, drift in (("dev", 6), ("prod", 0)):
        path = scratch / f"{env}-10k.json"
        path.write_text(json.dumps(estate.generate(10_000, env, drift=drift)))
        paths.append(path)
    return paths[0], paths[1]


def record(name: str, args: list[str], into: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    (into / name).write_text(f"{proc.stdout}\n--- exit {proc.returncode}\n{proc.stderr}")


def main() -> None:
    into = Path(sys.argv[1])
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="audit-outputs-") as scratch:
        todo = commands(Path(scratch))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda item: record(item[0], item[1], into), todo.items()))
    print(f"recorded {len(todo)} outputs into {into}")


if __name__ == "__main__":
    main()
