"""Replicas: ephemeral nodes of this session, re-created after a lost session by a maintenance thread,
which also deletes the nodes ("orphans") whose delete could not reach ZooKeeper."""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
from typing import Any

from kazoo.exceptions import ConnectionClosedError, NoNodeError

from mdl.errors import InvalidInput, Unavailable
from mdl.names import validate_name
from mdl.registry.base import Replica, ReplicaHandle, parse_replica_data
from mdl.registry.zookeeper.session import AMBIGUOUS, Stopped, ZkSession
from mdl.retry import Backoff

log = logging.getLogger("mdl.registry.zookeeper")

_MAINTENANCE_BACKOFF = Backoff(0.1, 5.0)  # between rounds while the ensemble does not answer


class ReplicaKeeper:
    """This session's replica nodes and orphans, kept up to date after every reconnect on a thread of
    its own (never on kazoo's). Internal to the package."""

    def __init__(self, session: ZkSession) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._replicas: set[ZkReplica] = set()
        self._orphans: set[str] = set()  # nodes of ours whose delete could not reach ZooKeeper
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # "connected" / "orphans" tokens, None: end
        self._thread: threading.Thread | None = None
        session.on_connected(self._on_connected)

    def register(self, name: str, replica_id: str, data: dict[str, Any]) -> ReplicaHandle:
        validate_name(name)
        if (
            not isinstance(replica_id, str)
            or not replica_id
            or "/" in replica_id
            or replica_id in (".", "..")
            or any(ord(ch) < 32 for ch in replica_id)
            or len(replica_id) > 255
        ):
            raise InvalidInput(
                f"invalid replica id {replica_id!r}: no '/', no control characters, not '.' or '..', 1-255 characters"
            )
        session = self._session
        handle = ZkReplica(session, self, name, replica_id, data)
        what = f"registering replica {replica_id!r} of {name!r}"
        with session.errors(what, denied=f"registering a replica of {name!r} is not allowed by the ZooKeeper ACL"):
            deadline = session.deadline()
            session.ensure_path(session.paths.replicas(name), deadline, what)
            handle.refresh(deadline, what)
        with self._lock:
            self._replicas.add(handle)
            self._start_maintenance()
        return handle

    def list_replicas(self, name: str) -> list[Replica]:
        validate_name(name)
        session = self._session
        what = f"listing the replicas of {name!r}"
        deadline = session.deadline()
        path = session.paths.replicas(name)
        with session.errors(what, denied=f"{what} is not allowed by the ZooKeeper ACL"):
            ids = sorted(
                session.call(lambda c: c.get_children_async(path), deadline, what, missing_ok=True, sync=path) or []
            )
            got = session.get_many([f"{path}/{i}" for i in ids], deadline, what, missing_ok=True)
        replicas = []
        for rid, item in zip(ids, got, strict=True):
            if item is None:
                continue  # gone in between
            data = parse_replica_data(item[0])
            if data is None:
                log.warning("skipping unreadable replica record %s/%s", path, rid)
                continue
            replicas.append(Replica(rid, data))
        return replicas

    def forget(self, handle: ZkReplica) -> None:
        """A closed handle: no longer re-created."""
        self._replicas.discard(handle)

    def add_orphan(self, path: str) -> None:
        """A node of ours whose delete failed: the maintenance thread retries (it is gone with the
        session anyway)."""
        with self._lock:
            if self._session.closed:
                return
            self._orphans.add(path)
            self._start_maintenance()
        self._queue.put("orphans")

    def close(self) -> None:
        """End the maintenance thread and forget the handles (the session's end deletes their nodes)."""
        self._replicas.clear()
        self._queue.put(None)

    def _on_connected(self) -> None:
        with self._lock:
            self._start_maintenance()
        self._queue.put("connected")  # re-create or refresh replica nodes

    def _start_maintenance(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._maintain, name="mdl-zk-replicas", daemon=True)
            self._thread.start()

    def _maintain(self) -> None:
        """After every reconnect: re-create lost replica nodes, push data whose update failed,
        delete nodes whose close failed."""
        session = self._session
        while True:
            item = self._queue.get()
            if item is None or session.closed:
                return
            for attempt in itertools.count(1):
                if session.closed:
                    break
                try:
                    while True:  # coalesce
                        if self._queue.get_nowait() is None:
                            return
                except queue.Empty:
                    pass
                try:
                    for handle in list(self._replicas):
                        handle.refresh(session.deadline(), f"re-registering replica {handle.id!r}")
                    for path in list(self._orphans):
                        session.delete_own(path, session.deadline(), f"deregistering {path}")
                        self._orphans.discard(path)
                    break
                except (Stopped, Unavailable, *AMBIGUOUS, ConnectionClosedError):
                    pass
                except Exception:
                    log.exception("keeping the replica nodes of %s up to date failed", session.url)
                    break  # not a connection problem: retried on the next reconnect
                session.wait_closed(_MAINTENANCE_BACKOFF.delay(attempt))


class ZkReplica(ReplicaHandle):
    """A registered replica: an ephemeral node holding its data as JSON."""

    def __init__(
        self, session: ZkSession, keeper: ReplicaKeeper, name: str, replica_id: str, data: dict[str, Any]
    ) -> None:
        self._session, self._keeper, self._name, self.id = session, keeper, name, replica_id
        self._data = dict(data)
        self._path = f"{session.paths.replicas(name)}/{replica_id}"
        self._lock = threading.Lock()
        self._closed = False

    def _payload(self) -> bytes:
        return json.dumps(self._data, sort_keys=True).encode()

    def refresh(self, deadline: float, what: str) -> None:
        """(Re-)create the node with the latest data, unless closed."""
        with self._lock:
            if not self._closed:
                self._session.put_ephemeral(self._path, self._payload(), deadline, what)

    def update(self, **data: Any) -> None:
        """Set the replica's data; if ZooKeeper is unreachable the data is kept and written on reconnect
        (Unavailable is raised)."""
        what = f"updating replica {self.id!r} of {self._name!r}"
        session = self._session
        with self._lock:
            self._data.update(data)
            if self._closed:
                return
            payload = self._payload()
            with session.errors(what, denied=f"{what} is not allowed by the ZooKeeper ACL"):
                deadline = session.deadline()
                try:
                    session.call(lambda c: c.set_async(self._path, payload), deadline, what)
                except NoNodeError:  # lost with an expired session: re-create it now
                    session.put_ephemeral(self._path, payload, deadline, what)

    def close(self) -> None:
        """Deregister. If ZooKeeper is unreachable the node is deleted on reconnect, or vanishes
        with the session; this never raises for an unreachable ensemble."""
        session = self._session
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._keeper.forget(self)
        what = f"deregistering replica {self.id!r} of {self._name!r}"
        if session.closed:
            return
        try:
            with session.errors(what):
                session.delete_own(self._path, session.deadline(), what)
        except Unavailable as exc:
            log.warning("%s (it is removed on reconnect or when the session ends)", exc.message)
            self._keeper.add_orphan(self._path)
