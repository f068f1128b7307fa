"""mdl alias: manage a model's aliases beyond promote and rollback (``mdl alias rm``)."""

from typing import Annotated

import typer

from mdl.cli.args import alias_argument, name_argument
from mdl.cli.common import JsonOpt, OutputOpt, QuietOpt, command, help_if_bare, output_format, state
from mdl.cli.promote import report_move

alias_app = typer.Typer(
    name="alias",
    help="Manage a model's aliases (promote and rollback move them).",
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@alias_app.callback(invoke_without_command=True)
def alias(ctx: typer.Context) -> None:
    """Manage a model's aliases (promote and rollback move them)."""
    help_if_bare(ctx)


@alias_app.command("rm")
@command
def rm(
    ctx: typer.Context,
    name: Annotated[str, name_argument()],
    alias: Annotated[str, alias_argument("The alias to remove.")],
    force: Annotated[
        bool, typer.Option("--force", help="Remove it even while live replicas follow it (they stop updating).")
    ] = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Remove an alias from a model (recorded in the history; `mdl rollback NAME -a ALIAS` restores it).

    Refused (exit 4) while live replicas follow the alias, unless --force; exit 3 if it is not set.
    """
    fmt = output_format(ctx, output, as_json)
    report_move(state(ctx).client.remove_alias(name, alias, force=force), fmt, quiet)


def register(app: typer.Typer) -> None:
    app.add_typer(alias_app, name="alias")
