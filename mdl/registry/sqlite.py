"""The embedded registry: SQLite in WAL mode, safe for many processes on one machine.

Compare-and-set is a ``BEGIN IMMEDIATE`` transaction; a watch polls the pointer's revision every
50 ms (well inside the 200 ms notification target); a replica row records its process id and start
time and counts as live only while that process runs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlparse

from mdl.errors import CasConflict, ConfigError, Unavailable
from mdl.manifest import hostname, now_iso
from mdl.names import validate_name
from mdl.registry.base import (
    MANIFEST_COPY_MAX, NO_REVISION, HistoryEntry, Pointer, PointerCallback, Registry, Replica, ReplicaHandle, Watch,
    deliver,
)

POLL_SECONDS = 0.05
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pointers (model TEXT PRIMARY KEY, doc TEXT NOT NULL, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, alias TEXT NOT NULL,
    from_version TEXT, to_version TEXT, who TEXT NOT NULL, at TEXT NOT NULL, action TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_model ON history (model, seq);
CREATE TABLE IF NOT EXISTS slots (
    model TEXT NOT NULL, holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    pid_start TEXT NOT NULL, PRIMARY KEY (model, holder));
CREATE TABLE IF NOT EXISTS manifests (
    model TEXT NOT NULL, version TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (model, version));
CREATE TABLE IF NOT EXISTS replicas (
    model TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, host TEXT NOT NULL,
    pid INTEGER NOT NULL, pid_start TEXT NOT NULL, PRIMARY KEY (model, id));
"""


def _process_start(pid: int) -> str:
    """An id of the process's start (its start time in clock ticks): pids are reused, this is not."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(host: str, pid: int, start: str) -> bool:
    if host != hostname():
        return True  # not ours to judge
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _process_start(pid) == start


class SqliteRegistry(Registry):
    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"registry.url {url!r} names a host; use sqlite:///absolute/path.db")
        self.path = Path(unquote(parsed.path))
        self._lock = threading.RLock()
        self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        deadline = time.monotonic() + 30
        while True:
            conn: sqlite3.Connection | None = None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                return conn
            except sqlite3.OperationalError as exc:
                # Processes opening a new database at once: switching it to WAL can answer "locked"
                # at once, without the busy timeout. Only that is retried.
                if conn is not None:
                    conn.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise Unavailable(f"cannot open registry {str(self.path)!r}: {exc}",
                                      hint="check registry.url and that its directory is writable") from None
                time.sleep(0.01 + int.from_bytes(os.urandom(1), "big") / 5000)  # 10..60 ms, not in lockstep
            except (OSError, sqlite3.Error) as exc:
                raise Unavailable(f"cannot open registry {str(self.path)!r}: {exc}",
                                  hint="check registry.url and that its directory is writable") from None

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise Unavailable(f"registry {str(self.path)!r}: {exc}") from None

    def get(self, name: str) -> Pointer:
        validate_name(name)
        rows = self._query("SELECT doc, revision FROM pointers WHERE model = ?", (name,))
        if not rows:
            return Pointer(name, {}, NO_REVISION)
        return Pointer(name, json.loads(rows[0][0]), rows[0][1])

    def cas(self, name: str, alias: str, version: str | None, expected_revision: int,
            who: str, action: str) -> Pointer:
        validate_name(name)
        with self._lock:
            c = self._conn
            try:
                c.execute("BEGIN IMMEDIATE")
                try:
                    row = c.execute("SELECT doc, revision FROM pointers WHERE model = ?", (name,)).fetchone()
                    doc, revision = (json.loads(row[0]), row[1]) if row else ({}, NO_REVISION)
                    if revision != expected_revision:
                        raise CasConflict(f"the pointer of {name!r} changed concurrently")
                    previous = doc.get(alias)
                    if version is None:
                        doc.pop(alias, None)
                    else:
                        doc[alias] = version
                    new_rev = revision + 1 if row else 0
                    c.execute(
                        "INSERT INTO pointers (model, doc, revision) VALUES (?, ?, ?) "
                        "ON CONFLICT (model) DO UPDATE SET doc = excluded.doc, revision = excluded.revision",
                        (name, json.dumps(doc, sort_keys=True), new_rev))
                    c.execute(
                        "INSERT INTO history (model, alias, from_version, to_version, who, at, action) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", (name, alias, previous, version, who, now_iso(), action))
                    c.execute("COMMIT")
                except BaseException:
                    c.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise Unavailable(f"registry {str(self.path)!r}: {exc}") from None
        return Pointer(name, doc, new_rev)

    def put_manifest(self, name: str, version: str, data: bytes) -> None:
        validate_name(name)
        if len(data) <= MANIFEST_COPY_MAX:
            self._query("INSERT OR IGNORE INTO manifests (model, version, data) VALUES (?, ?, ?)",
                        (name, version, data))

    def get_manifest(self, name: str, version: str) -> bytes | None:
        validate_name(name)
        rows = self._query("SELECT data FROM manifests WHERE model = ? AND version = ?", (name, version))
        return bytes(rows[0][0]) if rows else None

    def history(self, name: str) -> list[HistoryEntry]:
        validate_name(name)
        rows = self._query(
            "SELECT seq, alias, from_version, to_version, who, at, action FROM history "
            "WHERE model = ? ORDER BY seq", (name,))
        return [HistoryEntry(*r) for r in rows]

    def list_models(self) -> list[str]:
        return [r[0] for r in self._query("SELECT model FROM pointers ORDER BY model")]

    def watch(self, name: str, callback: PointerCallback) -> Watch:
        validate_name(name)
        w = Watch()
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)

        def loop() -> None:
            seen: int | None = None
            try:
                while not w.stopped:
                    try:
                        row = conn.execute("SELECT revision FROM pointers WHERE model = ?", (name,)).fetchone()
                    except sqlite3.Error:
                        row, seen = None, None  # re-read next round; what is served stays as is
                    else:
                        revision = row[0] if row else NO_REVISION
                        if revision != seen:
                            seen = revision
                            deliver(callback, self.get(name))
                    w._stopped.wait(POLL_SECONDS)
            finally:
                conn.close()

        threading.Thread(target=loop, name=f"mdl-watch-{name}", daemon=True).start()
        return w

    def register_replica(self, name: str, replica_id: str, data: dict[str, Any]) -> ReplicaHandle:
        validate_name(name)
        return _SqliteReplica(self, name, replica_id, data)

    def list_replicas(self, name: str) -> list[Replica]:
        validate_name(name)
        rows = self._query("SELECT id, data, host, pid, pid_start FROM replicas WHERE model = ? ORDER BY id",
                           (name,))
        live = []
        for rid, data, host, pid, start in rows:
            if _alive(host, pid, start):
                live.append(Replica(rid, json.loads(data)))
            else:
                self._query("DELETE FROM replicas WHERE model = ? AND id = ? AND pid = ?", (name, rid, pid))
        return live

    @contextmanager
    def _slot(self, name: str, limit: int) -> Iterator[None]:
        holder = f"{os.getpid()}-{threading.get_ident()}-{os.urandom(3).hex()}"
        pid, host = os.getpid(), hostname()
        while True:
            with self._lock:
                c = self._conn
                c.execute("BEGIN IMMEDIATE")
                try:
                    rows = c.execute("SELECT holder, host, pid, pid_start FROM slots WHERE model = ?", (name,)).fetchall()
                    live = 0
                    for h, hst, p, start in rows:
                        if _alive(hst, p, start):
                            live += 1
                        else:
                            c.execute("DELETE FROM slots WHERE model = ? AND holder = ?", (name, h))
                    if live < limit:
                        c.execute("INSERT INTO slots VALUES (?, ?, ?, ?, ?)", (name, holder, host, pid,
                                                                              _process_start(pid)))
                    c.execute("COMMIT")
                except BaseException:
                    c.execute("ROLLBACK")
                    raise
            if live < limit:
                break
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            self._query("DELETE FROM slots WHERE model = ? AND holder = ?", (name, holder))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _SqliteReplica(ReplicaHandle):
    def __init__(self, reg: SqliteRegistry, name: str, replica_id: str, data: dict[str, Any]) -> None:
        self._reg, self._name, self.id, self._data = reg, name, replica_id, dict(data)
        pid = os.getpid()
        reg._query(
            "INSERT OR REPLACE INTO replicas (model, id, data, host, pid, pid_start) VALUES (?, ?, ?, ?, ?, ?)",
            (name, replica_id, json.dumps(self._data), hostname(), pid, _process_start(pid)))

    def update(self, **data: Any) -> None:
        self._data.update(data)
        self._reg._query("UPDATE replicas SET data = ? WHERE model = ? AND id = ?",
                         (json.dumps(self._data), self._name, self.id))

    def close(self) -> None:
        self._reg._query("DELETE FROM replicas WHERE model = ? AND id = ?", (self._name, self.id))
