"""The `audit` commands: each parses its flags, calls a use case of auditor.app, renders what comes
back and chooses the exit code (0 nothing at or above --fail-on, 1 findings or unexpected drift or a
failing gate, 2 a usage, config, input or collection error)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from auditor import __version__, app
from auditor.cli.options import (
    CONFIG,
    DEBUG,
    NO_COLOR,
    OUTPUT,
    QUIET,
    Options,
    catalog_options,
    collection_options,
    options_of,
    report_options,
)
from auditor.errors import AuditError


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
    results = app.check(options.inputs, app.load(options.inputs, list(targets)))
    if write_baseline:
        baseline.write(write_baseline, results)
        options.note(f"wrote {write_baseline} ({sum(len(r.findings) for r in results)} findings)")
    elif baseline_path:
        results = baseline.without_known(results, baseline.read(baseline_path))
    options.emit(options.renderer.render_check(results, options.fail_on))
    sys.exit(0 if write_baseline else app.check_exit(results, options.fail_on))


@cli.command()
@click.argument("environments", nargs=-1, required=True, metavar="A B [C...]")
@report_options
@collection_options()
def diff(environments: tuple[str, ...], **values: Any) -> None:
    """Drift between environments that changes behaviour, ignoring ids and ARNs.

    Each environment is compared with the last one named. Exit 1 on unexpected drift.
    """
    options = Options(**values)
    options.refuse_overwriting(*environments)
    snapshots = app.load_sides(options.inputs, list(environments))
    if len(snapshots) < 2:
        raise click.UsageError("diff needs two environments, or one environment at two times")
    drifts = app.diff(options.inputs, snapshots)
    options.emit(options.renderer.render_diff(drifts))
    sys.exit(app.diff_exit(drifts, options.fail_on))


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
    if values.get("allow_partial"):
        raise click.UsageError("gate refuses --allow-partial: it fails closed on missing data")
    options = Options(**values)
    options.refuse_overwriting(environment, plan_path, snapshot_path, against)
    answer = app.gate(options.inputs, environment, slot, options.fail_on, plan_path, snapshot_path, against)
    options.emit(options.renderer.render_gate(answer.result, answer.verdict))
    sys.exit(app.gate_exit(answer))


@cli.command(name="snapshot")
@click.argument("environment", metavar="ENV")
@click.option("--shard", metavar="ACCOUNT/REGION", help="Collect one slice: the role's account id (for the "
              "credentials' own account, its id or `default`) and a region; `audit merge` joins the slices.")
@options_of([CONFIG, click.option("--output", "-o", metavar="PATH", help="Where to save the snapshot "
                                 "(default .audit/ENV.json)."), QUIET, NO_COLOR, DEBUG])
@collection_options()
def snapshot_command(environment: str, shard: str | None, **values: Any) -> None:
    """Collect ENV as audit.yaml describes it and save the snapshot (default .audit/ENV.json).

    A failed or partial collection never replaces the previous file.
    """
    from auditor.model.snapshot import COLLECTIONS, RESOURCE_TYPES

    options = Options(**values)
    options.refuse_overwriting()
    snap = options.collect(environment, shard)
    path = app.save_snapshot(snap, options.output)
    calls = sum(n for s in snap.sources.values() for n in s.api_calls.values())
    sizes = {c: len(getattr(snap.resources, c)) for c in COLLECTIONS if getattr(snap.resources, c)}
    counts = ", ".join(f"{n} {(c if n != 1 else RESOURCE_TYPES[c]).replace('_', ' ')}" for c, n in sizes.items())
    options.note(f"{environment}: wrote {path} ({counts or 'no resources'}; {calls} API calls)")


@cli.command()
@click.option("--keep", metavar="DIR", type=click.Path(file_okay=False), help="Build the estate in DIR and keep it.")
@options_of([QUIET, NO_COLOR, DEBUG])
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
@options_of([click.option("--output", "-o", metavar="PATH", help="Where to write the draft (default DIR/audit.yaml; "
                        "never overwritten)."), DEBUG])
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
@options_of([OUTPUT, QUIET, DEBUG])
def merge(shards: tuple[str, ...], **values: Any) -> None:
    """Join the shards of one environment into one snapshot, written to -o FILE.

    Refuses shards of different environments or schema versions, a slice twice, and a missing slice.
    """
    options = Options(**values)
    if not options.output:
        raise click.UsageError("merge needs -o FILE for the merged snapshot")
    options.refuse_overwriting(*shards)
    app.merge(list(shards), options.output)


@cli.command()
@catalog_options
def rules(**values: Any) -> None:
    """List the rule catalog."""
    options = Options(**values)
    options.refuse_overwriting()
    catalog = app.catalog(options.config)
    if options.format == "json":
        from auditor.model.typed import plain

        shown = [{k: v for k, v in plain(r.meta).items() if k not in ("check", "condition", "needs", "on", "merge")}
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
    options = Options(**values)
    options.refuse_overwriting()
    rule = app.catalog(options.config).get(rule_id.upper())
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
