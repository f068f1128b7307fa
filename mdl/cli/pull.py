"""mdl pull: a verified local copy of a version."""

from typing import Annotated

import typer

from mdl.cli.args import NameArg, alias_option, version_argument
from mdl.cli.common import (
    JobsOpt,
    JsonOpt,
    NoProgressOpt,
    OutputOpt,
    QuietOpt,
    command,
    emit_json,
    human_bytes,
    info,
    output_format,
    plural,
    progress_bar,
    state,
)


@command
def pull(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str | None, version_argument("Version (default: the alias's).", show_default=False)] = None,
    alias: Annotated[
        str | None,
        alias_option("Pull the version this alias names [default: latest].", show_default=False),
    ] = None,
    dest: Annotated[
        str | None,
        typer.Option("-d", "--dir", metavar="DIR", help="Target directory [default: ./NAME].", show_default=False),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a non-empty directory that holds no mdl version.")
    ] = False,
    require_signature: Annotated[
        bool,
        typer.Option(
            "--require-signature",
            help="Refuse a version without a valid signature from a trusted key or CA (trust.require_signature).",
        ),
    ] = False,
    jobs: JobsOpt = None,
    no_progress: NoProgressOpt = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download a version into a directory, verify every sha256, then move it into place.

    Prints the directory. A copy already present and verified is left as it is.
    """
    import signal

    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    signal.signal(signal.SIGTERM, _interrupt)  # cleaned up like Ctrl-C: no temporary is left behind
    with progress_bar(ctx, f"pull {name}", no_progress) as bar:
        result = client.pull(
            name,
            version,
            alias=alias,
            dest=dest,
            jobs=jobs,
            progress=bar,
            force=force,
            require_signature=require_signature,
        )
    if fmt == "json":
        emit_json(result.to_dict())
        return
    typer.echo(result.path)
    if quiet:
        return
    if result.changed:
        info(f"pulled {name}/{result.version}: {plural(result.files, 'file')}, {human_bytes(result.bytes)}, verified")
    else:
        info(f"unchanged: {result.path} already holds {name}/{result.version}, verified")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    app.command("pull")(pull)
