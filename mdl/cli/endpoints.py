"""mdl endpoints: the URLs of the live servers of a model that can answer now (client-side discovery)."""

from typing import Annotated

import typer

from mdl.cli.args import NameArg, alias_option, version_option
from mdl.cli.common import JsonOpt, OutputOpt, QuietOpt, command, emit_json, emit_lines, info, output_format, state


@command
def endpoints(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[str | None, alias_option("Only servers following this alias.", show_default=False)] = None,
    version: Annotated[str | None, version_option("Only servers serving this version.", show_default=False)] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List the URLs of the live `mdl serve` replicas of a model that have a version loaded, one per line."""
    from mdl.fleet import Fleet
    from mdl.names import validate_alias, validate_version

    if alias is not None:
        validate_alias(alias)
    if version is not None:
        validate_version(version)
    fmt = output_format(ctx, output, as_json)
    found = Fleet(state(ctx).client).endpoints(name, alias, version)
    if fmt == "json" and not quiet:
        emit_json({"name": name, "endpoints": [e.to_dict() for e in found]})
        return
    emit_lines([e.url for e in found])
    if not found and not quiet:
        info(f"no live server of {name} has a version loaded")


def register(app: typer.Typer) -> None:
    app.command("endpoints")(endpoints)
