"""mdl status: every live replica of a model, what it holds, and whether it matches its alias."""

from collections import Counter
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
    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    aliases = client.pointer(name).aliases
    replicas = client.replicas(name)
    rows = []
    for r in replicas:
        d = r.data
        target = aliases.get(d.get("alias")) if d.get("alias") else d.get("desired")
        rows.append({**d, "id": r.id, "matches": d.get("loaded") == target and d.get("state") == "ready"})
    counts = dict(Counter(r.get("loaded") or "-" for r in rows))
    if fmt == "json":
        emit_json({"name": name, "aliases": aliases, "replicas": rows, "counts": counts})
        return
    print_table(["ID", "KIND", "STATE", "LOADED", "ALIAS", "MATCH", "ADDRESS", "SINCE", "ERROR"],
                [[r["id"], str(r.get("kind") or "-"), str(r.get("state")), str(r.get("loaded") or "-"),
                  str(r.get("alias") or "-"), "yes" if r["matches"] else "no", str(r.get("address") or "-"),
                  str(r.get("since") or "")[:19].replace("T", " "), str(r.get("error") or "")] for r in rows])
    info(", ".join(f"{v}: {n}" for v, n in sorted(counts.items())) or "no live replicas")


def register(app: typer.Typer) -> None:
    app.command("status")(status)
