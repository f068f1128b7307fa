"""mdl rollback: return an alias to the version it had before its last promotion."""

from typing import Annotated

import typer

from mdl.cli.common import AliasOpt, JsonOpt, OutputOpt, command, output_format, state
from mdl.cli.promote import report_move


@command
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    alias: AliasOpt = "latest",
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Undo the alias's last promotion; repeat to go further back."""
    fmt = output_format(ctx, output, as_json)
    report_move(state(ctx).client.rollback(name, alias=alias), fmt)


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
