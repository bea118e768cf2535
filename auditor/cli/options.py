"""The common options of every subcommand, and what they decide: where the report goes and in which
format, how a live collection shows its progress."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import click

from auditor.errors import AuditError, ConfigError

if TYPE_CHECKING:
    from auditor.app import Inputs
    from auditor.config import Config
    from auditor.model.snapshot import Snapshot

FORMATS = ("text", "json", "sarif", "junit", "markdown", "html")
# outcomes.FAIL_ON, spelled here so that `audit --help` does not import msgspec (16 ms); a test holds
# the two equal, and outcomes.at_or_above is the one place that judges them.
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

    @functools.cached_property
    def inputs(self) -> Inputs:
        """What the use cases read: audit.yaml, live collection with progress, --allow-partial."""
        from auditor.app import Inputs

        return Inputs(self.config, self.collect, self.allow_partial)

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
            # Every location on one base; AWS findings at their environment's entry (GitHub needs a file).
            from auditor import app

            config_file = Path(self.config_path or DEFAULT_CONFIG) if self.config is not None else None
            places = app.places(self.inputs, config_file)
            return SimpleNamespace(**{name: functools.partial(getattr(module, name), places=places)
                                      for name in ("render_check", "render_diff", "render_gate")})
        return module

    def note(self, message: str) -> None:
        """A line for the person watching stderr; on a terminal wrapped by word to its width (a terminal
        would break it mid-word), piped whole."""
        if self.quiet:
            return
        if sys.stderr.isatty():
            import textwrap
            from shutil import get_terminal_size

            width = max(get_terminal_size((100, 40)).columns, 40)
            message = "\n".join(textwrap.wrap(message, width, subsequent_indent="  ", break_long_words=False,
                                               break_on_hyphens=False)) or message
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


def options_of(decorators: list[Callable[..., Any]]) -> Callable[..., Any]:
    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


CONFIG = click.option("--config", "-c", metavar="PATH", help=f"audit.yaml to use (default ./{DEFAULT_CONFIG}).")
OUTPUT = click.option("--output", "-o", metavar="PATH", help="Write the report to PATH instead of stdout.")
QUIET = click.option("--quiet", is_flag=True, help="No progress or notes on stderr.")
NO_COLOR = click.option("--no-color", is_flag=True, help="No colour (NO_COLOR is honoured too).")
DEBUG = click.option("--debug", is_flag=True, help="Show a traceback on errors.")
FAIL_ON_OPTION = click.option("--fail-on", type=click.Choice(FAIL_ON),
                              help="Lowest severity that makes the exit code 1 (default high).")


def format_option(formats: tuple[str, ...]) -> Callable[..., Any]:
    return click.option("--format", "format", type=click.Choice(formats), help="Output format (default text).")


def collection_options(allow_partial: bool = True) -> Callable[..., Any]:
    """What collecting an environment live takes; the gate hides --allow-partial only to refuse it by name."""
    return options_of([
        click.option("--allow-partial", is_flag=True, hidden=not allow_partial,
                     help="Accept a partial collection instead of exit 2."),
        click.option("--allow-commands", is_flag=True, help="Allow running the commands audit.yaml names."),
        click.option("--offline", is_flag=True, help="Host files only, no AWS."),
        click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
                     help="Overall collection timeout (more than 0)."),
        click.option("--concurrency", type=click.IntRange(1, 64), metavar="N", help="Requests in flight per service."),
    ])


# Each command lists the options that apply to it, accepted before or after its arguments.
report_options = options_of([CONFIG, format_option(FORMATS), OUTPUT, FAIL_ON_OPTION, QUIET, NO_COLOR, DEBUG])
catalog_options = options_of([CONFIG, format_option(("text", "json", "markdown")), OUTPUT, NO_COLOR, DEBUG])
