"""`make bench`: wall time of whole `audit` commands on synthetic estates, each beside a baseline
measured in the same run (these machines are noisy: read the ratios, not the seconds), with the
budgets of the performance issue, peak memory, and a scaling plot (bench/scaling.png)."""

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
PEAK_RSS = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
PLOT = Path(__file__).resolve().parent / "scaling.png"


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


def peak_mb(argv: list[str]) -> float:
    out = subprocess.run([PYTHON, "-c", PEAK_RSS, *argv], capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def fmt(t: float | None) -> str:
    return "timeout" if t is None else f"{t:7.3f} s"


def row(what: str, n: str, ours: float | None, base_name: str, base: float | None, budget: str = "") -> str:
    ratio = f"{ours / base:6.2f}×" if ours and base else "   n/a"
    return f"| {what:<14} | {n:>7} | {fmt(ours)} | {base_name:<22} | {fmt(base)} | {ratio} | {budget}"


def verdict(value: float | None, limit: float, unit: str = "s") -> str:
    if value is None:
        return "not measured"
    return f"< {limit:g} {unit}: {'met' if value < limit else 'MISSED'}"


def write(tmp: str, n: int, env: str, drift: int) -> str:
    path = Path(tmp) / f"{env}-{n}.json"
    path.write_text(json.dumps(estate.generate(n, env, drift=drift)))
    return str(path)


def plot(points: dict[str, list[tuple[int, float]]]) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (make bench installs it)"
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, values in points.items():
        axis.plot([n for n, _ in values], [t for _, t in values], marker="o", label=label)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("resources in the snapshot")
    axis.set_ylabel("wall time of the whole command (s)")
    axis.set_title("audit: time against estate size")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)
    return f"plot: {PLOT}"


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1_000, 10_000, 100_000]
    lines = ["| what           |       N | audit     | baseline               | baseline  | ratio  | budget",
             "|----------------|---------|-----------|------------------------|-----------|--------|-------"]
    noop = timed([PYTHON, "-c", "pass"], runs=5)
    help_time = timed(AUDIT + ["--help"], runs=5)
    lines.append(row("--help", "-", help_time, "python -c pass", noop, verdict(help_time, 0.150)))
    lines.append(row("--version", "-", timed(AUDIT + ["--version"], runs=5), "python -c pass", noop))
    points: dict[str, list[tuple[int, float]]] = {"check": [], "diff": []}
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        for n in sizes:
            dev = write(tmp, n, "dev", n // 2000 + 1)
            resources = estate.count(json.loads(Path(dev).read_text()))
            load = timed([PYTHON, "-c", f"import json; json.load(open({dev!r}))"])
            check = timed(AUDIT + ["check", dev, "--quiet"], runs=1 if n >= 100_000 else 3)
            budget = {10_000: 0.5, 100_000: 5.0}.get(n)
            lines.append(row("check", str(resources), check, "json.load", load,
                             verdict(check, budget) if budget else ""))
            if check:
                points["check"].append((resources, check))
            if n <= 10_000:
                prod = write(tmp, n, "prod", 0)
                deep = timed([PYTHON, "-c", DEEPDIFF, dev, prod], runs=1, timeout=120)
                diff = timed(AUDIT + ["diff", dev, prod, "--quiet"])
                lines.append(row("diff", str(resources), diff, "DeepDiff ignore_order", deep,
                                 verdict(diff, 1.0) if n == 10_000 else ""))
                if diff:
                    points["diff"].append((resources, diff))
            if n == 10_000:
                lines.append(f"| peak RSS check |  {resources} | {peak_mb(AUDIT + ['check', dev, '--quiet']):6.0f} MB | "
                             f"{'':22} |           |        | < 200 MB")
                lines.append(f"| peak RSS diff  |  {resources} | "
                             f"{peak_mb(AUDIT + ['diff', dev, prod, '--quiet']):6.0f} MB | {'':22} |           |        "
                             "| < 200 MB")
            print(lines[-1], file=sys.stderr)
    checks = sorted(points["check"])
    if len(checks) >= 2:
        (small, t_small), (large, t_large) = checks[-2], checks[-1]
        growth = t_large / t_small
        lines.append(f"\ncheck: {large / small:.0f}× the resources ({small} → {large}) took {growth:.1f}× the time "
                     f"(budget ≤ 12× for 10×: {'met' if growth <= 12 * (large / small) / 10 else 'MISSED'})")
    lines.append(plot(points))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
