"""The one request path to the NameNodes, and what every piece of the backend shares (internal to the package).

A :class:`WebHdfsSession` holds the settings, the HTTP connection pools and the DataNodes' side
(:class:`~mdl.storage.webhdfs.datanodes.DataNodes`); :meth:`WebHdfsSession.namenode` is the only
way a request reaches a NameNode: HA failover across ``namenodes``, retries with backoff when that is
safe, and every WebHDFS error answer turned into an :class:`mdl.errors.MdlError`.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mdl.errors import ConfigError, Conflict, MdlError, NotFound, PermissionDenied, Unavailable
from mdl.retry import Backoff
from mdl.storage.http import Authenticator, Http, HttpError, Response, release, text
from mdl.storage.webhdfs.datanodes import DataNodes
from mdl.storage.webhdfs.download import WebHdfsReader
from mdl.storage.webhdfs.protocol import (
    FINAL_EXCEPTIONS,
    NAMENODE_HINT,
    QUOTA_EXCEPTIONS,
    VERBS,
    WEBHDFS_PREFIX,
    one_line,
    os_user,
    quota_error,
    remote_error,
)
from mdl.storage.webhdfs.tokens import DelegationToken

if TYPE_CHECKING:
    from mdl.storage.kerberos import Kerberos


class LostAnswer(Exception):
    """A non-idempotent request was sent to the NameNode ``base`` but its answer was lost."""

    def __init__(self, base: str, detail: str) -> None:
        super().__init__(detail)
        self.base, self.detail = base, detail


class WebHdfsSession:
    """Settings, connection pools and NameNode requests of one :class:`WebHdfsStorage`.

    Internal to the package: the reader, the upload, the stage and ``check`` go through it. The
    settings are plain attributes, read at each request (the storage's are these very attributes).
    """

    def __init__(
        self,
        url: str,
        namenodes: list[str],
        *,
        user: str | None = None,
        auth: str = "simple",
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        pool_size: int = 64,
        principal: str | None = None,
        keytab: str | None = None,
    ) -> None:
        self.url = url
        self.namenodes = namenodes
        self.auth = auth
        self.user = user or None  # Kerberos: None (the principal) unless storage.user is acted for (doas)
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        #: HDFS block size / replication of files written (None: the cluster's dfs.blocksize / dfs.replication)
        self.blocksize: int | None = None
        self.replication: int | None = None
        #: the pauses between retries: equal jitter from ``backoff_base`` doubling up to ``backoff_max``
        self.backoff_base = 0.25
        self.backoff_max = 4.0
        self._active = 0
        self._lock = threading.Lock()
        self._batch_listing = True

        bundle = None
        if namenodes[0].startswith("https:") and ca_bundle:
            if not Path(ca_bundle).expanduser().is_file():
                raise ConfigError(f"storage.ca_bundle {ca_bundle!r} is not a readable file")
            bundle = str(Path(ca_bundle).expanduser())
        authenticator: Authenticator | None = None
        params: dict[str, str] = {}
        #: the Kerberos credentials and SPNEGO tokens (``storage.auth: kerberos``), else None
        self.kerberos: Kerberos | None = None
        #: with Kerberos (and no doas), the delegation token that replaces SPNEGO on busy sessions
        self.tokens: DelegationToken | None = None
        if auth == "kerberos":
            from mdl.storage.kerberos import Kerberos  # gssapi: only for Kerberos (start-up time)

            self.kerberos = Kerberos(principal, keytab)
            authenticator = self.kerberos.header
            if user:  # act for storage.user (needs hadoop.proxyuser.<principal>.* on the cluster)
                params["doas"] = user
            else:  # a delegation token stands in for SPNEGO once a session makes many requests
                self.tokens = DelegationToken(
                    lambda: self._token_request("GET", {"op": "GETDELEGATIONTOKEN"}, self.timeout),
                    lambda token: release(
                        self._token_request("PUT", {"op": "CANCELDELEGATIONTOKEN", "token": token}, 5.0)
                    ),
                )
        else:
            self.user = user or os_user()
            params["user.name"] = self.user  # simple auth is this one query parameter
        # Every request goes through this, with our own redirects, timeouts, retries and errors.
        # HttpFS wants the content type on writes; bodies are read straight from the socket (identity).
        self.http = Http(
            params=params,
            ca_bundle=bundle,
            pool_size=pool_size,
            auth=authenticator,
            headers={"Content-Type": "application/octet-stream", "Accept-Encoding": "identity"},
        )
        self.datanodes = DataNodes(self)

    def close(self) -> None:
        if self.tokens is not None:
            self.tokens.close()
        self.http.close()

    @property
    def who(self) -> str:
        """The HDFS user: ``storage.user`` (simple auth, or acted for), else the Kerberos principal."""
        if self.user:
            return self.user
        if self.kerberos is None:
            return "(Kerberos principal)"
        try:
            return self.kerberos.who()
        except MdlError:
            return "(Kerberos principal)"  # no credentials: the request itself says so

    @property
    def backoff(self) -> Backoff:
        """The pause before retry ``n`` of any step (the current ``backoff_base`` / ``backoff_max``)."""
        return Backoff(base=self.backoff_base, cap=self.backoff_max)

    # -- the NameNode request path ----------------------------------------------------------------

    def _order(self) -> list[str]:
        with self._lock:
            a = self._active
        return self.namenodes[a:] + self.namenodes[:a]

    def _set_active(self, base: str) -> None:
        with self._lock:
            self._active = self.namenodes.index(base)

    @property
    def active_namenode(self) -> str:
        """The NameNode tried first: the one that answered last."""
        return self._order()[0]

    def namenode(
        self, method: str, path: str, op: str, *, what: str | None = None, idempotent: bool = True, **params: Any
    ) -> Response:
        """One NameNode operation: HA failover, and retries with backoff when that is safe.

        ``what`` names ``path`` in errors; a request that is not ``idempotent`` is never sent twice
        (:class:`LostAnswer` if it went out and its answer did not come back)."""
        query = {"op": op, **{k: v for k, v in params.items() if v is not None}}
        start = time.monotonic()
        deadline = start + self.timeout
        attempt = 0
        failures: list[str] = []
        busy: str | None = None
        while True:
            standbys = 0
            for base in self._order():
                url = base + WEBHDFS_PREFIX + quote(path, safe="/")
                connect = max(0.5, min(self.timeout, deadline - time.monotonic()))
                try:
                    resp = self._send(method, url, query, (connect, self.timeout))
                except HttpError as exc:
                    if exc.tls:
                        raise Unavailable(
                            f"TLS with the HDFS NameNode {base} failed: {exc.detail}",
                            hint="set storage.ca_bundle to the CA that signed the NameNode's certificate",
                        ) from None
                    if not idempotent and not exc.unsent:
                        raise LostAnswer(base, exc.detail) from None
                    failures.append(f"{base}: {exc.detail}")
                    continue
                if resp.status < 300 or (resp.status == 307 and "Location" in resp.headers):
                    self._set_active(base)
                    return resp
                exc_name, msg = remote_error(resp)
                if exc_name == "StandbyException":
                    failures.append(f"{base}: standby NameNode")
                    standbys += 1
                    continue
                self._set_active(base)  # any other answer comes from the active NameNode
                if (
                    exc_name in ("RetriableException", "SafeModeException")
                    or resp.status == 503
                    or (idempotent and resp.status >= 500 and exc_name not in FINAL_EXCEPTIONS)
                ):
                    busy = f"{base}: {exc_name + ': ' if exc_name else ''}{msg}"
                    failures.append(busy)
                    break  # the active NameNode answered: retry it after a pause
                raise self.error(resp.status, exc_name, msg, op, path, what)
            attempt += 1
            if attempt <= self.retries and self.backoff.sleep(attempt, deadline):
                continue  # then every NameNode again, the active one first
            elapsed = time.monotonic() - start
            last = failures[-1] if failures else "no answer"
            latest = {f.split(": ", 1)[0]: f for f in failures}  # each NameNode's last failure
            summary = "; ".join(latest[b] for b in self.namenodes if b in latest) or last
            if standbys == len(self.namenodes):
                raise Unavailable(
                    f"no active HDFS NameNode at {self.url}: every one answered as standby "
                    f"({attempt} attempt(s) in {elapsed:.1f}s)",
                    hint="an HA failover may be in progress: try again shortly",
                )
            if busy is not None and last == busy:
                raise Unavailable(
                    f"HDFS at {self.url} is not ready for {op} {path} ({last}); gave up after "
                    f"{attempt} attempt(s) in {elapsed:.1f}s",
                    hint="the NameNode may be starting or in safe mode: try again shortly",
                )
            raise Unavailable(
                f"cannot reach the HDFS NameNode at {self.url} ({summary}); gave up after "
                f"{attempt} attempt(s) in {elapsed:.1f}s",
                hint=NAMENODE_HINT,
            )

    def _send(self, method: str, url: str, query: dict[str, Any], timeout: tuple[float, float]) -> Response:
        """One NameNode request, authenticated: with the delegation token if the session has one (and
        again with SPNEGO if the NameNode refuses the token), else with SPNEGO or simple auth."""
        token = self.tokens.current() if self.tokens is not None else None
        if self.tokens is not None and token is not None:
            resp = self.http.request(method, url, params={**query, "delegation": token}, timeout=timeout)
            if not self.tokens.rejected(token, resp):
                return resp
            release(resp)
        resp = self.http.request(method, url, params=query, timeout=timeout, authenticate=True)
        if self.tokens is not None:
            self.tokens.spnego_used()
        return resp

    def _token_request(self, method: str, params: dict[str, str], timeout: float) -> Response:
        """A SPNEGO request about delegation tokens, to the NameNode that answered last."""
        url = self.active_namenode + WEBHDFS_PREFIX + "/"
        return self.http.request(method, url, params=params, timeout=(timeout, timeout), authenticate=True)

    def error(self, status: int, exc_name: str | None, msg: str, op: str, path: str, what: str | None) -> MdlError:
        """An MdlError for a WebHDFS error answer (one line; the Java class name kept on the error)."""
        if status == 401:
            err: MdlError = PermissionDenied(
                f"HDFS at {self.url} rejected the credentials of {self.who} (HTTP 401)",
                hint="the NameNode did not accept the Kerberos token: name it in storage.url by the host of its "
                "HTTP/<host> principal, and check its SPNEGO keytab"
                if self.auth == "kerberos"
                else "the cluster may need storage.auth=kerberos",
            )
        elif exc_name in (
            "AccessControlException",
            "SecurityException",
            "AuthorizationException",
            "SnapshotAccessControlException",
        ):
            verb = VERBS.get(op, "access")
            err = PermissionDenied(
                f"permission denied: HDFS user {self.who!r} may not {verb} {path} ({msg})",
                hint="ask the owner of the tree for access (hdfs dfs -chmod/-chown/-setfacl), "
                "or run as another user (storage.user, MDL_STORAGE_USER)",
            )
        elif status == 403 and self.auth == "kerberos" and exc_name in (None, "IOException", "InvalidToken"):
            # a NameNode refusing our SPNEGO token (an HTML page), or a DataNode the NameNode's delegation token
            title = re.search(r"<title>(?:Error 403 )?(.*?)(?:</title>|…|$)", msg, re.S)
            reason = one_line((title.group(1) if title else msg).rsplit("Exception: ", 1)[-1], 200)
            err = PermissionDenied(
                f"HDFS refused the Kerberos credentials of {self.who} for {op} {path} (HTTP 403: {reason})",
                hint="check this host's clock and the NameNode's HTTP/<host> principal (the host in storage.url); "
                "a DataNode refusing a token: try again",
            )
        elif exc_name == "FileNotFoundException" or status == 404:
            err = NotFound(f"{what or path} does not exist in {self.url}")
        elif exc_name == "FileAlreadyExistsException":
            err = Conflict(f"{what or path} already exists in {self.url}")
        elif exc_name in QUOTA_EXCEPTIONS:
            err = quota_error(exc_name, msg, what or path)
        else:
            label = f"{exc_name}: " if exc_name else ""
            err = MdlError(f"HDFS {op} {path} failed: {label}{msg}")
        err.remote_exception = exc_name  # type: ignore[attr-defined]
        return err

    def json(self, resp: Response, op: str, path: str) -> Any:
        """The JSON document of a NameNode answer (MdlError if it is not one)."""
        try:
            return resp.json()
        except ValueError:
            raise MdlError(
                f"unexpected answer to {op} {path} from {str(resp.url or '?').split('?')[0]}: "
                f"{one_line(text(resp), 120)!r}"
            ) from None

    def location(self, resp: Response, op: str, path: str) -> str:
        """The DataNode URL a ``CREATE``/``OPEN`` answer (asked with ``noredirect=true``) sends the data to."""
        if resp.status == 307:  # a NameNode that ignores noredirect
            return resp.headers["Location"]
        loc = self.json(resp, op, path).get("Location")
        if not loc:
            raise MdlError(f"the NameNode did not name a DataNode for {op} {path}")
        return loc

    # -- NameNode operations ----------------------------------------------------------------------

    def status(self, path: str, what: str | None = None) -> dict[str, Any]:
        return self.json(self.namenode("GET", path, "GETFILESTATUS", what=what), "GETFILESTATUS", path)["FileStatus"]

    def exists(self, path: str) -> bool:
        try:
            self.status(path)
            return True
        except NotFound:
            return False

    def file_length(self, path: str, what: str) -> int:
        """The length of the file ``path`` (NotFound if it is missing or a directory)."""
        st = self.status(path, what)
        if st.get("type") != "FILE":
            raise NotFound(f"{what} does not exist in {self.url} (it is a directory)")
        return int(st["length"])

    def listing(self, path: str) -> list[dict[str, Any]] | None:
        """The FileStatus entries of a directory (paged), or None if it does not exist."""
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            try:
                if self._batch_listing:
                    try:
                        # lower case: the NameNode (3.5.0) ignores the documented camel-case startAfter
                        resp = self.namenode("GET", path, "LISTSTATUS_BATCH", startafter=after)
                    except MdlError as exc:
                        if getattr(exc, "remote_exception", None) not in (
                            "IllegalArgumentException",
                            "UnsupportedOperationException",
                        ):
                            raise
                        self._batch_listing = False  # an old NameNode or HttpFS: one big LISTSTATUS
                        continue
                    doc = self.json(resp, "LISTSTATUS_BATCH", path)["DirectoryListing"]
                    batch = doc["partialListing"]["FileStatuses"]["FileStatus"]
                    if after is not None and batch and batch[0]["pathSuffix"] <= after:
                        self._batch_listing = False  # the server did not page: never loop, list at once
                        continue
                    out.extend(batch)
                    if not doc.get("remainingEntries") or not batch:
                        return out
                    after = batch[-1]["pathSuffix"]
                else:
                    out.clear()
                    resp = self.namenode("GET", path, "LISTSTATUS")
                    return self.json(resp, "LISTSTATUS", path)["FileStatuses"]["FileStatus"]
            except NotFound:
                return None

    def delete(self, path: str) -> bool:
        """``DELETE`` ``path`` recursively; whether something was deleted."""
        resp = self.namenode("DELETE", path, "DELETE", recursive="true")
        return bool(self.json(resp, "DELETE", path).get("boolean"))

    def rename(self, src: str, dst: str, what: str | None = None) -> bool:
        """``rename2`` ``src`` to ``dst``, never over or into an existing ``dst`` (Conflict if it exists).
        True once moved, False if ``src`` does not exist. Not idempotent, so never sent twice blindly:
        after a lost answer the outcome is read back (``dst`` should be a fresh name of the caller's)."""
        attempt = 0
        while True:
            try:
                self.namenode("PUT", src, "RENAME", idempotent=False, destination=dst, renameoptions="NONE", what=what)
                return True
            except NotFound:
                if self.exists(src):  # the destination's parent is missing, not the source
                    raise
                return False
            except LostAnswer as lost:
                if not self.exists(src):
                    return self.exists(dst)
                attempt += 1
                if attempt > self.retries:
                    raise Unavailable(
                        f"could not move {what or src}: the NameNode {lost.base} did not answer ({lost.detail})",
                        hint=NAMENODE_HINT,
                    ) from None
                self.backoff.sleep(attempt)

    def trash_root(self, path: str) -> str:
        """The HDFS user's trash directory for ``path`` (``GETTRASHROOT``: ``/user/<user>/.Trash``, or
        an encryption zone's own); from ``GETHOMEDIRECTORY`` on a server without that operation."""
        try:
            return str(self.json(self.namenode("GET", path, "GETTRASHROOT"), "GETTRASHROOT", path)["Path"])
        except MdlError as exc:
            if getattr(exc, "remote_exception", None) not in (
                "IllegalArgumentException",
                "UnsupportedOperationException",
            ):
                raise
        home = self.json(self.namenode("GET", "/", "GETHOMEDIRECTORY"), "GETHOMEDIRECTORY", "/")["Path"]
        return str(home).rstrip("/") + "/.Trash"

    def mkdirs(self, path: str) -> None:
        resp = self.namenode("PUT", path, "MKDIRS")
        if not self.json(resp, "MKDIRS", path).get("boolean"):
            raise MdlError(f"HDFS could not create directory {path}")

    def reader(self, path: str, start: int, end: int, what: str | None = None) -> WebHdfsReader:
        """A reader of bytes ``[start, end)`` of the file ``path``: every read of the backend starts here."""
        return WebHdfsReader(self, path, start, end, what)
