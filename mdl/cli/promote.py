"""mdl promote: point an alias at a version (compare-and-set, recorded in the history)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from mdl.cli.common import AliasOpt, JsonOpt, OutputOpt, command, emit_json, info, output_format, state

if TYPE_CHECKING:
    from mdl.client import MoveResult


def report_move(ctx: typer.Context, move: "MoveResult", output: str | None, as_json: bool) -> None:
    """Shared by promote and rollback: JSON on stdout, or one human line on stderr."""
    if output_format(ctx, output, as_json) == "json":
        emit_json(move.to_dict())
    elif move.changed:
        info(f"{move.name}:{move.alias} -> {move.version} (was {move.previous or 'unset'})")
    else:
        info(f"unchanged: {move.name}:{move.alias} already points at {move.version}")


@command
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    version: Annotated[str, typer.Argument(metavar="VERSION", help="The version the alias should point at.")],
    alias: AliasOpt = "latest",
    expect: Annotated[Optional[str], typer.Option(
        "--expect", help="Move only if the alias now points at this version (else exit 4).",
        show_default=False)] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point an alias (default: latest) at a complete version."""
    report_move(ctx, state(ctx).client.promote(name, version, alias=alias, expect=expect), output, as_json)


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
