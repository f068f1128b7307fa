"""mdl history: every move of a model's aliases, oldest first."""

from typing import Annotated

import typer

from mdl.cli.common import JsonOpt, OutputOpt, command, emit_json, output_format, print_table, state


@command
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    alias: Annotated[str | None, typer.Option("--alias", "-a", help="Only this alias.", show_default=False)] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show who moved which alias from where to where, and when."""
    fmt = output_format(ctx, output, as_json)
    entries = state(ctx).client.history(name, alias)
    if fmt == "json":
        emit_json({"name": name, "history": [e.to_dict() for e in entries]})
        return
    rows = [
        [
            str(e.seq),
            e.at[:19].replace("T", " ") + "Z",
            e.alias,
            e.action,
            e.from_version or "-",
            e.to_version or "-",
            e.who,
        ]
        for e in entries
    ]
    print_table(["SEQ", "WHEN", "ALIAS", "ACTION", "FROM", "TO", "WHO"], rows)


def register(app: typer.Typer) -> None:
    app.command("history")(history)
