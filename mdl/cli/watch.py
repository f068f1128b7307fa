"""mdl watch: the hot-update sidecar that keeps DIR/current on the version an alias names."""

from pathlib import Path
from typing import Annotated, Any

import typer

from mdl.cli.common import JsonOpt, KeepOpt, OutputOpt, command, event_printer, finite, output_format, state
from mdl.errors import MdlError


@command
def watch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    dest: Annotated[str, typer.Option("-d", "--dir", help="Local directory: versions/ and the current link.")],
    alias: Annotated[str, typer.Option("--alias", "-a", help="Follow this alias.")] = "latest",
    version: Annotated[
        str | None, typer.Option("--version", "-V", help="Pin this version instead.", show_default=False)
    ] = None,
    exec_cmd: Annotated[
        str | None,
        typer.Option(
            "--exec",
            help="Run after each swap (env MDL_MODEL, "
            "MDL_VERSION, MDL_PATH, MDL_PREVIOUS_VERSION); non-zero exit reverts the swap.",
            show_default=False,
        ),
    ] = None,
    sig: Annotated[
        str | None,
        typer.Option(
            "--signal",
            help="Send this signal (e.g. HUP) after each swap to the process in --pidfile.",
            show_default=False,
        ),
    ] = None,
    pidfile: Annotated[
        Path | None, typer.Option("--pidfile", help="Pid file for --signal.", show_default=False)
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook", help="POST {model, version, path, previous_version} here after each swap.", show_default=False
        ),
    ] = None,
    keep: KeepOpt = 3,
    once: Annotated[bool, typer.Option("--once", help="Sync once and exit (init containers, cron).")] = False,
    prefetch: Annotated[
        bool, typer.Option("--prefetch", help="Download new versions when pushed, before they are promoted.")
    ] = False,
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port", min=0, max=65535, help="Serve /livez and /readyz on 127.0.0.1:PORT.", show_default=False
        ),
    ] = None,
    jitter: Annotated[
        float, typer.Option("--jitter", min=0, callback=finite, help="Random delay (s) before each download.")
    ] = 0.0,
    max_concurrent: Annotated[
        int,
        typer.Option("--max-concurrent", min=0, help="Downloads of this model at once across the fleet (0: no cap)."),
    ] = 0,
    poll: Annotated[
        float,
        typer.Option(
            "--poll",
            min=0,
            callback=finite,
            help="Re-read the pointer every POLL seconds instead of subscribing to changes (0: subscribe).",
        ),
    ] = 0.0,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep DIR/current on the version the alias names: download, verify, swap, notify, report.

    Fail static: registry or storage outages never change what is served. SIGTERM/SIGINT stop
    (deregistering), SIGHUP re-syncs.
    """
    from mdl.watch import Watcher, WatchOptions, check_hooks, run

    check_hooks(sig, pidfile, webhook)
    fmt = output_format(ctx, output, as_json)
    opts = WatchOptions(
        alias=alias,
        version=version,
        keep=keep,
        exec_cmd=exec_cmd,
        signal=sig,
        pidfile=pidfile,
        webhook=webhook,
        prefetch=prefetch,
        jitter=jitter,
        max_concurrent=max_concurrent,
        poll=poll,
    )
    printer, errors = event_printer(fmt), []

    def emit(event: dict[str, Any]) -> None:
        if event.get("error"):
            errors.append(str(event["error"]))  # what --once reports if it ends without a version
        printer(event)

    def make() -> Watcher:
        return Watcher(state(ctx).client, name, Path(dest), opts, emit=emit)

    if not once:  # the health port (if any) is listened on first: one in use fails before anything happens
        run(make, health_port=health_port)
        return
    watcher = make()
    ok = watcher.sync_once()
    watcher.stop()
    if not ok:
        why = errors[-1] if errors else watcher.error or "no version could be verified"
        raise MdlError(
            f"{name}: no verified version in {dest}: {why}",
            hint=f"see the model's versions and aliases with: mdl list {name}",
        )
    typer.echo(str(watcher.dir.root / "current"))


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
