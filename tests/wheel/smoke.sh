#!/usr/bin/env bash
# What users install is the wheel: build it, install it into a fresh venv outside the checkout, and
# run audit from another directory. It must list every rule, run the demo, and fail the incident's
# green gate, exactly like the checkout. Called by `make test` (target wheel-check).
set -euo pipefail
python=${1:?usage: smoke.sh PYTHON}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/audit-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() { echo "wheel check: $*" >&2; exit 1; }

"$python" -m venv "$work/build-venv"
"$work/build-venv/bin/pip" install --quiet --upgrade pip build 2>&1 | grep -v "^WARNING: Location" || true
"$work/build-venv/bin/python" -m build --wheel --outdir "$work/dist" "$root" > "$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; fail "the wheel did not build"; }
# Current setuptools warns about deprecated metadata (a license table, classifiers): none may remain.
if grep -qiE "deprecat" "$work/build.log"; then grep -iE -A3 "deprecat" "$work/build.log" >&2; fail "the build warns"; fi
wheel=$(ls "$work"/dist/auditor-*.whl)
"$python" -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
sys.exit(not {'auditor/rules/P101.yaml', 'auditor/fixtures/estates.py'} <= set(names))" "$wheel" \
  || fail "$wheel does not carry the rule catalog and the demo estate"

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$wheel[demo]" 2>&1 | grep -v "^WARNING: Location" || true
audit="$work/venv/bin/audit"
mkdir "$work/elsewhere" && cd "$work/elsewhere"

rules=$("$audit" rules | grep -cE '^[A-Z][0-9]{3} ') || true
catalog=$(ls "$root"/rules/*.yaml | wc -l)
[ "$rules" -eq "$catalog" ] || fail "audit rules lists $rules rules, the catalog has $catalog"

"$audit" demo > demo.out 2>&1 || { cat demo.out >&2; fail "audit demo failed"; }
grep -q "P104" demo.out || { cat demo.out >&2; fail "audit demo did not show P104"; }
# Its next steps run as printed, with the venv not on PATH (nothing activated).
explain=$(grep -E ' explain P104$' demo.out | sed 's/^ *//')
PATH=/usr/bin:/bin bash -c "$explain" > explain.out 2>&1 || { cat explain.out >&2; fail "'$explain' did not run"; }

# Nothing the user owns is lost: -o never replaces an input, a device or a FIFO.
cp "$root/fixtures/snapshots/incident-dev.json" dev.json
set +e
"$audit" check dev.json --format json -o dev.json 2> refused.err
code=$?
set -e
[ "$code" -eq 2 ] && grep -q "dev.json: -o names a file this command reads" refused.err   && cmp -s dev.json "$root/fixtures/snapshots/incident-dev.json" || fail "-o over the snapshot read was not refused"
mkfifo report.fifo
cat report.fifo > fifo.out &
"$audit" check dev.json --format json -o report.fifo > /dev/null 2>&1 || true
wait
[ -p report.fifo ] && grep -q '"P104"' fifo.out || fail "-o into a FIFO did not reach its reader, or replaced it"
mkdir empty
set +e
"$audit" init empty 2> init.err
code=$?
set -e
[ "$code" -eq 2 ] && [ -z "$(ls -A empty)" ] || fail "audit init in an empty directory exited $code or wrote a file"

set +e
"$audit" gate "$root/fixtures/snapshots/incident-dev.json" --slot green > gate.out 2>&1
code=$?
set -e
[ "$code" -eq 1 ] || { cat gate.out >&2; fail "the incident's green gate exited $code, not 1"; }

# The plan gate from the wheel: a real Terraform plan that leaves the live slot unserved.
cp -r "$root/tests/plan/estate" plan-estate
set +e
"$audit" gate prod --plan "$root/tests/plan/plans/port-unserved.json" --snapshot "$root/tests/plan/plans/snapshot.json" \
  -c plan-estate/audit.yaml > plan.out 2>&1
code=$?
set -e
[ "$code" -eq 1 ] && grep -q "planned: aws_lb_target_group.web: replaced (port 80 → 8080)" plan.out \
  || { cat plan.out >&2; fail "the plan gate exited $code, not 1 naming aws_lb_target_group.web"; }
# The GitHub Action: every shell step as the runner runs it, its install step installing this wheel.
mkdir action && cp dev.json action/
"$work/venv/bin/python" "$root/tests/action_runner.py" "$work/elsewhere/action" command=gate environment=dev.json \
  "args=--slot green" "package=$wheel" "python=$python" > action.json 2> action.err \
  || { cat action.err >&2; fail "the action's steps did not run"; }
"$work/venv/bin/python" -c "import json, sys; run = json.load(open('action.json')); sys.exit(not (
    run['exit_codes'] == {'Install auditor': 0, 'Run audit': 0, 'Verdict': 1}
    and run['outputs']['audit'] == {'exit-code': '1', 'report': 'audit.sarif'}))" \
  || { cat action.json action.err >&2; fail "the action did not install the wheel, gate, and fail last"; }
echo "wheel check: $(basename "$wheel") from $work/elsewhere: $rules rules, demo ran and its next step as printed," \
  "-o refused over an input and kept a FIFO, init wrote nothing in an empty directory, incident gate exit 1, plan gate exit 1," \
  "the action installed the wheel and failed its gate last"
