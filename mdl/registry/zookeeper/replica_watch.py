"""Replica watches: event-driven, one thread per watch keeping a cache of a model's replica nodes.

A children watch on ``<model>/replicas`` (an exists watch while that node is absent: it is only created
by the first registration, and a watcher must not create registry nodes it may have no right to
write) and a data watch per replica node. A fired watch or a reconnect only puts a token on the
watch's queue (kazoo's threads never wait on us); the watch's thread lets more arrive for
SETTLE_SECONDS, takes every queued token, then reads only what they name: the children list (new
children are read, gone ones dropped), the changed nodes, or after a reconnect everything (kazoo
drops its watches on every disconnection, and an expired session loses them on the server too).
At 1,000 replicas a change costs one or two round trips; only a reconnect reads every node
(pipelined, one round trip).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from kazoo.protocol.states import EventType

from mdl.errors import MdlError, Unavailable
from mdl.registry.base import Replica, ReplicasCallback, Watch, deliver_replicas, parse_replica_data
from mdl.registry.zookeeper.session import Stopped, ZkSession
from mdl.retry import Backoff

log = logging.getLogger("mdl.registry.zookeeper")

_UNAVAILABLE_BACKOFF = Backoff(0.05, 2.0)  # between full re-reads while the ensemble does not answer
_FAILED_PAUSE = 2.0  # between full re-reads after any other error (e.g. an ACL refusal)
# After an event, how long the thread lets more of them arrive before it reads: a fleet starting (50
# registrations a few ms apart) is read and delivered a few times, not once per replica.
SETTLE_SECONDS = 0.1
# Queue tokens: re-read everything (start, reconnect, kazoo dropped its watches); the children (or the
# existence) of the replicas node changed; ("node", id): that replica's node changed or went. None: stop.
_FULL = ("full",)
_CHILDREN = ("children",)


class ReplicaWatch(Watch):
    """The live replicas of one model, delivered whenever they change (see the module docstring)."""

    def __init__(
        self, session: ZkSession, name: str, callback: ReplicasCallback, on_stop: Callable[[ReplicaWatch], None]
    ) -> None:
        super().__init__()
        self._session, self._name, self._callback, self._on_stop = session, name, callback, on_stop
        self._path = session.paths.replicas(name)
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        # id -> (stored bytes, record or None if unreadable); the replicas known to exist now
        self._cache: dict[str, tuple[bytes, dict[str, Any] | None]] = {}
        self._thread = threading.Thread(target=self._run, name=f"mdl-zk-replicas-{name}", daemon=True)

    def start(self) -> None:
        self._events.put(_FULL)
        self._thread.start()

    @property
    def live(self) -> bool:
        return not self.stopped and self._session.connected

    def stop(self) -> None:
        super().stop()
        self._events.put(None)
        self._on_stop(self)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the thread to end (after ``stop``); True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- kazoo's side: never block ---------------------------------------------------------------

    def reconnected(self) -> None:
        self._events.put(_FULL)

    def _fired(self, event: Any) -> None:
        """The watcher of every read (kazoo calls it once per armed watch, with the WatchedEvent)."""
        if self.stopped:
            return
        path = getattr(event, "path", None)
        if getattr(event, "type", None) == EventType.NONE or not path:
            self._events.put(_FULL)  # kazoo dropped its watches (disconnected)
        elif path == self._path:
            self._events.put(_CHILDREN)
        elif path.startswith(self._path + "/"):
            self._events.put(("node", path[len(self._path) + 1 :]))
        # anything else: not ours

    # -- the watch's thread ------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        last: list[tuple[str, bytes]] | None = None
        bad: str | None = None  # the last error logged (once, not every retry)
        what = f"watching the replicas of {self._name!r}"
        session = self._session
        pending: set[tuple[str, ...]] = set()
        first = True
        while not self.stopped:
            if not pending:
                token = self._events.get()
                if token is None:
                    return
                pending.add(token)
                if not first:
                    self._stopped.wait(SETTLE_SECONDS)
                first = False
            try:
                while True:  # coalesce what is queued already
                    token = self._events.get_nowait()
                    if token is None:
                        return
                    pending.add(token)
            except queue.Empty:
                pass
            if self.stopped:
                return
            todo, pending = pending, set()
            try:
                with session.errors(what):
                    if _FULL in todo:
                        self._read_children(what, everything=True)
                    else:
                        fresh = self._read_children(what, everything=False) if _CHILDREN in todo else set()
                        changed = {t[1] for t in todo if t[0] == "node"} - fresh
                        self._read_nodes(sorted(i for i in changed if i in self._cache), what)
            except Stopped:
                return
            except Unavailable:
                if session.closed:
                    return
                failures += 1
                pending.add(_FULL)  # watches may be unarmed: start over
                self._stopped.wait(_UNAVAILABLE_BACKOFF.delay(failures))  # also poked on reconnect
                continue
            except MdlError as exc:  # e.g. refused by an ACL: deliver nothing, look again later
                if exc.message != bad:
                    log.warning("%s", exc.message)
                bad = exc.message
                pending.add(_FULL)
                self._stopped.wait(_FAILED_PAUSE)
                continue
            except Exception:
                log.exception("%s failed", what)
                pending.add(_FULL)
                self._stopped.wait(_FAILED_PAUSE)
                continue
            failures, bad = 0, None
            key = [(rid, raw) for rid, (raw, record) in sorted(self._cache.items()) if record is not None]
            if key != last and not self.stopped:
                last = key
                replicas = [Replica(rid, rec) for rid, (_, rec) in sorted(self._cache.items()) if rec is not None]
                deliver_replicas(self._callback, self._name, replicas)

    def _read_children(self, what: str, *, everything: bool) -> set[str]:
        """Re-list the children (arming the children watch, or an exists watch while the node is
        absent), drop gone ones, read new ones (with ``everything``: every one, after a sync, as after
        a reconnect, when watches may have been lost); returns the ids read."""
        session, path = self._session, self._path
        while True:
            deadline = session.deadline()
            children = session.call(
                lambda c: c.get_children_async(path, watch=self._fired),
                deadline,
                what,
                missing_ok=True,
                cancel=self._stopped,
                sync=path if everything else None,
            )
            if children is not None:
                break
            # no replicas node yet: watch for its creation; if it appeared meanwhile, list it
            if session.call(lambda c: c.exists_async(path, watch=self._fired), deadline, what, cancel=self._stopped):
                continue
            self._cache.clear()
            return set()
        present = set(children)
        for gone in set(self._cache) - present:
            del self._cache[gone]
        fresh = sorted(present if everything else present - set(self._cache))
        self._read_nodes(fresh, what)
        return set(fresh)

    def _read_nodes(self, ids: list[str], what: str) -> None:
        """(Re-)read the nodes of ``ids`` in one round trip, arming a data watch on each."""
        if not ids:
            return
        session = self._session
        starts = [(lambda c, p=f"{self._path}/{rid}": c.get_async(p, watch=self._fired)) for rid in ids]
        got = session.call_many(starts, session.deadline(), what, missing_ok=True, cancel=self._stopped)
        for rid, item in zip(ids, got, strict=True):
            if item is None:
                self._cache.pop(rid, None)  # gone in between (the children watch says so too)
                continue
            raw = item[0] if isinstance(item[0], bytes) else b""
            known = self._cache.get(rid)
            if known is not None and known[0] == raw:
                continue
            record = parse_replica_data(raw)
            if record is None:
                log.warning("skipping unreadable replica record %s/%s", self._path, rid)
            self._cache[rid] = (raw, record)
