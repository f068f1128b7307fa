"""Download slots: a fleet-wide counting semaphore of ephemeral sequential nodes per model."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kazoo.client import KazooClient

from mdl.errors import Unavailable
from mdl.names import validate_name
from mdl.registry.zookeeper.layout import sequence_suffix
from mdl.registry.zookeeper.session import AMBIGUOUS, Stopped, ZkSession


class DownloadSlots:
    """``hold(name, limit)``; a slot whose release cannot reach ZooKeeper goes to ``on_release_failed``
    (the node is deleted later, or vanishes with the session)."""

    def __init__(self, session: ZkSession, on_release_failed: Callable[[str], None]) -> None:
        self._session = session
        self._on_release_failed = on_release_failed

    @contextmanager
    def hold(self, name: str, limit: int, pool: str = "download") -> Iterator[None]:
        """Held while fewer than ``limit`` older nodes exist. Waiting is unbounded (the holders'
        downloads end or their sessions expire); every ZooKeeper call is bounded by registry.timeout."""
        validate_name(name)
        session = self._session
        what = f"taking a {pool} slot of {name!r}"
        base = session.paths.slots(name, pool)
        token = uuid.uuid4().hex
        node: str | None = None
        with session.errors(what, denied=f"{what} is not allowed by the ZooKeeper ACL"):
            try:
                session.ensure_path(base, session.deadline(), what)
                while True:
                    deadline = session.deadline()
                    if node is None:
                        node = self._enqueue(base, f"s-{token}-", deadline, what)
                    changed = threading.Event()
                    children = session.call(_children_watched(base, changed), deadline, what)
                    if node not in children:
                        node = None  # our session expired while waiting: queue again
                        continue
                    if _older(children, node) < limit:
                        break
                    changed.wait(min(session.timeout, 5.0))  # a holder left (or re-check anyway)
            except BaseException:
                if node is not None:
                    self._release(f"{base}/{node}", what)
                raise
        try:
            yield
        finally:
            self._release(f"{base}/{node}", what)

    def _enqueue(self, base: str, prefix: str, deadline: float, what: str) -> str:
        """Create an ephemeral sequential node named ``prefix`` + seq under ``base``; a create whose
        answer was lost is found again by its unique prefix (never two nodes for one holder)."""
        session = self._session
        while True:
            try:
                path = session.call(
                    lambda c: c.create_async(f"{base}/{prefix}", b"", acl=session.acl, ephemeral=True, sequence=True),
                    deadline,
                    what,
                    idempotent=False,
                )
                return path.rsplit("/", 1)[1]
            except AMBIGUOUS:
                session.call(lambda c: c.sync_async(base), deadline, what)
                found = [
                    c
                    for c in session.call(lambda c: c.get_children_async(base), deadline, what)
                    if c.startswith(prefix)
                ]
                if found:
                    return found[0]

    def _release(self, path: str, what: str) -> None:
        session = self._session
        try:
            with session.errors(what):
                session.delete_own(path, session.deadline(), what)
        except (Unavailable, Stopped):
            self._on_release_failed(path)


def _children_watched(base: str, changed: threading.Event) -> Callable[[KazooClient], Any]:
    """A request for the children of ``base`` that sets ``changed`` when they change."""
    return lambda c: c.get_children_async(base, watch=lambda _e: changed.set())


def _older(children: list[str], node: str) -> int:
    """How many of the queued ``children`` were created before ``node``."""
    mine = sequence_suffix(node)
    return sum(1 for c in children if mine is not None and (q := sequence_suffix(c)) is not None and q < mine)
