"""What every command shares: options, the client, output, progress and the error edge."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator, Optional, TypeVar

import typer

from mdl.errors import ExitCode, MdlError

if TYPE_CHECKING:
    from mdl.client import Client
    from mdl.config import Config
    from mdl.transfer import Progress

F = TypeVar("F", bound=Callable[..., Any])

OutputOpt = Annotated[Optional[str], typer.Option(
    "-o", "--output", help="Output format: table or json (default: config 'output').",
    metavar="FORMAT", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Shorthand for -o json.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print identifiers only, one per line.")]
AliasOpt = Annotated[str, typer.Option("--alias", "-a", help="The alias to move or read.")]
JobsOpt = Annotated[Optional[int], typer.Option(
    "-j", "--jobs", min=1, max=64, help="Files transferred in parallel (default: config transfer.jobs).",
    show_default=False)]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="No progress bars on stderr.")]
KeepOpt = Annotated[int, typer.Option("--keep", min=2, help="Local versions kept (current and previous always).")]


class State:
    """Global options, resolved into a config and a client on first use."""

    def __init__(self) -> None:
        self.flags: dict[str, Any] = {}
        self.config_path: str | None = None
        self.context: str | None = None
        self.debug = False
        self._config: "Config | None" = None
        self._client: "Client | None" = None

    @property
    def config(self) -> "Config":
        if self._config is None:
            from mdl.config import load

            self._config = load(self.flags, config_path=self.config_path, context=self.context)
        return self._config

    @property
    def client(self) -> "Client":
        if self._client is None:
            from mdl.client import Client

            self._client = Client(self.config)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def output_format(ctx: typer.Context, output: str | None, as_json: bool) -> str:
    if as_json:
        return "json"
    fmt = output or state(ctx).config["output"]
    if fmt not in ("table", "json"):
        from mdl.errors import InvalidInput

        raise InvalidInput(f"unknown output format {fmt!r}", hint="use -o table or -o json")
    return fmt


def emit_json(doc: Any) -> None:
    import json  # here: commands that print no JSON (and --help) skip importing it

    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def event_printer(fmt: str) -> Callable[[dict[str, Any]], None]:
    """One line per event of watch/serve: a JSON object on stdout (``-o json``), else a log line on stderr."""
    import json

    def emit(event: dict[str, Any]) -> None:
        if fmt == "json":
            sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
            sys.stdout.flush()
        else:
            details = " ".join(f"{k}={v}" for k, v in event.items()
                               if k not in ("event", "at", "model") and v is not None)
            sys.stderr.write(f"{event['at']} {event['model']} {event['event']} {details}".rstrip() + "\n")
            sys.stderr.flush()

    return emit


def emit_lines(lines: list[str]) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")


def info(message: str) -> None:
    """A human note on stderr."""
    sys.stderr.write(message + "\n")


def print_table(columns: list[str], rows: list[list[str]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*r)
    # Off a terminal rich assumes 80 columns; data piped elsewhere should not wrap.
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 250).print(table)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@contextmanager
def progress_bar(ctx: typer.Context, label: str, disabled: bool) -> Iterator["Progress | None"]:
    """A rich progress bar on stderr when it is a terminal (config 'progress'), else None."""
    mode = state(ctx).config["progress"]
    show = not disabled and os.environ.get("MDL_NO_PROGRESS") in (None, "", "0") and (
        mode == "always" or (mode == "auto" and sys.stderr.isatty()))
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn(), console=Console(file=sys.stderr), transient=True)
    task = bar.add_task(label, total=0)

    class _Adapter:
        def add_total(self, n: int) -> None:
            bar.update(task, total=(bar.tasks[0].total or 0) + n)

        def advance(self, n: int) -> None:
            bar.advance(task, n)

    with bar:
        yield _Adapter()


def report_error(exc: BaseException, debug: bool = False) -> int:
    """Print ``error:``/``hint:`` lines (a traceback with --debug or MDL_DEBUG=1); return the exit code."""
    if isinstance(exc, BrokenPipeError):  # whoever read stdout went away (`mdl list | head -1`): say nothing
        sys.stdout = open(os.devnull, "w")  # and nothing more is written there (no error at exit either)
        return int(ExitCode.FAILED)
    debug = debug or os.environ.get("MDL_DEBUG") not in (None, "", "0")
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, MdlError):
        info(f"error: {exc.message}")
        if exc.hint:
            info(f"hint: {exc.hint}")
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        info("error: interrupted")
        return int(ExitCode.INTERRUPTED)
    info(f"error: unexpected {type(exc).__name__}: {exc}")
    if not debug:
        info("hint: run again with MDL_DEBUG=1 to see the traceback, and report it")
    return int(ExitCode.FAILED)


def command(fn: F) -> F:
    """Run a command body, turning every failure into one error line and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (Exception, KeyboardInterrupt) as exc:  # the CLI edge: nothing escapes as a traceback
            ctx = kwargs.get("ctx")
            debug = ctx is not None and state(ctx).debug
            raise typer.Exit(report_error(exc, debug)) from None

    return wrapper  # type: ignore[return-value]
