"""The embedded registry: SQLite in WAL mode, safe for many processes on one machine.

Compare-and-set is a ``BEGIN IMMEDIATE`` transaction; a watch polls the pointer's revision every
50 ms (well inside the 200 ms notification target); a replica row records its process id and start
time and counts as live only while that process runs.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mdl.errors import CasConflict, ConfigError, InvalidInput, MdlError, Unavailable
from mdl.host import hostname, now_iso
from mdl.names import validate_name
from mdl.registry.base import (
    MANIFEST_COPY_MAX,
    NO_REVISION,
    HistoryEntry,
    Lifecycle,
    Pointer,
    PointerCallback,
    Registry,
    Replica,
    ReplicaHandle,
    ReplicasCallback,
    Rollout,
    Watch,
    deliver,
    deliver_replicas,
    parse_history_entry,
    parse_lifecycle,
    parse_pointer,
    parse_replica_data,
    parse_rollout,
    rollout_to_write,
)
from mdl.retry import Backoff

log = logging.getLogger("mdl.registry.sqlite")

POLL_SECONDS = 0.05
REPLICA_RELIST_SECONDS = 1.0  # a replica watch re-lists at least this often: a killed process leaves its row
OPEN_BACKOFF = Backoff(base=0.02, cap=0.06)  # processes opening one new database at once
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
CREATE TABLE IF NOT EXISTS lifecycle (model TEXT PRIMARY KEY, doc TEXT NOT NULL, revision INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rollouts (model TEXT PRIMARY KEY, doc TEXT NOT NULL, revision INTEGER NOT NULL);
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
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return False  # not a process (0 and negative pids would name process groups; os.kill overflows)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _process_start(pid) == start


class SqliteRegistry(Registry):
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        """``timeout``: seconds a statement waits for a database another process holds locked
        (then Unavailable, exit 6)."""
        self.url = url
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"registry.url {url!r} names a host; use sqlite:///absolute/path.db")
        self.path = Path(unquote(parsed.path))
        if not parsed.path or parsed.path.endswith("/") or "\0" in str(self.path):
            raise ConfigError(f"registry.url {url!r} names no database file; use sqlite:///absolute/path.db")
        self.timeout = float(timeout)
        self._lock = threading.RLock()
        self._conn = self._connect()

    def _unavailable(self, exc: sqlite3.Error) -> Unavailable:
        """A database error as mdl's: a database held locked by another process is 'busy'."""
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return Unavailable(
                f"registry {str(self.path)!r} is locked/busy: another process held it for more than {self.timeout:g} s",
                hint="retry; if it persists, find the process holding the database open "
                "(fuser/lsof); registry.timeout sets how long mdl waits",
            )
        return Unavailable(
            f"registry {str(self.path)!r}: {text}",
            hint="check registry.url and that the database file is an mdl registry",
        )

    def _connect(self) -> sqlite3.Connection:
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            conn: sqlite3.Connection | None = None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                _add_history_columns(conn)
                return conn
            except sqlite3.OperationalError as exc:
                # Processes opening a new database at once: switching it to WAL can answer "locked"
                # at once, without the busy timeout. Only that is retried.
                if conn is not None:
                    conn.close()
                if "locked" in str(exc) and time.monotonic() > deadline:
                    raise self._unavailable(exc) from None
                if "locked" not in str(exc):
                    raise Unavailable(
                        f"cannot open registry {str(self.path)!r}: {exc}",
                        hint="check registry.url and that its directory is writable",
                    ) from None
                attempt += 1
                OPEN_BACKOFF.sleep(attempt)
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                if "not a database" in str(exc):
                    raise ConfigError(
                        f"registry.url {self.url!r}: {str(self.path)!r} is not an SQLite database",
                        hint="point registry.url at an mdl registry or a new file",
                    ) from None
                raise Unavailable(
                    f"cannot open registry {str(self.path)!r}: {exc}",
                    hint="check registry.url and that its directory is writable",
                ) from None
            except (OSError, sqlite3.Error) as exc:
                if conn is not None:
                    conn.close()
                raise Unavailable(
                    f"cannot open registry {str(self.path)!r}: {exc}",
                    hint="check registry.url and that its directory is writable",
                ) from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on the shared connection: committed if the block ends,
        rolled back if it raises; an SQLite error is Unavailable (exit 6)."""
        with self._lock:
            c = self._conn
            try:
                c.execute("BEGIN IMMEDIATE")
                try:
                    yield c
                    c.execute("COMMIT")
                except BaseException:
                    _rollback(c)
                    raise
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None

    def _pointer_of(self, name: str, row: tuple | None) -> tuple[dict[str, str], int]:
        """(aliases, revision) of a ``pointers`` row, checked (anyone who can write the file can write it)."""
        if row is None:
            return {}, NO_REVISION
        doc, revision = row
        where = f"row {name!r} of table pointers in {self.path}"
        hint = f"fix or delete that row, e.g. with: sqlite3 {self.path} \"DELETE FROM pointers WHERE model = '{name}'\""
        aliases = parse_pointer(doc, name, where, hint=hint)
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            from mdl.errors import IntegrityError

            raise IntegrityError(f"the pointer of {name!r} ({where}) has an invalid revision {revision!r}", hint=hint)
        return aliases, revision

    def get(self, name: str) -> Pointer:
        validate_name(name)
        rows = self._query("SELECT doc, revision FROM pointers WHERE model = ?", (name,))
        aliases, revision = self._pointer_of(name, rows[0] if rows else None)
        return Pointer(name, aliases, revision)

    def cas(
        self,
        name: str,
        alias: str,
        version: str | None,
        expected_revision: int,
        who: str,
        action: str,
        lifecycle_revision: int | None = None,
    ) -> Pointer:
        validate_name(name)
        with self._transaction() as c:
            row = c.execute("SELECT doc, revision FROM pointers WHERE model = ?", (name,)).fetchone()
            doc, revision = self._pointer_of(name, row)
            if revision != expected_revision:
                raise CasConflict(f"the pointer of {name!r} changed concurrently")
            if lifecycle_revision is not None and self._lifecycle_in(c, name).revision != lifecycle_revision:
                raise CasConflict(f"the lifecycle document of {name!r} changed concurrently")
            previous = doc.get(alias)
            if version is None:
                doc.pop(alias, None)
            else:
                doc[alias] = version
            new_rev = revision + 1 if row else 0
            c.execute(
                "INSERT INTO pointers (model, doc, revision) VALUES (?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET doc = excluded.doc, revision = excluded.revision",
                (name, json.dumps(doc, sort_keys=True), new_rev),
            )
            c.execute(
                "INSERT INTO history (model, alias, from_version, to_version, who, at, action) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, alias, previous, version, who, now_iso(), action),
            )
        return Pointer(name, doc, new_rev)

    def put_manifest(self, name: str, version: str, data: bytes) -> None:
        validate_name(name)
        if len(data) <= MANIFEST_COPY_MAX:
            self._query(
                "INSERT OR IGNORE INTO manifests (model, version, data) VALUES (?, ?, ?)", (name, version, data)
            )

    def get_manifest(self, name: str, version: str) -> bytes | None:
        validate_name(name)
        rows = self._query("SELECT data FROM manifests WHERE model = ? AND version = ?", (name, version))
        if not rows or not isinstance(rows[0][0], (bytes, str)):
            return None  # none, or not what mdl stores (bytes(n) of a stored number n would be n zero bytes)
        data = rows[0][0]
        return data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)

    def _lifecycle_in(self, c: sqlite3.Connection, name: str) -> Lifecycle:
        row = c.execute("SELECT doc, revision FROM lifecycle WHERE model = ?", (name,)).fetchone()
        if row is None:
            return Lifecycle(name, {}, {}, NO_REVISION)
        doc, revision = row
        where = f"row {name!r} of table lifecycle in {self.path}"
        pins, tombstones = parse_lifecycle(doc, name, where)
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            from mdl.errors import IntegrityError

            raise IntegrityError(f"the lifecycle document of {name!r} ({where}) has an invalid revision {revision!r}")
        return Lifecycle(name, pins, tombstones, revision)

    def lifecycle(self, name: str) -> Lifecycle:
        validate_name(name)
        with self._lock:
            try:
                return self._lifecycle_in(self._conn, name)
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None

    def set_lifecycle(
        self,
        lifecycle: Lifecycle,
        expected_revision: int,
        pointer_revision: int | None,
        entry: dict[str, str | None] | None,
    ) -> Lifecycle:
        name = validate_name(lifecycle.name)
        with self._transaction() as c:
            if self._lifecycle_in(c, name).revision != expected_revision:
                raise CasConflict(f"the lifecycle document of {name!r} changed concurrently")
            if pointer_revision is not None:
                row = c.execute("SELECT doc, revision FROM pointers WHERE model = ?", (name,)).fetchone()
                if self._pointer_of(name, row)[1] != pointer_revision:
                    raise CasConflict(f"the pointer of {name!r} changed concurrently")
            new_rev = expected_revision + 1  # NO_REVISION (-1) -> 0, as a new pointer
            c.execute(
                "INSERT INTO lifecycle (model, doc, revision) VALUES (?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET doc = excluded.doc, revision = excluded.revision",
                (name, lifecycle.to_json().decode(), new_rev),
            )
            if entry is not None:
                c.execute(
                    "INSERT INTO history (model, alias, from_version, to_version, who, at, action, version,"
                    " rule) VALUES (?, '', NULL, NULL, ?, ?, ?, ?, ?)",
                    (name, entry["who"], now_iso(), entry["action"], entry["version"], entry.get("rule")),
                )
        return lifecycle._replace(revision=new_rev)

    def _rollout_of(self, name: str, row: tuple | None) -> Rollout:
        """The Rollout of a ``rollouts`` row, checked (anyone who can write the file can write it)."""
        if row is None:
            return Rollout(name, None, NO_REVISION)
        doc, revision = row
        where = f"row {name!r} of table rollouts in {self.path}"
        hint = f"fix or delete that row, e.g. with: sqlite3 {self.path} \"DELETE FROM rollouts WHERE model = '{name}'\""
        checked = parse_rollout(doc, name, where, hint=hint)
        if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
            from mdl.errors import IntegrityError

            raise IntegrityError(
                f"the rollout document of {name!r} ({where}) has an invalid revision {revision!r}", hint=hint
            )
        return Rollout(name, checked, revision)

    def _read_rows(self, name: str) -> tuple[tuple | None, tuple | None]:
        """The pointer and rollout rows of ``name``, read in one transaction (a consistent pair)."""
        with self._lock:
            c = self._conn
            try:
                c.execute("BEGIN")
                try:
                    pointer = c.execute("SELECT doc, revision FROM pointers WHERE model = ?", (name,)).fetchone()
                    rollout = c.execute("SELECT doc, revision FROM rollouts WHERE model = ?", (name,)).fetchone()
                finally:
                    _rollback(c)  # read only: nothing to commit
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None
        return pointer, rollout

    def rollout(self, name: str) -> Rollout:
        validate_name(name)
        rows = self._query("SELECT doc, revision FROM rollouts WHERE model = ?", (name,))
        return self._rollout_of(name, rows[0] if rows else None)

    def get_with_rollout(self, name: str) -> Pointer:
        validate_name(name)
        pointer_row, rollout_row = self._read_rows(name)
        aliases, revision = self._pointer_of(name, pointer_row)
        return Pointer(name, aliases, revision, self._rollout_of(name, rollout_row))

    def set_rollout(
        self, name: str, doc: dict[str, Any], expected_revision: int, entry: dict[str, str | None] | None
    ) -> Rollout:
        validate_name(name)
        checked, record = rollout_to_write(name, doc, entry)
        with self._transaction() as c:
            row = c.execute("SELECT doc, revision FROM rollouts WHERE model = ?", (name,)).fetchone()
            # only the revision matters: a document mdl cannot read may be replaced by a good one
            revision = row[1] if row else NO_REVISION
            if revision != expected_revision or (row is not None and type(revision) is not int):
                raise CasConflict(f"the rollout of {name!r} changed concurrently")
            new_rev = expected_revision + 1  # NO_REVISION (-1) -> 0, as a new pointer
            c.execute(
                "INSERT INTO rollouts (model, doc, revision) VALUES (?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET doc = excluded.doc, revision = excluded.revision",
                (name, json.dumps(checked, sort_keys=True), new_rev),
            )
            if record is not None:
                c.execute(
                    "INSERT INTO history (model, alias, from_version, to_version, who, at, action, version,"
                    " rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        record["alias"],
                        record["from"],
                        record["to"],
                        record["who"],
                        now_iso(),
                        record["action"],
                        record["version"],
                        record["rule"],
                    ),
                )
        return Rollout(name, checked, new_rev)

    def history(self, name: str) -> list[HistoryEntry]:
        validate_name(name)
        rows = self._query(
            "SELECT seq, alias, from_version, to_version, who, at, action, version, rule FROM history "
            "WHERE model = ? ORDER BY seq",
            (name,),
        )
        entries = []
        for seq, alias, frm, to, who, at, action, version, rule in rows:
            entry = parse_history_entry(
                seq,
                {"alias": alias, "from": frm, "to": to, "who": who, "at": at, "action": action, "version": version}
                | ({"rule": rule} if rule is not None else {}),
            )
            if entry is None:
                log.warning("skipping unreadable history entry %r of %r in %s", seq, name, self.path)
            else:
                entries.append(entry)
        return entries

    def list_models(self) -> list[str]:
        return [m for (m,) in self._query("SELECT model FROM pointers ORDER BY model") if _valid_name(m)]

    def watch(self, name: str, callback: PointerCallback) -> Watch:
        validate_name(name)
        w = Watch()
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None

        def loop() -> None:
            seen: Any = None  # (pointer revision, rollout revision) at the last good read
            bad: str | None = None  # the last unreadable pointer's error (logged once)
            bad_rollout: str | None = None  # likewise for the rollout document
            good: Rollout | None = None  # the last readable rollout: served while the stored one is not
            delivered: Any = None  # (pointer revision, revision of the rollout delivered with it)
            retry_at = 0.0
            try:
                while not w.stopped:
                    try:
                        row = conn.execute(
                            "SELECT (SELECT revision FROM pointers WHERE model = ?),"
                            " (SELECT revision FROM rollouts WHERE model = ?)",
                            (name, name),
                        ).fetchone()
                    except sqlite3.Error:
                        row, seen = None, None  # re-read next round; what is served stays as is
                    else:
                        revisions = (
                            NO_REVISION if row[0] is None else row[0],
                            NO_REVISION if row[1] is None else row[1],
                        )
                        if revisions != seen or (bad is not None and time.monotonic() >= retry_at):
                            seen = revisions
                            try:
                                pointer_row, rollout_row = self._read_rows(name)
                                aliases, revision = self._pointer_of(name, pointer_row)
                            except MdlError as exc:  # unreadable or locked: keep what is served, look again
                                if exc.message != bad:
                                    log.warning("%s", exc.message)
                                bad, retry_at = exc.message, time.monotonic() + 1.0
                            else:
                                bad = None
                                try:
                                    good, bad_rollout = self._rollout_of(name, rollout_row), None
                                except Exception as exc:  # fail static: the last good rollout stays
                                    message = exc.message if isinstance(exc, MdlError) else repr(exc)
                                    if message != bad_rollout:
                                        log.warning("%s", message)
                                    bad_rollout = message
                                key = (revision, None if good is None else good.revision)
                                if key != delivered and not w.stopped:
                                    delivered = key
                                    deliver(callback, Pointer(name, aliases, revision, good))
                    w.wait_stopped(POLL_SECONDS)
            except Exception:  # never a traceback from the watch thread
                log.exception("watching the pointer of %r in %s failed", name, self.path)
            finally:
                conn.close()

        threading.Thread(target=loop, name=f"mdl-watch-{name}", daemon=True).start()
        return w

    def register_replica(self, name: str, replica_id: str, data: dict[str, Any]) -> ReplicaHandle:
        validate_name(name)
        return _SqliteReplica(self, name, replica_id, data)

    def list_replicas(self, name: str) -> list[Replica]:
        validate_name(name)
        live = []
        for rid, data in _live_replica_rows(self._query, name):
            record = parse_replica_data(data) if isinstance(rid, str) else None
            if record is None:
                log.warning("skipping unreadable replica record %r of %r in %s", rid, name, self.path)
                continue
            live.append(Replica(rid, record))
        return live

    def watch_replicas(self, name: str, callback: ReplicasCallback) -> Watch:
        """Polls (SQLite has no notifications): every POLL_SECONDS ``PRAGMA data_version`` on the watch's
        own connection, which changes when another connection commits; a re-list when it did, and every
        REPLICA_RELIST_SECONDS anyway (a SIGKILLed process leaves its row; only a re-list drops it)."""
        validate_name(name)
        w = _ReplicaWatch()
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None

        def query(sql: str, args: tuple = ()) -> list[tuple]:
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None

        def loop() -> None:
            seen: Any = None  # data_version at the last good re-list
            relist_at = 0.0
            last: tuple | None = None  # (id, stored data) of the list last delivered
            bad: str | None = None  # the last error logged (once, not every retry)
            warned: set[tuple] = set()  # unreadable records logged already
            try:
                while not w.stopped:
                    try:
                        version = query("PRAGMA data_version")[0][0]
                        if version != seen or time.monotonic() >= relist_at:
                            rows = _live_replica_rows(query, name)
                            seen, relist_at = version, time.monotonic() + REPLICA_RELIST_SECONDS
                            readable = []
                            for rid, data in rows:
                                record = parse_replica_data(data) if isinstance(rid, str) else None
                                if record is not None:
                                    readable.append((rid, data, record))
                                elif (rid, data) not in warned and len(warned) < 10_000:
                                    warned.add((rid, data))
                                    log.warning(
                                        "skipping unreadable replica record %r of %r in %s", rid, name, self.path
                                    )
                            key = tuple((rid, data) for rid, data, _ in readable)
                            w.readable, bad = True, None
                            if key != last and not w.stopped:
                                last = key
                                deliver_replicas(callback, name, [Replica(rid, rec) for rid, _, rec in readable])
                    except MdlError as exc:  # unreadable or locked: deliver nothing, look again
                        w.readable, seen = False, None
                        if exc.message != bad:
                            log.warning("%s", exc.message)
                        bad = exc.message
                    except Exception as exc:  # a bug: logged once, and the watch goes on (never a traceback)
                        w.readable, seen = False, None
                        if repr(exc) != bad:
                            log.exception("watching the replicas of %r in %s failed", name, self.path)
                        bad = repr(exc)
                    w.wait_stopped(POLL_SECONDS)
            finally:
                w.readable = False
                conn.close()

        threading.Thread(target=loop, name=f"mdl-watch-replicas-{name}", daemon=True).start()
        return w

    @contextmanager
    def _slot(self, name: str, limit: int, pool: str) -> Iterator[None]:
        if pool != "download":  # another pool of the same model: its own key ('/' is never in a model name)
            name = f"{name}/{pool}"
        holder = f"{os.getpid()}-{threading.get_ident()}-{os.urandom(3).hex()}"
        pid, host = os.getpid(), hostname()
        while True:
            with self._lock:
                c = self._conn
                try:
                    c.execute("BEGIN IMMEDIATE")
                    try:
                        rows = c.execute(
                            "SELECT holder, host, pid, pid_start FROM slots WHERE model = ?", (name,)
                        ).fetchall()
                        live = 0
                        for h, hst, p, start in rows:
                            if _alive(hst, p, start):
                                live += 1
                            else:
                                c.execute("DELETE FROM slots WHERE model = ? AND holder = ?", (name, h))
                        if live < limit:
                            c.execute(
                                "INSERT INTO slots VALUES (?, ?, ?, ?, ?)",
                                (name, holder, host, pid, _process_start(pid)),
                            )
                        c.execute("COMMIT")
                    except BaseException:
                        _rollback(c)
                        raise
                except sqlite3.Error as exc:
                    raise self._unavailable(exc) from None
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


def _add_history_columns(c: sqlite3.Connection) -> None:
    """A registry made before pins and deletions: its history table gains their two columns."""
    have = {row[1] for row in c.execute("PRAGMA table_info(history)")}
    for column in ("version", "rule"):
        if column not in have:
            try:
                c.execute(f"ALTER TABLE history ADD COLUMN {column} TEXT")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise


def _live_replica_rows(query: Callable[[str, tuple], list[tuple]], name: str) -> list[tuple[Any, Any]]:
    """(id, stored data) of the replica rows of ``name`` whose process runs, by id; the rows of dead
    processes are deleted on the way (``query`` runs one statement)."""
    live = []
    for rid, data, host, pid, start in query(
        "SELECT id, data, host, pid, pid_start FROM replicas WHERE model = ? ORDER BY id", (name,)
    ):
        if _alive(host, pid, start):
            live.append((rid, data))
        else:
            query("DELETE FROM replicas WHERE model = ? AND id = ? AND pid = ?", (name, rid, pid))
    return live


class _ReplicaWatch(Watch):
    """A polling replica watch: ``live`` only while its last look at the database succeeded."""

    def __init__(self) -> None:
        super().__init__()
        self.readable = False

    @property
    def live(self) -> bool:
        return not self.stopped and self.readable


def _rollback(c: sqlite3.Connection) -> None:
    """End a failed transaction; never hides the error that failed it."""
    try:
        c.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction is open (SQLite rolled it back itself)


def _valid_name(name: Any) -> bool:
    try:
        validate_name(name)
    except InvalidInput:
        log.warning("skipping the pointer of an invalid model name %r", name)
        return False
    return True


class _SqliteReplica(ReplicaHandle):
    def __init__(self, reg: SqliteRegistry, name: str, replica_id: str, data: dict[str, Any]) -> None:
        self._reg, self._name, self.id, self._data = reg, name, replica_id, dict(data)
        pid = os.getpid()
        reg._query(
            "INSERT OR REPLACE INTO replicas (model, id, data, host, pid, pid_start) VALUES (?, ?, ?, ?, ?, ?)",
            (name, replica_id, json.dumps(self._data), hostname(), pid, _process_start(pid)),
        )

    def update(self, **data: Any) -> None:
        self._data.update(data)
        self._reg._query(
            "UPDATE replicas SET data = ? WHERE model = ? AND id = ?", (json.dumps(self._data), self._name, self.id)
        )

    def close(self) -> None:
        self._reg._query("DELETE FROM replicas WHERE model = ? AND id = ?", (self._name, self.id))
