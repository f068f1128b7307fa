"""Watches: the running watches of a registry (``Watches``, for pointers and replicas alike), and the
pointer watch: level-triggered, one thread per watch re-reading the pointer (see the package docstring)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from mdl.errors import MdlError, Unavailable
from mdl.registry.base import PointerCallback, Rollout, Watch, deliver
from mdl.registry.zookeeper.pointer import read_pointer
from mdl.registry.zookeeper.rollout import parse_rollout_node, read_rollout_raw
from mdl.registry.zookeeper.session import Stopped, ZkSession
from mdl.retry import Backoff

log = logging.getLogger("mdl.registry.zookeeper")

_UNAVAILABLE_BACKOFF = Backoff(0.05, 2.0)  # between re-reads while the ensemble does not answer
_BAD_POINTER_PAUSE = 5.0  # between re-reads of a pointer that cannot be read (e.g. not valid JSON)
_FAILED_PAUSE = 2.0  # between re-reads after an unexpected error


class SessionWatch(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def reconnected(self) -> None:
        """The session reconnected: re-read (changes may have been missed). Must not block."""


W = TypeVar("W", bound=SessionWatch)
# (session, model name, callback, on_stop) -> a watch, not yet started
WatchFactory = Callable[[ZkSession, str, Any, Callable[[W], None]], W]


class Watches(Generic[W]):
    """The running watches of one kind of one registry: started, told after every reconnect (to catch
    up with changes missed while disconnected), stopped on close."""

    def __init__(self, session: ZkSession, make: WatchFactory[W]) -> None:
        self._session = session
        self._make = make
        self._lock = threading.Lock()
        self._watches: set[W] = set()
        session.on_connected(self._poke_all)

    def start(self, name: str, callback: Any) -> W:
        with self._lock:
            self._session.client()  # starts connecting now; raises once the registry is closed
            w = self._make(self._session, name, callback, self._forget)
            self._watches.add(w)
        w.start()
        return w

    def stop_all(self) -> None:
        with self._lock:
            watches = list(self._watches)
            self._watches.clear()
        for w in watches:
            w.stop()

    def _poke_all(self) -> None:
        with self._lock:  # never held long: start and stop_all do not wait on kazoo under it
            watches = list(self._watches)
        for w in watches:
            w.reconnected()

    def _forget(self, w: W) -> None:
        with self._lock:
            self._watches.discard(w)


class PointerWatch(Watch):
    """Events (ZooKeeper watch fired, reconnected) are tokens on a queue; one thread re-reads the
    pointer and then the rollout node, a watch armed on each: a change of either is delivered. A
    rollout node that cannot be read delivers the pointer with the last good rollout (fail static)."""

    def __init__(
        self, session: ZkSession, name: str, callback: PointerCallback, on_stop: Callable[[PointerWatch], None]
    ) -> None:
        super().__init__()
        self._session, self._name, self._callback, self._on_stop = session, name, callback, on_stop
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"mdl-zk-watch-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def live(self) -> bool:
        return not self.stopped and self._session.connected

    def poke(self, *event: Any) -> None:
        """Called by kazoo (watch fired, with the event) or after a reconnect: must not block. A fired
        rollout watch is told apart: only then (and after a reconnect or an error) is the rollout read
        again, so a promotion costs each replica one read, not three."""
        if not event:
            self._events.put("reconnected")
        elif getattr(event[0], "path", None) == self._session.paths.rollout(self._name):
            self._events.put("rollout")
        else:
            self._events.put("fired")

    def reconnected(self) -> None:
        self.poke()

    def stop(self) -> None:
        super().stop()
        self._events.put(None)
        self._on_stop(self)

    def _run(self) -> None:
        last: tuple | None = None  # (pointer revision, mzxid, key of the rollout) last delivered
        good: Rollout | None = None  # the last readable rollout, and its (version, mzxid)
        good_key: tuple[int, int] | None = None
        bad_rollout: str | None = None  # the last unreadable rollout's error (logged once)
        dirty, failures = True, 0
        need_rollout = True  # read the rollout node again (first, after its watch fired, a reconnect, an error)
        got: Any = None
        # A read after our own watch fired sees at least that change (a session's view never goes
        # back), so only the first read and those after a reconnect or an error need a sync.
        synced = False
        bad: str | None = None  # the last error logged
        what = f"watching the pointer of {self._name!r}"
        session = self._session
        while not self.stopped:
            if not dirty:
                token = self._events.get()
                synced = synced and token in ("fired", "rollout")
                need_rollout = need_rollout or token != "fired"
                dirty = True
                continue  # re-check stopped, then read
            try:
                while True:  # coalesce events already queued
                    token = self._events.get_nowait()
                    synced = synced and token in ("fired", "rollout")
                    need_rollout = need_rollout or token != "fired"
            except queue.Empty:
                pass
            dirty = False
            try:
                with session.errors(what):
                    pointer, mzxid = read_pointer(
                        session,
                        self._name,
                        session.deadline(),
                        what,
                        watcher=self.poke,
                        cancel=self._stopped,
                        sync=not synced,
                    )
                    if need_rollout:  # after the pointer's read (synced now): at least as new as the pointer
                        got = read_rollout_raw(
                            session,
                            self._name,
                            session.deadline(),
                            what,
                            watcher=self.poke,
                            cancel=self._stopped,
                            sync=False,
                        )
                synced = True
            except Stopped:
                return
            except Unavailable:
                need_rollout = True
                if session.closed:
                    return
                failures += 1
                pause = _UNAVAILABLE_BACKOFF.delay(failures)  # retry; also poked on reconnect
            except MdlError as exc:  # e.g. an unreadable pointer: nothing is delivered, what is served stays
                need_rollout = True
                if exc.message != bad:
                    log.warning("%s", exc.message)  # once, not every retry
                bad = exc.message
                pause = _BAD_POINTER_PAUSE
            except Exception:
                need_rollout = True
                log.exception("%s failed", what)
                pause = _FAILED_PAUSE
            else:
                failures, bad = 0, None
                if need_rollout:
                    need_rollout = False
                    try:
                        good = parse_rollout_node(self._name, session.paths.rollout(self._name), got)
                        good_key, bad_rollout = (good.revision, got[1].mzxid if got else 0), None
                    except Exception as exc:  # fail static: a hostile writer must not move the replicas
                        message = exc.message if isinstance(exc, MdlError) else f"{what}: reading the rollout: {exc!r}"
                        if message != bad_rollout:
                            log.warning("%s", message)
                        bad_rollout = message
                key = (pointer.revision, mzxid, good_key)
                if key != last and not self.stopped:
                    last = key
                    deliver(self._callback, pointer._replace(rollout=good))
                continue
            dirty = True
            self._stopped.wait(pause)
