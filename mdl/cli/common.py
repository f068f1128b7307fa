"""What every command shares: options, the client, output, progress and the error edge."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mdl.errors import ExitCode, MdlError

if TYPE_CHECKING:
    from mdl.client import Client
    from mdl.config import Config
    from mdl.transfer import Progress

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "json")


def _check_output(value: str | None) -> str | None:
    """``-o/--output``, checked while the command line is parsed: before any command acts."""
    if value is not None and value not in OUTPUT_FORMATS:
        from mdl.errors import InvalidInput

        raise typer.Exit(report_error(InvalidInput(f"unknown output format {value!r}", hint="use -o table or -o json")))
    return value


def finite(value: float | None) -> float | None:
    """An option callback: a float option's value must be a number (``nan``/``inf`` parse as floats)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


OutputOpt = Annotated[
    str | None,
    typer.Option(
        "-o",
        "--output",
        help="Output format: table or json (default: config 'output').",
        metavar="FORMAT",
        show_default=False,
        callback=_check_output,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Shorthand for -o json.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print identifiers only, one per line.")]
AliasOpt = Annotated[str, typer.Option("--alias", "-a", help="The alias to move or read.")]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "-j",
        "--jobs",
        min=1,
        max=64,
        help="Files transferred in parallel (default: config transfer.jobs).",
        show_default=False,
    ),
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="No progress bars on stderr.")]
KeepOpt = Annotated[int, typer.Option("--keep", min=2, help="Local versions kept (current and previous always).")]


class State:
    """Global options, resolved into a config and a client on first use."""

    def __init__(self) -> None:
        self.flags: dict[str, Any] = {}
        self.config_path: str | None = None
        self.context: str | None = None
        self.debug = False
        self._config: Config | None = None
        self._client: Client | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            from mdl.config import load

            self._config = load(self.flags, config_path=self.config_path, context=self.context)
        return self._config

    @property
    def client(self) -> Client:
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
    if fmt not in OUTPUT_FORMATS:
        from mdl.errors import InvalidInput

        raise InvalidInput(f"unknown output format {fmt!r}", hint="use -o table or -o json")
    return fmt


def emit_json(doc: Any) -> None:
    import json  # here: commands that print no JSON (and --help) skip importing it

    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def event_printer(fmt: str) -> Callable[[dict[str, Any]], None]:
    """One line per event of watch/serve: a JSON object on stdout (``-o json``), else a log line on stderr.

    When whoever reads the events goes away (``mdl watch ... -o json | head -1``) the process ends
    quietly, as Unix tools do on a broken pipe: stdout goes to /dev/null (no further writes, no
    error at exit) and SIGTERM stops it the graceful way (watch and serve deregister and exit).
    """
    import json

    closed = False

    def emit(event: dict[str, Any]) -> None:
        nonlocal closed
        if closed:
            return
        try:
            if fmt == "json":
                sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
                sys.stdout.flush()
            else:
                details = " ".join(
                    f"{k}={v}" for k, v in event.items() if k not in ("event", "at", "model") and v is not None
                )
                line = f"{event['at']} {event['model']} {event['event']} {details}".rstrip()
                sys.stderr.write(printable(line) + "\n")
                sys.stderr.flush()
        except BrokenPipeError:
            closed = True
            reader_gone("stdout" if fmt == "json" else "stderr")

    return emit


def reader_gone(stream: str = "stdout") -> None:
    """The reader of ``stream`` (stdout or stderr) went away: nothing more is written there, and the
    process stops gracefully (SIGTERM, where a handler is installed: watch and serve)."""
    import signal

    f = getattr(sys, stream)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, f.fileno())  # what is still buffered goes nowhere, without an error
        os.close(devnull)
    except (OSError, ValueError):
        pass
    setattr(sys, stream, open(os.devnull, "w"))
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
        os.kill(os.getpid(), signal.SIGTERM)  # watch and serve: deregister and exit 0


def emit_lines(lines: list[str]) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")


def info(message: str) -> None:
    """A human note on stderr (control characters escaped: messages quote registry contents)."""
    sys.stderr.write(printable(message) + "\n")


def printable(text: str) -> str:
    """``text`` with control characters (terminal escapes among them) shown as ``\\xNN``: what
    storage, the registry or a replica record says reaches a terminal only as text."""
    import re

    return re.sub(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]", lambda m: f"\\x{ord(m.group()):02x}", text)


def print_table(columns: list[str], rows: list[list[str]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c, overflow="fold")
    from rich.text import Text

    for r in rows:
        table.add_row(*(Text(printable(str(cell))) for cell in r))  # text, never rich markup
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
def progress_bar(ctx: typer.Context, label: str, disabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on stderr when it is a terminal (config 'progress'), else None."""
    mode = state(ctx).config["progress"]
    show = (
        not disabled
        and os.environ.get("MDL_NO_PROGRESS") in (None, "", "0")
        and (mode == "always" or (mode == "auto" and sys.stderr.isatty()))
    )
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
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
