"""mdl watch: the hot-update sidecar that keeps DIR/current on the version an alias names."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mdl.cli.args import NameArg, alias_option, version_option
from mdl.cli.common import JsonOpt, KeepOpt, OutputOpt, command, event_printer, finite, output_format, state
from mdl.errors import MdlError, NotFound

if TYPE_CHECKING:
    from mdl.watch import Watcher


@command
def watch(
    ctx: typer.Context,
    name: NameArg,
    dest: Annotated[
        str, typer.Option("-d", "--dir", metavar="DIR", help="Local directory: versions/ and the current link.")
    ],
    alias: Annotated[str, alias_option("Follow this alias.")] = "latest",
    version: Annotated[str | None, version_option("Pin this version instead.", show_default=False)] = None,
    exec_cmd: Annotated[
        str | None,
        typer.Option(
            "--exec",
            metavar="CMD",
            help="Run after each swap (env MDL_MODEL, "
            "MDL_VERSION, MDL_PATH, MDL_PREVIOUS_VERSION); non-zero exit reverts the swap.",
            show_default=False,
        ),
    ] = None,
    sig: Annotated[
        str | None,
        typer.Option(
            "--signal",
            metavar="SIGNAL",
            help="Send this signal (e.g. HUP) after each swap to the process in --pidfile.",
            show_default=False,
        ),
    ] = None,
    pidfile: Annotated[
        Path | None, typer.Option("--pidfile", metavar="PATH", help="Pid file for --signal.", show_default=False)
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="URL",
            help="POST {model, version, path, previous_version} here after each swap.",
            show_default=False,
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
            "--health-port",
            metavar="PORT",
            min=0,
            max=65535,
            help="Serve /livez and /readyz on 127.0.0.1:PORT.",
            show_default=False,
        ),
    ] = None,
    jitter: Annotated[
        float,
        typer.Option(
            "--jitter", metavar="SECONDS", min=0, callback=finite, help="Random delay (s) before each download."
        ),
    ] = 0.0,
    max_concurrent: Annotated[
        int,
        typer.Option(
            "--max-concurrent", metavar="N", min=0, help="Downloads of this model at once across the fleet (0: no cap)."
        ),
    ] = 0,
    poll: Annotated[
        float,
        typer.Option(
            "--poll",
            metavar="SECONDS",
            min=0,
            callback=finite,
            help="Re-read the pointer every POLL seconds instead of subscribing to changes (0: subscribe).",
        ),
    ] = 0.0,
    require_signature: Annotated[
        bool,
        typer.Option(
            "--require-signature",
            help="Refuse versions without a valid signature from a trusted key or CA (trust.require_signature).",
        ),
    ] = False,
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
        require_signature=require_signature,
    )
    printer = event_printer(fmt)

    def emit(event: dict[str, Any]) -> None:
        if once and fmt != "json" and event["event"] == "waiting":
            return  # --once says why in its error line
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
        raise _once_error(watcher, name, dest)
    path = str(watcher.dir.root / "current")
    if fmt == "json":  # stdout stays one JSON object per line: the path is a field of the last one
        from mdl.host import now_iso

        printer({"event": "synced", "at": now_iso(), "model": name, "version": watcher.dir.current, "path": path})
    else:
        typer.echo(path)


def _once_error(watcher: "Watcher", name: str, dest: str) -> MdlError:
    """Why ``--once`` ends without a verified version, with the exit code of the cause (3: nothing to
    follow yet, 6: unreachable, 8: integrity...)."""
    problem = watcher.problem
    if isinstance(problem, NotFound):
        return NotFound(problem.message, problem.hint)
    why = watcher.error or "no version could be verified"
    err = MdlError(
        f"{name}: no verified version in {dest}: {why}",
        hint=(problem.hint if problem is not None else None) or f"see the versions and aliases with: mdl list {name}",
    )
    if problem is not None:
        err.exit_code = problem.exit_code
    return err


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
