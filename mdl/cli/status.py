"""mdl status: every live replica of a model, what it holds, and whether it matches its alias."""

from typing import Annotated

import typer

from mdl.cli.common import JsonOpt, OutputOpt, command, emit_json, info, output_format, print_table, state


@command
def status(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the fleet: watchers and servers, their state and loaded version, counts per version."""
    from mdl.fleet import Fleet

    fmt = output_format(ctx, output, as_json)
    report = Fleet(state(ctx).client).status(name)
    if fmt == "json":
        emit_json(report.to_dict())
        return
    print_table(
        ["ID", "KIND", "STATE", "LOADED", "ALIAS", "MATCH", "ADDRESS", "SINCE", "ERROR"],
        [
            [
                r.id,
                r.kind or "-",
                str(r.state),
                r.loaded or "-",
                r.alias or "-",
                "yes" if report.matches(r) else "no",
                r.address or "-",
                (r.since or "")[:19].replace("T", " "),
                r.error or "",
            ]
            for r in report.replicas
        ],
    )
    info(", ".join(f"{v}: {n}" for v, n in sorted(report.counts.items())) or "no live replicas")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
