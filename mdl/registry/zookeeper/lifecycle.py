"""The lifecycle node (pins and tombstones): reading it, and replacing it by compare-and-set together
with a condition on the pointer and a history entry, in one transaction."""

from __future__ import annotations

import json
import uuid
from typing import Any

from mdl.host import now_iso
from mdl.registry.base import NO_REVISION, Lifecycle, parse_lifecycle
from mdl.registry.zookeeper.pointer import guard, replace_document
from mdl.registry.zookeeper.session import ZkSession

_HINT = "fix or delete that znode with a ZooKeeper client (zkCli.sh set/delete)"


def read_lifecycle(session: ZkSession, name: str, deadline: float, what: str) -> Lifecycle:
    """The lifecycle document (up to date: a ``sync`` precedes the read); empty at NO_REVISION if absent."""
    path = session.paths.lifecycle(name)
    got = session.call(lambda c: c.get_async(path), deadline, what, missing_ok=True, sync=path)
    if got is None:
        return Lifecycle(name, {}, {}, NO_REVISION)
    raw, stat = got
    pins, tombstones = parse_lifecycle(raw, name, f"znode {path}", hint=_HINT)
    return Lifecycle(name, pins, tombstones, stat.version)


def write_lifecycle(
    session: ZkSession,
    lifecycle: Lifecycle,
    expected_revision: int,
    pointer_revision: int | None,
    entry: dict[str, str | None] | None,
    what: str,
) -> Lifecycle:
    """Replace the document if still at ``expected_revision`` (and the pointer at ``pointer_revision``;
    NO_REVISION: absent, which creates an empty pointer), appending ``entry`` to the history. The
    document carries a random ``op`` id: after a lost connection, whether the write applied is read
    back from it. Raises kazoo's exceptions: call it inside :meth:`ZkSession.errors`."""
    name, paths = lifecycle.name, session.paths
    deadline = session.deadline()
    op = uuid.uuid4().hex
    doc = {"pins": lifecycle.pins, "tombstones": lifecycle.tombstones, "op": op}
    data = json.dumps(doc, sort_keys=True).encode()
    path = paths.lifecycle(name)
    if NO_REVISION in (expected_revision, pointer_revision) or entry is not None:
        session.ensure_path(paths.history(name), deadline, what)
    record = None
    if entry is not None:
        record = {"alias": None, "from": None, "to": None, "at": now_iso(), "op": op, **entry}
        record = {k: v for k, v in record.items() if v is not None or k in ("alias", "from", "to")}

    def condition(t: Any) -> None:
        if pointer_revision is not None:
            guard(t, session, paths.pointer(name), pointer_revision, b"{}")

    result = lifecycle._replace(revision=expected_revision + 1)
    return replace_document(
        session, name, path, data, op, expected_revision, record, result, deadline, what, condition=condition
    )
