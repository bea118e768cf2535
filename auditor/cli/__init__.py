"""The `audit` command line: `run` is the script, `main` the command line as a function (tests call
it in-process). Errors are one line on stderr and exit 2; a traceback only with --debug."""

from __future__ import annotations

import gc
import os
import sys
import traceback

import click

from auditor.cli.commands import cli
from auditor.errors import AuditError, CollectionStopped

__all__ = ["cli", "main", "run"]


def _say(message: str) -> None:
    """One line on stderr, whatever the message quotes: a file name or a value with a newline or another
    control character in it is shown escaped (`\\n`, `\\x1e`), never as a line break."""
    click.echo("".join(c if c.isprintable() else repr(c)[1:-1] for c in message), err=True)


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
        _say(f"audit: error: {exc.format_message()} (see `{command} --help`)")
        sys.exit(2)
    except (click.Abort, KeyboardInterrupt):
        click.echo("audit: interrupted", err=True)
        _exit_now(130)
    except CollectionStopped as exc:
        if debug:
            traceback.print_exc()
        _say(f"audit: error: {exc}")
        _exit_now(2)
    except AuditError as exc:
        if debug:
            traceback.print_exc()
        _say(f"audit: error: {exc}")
        sys.exit(2)
    except Exception as exc:  # a bug: say so in one line unless asked for the traceback
        if debug:
            traceback.print_exc()
        _say(f"audit: internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        sys.exit(2)
    sys.exit(0)
