"""mdl watch: the hot-update sidecar that keeps DIR/current on the version an alias names."""

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from mdl.cli.common import JsonOpt, KeepOpt, OutputOpt, command, event_printer, finite, output_format, state
from mdl.errors import InvalidInput, MdlError

if TYPE_CHECKING:
    from mdl.health import HealthServer


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
    health_port: Annotated[Optional[int], typer.Option("--health-port", min=0, max=65535, help="Serve /livez and "
                           "/readyz on 127.0.0.1:PORT.", show_default=False)] = None,
    jitter: Annotated[float, typer.Option("--jitter", min=0, callback=finite,
                                          help="Random delay (s) before each download.")] = 0.0,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", min=0, help="Downloads of this model at "
                              "once across the fleet (0: no cap).")] = 0,
    poll: Annotated[float, typer.Option("--poll", min=0, callback=finite, help="Re-read the pointer every POLL "
                                        "seconds instead of subscribing to changes (0: subscribe).")] = 0.0,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep DIR/current on the version the alias names: download, verify, swap, notify, report.

    Fail static: registry or storage outages never change what is served. SIGTERM/SIGINT stop
    (deregistering), SIGHUP re-syncs.
    """
    from mdl.watch import Watcher, WatchOptions

    check_hooks(sig, pidfile, webhook)
    fmt = output_format(ctx, output, as_json)
    health = None
    if health_port is not None and not once:  # listening first: a port in use fails before anything happens
        from mdl.health import bind_health

        health = bind_health("127.0.0.1", health_port)
    opts = WatchOptions(alias=alias, version=version, keep=keep, exec_cmd=exec_cmd, signal=sig, pidfile=pidfile,
                        webhook=webhook, prefetch=prefetch, jitter=jitter, max_concurrent=max_concurrent,
                        poll=poll)
    printer, errors = event_printer(fmt), []

    def emit(event: dict[str, Any]) -> None:
        if event.get("error"):
            errors.append(str(event["error"]))  # what --once reports if it ends without a version
        printer(event)

    try:
        watcher = Watcher(state(ctx).client, name, Path(dest), opts, emit=emit)
    except BaseException:
        if health is not None:
            health.server_close()
        raise
    if once:
        ok = watcher.sync_once()
        watcher.stop()
        if not ok:
            why = errors[-1] if errors else watcher.error or "no version could be verified"
            raise MdlError(f"{name}: no verified version in {dest}: {why}",
                           hint=f"see the model's versions and aliases with: mdl list {name}")
        typer.echo(str(watcher.cache.root / "current"))
        return
    run_until_signalled(watcher, health)


def check_hooks(sig: str | None, pidfile: Path | None, webhook: str | None) -> None:
    """The after-swap hooks, checked before anything happens (else a bad one fails only after a download,
    reverting the swap)."""
    if sig:
        if not pidfile:
            raise InvalidInput("--signal needs --pidfile")
        full = sig if sig.startswith("SIG") else "SIG" + sig
        if not isinstance(getattr(signal, full, None), signal.Signals):
            raise InvalidInput(f"--signal {sig!r} is not a signal", hint="use a name such as HUP, USR1 or SIGUSR2")
    elif pidfile:
        raise InvalidInput("--pidfile needs --signal", hint="e.g. --signal HUP --pidfile /run/app.pid")
    if webhook is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(webhook)
            parts.port  # raises ValueError for a port that is not 0-65535
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. a port that is not a number, or out of range
            ok = False
        if not ok or any(ord(ch) <= 32 for ch in webhook):
            raise InvalidInput(f"--webhook {webhook!r} is not an http(s) URL",
                               hint="e.g. --webhook http://127.0.0.1:8080/reload")


def run_until_signalled(watcher: Any, health: "HealthServer | int | None") -> None:
    """Start ``watcher`` and block until SIGTERM/SIGINT; SIGHUP re-syncs. ``health``: a bound health
    endpoint (or a port to listen on) that answers for the watcher."""
    if isinstance(health, int):
        from mdl.health import bind_health

        health = bind_health("127.0.0.1", health)
    signal.signal(signal.SIGTERM, lambda *_: watcher.stop())
    signal.signal(signal.SIGINT, lambda *_: watcher.stop())
    signal.signal(signal.SIGHUP, lambda *_: watcher.resync())
    if health is not None:
        health.start(live=lambda: time.monotonic() - watcher.last_loop < 30,
                     ready=lambda: {"ready": watcher.ready, "version": watcher.cache.current, "state": watcher.state,
                                    "error": watcher.error})
    try:
        watcher.start()
        while not watcher.wait(0.5):
            pass
    finally:
        if health is not None:
            health.shutdown()
            health.server_close()


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
