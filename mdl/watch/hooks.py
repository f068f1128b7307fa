"""What runs after each swap: ``--exec``, ``--signal`` with ``--pidfile``, ``--webhook``.

A hook that fails raises HookFailed (``--exec``: :class:`ExecFailed`, with the end of its output), and
the engine reverts the swap; :func:`check_hooks` refuses bad options before anything happens (else a
bad one would fail only after a download). A hook that succeeds is quiet (its output: debug log).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal as signals
import subprocess
import urllib.request
from pathlib import Path

from mdl.errors import HookFailed, InvalidInput
from mdl.watch.options import WatchOptions

log = logging.getLogger("mdl.watch")
TAIL_LINES = 20  # of each stream of a failed --exec, in its failed event
TAIL_WIDTH = 500  # characters of one such line


class ExecFailed(HookFailed):
    """``--exec`` exited non-zero or timed out: the last lines of its stdout and stderr, control
    characters escaped (what a hook prints reaches a terminal only as text)."""

    def __init__(self, message: str, stdout: bytes | str | None, stderr: bytes | str | None) -> None:
        super().__init__(message)
        self.stdout = _tail(stdout)
        self.stderr = _tail(stderr)


def _tail(data: bytes | str | None) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data or ""
    lines = text.rstrip("\n").splitlines()[-TAIL_LINES:]
    escaped = (re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", lambda m: f"\\x{ord(m.group()):02x}", ln) for ln in lines)
    return "\n".join(ln if len(ln) <= TAIL_WIDTH else ln[: TAIL_WIDTH - 3] + "..." for ln in escaped)


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
        run_command(opts.exec_cmd, env, opts.hook_timeout)
    if opts.signal and opts.pidfile:
        _signal(opts.signal, opts.pidfile)
    if opts.webhook:
        body = {"model": name, "version": version, "path": env["MDL_PATH"], "previous_version": previous}
        _post(opts.webhook, body, opts.hook_timeout)


def _full(sig: str) -> str:
    return sig if sig.startswith("SIG") else "SIG" + sig


def run_command(cmd: str, env: dict[str, str], timeout: float, what: str = "hook") -> None:
    """Run ``cmd`` with the shell; ExecFailed (with the end of its output, ``what`` naming it) if it
    fails or times out."""
    try:
        r = subprocess.run(cmd, shell=True, env={**os.environ, **env}, timeout=timeout, capture_output=True)
    except subprocess.TimeoutExpired as exc:
        raise ExecFailed(f"{what} {cmd!r} timed out after {timeout:g}s", exc.stdout, exc.stderr) from None
    if r.returncode != 0:
        err = _tail(r.stderr)
        last = err.splitlines()[-1] if err else ""
        raise ExecFailed(f"{what} {cmd!r} exited {r.returncode}" + (f": {last}" if last else ""), r.stdout, r.stderr)
    if r.stdout or r.stderr:
        log.debug("%s %r: stdout %r, stderr %r", what, cmd, _tail(r.stdout), _tail(r.stderr))


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
