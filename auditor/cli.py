"""The `audit` command line: parse, call the library, render, choose the exit code.

Exit codes: 0 nothing at or above --fail-on (diff: no unexpected drift), 1 findings
or unexpected drift, 2 usage, config, input or collection error.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from typing import TYPE_CHECKING

import click

from auditor import __version__
from auditor.errors import AuditError, CollectionStopped, ConfigError, GateDataMissing, SnapshotError

if TYPE_CHECKING:
    from auditor.config import Config
    from auditor.outcomes import Result
    from auditor.model.snapshot import Snapshot

# The library loads inside the commands: `audit --help` and `--version` import click and nothing heavy.

FORMATS = ("text", "json", "sarif", "junit", "markdown", "html")
FAIL_ON = ("critical", "high", "medium", "low", "info", "never")
DEFAULT_CONFIG = "audit.yaml"


class Options:
    """The common options of every subcommand, as given."""

    def __init__(self, **values: Any) -> None:
        self.config_path: str | None = values.get("config")
        self.format: str = values.get("format") or "text"
        self.output: str | None = values.get("output")
        self.fail_on: str = values.get("fail_on") or "high"
        self.quiet: bool = bool(values.get("quiet"))
        self.no_color: bool = bool(values.get("no_color"))
        self.allow_partial: bool = bool(values.get("allow_partial"))
        self.allow_commands: bool = bool(values.get("allow_commands"))
        self.offline: bool = bool(values.get("offline"))
        self.timeout: float | None = values.get("timeout")
        self.concurrency: int | None = values.get("concurrency")

    @functools.cached_property
    def config(self) -> Config | None:
        """audit.yaml: required when named with --config; optional for snapshot files."""
        from auditor import config as config_module

        path = Path(self.config_path or DEFAULT_CONFIG)
        if self.config_path is None and not path.exists():
            return None
        return config_module.load(path)

    def tokens(self, environment: str) -> list[str]:
        from auditor.config import tokens_for

        return tokens_for(self.config, environment)

    @property
    def width(self) -> int | None:
        """The terminal's width when a person reads stdout; None when piped or written to a file."""
        if self.output is not None or not sys.stdout.isatty():
            return None
        from shutil import get_terminal_size

        return get_terminal_size((100, 40)).columns

    @property
    def colour(self) -> bool:
        return not self.no_color and "NO_COLOR" not in os.environ and self.output is None and sys.stdout.isatty()

    def refuse_overwriting(self, *inputs: str | None, written: str | None = None) -> None:
        """Refuse to write (``-o``, or ``written``) over a file this command reads: a report written over
        the snapshot it came from would destroy the only copy. audit.yaml is always an input."""
        config = self.config_path or DEFAULT_CONFIG
        for output, option in ((self.output, "-o"), (written, "--write-baseline")):
            if output is None:
                continue
            for source in (config, *inputs):
                if source is not None and _same_file(output, source):
                    raise AuditError(f"{output}: {option} names a file this command reads ({source}): "
                                     "write the report elsewhere")

    def emit(self, text: str) -> None:
        if self.output:
            from auditor.model.snapshot import write_atomic

            write_atomic(self.output, text)
            return
        try:
            click.echo(text, nl=False)
            sys.stdout.flush()
        except BrokenPipeError:
            return  # a reader gone (`audit … | head`) is no error: what is left cannot be said anyway
        except OSError as exc:  # a full disk behind `> file`, /dev/full
            raise AuditError(f"stdout: cannot write the report: {exc.strerror or exc}") from None

    @property
    def renderer(self) -> Any:
        """The report module (or object) for --format: render_check, render_diff, render_gate."""
        if self.format == "text":
            from auditor.report.text import Text

            return Text(self.colour, self.width)
        # Only the chosen format's module is imported: a check's start-up pays for no other.
        module = importlib.import_module(f"auditor.report.{self.format}")
        if self.format == "sarif":
            # AWS findings point at the audit.yaml that describes the environment (GitHub needs a file).
            uri = Path(self.config_path or DEFAULT_CONFIG).as_posix()
            return SimpleNamespace(**{name: functools.partial(getattr(module, name), config_uri=uri)
                                      for name in ("render_check", "render_diff", "render_gate")})
        return module

    def note(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    def collect(self, environment: str, shard: str | None = None) -> Snapshot:
        """Collect an environment named in audit.yaml, with progress on stderr when a person watches."""
        # boto3 and rich load only when something is collected: check/diff of files start faster.
        from rich.console import Console

        from auditor import collect as collect_module

        if self.config is None:
            raise ConfigError(f"{environment}: not a snapshot file, and there is no {DEFAULT_CONFIG} to collect it "
                              "from (give --config)")
        self.config.environment(environment)  # an unknown name is its own error
        console = Console(stderr=True, no_color=self.no_color)
        show = not self.quiet and console.is_terminal
        with console.status(f"collecting {environment}", spinner="dots") if show else nullcontext() as status:
            if show:
                progress = heartbeat = lambda line: status.update(f"collecting {line}")
            else:  # a log (a nightly job's) gets a line when the collection waits, never a spinner
                progress = lambda line: None  # noqa: E731
                heartbeat = (lambda line: None) if self.quiet else (lambda line: click.echo(f"audit: {line}", err=True))
            options = collect_module.CollectOptions(
                allow_commands=self.allow_commands, allow_partial=self.allow_partial, offline=self.offline,
                timeout=self.timeout, concurrency=self.concurrency or collect_module.DEFAULT_CONCURRENCY,
                progress=progress, heartbeat=heartbeat,
            )
            return collect_module.collect(self.config, environment, options, shard)


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (through links and relative parts); a path that does not exist
    yet is no input."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _options(decorators: list[Callable[..., Any]]) -> Callable[..., Any]:
    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


_CONFIG = click.option("--config", "-c", metavar="PATH", help=f"audit.yaml to use (default ./{DEFAULT_CONFIG}).")
_OUTPUT = click.option("--output", "-o", metavar="PATH", help="Write the report to PATH instead of stdout.")
_QUIET = click.option("--quiet", is_flag=True, help="No progress or notes on stderr.")
_NO_COLOR = click.option("--no-color", is_flag=True, help="No colour (NO_COLOR is honoured too).")
_DEBUG = click.option("--debug", is_flag=True, help="Show a traceback on errors.")
_FAIL_ON = click.option("--fail-on", type=click.Choice(FAIL_ON), help="Lowest severity that makes the exit code 1 "
                        "(default high).")


def _format(formats: tuple[str, ...]) -> Callable[..., Any]:
    return click.option("--format", "format", type=click.Choice(formats), help="Output format (default text).")


def collection_options(allow_partial: bool = True) -> Callable[..., Any]:
    """What collecting an environment live takes; the gate hides --allow-partial only to refuse it by name."""
    return _options([
        click.option("--allow-partial", is_flag=True, hidden=not allow_partial,
                     help="Accept a partial collection instead of exit 2."),
        click.option("--allow-commands", is_flag=True, help="Allow running the commands audit.yaml names."),
        click.option("--offline", is_flag=True, help="Host files only, no AWS."),
        click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
                     help="Overall collection timeout (more than 0)."),
        click.option("--concurrency", type=click.IntRange(1, 64), metavar="N", help="Requests in flight per service."),
    ])


# Each command lists the options that apply to it, accepted before or after its arguments.
report_options = _options([_CONFIG, _format(FORMATS), _OUTPUT, _FAIL_ON, _QUIET, _NO_COLOR, _DEBUG])
catalog_options = _options([_CONFIG, _format(("text", "json", "markdown")), _OUTPUT, _NO_COLOR, _DEBUG])


def _is_snapshot_file(target: str) -> bool:
    return target.endswith(".json") or Path(target).is_file()


def load_environment(targets: list[str], options: Options) -> list[Snapshot]:
    """Snapshots per environment, in the order first named; shards of one environment merged."""
    from auditor.model import snapshot as snapshot_module

    by_env: dict[str, list[Snapshot]] = {}
    for target in targets:
        if not _is_snapshot_file(target):
            snap = options.collect(target)
            by_env.setdefault(snap.environment, []).append(snap)
            continue
        snap = snapshot_module.load(target)
        if not options.allow_partial:
            partial = sorted(name for name, s in snap.sources.items() if s.status != "ok")
            if partial:
                raise SnapshotError(f"{target}: collection of {', '.join(partial)} was partial "
                                    "(pass --allow-partial to use it anyway)")
        by_env.setdefault(snap.environment, []).append(snap)
    return [snapshot_module.merge(shards) for shards in by_env.values()]


def load_sides(targets: list[str], options: Options) -> list[Snapshot]:
    """The sides of a diff, in the order named. Shards of one collection (the same environment, other
    slices) merge into one side; the same environment collected twice (slices in common, or none at
    all: yesterday's file against today's) is two sides, told apart by when each was collected."""
    from auditor.model import snapshot as snapshot_module

    sides: list[list[Snapshot]] = []
    for target in targets:
        (snap,) = load_environment([target], options)
        for side in sides:
            first = side[0]
            taken = {s for shard in side for s in shard.slices}
            if first.environment == snap.environment and snap.slices and taken and not taken & set(snap.slices):
                side.append(snap)
                break
        else:
            sides.append([snap])
    return [snapshot_module.merge(side) for side in sides]


def run_checks(snapshots: list[Snapshot], options: Options) -> list[Result]:
    from auditor.engine import catalog as catalog_module, evaluate

    today = dt.date.today()
    catalog = catalog_module.configured_catalog(options.config)
    return [evaluate.run_configured(s, options.config, options.tokens(s.environment), today, catalog)
            for s in snapshots]


def exit_code(results: list[Result], fail_on: str) -> int:
    """1 for a finding at or above --fail-on, else 0; a check that raised makes any answer 2."""
    from auditor.outcomes import failing

    errors = [s for r in results for s in r.internal_errors]
    if errors:
        raise AuditError(f"{errors[0].reason} (the other rules ran; see the report)")
    return 1 if failing(results, fail_on) else 0


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="audit")
def cli() -> None:
    """Find what breaks between the layers of a load-balanced web service.

    Follows traffic from the ALB listener through target groups, security
    groups, nginx and Docker slots (blue/green), on saved snapshot files.
    """


@cli.command()
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option("--baseline", "baseline_path", metavar="FILE", help="Report only findings not in this baseline.")
@click.option("--write-baseline", metavar="FILE", help="Write the current findings as a baseline (exit 0).")
@report_options
@collection_options()
def check(targets: tuple[str, ...], baseline_path: str | None, write_baseline: str | None, **values: Any) -> None:
    """Run the rule catalog on environments (collected live) or snapshot files (several files of one
    environment are merged first).

    Exit 1 when a finding is at or above --fail-on.
    """
    from auditor import baseline

    options = Options(**values)
    options.refuse_overwriting(*targets, baseline_path, written=write_baseline)
    results = run_checks(load_environment(list(targets), options), options)
    if write_baseline:
        baseline.write(write_baseline, results)
        options.note(f"wrote {write_baseline} ({sum(len(r.findings) for r in results)} findings)")
    elif baseline_path:
        results = baseline.without_known(results, baseline.read(baseline_path))
    options.emit(options.renderer.render_check(results, options.fail_on))
    sys.exit(0 if write_baseline else exit_code(results, options.fail_on))


@cli.command()
@click.argument("environments", nargs=-1, required=True, metavar="A B [C...]")
@report_options
@collection_options()
def diff(environments: tuple[str, ...], **values: Any) -> None:
    """Drift between environments that changes behaviour, ignoring ids and ARNs.

    Each environment is compared with the last one named. Exit 1 on unexpected drift.
    """
    from auditor import diff as diff_module

    options = Options(**values)
    options.refuse_overwriting(*environments)
    snapshots = load_sides(list(environments), options)
    if len(snapshots) < 2:
        raise click.UsageError("diff needs two environments, or one environment at two times")
    reference = snapshots[-1]
    config = options.config
    drifts = [
        diff_module.compare(s, reference, options.tokens(s.environment), options.tokens(reference.environment),
                            config.diff if config else None)
        for s in snapshots[:-1]
    ]
    options.emit(options.renderer.render_diff(drifts))
    sys.exit(1 if any(d.unexpected for d in drifts) and options.fail_on != "never" else 0)


@cli.command(name="gate")
@click.argument("environment", metavar="ENV")
@click.option("--slot", metavar="NAME", help="The slot about to go live (default: the live slot).")
@click.option("--against", metavar="REF", help="Also fail on path-shape drift against this environment.")
@click.option("--plan", "plan_path", metavar="PLAN.json", help="Judge ENV as this Terraform/OpenTofu plan leaves it "
              "(`terraform show -json plan.out`).")
@click.option("--snapshot", "snapshot_path", metavar="FILE", help="AWS as saved in FILE instead of collected live; "
              "host files still come from audit.yaml.")
@report_options
@collection_options(allow_partial=False)
def gate_command(environment: str, slot: str | None, against: str | None, plan_path: str | None,
                 snapshot_path: str | None, **values: Any) -> None:
    """Would making SLOT live lose traffic? Fails closed.

    Exit 0: no path finding for the slot; 1: a path finding (or, with --against,
    path drift); 2: a path rule could not decide for lack of data, or a value the
    plan knows only after apply.
    """
    from auditor import gate

    if values.get("allow_partial"):
        raise click.UsageError("gate refuses --allow-partial: it fails closed on missing data")
    options = Options(**values)
    options.refuse_overwriting(environment, plan_path, snapshot_path, against)
    snap = _gate_snapshot(environment, snapshot_path, options)
    (result,) = run_checks([snap], options)
    review = None
    judged = snap
    if plan_path:
        judged, result, review = _apply_plan(plan_path, snap, result, options)
    drift = None
    if against:
        from auditor import diff as diff_module

        (reference,) = load_environment([against], options)
        config = options.config
        drift = diff_module.compare(judged, reference, options.tokens(snap.environment),
                                    options.tokens(reference.environment), config.diff if config else None)
    verdict = gate.evaluate(result, slot, options.fail_on, drift, review)
    options.emit(options.renderer.render_gate(result, verdict))
    if verdict.outcome == "unknown":
        if review is not None and review.unknown:
            more = f" (and {len(review.unknown) - 1} more)" if len(review.unknown) > 1 else ""
            raise GateDataMissing(f"gate {result.environment}: unknown: {review.unknown[0]} is known only after "
                                  f"apply{more}, and the path rules need it")
        first = verdict.missing[0]
        raise GateDataMissing(f"gate {result.environment}: unknown: cannot decide {first.rule_id}: {first.reason}")
    sys.exit(0 if verdict.outcome == "pass" else 1)


def _gate_snapshot(environment: str, snapshot_path: str | None, options: Options) -> Snapshot:
    """What the gate judges: ENV collected (or a snapshot file); with --snapshot, AWS as saved there and
    the host files of the checkout being deployed, as audit.yaml names them."""
    if snapshot_path is None:
        (snap,) = load_environment([environment], options)
        return snap
    (saved,) = load_environment([snapshot_path], options)
    if saved.environment != environment:
        raise SnapshotError(f"{snapshot_path}: a snapshot of {saved.environment}, not of {environment}")
    config = options.config
    if config is None or environment not in config.environments:
        return saved
    from auditor import collect as collect_module

    checkout = collect_module.collect(config, environment, collect_module.CollectOptions(
        offline=True, allow_partial=options.allow_partial))
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


def _apply_plan(plan_path: str, snap: Snapshot, result: Result, options: Options) -> tuple[Snapshot, Result, Any]:
    """The environment as the plan leaves it, its checks, and what the plan changes in them."""
    from auditor import plan as plan_module
    from auditor.model.snapshot import Redactor

    config = options.config
    environment = config.environments.get(snap.environment) if config else None
    scope = environment.aws.scope.tags if environment and environment.aws and environment.aws.scope else {}
    planned = plan_module.apply(snap, plan_module.load(plan_path), scope, Redactor.from_environment())
    (after,) = run_checks([planned.snapshot], options)
    return planned.snapshot, after, plan_module.review(planned, result, after, snap, options.tokens(snap.environment))


@cli.command(name="snapshot")
@click.argument("environment", metavar="ENV")
@click.option("--shard", metavar="ACCOUNT/REGION", help="Collect one slice: the role's account id (for the "
              "credentials' own account, its id or `default`) and a region; `audit merge` joins the slices.")
@_options([_CONFIG, click.option("--output", "-o", metavar="PATH", help="Where to save the snapshot "
                                 "(default .audit/ENV.json)."), _QUIET, _NO_COLOR, _DEBUG])
@collection_options()
def snapshot_command(environment: str, shard: str | None, **values: Any) -> None:
    """Collect ENV as audit.yaml describes it and save the snapshot (default .audit/ENV.json).

    A failed or partial collection never replaces the previous file.
    """
    from auditor.model import snapshot as snapshot_module

    options = Options(**values)
    options.refuse_overwriting()
    snap = options.collect(environment, shard)
    path = options.output or f".audit/{environment}.json"
    if options.output is None:
        _keep_aws_facts(path, snap)
    snapshot_module.save(snap, path)
    calls = sum(n for s in snap.sources.values() for n in s.api_calls.values())
    counts = ", ".join(f"{len(getattr(snap.resources, c))} {c.replace('_', ' ')}" for c in snapshot_module.COLLECTIONS
                       if getattr(snap.resources, c))
    options.note(f"{environment}: wrote {path} ({counts or 'no resources'}; {calls} API calls)")


def _keep_aws_facts(path: str, new: Snapshot) -> None:
    """A collection without AWS (--offline) never silently replaces a default snapshot that holds AWS
    facts: the next `check` of that file would skip every AWS rule."""
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


@cli.command()
@click.option("--keep", metavar="DIR", type=click.Path(file_okay=False), help="Build the estate in DIR and keep it.")
@_options([_QUIET, _NO_COLOR, _DEBUG])
def demo(keep: str | None, **values: Any) -> None:
    """Start the bundled example estate on a local AWS endpoint (moto) and audit it.

    Builds the incident's dev and prod, then runs `diff dev prod`, `check dev`
    and `gate dev --slot green` and prints what each says.
    """
    from auditor import demo as demo_module

    options = Options(**values)
    demo_module.run(keep, colour=options.colour, width=options.width)


@cli.command()
@click.argument("directory", metavar="[DIR]", default=".", type=click.Path(file_okay=False, exists=True))
@click.option("--aws", "use_aws", is_flag=True, help="Also read the account (read-only): environment tags of load "
              "balancers, role tags of the instances behind them.")
@click.option("--region", metavar="REGION", help="The region --aws reads (default: the AWS configuration's).")
@_options([click.option("--output", "-o", metavar="PATH", help="Where to write the draft (default DIR/audit.yaml; "
                        "never overwritten)."), _DEBUG])
def init(directory: str, use_aws: bool, region: str | None, **values: Any) -> None:
    """Draft an audit.yaml from the repository in DIR (compose files, nginx configs, blue/green services)
    and, with --aws, from the account's tags. Prints what it could not decide."""
    from auditor import init as init_module

    root = Path(directory).resolve()
    out = Path(values.get("output") or root / "audit.yaml").resolve()
    if use_aws and region is None:
        import boto3

        region = boto3.Session().region_name
        if region is None:
            raise click.UsageError("--aws needs a region: give --region or set AWS_REGION")
    plan = init_module.write(root, out, region if use_aws else None)
    click.echo(f"wrote {out}: {len([e for e in plan.environments if not e.broken])} environments "
               f"({', '.join(e.name for e in plan.environments if not e.broken) or 'none'})")
    for line in plan.undecided:
        click.echo(f"could not decide: {line}")
    click.echo(f"next: audit check --offline -c {out} ENV, then add aws to collect the account")


@cli.command()
@click.argument("shards", nargs=-1, required=True, metavar="SNAPSHOT...")
@_options([_OUTPUT, _QUIET, _DEBUG])
def merge(shards: tuple[str, ...], **values: Any) -> None:
    """Join the shards of one environment into one snapshot, written to -o FILE.

    Refuses shards of different environments or schema versions, a slice twice, and a missing slice.
    """
    from auditor.model import snapshot as snapshot_module

    options = Options(**values)
    if not options.output:
        raise click.UsageError("merge needs -o FILE for the merged snapshot")
    options.refuse_overwriting(*shards)
    merged = snapshot_module.merge([snapshot_module.load(s) for s in shards])
    snapshot_module.save(merged, options.output)


@cli.command()
@catalog_options
def rules(**values: Any) -> None:
    """List the rule catalog."""
    from auditor.engine import catalog as catalog_module

    options = Options(**values)
    options.refuse_overwriting()
    catalog = catalog_module.configured_catalog(options.config)
    if options.format == "json":
        from auditor.model.typed import plain

        shown = [{k: v for k, v in plain(r.meta).items() if k not in ("check", "condition", "needs")}
                 for r in catalog.values()]
        options.emit(json.dumps(shown, indent=2) + "\n")
        return
    if options.format == "markdown":
        bar = "\\|"
        rows = [f"| {r.id} | {r.meta.severity} | {r.meta.name} | {r.meta.title.replace('|', bar)} |"
                for r in catalog.values()]
        options.emit("\n".join(["| Rule | Severity | Name | Fires when |", "|---|---|---|---|", *rows]) + "\n")
        return
    if options.width:
        from auditor.report.text import Text

        rows = [[r.id, r.meta.severity, r.meta.name, r.meta.title] for r in catalog.values()]
        options.emit(Text(options.colour, options.width).table(["Rule", "Severity", "Name", "Fires when"], rows, 3)
                     + "\n")
        return
    lines = [f"{r.id}  {r.meta.severity:<8}  {r.meta.name:<36} {r.meta.title}" for r in catalog.values()]
    options.emit("\n".join(lines) + "\n")


@cli.command()
@click.argument("rule_id", metavar="RULE_ID")
@catalog_options
def explain(rule_id: str, **values: Any) -> None:
    """Show one rule: why it matters, how to fix it, references."""
    from auditor.engine import catalog as catalog_module

    options = Options(**values)
    options.refuse_overwriting()
    rule = catalog_module.configured_catalog(options.config).get(rule_id.upper())
    if rule is None:
        raise AuditError(f"unknown rule id {rule_id!r} (see `audit rules`)")
    meta = rule.meta
    if options.format == "json":
        from auditor.model.typed import plain

        options.emit(json.dumps(plain(meta), indent=2, ensure_ascii=False) + "\n")
        return
    if options.format == "markdown":
        lines = [f"### {meta.id} {meta.name} ({meta.severity})", "", meta.title, "",
                 "**Why:** " + " ".join(meta.rationale.split()), "", "**Fix:** " + " ".join(meta.remediation.split())]
        lines += ["", "References:", ""] + [f"- {r}" for r in meta.references] if meta.references else []
        options.emit("\n".join(lines) + "\n")
        return
    text = [
        f"{meta.id} {meta.name} ({meta.severity})",
        meta.title,
        "",
        "Why: " + " ".join(meta.rationale.split()),
        "",
        "Fix: " + " ".join(meta.remediation.split()),
    ]
    if meta.options:
        text += ["", "Options (audit.yaml rules.options." + meta.id + "):"] + [
            f"  {name} ({spec.type}, default {json.dumps(spec.default)}): {spec.description}"
            for name, spec in meta.options.items()]
    if meta.references:
        text += ["", "References:"] + [f"  {r}" for r in meta.references]
    options.emit("\n".join(text) + "\n")


def _exit_now(code: int) -> None:
    """Exit without joining the collection's threads: one may wait out a read timeout on a dead
    endpoint, and Ctrl-C or --timeout must end the command now. Nothing is left half-written:
    files are replaced by rename only when complete."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a reader gone (`audit … | head`): what is left cannot be said anyway
            pass
    os._exit(code)


def run() -> None:
    """The `audit` script: `main`, then leave at once. Python's own exit frees the run's objects one
    by one (0.07 s of CPU after a 10k-resource check, measured); there is nothing else to do by
    then: output is flushed here, files are written whole and renamed, thread pools are shut."""
    try:
        main()
    except SystemExit as exc:
        if sys.gettrace() or sys.getprofile():
            raise  # a profiler or coverage tool writes its data at exit
        _exit_now(exc.code if isinstance(exc.code, int) else int(exc.code is not None))


def main(argv: list[str] | None = None) -> None:
    # A snapshot is a large tree of small acyclic objects; the default collector thresholds make
    # Python scan it over and over while it is built (half the time of a 10k-resource diff).
    gc.set_threshold(100_000, 50, 1000)
    args = sys.argv[1:] if argv is None else argv
    args = args or ["--help"]  # bare `audit` is a question, not a mistake
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="audit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # One line, like every other error: what was wrong, and where the usage is.
        command = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else "audit"
        click.echo(f"audit: error: {exc.format_message()} (see `{command} --help`)", err=True)
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        click.echo("audit: interrupted", err=True)
        _exit_now(130)
    except CollectionStopped as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"audit: error: {exc}", err=True)
        _exit_now(2)
    except AuditError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"audit: error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        if debug:
            traceback.print_exc()
        click.echo(f"audit: internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
                   err=True)
        sys.exit(2)
    sys.exit(0)
