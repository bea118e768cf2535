"""`make bench`: wall time of whole `audit` commands on synthetic estates, each beside a baseline
measured in the same run (these machines are noisy: read the ratios, not the seconds), with the
budgets of the performance issue, peak memory, and a scaling plot (bench/scaling.png)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
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


def once(argv: list[str], timeout: float = 300) -> float | None:
    """Wall time of one run of a whole command, or None when it runs past ``timeout``.

    The wait blocks in the kernel: subprocess's own wait with a timeout polls, sleeping up to 50 ms
    between polls, which rounded every time up to the next 50 ms (`--help` read 0.165 s for 0.10 s)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        proc.wait()
    finally:
        killer.cancel()
    elapsed = time.perf_counter() - start
    return None if elapsed >= timeout else elapsed


def timed(argv: list[str], runs: int = 3, timeout: float = 300) -> float | None:
    """Median wall time of a whole command, or None when it runs past ``timeout``."""
    times = []
    for _ in range(runs):
        elapsed = once(argv, timeout)
        if elapsed is None:
            return None
        times.append(elapsed)
    return statistics.median(times)


def interleaved(first: list[str], second: list[str], runs: int) -> tuple[float, float]:
    """Median wall times of two commands run alternately: the machine's drift falls on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for argv, out in ((first, times[0]), (second, times[1])):
            out.append(once(argv) or float("nan"))
    return statistics.median(times[0]), statistics.median(times[1])


def peak_mb(argv: list[str]) -> float:
    out = subprocess.run([PYTHON, "-c", PEAK_RSS, *argv], capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def fmt(t: float | str | None) -> str:
    """Seconds; None for a run past its timeout; a text (such as "not run") as it is."""
    return t if isinstance(t, str) else "timeout" if t is None else f"{t:7.3f} s"


def row(what: str, n: str, ours: float | None, base_name: str, base: float | str | None) -> str:
    ratio = f"{ours / base:6.2f}×" if ours and isinstance(base, float) else "   n/a"
    return f"| {what:<14} | {n:>7} | {fmt(ours)} | {base_name:<22} | {fmt(base)} | {ratio} |"


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


def budget(what: str, value: float | None, limit: float, unit: str = "s", shown: str | None = None) -> str:
    """One line of the budget table: what, measured, the limit, met or MISSED."""
    if value is None:
        return f"| {what} | not measured | ≤ {limit:g} {unit} | not measured |"
    text = shown or (f"{value:.3f} {unit}" if unit == "s" else f"{value:.0f} {unit}")
    return f"| {what} | {text} | ≤ {limit:g} {unit} | {'met' if value <= limit else 'MISSED'} |"


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1_000, 10_000, 100_000]
    lines = ["| what           |       N | audit     | baseline               | baseline  | ratio  |",
             "|----------------|---------|-----------|------------------------|-----------|--------|"]
    budgets = ["| budget (issue #17) | measured | limit | verdict |", "|---|---|---|---|"]
    noop = timed([PYTHON, "-c", "pass"], runs=5)
    help_time = timed(AUDIT + ["--help"], runs=5)
    lines.append(row("--help", "-", help_time, "python -c pass", noop))
    lines.append(row("--version", "-", timed(AUDIT + ["--version"], runs=5), "python -c pass", noop))
    budgets.append(budget("`audit --help`", help_time, 0.150))
    points: dict[str, list[tuple[int, float]]] = {"check": [], "diff": []}
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        for n in sizes:
            dev = write(tmp, n, "dev", n // 2000 + 1)
            prod = write(tmp, n, "prod", 0)
            resources = estate.count(json.loads(Path(dev).read_text()))
            runs = 1 if n >= 100_000 else 5
            load = timed([PYTHON, "-c", f"import json; json.load(open({dev!r}))"])
            check = timed(AUDIT + ["check", dev, "--quiet"], runs=runs)
            lines.append(row("check", str(resources), check, "json.load", load))
            # DeepDiff takes minutes on 100k resources: it is the baseline up to 10k.
            deep = timed([PYTHON, "-c", DEEPDIFF, dev, prod], runs=1, timeout=120) if n <= 10_000 else "  not run"
            diff = timed(AUDIT + ["diff", dev, prod, "--quiet"], runs=runs)
            lines.append(row("diff", str(resources), diff, "DeepDiff ignore_order", deep))
            for name, value in (("check", check), ("diff", diff)):
                if value:
                    points[name].append((resources, value))
            if n == 10_000:
                # Against check run alternately with it: the gate runs every rule too, then its verdict.
                paired, gate = interleaved(AUDIT + ["check", dev, "--quiet"], AUDIT + ["gate", dev, "--quiet"], 7)
                lines.append(row("gate", str(resources), gate, "check, alternately", paired))
                check_mb = peak_mb(AUDIT + ["check", dev, "--quiet"])
                diff_mb = peak_mb(AUDIT + ["diff", dev, prod, "--quiet"])
                budgets += [
                    budget(f"`check` {resources} resources", check, 0.3),
                    # Medians of 7 alternate runs; 5 % is the run-to-run noise of these machines.
                    budget(f"`gate` {resources} resources, against `check` run alternately (×)", gate / paired,
                           1.05, "×", f"{gate:.3f} s = {gate / paired:.2f}× check"),
                    budget(f"`diff` two {resources}-resource snapshots", diff, 0.5),
                    budget(f"peak RSS `check` {resources}", check_mb, 100, "MB"),
                    budget(f"peak RSS `diff` {resources}", diff_mb, 100, "MB"),
                ]
            if n == 100_000:
                budgets.append(budget(f"`check` {resources} resources", check, 3.0))
            print(lines[-1], file=sys.stderr)
    for name, measured in points.items():
        values = dict(measured)
        small = next((r for r in values if 9_000 <= r <= 11_000), None)
        large = next((r for r in values if 90_000 <= r <= 110_000), None)
        if small and large:
            growth = values[large] / values[small]
            budgets.append(budget(f"`{name}`: {large / small:.0f}× the resources, × the time", growth, 11, "×",
                                  f"{growth:.1f}× ({values[small]:.2f} s → {values[large]:.2f} s)"))
    print("\n".join(lines + ["", *budgets, "", plot(points)]))


if __name__ == "__main__":
    main()
