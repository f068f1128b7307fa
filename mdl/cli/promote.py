"""mdl promote: point an alias at a version (compare-and-set, recorded in the history)."""

from typing import TYPE_CHECKING, Annotated

import typer

from mdl.cli.common import AliasOpt, JsonOpt, OutputOpt, command, emit_json, finite, info, output_format, state
from mdl.errors import InvalidInput, RolloutFailed

if TYPE_CHECKING:
    from mdl.client import MoveResult


def report_move(move: "MoveResult", fmt: str) -> None:
    """Shared by promote and rollback: JSON on stdout (``fmt`` json), or one human line on stderr."""
    if fmt == "json":
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
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect", help="Move only if the alias now points at this version (else exit 4).", show_default=False
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Return once every live replica following the alias "
            "reports the version ready (exit 5 on timeout, 1 if one failed).",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0, callback=finite, help="Seconds --wait waits (default: 300).", show_default=False
        ),
    ] = None,
    min_ready: Annotated[
        int | None,
        typer.Option(
            "--min-ready", min=0, help="With --wait: enough when this many replicas are ready.", show_default=False
        ),
    ] = None,
    rollback_on_failure: Annotated[
        bool,
        typer.Option(
            "--rollback-on-failure", help="With --wait: move the alias back if a replica fails to load the version."
        ),
    ] = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point an alias (default: latest) at a complete version."""
    from mdl.names import validate_version

    if not wait:  # options that only mean something with --wait are an error without it, not ignored
        for flag, given in (
            ("--min-ready", min_ready is not None),
            ("--rollback-on-failure", rollback_on_failure),
            ("--timeout", timeout is not None),
        ):
            if given:
                raise InvalidInput(f"{flag} needs --wait", hint=f"add --wait, or leave out {flag}")
    if expect is not None:
        validate_version(expect)
    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    move = client.promote(name, version, alias=alias, expect=expect)
    report_move(move, fmt)
    if not wait:
        return
    from mdl.fleet import Fleet

    try:
        ready = Fleet(client).wait_for_rollout(
            name, version, alias=alias, timeout=300.0 if timeout is None else timeout, min_ready=min_ready
        )
    except RolloutFailed:
        if rollback_on_failure and move.changed and move.previous:
            back = client.rollback(name, alias=alias)
            info(f"rolled back: {name}:{alias} -> {back.version}")
        raise
    info(f"{len(ready)} replica(s) ready on {name}/{version}")


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
