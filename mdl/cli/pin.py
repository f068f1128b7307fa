"""mdl pin / mdl unpin: versions that rm and gc never delete."""

from typing import Annotated

import typer

from mdl.cli.args import NameArg, version_argument
from mdl.cli.common import JsonOpt, OutputOpt, command, emit_json, info, output_format, state


def _report(name: str, version: str, pinned: bool, changed: bool, fmt: str) -> None:
    if fmt == "json":
        emit_json({"name": name, "version": version, "pinned": pinned, "changed": changed})
    elif changed:
        info(f"{'pinned' if pinned else 'unpinned'} {name}/{version}")
    else:
        info(f"unchanged: {name}/{version} is {'already pinned' if pinned else 'not pinned'}")


@command
def pin(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, version_argument("The version to keep.")],
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pin a version: mdl rm and mdl gc never delete it until it is unpinned (recorded in the history)."""
    fmt = output_format(ctx, output, as_json)
    _report(name, version, True, state(ctx).client.pin(name, version), fmt)


@command
def unpin(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, version_argument("The version to release.")],
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Unpin a version: mdl rm and mdl gc may delete it again (recorded in the history)."""
    fmt = output_format(ctx, output, as_json)
    _report(name, version, False, state(ctx).client.unpin(name, version), fmt)


def register(app: typer.Typer) -> None:
    app.command("pin")(pin)
    app.command("unpin")(unpin)
