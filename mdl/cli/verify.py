"""mdl verify: check a version's signatures against the local trust anchors and say who signed."""

from typing import Annotated

import typer

from mdl.cli.args import NameArg, alias_option, version_argument
from mdl.cli.common import JsonOpt, OutputOpt, command, emit_json, info, output_format, plural, print_table, state


@command
def verify(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str | None, version_argument("Version (default: the alias's).", show_default=False)] = None,
    alias: Annotated[
        str | None, alias_option("Verify the version this alias names [default: latest].", show_default=False)
    ] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every signature of a version against trust.keys and trust.ca; print who signed it.

    One line per signature: valid ones with their method and signer (the key id, or the certificate's
    subject), invalid ones with the reason. Exit 8 if none is valid (or the version is not signed).
    """
    from mdl.trust import refusal

    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    version = client.resolve(name, version, alias)
    checked = client.signatures(name, version)
    valid = [c for c in checked if c.signer is not None]
    if fmt == "json":
        emit_json(
            {"name": name, "version": version, "valid": bool(valid), "signatures": [c.to_dict() for c in checked]}
        )
    elif checked:
        rows = []
        for c in checked:
            if c.signer is None:
                rows.append(["invalid", "-", c.sig_id, c.reason or ""])
            else:
                rows.append(["valid", c.signer.method, c.signer.key_id, c.signer.subject or ""])
        print_table(["STATUS", "METHOD", "KEY ID", "SUBJECT / REASON"], rows)
    if not valid:
        raise refusal(name, version, checked)
    if fmt != "json":
        bad = len(checked) - len(valid)
        info(
            f"verified {name}/{version}: {plural(len(valid), 'valid signature')}" + (f", {bad} invalid" if bad else "")
        )


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
