"""What runs after each swap: ``--exec``, ``--signal`` with ``--pidfile``, ``--webhook``.

A hook that fails raises HookFailed, and the engine reverts the swap; :func:`check_hooks` refuses
bad options before anything happens (else a bad one would fail only after a download).
"""

from __future__ import annotations

import json
import os
import signal as signals
import subprocess
import urllib.request
from pathlib import Path

from mdl.errors import HookFailed, InvalidInput
from mdl.watch.options import WatchOptions


def check_hooks(sig: str | None, pidfile: Path | None, webhook: str | None) -> None:
    """The after-swap hooks, checked before anything happens (else a bad one fails only after a download,
    reverting the swap)."""
    if sig:
        if not pidfile:
            raise InvalidInput("--signal needs --pidfile")
        if not isinstance(getattr(signals, _full(sig), None), signals.Signals):
            raise InvalidInput(f"--signal {sig!r} is not a signal", hint="use a name such as HUP, USR1 or SIGUSR2")
    elif pidfile:
        raise InvalidInput("--pidfile needs --signal", hint="e.g. --signal HUP --pidfile /run/app.pid")
    if webhook is not None:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(webhook)
            _ = parts.port  # raises ValueError for a port that is not 0-65535
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. a port that is not a number, or out of range
            ok = False
        if not ok or any(ord(ch) <= 32 for ch in webhook):
            raise InvalidInput(
                f"--webhook {webhook!r} is not an http(s) URL", hint="e.g. --webhook http://127.0.0.1:8080/reload"
            )


def notify(opts: WatchOptions, name: str, version: str, path: Path, previous: str | None) -> None:
    """Run the hooks ``opts`` names for a swap of ``name`` to ``version`` (at ``path``), in order."""
    env = {"MDL_MODEL": name, "MDL_VERSION": version, "MDL_PATH": str(path), "MDL_PREVIOUS_VERSION": previous or ""}
    if opts.exec_cmd:
        _run(opts.exec_cmd, env, opts.hook_timeout)
    if opts.signal and opts.pidfile:
        _signal(opts.signal, opts.pidfile)
    if opts.webhook:
        body = {"model": name, "version": version, "path": env["MDL_PATH"], "previous_version": previous}
        _post(opts.webhook, body, opts.hook_timeout)


def _full(sig: str) -> str:
    return sig if sig.startswith("SIG") else "SIG" + sig


def _run(cmd: str, env: dict[str, str], timeout: float) -> None:
    try:
        r = subprocess.run(cmd, shell=True, env={**os.environ, **env}, timeout=timeout, capture_output=True)
    except subprocess.TimeoutExpired:
        raise HookFailed(f"hook {cmd!r} timed out after {timeout:g}s") from None
    if r.returncode != 0:
        tail = r.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise HookFailed(f"hook {cmd!r} exited {r.returncode}: {tail[0]}")


def _signal(sig: str, pidfile: Path) -> None:
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        os.kill(pid, getattr(signals, _full(sig)))
    except (OSError, ValueError, IndexError, AttributeError) as exc:
        raise HookFailed(f"cannot signal the process in {pidfile}: {exc}") from None


def _post(url: str, body: dict, timeout: float) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            if resp.status >= 300:
                raise HookFailed(f"webhook {url} answered {resp.status}")
    except OSError as exc:
        raise HookFailed(f"webhook {url} failed: {exc}") from None
