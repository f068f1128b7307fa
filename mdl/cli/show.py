"""mdl show: one version without pulling it (files, digest, aliases, promotions, replicas)."""

from typing import Annotated

import typer

from mdl.cli.args import alias_option, name_argument, version_argument
from mdl.cli.common import (
    Column,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    command,
    emit_json,
    emit_lines,
    human_bytes,
    output_format,
    plural,
    print_table,
    printable,
    state,
    timestamp,
)


@command
def show(
    ctx: typer.Context,
    name: Annotated[str, name_argument()],
    version: Annotated[
        str | None, version_argument("The version (default: the one the alias points at).", show_default=False)
    ] = None,
    alias: Annotated[
        str | None, alias_option("Show the version this alias points at (default: latest).", show_default=False)
    ] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show a version: its files (path, size, sha256), digest, format, creator, the aliases that point
    at it, whether it is pinned, who promoted it and when, and the replicas running it."""
    from mdl.details import describe

    fmt = output_format(ctx, output, as_json)
    d = describe(state(ctx).client, name, version=version, alias=alias)
    if fmt == "json":
        emit_json(d.to_dict())
        return
    if quiet:
        emit_lines([d.version])
        return
    m = d.manifest
    fields = [
        ("Name", m.name),
        ("Version", m.version),
        ("Digest", m.digest),
        ("Format", m.format),
        ("Created", f"{timestamp(m.created)} by {m.creator}"),
        ("Size", f"{human_bytes(m.bytes)} in {plural(len(m.files), 'file')}"),
        ("Aliases", ", ".join(d.aliases) or "-"),
        ("Pinned", "yes" if d.pinned else "no"),
    ]
    fields += [
        ("Promoted", f"{e.alias} by {e.who} at {timestamp(e.at)} ({e.action}, #{e.seq})") for e in d.promotions
    ] or [("Promoted", "never")]
    emit_lines([f"{printable(k + ':'):<10} {printable(v)}" for k, v in fields])
    emit_lines(["", "Files:"])
    print_table(
        [Column("PATH", ident=True), "SIZE", Column("SHA256", ident=True)],
        [[f.path, human_bytes(f.size), f.sha256] for f in m.files],
    )
    emit_lines(["", "Replicas:"])
    if d.replicas:
        print_table(
            [
                Column("ID", ident=True),
                "KIND",
                "STATE",
                Column("LOADED", ident=True),
                "ALIAS",
                Column("ADDRESS", drop=1),
            ],
            [
                [r.id, r.kind or "-", r.state or "-", r.loaded or "-", r.alias or "-", r.address or "-"]
                for r in d.replicas
            ],
        )
    else:
        emit_lines(["  none"])


def register(app: typer.Typer) -> None:
    app.command("show")(show)
