"""Writing a registry behind mdl's back, as anyone with access to it can: the SQLite file with
sqlite3, a ZooKeeper ensemble with kazoo. For the hostile-input tests of both backends."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from typing import Any, Iterator

from mdl.registry.base import Registry


def _is_sqlite(reg: Registry) -> bool:
    return type(reg).__name__ == "SqliteRegistry"


@contextmanager
def _db(reg: Any) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(reg.path, timeout=30, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def zk_session(reg: Any) -> Iterator[Any]:
    """A kazoo client of its own on the registry's ensemble (ephemeral nodes live as long as it)."""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=reg.hosts, timeout=10)
    zk.start(timeout=15)
    try:
        yield zk
    finally:
        zk.stop()
        zk.close()


def write_pointer(reg: Any, name: str, raw: Any) -> None:
    """Overwrite the stored pointer document of ``name`` (``raw``: bytes, str or, on SQLite, any value)
    and bump its revision, as a careless or hostile writer would."""
    _write_document(reg, "pointers", reg.paths.pointer if not _is_sqlite(reg) else None, name, raw)


def _write_document(reg: Any, table: str, zk_path: Any, name: str, raw: Any) -> None:
    """Overwrite one per-model document: a row of ``table`` (revision bumped) on SQLite, the znode at
    ``zk_path(name)`` on ZooKeeper."""
    if _is_sqlite(reg):
        with _db(reg) as c:
            c.execute(f"INSERT INTO {table} (model, doc, revision) VALUES (?, ?, 0) ON CONFLICT (model) DO UPDATE "
                      "SET doc = excluded.doc, revision = revision + 1", (name, raw))
        return
    data = raw.encode() if isinstance(raw, str) else raw
    with zk_session(reg) as zk:
        path = zk_path(name)
        if zk.exists(path):
            zk.set(path, data)
        else:
            zk.create(path, data, makepath=True)


def read_pointer(reg: Any, name: str) -> Any:
    """The stored pointer document as it is (None if there is none)."""
    if _is_sqlite(reg):
        with _db(reg) as c:
            row = c.execute("SELECT doc, revision FROM pointers WHERE model = ?", (name,)).fetchone()
        return row
    with zk_session(reg) as zk:
        path = reg.paths.pointer(name)
        if not zk.exists(path):
            return None
        data, stat = zk.get(path)
        return data, stat.version


def add_history(reg: Any, name: str, entry: Any) -> None:
    """Append a history entry: ``entry`` a dict of the fields mdl writes (any values), or raw bytes."""
    if _is_sqlite(reg):
        d = entry if isinstance(entry, dict) else {"alias": entry}

        def stored(v: Any) -> Any:  # a number in a TEXT column would become text: keep it foreign, a blob
            return v if isinstance(v, (str, bytes)) else b"" if v is None else json.dumps(v).encode()

        with _db(reg) as c:
            c.execute("INSERT INTO history (model, alias, from_version, to_version, who, at, action) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (name, stored(d.get("alias")), d.get("from") if d.get("from") is None else stored(d["from"]),
                       d.get("to") if d.get("to") is None else stored(d["to"]), stored(d.get("who", "x")),
                       stored(d.get("at", "x")), stored(d.get("action", "promote"))))
        return
    data = json.dumps(entry).encode() if isinstance(entry, dict) else entry
    with zk_session(reg) as zk:
        zk.create(f"{reg.paths.history(name)}/h-", data, sequence=True, makepath=True)


@contextmanager
def hostile_replicas(reg: Any, name: str, records: dict[str, Any]) -> Iterator[None]:
    """Live replica records of ``name`` (id -> raw data) while the block runs."""
    if _is_sqlite(reg):
        from mdl.host import hostname
        from mdl.registry.sqlite import _process_start

        pid = os.getpid()  # this process: the rows count as live
        with _db(reg) as c:
            for rid, raw in records.items():
                c.execute("INSERT OR REPLACE INTO replicas (model, id, data, host, pid, pid_start) "
                          "VALUES (?, ?, ?, ?, ?, ?)", (name, rid, raw, hostname(), pid, _process_start(pid)))
        try:
            yield
        finally:
            with _db(reg) as c:
                c.executemany("DELETE FROM replicas WHERE model = ? AND id = ?", [(name, r) for r in records])
        return
    with zk_session(reg) as zk:
        for rid, raw in records.items():
            zk.create(f"{reg.paths.replicas(name)}/{rid}", raw, ephemeral=True, makepath=True)
        yield


def add_model_named(reg: Any, name: str) -> None:
    """A pointer under a model name mdl would never accept (e.g. ``../evil``, ``a b``)."""
    if _is_sqlite(reg):
        with _db(reg) as c:
            c.execute("INSERT INTO pointers (model, doc, revision) VALUES (?, '{}', 0)", (name,))
        return
    with zk_session(reg) as zk:
        zk.create(f"{reg.paths.models()}/{name}/pointer", b"{}", makepath=True)


def write_lifecycle(reg: Any, name: str, raw: Any) -> None:
    """Overwrite the stored lifecycle document (pins, tombstones) of ``name``, as a hostile writer would."""
    _write_document(reg, "lifecycle", reg.paths.lifecycle if not _is_sqlite(reg) else None, name, raw)


def write_rollout(reg: Any, name: str, raw: Any) -> None:
    """Overwrite the stored rollout document of ``name``, as a hostile writer would."""
    _write_document(reg, "rollouts", reg.paths.rollout if not _is_sqlite(reg) else None, name, raw)
