"""mdl endpoints: the live servers of a model, as URLs, or rendered for a load balancer or Prometheus,
once or kept in step with the registry (``--watch --out FILE --exec CMD``)."""

from pathlib import Path
from typing import Annotated, Any

import typer

from mdl.cli.args import NameArg, alias_option, version_option
from mdl.cli.common import (
    OUTPUT_FORMATS,
    JsonOpt,
    QuietOpt,
    command,
    emit_json,
    emit_lines,
    event_printer,
    info,
    output_format,
    output_option,
    state,
)
from mdl.cli.completion import complete_endpoints_output
from mdl.errors import InvalidInput

FILE_FORMATS = ("haproxy", "nginx", "prometheus")  # mdl.discovery.render.FORMATS (not imported at start-up)
FORMATS = (*OUTPUT_FORMATS, *FILE_FORMATS)
OUT_HINT = "e.g. mdl endpoints lr -o haproxy --watch --out /etc/haproxy/conf.d/lr.cfg --exec 'systemctl reload haproxy'"


@command
def endpoints(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[str | None, alias_option("Only servers following this alias.", show_default=False)] = None,
    version: Annotated[str | None, version_option("Only servers serving this version.", show_default=False)] = None,
    output: Annotated[
        str | None,
        output_option(
            FORMATS,
            "Output format: table (URLs), json, haproxy (a backend section), nginx (an upstream block) or "
            "prometheus (file_sd JSON).",
            complete_endpoints_output,
        ),
    ] = None,
    as_json: JsonOpt = False,
    template: Annotated[
        Path | None,
        typer.Option(
            "--template",
            metavar="FILE",
            help="Render with this Jinja2 template instead (variables: name, targets).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Write to FILE (atomically, only when the text changes) instead of stdout; --json then "
            "prints what happens as JSON lines.",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep --out in step with the registry until SIGTERM.")
    ] = False,
    exec_cmd: Annotated[
        str | None,
        typer.Option(
            "--exec",
            metavar="CMD",
            help="Run CMD (a shell command) after each write of --out, e.g. 'systemctl reload haproxy'.",
            show_default=False,
        ),
    ] = None,
    check_cmd: Annotated[
        str | None,
        typer.Option(
            "--check",
            metavar="CMD",
            help="Before installing a new --out, run CMD on it ($MDL_ENDPOINTS_FILE); if it fails the old file stays.",
            show_default=False,
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="[HOST:]PORT",
            help="With --watch -o prometheus: serve the targets at http://HOST:PORT/sd for Prometheus' "
            "http_sd_configs (and /livez, /readyz); HOST defaults to 127.0.0.1.",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """List the live `mdl serve` replicas of a model that can answer now, or render them for a balancer.

    `-o haproxy|nginx` lists the servers that answer now (ready, or serving their loaded version while
    syncing or after a failed update; never one that is draining), `-o prometheus` every live server;
    `--watch --out FILE --exec CMD` rewrites FILE whenever that changes and runs CMD (fail static: a
    registry outage leaves FILE as it is).
    """
    from mdl.names import validate_alias, validate_version

    if alias is not None:
        validate_alias(alias)
    if version is not None:
        validate_version(version)
    # With --out or --watch, -o is the rendering's format and --json the events' (JSON lines on stdout,
    # else log lines on stderr).
    json_is_output = as_json and out is None and not watch
    fmt = output_format(ctx, output, json_is_output, FORMATS)
    text = None
    if template is not None:
        if output is not None or json_is_output:
            raise InvalidInput("--template and -o both say how to render: pick one")
        fmt, text = "template", _read_template(template)
    address = _listen_address(listen) if listen is not None else None
    if address is not None and not watch:
        raise InvalidInput("--listen needs --watch", hint="e.g. mdl endpoints lr -o prometheus --watch --listen 9099")
    if address is not None and fmt != "prometheus":
        raise InvalidInput("--listen serves Prometheus targets: add -o prometheus")
    if out is None and (exec_cmd or check_cmd or (watch and address is None)):
        flag = "--exec" if exec_cmd else "--check" if check_cmd else "--watch"
        raise InvalidInput(f"{flag} needs --out FILE", hint=OUT_HINT)
    if out is not None and fmt in ("table", "wide"):
        raise InvalidInput(
            "--out needs a file format", hint="add -o haproxy, -o nginx, -o prometheus, -o json or --template FILE"
        )
    if fmt in ("table", "wide") or (fmt == "json" and out is None):
        _print(state(ctx).client, name, alias, version, fmt, quiet)
        return
    from mdl.discovery.follow import Follower, FollowOptions, renderer

    render = renderer(name, fmt, alias=alias, version=version, template=text, source=str(template))
    render([])  # a template that cannot render fails now, before the registry is read or a file written
    client = state(ctx).client
    if out is None and not watch:
        records = _records(client, name)
        typer.echo(render(records).text, nl=False)
        return
    opts = FollowOptions(out, exec_cmd=exec_cmd, check_cmd=check_cmd)
    client.require_model(name)
    if watch:
        from mdl.watch import run

        printer = event_printer("json" if as_json else "table")  # the file's own format is fmt

        def make() -> Follower:
            return Follower(client, name, render, opts, emit=printer)

        if address is None:
            run(make)
        else:  # listening before anything else happens: a port in use fails first
            run(make, health_host=address[0], health_port=address[1])
        return
    follower = Follower(client, name, render, opts)
    changed = follower.once()
    if as_json:
        emit_json({"name": name, "path": str(out), "changed": changed, "servers": len(follower.servers or ())})
    elif not quiet:
        info(f"{out} {'written' if changed else 'unchanged'} ({len(follower.servers or ())} servers)")


def _print(client: Any, name: str, alias: str | None, version: str | None, fmt: str, quiet: bool) -> None:
    from mdl.fleet import Fleet

    found = Fleet(client).endpoints(name, alias, version)
    if fmt == "json" and not quiet:
        emit_json({"name": name, "endpoints": [e.to_dict() for e in found]})
        return
    emit_lines([e.url for e in found])
    if not found and not quiet:
        info(f"no live server of {name} has a version loaded")


def _records(client: Any, name: str) -> list:
    from mdl.fleet import Fleet

    records = Fleet(client).replicas(name)
    if not records:
        client.require_model(name)
    return records


def _listen_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (``[v6]:PORT`` for IPv6) as (host, port); HOST defaults to 127.0.0.1."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise InvalidInput(f"--listen {text!r} is not [HOST:]PORT", hint="e.g. --listen 9099 or --listen 0.0.0.0:9099")
    return host, int(port)


def _read_template(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read the template {str(path)!r}: {getattr(exc, 'strerror', None) or exc}",
            hint="--template takes a Jinja2 text file",
        ) from None


def register(app: typer.Typer) -> None:
    app.command("endpoints")(endpoints)
