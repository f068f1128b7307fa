"""mdl history: every move of a model's aliases and every pin, unpin and deletion, oldest first."""

from typing import TYPE_CHECKING, Annotated

import typer

from mdl.cli.args import NameArg, alias_option
from mdl.cli.common import (
    Column,
    JsonOpt,
    OutputOpt,
    command,
    emit_json,
    info,
    output_format,
    print_table,
    state,
    timestamp,
)

if TYPE_CHECKING:
    from mdl.registry.base import HistoryEntry

COLUMNS = [
    Column("SEQ", drop=4),
    Column("WHEN", whole=True, drop=1),
    Column("ALIAS", ident=True),
    Column("ACTION", drop=2),
    Column("FROM", ident=True),
    Column("TO", ident=True),
    Column("WHO", drop=3),
]


@command
def history(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[str | None, alias_option("Only this alias.", show_default=False)] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show who moved which alias from where to where, pinned, unpinned or deleted which version
    (and by which gc rule), and when."""
    fmt = output_format(ctx, output, as_json)
    entries = state(ctx).client.history(name, alias)
    if fmt == "json":
        emit_json({"name": name, "history": [e.to_dict() for e in entries]})
        return
    if not entries:
        info(f"{name}:{alias} has never moved" if alias else f"no alias of {name} has moved yet")
        return
    rows = [_row(e) for e in entries]
    print_table(COLUMNS, rows, wide=fmt == "wide")


def _row(e: "HistoryEntry") -> list[str]:
    """An alias move reads FROM -> TO; a pin reads "- -> VERSION", an unpin or a deletion "VERSION -> -"
    (a deletion by gc names its rule in ACTION)."""
    if e.alias is not None:
        return [str(e.seq), timestamp(e.at), e.alias, e.action, e.from_version or "-", e.to_version or "-", e.who]
    action = f"{e.action} ({e.rule})" if e.rule else e.action
    frm, to = (None, e.version) if e.action == "pin" else (e.version, None)
    return [str(e.seq), timestamp(e.at), "-", action, frm or "-", to or "-", e.who]


def register(app: typer.Typer) -> None:
    app.command("history")(history)
