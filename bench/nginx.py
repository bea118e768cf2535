"""`make bench`, nginx reading: a config with one long line (a comment, a token, a quoted string) at 1 MB
and 10 MB, read by audit's nginx reader, beside reading the file alone (the floor) and crossplane's own
lexer, which audit's replaced (quadratic: it is timed at small sizes only, and stopped at 60 s).

Reading must be linear (DESIGN "Nothing the user owns is lost, nothing hangs"): a 10 MB line in well
under a second, and ten times the line about ten times the time."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.collect.host import nginx  # noqa: E402

MB = 1_000_000
SERVER = "events {}\nhttp {\n  server {\n    listen 80;\n    location / { return 200; }\n  }\n}\n"
SHAPES = {
    "comment": lambda n: "# " + "x" * n + "\n" + SERVER,
    "token": lambda n: SERVER.replace("listen 80;", "listen 80;\n    server_name " + "a" * n + ";"),
    "quoted": lambda n: SERVER.replace("return 200;", 'return 200 "' + "a b" * (n // 3) + '";'),
}
# Timed inside its own process, which is stopped when it runs past the timeout.
CROSSPLANE = ("import sys, time, crossplane.lexer; start = time.perf_counter(); "
              "list(crossplane.lexer.lex(sys.argv[1])); print(time.perf_counter() - start)")


def median_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def crossplane_seconds(path: Path, timeout: float = 60) -> float | None:
    try:
        done = subprocess.run([sys.executable, "-c", CROSSPLANE, str(path)], check=True, timeout=timeout,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout)


def main() -> None:
    rows = ["| line | size | audit reads | file read (floor) | crossplane's lexer |", "|---|---|---|---|---|"]
    budgets = ["| budget | measured | limit | verdict |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="audit-bench-nginx-") as tmp:
        for shape, make in SHAPES.items():
            ours: dict[int, float] = {}
            theirs: float | None = 0.0
            for size in (MB // 10, MB // 5, MB, 10 * MB):
                path = Path(tmp) / f"{shape}-{size}.conf"
                path.write_text(make(size))
                ours[size] = median_of(3, lambda: nginx.parse_file(path))
                floor = median_of(3, path.read_text)
                # The next size runs only while the last took under a second: quadratic growth is minutes.
                ran = theirs is not None and theirs < 1.0
                theirs = crossplane_seconds(path) if ran else None
                shown = (f"{theirs:.2f} s" if theirs is not None else "over 60 s" if ran
                         else "not run (the last size took over 1 s)")
                rows.append(f"| {shape} | {size / MB:g} MB | {ours[size]:.3f} s | {floor:.3f} s | {shown} |")
                print(rows[-1], file=sys.stderr)
            growth = ours[10 * MB] / ours[MB]
            budgets.append(f"| {shape}: a 10 MB line | {ours[10 * MB]:.3f} s | ≤ 1 s | "
                           f"{'met' if ours[10 * MB] <= 1 else 'MISSED'} |")
            budgets.append(f"| {shape}: 10× the line, × the time | {growth:.1f}× | ≤ 12× | "
                           f"{'met' if growth <= 12 else 'MISSED'} |")
    print("\n".join(rows + ["", *budgets]))


if __name__ == "__main__":
    main()
