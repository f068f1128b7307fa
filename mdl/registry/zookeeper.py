"""The distributed registry: pointers, history and replicas in a ZooKeeper ensemble (kazoo).

``registry.url`` is ``zk://h1:2181,h2:2181,h3:2181/chroot`` (port 2181 if left out; chroot ``/mdl``
if the URL has no path). Layout under the chroot::

    <chroot>/models/<name>/pointer               JSON alias -> version, e.g.
                                                 {"latest": "20261127T171300Z"}
                                                 (sorted keys, readable by any ZooKeeper client);
                                                 its znode version is Pointer.revision
                                                 (NO_REVISION = -1 while the node does not exist)
    <chroot>/models/<name>/history/h-0000000042  one persistent sequential node per move, JSON
                                                 {"alias", "from", "to", "who", "at", "action", "op"}
                                                 ("op" is a random id of the move); seq = 42
    <chroot>/models/<name>/replicas/<id>         EPHEMERAL, the replica's JSON data
    <chroot>/models/<name>/slots/s-<holder>-0000000007
                                                 EPHEMERAL_SEQUENTIAL download-slot queue: a holder
                                                 owns a slot while fewer than ``limit`` nodes precede it

A model exists in the registry when its ``pointer`` node does (``list_models``).

Compare-and-set is one ZooKeeper multi-op transaction: ``setData(pointer, version=expected)`` (or
``create(pointer)`` when the expected revision is -1) plus ``create(history/h-, SEQUENTIAL)``.
Either both happen or neither; a lost race shows up as BadVersion / NodeExists in the results
(kazoo's ``commit`` does not raise) and becomes CasConflict. If the connection drops while the
transaction is in flight, the outcome is resolved after reconnecting (``sync`` + look for the
move's ``op`` id in the history) before it is re-sent; every attempt carries the same expected
version, so at most one can apply: a move is never recorded twice.

Reads are preceded by a ``sync`` (pipelined with them, one round trip): ZooKeeper followers may
lag, and without it a read in another process right after an acknowledged move could miss it.

Time limits: every call (including the lazy first connect) finishes within ``registry.timeout``
seconds or raises Unavailable (exit 6) naming the hosts; ``registry.timeout`` is also the
session timeout asked for (ZooKeeper clamps it to 2..20 ticks). The kazoo client keeps
reconnecting in the background (bounded backoff), so long-running watchers and replicas recover
by themselves; requests are only sent while connected and each waits at most until its deadline.

Watches are level-triggered: a one-shot ZooKeeper watch (``getData``/``exists`` with a watcher,
re-armed on every read, the same mechanism as kazoo's DataWatch) and the connection listener only
put a token on the watch's queue; the watch's own thread re-reads the pointer and calls back when
its (revision, mzxid) differs from the last delivered one (and once at start). After every
reconnect (SUSPENDED or LOST -> CONNECTED) the pointer is re-read, catching up with moves missed
while disconnected; while disconnected nothing is delivered (the caller keeps what it serves).
kazoo's callback and connection threads never block on our account. (kazoo's DataWatch recipe
itself is not used: its constructor reads synchronously, blocking the caller while disconnected,
and its re-reads retry without bound, up to 60 s apart, on kazoo's callback thread, which can
stall every other watch and ``close``.)

Replicas are ephemeral nodes: they vanish when ``close`` is called, the registry is closed, or the
session expires (process death). After a lost session a maintenance thread re-creates them (with
their latest data) on reconnect; registering an id held by another session takes it over.

Access control: with digest credentials (``registry.digest_file``, else env
``MDL_REGISTRY_DIGEST``, holding ``user:password``) the client authenticates with them and creates
every node with ``digest:user:<hash>`` ALL, plus ``world:anyone`` READ when ``registry.read_acl``
is ``world``. Others can then read but not move pointers (PermissionDenied), nor register replicas.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import select
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from mdl.errors import (
    CasConflict, ConfigError, InvalidInput, MdlError, PermissionDenied, Unavailable,
)
from mdl.host import now_iso
from mdl.names import validate_name
from mdl.registry.base import (
    MANIFEST_COPY_MAX, NO_REVISION, HistoryEntry, Pointer, PointerCallback, Registry, Replica, ReplicaHandle, Watch,
    deliver, parse_history_entry, parse_pointer, parse_replica_data,
)

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import (
        AuthFailedError, BadVersionError, ConnectionClosedError, ConnectionLoss, KazooException, NoAuthError,
        NodeExistsError, NoNodeError, OperationTimeoutError, RolledBackError, RuntimeInconsistency,
        SessionExpiredError,
    )
    from kazoo.handlers.threading import KazooTimeoutError, SequentialThreadingHandler
    from kazoo.protocol.states import KazooState, KeeperState
    from kazoo.retry import KazooRetry
    from kazoo.security import OPEN_ACL_UNSAFE, make_acl, make_digest_acl
except ImportError:  # pragma: no cover - the "distributed" extra is not installed
    KazooClient = None  # type: ignore[assignment,misc]
else:

    class _Handler(SequentialThreadingHandler):
        """kazoo's threading handler, waiting on sockets with one select(2) where it can.

        kazoo's own ``select`` builds, fills and closes an epoll instance for every wait (so that
        descriptors above 1023 work), and its connection loop waits several times per message: for
        a watcher switching versions that was about 20 waits, a millisecond or two of CPU each time.
        """

        def select(self, *args: Any, **kwargs: Any) -> Any:
            if all(_fd(o) < 1024 for o in itertools.chain(*args[:3])):  # FD_SETSIZE
                return select.select(*args, **kwargs)
            return super().select(*args, **kwargs)

    def _fd(o: Any) -> int:
        return o if isinstance(o, int) else o.fileno()

if TYPE_CHECKING:
    from mdl.config import Config

DEFAULT_CHROOT = "/mdl"
DEFAULT_PORT = 2181
DIGEST_ENV = "MDL_REGISTRY_DIGEST"
RECONNECT_MAX_DELAY = 1.0  # seconds between reconnection rounds at most (all servers down)
HISTORY_PREFIX = "h-"
_RESOLVE_WINDOW = 256  # newest history entries searched for a move whose outcome is unknown

log = logging.getLogger("mdl.registry.zookeeper")
# kazoo logs every dropped connection at WARNING; keep that out of the CLI's stderr unless the
# application configured logging (a NullHandler stops logging's last-resort stderr handler).
_kazoo_log = logging.getLogger("mdl.registry.zookeeper.kazoo")
_kazoo_log.addHandler(logging.NullHandler())

_AMBIGUOUS = () if KazooClient is None else (ConnectionLoss, SessionExpiredError, OperationTimeoutError)


class _Stopped(Exception):
    """A wait was cancelled (watch stopped or registry closed)."""


# -- configuration ----------------------------------------------------------------------------


def parse_url(url: str) -> tuple[str, str]:
    """``zk://h1:2181,h2/chroot`` -> (``"h1:2181,h2:2181"``, ``"/chroot"``); chroot ``""`` is the root."""
    if not url.startswith("zk://"):
        raise ConfigError(f"registry.url {url!r} is not a zk:// URL")
    rest = url[len("zk://"):]
    if "?" in rest or "#" in rest:
        raise ConfigError(f"registry.url {url!r} must not have a query or fragment",
                          hint="use zk://h1:2181,h2:2181,h3:2181/chroot")
    netloc, slash, path = rest.partition("/")
    hosts = []
    for part in netloc.split(","):
        part = part.strip()
        try:
            split = urllib.parse.urlsplit("zk://" + part)
            host, port = split.hostname, split.port
        except ValueError:
            host, port = None, None
        if not part or not host or "@" in part:
            raise ConfigError(f"registry.url {url!r} has an invalid host {part!r}",
                              hint="use zk://h1:2181,h2:2181,h3:2181/chroot")
        host = f"[{host}]" if ":" in host else host
        hosts.append(f"{host}:{port or DEFAULT_PORT}")
    if not slash:
        chroot = DEFAULT_CHROOT
    else:
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or p == "zookeeper" and i == 0 for i, p in enumerate(parts)):
            raise ConfigError(f"registry.url {url!r} has an invalid chroot {('/' + path)!r}")
        chroot = "".join("/" + p for p in parts)
    return ",".join(hosts), chroot


def read_credentials(config: "Config", env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) from ``registry.digest_file``, else env MDL_REGISTRY_DIGEST, else None."""
    env = os.environ if env is None else env
    path = config["registry.digest_file"]
    if path:
        p = Path(path).expanduser()
        try:
            raw, where = p.read_text().strip(), f"registry.digest_file {str(p)!r}"
        except OSError as exc:
            raise ConfigError(f"cannot read registry.digest_file {str(p)!r}: {exc.strerror}") from None
    else:
        raw, where = (env.get(DIGEST_ENV) or "").strip(), f"env {DIGEST_ENV}"
        if not raw:
            return None
    user, sep, password = raw.partition(":")
    if not sep or not user or not password or "\n" in raw:
        raise ConfigError(f"{where} must hold one line 'user:password'")
    return user, password


# -- the registry -----------------------------------------------------------------------------


class ZooKeeperRegistry(Registry):
    def __init__(self, url: str, *, timeout: float = 10.0, credentials: tuple[str, str] | None = None,
                 read_acl: str = "world") -> None:
        if KazooClient is None:
            raise ConfigError("a zk:// registry needs the kazoo package",
                              hint="pip install 'mdl[distributed]'")
        if read_acl not in ("world", "creator"):
            raise ConfigError(f"registry.read_acl must be world or creator, got {read_acl!r}")
        self.url = url
        self.hosts, self.chroot = parse_url(url)
        self.timeout = float(timeout)
        self._credentials = credentials
        if credentials:
            user, password = credentials
            self._acl = [make_digest_acl(user, password, all=True)]
            if read_acl == "world":
                self._acl.append(make_acl("world", "anyone", read=True))
        else:
            self._acl = list(OPEN_ACL_UNSAFE)
        self._lock = threading.RLock()
        self._client: KazooClient | None = None
        self._client_dead = False
        self._closed = False
        self._stopping = threading.Event()  # interrupts kazoo's reconnection backoff on close
        self._connected = threading.Event()
        self._ever_connected = False
        self._ensured: set[str] = set()
        self._watches: set[_ZkWatch] = set()
        self._replicas: set[_ZkReplica] = set()
        self._orphans: set[str] = set()  # replica nodes whose close could not reach ZooKeeper
        self._maint_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._maint_thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, config: "Config") -> "ZooKeeperRegistry":
        return cls(config["registry.url"], timeout=config["registry.timeout"],
                   credentials=read_credentials(config), read_acl=config["registry.read_acl"])

    def __repr__(self) -> str:
        return f"ZooKeeperRegistry({self.url!r})"

    # -- paths ---------------------------------------------------------------------------------

    def _models(self) -> str:
        return f"{self.chroot}/models"

    def _model(self, name: str) -> str:
        return f"{self.chroot}/models/{name}"

    def _pointer(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/pointer"

    def _history(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/history"

    def _manifests_dir(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/manifests"

    def _replicas_dir(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/replicas"

    def _slots_dir(self, name: str) -> str:
        return f"{self.chroot}/models/{name}/slots"

    # -- connection ----------------------------------------------------------------------------

    def _started(self) -> "KazooClient":
        """The kazoo client, created and started (without waiting) on first use, and replaced if
        its connection loop died (kazoo#641: an exception in that loop ends it for good)."""
        with self._lock:
            if self._closed:
                raise Unavailable(f"the ZooKeeper registry {self.url} is closed")
            if self._client is not None and self._client_dead:
                log.warning("the ZooKeeper client of %s stopped by itself; starting a new one", self.url)
                old, self._client = self._client, None
                threading.Thread(target=_stop_client, args=(old,), name="mdl-zk-stop", daemon=True).start()
            if self._client is None:
                retry_args = dict(delay=0.05, backoff=2, max_jitter=0.4, max_delay=RECONNECT_MAX_DELAY)
                client = KazooClient(
                    hosts=self.hosts,
                    timeout=self.timeout,
                    connection_retry=KazooRetry(max_tries=-1, interrupt=self._stopping.is_set, **retry_args),
                    command_retry=KazooRetry(max_tries=3, deadline=self.timeout, **retry_args),
                    auth_data=[("digest", ":".join(self._credentials))] if self._credentials else None,
                    default_acl=self._acl,
                    logger=_kazoo_log,
                    handler=_Handler(),
                )
                client.add_listener(lambda state, c=client: self._on_state(c, state))
                self._client, self._client_dead = client, False
                client.start_async()
                self._start_maintenance()
            return self._client

    def _on_state(self, client: "KazooClient", state: str) -> None:
        """Connection listener, on kazoo's connection thread: never block here, only signal."""
        if client is not self._client:
            return  # a replaced client
        if state == KazooState.CONNECTED:
            self._ever_connected = True
            self._connected.set()
            for w in list(self._watches):
                w.poke()  # re-read: catch up with moves missed while disconnected
            self._maint_queue.put("connected")  # re-create or refresh replica nodes
            return
        self._connected.clear()
        if state == KazooState.LOST and client.client_state == KeeperState.CLOSED and not self._stopping.is_set():
            # the connection loop ended although nobody stopped it: it will never reconnect
            self._client_dead = True
            self._maint_queue.put("restart")

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def _unavailable(self, what: str, extra: str = "") -> Unavailable:
        if self._closed:
            return Unavailable(f"{what}: the ZooKeeper registry {self.url} is closed")
        client = self._client
        if client is not None and client.connected:
            msg = f"{what}: ZooKeeper at {self.hosts} did not answer within {self.timeout:g} s"
        elif self._ever_connected:
            msg = (f"{what}: lost the connection to ZooKeeper at {self.hosts} and could not reconnect "
                   f"within {self.timeout:g} s")
        else:
            msg = f"{what}: cannot connect to ZooKeeper at {self.hosts} within {self.timeout:g} s"
        return Unavailable(msg + extra, hint="check that the ZooKeeper ensemble is running and reachable "
                                             "(registry.url); registry.timeout sets how long mdl waits")

    def _connected_client(self, deadline: float, what: str, cancel: threading.Event | None) -> "KazooClient":
        while True:
            client = self._started()
            if client.connected:
                return client
            if cancel is not None and cancel.is_set():
                raise _Stopped()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._unavailable(what)
            if self._connected.is_set():  # the listener has not heard of the drop yet
                time.sleep(min(remaining, 0.01))
            else:
                self._connected.wait(min(remaining, 0.1))

    def _call_many(self, starts: Sequence[Callable[["KazooClient"], Any]], deadline: float, what: str, *,
                   idempotent: bool = True, missing_ok: bool = False,
                   cancel: threading.Event | None = None, unanswered: str = "",
                   sync: str | None = None) -> list[Any]:
        """Send requests (only while connected) and wait for every answer, all before ``deadline``.

        With ``sync`` (a path) a ``sync`` goes first: the server catches up with the leader before
        it answers the reads behind it (ZooKeeper serves one session's requests in order), so a
        read sees every write acknowledged before it, also another process's.
        Idempotent requests are re-sent after a connection loss; otherwise the kazoo exception is
        raised (the outcome is unknown). NoNodeError becomes None with ``missing_ok``.
        ``unanswered`` is added to the message when requests were sent but not answered in time.
        """
        while True:
            try:
                client = self._connected_client(deadline, what, cancel)
            except Unavailable:
                if self._closed:
                    raise _Stopped() from None
                raise
            if sync is not None:
                client.sync_async(sync)  # answered before the requests behind it
            pending = [start(client) for start in starts]
            results: list[Any] = []
            try:
                for a in pending:
                    try:
                        results.append(a.get(timeout=max(deadline - time.monotonic(), 0.001)))
                    except NoNodeError:
                        if not missing_ok:
                            raise
                        results.append(None)
                return results
            except KazooTimeoutError:
                raise self._unavailable(what, unanswered) from None
            except ConnectionClosedError:  # refused before sending: the client stopped
                if self._closed:
                    raise _Stopped() from None
                if time.monotonic() >= deadline:
                    raise self._unavailable(what) from None
                time.sleep(0.01)  # a client that died is replaced by _started()
            except _AMBIGUOUS:
                if not idempotent:
                    raise
                if time.monotonic() >= deadline:
                    raise self._unavailable(what) from None
                time.sleep(0.01)

    def _call(self, start: Callable[["KazooClient"], Any], deadline: float, what: str, **kw: Any) -> Any:
        return self._call_many([start], deadline, what, **kw)[0]

    @contextmanager
    def _errors(self, what: str, denied: str | None = None) -> Iterator[None]:
        """Turn kazoo's exceptions into mdl's."""
        try:
            yield
        except MdlError:
            raise
        except _Stopped:
            raise self._unavailable(what) from None
        except (NoAuthError, AuthFailedError):
            who = (f"the digest identity {self._credentials[0]!r} is not allowed"
                   if self._credentials else "no credentials are configured")
            raise PermissionDenied(
                f"{denied or what + ' is not allowed by the ZooKeeper ACL'} ({who})",
                hint=f"set registry.digest_file / {DIGEST_ENV} to the 'user:password' that owns the "
                     "registry nodes") from None
        except _AMBIGUOUS:
            raise self._unavailable(what) from None
        except KazooException as exc:
            raise MdlError(f"{what}: ZooKeeper error {type(exc).__name__} {exc}".rstrip()) from None

    def _ensure_path(self, path: str, deadline: float, what: str) -> None:
        """Create ``path`` and its missing ancestors with the registry's ACL."""
        cur = ""
        for comp in path.strip("/").split("/"):
            cur += "/" + comp
            if cur in self._ensured:
                continue
            node = cur
            if self._call(lambda c: c.exists_async(node), deadline, what) is None:
                try:
                    self._call(lambda c: c.create_async(node, b"", acl=self._acl), deadline, what)
                except NodeExistsError:
                    pass
            self._ensured.add(cur)

    def _session_id(self) -> int | None:
        client = self._client
        cid = client.client_id if client is not None else None
        return cid[0] if cid else None

    # -- pointer -------------------------------------------------------------------------------

    @staticmethod
    def _parse_pointer(name: str, path: str, raw: bytes | None) -> dict[str, str]:
        return parse_pointer(raw, name, f"znode {path}",
                             hint="fix or delete that znode with a ZooKeeper client (zkCli.sh set/delete)")

    def _read_pointer(self, name: str, deadline: float, what: str, *, watcher: Callable | None = None,
                      cancel: threading.Event | None = None, sync: bool = True) -> tuple[Pointer, int | None]:
        """The pointer (with ``sync``: up to date) and the mzxid of its last change (None if absent);
        arms ``watcher``."""
        path = self._pointer(name)
        while True:
            got = self._call(lambda c: c.get_async(path, watch=watcher), deadline, what, missing_ok=True,
                             cancel=cancel, sync=path if sync else None)
            if got is not None:
                raw, stat = got
                return Pointer(name, self._parse_pointer(name, path, raw), stat.version), stat.mzxid
            if watcher is None:
                return Pointer(name, {}, NO_REVISION), None
            # absent: watch for its creation; if it appeared meanwhile, read it again
            if self._call(lambda c: c.exists_async(path, watch=watcher), deadline, what, cancel=cancel) is None:
                return Pointer(name, {}, NO_REVISION), None

    def get(self, name: str) -> Pointer:
        validate_name(name)
        what = f"reading the pointer of {name!r}"
        with self._errors(what, denied=f"reading the pointer of {name!r} is not allowed by its ZooKeeper ACL"):
            return self._read_pointer(name, self._deadline(), what)[0]

    def cas(self, name: str, alias: str, version: str | None, expected_revision: int,
            who: str, action: str) -> Pointer:
        validate_name(name)
        what = f"moving {name}:{alias}"
        denied = f"the pointer of {name!r} is protected by a ZooKeeper ACL"
        deadline = self._deadline()
        with self._errors(what, denied=denied):
            pointer, _ = self._read_pointer(name, deadline, what)
            if pointer.revision != expected_revision:
                raise CasConflict(f"the pointer of {name!r} changed concurrently "
                                  f"(revision {pointer.revision}, expected {expected_revision})")
            doc = dict(pointer.aliases)
            previous = doc.get(alias)
            if version is None:
                doc.pop(alias, None)
            else:
                doc[alias] = version
            op = uuid.uuid4().hex
            entry = {"alias": alias, "from": previous, "to": version, "who": who, "at": now_iso(),
                     "action": action, "op": op}
            data = json.dumps(doc, sort_keys=True).encode()
            entry_data = json.dumps(entry, sort_keys=True).encode()
            ptr_path, hist_prefix = self._pointer(name), f"{self._history(name)}/{HISTORY_PREFIX}"
            moved = Pointer(name, doc, expected_revision + 1)  # create -> 0, setData -> expected + 1
            if expected_revision == NO_REVISION:
                self._ensure_path(self._history(name), deadline, what)

            def commit(c: "KazooClient") -> Any:
                t = c.transaction()
                if expected_revision == NO_REVISION:
                    t.create(ptr_path, data, acl=self._acl)
                else:
                    t.set_data(ptr_path, data, version=expected_revision)
                t.create(hist_prefix, entry_data, acl=self._acl, sequence=True)
                return t.commit_async()

            unknown = False  # an earlier attempt may have been applied
            for _ in range(5):
                try:
                    results = self._call(commit, deadline, what, idempotent=False,
                                         unanswered="; the move may or may not have happened (see the history)")
                except _AMBIGUOUS:
                    unknown = True
                    if self._move_applied(name, op, deadline, what):
                        return moved
                    continue  # not applied (yet): send it again; both carry version=expected, so at
                    # most one of the attempts can ever apply
                failures = [r for r in results if isinstance(r, Exception)
                            and not isinstance(r, (RolledBackError, RuntimeInconsistency))]
                if not failures:
                    return moved
                failure = failures[0]
                if isinstance(failure, (NoAuthError, AuthFailedError)):
                    raise failure
                if isinstance(failure, NoNodeError) and results[0] is not failure:
                    self._ensured.discard(self._history(name))  # history parent missing: create it
                    self._ensure_path(self._history(name), deadline, what)
                    continue
                if isinstance(failure, (BadVersionError, NodeExistsError, NoNodeError)):
                    if unknown and self._move_applied(name, op, deadline, what):
                        return moved
                    raise CasConflict(f"the pointer of {name!r} changed concurrently")
                raise failure
            raise CasConflict(f"could not move {name}:{alias}: the registry kept changing underneath")

    def _move_applied(self, name: str, op: str, deadline: float, what: str) -> bool:
        """After an in-flight transaction lost its connection: was it applied? (sync, then look)."""
        extra = "; the move may or may not have happened (see the history)"
        try:
            path = self._history(name)
            self._call(lambda c: c.sync_async(path), deadline, what)
            children = self._call(lambda c: c.get_children_async(path), deadline, what, missing_ok=True) or []
            newest = sorted((c for c in children if _seq(c) is not None), key=_seq)[-_RESOLVE_WINDOW:]
            got = self._call_many([lambda c, p=f"{path}/{n}": c.get_async(p) for n in newest], deadline, what,
                                  missing_ok=True)
        except Unavailable as exc:
            raise Unavailable(exc.message + extra, hint=exc.hint) from None
        except _AMBIGUOUS:
            raise self._unavailable(what, extra) from None
        for item in got:
            if item is not None:
                try:
                    if json.loads(item[0].decode("utf-8")).get("op") == op:
                        return True
                except (UnicodeDecodeError, ValueError, AttributeError, RecursionError):
                    continue
        return False

    def history(self, name: str) -> list[HistoryEntry]:
        validate_name(name)
        what = f"reading the history of {name!r}"
        deadline = self._deadline()
        path = self._history(name)
        with self._errors(what, denied=f"reading the history of {name!r} is not allowed by its ZooKeeper ACL"):
            children = self._call(lambda c: c.get_children_async(path), deadline, what, missing_ok=True,
                                  sync=path) or []
            nodes = sorted((c for c in children if _seq(c) is not None), key=_seq)
            got = self._call_many([lambda c, p=f"{path}/{n}": c.get_async(p) for n in nodes], deadline, what,
                                  missing_ok=True)
        entries = []
        for node, item in zip(nodes, got):
            if item is None:
                continue
            try:
                d = json.loads(item[0].decode("utf-8")) if item[0] else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                d = None
            entry = parse_history_entry(_seq(node), d)
            if entry is None:
                log.warning("skipping unreadable history entry %s/%s", path, node)
            else:
                entries.append(entry)
        return entries

    def put_manifest(self, name: str, version: str, data: bytes) -> None:
        validate_name(name)
        if len(data) > MANIFEST_COPY_MAX:
            return
        what = f"keeping the manifest of {name}/{version}"
        path = f"{self._manifests_dir(name)}/{version}"
        deadline = self._deadline()
        with self._errors(what):
            self._ensure_path(self._manifests_dir(name), deadline, what)
            try:
                self._call(lambda c: c.create_async(path, data, acl=self._acl), deadline, what)
            except NodeExistsError:
                pass

    def get_manifest(self, name: str, version: str) -> bytes | None:
        validate_name(name)
        what = f"reading the manifest copy of {name}/{version}"
        path = f"{self._manifests_dir(name)}/{version}"
        with self._errors(what):
            got = self._call(lambda c: c.get_async(path), self._deadline(), what, missing_ok=True)
        return got[0] if got is not None else None

    def list_models(self) -> list[str]:
        what = "listing the models"
        deadline = self._deadline()
        with self._errors(what, denied="listing the models is not allowed by the ZooKeeper ACL"):
            models = self._call(lambda c: c.get_children_async(self._models()), deadline, what,
                                missing_ok=True, sync=self._models()) or []
            stats = self._call_many([lambda c, p=self._pointer(m): c.exists_async(p) for m in models],
                                    deadline, what)
        return sorted(m for m, s in zip(models, stats) if s is not None and _valid_name(m))

    # -- watch ---------------------------------------------------------------------------------

    def watch(self, name: str, callback: PointerCallback) -> Watch:
        validate_name(name)
        with self._lock:
            self._started()
            w = _ZkWatch(self, name, callback)
            self._watches.add(w)
        w.start()
        return w

    # -- replicas ------------------------------------------------------------------------------

    def register_replica(self, name: str, replica_id: str, data: dict[str, Any]) -> ReplicaHandle:
        validate_name(name)
        if (not isinstance(replica_id, str) or not replica_id or "/" in replica_id or replica_id in (".", "..")
                or any(ord(ch) < 32 for ch in replica_id) or len(replica_id) > 255):
            raise InvalidInput(f"invalid replica id {replica_id!r}: no '/', no control characters, "
                               "not '.' or '..', 1-255 characters")
        handle = _ZkReplica(self, name, replica_id, data)
        what = f"registering replica {replica_id!r} of {name!r}"
        with self._errors(what, denied=f"registering a replica of {name!r} is not allowed by the ZooKeeper ACL"):
            deadline = self._deadline()
            self._ensure_path(self._replicas_dir(name), deadline, what)
            handle._refresh(deadline, what)
        with self._lock:
            self._replicas.add(handle)
            self._start_maintenance()
        return handle

    def list_replicas(self, name: str) -> list[Replica]:
        validate_name(name)
        what = f"listing the replicas of {name!r}"
        deadline = self._deadline()
        path = self._replicas_dir(name)
        with self._errors(what, denied=f"{what} is not allowed by the ZooKeeper ACL"):
            ids = sorted(self._call(lambda c: c.get_children_async(path), deadline, what, missing_ok=True,
                                    sync=path) or [])
            got = self._call_many([lambda c, p=f"{path}/{i}": c.get_async(p) for i in ids], deadline, what,
                                  missing_ok=True)
        replicas = []
        for rid, item in zip(ids, got):
            if item is None:
                continue  # gone in between
            data = parse_replica_data(item[0])
            if data is None:
                log.warning("skipping unreadable replica record %s/%s", path, rid)
                continue
            replicas.append(Replica(rid, data))
        return replicas

    def _put_ephemeral(self, path: str, payload: bytes, deadline: float, what: str) -> None:
        """Make ``path`` an ephemeral node of this session holding ``payload`` (taking it over if
        another session, e.g. our own expired one or a restarted process, still holds it)."""
        for _ in range(10):
            stat = self._call(lambda c: c.exists_async(path), deadline, what)
            sid = self._session_id()
            try:
                if stat is None:
                    self._call(lambda c: c.create_async(path, payload, acl=self._acl, ephemeral=True), deadline, what)
                    return
                if sid is not None and stat.ephemeralOwner == sid:
                    self._call(lambda c: c.set_async(path, payload, version=stat.version), deadline, what)
                    return
                self._call(lambda c: c.delete_async(path, version=stat.version), deadline, what)
            except (NodeExistsError, NoNodeError, BadVersionError):
                pass  # changed under us: look again
        raise MdlError(f"{what}: {path} keeps changing; is another process using the same replica id?")

    def _delete_own(self, path: str, deadline: float, what: str) -> None:
        stat = self._call(lambda c: c.exists_async(path), deadline, what)
        if stat is not None and stat.ephemeralOwner == self._session_id():
            try:
                self._call(lambda c: c.delete_async(path, version=stat.version), deadline, what)
            except (NoNodeError, BadVersionError):
                pass

    def _start_maintenance(self) -> None:
        if self._maint_thread is None:
            self._maint_thread = threading.Thread(target=self._maintain, name="mdl-zk-replicas", daemon=True)
            self._maint_thread.start()

    def _maintain(self) -> None:
        """After every reconnect: re-create lost replica nodes, push data whose update failed,
        delete nodes whose close failed. Runs on its own thread (never on kazoo's)."""
        while True:
            item = self._maint_queue.get()
            if item is None or self._closed:
                return
            delay = 0.1
            while not self._closed:
                try:
                    while True:  # coalesce
                        if self._maint_queue.get_nowait() is None:
                            return
                except queue.Empty:
                    pass
                try:
                    self._started()  # replaces a client whose connection loop died
                    for handle in list(self._replicas):
                        handle._refresh(self._deadline(), f"re-registering replica {handle.id!r}")
                    for path in list(self._orphans):
                        self._delete_own(path, self._deadline(), f"deregistering {path}")
                        self._orphans.discard(path)
                    break
                except (_Stopped, Unavailable, *_AMBIGUOUS, ConnectionClosedError):
                    pass
                except Exception:
                    log.exception("keeping the replica nodes of %s up to date failed", self.url)
                    break  # not a connection problem: retried on the next reconnect
                self._stopping.wait(delay)
                delay = min(delay * 2, 5.0)

    # -- download slots ------------------------------------------------------------------------

    @contextmanager
    def _slot(self, name: str, limit: int) -> Iterator[None]:
        """A fleet-wide counting semaphore: an ephemeral sequential node per holder, held while
        fewer than ``limit`` older nodes exist. Waiting is unbounded (the holders' downloads end or
        their sessions expire); every ZooKeeper call is bounded by registry.timeout."""
        validate_name(name)
        what = f"taking a download slot of {name!r}"
        base = self._slots_dir(name)
        token = uuid.uuid4().hex
        node: str | None = None
        with self._errors(what, denied=f"{what} is not allowed by the ZooKeeper ACL"):
            try:
                self._ensure_path(base, self._deadline(), what)
                while True:
                    deadline = self._deadline()
                    if node is None:
                        node = self._create_queued(base, f"s-{token}-", deadline, what)
                    changed = threading.Event()
                    children = self._call(lambda c: c.get_children_async(base, watch=lambda _e: changed.set()),
                                          deadline, what)
                    if node not in children:
                        node = None  # our session expired while waiting: queue again
                        continue
                    mine = _seq_suffix(node)
                    if sum(1 for c in children if (q := _seq_suffix(c)) is not None and q < mine) < limit:
                        break
                    changed.wait(min(self.timeout, 5.0))  # a holder left (or re-check anyway)
            except BaseException:
                if node is not None:
                    self._release_slot(f"{base}/{node}", what)
                raise
        try:
            yield
        finally:
            self._release_slot(f"{base}/{node}", what)

    def _create_queued(self, base: str, prefix: str, deadline: float, what: str) -> str:
        """Create an ephemeral sequential node named ``prefix`` + seq under ``base``; a create whose
        answer was lost is found again by its unique prefix (never two nodes for one holder)."""
        while True:
            try:
                path = self._call(lambda c: c.create_async(f"{base}/{prefix}", b"", acl=self._acl, ephemeral=True,
                                                           sequence=True), deadline, what, idempotent=False)
                return path.rsplit("/", 1)[1]
            except _AMBIGUOUS:
                self._call(lambda c: c.sync_async(base), deadline, what)
                found = [c for c in self._call(lambda c: c.get_children_async(base), deadline, what)
                         if c.startswith(prefix)]
                if found:
                    return found[0]

    def _release_slot(self, path: str, what: str) -> None:
        try:
            with self._errors(what):
                self._delete_own(path, self._deadline(), what)
        except (Unavailable, _Stopped):
            self._add_orphan(path)

    def _add_orphan(self, path: str) -> None:
        """A node of ours whose delete failed: the maintenance thread retries (it is gone with the
        session anyway)."""
        with self._lock:
            if self._closed:
                return
            self._orphans.add(path)
            self._start_maintenance()
        self._maint_queue.put("orphans")

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop watches and the session (its replica nodes vanish); never hangs on a dead ensemble."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, self._client = self._client, None
            watches = list(self._watches)
            self._watches.clear()
            self._replicas.clear()
        self._stopping.set()
        self._maint_queue.put(None)
        for w in watches:
            w.stop()
        if client is None:
            return

        t = threading.Thread(target=_stop_client, args=(client,), name="mdl-zk-close", daemon=True)
        t.start()
        t.join(self.timeout + 2)
        if t.is_alive():
            log.warning("the ZooKeeper client of %s did not stop within %g s", self.url, self.timeout + 2)


def _stop_client(client: "KazooClient") -> None:
    try:
        client.stop()
        client.close()
    except Exception:  # pragma: no cover - best effort
        log.debug("stopping a ZooKeeper client failed", exc_info=True)


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidInput:
        log.warning("skipping the model node of an invalid model name %r", name)
        return False
    return True


def _seq_suffix(node: str) -> int | None:
    digits = node[-10:]
    return int(digits) if len(node) > 10 and digits.isdigit() else None


def _seq(node: str) -> int | None:
    if not node.startswith(HISTORY_PREFIX):
        return None
    digits = node[len(HISTORY_PREFIX):]
    return int(digits) if digits.isdigit() else None


class _ZkWatch(Watch):
    """Events (ZooKeeper watch fired, reconnected) are tokens on a queue; one thread re-reads."""

    def __init__(self, reg: ZooKeeperRegistry, name: str, callback: PointerCallback) -> None:
        super().__init__()
        self._reg, self._name, self._callback = reg, name, callback
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"mdl-zk-watch-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def live(self) -> bool:
        return not self.stopped and self._reg._connected.is_set()

    def poke(self, *event: Any) -> None:
        """Called by kazoo (watch fired, with the event) or the connection listener: must not block."""
        self._events.put("fired" if event else "reconnected")

    def stop(self) -> None:
        super().stop()
        self._events.put(None)
        self._reg._watches.discard(self)

    def _run(self) -> None:
        last: tuple[int, int | None] | None = None
        dirty, delay = True, 0.05
        # A read after our own watch fired sees at least that change (a session's view never goes
        # back), so only the first read and those after a reconnect or an error need a sync.
        synced = False
        bad: str | None = None  # the last error logged
        what = f"watching the pointer of {self._name!r}"
        while not self.stopped:
            if not dirty:
                token = self._events.get()
                synced = synced and token == "fired"
                dirty = True
                continue  # re-check stopped, then read
            try:
                while True:  # coalesce events already queued
                    token = self._events.get_nowait()
                    synced = synced and token == "fired"
            except queue.Empty:
                pass
            dirty = False
            try:
                with self._reg._errors(what):
                    pointer, mzxid = self._reg._read_pointer(
                        self._name, self._reg._deadline(), what, watcher=self.poke, cancel=self._stopped,
                        sync=not synced)
                synced = True
            except _Stopped:
                return
            except Unavailable:
                if self._reg._closed:
                    return
                dirty = True  # retry; also poked on reconnect
            except MdlError as exc:  # e.g. an unreadable pointer: nothing is delivered, what is served stays
                if exc.message != bad:
                    log.warning("%s", exc.message)  # once, not every retry
                bad = exc.message
                dirty, delay = True, 5.0
            except Exception:
                log.exception("%s failed", what)
                dirty, delay = True, 2.0
            else:
                delay, bad = 0.05, None
                key = (pointer.revision, mzxid)
                if key != last and not self.stopped:
                    last = key
                    deliver(self._callback, pointer)
                continue
            self._stopped.wait(delay)
            delay = min(delay * 2, 2.0) if delay < 2.0 else delay


class _ZkReplica(ReplicaHandle):
    def __init__(self, reg: ZooKeeperRegistry, name: str, replica_id: str, data: dict[str, Any]) -> None:
        self._reg, self._name, self.id = reg, name, replica_id
        self._data = dict(data)
        self._path = f"{reg._replicas_dir(name)}/{replica_id}"
        self._lock = threading.Lock()
        self._closed = False

    def _payload(self) -> bytes:
        return json.dumps(self._data, sort_keys=True).encode()

    def _refresh(self, deadline: float, what: str) -> None:
        with self._lock:
            if not self._closed:
                self._reg._put_ephemeral(self._path, self._payload(), deadline, what)

    def update(self, **data: Any) -> None:
        """Set the replica's data; if ZooKeeper is unreachable the data is kept and written on reconnect
        (Unavailable is raised)."""
        what = f"updating replica {self.id!r} of {self._name!r}"
        reg = self._reg
        with self._lock:
            self._data.update(data)
            if self._closed:
                return
            payload = self._payload()
            with reg._errors(what, denied=f"{what} is not allowed by the ZooKeeper ACL"):
                deadline = reg._deadline()
                try:
                    reg._call(lambda c: c.set_async(self._path, payload), deadline, what)
                except NoNodeError:  # lost with an expired session: re-create it now
                    reg._put_ephemeral(self._path, payload, deadline, what)

    def close(self) -> None:
        """Deregister. If ZooKeeper is unreachable the node is deleted on reconnect, or vanishes
        with the session; this never raises for an unreachable ensemble."""
        reg = self._reg
        with self._lock:
            if self._closed:
                return
            self._closed = True
        reg._replicas.discard(self)
        what = f"deregistering replica {self.id!r} of {self._name!r}"
        if reg._closed:
            return
        try:
            with reg._errors(what):
                reg._delete_own(self._path, reg._deadline(), what)
        except Unavailable as exc:
            log.warning("%s (it is removed on reconnect or when the session ends)", exc.message)
            reg._add_orphan(self._path)
