"""The ``mdl`` command: global options and the list of commands (one module each)."""

import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from mdl import __version__
from mdl.cli.args import context_option
from mdl.cli.common import state
from mdl.errors import EXIT_CODE_MEANINGS

# command -> the module that registers it, in the order ``mdl --help`` lists them
COMMANDS = {
    "push": "push",
    "list": "list_cmd",
    "ls": "list_cmd",
    "promote": "promote",
    "rollback": "rollback",
    "history": "history",
    "pull": "pull",
    "watch": "watch",
    "serve": "serve",
    "endpoints": "endpoints",
    "status": "status",
    "sign": "sign",
    "verify": "verify",
    "pin": "pin",
    "unpin": "pin",
    "rm": "rm",
    "gc": "gc",
    "clean": "clean",
    "show": "show",
    "alias": "alias",
    "rollout": "rollout",
    "config": "config_cmd",
    "completion": "completion_cmd",
    "dev-cluster": "dev_cluster",
}

_EPILOG = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()) + "."


def _new_app() -> typer.Typer:
    return typer.Typer(
        name="mdl",
        help="Versioned models on HDFS (or a local directory) with pointers in ZooKeeper (or SQLite).",
        epilog=_EPILOG,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        # Typer's --install-completion would write Typer's scripts (sorted, falling back to files):
        # `mdl completion SHELL` prints mdl's. Answering a TAB (_MDL_COMPLETE) still needs Typer's
        # completion classes, which only add_completion registers.
        add_completion=bool(os.environ.get("_MDL_COMPLETE")),
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mdl {__version__}")
        raise typer.Exit()


def main(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="PATH",
            help="Config file (default: $MDL_CONFIG or $XDG_CONFIG_HOME/mdl/config.yaml).",
            show_default=False,
        ),
    ] = None,
    context: Annotated[
        str | None,
        context_option("Named context from the config file ($MDL_CONTEXT).", show_default=False),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage", metavar="URL", help="storage.url: file:///path or webhdfs://host:port.", show_default=False
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            metavar="URL",
            help="registry.url: sqlite:///path.db or zk://host:port/chroot.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (same as MDL_DEBUG=1).")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", metavar="VERSION", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    import gc

    if not gc.isenabled():  # the console script turned it off while the CLI loaded (mdl.cli.main)
        gc.freeze()  # what start-up made lives as long as the process: later collections skip it
        gc.enable()
    st = state(ctx)
    st.config_path, st.context = config, context
    st.flags = {"storage.url": storage, "registry.url": registry}
    st.debug = debug
    if debug or os.environ.get("MDL_DEBUG") not in (None, "", "0"):
        ctx.call_on_close(_log_debug())
    ctx.call_on_close(st.close)


def _log_debug() -> Any:
    """--debug: mdl's own debug log on stderr (what was skipped and why, retries, ...) for this
    command; returns what undoes it (the app may run again in the same process)."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    log = logging.getLogger("mdl")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)

    def undo() -> None:
        log.removeHandler(handler)
        log.setLevel(level)

    return undo


def make_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with only the command ``only`` (the same command line behaves
    the same; start-up skips importing and building the others)."""
    from mdl.cli.examples import epilog

    new = _new_app()
    new.callback()(main)
    modules = [COMMANDS[only]] if only else list(dict.fromkeys(COMMANDS.values()))
    for module in modules:
        importlib.import_module(f"mdl.cli.{module}").register(new)
    for info in new.registered_commands:
        info.epilog = info.epilog or epilog(info.name or "")
    for group in new.registered_groups:
        group.epilog = group.epilog or epilog(group.name or "")
    return new


def command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list runs, if it names one after only global options."""
    from mdl.cli.argv import command_of as find

    return find(argv, COMMANDS)


def run(argv: Sequence[str]) -> int:
    """Run one command line; return its exit code. Typer's own usage errors are said in mdl's voice
    (``error:``/``hint:``), global options work after the command, bare ``mdl`` shows the help."""
    from mdl.cli.argv import first_word, normalize, suggest

    args = normalize(argv, COMMANDS) or ["--help"]  # bare `mdl`: the help, exit 0 (as kubectl and gh)
    word = first_word(args)
    if word is not None and word not in COMMANDS and not os.environ.get("_MDL_COMPLETE"):
        from mdl.cli.common import info

        visible = [c for c in COMMANDS if c != "ls"]
        info(f"error: unknown command {word!r}")
        near = suggest(word, visible)
        info(
            f"hint: did you mean: {', '.join(f'mdl {c}' for c in near)}?"
            if near
            else "hint: see the commands with: mdl -h"
        )
        return 2
    only = None if os.environ.get("_MDL_COMPLETE") else command_of(args)
    try:
        rv = make_app(only)(args=args, prog_name="mdl", standalone_mode=False)
    except typer.Abort:
        from mdl.cli.common import report_error

        return report_error(KeyboardInterrupt())
    except typer.TyperException as exc:  # Typer's usage errors (missing argument, bad value, ...)
        return _usage_error(exc)
    return rv if isinstance(rv, int) else 0


def _usage_error(exc: typer.TyperException) -> int:
    from mdl.cli.common import info

    message = " ".join(exc.format_message().split()).rstrip(".")
    extra = re.fullmatch(r"Got unexpected extra arguments? ?\(?s?\)? \((.*)\)", message)
    if extra:  # Click's "argument(s) (b c)"
        words = extra.group(1).split()
        message = f"unexpected extra argument{'s' if len(words) > 1 else ''}: {' '.join(words)}"
    info(f"error: {message[:1].lower() + message[1:]}")
    ctx: Any = getattr(exc, "ctx", None)
    if ctx is not None:
        usage = " ".join(ctx.get_usage().split()[1:])  # "Usage: mdl promote ..." -> "mdl promote ..."
        info(f"hint: usage: {usage} (see: {ctx.command_path} -h)")
    else:
        info("hint: see: mdl -h")
    return int(getattr(exc, "exit_code", 2))


def __getattr__(name: str) -> Any:
    if name == "app":  # the full app, built on first use (tests, ``python -m mdl``)
        globals()["app"] = built = make_app()
        return built
    raise AttributeError(name)
