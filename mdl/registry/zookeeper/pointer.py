"""The pointer node: reading it (arming a watch) and moving it by compare-and-set with its history entry."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
    RuntimeInconsistency,
)

from mdl.errors import CasConflict, Unavailable
from mdl.host import now_iso
from mdl.registry.base import NO_REVISION, Pointer, RegistryUnavailable, parse_pointer
from mdl.registry.zookeeper.layout import HISTORY_PREFIX, history_nodes
from mdl.registry.zookeeper.session import AMBIGUOUS, ZkSession

_RESOLVE_WINDOW = 256  # newest history entries searched for a move whose outcome is unknown
_MAYBE_MOVED = "; the move may or may not have happened (see the history)"


def read_pointer(
    session: ZkSession,
    name: str,
    deadline: float,
    what: str,
    *,
    watcher: Callable | None = None,
    cancel: threading.Event | None = None,
    sync: bool = True,
) -> tuple[Pointer, int | None]:
    """The pointer (with ``sync``: up to date) and the mzxid of its last change (None if absent);
    arms ``watcher`` (on the node, or on its creation while it is absent)."""
    path = session.paths.pointer(name)
    while True:
        got = session.call(
            lambda c: c.get_async(path, watch=watcher),
            deadline,
            what,
            missing_ok=True,
            cancel=cancel,
            sync=path if sync else None,
        )
        if got is not None:
            raw, stat = got
            aliases = parse_pointer(
                raw,
                name,
                f"znode {path}",
                hint="fix or delete that znode with a ZooKeeper client (zkCli.sh set/delete)",
            )
            return Pointer(name, aliases, stat.version), stat.mzxid
        if watcher is None:
            return Pointer(name, {}, NO_REVISION), None
        # absent: watch for its creation; if it appeared meanwhile, read it again
        if session.call(lambda c: c.exists_async(path, watch=watcher), deadline, what, cancel=cancel) is None:
            return Pointer(name, {}, NO_REVISION), None


def move_pointer(
    session: ZkSession,
    name: str,
    alias: str,
    version: str | None,
    expected_revision: int,
    who: str,
    action: str,
    what: str,
    lifecycle_revision: int | None = None,
) -> Pointer:
    """Compare-and-set one alias plus its history entry, in one transaction (see the package docstring);
    with ``lifecycle_revision``, only if the lifecycle document is still at that revision too.
    Raises kazoo's exceptions: call it inside :meth:`ZkSession.errors`."""
    deadline = session.deadline()
    pointer, _ = read_pointer(session, name, deadline, what)
    if pointer.revision != expected_revision:
        raise CasConflict(
            f"the pointer of {name!r} changed concurrently (revision {pointer.revision}, expected {expected_revision})"
        )
    doc = dict(pointer.aliases)
    previous = doc.get(alias)
    if version is None:
        doc.pop(alias, None)
    else:
        doc[alias] = version
    op = uuid.uuid4().hex
    entry = {"alias": alias, "from": previous, "to": version, "who": who, "at": now_iso(), "action": action, "op": op}
    data = json.dumps(doc, sort_keys=True).encode()
    entry_data = json.dumps(entry, sort_keys=True).encode()
    paths = session.paths
    ptr_path, hist_prefix = paths.pointer(name), f"{paths.history(name)}/{HISTORY_PREFIX}"
    moved = Pointer(name, doc, expected_revision + 1)  # create -> 0, setData -> expected + 1
    if expected_revision == NO_REVISION:
        session.ensure_path(paths.history(name), deadline, what)

    def ops(t: Any) -> None:
        if expected_revision == NO_REVISION:
            t.create(ptr_path, data, acl=session.acl)
        else:
            t.set_data(ptr_path, data, version=expected_revision)
        if lifecycle_revision is not None:
            guard(t, session, paths.lifecycle(name), lifecycle_revision, EMPTY_LIFECYCLE)
        t.create(hist_prefix, entry_data, acl=session.acl, sequence=True)

    return commit(session, name, ops, lambda: _move_applied(session, name, op, deadline, what), moved, deadline, what)


EMPTY_LIFECYCLE = b'{"pins": {}, "tombstones": {}}'


def guard(t: Any, session: ZkSession, path: str, revision: int, empty: bytes) -> None:
    """Add to transaction ``t`` the condition that the node at ``path`` is at ``revision`` (for
    NO_REVISION: that it does not exist, by creating it with ``empty``)."""
    if revision == NO_REVISION:
        t.create(path, empty, acl=session.acl)
    else:
        t.check(path, revision)


def replace_document(
    session: ZkSession,
    name: str,
    path: str,
    data: bytes,
    op: str,
    expected_revision: int,
    record: dict[str, Any] | None,
    result: Any,
    deadline: float,
    what: str,
    condition: Callable[[Any], None] | None = None,
) -> Any:
    """Replace a per-model document (lifecycle, rollout) holding ``"op": op`` if still at
    ``expected_revision`` (NO_REVISION: create it), with ``condition`` (more checks for the transaction)
    and ``record`` appended to the history, in one transaction; ``result`` once applied. After a lost
    connection whether it applied is read back from ``op``. Raises kazoo's exceptions: call it inside
    :meth:`ZkSession.errors`."""

    def ops(t: Any) -> None:
        if expected_revision == NO_REVISION:
            t.create(path, data, acl=session.acl)
        else:
            t.set_data(path, data, version=expected_revision)
        if condition is not None:
            condition(t)
        if record is not None:
            t.create(
                f"{session.paths.history(name)}/{HISTORY_PREFIX}",
                json.dumps(record, sort_keys=True).encode(),
                acl=session.acl,
                sequence=True,
            )

    def applied() -> bool:
        got = session.call(lambda c: c.get_async(path), deadline, what, missing_ok=True, sync=path)
        try:
            return got is not None and json.loads(got[0].decode("utf-8")).get("op") == op
        except (UnicodeDecodeError, ValueError, AttributeError, RecursionError):
            return False

    return commit(session, name, ops, applied, result, deadline, what)


def commit(
    session: ZkSession,
    name: str,
    ops: Callable[[Any], None],
    applied: Callable[[], bool],
    result: Any,
    deadline: float,
    what: str,
) -> Any:
    """Commit the transaction ``ops`` builds (it creates a history entry); return ``result`` once it is
    applied, CasConflict if a condition failed. If the connection dropped while it was in flight,
    ``applied`` says (after reconnecting) whether it was, before it is sent again: every attempt carries
    the same expected versions, so at most one can ever apply."""
    paths = session.paths

    def send(c: KazooClient) -> Any:
        t = c.transaction()
        ops(t)
        return t.commit_async()

    unknown = False  # an earlier attempt may have been applied
    for _ in range(5):
        try:
            results = session.call(send, deadline, what, idempotent=False, unanswered=_MAYBE_MOVED)
        except AMBIGUOUS:
            unknown = True
            if applied():
                return result
            continue  # not applied (yet): send it again
        failures = [
            r
            for r in results
            if isinstance(r, Exception) and not isinstance(r, (RolledBackError, RuntimeInconsistency))
        ]
        if not failures:
            return result
        failure = failures[0]
        if isinstance(failure, (NoAuthError, AuthFailedError)):
            raise failure
        if isinstance(failure, NoNodeError) and isinstance(results[-1], NoNodeError):
            session.ensure_path(paths.history(name), deadline, what, recheck=True)  # history parent missing
            continue
        if isinstance(failure, (BadVersionError, NodeExistsError, NoNodeError)):
            if unknown and applied():
                return result
            raise CasConflict(f"the registry documents of {name!r} changed concurrently")
        raise failure
    raise CasConflict(f"{what}: the registry kept changing underneath")


def _move_applied(session: ZkSession, name: str, op: str, deadline: float, what: str) -> bool:
    """After an in-flight transaction lost its connection: was it applied? (sync, then look)."""
    try:
        path = session.paths.history(name)
        session.call(lambda c: c.sync_async(path), deadline, what)
        children = session.call(lambda c: c.get_children_async(path), deadline, what, missing_ok=True) or []
        newest = history_nodes(children)[-_RESOLVE_WINDOW:]
        got = session.get_many([f"{path}/{n}" for n in newest], deadline, what, missing_ok=True)
    except RegistryUnavailable as exc:
        raise exc.adding(_MAYBE_MOVED) from None
    except Unavailable as exc:
        raise Unavailable(exc.message + _MAYBE_MOVED, hint=exc.hint) from None
    except AMBIGUOUS:
        raise session.unavailable(what, _MAYBE_MOVED) from None
    for item in got:
        if item is not None:
            try:
                if json.loads(item[0].decode("utf-8")).get("op") == op:
                    return True
            except (UnicodeDecodeError, ValueError, AttributeError, RecursionError):
                continue
    return False
