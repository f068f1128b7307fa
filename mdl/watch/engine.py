"""The watch engine: keep a local directory in step with a model's pointer, with no downtime.

Level-triggered: every registry notification (and every retry timer, SIGHUP or reconnect) wakes one
worker thread that re-reads the desired version and reconciles: download (verified) -> swap the
``current`` link -> notify -> report. Anything that fails leaves ``current`` where it was (fail static).
A transient failure (the registry or storage unreachable, a hook) is retried with exponential backoff
and jitter; a permanent one (the version's bytes are bad, or it cannot be loaded here: see
:mod:`mdl.watch.problems`) is reported once and waits for the pointer to move (or SIGHUP). Every state
the replica can be stuck in is said once, as a ``waiting`` or ``failed`` event with a hint.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mdl.blobcache import BlobCache
from mdl.client import Client
from mdl.errors import HookFailed, IntegrityError, MdlError, NotFound
from mdl.host import hostname, now_iso
from mdl.manifest import Manifest
from mdl.names import validate_alias, validate_name, validate_version
from mdl.registry.base import Pointer, Watch
from mdl.retry import Backoff, spread
from mdl.rollout.state import JOIN_WAIT, awaits_placement, desired_version
from mdl.versiondir import VersionDir
from mdl.watch.hooks import ExecFailed, notify
from mdl.watch.options import Emit, WatchOptions
from mdl.watch.prefetch import Prefetcher
from mdl.watch.problems import RETRYING, UNREACHABLE, alias_unset, is_permanent, model_missing, version_missing
from mdl.watch.reporter import Reporter

log = logging.getLogger("mdl.watch")
LIVE_WITHIN = 30.0  # /livez fails once the loop has not turned for this long (it wakes every heartbeat)
REGISTRY = "__registry__"  # the key of the registry's own failures among the failed versions
MODEL = "__model__"  # the key of the next check whether a model that does not exist has been pushed


class Watcher:
    """Follows one model's alias into ``root``; see the module docstring."""

    def __init__(
        self,
        client: Client,
        name: str,
        root: Path,
        opts: WatchOptions | None = None,
        emit: Emit | None = None,
        on_swap: Callable[[str, Path, str | None], None] | None = None,
    ) -> None:
        self.client = client
        self.name = validate_name(name)
        self.opts = opts or WatchOptions()
        validate_alias(self.opts.alias)
        if self.opts.version:
            validate_version(self.opts.version)
        if client.signature_required(self.opts.require_signature):
            from mdl.trust import anchors

            anchors(client.config)  # no trusted key or CA: a configuration error now, not a refusal per version
        self.dir = VersionDir(root, self.name)
        self.shared = BlobCache.from_setting(client.config["cache.dir"])
        self.emit = emit or (lambda e: None)
        self.on_swap = on_swap
        self.replica_id = f"{hostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.desired: str | None = None
        self.last_loop = time.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.reporter = Reporter(
            client, self.name, self.replica_id, self.opts, self.dir, lambda: self.desired, self._stop
        )
        self._failed: dict[str, tuple[float, int]] = {}  # version -> (next attempt, attempts)
        self.problem: MdlError | None = None  # why it is not (yet) on the desired version; None: it is
        self._given_up: str | None = None  # a version that failed for good: not retried until the pointer moves
        self._has_aliases = False  # whether the last pointer read named any alias (then the model exists)
        self._watch: Watch | None = None
        self._delivered: Pointer | None = None
        self._rollout: dict[str, Any] | None = None  # the model's rollout document, as last read good
        self._placed = False  # whether it already waited for a rollout's driver to place it (once, cold)
        self._fresh_until = 0.0  # until then the subscription's last delivery stands for the pointer
        self._verified_current = False
        self._verified: set[tuple[str, str]] = set()  # (version, digest) this process checked
        self._signed: set[tuple[str, str]] = set()  # (version, digest) whose signatures passed the policy
        self._lock = threading.RLock()  # one reconcile, or one prune, at a time
        self._fetch_lock = threading.Lock()

    # -- what it tells ----------------------------------------------------------------------------

    def _event(self, event: str, **data: Any) -> None:
        doc = {"event": event, "at": now_iso(), "model": self.name, **data}
        try:
            self.emit(doc)
        except Exception:  # a broken stdout never stops the loop
            log.exception("emitting %s failed", event)

    @property
    def state(self) -> str:
        return self.reporter.state

    @property
    def error(self) -> str | None:
        return self.reporter.error

    @property
    def ready(self) -> bool:
        return self.dir.current is not None and self._verified_current

    @property
    def registered(self) -> bool:
        """Whether the registry holds this replica's record (see :meth:`Reporter.registered`)."""
        return self.reporter.registered

    def live(self) -> bool:
        """For /livez: the loop turned lately."""
        return time.monotonic() - self.last_loop < LIVE_WITHIN

    @property
    def hint(self) -> str | None:
        """The next command to run about :attr:`problem`, if any."""
        return self.problem.hint if self.problem is not None else None

    def readiness(self) -> dict[str, Any]:
        """For /readyz."""
        return {
            "ready": self.ready,
            "version": self.dir.current,
            "state": self.state,
            "error": self.error,
            "hint": self.hint,
        }

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Cold start from disk if possible, then follow the registry in a background thread."""
        self.dir.clean_partials()
        self._sweep_shared()
        self.reporter.start()  # before a resumed copy can be refused (a "failed" report)
        current = self.dir.current
        try:
            if current and self._resume(current):
                self._event("resumed", version=current)
                if self.on_swap:
                    self.on_swap(current, self.dir.path(current), None)
        except BaseException:
            self.reporter.stop()  # the caller discards this watcher
            raise
        if self.problem is None:
            self.reporter.report("syncing")
        self._subscribe()
        threading.Thread(target=self._loop, name=f"mdl-watch-{self.name}", daemon=True).start()
        if self.opts.prefetch:
            Prefetcher(
                self.client,
                self.name,
                self.opts,
                self.dir,
                lambda v: self._fetch(v, prefetch=True),
                self._event,
                self._stop,
            ).start()

    def run(self) -> None:
        """Start, and block until :meth:`stop` (what :func:`mdl.watch.run` runs for ``mdl watch``)."""
        self.start()
        while not self.wait(0.5):
            pass

    def resync(self) -> None:
        """SIGHUP: forget failures (permanent ones too), re-read the pointer and reconcile now."""
        self._failed.clear()
        self._given_up = None
        self._fresh_until = 0.0
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._watch is not None:
            self._watch.stop()
        self.reporter.stop()
        self.dir.clean_partials()
        self.reporter.close()

    def drain(self) -> None:
        """Report ``draining`` now: the replica is about to stop answering (``--swap resource`` unloads
        its model), so balancers rendered from the registry (``mdl endpoints --watch``) drop it first.
        The next state it reports (ready, failed) puts it back."""
        self.reporter.report_now("draining")

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def sync_once(self) -> bool:
        """One reconcile (``--once``): True if a verified version is current afterwards."""
        self.dir.clean_partials()
        self._sweep_shared()
        current = self.dir.current
        if current:
            self._resume(current)
        self._reconcile()
        return self.ready

    def _subscribe(self) -> None:
        if self.opts.version or self.opts.poll > 0:
            self._wake.set()
            return
        try:
            self._watch = self.client.watch_pointer(self.name, self._on_pointer)
        except MdlError as exc:
            self._event("registry-unavailable", error=exc.message, hint=exc.hint or UNREACHABLE)
            self._wake.set()  # the loop retries the subscription

    def _on_pointer(self, pointer: Pointer) -> None:
        # A whole pointer read just now, not a delta: the worker reconciles against it without
        # reading it again (a retry or heartbeat without a new delivery re-reads).
        self._delivered = pointer
        self._wake.set()

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
                self.reporter.report("failed", f"unexpected: {exc}")

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
            pointer = self._read_pointer()
        self._fresh_until = time.monotonic() + self.opts.resync
        self._has_aliases = bool(pointer.aliases)
        # a staged rollout of the alias: the candidate if this replica is assigned to it (mdl.rollout)
        if pointer.rollout is not None:
            self._rollout = pointer.rollout.doc
        return desired_version(self._rollout, self.opts.alias, self.replica_id, pointer.aliases.get(self.opts.alias))

    def _read_pointer(self) -> Pointer:
        """The pointer and the model's rollout; a rollout document that cannot be read leaves the last
        good one in force (fail static, as the watch does): a hostile writer cannot move replicas."""
        try:
            return self.client.pointer(self.name, with_rollout=True)
        except IntegrityError as exc:
            if "rollout" not in exc.message:
                raise
            log.warning("%s (the last good rollout document stays in force)", exc.message)
            return self.client.pointer(self.name)

    def _reconcile(self) -> None:
        with self._lock:
            try:
                desired = self._desired()
                if (
                    not self.ready
                    and not self._placed
                    and awaits_placement(self._rollout, self.opts.alias, self.replica_id)
                ):
                    # starting cold into a running rollout that may put this replica on the candidate: give
                    # the driver a moment to place it (a delivery wakes us) rather than load stable and switch
                    self._placed = True
                    self._wake.wait(JOIN_WAIT)
                    self._wake.clear()
                    desired = self._desired()
            except MdlError as exc:
                self._registry_failed(exc)
                return
            self._failed.pop(REGISTRY, None)
            if desired != self.desired:
                self._given_up = None  # the pointer moved: what failed for good is not what it names now
            self.desired = desired
            if desired is None:
                if self.ready:  # serving what an alias since removed named: fail static
                    if self.state != "ready" or not self.reporter.registered:
                        self._settled()
                else:
                    self._waiting(self._why_unset())
                return
            self._failed.pop(MODEL, None)
            if desired == self.dir.current and self._verified_current:
                if self.state != "ready" or not self.reporter.registered:
                    self._settled()
                return
            next_try = self._failed.get(desired)
            if desired == self._given_up or (next_try and next_try[0] > time.monotonic()):
                return
            try:
                manifest = self._fetch(desired)
                self._swap(desired, manifest)
            except NotFound as exc:  # not pushed (yet), or gone: retried, it may appear
                self._retry_later(desired)
                self._waiting(self._why_missing(exc))
                return
            except MdlError as exc:
                self._version_failed(desired, exc)
                return
            self._failed.pop(desired, None)
            self._settled()
            self.reporter.later(self._prune)

    # -- what it is stuck on ----------------------------------------------------------------------

    def _settled(self) -> None:
        self.problem = None
        self.reporter.report("ready")

    def _waiting(self, problem: MdlError) -> None:
        """Stuck until something outside changes (a push, a promote): said once per new reason."""
        said = self.state == "waiting" and self.problem is not None and self.problem.message == problem.message
        self.problem = problem
        if said and self.reporter.registered:
            return
        self.reporter.report("waiting", problem.message)
        if not said:
            self._event("waiting", reason=problem.message, hint=problem.hint, serving=self.dir.current)

    def _registry_failed(self, exc: MdlError) -> None:
        self._retry_later(REGISTRY)
        self._event(
            "registry-unavailable",
            error=exc.message,
            hint=exc.hint or UNREACHABLE,
            retry_in=self._retry_in(REGISTRY),
            serving=self.dir.current,
        )
        if not self.ready:  # serving a verified version stays ready: fail static
            self.problem = exc
            self.reporter.report("waiting", exc.message)

    def _version_failed(self, version: str, exc: MdlError) -> None:
        """A transient failure is retried with backoff; a permanent one waits for the pointer to move."""
        permanent = is_permanent(exc)
        if permanent:
            self._given_up = version
            self._failed.pop(version, None)
            retry = "when the pointer moves, or on SIGHUP"
        else:
            self._retry_later(version)
            retry = f"in {self._retry_in(version):g}s"
        output = {"stdout": exc.stdout, "stderr": exc.stderr} if isinstance(exc, ExecFailed) else {}
        self.problem = exc
        self._event(
            "failed",
            version=version,
            error=exc.message,
            hint=exc.hint or (None if permanent else RETRYING),
            permanent=permanent,
            retry=retry,
            serving=self.dir.current,
            **output,
        )
        self.reporter.report("failed", f"{version}: {exc.message}")

    def _retry_in(self, key: str) -> float:
        return round(max(0.0, self._failed[key][0] - time.monotonic()), 1)

    def _model_missing(self) -> bool:
        """No alias and no stored version: checked against storage at most as often as backoff allows."""
        if self._has_aliases:
            return False
        due = self._failed.get(MODEL)
        if due is not None and due[0] > time.monotonic() and self.problem is not None:
            return self.problem.message == model_missing(self.name).message
        try:
            missing = not self.client.stored_versions(self.name)
        except MdlError:
            missing = False  # cannot tell: say what is certain
        if missing:
            self._retry_later(MODEL)
        else:
            self._failed.pop(MODEL, None)
        return missing

    def _why_unset(self) -> MdlError:
        return model_missing(self.name) if self._model_missing() else alias_unset(self.name, self.opts.alias)

    def _why_missing(self, exc: NotFound) -> MdlError:
        return model_missing(self.name) if self._model_missing() else version_missing(self.name, exc)

    def _retry_later(self, key: str) -> None:
        """Back off before the next attempt at ``key`` (a version, or the registry): a fleet that failed
        together does not retry in lockstep."""
        _, attempts = self._failed.get(key, (0.0, 0))
        delay = Backoff(base=self.opts.retry_base, cap=self.opts.retry_max).delay(attempts + 1)
        self._failed[key] = (time.monotonic() + delay, attempts + 1)

    # -- local copies -----------------------------------------------------------------------------

    def _resume(self, version: str) -> bool:
        """Keep the local copy ``current`` points at if it passes its own manifest and that manifest is
        the one the registry or storage gives for the version, whenever either answers (a copy
        rewritten on disk together with its manifest passes its own check). With neither reachable
        it stands: fail static. Otherwise ``current`` is dropped and the version synced afresh. Under
        the signature policy the copy is verified like a download (it may predate the policy): refused,
        ``current`` is dropped and the version failed with the reason."""
        m = self.dir.manifest(version)
        reason = "local copy failed verification"
        if m is not None and self._is_verified(version, m):
            try:
                known = self.client.manifest(self.name, version, from_registry=True).digest
            except MdlError:  # unreachable, or no (valid) manifest there: what was verified stands
                known = m.digest
            if known == m.digest:
                refused = self._signature_refusal(version, m)
                if refused is None:
                    self._verified_current = True
                    return True
                self.dir.revert(None)  # nothing is served that the policy has not passed
                self._verified_current = False
                self._version_failed(version, refused)
                return False
            reason = f"local copy has digest {m.digest}, but the registry and storage say {known}"
            self._verified.discard((version, m.digest))
        self._event("discarded", version=version, reason=reason)
        self.dir.revert(None)
        self._verified_current = False
        return False

    def _signature_refusal(self, version: str, manifest: Manifest) -> MdlError | None:
        """Why the signature policy refuses a local copy found on disk (it may predate the policy), or None."""
        try:
            self._policy(version, manifest)
        except MdlError as exc:
            return exc
        return None

    def _is_verified(self, version: str, manifest: Manifest) -> bool:
        key = (version, manifest.digest)
        if key in self._verified and self.dir.path(version).is_dir():
            return True  # checked by this process already: a swap need not hash it again
        if self.dir.has_verified(version, manifest):
            self._verified.add(key)
            return True
        return False

    def _fetch(self, version: str, prefetch: bool = False) -> Manifest:
        """A verified local copy of ``version`` (downloaded unless already present)."""
        local = self.dir.manifest(version)
        if local is not None and (version, local.digest) in self._verified and self.dir.path(version).is_dir():
            return self._policy(version, local)  # immutable: a copy this process verified needs no storage trip
        manifest = self.client.manifest(self.name, version, from_registry=True)
        with self._fetch_lock:  # prefetch and reconcile never download one version twice at once
            if self._is_verified(version, manifest):
                return self._policy(version, manifest)
            if self.opts.jitter > 0:
                time.sleep(spread(self.opts.jitter))
            self._event("downloading", version=version, bytes=manifest.bytes)
            started = time.monotonic()
            if not prefetch:  # a quick download is not worth a registry write; a slow one is
                self.reporter.download_started(version)
            try:
                with self.client.download_slot(self.name, self.opts.max_concurrent):
                    self.client.download(
                        manifest,
                        self.dir.path(version),
                        force=True,
                        cache=self.shared,
                        require_signature=self.opts.require_signature,
                    )
            finally:
                if not prefetch:
                    self.reporter.download_ended()
            self._verified.add((version, manifest.digest))
            self._signed.add((version, manifest.digest))  # the download checked them if the policy is on
            self._event("downloaded", version=version, seconds=round(time.monotonic() - started, 3))
        return manifest

    def _policy(self, version: str, manifest: Manifest) -> Manifest:
        """Under the signature policy, a local copy not downloaded under it is checked before it is used."""
        key = (version, manifest.digest)
        if key not in self._signed and self.client.signature_required(self.opts.require_signature):
            self.client.verify(self.name, version, manifest=manifest)
            self._signed.add(key)
        return manifest

    def _swap(self, version: str, manifest: Manifest) -> None:
        before = self.dir.swap(version)
        self._verified_current = True
        try:
            if self.on_swap:
                self.on_swap(version, self.dir.path(version), before)
            notify(self.opts, self.name, version, self.dir.path(version), before)
        except Exception as exc:
            self.dir.revert(before)  # a failing hook never leaves current on a bad version
            self._verified_current = before is not None
            if self.on_swap and before:
                self.on_swap(before, self.dir.path(before), version)
            raise exc if isinstance(exc, MdlError) else HookFailed(str(exc)) from None
        self._event("swapped", version=version, previous=before, digest=manifest.digest)

    def _prune(self) -> None:
        with self._lock:  # never while a reconcile is choosing or swapping to a version
            removed = self.dir.prune(self.opts.keep, self._release)
        if removed:
            self._event("pruned", versions=removed)

    def _release(self, manifest: Manifest) -> None:
        if self.shared is not None:  # stored files no replica on this host links to any more
            self.shared.release(manifest.files)

    def _sweep_shared(self) -> None:
        if self.shared is not None:  # files of directories deleted wholesale, downloads that died
            removed = self.shared.sweep()
            if removed:
                log.info("removed %d unused file(s) from %s", len(removed), self.shared.root)
