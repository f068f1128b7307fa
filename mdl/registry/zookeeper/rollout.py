"""The rollout node (a staged rollout's state): reading it (arming a watch, for the pointer watch) and
replacing it by compare-and-set together with a history entry, in one transaction."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from mdl.errors import InvalidInput
from mdl.host import now_iso
from mdl.registry.base import NO_REVISION, Rollout, parse_rollout, rollout_to_write
from mdl.registry.zookeeper.pointer import replace_document
from mdl.registry.zookeeper.session import ZkSession

_HINT = "fix or delete that znode with a ZooKeeper client (zkCli.sh set/delete)"
# ZooKeeper refuses a request larger than its jute.maxbuffer (1 MiB by default) by dropping the
# connection, which would look like an outage: a larger document is refused before it is sent.
NODE_MAX = 1_000_000


def read_rollout_raw(
    session: ZkSession,
    name: str,
    deadline: float,
    what: str,
    *,
    watcher: Callable | None = None,
    cancel: threading.Event | None = None,
    sync: bool = True,
) -> tuple[bytes, Any] | None:
    """The stored data and stat of the rollout node, None if absent (with ``sync``: up to date); arms
    ``watcher`` on the node, or on its creation while it is absent."""
    path = session.paths.rollout(name)
    while True:
        got = session.call(
            lambda c: c.get_async(path, watch=watcher),
            deadline,
            what,
            missing_ok=True,
            cancel=cancel,
            sync=path if sync else None,
        )
        if got is not None or watcher is None:
            return got
        # absent: watch for its creation; if it appeared meanwhile, read it again
        if session.call(lambda c: c.exists_async(path, watch=watcher), deadline, what, cancel=cancel) is None:
            return None


def parse_rollout_node(name: str, path: str, got: tuple[bytes, Any] | None) -> Rollout:
    """The Rollout of what :func:`read_rollout_raw` returned; IntegrityError if it is unreadable."""
    if got is None:
        return Rollout(name, None, NO_REVISION)
    raw, stat = got
    doc = parse_rollout(raw, name, f"znode {path}", hint=_HINT)
    if doc is not None:
        doc.pop("op", None)  # the write's own id (see write_rollout), not part of the document
    return Rollout(name, doc, stat.version)


def read_rollout(session: ZkSession, name: str, deadline: float, what: str, *, sync: bool = True) -> Rollout:
    """The rollout document (with ``sync``: up to date); doc None at NO_REVISION if absent."""
    got = read_rollout_raw(session, name, deadline, what, sync=sync)
    return parse_rollout_node(name, session.paths.rollout(name), got)


def write_rollout(
    session: ZkSession,
    name: str,
    doc: dict[str, Any],
    expected_revision: int,
    entry: dict[str, str | None] | None,
    what: str,
) -> Rollout:
    """Replace the document if still at ``expected_revision`` (NO_REVISION: create it), appending
    ``entry`` to the history. Like the lifecycle document it carries a random ``op`` id: after a lost
    connection, whether the write applied is read back from it. Raises kazoo's exceptions: call it
    inside :meth:`ZkSession.errors`."""
    checked, record = rollout_to_write(name, doc, entry)
    paths = session.paths
    deadline = session.deadline()
    op = uuid.uuid4().hex
    data = json.dumps({**checked, "op": op}, sort_keys=True).encode()
    if len(data) > NODE_MAX:
        raise InvalidInput(
            f"the rollout document of {name!r} is {len(data)} bytes, more than a ZooKeeper node holds ({NODE_MAX})",
            hint="fewer replicas or shorter replica ids, or smaller options",
        )
    path = paths.rollout(name)
    if expected_revision == NO_REVISION or record is not None:
        session.ensure_path(paths.history(name), deadline, what)  # also the model's node
    if record is not None:
        record = {k: v for k, v in record.items() if v is not None or k in ("alias", "from", "to")}
        record.update(at=now_iso(), op=op)

    result = Rollout(name, checked, expected_revision + 1)
    return replace_document(session, name, path, data, op, expected_revision, record, result, deadline, what)
