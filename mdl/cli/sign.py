"""mdl sign: add a signature to a stored version with the configured key."""

from typing import Annotated

import typer

from mdl.cli.args import NameArg, version_argument
from mdl.cli.common import JsonOpt, OutputOpt, command, emit_json, info, output_format, state


@command
def sign(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, version_argument("The version to sign.")],
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign a version with trust.signing_key (and trust.signing_cert_chain, if set); prints the key id.

    The signature is stored beside the version: its files and digest never change. A version may
    carry several signatures (CI's, a release manager's); signing again with the same key changes nothing.
    """
    from mdl.trust import describe

    fmt = output_format(ctx, output, as_json)
    signer, added = state(ctx).client.sign(name, version)
    if fmt == "json":
        emit_json({"name": name, "version": version, **describe(signer), "added": added})
        return
    typer.echo(signer.key_id)
    if added:
        who = f"certificate {signer.subject}" if signer.subject else "key"
        info(f"signed {name}/{version} with {who} {signer.key_id}")
    else:
        info(f"unchanged: {name}/{version} is already signed by this key")


def register(app: typer.Typer) -> None:
    app.command("sign")(sign)
