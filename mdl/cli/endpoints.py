"""mdl endpoints: the URLs of the live servers of a model that can answer now (client-side discovery)."""

from typing import Annotated, Any, Optional

import typer

from mdl.cli.common import JsonOpt, OutputOpt, QuietOpt, command, emit_json, emit_lines, info, output_format, state


def serving(replicas: list[Any], alias: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
    """Server replicas that have an address and a loaded version (so they answer), as endpoint dicts.

    A server that is syncing a new version, or failed to load one, still answers with the version it
    has loaded, so it stays listed; ``state`` says which. Dead processes are never listed: their
    registration disappears (ZooKeeper session, or a dead pid on SQLite).
    """
    out = []
    for r in replicas:
        d = r.data
        if d.get("kind") != "server" or not d.get("address") or not d.get("loaded"):
            continue
        if d.get("state") not in ("ready", "syncing", "failed"):
            continue
        if alias is not None and d.get("alias") != alias:
            continue
        if version is not None and d.get("loaded") != version:
            continue
        out.append({"url": d["address"], "id": r.id, "version": d.get("loaded"), "alias": d.get("alias"),
                    "state": d.get("state"), "host": d.get("host"), "error": d.get("error")})
    return sorted(out, key=lambda e: e["url"])


@command
def endpoints(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    alias: Annotated[Optional[str], typer.Option("--alias", "-a", help="Only servers following this alias.",
                                                 show_default=False)] = None,
    version: Annotated[Optional[str], typer.Option("--version", "-V", help="Only servers serving this version.",
                                                   show_default=False)] = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List the URLs of the live `mdl serve` replicas of a model that have a version loaded, one per line."""
    from mdl.names import validate_alias, validate_version

    if alias is not None:
        validate_alias(alias)
    if version is not None:
        validate_version(version)
    fmt = output_format(ctx, output, as_json)
    client = state(ctx).client
    found = serving(client.replicas(name), alias, version)
    if fmt == "json" and not quiet:
        emit_json({"name": name, "endpoints": found})
        return
    emit_lines([e["url"] for e in found])
    if not found and not quiet:
        info(f"no live server of {name} has a version loaded")


def register(app: typer.Typer) -> None:
    app.command("endpoints")(endpoints)
