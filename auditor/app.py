"""The use cases: what runs in which order to check, diff, gate (with a plan, against another
environment) and save a snapshot. The command line and the demo both call these; neither wires the
pipeline by hand. Nothing here parses flags or prints: the caller renders what comes back.

The library loads inside the functions: `audit --help` imports this module and nothing heavy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.errors import AuditError, GateDataMissing, SnapshotError

if TYPE_CHECKING:
    from auditor.config import Config
    from auditor.engine.catalog import Rule
    from auditor.model.snapshot import Snapshot
    from auditor.outcomes import Drift, Places, Result, Review, Verdict


@dataclass
class Inputs:
    """What every use case reads: audit.yaml (None when only snapshot files are named), how an
    environment it names is collected live (the command line shows progress while that runs), and
    whether a partial collection may be used."""

    config: Config | None
    collect: Callable[[str], Snapshot]
    allow_partial: bool = False
    # environment → the snapshot file it was first read from (where a report without audit.yaml points)
    origins: dict[str, str] = field(default_factory=dict)

    def tokens(self, environment: str) -> list[str]:
        from auditor.config import tokens_for

        return tokens_for(self.config, environment)


def is_snapshot_file(target: str) -> bool:
    return target.endswith(".json") or Path(target).is_file()


def load(inputs: Inputs, targets: list[str]) -> list[Snapshot]:
    """Snapshots per environment, in the order first named; shards of one environment merged."""
    from auditor.model import snapshot as snapshot_module

    by_env: dict[str, list[Snapshot]] = {}
    for target in targets:
        if not is_snapshot_file(target):
            snap = inputs.collect(target)
            by_env.setdefault(snap.environment, []).append(snap)
            continue
        snap = snapshot_module.load(target)
        inputs.origins.setdefault(snap.environment, target)
        if not inputs.allow_partial:
            # Not asked for (--offline, no aws in audit.yaml) is no partial read: its rules skip, saying so.
            partial = sorted(name for name, s in snap.sources.items() if s.status not in ("ok", "not_requested"))
            if partial:
                raise SnapshotError(f"{target}: collection of {', '.join(partial)} was partial "
                                    "(pass --allow-partial to use it anyway)")
        by_env.setdefault(snap.environment, []).append(snap)
    return [snapshot_module.merge(shards) for shards in by_env.values()]


def load_sides(inputs: Inputs, targets: list[str]) -> list[Snapshot]:
    """The sides of a diff, in the order named. Shards of one collection (the same environment, other
    slices) merge into one side; the same environment collected twice (slices in common, or none at
    all: yesterday's file against today's) is two sides, told apart by when each was collected."""
    from auditor.model import snapshot as snapshot_module

    sides: list[list[Snapshot]] = []
    for target in targets:
        (snap,) = load(inputs, [target])
        for side in sides:
            first = side[0]
            taken = {s for shard in side for s in shard.slices}
            if first.environment == snap.environment and snap.slices and taken and not taken & set(snap.slices):
                side.append(snap)
                break
        else:
            sides.append([snap])
    return [snapshot_module.merge(side) for side in sides]


# --- check -------------------------------------------------------------------------------------------


def catalog(config: Config | None) -> dict[str, Rule]:
    """The rules that run: the shipped catalog and the team's own, as audit.yaml configures them."""
    from auditor.engine.catalog import configured_catalog

    return configured_catalog(config)


def places(inputs: Inputs, config_path: Path | None) -> Places:
    """Where SARIF results point (DESIGN "Locations"): one root, `%SRCROOT%`, for every URI — the git work
    tree holding audit.yaml, else its directory, else (snapshots alone) the working directory; each
    environment at its key in audit.yaml, or at the snapshot file it came from."""
    from auditor.outcomes import Places

    config = inputs.config
    if config is None or config_path is None:
        root, files_from, entries = Path.cwd().resolve(), Path.cwd().resolve(), {}
    else:
        files_from = config_path.resolve().parent
        root = next((d for d in (files_from, *files_from.parents) if (d / ".git").exists()), files_from)
        uri = config_path.resolve().relative_to(root).as_posix()
        entries = {env: (uri, line) for env, line in config.lines.items()}
    for env, target in inputs.origins.items():
        path = Path(target).resolve()
        entries.setdefault(env, (path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_uri(), 1))
    fallback = entries[next(iter(entries))] if entries else ("audit.yaml", 1)
    return Places(root.as_posix(), "" if files_from == root else files_from.relative_to(root).as_posix(),
                  entries, fallback)


def check(inputs: Inputs, snapshots: list[Snapshot], today: dt.date | None = None) -> list[Result]:
    from auditor.engine import evaluate

    rules = catalog(inputs.config)
    return [evaluate.run_configured(s, inputs.config, inputs.tokens(s.environment), today or dt.date.today(), rules)
            for s in snapshots]


def check_exit(results: list[Result], fail_on: str) -> int:
    """1 for a finding at or above --fail-on, else 0; a check that raised makes any answer 2."""
    from auditor.outcomes import failing

    errors = [s for r in results for s in r.internal_errors]
    if errors:
        raise AuditError(f"{errors[0].reason} (the other rules ran; see the report)")
    return 1 if failing(results, fail_on) else 0


# --- diff --------------------------------------------------------------------------------------------


def diff(inputs: Inputs, snapshots: list[Snapshot]) -> list[Drift]:
    """Each side against the last one named."""
    from auditor import diff as diff_module

    if len(snapshots) < 2:
        raise AuditError("diff needs two environments, or one environment at two times")
    reference = snapshots[-1]
    settings = inputs.config.diff if inputs.config else None
    return [diff_module.compare(s, reference, inputs.tokens(s.environment), inputs.tokens(reference.environment),
                                settings) for s in snapshots[:-1]]


def diff_exit(drifts: list[Drift], fail_on: str) -> int:
    return 1 if any(d.unexpected for d in drifts) and fail_on != "never" else 0


# --- gate --------------------------------------------------------------------------------------------


@dataclass
class GateAnswer:
    result: Result  # the checks of the environment judged (as the plan leaves it, with --plan)
    verdict: Verdict
    review: Review | None = None


def gate(inputs: Inputs, environment: str, slot: str | None, fail_on: str, plan_path: str | None = None,
         snapshot_path: str | None = None, against: str | None = None, today: dt.date | None = None) -> GateAnswer:
    """Would making ``slot`` live lose traffic? ENV as collected (or a snapshot file); with
    ``snapshot_path``, AWS as saved there and the host files of the checkout; with ``plan_path``, as the
    plan leaves it; with ``against``, path-shape drift against that environment fails it too."""
    from auditor import gate as gate_module

    snap = _gate_snapshot(inputs, environment, snapshot_path)
    (result,) = check(inputs, [snap], today)
    review = None
    if plan_path:
        snap, result, review = _apply_plan(inputs, plan_path, snap, result, today)
    drift = None
    if against:
        (drift,) = diff(inputs, [snap, *load(inputs, [against])])
    return GateAnswer(result, gate_module.evaluate(result, slot, fail_on, drift, review), review)


def gate_exit(answer: GateAnswer) -> int:
    """0 pass, 1 fail; an unknown answer raises, naming what is missing (exit 2)."""
    verdict, review, environment = answer.verdict, answer.review, answer.result.environment
    if verdict.outcome != "unknown":
        return 0 if verdict.outcome == "pass" else 1
    if review is not None and review.unknown:
        more = f" (and {len(review.unknown) - 1} more)" if len(review.unknown) > 1 else ""
        raise GateDataMissing(f"gate {environment}: unknown: {review.unknown[0]} is known only after "
                              f"apply{more}, and the path rules need it")
    first = verdict.missing[0]
    raise GateDataMissing(f"gate {environment}: unknown: cannot decide {first.rule_id}: {first.reason}")


def _gate_snapshot(inputs: Inputs, environment: str, snapshot_path: str | None) -> Snapshot:
    if snapshot_path is None:
        (snap,) = load(inputs, [environment])
        return snap
    (saved,) = load(inputs, [snapshot_path])
    if saved.environment != environment:
        raise SnapshotError(f"{snapshot_path}: a snapshot of {saved.environment}, not of {environment}")
    config = inputs.config
    if config is None or environment not in config.environments:
        return saved
    from auditor import collect as collect_module

    checkout = collect_module.collect(config, environment, collect_module.CollectOptions(
        offline=True, allow_partial=inputs.allow_partial))
    return _with_checkout_hosts(saved, checkout)


def _with_checkout_hosts(saved: Snapshot, checkout: Snapshot) -> Snapshot:
    """The saved snapshot with each host's facts as the checkout's files say; a host whose facts only a
    command reads (never run offline) keeps the saved ones."""
    import msgspec

    by_command = {h.name for h in checkout.resources.hosts if h.not_requested}
    hosts = [h for h in saved.resources.hosts if h.name in by_command]
    hosts += [h for h in checkout.resources.hosts if h.name not in by_command]
    sources = {name: status for name, status in saved.sources.items()
               if not name.startswith("host:") or name.split(":")[1] in by_command}
    sources |= {name: status for name, status in checkout.sources.items()
                if name.startswith("host:") and name.split(":")[1] not in by_command}
    return msgspec.structs.replace(saved, resources=msgspec.structs.replace(saved.resources, hosts=hosts),
                                   sources=sources)


def _apply_plan(inputs: Inputs, plan_path: str, snap: Snapshot, result: Result,
                today: dt.date | None) -> tuple[Snapshot, Result, Review]:
    """The environment as the plan leaves it, its checks, and what the plan changes in them."""
    from auditor import plan as plan_module
    from auditor.model.snapshot import Redactor

    config = inputs.config
    environment = config.environments.get(snap.environment) if config else None
    scope = environment.aws.scope.tags if environment and environment.aws and environment.aws.scope else {}
    data = plan_module.load(plan_path)
    try:
        planned = plan_module.apply(snap, data, scope, Redactor.from_environment())
    except plan_module.PlanError as exc:
        raise plan_module.PlanError(f"{plan_path}: {exc}") from None
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        # A value of a type Terraform never writes there (a hand-made or damaged plan): one line, exit 2.
        raise plan_module.PlanError(f"{plan_path}: a value this reader does not understand "
                                    f"({type(exc).__name__}: {exc})") from None
    (after,) = check(inputs, [planned.snapshot], today)
    return planned.snapshot, after, plan_module.review(planned, result, after, snap, inputs.tokens(snap.environment))


# --- snapshot ----------------------------------------------------------------------------------------


def save_snapshot(snap: Snapshot, output: str | None) -> str:
    """Save where asked, else at .audit/ENV.json; there, a collection without AWS (--offline) never
    silently replaces a snapshot that holds AWS facts (the next `check` of it would skip every AWS
    rule). The path written."""
    from auditor.model import snapshot as snapshot_module

    path = output or f".audit/{snap.environment}.json"
    if output is None:
        _keep_aws_facts(path, snap)
    snapshot_module.save(snap, path)
    return path


def _keep_aws_facts(path: str, new: Snapshot) -> None:
    from auditor.model import snapshot as snapshot_module

    if snapshot_module.has_aws(new) or not Path(path).is_file():
        return
    try:
        old = snapshot_module.load(path)
    except SnapshotError:
        return  # an unreadable file holds nothing worth keeping
    if snapshot_module.has_aws(old):
        why = new.sources["aws"].reason if "aws" in new.sources else "no AWS"
        raise AuditError(f"{path} holds AWS facts that this collection ({why}) did not read: "
                         f"write it elsewhere with -o FILE, or name {path} with -o to replace it")


def merge(shards: list[str], output: str) -> None:
    from auditor.model import snapshot as snapshot_module

    snapshot_module.save(snapshot_module.merge([snapshot_module.load(s) for s in shards]), output)
