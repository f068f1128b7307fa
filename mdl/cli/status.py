"""mdl status: every live replica of a model, what it holds, and whether it matches its alias."""

import typer

from mdl.cli.args import NameArg
from mdl.cli.common import (
    Column,
    JsonOpt,
    OutputOpt,
    QuietOpt,
    age,
    command,
    emit_json,
    emit_lines,
    info,
    output_format,
    print_table,
    state,
    timestamp,
)

COLUMNS = [
    Column("ID", ident=True),
    Column("KIND", drop=3),
    Column("STATE"),
    Column("LOADED", ident=True),
    Column("ALIAS", ident=True, drop=2),
    Column("MATCH"),
    Column("SINCE", drop=4),
    Column("AGE"),
    Column("ERROR", drop=5),
    Column("ADDRESS", ident=True, wide=True),
    Column("HOST", ident=True, wide=True),
]


@command
def status(
    ctx: typer.Context,
    name: NameArg,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show the fleet: watchers and servers, their state and loaded version, counts per version.

    -o wide adds each replica's address and host.
    """
    from mdl.fleet import Fleet

    fmt = output_format(ctx, output, as_json)
    report = Fleet(state(ctx).client).status(name)
    if fmt == "json":
        emit_json(report.to_dict())
        return
    if quiet:
        emit_lines([r.id for r in report.replicas])
        return
    if not report.replicas:
        info(f"no live replicas of {name}")
        return
    rows = [
        [
            r.id,
            r.kind or "-",
            str(r.state),
            r.loaded or "-",
            r.alias or "-",
            "yes" if report.matches(r) else "no",
            timestamp(r.since),
            age(r.since),
            r.error or "-",
            r.address or "-",
            r.host or "-",
        ]
        for r in report.replicas
    ]
    print_table(COLUMNS, rows, wide=fmt == "wide")
    counts = sorted(report.counts.items(), key=lambda vn: (vn[0] == "-", vn[0]))
    info(", ".join(f"{'nothing loaded' if v == '-' else v}: {n}" for v, n in counts))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
