"""`make bench`: wall time of whole `audit` commands on synthetic estates, each beside a baseline
measured in the same run (these machines are noisy: read the ratios, not the seconds)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import estate  # noqa: E402

PYTHON = sys.executable
AUDIT = [PYTHON, "-m", "auditor"]
DEEPDIFF = ("import json, sys; from deepdiff import DeepDiff; "
            "a, b = (json.load(open(p)) for p in sys.argv[1:]); DeepDiff(a, b, ignore_order=True)")
BUDGET = {"check": 0.5, "diff": 1.0}


def timed(argv: list[str], runs: int = 3, timeout: float = 300) -> float | None:
    """Median wall time of a whole command, or None when it runs past ``timeout``."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return None
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(name: str, n: int, ours: float | None, base_name: str, base: float | None) -> str:
    def fmt(t: float | None) -> str:
        return "timeout" if t is None else f"{t:7.3f} s"

    ratio = f"{ours / base:6.2f}×" if ours and base else "   n/a"
    budget = BUDGET.get(name)
    verdict = "" if budget is None or n < 10_000 or ours is None else ("met" if ours < budget else f"MISSED (<{budget} s)")
    return f"| {name:<5} | {n:>6} | {fmt(ours)} | {base_name:<20} | {fmt(base)} | {ratio} | {verdict}"


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1_000, 10_000]
    lines = ["| what  |      N | audit     | baseline             | baseline  | ratio  | budget",
             "|-------|--------|-----------|----------------------|-----------|--------|-------"]
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        for n in sizes:
            files = []
            for env, drift in (("dev", n // 2000 + 1), ("prod", 0)):
                path = Path(tmp) / f"{env}-{n}.json"
                path.write_text(json.dumps(estate.generate(n, env, drift=drift)))
                files.append(str(path))
            resources = estate.count(json.loads(Path(files[0]).read_text()))
            load = timed([PYTHON, "-c", f"import json; json.load(open({files[0]!r}))"])
            lines.append(row("check", resources, timed(AUDIT + ["check", files[0], "--quiet"]), "json.load", load))
            deep = timed([PYTHON, "-c", DEEPDIFF, *files], runs=1, timeout=120)
            lines.append(row("diff", resources, timed(AUDIT + ["diff", *files, "--quiet"]),
                             "DeepDiff ignore_order", deep))
            print(lines[-2], lines[-1], sep="\n", file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
