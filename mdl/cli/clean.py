"""mdl clean: remove what pushes that died left in mdl's own staging paths."""

from typing import Annotated

import typer

from mdl.cli.common import (
    JsonOpt,
    OutputOpt,
    QuietOpt,
    command,
    emit_json,
    emit_lines,
    finite,
    info,
    output_format,
    plural,
    state,
)


@command
def clean(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only this model.", show_default=False)] = None,
    older_than: Annotated[
        float,
        typer.Option(
            "--older-than",
            metavar="SECONDS",
            min=0,
            callback=finite,
            help="Only staging debris at least this many seconds old (a push may still be running in younger ones).",
        ),
    ] = 3600.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed.")] = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Remove staging debris of interrupted pushes. Never touches a published version."""
    fmt = output_format(ctx, output, as_json)
    entries = state(ctx).client.clean(name, older_than=older_than, dry_run=dry_run)
    if fmt == "json":
        emit_json(
            {
                "dry_run": dry_run,
                "changed": bool(entries) and not dry_run,
                "removed": [{"name": e.name, "path": e.path, "age_seconds": round(e.age_seconds, 1)} for e in entries],
            }
        )
        return
    emit_lines([e.path for e in entries])
    if quiet:
        return
    verb = "would remove" if dry_run else "removed"
    info(f"{verb} {plural(len(entries), 'staging path')}")


def register(app: typer.Typer) -> None:
    app.command("clean")(clean)
