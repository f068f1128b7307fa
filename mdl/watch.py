"""The watch engine: keep a local directory in step with a model's pointer, with no downtime.

Level-triggered: every registry notification (and every retry timer, SIGHUP or reconnect) wakes one
worker thread that re-reads the desired version and reconciles: download (verified) -> swap the
``current`` link -> notify -> report. Anything that fails leaves ``current`` where it was (fail static),
and the attempt is retried with exponential backoff and jitter.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import secrets
import signal as signals
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mdl.blobcache import BlobCache
from mdl.client import Client
from mdl.errors import HookFailed, MdlError, NotFound
from mdl.host import hostname, now_iso
from mdl.localcache import LocalCache
from mdl.manifest import Manifest
from mdl.names import DEFAULT_ALIAS, validate_alias, validate_name, validate_version
from mdl.registry.base import Pointer, ReplicaHandle
from mdl.transfer import download_version, NoProgress

log = logging.getLogger("mdl.watch")
Emit = Callable[[dict[str, Any]], None]
CHORES_NICE = 10  # how much less CPU the chores thread gets than the swap path, when CPU is short


@dataclass
class WatchOptions:
    alias: str = DEFAULT_ALIAS
    version: str | None = None  # pin a version instead of following an alias
    keep: int = 3
    exec_cmd: str | None = None
    signal: str | None = None
    pidfile: Path | None = None
    webhook: str | None = None
    prefetch: bool = False
    prefetch_interval: float = 2.0
    poll: float = 0.0  # > 0: re-read the pointer every ``poll`` seconds instead of subscribing
    jitter: float = 0.0
    max_concurrent: int = 0  # downloads of this model at once across the fleet; 0 = no cap
    syncing_after: float = 1.0  # a download reports "syncing" only once it has run this long
    heartbeat: float = 5.0  # the loop wakes at least this often (liveness, retries)
    resync: float = 60.0  # with a live subscription, still re-read the pointer this often (a safety net)
    retry_base: float = 1.0
    retry_max: float = 60.0
    hook_timeout: float = 60.0
    address: str | None = None  # for servers: the URL replicas are reached at
    kind: str = "watcher"
    extra: dict[str, Any] = field(default_factory=dict)


class Watcher:
    """Follows one model's alias into ``root``; see the module docstring."""

    def __init__(self, client: Client, name: str, root: Path, opts: WatchOptions | None = None,
                 emit: Emit | None = None, on_swap: Callable[[str, Path, str | None], None] | None = None) -> None:
        self.client = client
        self.name = validate_name(name)
        self.opts = opts or WatchOptions()
        validate_alias(self.opts.alias)
        if self.opts.version:
            validate_version(self.opts.version)
        self.cache = LocalCache(root, self.name)
        self.shared = BlobCache.from_setting(client.config["cache.dir"])
        self.emit = emit or (lambda e: None)
        self.on_swap = on_swap
        self.replica_id = f"{hostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.state = "starting"
        self.desired: str | None = None
        self.error: str | None = None
        self.last_loop = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failed: dict[str, tuple[float, int]] = {}  # version -> (next attempt, attempts)
        self._replica: ReplicaHandle | None = None
        self._watch = None
        self._delivered: Pointer | None = None
        self._fresh_until = 0.0  # until then the subscription's last delivery stands for the pointer
        self._verified_current = False
        self._verified: set[tuple[str, str]] = set()  # (version, digest) this process checked
        self._lock = threading.RLock()  # one reconcile, or one prune, at a time
        self._fetch_lock = threading.Lock()
        self._report_lock = threading.RLock()
        self._report_queued = False
        self._chores: queue.SimpleQueue | None = None
        self._chores_thread: threading.Thread | None = None
        self._downloading: str | None = None
        self._slow = threading.Condition()  # the syncing watchdog's: (version, due) of the download
        self._slow_job: tuple[str, float] | None = None
        self._watchdog: threading.Thread | None = None

    # -- events and reporting ---------------------------------------------------------------------

    def _event(self, event: str, **data: Any) -> None:
        doc = {"event": event, "at": now_iso(), "model": self.name, **data}
        try:
            self.emit(doc)
        except Exception:  # a broken stdout never stops the loop
            log.exception("emitting %s failed", event)

    def _report_syncing(self, version: str) -> None:
        with self._report_lock:
            if self._downloading == version:  # not yet done: a later "ready" report overwrites this one
                self._report("syncing")

    def _syncing_watchdog(self) -> None:
        """One thread for the watcher's life (not a timer thread per download): reports "syncing"
        once a download has run ``syncing_after`` seconds."""
        with self._slow:
            while not self._stop.is_set():
                job = self._slow_job
                delay = None if job is None else job[1] - time.monotonic()
                if delay is None or delay > 0:
                    self._slow.wait(delay)
                    continue
                self._slow_job = None
                self._slow.release()
                try:
                    self._report_syncing(job[0])
                finally:
                    self._slow.acquire()

    def _slow_after(self, version: str | None) -> None:
        """Watch the download of ``version`` (None: it ended)."""
        with self._slow:
            if version is None:
                self._slow_job = None  # the watchdog finds nothing due when it wakes
                return
            self._slow_job = (version, time.monotonic() + self.opts.syncing_after)
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._syncing_watchdog, name="mdl-watch-syncing",
                                                  daemon=True)
                self._watchdog.start()
            self._slow.notify()

    # -- chores: what follows a swap (reporting, pruning) ----------------------------------------

    def _start_chores(self) -> None:
        """Reports and pruning run in order on one thread with a lower CPU priority than the rest, so
        that on a host short of CPU (many replicas switching at once) they wait for the swaps."""
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
            if self._stop.is_set():
                continue  # stopping: only the sentinel matters
            try:
                job()
            except Exception:
                log.exception("watcher chore failed")

    def _later(self, job: Callable[[], None]) -> None:
        """Run ``job`` on the chores thread, or now if there is none (``sync_once``)."""
        if self._chores is None:
            job()
        else:
            self._chores.put(job)

    def _report(self, state: str, error: str | None = None) -> None:
        """Set the replica's state now; the registry hears it from the chores thread (the latest
        state, once, however many reports were made meanwhile)."""
        with self._report_lock:
            self.state, self.error = state, error
            if self._report_queued:
                return
            self._report_queued = True
        self._later(self._send_report)

    def _send_report(self) -> None:
        with self._report_lock:
            self._report_queued = False
            state, error = self.state, self.error
        current = self.cache.current
        m = self.cache.manifest(current) if current else None  # parsed once per version (LocalCache)
        data = {"kind": self.opts.kind, "host": hostname(), "pid": os.getpid(), "dir": str(self.cache.root),
                "alias": None if self.opts.version else self.opts.alias, "desired": self.desired, "loaded": current,
                "digest": m.digest if m else None, "state": state, "since": now_iso(), "error": error,
                "address": self.opts.address, **self.opts.extra}
        try:
            if self._replica is None:
                self._replica = self.client.registry.register_replica(self.name, self.replica_id, data)
            else:
                self._replica.update(**data)
        except MdlError as exc:  # the registry is down: keep serving, report when it is back
            log.warning("cannot report state %s: %s", state, exc.message)
            self._replica = None

    @property
    def ready(self) -> bool:
        return self.cache.current is not None and self._verified_current

    # -- lifecycle ------------------------------------------------------------------------------

    def _prune(self) -> None:
        with self._lock:  # never while a reconcile is choosing or swapping to a version
            removed = self.cache.prune(self.opts.keep, self._release)
        if removed:
            self._event("pruned", versions=removed)

    def _sweep_shared(self) -> None:
        if self.shared is not None:  # files of directories deleted wholesale, downloads that died
            removed = self.shared.sweep()
            if removed:
                log.info("removed %d unused file(s) from %s", len(removed), self.shared.root)

    def start(self) -> None:
        """Cold start from disk if possible, then follow the registry in a background thread."""
        self.cache.clean_partials()
        self._sweep_shared()
        current = self.cache.current
        if current and self._resume(current):
            self._event("resumed", version=current)
            if self.on_swap:
                self.on_swap(current, self.cache.path(current), None)
        self._start_chores()
        self._report("syncing")
        self._subscribe()
        threading.Thread(target=self._loop, name=f"mdl-watch-{self.name}", daemon=True).start()
        if self.opts.prefetch:
            threading.Thread(target=self._prefetch_loop, name="mdl-prefetch", daemon=True).start()

    def _subscribe(self) -> None:
        if self.opts.version or self.opts.poll > 0:
            self._wake.set()
            return
        try:
            self._watch = self.client.registry.watch(self.name, self._on_pointer)
        except MdlError as exc:
            self._event("registry-unavailable", error=exc.message)
            self._wake.set()  # the loop retries the subscription

    def _on_pointer(self, pointer: Pointer) -> None:
        # A whole pointer read just now, not a delta: the worker reconciles against it without
        # reading it again (a retry or heartbeat without a new delivery re-reads).
        self._delivered = pointer
        self._wake.set()

    def resync(self) -> None:
        """SIGHUP: forget failures, re-read the pointer and reconcile now."""
        self._failed.clear()
        self._fresh_until = 0.0
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._slow:
            self._slow.notify()
        if self._watch is not None:
            self._watch.stop()
        if self._chores is not None and self._chores_thread is not None:
            self._chores.put(None)
            if self._chores_thread is not threading.current_thread():
                self._chores_thread.join(2.0)  # not longer: the replica goes with the session anyway
        self.cache.clean_partials()
        if self._replica is not None:
            try:
                self._replica.close()
            except MdlError:
                pass

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def sync_once(self) -> bool:
        """One reconcile (``--once``): True if a verified version is current afterwards."""
        self.cache.clean_partials()
        self._sweep_shared()
        current = self.cache.current
        if current:
            self._resume(current)
        self._reconcile()
        return self.ready

    # -- the loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._next_retry_delay())
            self._wake.clear()
            self.last_loop = time.monotonic()
            if self._stop.is_set():
                break
            if self._watch is None and not self.opts.version and not self.opts.poll:
                self._subscribe()
            try:
                self._reconcile()
            except Exception as exc:  # never let the loop die
                log.exception("reconcile failed")
                self._report("failed", f"unexpected: {exc}")

    def _next_retry_delay(self) -> float:
        delay = self.opts.poll or self.opts.heartbeat
        if self._failed:
            delay = min(delay, max(0.05, min(t for t, _ in self._failed.values()) - time.monotonic()))
        return delay

    def _desired(self) -> str | None:
        if self.opts.version:
            return self.opts.version
        pointer, self._delivered = self._delivered, None
        if pointer is None:
            if self._watch is not None and self._watch.live and time.monotonic() < self._fresh_until:
                return self.desired  # a heartbeat or a retry: every change would have been delivered
            pointer = self.client.registry.get(self.name)
        self._fresh_until = time.monotonic() + self.opts.resync
        return pointer.aliases.get(self.opts.alias)

    def _reconcile(self) -> None:
        with self._lock:
            try:
                desired = self._desired()
            except MdlError as exc:
                self._event("registry-unavailable", error=exc.message, serving=self.cache.current)
                self._retry_later("__registry__", exc.message)
                return
            self._failed.pop("__registry__", None)
            self.desired = desired
            current = self.cache.current
            if desired is None:
                self._report("ready" if self.ready else "waiting",
                             None if self.ready else f"alias {self.opts.alias!r} is not set")
                return
            if desired == current and self._verified_current:
                if self.state != "ready" or self._replica is None:
                    self._report("ready")
                return
            next_try = self._failed.get(desired)
            if next_try and next_try[0] > time.monotonic():
                return
            try:
                manifest = self._fetch(desired)
                self._swap(desired, manifest)
            except MdlError as exc:
                self._retry_later(desired, exc.message)
                self._event("failed", version=desired, error=exc.message, serving=self.cache.current)
                self._report("failed", f"{desired}: {exc.message}")
                return
            self._failed.pop(desired, None)
            self._report("ready")
            self._later(self._prune)

    def _release(self, manifest: Manifest) -> None:
        if self.shared is not None:  # stored files no replica on this host links to any more
            self.shared.release(manifest.files)

    def _retry_later(self, key: str, error: str) -> None:
        _, attempts = self._failed.get(key, (0.0, 0))
        delay = min(self.opts.retry_max, self.opts.retry_base * 2 ** min(attempts, 30))
        delay = random.uniform(delay / 2, delay)  # jitter: a fleet does not retry in lockstep
        self._failed[key] = (time.monotonic() + delay, attempts + 1)

    def _resume(self, version: str) -> bool:
        """Keep the local copy ``current`` points at if it passes its own manifest and that manifest is
        the one the registry or storage gives for the version, whenever either answers (a copy
        rewritten on disk together with its manifest passes its own check). With neither reachable
        it stands: fail static. Otherwise ``current`` is dropped and the version synced afresh."""
        m = self.cache.manifest(version)
        reason = "local copy failed verification"
        if m is not None and self._is_verified(version, m):
            try:
                known = self.client.manifest(self.name, version, from_registry=True).digest
            except MdlError:  # unreachable, or no (valid) manifest there: what was verified stands
                known = m.digest
            if known == m.digest:
                self._verified_current = True
                return True
            reason = f"local copy has digest {m.digest}, but the registry and storage say {known}"
            self._verified.discard((version, m.digest))
        self._event("discarded", version=version, reason=reason)
        self.cache.revert(None)
        self._verified_current = False
        return False

    def _is_verified(self, version: str, manifest: Manifest) -> bool:
        key = (version, manifest.digest)
        if key in self._verified and self.cache.path(version).is_dir():
            return True  # checked by this process already: a swap need not hash it again
        if self.cache.has_verified(version, manifest):
            self._verified.add(key)
            return True
        return False

    def _fetch(self, version: str, prefetch: bool = False) -> Manifest:
        """A verified local copy of ``version`` (downloaded unless already present)."""
        local = self.cache.manifest(version)
        if local is not None and (version, local.digest) in self._verified and self.cache.path(version).is_dir():
            return local  # versions are immutable: a copy this process verified needs no storage round trip
        manifest = self.client.manifest(self.name, version, from_registry=True)
        with self._fetch_lock:  # prefetch and reconcile never download one version twice at once
            if self._is_verified(version, manifest):
                return manifest
            if self.opts.jitter > 0:
                time.sleep(random.uniform(0, self.opts.jitter))
            self._event("downloading", version=version, bytes=manifest.bytes)
            started = time.monotonic()
            if not prefetch:  # a quick download is not worth a registry write; a slow one is
                self._downloading = version
                self._slow_after(version)
            try:
                with self.client.registry.download_slot(self.name, self.opts.max_concurrent):
                    download_version(self.client.storage, manifest, self.cache.path(version),
                                     self.client.config["transfer.jobs"], NoProgress(), force=True,
                                     cache=self.shared)
            finally:
                if not prefetch:
                    self._slow_after(None)
                    with self._report_lock:
                        self._downloading = None
            self._verified.add((version, manifest.digest))
            self._event("downloaded", version=version, seconds=round(time.monotonic() - started, 3))
        return manifest

    def _swap(self, version: str, manifest: Manifest) -> None:
        before = self.cache.swap(version)
        self._verified_current = True
        try:
            if self.on_swap:
                self.on_swap(version, self.cache.path(version), before)
            self._notify(version, before)
        except Exception as exc:
            self.cache.revert(before)  # a failing hook never leaves current on a bad version
            self._verified_current = before is not None
            if self.on_swap and before:
                self.on_swap(before, self.cache.path(before), version)
            raise exc if isinstance(exc, MdlError) else HookFailed(str(exc)) from None
        self._event("swapped", version=version, previous=before, digest=manifest.digest)

    def _notify(self, version: str, previous: str | None) -> None:
        env = {"MDL_MODEL": self.name, "MDL_VERSION": version, "MDL_PATH": str(self.cache.path(version)),
               "MDL_PREVIOUS_VERSION": previous or ""}
        o = self.opts
        if o.exec_cmd:
            try:
                r = subprocess.run(o.exec_cmd, shell=True, env={**os.environ, **env}, timeout=o.hook_timeout,
                                   capture_output=True)
            except subprocess.TimeoutExpired:
                raise HookFailed(f"hook {o.exec_cmd!r} timed out after {o.hook_timeout:g}s") from None
            if r.returncode != 0:
                tail = r.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
                raise HookFailed(f"hook {o.exec_cmd!r} exited {r.returncode}: {tail[0]}")
        if o.signal and o.pidfile:
            try:
                pid = int(Path(o.pidfile).read_text().split()[0])
                os.kill(pid, getattr(signals, o.signal if o.signal.startswith("SIG") else "SIG" + o.signal))
            except (OSError, ValueError, IndexError, AttributeError) as exc:
                raise HookFailed(f"cannot signal the process in {o.pidfile}: {exc}") from None
        if o.webhook:
            body = json.dumps({"model": self.name, "version": version, "path": env["MDL_PATH"],
                               "previous_version": previous}).encode()
            req = urllib.request.Request(o.webhook, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=o.hook_timeout) as resp:
                    if resp.status >= 300:
                        raise HookFailed(f"webhook {o.webhook} answered {resp.status}")
            except OSError as exc:
                raise HookFailed(f"webhook {o.webhook} failed: {exc}") from None

    # -- prefetch ---------------------------------------------------------------------------------

    def _prefetch_loop(self) -> None:
        older: set[str] = set()  # versions seen older than what is here: never fetched (or read) again
        while not self._stop.wait(self.opts.prefetch_interval):
            try:
                versions = self.client.storage.list_versions(self.name)
                local = self.cache.local_versions()
                fresh = [v for v in versions if v not in local and v not in older]
                if not fresh:
                    continue
                # Only a version pushed after everything here: not one that retention removed.
                here = [m.created for v in local if (m := self.cache.manifest(v)) is not None]
                newest_here = max(here, default="")
                found = self.client._manifests(self.name, fresh)
                older.update(m.version for m in found if m.created <= newest_here)
                newer = [m for m in found if m.created > newest_here]
                if not newer:
                    continue
                newest = max(newer, key=lambda m: (m.created, m.version))
                self._fetch(newest.version, prefetch=True)
                self._event("prefetched", version=newest.version)
            except NotFound:
                continue
            except MdlError as exc:
                self._event("prefetch-failed", error=exc.message)
