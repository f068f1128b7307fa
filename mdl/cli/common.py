"""What every command shares: options, the client, output, progress and the error edge."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, TypeVar

import typer

from mdl.cli.completion import complete_alias, complete_output
from mdl.errors import ExitCode, MdlError

if TYPE_CHECKING:
    from mdl.client import Client
    from mdl.config import Config
    from mdl.transfer import Progress

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("table", "wide", "json")


def formats_hint(formats: Sequence[str]) -> str:
    return "use " + ", ".join(f"-o {f}" for f in formats[:-1]) + f" or -o {formats[-1]}"


def _output_checker(formats: Sequence[str]) -> Callable[[str | None], str | None]:
    """``-o/--output``, checked while the command line is parsed: before any command acts."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in formats:
            from mdl.errors import InvalidInput

            raise typer.Exit(report_error(InvalidInput(f"unknown output format {value!r}", hint=formats_hint(formats))))
        return value

    return check


def finite(value: float | None) -> float | None:
    """An option callback: a float option's value must be a number (``nan``/``inf`` parse as floats)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def output_option(
    formats: Sequence[str] = OUTPUT_FORMATS,
    help: str = "Output format: table, wide (more columns) or json (default: config 'output').",
    autocompletion: Callable[[str], list[str]] = complete_output,
) -> Any:
    """The ``-o/--output`` option of a command that prints ``formats``."""
    return typer.Option(
        "-o",
        "--output",
        help=help,
        metavar="FORMAT",
        show_default=False,
        callback=_output_checker(formats),
        autocompletion=autocompletion,
    )


OutputOpt = Annotated[str | None, output_option()]
JsonOpt = Annotated[bool, typer.Option("--json", help="Shorthand for -o json.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print identifiers only, one per line.")]
AliasOpt = Annotated[
    str,
    typer.Option("--alias", "-a", metavar="ALIAS", help="The alias to move or read.", autocompletion=complete_alias),
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "-j",
        "--jobs",
        metavar="N",
        min=1,
        max=64,
        help="Files transferred in parallel (default: config transfer.jobs).",
        show_default=False,
    ),
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="No progress bars on stderr.")]
KeepOpt = Annotated[
    int, typer.Option("--keep", metavar="N", min=2, help="Local versions kept (current and previous always).")
]


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

            self._client = Client(self.config, notice=info)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def help_if_bare(ctx: typer.Context) -> None:
    """A command group named without a subcommand (``mdl alias``): its help, exit 0, as bare ``mdl``."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def output_format(
    ctx: typer.Context, output: str | None, as_json: bool, formats: Sequence[str] = OUTPUT_FORMATS
) -> str:
    if as_json:
        return "json"
    fmt = output or state(ctx).config["output"]
    if fmt not in formats:
        from mdl.errors import InvalidInput

        raise InvalidInput(f"unknown output format {fmt!r}", hint=formats_hint(formats))
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


class Column(NamedTuple):
    """A table column. ``ident`` cells (names, version ids, addresses) never break inside a word,
    ``whole`` cells (timestamps) never break at all; on a narrow terminal the columns with the highest
    ``drop`` go first (0: always kept); ``wide`` columns show only with ``-o wide``."""

    header: str
    ident: bool = False
    drop: int = 0
    wide: bool = False
    whole: bool = False


def print_table(columns: Sequence[str | Column], rows: Sequence[Sequence[str]], *, wide: bool = False) -> None:
    """Rows under a header on stdout: aligned columns on a terminal, tab-separated lines elsewhere.

    Piped, every line is the header or one row, cells separated by one tab (an empty cell is ``-``),
    with no rule and no padding: ``mdl list lr | awk 'NR>1{print $1}'`` prints versions only.
    """
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    keep = [i for i, c in enumerate(cols) if wide or not c.wide]
    header = [cols[i].header for i in keep]
    body = [[printable(str(r[i])) or "-" for i in keep] for r in rows]  # an empty cell reads "-"
    if not sys.stdout.isatty():
        for cells in [header, *body]:
            sys.stdout.write("\t".join(cell.replace("\t", " ") or "-" for cell in cells) + "\n")
        return
    import shutil

    lines = _layout([cols[i] for i in keep], body, shutil.get_terminal_size().columns)
    bold = os.environ.get("NO_COLOR") in (None, "") and os.environ.get("TERM") != "dumb"
    rule = "\u2500" if "utf" in (sys.stdout.encoding or "").lower() else "-"
    sys.stdout.write(("\x1b[1m" + lines[0] + "\x1b[0m" if bold else lines[0]) + "\n")
    sys.stdout.write(rule * max(_width(line) for line in lines) + "\n")
    for line in lines[1:]:
        sys.stdout.write(line + "\n")


GAP = "   "


def _width(text: str) -> int:
    """Terminal cells ``text`` takes (East Asian wide characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _layout(cols: list[Column], body: list[list[str]], limit: int) -> list[str]:
    """The header and rows as terminal lines at most ``limit`` cells wide where the identifiers allow:
    droppable columns go first, then the other columns wrap (identifiers never break inside a word)."""
    header = [c.header for c in cols]
    natural = [max(_width(x) for x in [h, *(r[i] for r in body)]) for i, h in enumerate(header)]
    shown = list(range(len(cols)))

    def total(widths: list[int], idx: list[int]) -> int:
        return sum(widths[i] for i in idx) + len(GAP) * (len(idx) - 1)

    while total(natural, shown) > limit and any(cols[i].drop for i in shown):
        shown.remove(max(reversed(shown), key=lambda i: cols[i].drop))
    widths = list(natural)
    floor = [
        natural[i]
        if cols[i].whole
        else max(_width(header[i]), *(_width(w) for r in body for w in r[i].split()))
        if cols[i].ident
        else min(natural[i], max(_width(header[i]), 8))
        for i in range(len(cols))
    ]
    while total(widths, shown) > limit:  # narrow the widest wrappable column, one cell at a time
        wrappable = [i for i in shown if widths[i] > floor[i]]
        if not wrappable:
            break  # identifiers alone are wider than the terminal: it wraps the line, they stay whole
        widest = max(wrappable, key=lambda i: widths[i])
        widths[widest] -= 1
    import textwrap

    wrapped = [
        [
            textwrap.wrap(row[i], widths[i], break_long_words=not cols[i].ident, break_on_hyphens=False) or [""]
            for i in shown
        ]
        for row in [header, *body]
    ]
    used = [max(_width(line) for row in wrapped for line in row[n]) for n in range(len(shown))]  # after wrapping
    out = []
    for cells in wrapped:
        for k in range(max(len(c) for c in cells)):
            parts = [(c[k] if k < len(c) else "") for c in cells]
            out.append(GAP.join(p + " " * (w - _width(p)) for p, w in zip(parts, used, strict=True)).rstrip())
    return out


def timestamp(iso: str | None) -> str:
    """An ISO-8601 UTC time as a table shows it: ``2026-11-27 17:13:00Z``."""
    return iso[:19].replace("T", " ") + "Z" if iso else "-"


def age(iso: str | None, now: float | None = None) -> str:
    """How long ago ``iso`` was, as kubectl's AGE column says it: 5s, 3m, 2h, 4d."""
    if not iso:
        return "-"
    import time
    from datetime import datetime

    try:
        seconds = int((time.time() if now is None else now) - datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return "-"
    seconds = max(seconds, 0)
    for unit, size, upto in (("s", 1, 120), ("m", 60, 120 * 60), ("h", 3600, 48 * 3600)):
        if seconds < upto:
            return f"{seconds // size}{unit}"
    return f"{seconds // 86400}d"


def plural(n: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
    from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class _Speed(ProgressColumn):
        """Bytes per second in the binary units of every summary line (rich's own speed column is decimal)."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("?" if speed is None else f"{human_bytes(int(speed))}/s", style="progress.data.speed")

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        _Speed(),
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
