"""Runs the shell steps of action.yml as GitHub's runner does: each `run:` in bash with its `env:`, the
`${{ … }}` expressions it uses filled in (inputs with their defaults, github.action_path, earlier steps'
outputs), GITHUB_OUTPUT / GITHUB_PATH / GITHUB_STEP_SUMMARY as files. A `uses:` step is not run: its
`with:` is returned, resolved, for the caller to check (the SARIF upload). Used by tests/test_action.py
and, with a built wheel, by tests/wheel/smoke.sh.

    python tests/action_runner.py WORKDIR KEY=VALUE...    # prints the run as JSON
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class Run:
    exit_codes: dict[str, int] = field(default_factory=dict)  # step name → bash's exit code
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)  # step id → its outputs
    uses: dict[str, dict[str, str]] = field(default_factory=dict)  # step name → its resolved `with:`
    summary: str = ""


def _value(expression: str, inputs: dict[str, str], run: Run) -> str:
    if expression.startswith("inputs."):
        return inputs[expression.removeprefix("inputs.")]
    if expression == "github.action_path":
        return str(ROOT)
    match = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
    if match:
        return run.outputs.get(match.group(1), {}).get(match.group(2), "")
    raise ValueError(f"action.yml: an expression this runner does not know: {expression}")


def _fill(text: str, inputs: dict[str, str], run: Run) -> str:
    return EXPRESSION.sub(lambda m: _value(m.group(1), inputs, run), text)


def _outputs(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines if "=" in line)


def run_action(workdir: Path, given: dict[str, str], path: list[str] | None = None, skip: tuple[str, ...] = ()) -> Run:
    """The action's steps in ``workdir``, with ``given`` inputs, but those named in ``skip``; ``path`` is put
    before PATH (the runner's GITHUB_PATH lines are added after the step that writes them)."""
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    unknown = set(given) - set(action["inputs"])
    if unknown:
        raise ValueError(f"action.yml has no input {sorted(unknown)}")
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()} | given
    run = Run()
    extra_path = list(path or [])
    for index, step in enumerate(action["runs"]["steps"]):
        name = step.get("name", f"step {index}")
        if name in skip:
            continue
        if "uses" in step:
            run.uses[name] = {k: _fill(str(v), inputs, run) for k, v in step.get("with", {}).items()}
            continue
        files = {key: workdir / f".{key.lower()}-{index}" for key in ("GITHUB_OUTPUT", "GITHUB_PATH")}
        summary = workdir / ".step-summary"
        env = {**os.environ, **{k: _fill(str(v), inputs, run) for k, v in step.get("env", {}).items()},
               "RUNNER_TEMP": str(workdir / ".runner-temp"), "GITHUB_STEP_SUMMARY": str(summary),
               **{key: str(file) for key, file in files.items()}}
        env["PATH"] = os.pathsep.join([*extra_path, os.environ["PATH"]])
        (workdir / ".runner-temp").mkdir(exist_ok=True)
        # `shell: bash` is `bash --noprofile --norc -eo pipefail {0}` on GitHub's runners
        script = _fill(step["run"], inputs, run)
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=600)
        run.exit_codes[name] = proc.returncode
        if "id" in step:
            run.outputs[step["id"]] = _outputs(files["GITHUB_OUTPUT"])
        if files["GITHUB_PATH"].exists():
            extra_path = files["GITHUB_PATH"].read_text().split() + extra_path
        run.summary = summary.read_text() if summary.exists() else ""
        if proc.returncode != 0:  # a failed step ends the job, as on GitHub (`if: always()` steps aside)
            sys.stderr.write(f"{name}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
            break
    return run


if __name__ == "__main__":
    result = run_action(Path(sys.argv[1]), dict(arg.split("=", 1) for arg in sys.argv[2:]))
    print(json.dumps(result.__dict__, indent=2))
