"""mdl rm: delete versions of a model by the deletion protocol (docs/safety.md)."""

from typing import Annotated

import typer

from mdl.cli.args import NameArg, version_argument
from mdl.cli.common import (
    JsonOpt,
    OutputOpt,
    QuietOpt,
    command,
    emit_json,
    emit_lines,
    human_bytes,
    info,
    output_format,
    state,
)

TrashOpt = Annotated[
    bool,
    typer.Option("--trash", help="HDFS only: move the deleted versions into your HDFS trash instead of deleting them."),
]


@command
def rm(
    ctx: typer.Context,
    name: NameArg,
    versions: Annotated[list[str], version_argument("The versions to delete.", metavar="VERSION...")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Delete even a version a live replica has loaded or is downloading, or one in an alias's "
            "rollback window. Never an aliased or a pinned version.",
        ),
    ] = False,
    trash: TrashOpt = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Delete versions: each vanishes at once for readers, then its bytes are removed. Prints each
    deleted version id.

    Refused (exit 4, naming the reason) for a version an alias points at (promote another first) or
    that is pinned (mdl unpin first), and, unless --force, for one a live replica has loaded or is
    downloading or that lies in an alias's rollback window (its last retention.rollback_window
    versions). Every version is checked before any is deleted; an unknown one is exit 3.
    """
    fmt = output_format(ctx, output, as_json)
    deleted = state(ctx).client.rm(name, versions, force=force, trash=trash)
    if fmt == "json":
        emit_json({"name": name, "changed": bool(deleted), "deleted": [d.to_dict() for d in deleted]})
        return
    emit_lines([d.version for d in deleted])
    if quiet:
        return
    for d in deleted:
        info(f"{'moved to the trash' if d.trash else 'deleted'} {d.name}/{d.version} ({human_bytes(d.bytes)})")


def register(app: typer.Typer) -> None:
    app.command("rm")(rm)
