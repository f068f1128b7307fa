"""The ZooKeeper session: the kazoo client, its connection state, and the one request path.

Every ZooKeeper request of the registry goes through :meth:`ZkSession.call` / :meth:`ZkSession.call_many`
(sent only while connected, answered before a deadline) inside :meth:`ZkSession.errors` (kazoo's exceptions
become mdl's). Internal to the ``mdl.registry.zookeeper`` package.
"""

from __future__ import annotations

import itertools
import logging
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError, SequentialThreadingHandler
from kazoo.protocol.states import KazooState, KeeperState
from kazoo.retry import KazooRetry

from mdl.errors import MdlError, PermissionDenied, Unavailable
from mdl.registry.base import Notice, RegistryUnavailable
from mdl.registry.zookeeper.config import DIGEST_ENV
from mdl.registry.zookeeper.layout import ZkPaths

RECONNECT_MAX_DELAY = 1.0  # seconds between reconnection rounds at most (all servers down)
NOTICE_AFTER = 1.0  # seconds a request waits for a connection before the ``notice`` says so

log = logging.getLogger("mdl.registry.zookeeper")
# kazoo logs every dropped connection at WARNING; keep that out of the CLI's stderr unless the
# application configured logging (a NullHandler stops logging's last-resort stderr handler).
_kazoo_log = logging.getLogger("mdl.registry.zookeeper.kazoo")
_kazoo_log.addHandler(logging.NullHandler())

# The connection dropped while a request was in flight: it may or may not have been applied.
AMBIGUOUS: tuple[type[Exception], ...] = (ConnectionLoss, SessionExpiredError, OperationTimeoutError)


class Stopped(Exception):
    """A wait was cancelled (watch stopped or registry closed)."""


class _SelectHandler(SequentialThreadingHandler):
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


class ZkSession:
    """One registry's kazoo client and everything its parts share to talk to the ensemble.

    The client is created and started (without waiting) on first use and replaced if its connection
    loop dies. ``timeout`` bounds every request (and is the session timeout asked for); ``acl`` is given
    to every node created; ``notice`` hears "connecting to ..." once a request has waited
    ``NOTICE_AFTER`` seconds for a connection (once per disconnection). Internal to the package.
    """

    def __init__(
        self,
        url: str,
        hosts: str,
        paths: ZkPaths,
        timeout: float,
        credentials: tuple[str, str] | None,
        acl: list[Any],
        notice: Notice | None = None,
    ) -> None:
        self.url, self.hosts, self.paths, self.timeout, self.acl = url, hosts, paths, timeout, acl
        self._notice = notice
        self._noticed = False
        self._credentials = credentials
        self._lock = threading.RLock()
        self._client: KazooClient | None = None
        self._client_dead = False
        self._closed = False
        self._closing = threading.Event()  # interrupts kazoo's reconnection backoff on close
        self._connected = threading.Event()
        self._ever_connected = False
        self._ensured: set[str] = set()
        self._on_connected: list[Callable[[], None]] = []

    # -- state ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connected(self) -> bool:
        """Whether the last state the connection listener heard of was CONNECTED."""
        return self._connected.is_set()

    def on_connected(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every (re)connect, on kazoo's connection thread: it must not block."""
        self._on_connected.append(callback)

    def deadline(self) -> float:
        """The ``time.monotonic()`` by which a request started now must be answered."""
        return time.monotonic() + self.timeout

    def wait_closed(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, cut short by :meth:`mark_closed`; True if the session is closed."""
        return self._closing.wait(seconds)

    def session_id(self) -> int | None:
        """The id of the current ZooKeeper session (None before the first connect)."""
        client = self._client
        cid = client.client_id if client is not None else None
        return cid[0] if cid else None

    # -- the client ----------------------------------------------------------------------------

    def client(self) -> KazooClient:
        """The kazoo client, created and started (without waiting) on first use, and replaced if
        its connection loop died (kazoo#641: an exception in that loop ends it for good)."""
        with self._lock:
            if self._closed:
                raise RegistryUnavailable(
                    f"the ZooKeeper registry {self.url} is closed",
                    reason=f"the ZooKeeper registry {self.url} is closed",
                )
            if self._client is not None and self._client_dead:
                log.warning("the ZooKeeper client of %s stopped by itself; starting a new one", self.url)
                old, self._client = self._client, None
                threading.Thread(target=_stop_client, args=(old,), name="mdl-zk-stop", daemon=True).start()
            if self._client is None:
                retry_args = dict(delay=0.05, backoff=2, max_jitter=0.4, max_delay=RECONNECT_MAX_DELAY)
                client = KazooClient(
                    hosts=self.hosts,
                    timeout=self.timeout,
                    connection_retry=KazooRetry(max_tries=-1, interrupt=self._closing.is_set, **retry_args),
                    command_retry=KazooRetry(max_tries=3, deadline=self.timeout, **retry_args),
                    auth_data=[("digest", ":".join(self._credentials))] if self._credentials else None,
                    default_acl=self.acl,
                    logger=_kazoo_log,
                    handler=_SelectHandler(),
                )
                client.add_listener(lambda state, c=client: self._on_state(c, state))
                self._client, self._client_dead = client, False
                client.start_async()
            return self._client

    def _on_state(self, client: KazooClient, state: str) -> None:
        """Connection listener, on kazoo's connection thread: never block here, only signal."""
        if client is not self._client:
            return  # a replaced client
        if state == KazooState.CONNECTED:
            self._ever_connected = True
            self._noticed = False
            self._connected.set()
            for callback in list(self._on_connected):
                callback()
            return
        self._connected.clear()
        if state == KazooState.LOST and _loop_ended(client) and not self._closing.is_set():
            # the connection loop ended although nobody stopped it: it will never reconnect
            self._client_dead = True
            threading.Thread(target=self._replace_dead_client, name="mdl-zk-restart", daemon=True).start()

    def _replace_dead_client(self) -> None:
        try:
            self.client()
        except Unavailable:
            pass  # closed meanwhile

    def _tell_waiting(self) -> None:
        """Say once per disconnection that a request is waiting for the ensemble."""
        if self._notice is None or self._noticed:
            return
        self._noticed = True
        again = "reconnecting" if self._ever_connected else "connecting"
        try:
            self._notice(f"{again} to ZooKeeper at {self.hosts} …")
        except Exception:  # a note must never fail a request
            log.debug("the connection notice failed", exc_info=True)

    def mark_closed(self) -> bool:
        """Refuse new requests and stop reconnecting; False if the session was closed already."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
        self._closing.set()
        return True

    def stop_client(self) -> None:
        """After :meth:`mark_closed`: end the session (its ephemeral nodes vanish), waiting at most
        ``timeout`` + 2 s (never hangs on a dead ensemble)."""
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return
        t = threading.Thread(target=_stop_client, args=(client,), name="mdl-zk-close", daemon=True)
        t.start()
        t.join(self.timeout + 2)
        if t.is_alive():
            log.warning("the ZooKeeper client of %s did not stop within %g s", self.url, self.timeout + 2)

    # -- requests ------------------------------------------------------------------------------

    def unavailable(self, what: str, extra: str = "") -> RegistryUnavailable:
        """The Unavailable error (exit 6) for ``what`` failing now, saying why."""
        if self._closed:
            reason = f"the ZooKeeper registry {self.url} is closed"
            return RegistryUnavailable(f"{what}: {reason}", reason=reason)
        client = self._client
        if client is not None and client.connected:
            reason = f"ZooKeeper at {self.hosts} did not answer within {self.timeout:g} s"
        elif self._ever_connected:
            reason = (
                f"lost the connection to ZooKeeper at {self.hosts} and could not reconnect within {self.timeout:g} s"
            )
        else:
            reason = f"cannot connect to ZooKeeper at {self.hosts} within {self.timeout:g} s"
        return RegistryUnavailable(
            f"{what}: {reason}{extra}",
            hint="check that the ZooKeeper ensemble is running and reachable "
            "(registry.url); registry.timeout sets how long mdl waits",
            reason=reason + extra,
        )

    def _connected_client(self, deadline: float, what: str, cancel: threading.Event | None) -> KazooClient:
        waiting_since: float | None = None
        while True:
            client = self.client()
            if client.connected:
                return client
            if cancel is not None and cancel.is_set():
                raise Stopped()
            now = time.monotonic()
            waiting_since = now if waiting_since is None else waiting_since
            if now - waiting_since >= NOTICE_AFTER:
                self._tell_waiting()
            remaining = deadline - now
            if remaining <= 0:
                raise self.unavailable(what)
            if self._connected.is_set():  # the listener has not heard of the drop yet
                time.sleep(min(remaining, 0.01))
            else:
                self._connected.wait(min(remaining, 0.1))

    def call_many(
        self,
        starts: Sequence[Callable[[KazooClient], Any]],
        deadline: float,
        what: str,
        *,
        idempotent: bool = True,
        missing_ok: bool = False,
        cancel: threading.Event | None = None,
        unanswered: str = "",
        sync: str | None = None,
    ) -> list[Any]:
        """Send requests (only while connected) and wait for every answer, all before ``deadline``.

        Each of ``starts`` sends one request on the client it is given and returns kazoo's async result.
        With ``sync`` (a path) a ``sync`` goes first: the server catches up with the leader before
        it answers the reads behind it (ZooKeeper serves one session's requests in order), so a
        read sees every write acknowledged before it, also another process's.
        Idempotent requests are re-sent after a connection loss; otherwise the kazoo exception is
        raised (the outcome is unknown). NoNodeError becomes None with ``missing_ok``.
        ``unanswered`` is added to the message when requests were sent but not answered in time.
        ``cancel`` (set) or closing the session raises :class:`Stopped` while waiting for a connection.
        """
        while True:
            try:
                client = self._connected_client(deadline, what, cancel)
            except Unavailable:
                if self._closed:
                    raise Stopped() from None
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
                raise self.unavailable(what, unanswered) from None
            except ConnectionClosedError:  # refused before sending: the client stopped
                if self._closed:
                    raise Stopped() from None
                if time.monotonic() >= deadline:
                    raise self.unavailable(what) from None
                time.sleep(0.01)  # a client that died is replaced by client()
            except AMBIGUOUS:
                if not idempotent:
                    raise
                if time.monotonic() >= deadline:
                    raise self.unavailable(what) from None
                time.sleep(0.01)

    def get_many(self, paths: Sequence[str], deadline: float, what: str, **kw: Any) -> list[Any]:
        """``get`` every node in ``paths`` (one round trip): a (data, stat) each; see :meth:`call_many`."""
        return self.call_many([_request("get_async", p) for p in paths], deadline, what, **kw)

    def exists_many(self, paths: Sequence[str], deadline: float, what: str, **kw: Any) -> list[Any]:
        """``exists`` for every node in ``paths`` (one round trip): a stat or None each."""
        return self.call_many([_request("exists_async", p) for p in paths], deadline, what, **kw)

    def call(self, start: Callable[[KazooClient], Any], deadline: float, what: str, **kw: Any) -> Any:
        """One request's answer: :meth:`call_many` with one ``start``."""
        return self.call_many([start], deadline, what, **kw)[0]

    @contextmanager
    def errors(self, what: str, denied: str | None = None) -> Iterator[None]:
        """Turn kazoo's exceptions (and :class:`Stopped`) into mdl's; ``denied`` is the message of an
        ACL refusal (default: ``what`` is not allowed)."""
        try:
            yield
        except MdlError:
            raise
        except Stopped:
            raise self.unavailable(what) from None
        except (NoAuthError, AuthFailedError):
            who = (
                f"the digest identity {self._credentials[0]!r} is not allowed"
                if self._credentials
                else "no credentials are configured"
            )
            raise PermissionDenied(
                f"{denied or what + ' is not allowed by the ZooKeeper ACL'} ({who})",
                hint=f"set registry.digest_file / {DIGEST_ENV} to the 'user:password' that owns the registry nodes",
            ) from None
        except AMBIGUOUS:
            raise self.unavailable(what) from None
        except KazooException as exc:
            raise MdlError(f"{what}: ZooKeeper error {type(exc).__name__} {exc}".rstrip()) from None

    # -- nodes ---------------------------------------------------------------------------------

    def ensure_path(self, path: str, deadline: float, what: str, *, recheck: bool = False) -> None:
        """Create ``path`` and its missing ancestors with the registry's ACL. Nodes seen once are not
        looked at again, unless ``recheck`` (``path`` itself is, e.g. after it was found missing)."""
        if recheck:
            self._ensured.discard(path)
        cur = ""
        for comp in path.strip("/").split("/"):
            cur += "/" + comp
            if cur not in self._ensured:
                self._create_if_missing(cur, deadline, what)
                self._ensured.add(cur)

    def _create_if_missing(self, node: str, deadline: float, what: str) -> None:
        if self.call(lambda c: c.exists_async(node), deadline, what) is None:
            try:
                self.call(lambda c: c.create_async(node, b"", acl=self.acl), deadline, what)
            except NodeExistsError:
                pass

    def put_ephemeral(self, path: str, payload: bytes, deadline: float, what: str) -> None:
        """Make ``path`` an ephemeral node of this session holding ``payload`` (taking it over if
        another session, e.g. our own expired one or a restarted process, still holds it)."""
        for _ in range(10):
            try:
                if self._put_or_take_over(path, payload, deadline, what):
                    return
            except (NodeExistsError, NoNodeError, BadVersionError):
                pass  # changed under us: look again
        raise MdlError(f"{what}: {path} keeps changing; is another process using the same replica id?")

    def _put_or_take_over(self, path: str, payload: bytes, deadline: float, what: str) -> bool:
        """Create or set our node (True), or delete another session's (False: create it next time)."""
        stat = self.call(lambda c: c.exists_async(path), deadline, what)
        sid = self.session_id()
        if stat is None:
            self.call(lambda c: c.create_async(path, payload, acl=self.acl, ephemeral=True), deadline, what)
            return True
        if sid is not None and stat.ephemeralOwner == sid:
            self.call(lambda c: c.set_async(path, payload, version=stat.version), deadline, what)
            return True
        self.call(lambda c: c.delete_async(path, version=stat.version), deadline, what)
        return False

    def delete_own(self, path: str, deadline: float, what: str) -> None:
        """Delete ``path`` if it is an ephemeral node of this session (else leave it be)."""
        stat = self.call(lambda c: c.exists_async(path), deadline, what)
        if stat is not None and stat.ephemeralOwner == self.session_id():
            try:
                self.call(lambda c: c.delete_async(path, version=stat.version), deadline, what)
            except (NoNodeError, BadVersionError):
                pass


def _loop_ended(client: KazooClient) -> bool:
    """Whether kazoo's connection loop has exited (the client is CLOSED)."""
    return client.client_state == KeeperState.CLOSED


def _request(method: str, path: str) -> Callable[[KazooClient], Any]:
    return lambda c: getattr(c, method)(path)


def _stop_client(client: KazooClient) -> None:
    try:
        client.stop()
        client.close()
    except Exception:  # pragma: no cover - best effort
        log.debug("stopping a ZooKeeper client failed", exc_info=True)
