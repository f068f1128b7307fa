"""The ``mdl`` command: global options and the list of commands (one module each)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from mdl import __version__
from mdl.cli import (clean, config_cmd, dev_cluster, endpoints, history, list_cmd, promote, pull, push, rollback, serve,
                     status, watch)
from mdl.cli.common import state
from mdl.errors import EXIT_CODE_MEANINGS

_EPILOG = "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()) + "."

app = typer.Typer(
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


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[Optional[str], typer.Option(
        "--config", metavar="PATH", help="Config file (default: $MDL_CONFIG or $XDG_CONFIG_HOME/mdl/config.yaml).",
        show_default=False)] = None,
    context: Annotated[Optional[str], typer.Option(
        "--context", metavar="NAME", help="Named context from the config file ($MDL_CONTEXT).", show_default=False)] = None,
    storage: Annotated[Optional[str], typer.Option(
        "--storage", metavar="URL", help="storage.url: file:///path or webhdfs://host:port.", show_default=False)] = None,
    registry: Annotated[Optional[str], typer.Option(
        "--registry", metavar="URL", help="registry.url: sqlite:///path.db or zk://host:port/chroot.",
        show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (same as MDL_DEBUG=1).")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    st = state(ctx)
    st.config_path, st.context = config, context
    st.flags = {"storage.url": storage, "registry.url": registry}
    st.debug = debug
    ctx.call_on_close(st.close)


for module in (push, list_cmd, promote, rollback, history, pull, watch, serve, endpoints, status, clean, config_cmd,
               dev_cluster):
    module.register(app)
