"""mdl watch: the hot-update sidecar that keeps DIR/current on the version an alias names."""

import signal
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mdl.cli.common import JsonOpt, KeepOpt, OutputOpt, command, event_printer, output_format, state
from mdl.errors import ExitCode, InvalidInput


@command
def watch(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Model name.")],
    dest: Annotated[str, typer.Option("-d", "--dir", help="Local directory: versions/ and the current link.")],
    alias: Annotated[str, typer.Option("--alias", "-a", help="Follow this alias.")] = "latest",
    version: Annotated[Optional[str], typer.Option("--version", "-V", help="Pin this version instead.",
                                                   show_default=False)] = None,
    exec_cmd: Annotated[Optional[str], typer.Option("--exec", help="Run after each swap (env MDL_MODEL, "
                        "MDL_VERSION, MDL_PATH, MDL_PREVIOUS_VERSION); non-zero exit reverts the swap.",
                        show_default=False)] = None,
    sig: Annotated[Optional[str], typer.Option("--signal", help="Send this signal (e.g. HUP) after each swap "
                   "to the process in --pidfile.", show_default=False)] = None,
    pidfile: Annotated[Optional[Path], typer.Option("--pidfile", help="Pid file for --signal.",
                                                    show_default=False)] = None,
    webhook: Annotated[Optional[str], typer.Option("--webhook", help="POST {model, version, path, "
                       "previous_version} here after each swap.", show_default=False)] = None,
    keep: KeepOpt = 3,
    once: Annotated[bool, typer.Option("--once", help="Sync once and exit (init containers, cron).")] = False,
    prefetch: Annotated[bool, typer.Option("--prefetch", help="Download new versions when pushed, before "
                                           "they are promoted.")] = False,
    health_port: Annotated[Optional[int], typer.Option("--health-port", help="Serve /livez and /readyz on "
                           "127.0.0.1:PORT.", show_default=False)] = None,
    jitter: Annotated[float, typer.Option("--jitter", min=0, help="Random delay (s) before each download.")] = 0.0,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", min=0, help="Downloads of this model at "
                              "once across the fleet (0: no cap).")] = 0,
    poll: Annotated[float, typer.Option("--poll", min=0, help="Re-read the pointer every POLL seconds instead "
                                        "of subscribing to changes (0: subscribe).")] = 0.0,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep DIR/current on the version the alias names: download, verify, swap, notify, report.

    Fail static: registry or storage outages never change what is served. SIGTERM/SIGINT stop
    (deregistering), SIGHUP re-syncs.
    """
    from mdl.watch import Watcher, WatchOptions

    if sig and not pidfile:
        raise InvalidInput("--signal needs --pidfile")
    fmt = output_format(ctx, output, as_json)
    opts = WatchOptions(alias=alias, version=version, keep=keep, exec_cmd=exec_cmd, signal=sig, pidfile=pidfile,
                        webhook=webhook, prefetch=prefetch, jitter=jitter, max_concurrent=max_concurrent,
                        poll=poll)
    watcher = Watcher(state(ctx).client, name, Path(dest), opts, emit=event_printer(fmt))
    if once:
        ok = watcher.sync_once()
        watcher.stop()
        if not ok:
            raise typer.Exit(int(ExitCode.FAILED))
        typer.echo(str(watcher.cache.root / "current"))
        return
    run_until_signalled(watcher, health_port)


def run_until_signalled(watcher: Any, health_port: int | None) -> None:
    """Start ``watcher`` and block until SIGTERM/SIGINT; SIGHUP re-syncs. Shared with ``mdl serve``."""
    signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    signal.signal(signal.SIGINT, lambda *_: watcher.stop())
    signal.signal(signal.SIGHUP, lambda *_: watcher.resync())
    watcher.start()
    if health_port is not None:
        from mdl.health import serve_health

        serve_health("127.0.0.1", health_port, live=lambda: time.monotonic() - watcher.last_loop < 30,
                     ready=lambda: {"ready": watcher.ready, "version": watcher.cache.current, "state": watcher.state,
                                    "error": watcher.error})
    while not watcher.wait(0.5):
        pass


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
