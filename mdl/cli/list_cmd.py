"""mdl list: every model with its aliases, or one model's versions newest first."""

from typing import Annotated

import typer

from mdl.cli.common import (
    JsonOpt,
    OutputOpt,
    QuietOpt,
    command,
    emit_json,
    emit_lines,
    human_bytes,
    output_format,
    print_table,
    state,
)


@command
def list_(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="A model: list its versions.", show_default=False)
    ] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List models (aliases, version count) or one model's versions (size, files, created, creator)."""
    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    if name is None:
        models = client.list_models()
        if fmt == "json":
            emit_json({"models": [m.to_dict() for m in models]})
        elif quiet:
            emit_lines([m.name for m in models])
        else:
            rows = [
                [m.name, ", ".join(f"{a}={v}" for a, v in sorted(m.aliases.items())) or "-", str(m.versions)]
                for m in models
            ]
            print_table(["NAME", "ALIASES", "VERSIONS"], rows)
        return
    versions = client.list_versions(name)
    if fmt == "json":
        emit_json({"name": name, "aliases": client.pointer(name).aliases, "versions": [v.to_dict() for v in versions]})
    elif quiet:
        emit_lines([v.version for v in versions])
    else:
        rows = [
            [
                v.version,
                v.created[:19].replace("T", " ") + "Z",
                human_bytes(v.bytes),
                str(v.files),
                v.format,
                v.creator,
                ", ".join(v.aliases),
            ]
            for v in versions
        ]
        print_table(["VERSION", "CREATED", "SIZE", "FILES", "FORMAT", "CREATOR", "ALIASES"], rows)


def register(app: typer.Typer) -> None:
    app.command("list")(list_)
    app.command("ls", hidden=True)(list_)
