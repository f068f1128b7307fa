"""The replica's state as the registry hears it: one record per watcher, written off the swap path.

Reports (and the engine's pruning) run in order on one "chores" thread with a lower CPU priority than
the rest, so that on a host short of CPU (many replicas switching at once) they wait for the swaps.
A download reports "syncing" only once it has run ``syncing_after`` seconds: a quick one is not worth
a registry write. One watchdog thread per watcher (not a timer per download) sees to that.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from mdl.client import Client
from mdl.errors import MdlError
from mdl.fleet import ReplicaRecord
from mdl.host import hostname, now_iso
from mdl.registry.base import ReplicaHandle
from mdl.versiondir import VersionDir
from mdl.watch.options import WatchOptions

log = logging.getLogger("mdl.watch")
CHORES_NICE = 10  # how much less CPU the chores thread gets than the swap path, when CPU is short


class Reporter:
    """The state of one watcher's replica (``state``, ``error``) and its record in the registry.

    Internal to mdl.watch: the engine reports through :meth:`report`, queues work with :meth:`later`
    and brackets each download with :meth:`download_started` / :meth:`download_ended`.
    """

    def __init__(
        self,
        client: Client,
        name: str,
        replica_id: str,
        opts: WatchOptions,
        local: VersionDir,
        desired: Callable[[], str | None],
        stopped: threading.Event,
    ) -> None:
        self.client = client
        self.name = name
        self.replica_id = replica_id
        self.opts = opts
        self.local = local
        self.desired = desired  # the version the engine is after, for the record
        self.stopped = stopped  # the engine's: set when it stops
        self.state = "starting"
        self.error: str | None = None
        self._replica: ReplicaHandle | None = None
        self._lock = threading.RLock()  # state, error, whether a report is queued, the download watched
        self._queued = False
        self._sending = threading.Lock()  # one registry write at a time, each with the latest state
        self._downloading: str | None = None
        self._chores: queue.SimpleQueue | None = None
        self._chores_thread: threading.Thread | None = None
        self._syncing_timer = threading.Condition()  # guards _syncing_due; the watchdog waits on it
        self._syncing_due: tuple[str, float] | None = None  # (version downloading, when it reports syncing)
        self._watchdog: threading.Thread | None = None

    @property
    def registered(self) -> bool:
        """Whether the registry holds this replica's record (False until the first report, and while it is down)."""
        return self._replica is not None

    # -- chores -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the chores thread (without it, :meth:`later` runs each job at once: ``sync_once``)."""
        self._chores = queue.SimpleQueue()
        self._chores_thread = threading.Thread(target=self._run_chores, name="mdl-watch-chores", daemon=True)
        self._chores_thread.start()

    def _run_chores(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHORES_NICE)  # this thread (Linux)
        except (AttributeError, OSError):
            pass  # elsewhere: the same priority as the rest
        assert self._chores is not None
        while (job := self._chores.get()) is not None:
            if self.stopped.is_set():
                continue  # stopping: only the sentinel matters
            try:
                job()
            except Exception:
                log.exception("watcher chore failed")

    def later(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the chores thread, or now if there is none (``sync_once``)."""
        if self._chores is None:
            job()
        else:
            self._chores.put(job)

    def stop(self) -> None:
        """Wake the watchdog (it sees ``stopped``) and end the chores thread, waiting for it briefly."""
        with self._syncing_timer:
            self._syncing_timer.notify()
        if self._chores is not None and self._chores_thread is not None:
            self._chores.put(None)
            if self._chores_thread is not threading.current_thread():
                self._chores_thread.join(2.0)  # not longer: the replica goes with the session anyway

    def close(self) -> None:
        """Deregister (what a registry that cannot be reached forgets with the session anyway)."""
        if self._replica is not None:
            try:
                self._replica.close()
            except MdlError:
                pass

    # -- reports ----------------------------------------------------------------------------------

    def report(self, state: str, error: str | None = None) -> None:
        """Set the replica's state now; the registry hears it from the chores thread (the latest
        state, once, however many reports were made meanwhile)."""
        with self._lock:
            self.state, self.error = state, error
            if self._queued:
                return
            self._queued = True
        self.later(self._send)

    def report_now(self, state: str, error: str | None = None) -> None:
        """Set the replica's state and write it to the registry before returning (``draining``: a
        balancer following the registry must hear it before the replica stops answering)."""
        with self._lock:
            self.state, self.error = state, error
        self._send()

    def _send(self) -> None:
        with self._sending:
            self._send_latest()

    def _send_latest(self) -> None:
        with self._lock:
            self._queued = False
            state, error = self.state, self.error
        current = self.local.current
        m = self.local.manifest(current) if current else None  # parsed once per version (VersionDir)
        data = ReplicaRecord(
            id=self.replica_id,
            kind=self.opts.kind,
            host=hostname(),
            pid=os.getpid(),
            dir=str(self.local.root),
            alias=None if self.opts.version else self.opts.alias,
            desired=self.desired(),
            loaded=current,
            digest=m.digest if m else None,
            state=state,
            since=now_iso(),
            error=error,
            address=self.opts.address,
            extra=self.opts.extra,
        ).to_dict()
        try:
            if self._replica is None:
                self._replica = self.client.register_replica(self.name, self.replica_id, data)
            else:
                self._replica.update(**data)
        except MdlError as exc:  # the registry is down: keep serving, report when it is back
            log.warning("cannot report state %s: %s", state, exc.message)
            self._replica = None

    # -- the syncing watchdog ---------------------------------------------------------------------

    def download_started(self, version: str) -> None:
        """A download of ``version`` began: it reports "syncing" if it is still running ``syncing_after`` on."""
        self._downloading = version
        with self._syncing_timer:
            self._syncing_due = (version, time.monotonic() + self.opts.syncing_after)
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch_downloads, name="mdl-watch-syncing", daemon=True)
                self._watchdog.start()
            self._syncing_timer.notify()

    def download_ended(self) -> None:
        with self._syncing_timer:
            self._syncing_due = None  # the watchdog finds nothing due when it wakes
        with self._lock:
            self._downloading = None

    def _watch_downloads(self) -> None:
        """The watchdog's loop: report "syncing" once the download in ``_syncing_due`` is due."""
        with self._syncing_timer:
            while not self.stopped.is_set():
                job = self._syncing_due
                if job is None:
                    self._syncing_timer.wait()
                    continue
                delay = job[1] - time.monotonic()
                if delay > 0:
                    self._syncing_timer.wait(delay)
                    continue
                self._syncing_due = None
                self._syncing_timer.release()
                try:
                    self._report_syncing(job[0])
                finally:
                    self._syncing_timer.acquire()

    def _report_syncing(self, version: str) -> None:
        with self._lock:
            if self._downloading == version:  # not yet done: a later "ready" report overwrites this one
                self.report("syncing")
