"""The ``mdl`` command: global options and the list of commands (one module each)."""

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from mdl import __version__
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
    "clean": "clean",
    "config": "config_cmd",
    "dev-cluster": "dev_cluster",
}
# global options that take a value (the others are flags)
_VALUED = {"--config", "--context", "--storage", "--registry"}

_EPILOG = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()) + "."


def _new_app() -> typer.Typer:
    return typer.Typer(
        name="mdl",
        help="Versioned models on HDFS (or a local directory) with pointers in ZooKeeper (or SQLite).",
        epilog=_EPILOG,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        add_completion=True,
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
        typer.Option(
            "--context", metavar="NAME", help="Named context from the config file ($MDL_CONTEXT).", show_default=False
        ),
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
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
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
    new = _new_app()
    new.callback()(main)
    modules = [COMMANDS[only]] if only else list(dict.fromkeys(COMMANDS.values()))
    for module in modules:
        importlib.import_module(f"mdl.cli.{module}").register(new)
    return new


def command_of(argv: Sequence[str]) -> str | None:
    """The command an argument list runs, if it names one after only global options."""
    it = iter(argv)
    for arg in it:
        if arg in _VALUED:
            next(it, None)
        elif arg == "--debug" or (arg.startswith("--") and arg.split("=", 1)[0] in _VALUED):
            continue
        else:
            return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    if name == "app":  # the full app, built on first use (tests, ``python -m mdl``)
        globals()["app"] = built = make_app()
        return built
    raise AttributeError(name)
