"""mdl push: upload a model file or directory as a new immutable version."""

from typing import Annotated

import typer

from mdl.cli.args import FormatOpt, NameArg, alias_option
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
def push(
    ctx: typer.Context,
    name: NameArg,
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="A model file or a directory of files.")],
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            "-V",
            metavar="VERSION",
            help="Version id (default: a UTC timestamp such as 20261127T171300Z).",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOpt = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Also point alias latest (or --alias) at the new version.")
    ] = False,
    alias: Annotated[
        str | None,
        alias_option(
            "Also point this alias at the new version (implies --promote).", metavar="ALIAS", show_default=False
        ),
    ] = None,
    sign: Annotated[
        bool,
        typer.Option("--sign", help="Sign the version once published, with trust.signing_key (before any promotion)."),
    ] = False,
    jobs: JobsOpt = None,
    no_progress: NoProgressOpt = False,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Upload a file or directory as a new version, atomically, with a sha256 manifest.

    Prints the version id. Pushing content identical to the newest version (or to --version)
    again changes nothing and says so.
    """
    fmt_out = output_format(ctx, output, as_json)
    client = state(ctx).client
    with progress_bar(ctx, f"push {name}", no_progress) as bar:
        result = client.push(
            name,
            source,
            version=version,
            fmt=fmt,
            promote=promote or alias is not None,
            alias=alias or "latest",
            jobs=jobs,
            progress=bar,
            sign=sign,
        )
    if fmt_out == "json":
        emit_json(result.to_dict())
        return
    typer.echo(result.version)
    if quiet:
        return
    if result.uploaded:
        size = human_bytes(result.bytes)
        info(f"pushed {name}/{result.version}: {plural(result.files, 'file')}, {size}, {result.digest}")
    else:
        info(f"unchanged: {name}/{result.version} already holds this content ({result.digest})")
    if result.signature:
        s = result.signature
        who = (
            f"certificate {s['subject']} (key {s['key_id']})" if s["method"] == "certificate" else f"key {s['key_id']}"
        )
        info(f"{'signed' if s['added'] else 'already signed'} {name}/{result.version} with {who}")
    if result.promoted:
        info(f"{name}:{result.promoted} -> {result.version}")


def register(app: typer.Typer) -> None:
    app.command("push")(push)
