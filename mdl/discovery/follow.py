"""Keep a file (a balancer's backend, a Prometheus file_sd) in step with a model's live replicas.

``mdl endpoints NAME --watch --out FILE --exec CMD`` runs a :class:`Follower`. It follows the registry's
replica watch (ZooKeeper watches; SQLite's change counter), renders every change, and rewrites FILE
(write + rename) only when the text changes, then runs the reload command.

- **Bursts coalesce.** After a change it waits for ``settle`` seconds of quiet (never more than
  ``max_wait`` after the first change), and writes at most once per ``min_interval``: a fleet of 50
  restarting gives one or two reloads.
- **Fail static.** While the registry cannot be read nothing is written: the last good file stays.
  After an outage of a remote registry the replicas' own sessions may have expired; they register
  again within seconds, so for ``recovery`` seconds a render that would drop servers is held (one
  that only adds is written): an outage never empties a backend.
- **A reload that fails** is retried with backoff until it succeeds or the next write replaces it;
  ``check_cmd`` (e.g. ``haproxy -c -f $MDL_ENDPOINTS_FILE``) vets a new file before it replaces the
  old one.

Timings (defaults): a replica that deregisters is out of the file within ``settle`` + the registry's
notification (ZooKeeper: milliseconds; SQLite: 50 ms), or ``min_interval`` after the previous write,
whichever is later — well inside ``mdl serve``'s ``drain_delay`` (2 s).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mdl.errors import HookFailed, MdlError
from mdl.fleet import ReplicaRecord
from mdl.host import now_iso
from mdl.registry.base import Replica, Watch
from mdl.retry import Backoff

log = logging.getLogger("mdl.discovery")

FILE_ENV = "MDL_ENDPOINTS_FILE"  # the file a --check or --exec command is about
_RELOAD_BACKOFF = Backoff(1.0, 30.0)  # between tries of a reload command that failed
_LIVE_EVERY = 0.25  # seconds between looks at whether the registry answers
_CONNECT_GRACE = 3.0  # seconds a watch may take to first answer before it is said to be unavailable


class Rendered(NamedTuple):
    """A rendering: the file's ``text`` and the addresses of the ``servers`` it lists."""

    text: str
    servers: frozenset[str]


Render = Callable[[list[ReplicaRecord]], Rendered]
Emit = Callable[[dict[str, Any]], None]


@dataclass
class FollowOptions:
    out: Path | None  # None: the rendering is only kept in memory (``--listen``'s /sd)
    exec_cmd: str | None = None  # after each write: reload the balancer
    check_cmd: str | None = None  # before each write, on the new file: refuse it if this fails
    settle: float = 0.1  # quiet seconds after a change before rendering
    max_wait: float = 1.0  # ... but never longer than this after the first change
    min_interval: float = 1.0  # seconds between two writes
    recovery: float = 10.0  # after a registry outage, removals wait this long
    command_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.out is None and (self.exec_cmd or self.check_cmd):
            from mdl.errors import InvalidInput

            raise InvalidInput("a reload or check command needs a file to act on (out)")


def renderer(
    name: str,
    fmt: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    template: str | None = None,
    source: str = "template",
) -> Render:
    """What ``mdl endpoints NAME -o FMT`` prints, as a function of the replicas' records: ``haproxy``,
    ``nginx`` (the servers a balancer may send requests to now), ``prometheus`` (every live server: a
    failing one is worth scraping), ``json`` (``mdl endpoints -o json``), or ``template`` (Jinja2 text
    ``template`` over the routable servers; ``source`` names it in errors)."""
    from mdl.discovery import render as formats
    from mdl.discovery.targets import monitored, routable

    def render(records: list[ReplicaRecord]) -> Rendered:
        if fmt == "json":
            import json

            from mdl.fleet import serving

            found = serving(records, alias, version)
            text = json.dumps({"name": name, "endpoints": [e.to_dict() for e in found]}, indent=2, sort_keys=True)
            return Rendered(text + "\n", frozenset(e.url for e in found))
        targets = (monitored if fmt == "prometheus" else routable)(records, alias=alias, version=version)
        if fmt == "template":
            assert template is not None
            text = formats.render_template(template, name, targets, source=source)
        else:
            text = formats.render(fmt, name, targets)
        return Rendered(text, frozenset(t.address for t in targets))

    return render


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a new file beside it (O_EXCL, never through a link), flushed to
    disk, renamed over the old one. Readers see the old file or the new one, never a part. The mode
    of the file it replaces is kept (0644 for a new one)."""
    from mdl.safefs import create_new

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o644
    try:
        with create_new(tmp) as f:
            f.write(text.encode())
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_current(path: Path, limit: int = 64 * 1024 * 1024) -> str | None:
    """The text ``path`` holds now (None: none, or not a readable regular file of at most ``limit`` bytes)."""
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


class Follower:
    """Renders ``name``'s live replicas into ``opts.out`` on every change (see the module docstring).

    from mdl.discovery.follow import Follower, FollowOptions
    Follower(client, "lr", render, FollowOptions(Path("/etc/haproxy/conf.d/lr.cfg"), "systemctl reload haproxy")).run()
    """

    def __init__(self, client: Any, name: str, render: Render, opts: FollowOptions, emit: Emit | None = None) -> None:
        self.client, self.name, self.render, self.opts = client, name, render, opts
        self.emit = emit or (lambda e: None)
        self.writes = 0  # files written (what a test or a caller counts)
        self.reloads = 0  # reload commands that succeeded
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # _replicas, _dirty, _first_change, _last_change
        self._replicas: list[Replica] = []  # the latest delivery
        self._dirty = False  # whether it came after the last render
        self._first_change = 0.0
        self._last_change = 0.0
        self._text = read_current(opts.out) if opts.out else None  # what the file holds (replaced on a change)
        self._servers: frozenset[str] | None = None  # what the file lists, once this process wrote it
        self._last_write = float("-inf")
        self._live: bool | None = None  # whether the registry answered at the last look (None: not yet)
        self._started = time.monotonic()
        self._recovery_until = 0.0
        self._held: frozenset[str] | None = None  # the servers a render held back would drop
        self._reload_due: float | None = None  # a failed reload's next try
        self._reload_failures = 0
        self.problem: MdlError | None = None  # why the last write or reload failed (None: both worked)

    # -- what it tells ----------------------------------------------------------------------------

    def _event(self, event: str, **data: Any) -> None:
        try:
            self.emit({"event": event, "at": now_iso(), "model": self.name, **data})
        except Exception:
            log.exception("emitting %s failed", event)

    # -- running --------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def servers(self) -> frozenset[str] | None:
        """The addresses the file lists, as this process last rendered them (None: not yet rendered)."""
        return self._servers

    @property
    def text(self) -> str | None:
        """The latest rendering (None until the registry first answered, or the file's text at start)."""
        return self._text

    # -- health and /sd (``--listen``) --------------------------------------------------------------

    def live(self) -> bool:
        return not self._stop.is_set()

    def readiness(self) -> dict[str, Any]:
        return {"ready": self._text is not None, "registry": bool(self._live), "servers": len(self._servers or ())}

    def documents(self) -> dict[str, Any]:
        """``/sd``: the latest rendering (Prometheus HTTP service discovery, with ``-o prometheus``);
        503 until there is one. During a registry outage it stays what it was (fail static)."""

        def sd() -> tuple[int, str, bytes]:
            text = self._text
            if text is None:
                return 503, "application/json", b'{"error": "no rendering yet: the registry has not answered"}\n'
            return 200, "application/json", text.encode()

        return {"/sd": sd}

    def resync(self) -> None:
        """SIGHUP: render the latest list again now (a changed template file is not re-read)."""
        with self._lock:
            self._dirty, self._first_change, self._last_change = True, 0.0, 0.0
        self._wake.set()

    def once(self) -> bool:
        """Render the replicas as they are now into the file (``--out`` without ``--watch``); True if
        it changed (and was written, and the reload command ran)."""
        before = self.writes
        self._apply(self.client.replicas(self.name))
        if self.problem is not None:
            raise self.problem
        return self.writes > before

    def run(self) -> None:
        """Follow until :meth:`stop` (SIGTERM through :func:`mdl.watch.run`)."""
        self._event("following", path=self._path, command=self.opts.exec_cmd)
        watch = self.client.watch_replicas(self.name, self._on_replicas)
        try:
            while not self._stop.is_set():
                self._wake.wait(self._next_wait())
                self._wake.clear()
                if self._stop.is_set():
                    break
                self._look_at_registry(watch)
                try:
                    self._step()
                except Exception as exc:  # never let the loop die: the file stays as it is
                    log.exception("rendering the endpoints of %s failed", self.name)
                    self._event("failed", error=getattr(exc, "message", str(exc)))
                    self._stop.wait(1.0)
        finally:
            watch.stop()

    def _on_replicas(self, replicas: list[Replica]) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._dirty:
                self._first_change = now
            self._replicas, self._dirty, self._last_change = replicas, True, now
        self._wake.set()

    def _next_wait(self) -> float:
        now = time.monotonic()
        waits = [_LIVE_EVERY]
        with self._lock:
            if self._dirty:
                waits.append(self._due() - now)
        if self._held is not None:
            waits.append(max(self._recovery_until, self._last_write + self.opts.min_interval) - now)
        if self._reload_due is not None:
            waits.append(self._reload_due - now)
        return max(0.01, min(waits))

    def _due(self) -> float:
        """When the pending delivery may be rendered (under ``_lock``)."""
        quiet = min(self._last_change + self.opts.settle, self._first_change + self.opts.max_wait)
        return max(quiet, self._last_write + self.opts.min_interval)

    def _look_at_registry(self, watch: Watch) -> None:
        """Say when the registry stops and starts answering; after an outage, arm the recovery window.
        Before the watch first answered, it is only connecting: said after ``_CONNECT_GRACE`` seconds."""
        live = watch.live
        if live == self._live:
            return
        if self._live is None and not live and time.monotonic() - self._started < _CONNECT_GRACE:
            return
        previous, self._live = self._live, live
        if not live:
            self._event("registry-unavailable", hint=f"{self._path or 'the rendering'} keeps its last good content")
        elif previous is False:
            self._recovery_until = time.monotonic() + self.opts.recovery
            self._event("registry-back", recovery=self.opts.recovery)

    def _step(self) -> None:
        now = time.monotonic()
        if self._reload_due is not None and now >= self._reload_due:
            self._reload()
        with self._lock:
            fresh = self._dirty and now >= self._due()
            held_over = (
                self._held is not None
                and now >= self._recovery_until
                and now >= self._last_write + self.opts.min_interval
            )
            if not (fresh or held_over):
                return
            self._dirty = False
            replicas = self._replicas
        self._apply(replicas)

    def _apply(self, replicas: list[Replica]) -> None:
        records = [r for r in (ReplicaRecord.from_replica(x) for x in replicas) if r is not None]
        rendered = self.render(records)
        if rendered.text == self._text:
            self._held, self._servers = None, rendered.servers
            return
        dropped = self._servers - rendered.servers if self._servers is not None else frozenset()
        if dropped and time.monotonic() < self._recovery_until:
            if self._held != dropped:
                self._event("held", dropped=sorted(dropped), until_seconds=self.opts.recovery)
            self._held = dropped
            return
        self._held = None
        if not self._write(rendered):
            return
        self._text, self._servers = rendered.text, rendered.servers
        self._last_write = time.monotonic()
        self.writes += 1
        self._event("written" if self.opts.out else "rendered", path=self._path, servers=len(rendered.servers))
        if self.opts.exec_cmd:
            self._reload_failures = 0
            self._reload()

    @property
    def _path(self) -> str | None:
        return str(self.opts.out) if self.opts.out else None

    def _write(self, rendered: Rendered) -> bool:
        """Check (``check_cmd``) and install the new file; False (the old file stays) if either fails."""
        out = self.opts.out
        if out is None:
            return True
        if self.opts.check_cmd:
            candidate = out.with_name(f".{out.name}.{os.getpid()}.check")
            try:
                write_atomic(candidate, rendered.text)
                self._command(self.opts.check_cmd, candidate, "check command")
            except (HookFailed, OSError) as exc:
                self._failed(
                    "check-failed", exc, f"the new {out.name} was not installed: fix the template or the check"
                )
                return False
            finally:
                candidate.unlink(missing_ok=True)
        try:
            write_atomic(out, rendered.text)
        except (OSError, MdlError) as exc:
            self._failed("write-failed", exc, f"check that {out.parent} exists and is writable")
            return False
        self.problem = None
        return True

    def _failed(self, event: str, exc: Exception, hint: str) -> None:
        message = getattr(exc, "message", None) or str(exc)
        self.problem = MdlError(f"{self.opts.out}: {message}", hint=hint)
        self._event(event, error=message, path=self._path, hint=hint)

    def _reload(self) -> None:
        cmd, out = self.opts.exec_cmd, self.opts.out
        assert cmd is not None and out is not None
        started = time.monotonic()
        try:
            self._command(cmd, out, "reload command")
        except HookFailed as exc:
            self._reload_failures += 1
            pause = _RELOAD_BACKOFF.delay(self._reload_failures)
            self._reload_due = time.monotonic() + pause
            exc.hint = exc.hint or f"{self.opts.out} is written; fix the command (--watch retries it by itself)"
            self.problem = exc
            self._event("reload-failed", error=exc.message, retry_in=round(pause, 1))
            return
        self._reload_due = None
        self.problem = None
        self.reloads += 1
        self._event("reloaded", command=cmd, seconds=round(time.monotonic() - started, 3))

    def _command(self, cmd: str, path: Path, what: str) -> None:
        from mdl.watch.hooks import run_command

        run_command(cmd, {FILE_ENV: str(path), "MDL_MODEL": self.name}, self.opts.command_timeout, what)
