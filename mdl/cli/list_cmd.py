"""mdl list: every model with its aliases, or one model's versions newest first."""

from typing import Annotated

import typer

from mdl.cli.args import name_argument
from mdl.cli.common import (
    Column,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    command,
    emit_json,
    emit_lines,
    human_bytes,
    info,
    output_format,
    print_table,
    state,
    timestamp,
)


@command
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, name_argument("A model: list its versions.", show_default=False)] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List models (aliases, version count) or one model's versions (created, size, files, format).

    ALIASES says (pinned) for a pinned version (mdl pin). -o wide adds each version's creator and digest.
    """
    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    if name is None:
        models = client.list_models()
        if fmt == "json":
            emit_json({"models": [m.to_dict() for m in models]})
            return
        if not models:
            info("no models yet: push one with: mdl push NAME PATH")
        elif quiet:
            emit_lines([m.name for m in models])
        else:
            rows = [
                [m.name, ", ".join(f"{a}={v}" for a, v in sorted(m.aliases.items())) or "-", str(m.versions)]
                for m in models
            ]
            print_table([Column("NAME", ident=True), Column("ALIASES", ident=True), Column("VERSIONS")], rows)
        return
    versions = client.list_versions(name)
    pinned = set(client.registry.lifecycle(name).pins) if versions and (fmt == "json" or not quiet) else set()
    if fmt == "json":
        docs = [{**v.to_dict(), "pinned": v.version in pinned} for v in versions]
        emit_json({"name": name, "aliases": client.pointer(name).aliases, "versions": docs})
    elif not versions:
        info(f"no versions of {name}")
    elif quiet:
        emit_lines([v.version for v in versions])
    else:
        rows = [
            [
                v.version,
                timestamp(v.created),
                human_bytes(v.bytes),
                str(v.files),
                v.format,
                " ".join([", ".join(v.aliases), "(pinned)"]).strip() if v.version in pinned else ", ".join(v.aliases),
                v.creator,
                v.digest,
            ]
            for v in versions
        ]
        columns = [
            Column("VERSION", ident=True),
            Column("CREATED", drop=1),
            Column("SIZE"),
            Column("FILES", drop=2),
            Column("FORMAT", drop=3),
            Column("ALIASES", ident=True),
            Column("CREATOR", wide=True),
            Column("DIGEST", ident=True, wide=True),
        ]
        print_table(columns, rows, wide=fmt == "wide")


def register(app: typer.Typer) -> None:
    app.command("list")(list_)
    app.command("ls", hidden=True)(list_)
