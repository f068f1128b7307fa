"""mdl rollback: return an alias to the version it had before its last promotion."""

import typer

from mdl.cli.args import NameArg
from mdl.cli.common import AliasOpt, JsonOpt, OutputOpt, QuietOpt, command, output_format, state
from mdl.cli.promote import report_move


@command
def rollback(
    ctx: typer.Context,
    name: NameArg,
    alias: AliasOpt = "latest",
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Undo the alias's last promotion; repeat to go further back."""
    fmt = output_format(ctx, output, as_json)
    report_move(state(ctx).client.rollback(name, alias=alias), fmt, quiet)


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
