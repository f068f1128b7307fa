"""The distributed storage: the model tree on HDFS, spoken to over WebHDFS (``webhdfs://``, ``swebhdfs://``).

Layout (``storage.root``, default ``/models``)::

    <root>/<name>/<version>/<files>                    published, immutable
    <root>/<name>/<version>/.mdl-manifest.json         written last, before the claim
    <root>/<name>/.mdl-staging/<version>.<pid>.<token>/ a push in progress (private to that push)

How a version is claimed atomically
-----------------------------------
Every file of a push, and last its manifest, is written into the push's own staging directory, which
no reader ever lists. The version then becomes visible in **one NameNode operation**: WebHDFS
``RENAME`` with ``renameoptions=NONE`` (HDFS ``rename2``) of the staging directory to
``<root>/<name>/<version>``. The NameNode performs a rename under its namespace write lock and logs
it as one edit, so readers see either no version directory or the complete one, manifest included.
``rename2`` fails with ``FileAlreadyExistsException`` if the destination exists in any form (empty
directory, file, complete version) and never moves the source *into* an existing directory (plain
``RENAME`` would, which is why it is never used for publishing). Of N concurrent pushes of the same
version exactly one rename succeeds; the others get ``VersionExists`` and leave the winner untouched.

The rename is not retried blindly (it is not idempotent): if the connection breaks after the request
was sent, the outcome is read back instead. Our staging directory gone and the destination holding
the exact manifest bytes we wrote means we won; the staging directory still there means the rename
did not happen (retried if the destination is still free, ``VersionExists`` if it is taken).
Failures before the request left (connection refused, connect timeout, a standby NameNode, a
``RetriableException``) are safe to retry on another or the same NameNode.

Transfers and failures
----------------------
Data never passes through the NameNode: ``CREATE``/``OPEN`` are asked with ``noredirect=true`` and
the data goes to the DataNode ``Location``, so a DataNode this client cannot reach is named in the
error (its ``host:port``) with a hint about ``dfs.datanode.hostname`` and the network. Uploads send
the local file with its ``Content-Length`` (not chunked) from one reused 1 MiB buffer, hashing each
chunk before it is sent, so the digest is that of the bytes sent; a failed upload rewrites the whole
private staging file (``overwrite=true``), idempotent by construction. Reads are ranged ``OPEN``
requests (``offset``/``length``, never at or past the end) that resume where they broke; a file is
downloaded in one stream, received straight into a reused buffer, hashed and written as it arrives
(``max_parts`` > 1: parallel ranges, hashed afterwards). No hashing thread: on a busy machine it
only adds hand-offs; parallelism comes from transferring files concurrently (``-j``). After a
DataNode fails to answer, the next attempt passes ``excludedatanodes=<ip>:<xferPort>`` (the NameNode
wants the transfer address, learnt from the NameNode's JMX ``LiveNodes`` or ``GET_BLOCK_LOCATIONS``).

Only idempotent steps (status, listing, reads, staging-file rewrites, ``MKDIRS``, ``DELETE`` of staging)
are retried, with exponential backoff and jitter, at most ``storage.retries`` times and within
``storage.timeout``. Several NameNodes (``webhdfs://nn1:9870,nn2:9870``) are tried in turn; the one
that answered last is tried first. Every error leaves this module as an :class:`mdl.errors.MdlError`.
"""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import logging
import os
import posixpath
import random
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Generator, Iterator
from urllib.parse import quote, urlparse

from mdl.errors import (
    Conflict,
    ConfigError,
    DataNodeUnreachable,
    IntegrityError,
    InvalidInput,
    MdlError,
    NotFound,
    PermissionDenied,
    Unavailable,
    VersionExists,
)
from mdl.manifest import CHUNK, MANIFEST_MAX, MANIFEST_NAME, FileEntry, Manifest
from mdl.names import validate_name, validate_version
from mdl.safefs import create_new, open_beneath
from mdl.storage.base import (
    STAGING_DIR,
    TREE_HINT,
    OnBytes,
    Stage,
    StagingEntry,
    Storage,
    invalid_name,
    is_staging_name,
    open_source,
    source_error,
    skip_foreign,
    staging_name,
    stored_rel,
    too_large,
)

try:  # urllib3 comes with the "distributed" extra
    from mdl.storage.http import Http, HttpError, Response, body_reader, describe, release, spnego, text
except ImportError:  # pragma: no cover - the extra is not installed
    Http = None  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from mdl.config import Config

log = logging.getLogger(__name__)

WEBHDFS_PREFIX = "/webhdfs/v1"
DEFAULT_PORTS = {"webhdfs": 9870, "swebhdfs": 9871}
DATANODE_HINT = ("the NameNode sends clients to DataNodes by the address they registered with: this host "
                 "must resolve and reach it (check dfs.datanode.hostname / dfs.datanode.http.address, "
                 "DNS or /etc/hosts, firewalls); `curl -sSI http://HOST:PORT/` (https:// for swebhdfs) with "
                 "the DataNode address named above shows whether it resolves and answers from this host")
NAMENODE_HINT = ("check storage.url and that the NameNode runs with WebHDFS enabled and its HTTP port is "
                 "reachable from this host (storage.timeout and storage.retries set the patience)")
# RemoteExceptions that say the request was not (and will not be) carried out as asked.
_FINAL_EXCEPTIONS = frozenset({
    "AccessControlException", "SecurityException", "AuthorizationException", "FileNotFoundException",
    "FileAlreadyExistsException", "ParentNotDirectoryException", "NSQuotaExceededException",
    "DSQuotaExceededException", "QuotaExceededException", "InvalidPathException",
    "IllegalArgumentException", "UnsupportedOperationException", "PathIsNotEmptyDirectoryException",
    "UnresolvedPathException", "SnapshotAccessControlException",
})
_VERBS = {"MKDIRS": "write", "CREATE": "write", "RENAME": "write", "DELETE": "delete", "OPEN": "read",
          "GETFILESTATUS": "read", "LISTSTATUS": "list", "LISTSTATUS_BATCH": "list",
          "GET_BLOCK_LOCATIONS": "read"}


@dataclass(frozen=True)
class CheckResult:
    """One line of :meth:`WebHdfsStorage.check`."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None


# -- small helpers -------------------------------------------------------------------------------


def _one_line(text: Any, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _remote(resp: "Response") -> tuple[str | None, str]:
    """(java exception simple name, one-line message) of a WebHDFS error answer."""
    try:
        doc = resp.json()["RemoteException"]
        msg = str(doc.get("message") or "").strip().splitlines()
        return doc.get("exception") or None, _one_line(msg[0] if msg else "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, _one_line(f"HTTP {resp.status} {resp.reason or ''} {text(resp)}".strip())


def _write(out: BinaryIO, view: memoryview, most: int = 64 * 1024) -> None:
    """Write ``view`` to a local file in pieces of at most ``most`` bytes (HdfsCLI writes 64 KiB).

    The kernel sizes page-cache folios by the write. On the benchmark VM (a balloon reporting free
    memory to its host), 1 MiB writes, so 1 MiB folios, cost about 1 s more system time per GiB pulled
    than 64 KiB writes, spent copying into the fresh folios; the extra system calls are negligible.
    """
    for i in range(0, len(view), most):
        out.write(view[i:i + most])


def _pwrite(fd: int, view: memoryview, offset: int, most: int = 64 * 1024) -> None:
    """:func:`_write` at ``offset`` of ``fd`` (ranges are written in parallel through one descriptor)."""
    end = len(view)
    i = 0
    while i < end:
        i += os.pwrite(fd, view[i:min(end, i + most)], offset + i)


def _hostport(url: str) -> str:
    p = urlparse(url)
    return f"{p.hostname}:{p.port or (443 if p.scheme == 'https' else 80)}"


def _parse_url(url: str) -> tuple[str, list[str]]:
    """``webhdfs://h1:9870,h2:9870`` -> ("http", ["http://h1:9870", "http://h2:9870"])."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in DEFAULT_PORTS:
        raise ConfigError(f"storage.url {url!r} is not a webhdfs:// or swebhdfs:// URL")
    hosts, slash, path = rest.partition("/")
    if path.strip("/"):
        raise ConfigError(f"storage.url {url!r} has a path; the tree's location is storage.root",
                          hint="use webhdfs://host:port and set storage.root (default /models)")
    if "@" in hosts or "?" in hosts or "#" in hosts:
        raise ConfigError(f"storage.url {url!r}: give only host:port pairs (the user is storage.user)")
    http = "https" if scheme == "swebhdfs" else "http"
    bases = []
    for part in hosts.split(","):
        part = part.strip()
        if not part:
            continue
        probe = urlparse(f"{http}://{part}")
        try:
            port = probe.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise ConfigError(f"storage.url {url!r}: bad port in {part!r}") from None
        if not probe.hostname:
            raise ConfigError(f"storage.url {url!r}: no host name in {part!r}")
        host = f"[{probe.hostname}]" if ":" in probe.hostname else probe.hostname
        bases.append(f"{http}://{host}:{port}")
    if not bases:
        raise ConfigError(f"storage.url {url!r} names no NameNode", hint="use webhdfs://host:port[,host2:port]")
    return http, bases


def _check_rel(rel: str) -> str:
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or any(part in ("", ".", "..") for part in rel.split("/")):
        raise InvalidInput(f"invalid file path {rel!r} inside a version")
    return str(p)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back like Hadoop does
        return os.environ.get("USER") or os.environ.get("LOGNAME") or str(os.getuid())


class _DataNodeError(Exception):
    """A DataNode step failed. ``unreachable``: never connected; ``remote``: it answered an error."""

    def __init__(self, address: str, detail: str, *, unreachable: bool = False,
                 remote: tuple[int, str | None, str] | None = None) -> None:
        super().__init__(f"DataNode {address}: {detail}")
        self.address, self.detail, self.unreachable, self.remote = address, detail, unreachable, remote

    @property
    def retriable(self) -> bool:
        if self.remote is None:
            return True
        status, exc, _ = self.remote
        return exc not in _FINAL_EXCEPTIONS and status != 401


class _Ambiguous(Exception):
    """A non-idempotent request was sent but its answer was lost."""

    def __init__(self, base: str, detail: str) -> None:
        super().__init__(detail)
        self.base, self.detail = base, detail


# -- the storage ---------------------------------------------------------------------------------


class WebHdfsStorage(Storage):
    """Versions on HDFS over WebHDFS; publish is one ``rename2`` on the NameNode."""

    #: HDFS block size for files written (None: the cluster's ``dfs.blocksize``).
    blocksize: int | None = None
    #: replication of files written (None: the cluster's ``dfs.replication``).
    replication: int | None = None
    #: with ``max_parts`` > 1, files of at least ``2 * range_min`` bytes are downloaded in ranges of at
    #: least this size...
    range_min: int = 16 * 1024 * 1024
    #: ...by at most this many parallel ranged reads per file, hashed after the download (one pass more
    #: over the file). 1: one stream per file, hashed as it arrives (fastest unless one DataNode stream
    #: is slower than the disk and the hashing).
    max_parts: int = 1
    backoff_base: float = 0.25
    backoff_max: float = 4.0

    def __init__(self, url: str, *, root: str = "/models", user: str | None = None, auth: str = "simple",
                 ca_bundle: str | None = None, timeout: float = 30.0, retries: int = 3,
                 pool_size: int = 64) -> None:
        if Http is None:  # pragma: no cover - depends on the installed extras
            raise ConfigError("the webhdfs:// backend needs the 'distributed' extra",
                              hint="pip install 'mdl[distributed]'")
        self.url = url
        self._http, self.namenodes = _parse_url(url)
        if not root or not root.startswith("/"):
            raise ConfigError(f"storage.root {root!r} must be an absolute HDFS path like /models")
        self.root = posixpath.normpath(root)
        if self.root.startswith("//"):
            self.root = "/" + self.root.lstrip("/")
        self.auth = auth
        self.user = user or (None if auth == "kerberos" else _os_user())
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self._active = 0
        self._lock = threading.Lock()
        self._dn_map: dict[str, str] = {}  # "host:httpPort" -> "ip:xferPort"
        self._batch_listing = True

        bundle = None
        if self._http == "https" and ca_bundle:
            if not Path(ca_bundle).expanduser().is_file():
                raise ConfigError(f"storage.ca_bundle {ca_bundle!r} is not a readable file")
            bundle = str(Path(ca_bundle).expanduser())
        authenticator = None
        params: dict[str, str] = {}
        if auth == "kerberos":
            try:
                authenticator = spnego()
            except ImportError:
                raise ConfigError("storage.auth=kerberos needs the Kerberos extra",
                                  hint="pip install 'mdl[kerberos]' (requests-kerberos and a GSSAPI library)"
                                  ) from None
            if user:  # act for storage.user (needs hadoop.proxyuser.<principal>.* on the cluster)
                params["doas"] = user
        else:
            params["user.name"] = self.user  # simple auth is this one query parameter
        # Every request below goes through this, with our own redirects, timeouts, retries and errors.
        # HttpFS wants the content type on writes; bodies are read straight from the socket (identity).
        self._web: Http = Http(params=params, ca_bundle=bundle, pool_size=pool_size, auth=authenticator,
                               headers={"Content-Type": "application/octet-stream",
                                        "Accept-Encoding": "identity"})

    @classmethod
    def from_config(cls, config: "Config") -> "WebHdfsStorage":
        return cls(config["storage.url"], root=config["storage.root"] or "/models", user=config["storage.user"],
                   auth=config["storage.auth"] or "simple", ca_bundle=config["storage.ca_bundle"],
                   timeout=config["storage.timeout"] or 30.0, retries=config["storage.retries"] or 0)

    def __repr__(self) -> str:
        return f"WebHdfsStorage({self.url!r}, root={self.root!r}, user={self.user!r})"

    def close(self) -> None:
        self._web.close()

    # -- paths ----------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _file(self, name: str, version: str, rel: str) -> tuple[str, str]:
        """The HDFS path of a stored file; ``rel`` (a manifest's, untrusted) must be a plain relative path."""
        validate_name(name)
        validate_version(version)
        rel = stored_rel(name, version, rel)
        return self._path(name, version, rel), f"{name}/{version}/{rel}"

    @property
    def who(self) -> str:
        return self.user or "(Kerberos principal)"

    # -- the NameNode ---------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        top = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempt - 1))
        return top / 2 + random.uniform(0, top / 2)

    def _order(self) -> list[str]:
        with self._lock:
            a = self._active
        return self.namenodes[a:] + self.namenodes[:a]

    def _set_active(self, base: str) -> None:
        with self._lock:
            self._active = self.namenodes.index(base)

    def _nn(self, method: str, path: str, op: str, *, what: str | None = None, idempotent: bool = True,
            **params: Any) -> "Response":
        """One NameNode operation: HA failover, and retries with backoff when that is safe."""
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
                    resp = self._web.request(method, url, params=query, timeout=(connect, self.timeout),
                                             authenticate=True)
                except HttpError as exc:
                    if exc.tls:
                        raise Unavailable(f"TLS with the HDFS NameNode {base} failed: {exc.detail}",
                                          hint="set storage.ca_bundle to the CA that signed the NameNode's "
                                               "certificate") from None
                    if not idempotent and not exc.unsent:
                        raise _Ambiguous(base, exc.detail) from None
                    failures.append(f"{base}: {exc.detail}")
                    continue
                if resp.status < 300 or (resp.status == 307 and "Location" in resp.headers):
                    self._set_active(base)
                    return resp
                exc_name, msg = _remote(resp)
                if exc_name == "StandbyException":
                    failures.append(f"{base}: standby NameNode")
                    standbys += 1
                    continue
                self._set_active(base)  # any other answer comes from the active NameNode
                if exc_name in ("RetriableException", "SafeModeException") or resp.status == 503 or (
                        idempotent and resp.status >= 500 and exc_name not in _FINAL_EXCEPTIONS):
                    busy = f"{base}: {exc_name + ': ' if exc_name else ''}{msg}"
                    failures.append(busy)
                    break  # the active NameNode answered: retry it after a pause
                raise self._error(resp.status, exc_name, msg, op, path, what)
            attempt += 1
            delay = self._backoff(attempt)
            if attempt > self.retries or time.monotonic() + delay > deadline:
                elapsed = time.monotonic() - start
                last = failures[-1] if failures else "no answer"
                latest = {f.split(": ", 1)[0]: f for f in failures}  # each NameNode's last failure
                summary = "; ".join(latest[b] for b in self.namenodes if b in latest) or last
                if standbys == len(self.namenodes):
                    raise Unavailable(f"no active HDFS NameNode at {self.url}: every one answered as standby "
                                      f"({attempt} attempt(s) in {elapsed:.1f}s)",
                                      hint="an HA failover may be in progress: try again shortly")
                if busy is not None and last == busy:
                    raise Unavailable(f"HDFS at {self.url} is not ready for {op} {path} ({last}); gave up after "
                                      f"{attempt} attempt(s) in {elapsed:.1f}s",
                                      hint="the NameNode may be starting or in safe mode: try again shortly")
                raise Unavailable(f"cannot reach the HDFS NameNode at {self.url} ({summary}); gave up after "
                                  f"{attempt} attempt(s) in {elapsed:.1f}s", hint=NAMENODE_HINT)
            time.sleep(delay)

    def _error(self, status: int, exc_name: str | None, msg: str, op: str, path: str,
               what: str | None) -> MdlError:
        """An MdlError for a WebHDFS error answer (one line; the Java class name kept on the error)."""
        if status == 401:
            err: MdlError = PermissionDenied(
                f"HDFS at {self.url} rejected the credentials of {self.who} (HTTP 401)",
                hint="run kinit, or check storage.auth" if self.auth == "kerberos"
                else "the cluster may need storage.auth=kerberos")
        elif exc_name in ("AccessControlException", "SecurityException", "AuthorizationException",
                          "SnapshotAccessControlException"):
            verb = _VERBS.get(op, "access")
            err = PermissionDenied(f"permission denied: HDFS user {self.who!r} may not {verb} {path} ({msg})",
                                   hint="ask the owner of the tree for access (hdfs dfs -chmod/-chown/-setfacl), "
                                        "or run as another user (storage.user, MDL_STORAGE_USER)")
        elif exc_name == "FileNotFoundException" or status == 404:
            err = NotFound(f"{what or path} does not exist in {self.url}")
        elif exc_name == "FileAlreadyExistsException":
            err = Conflict(f"{what or path} already exists in {self.url}")
        elif exc_name in ("NSQuotaExceededException", "DSQuotaExceededException", "QuotaExceededException"):
            err = MdlError(f"HDFS quota exceeded writing {path}: {msg}", hint="free space or ask for a larger quota")
        else:
            label = f"{exc_name}: " if exc_name else ""
            err = MdlError(f"HDFS {op} {path} failed: {label}{msg}")
        err.remote_exception = exc_name  # type: ignore[attr-defined]
        return err

    def _json(self, resp: "Response", op: str, path: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise MdlError(f"unexpected answer to {op} {path} from {str(resp.url or '?').split('?')[0]}: "
                           f"{_one_line(text(resp), 120)!r}") from None

    def _status(self, path: str, what: str | None = None) -> dict[str, Any]:
        return self._json(self._nn("GET", path, "GETFILESTATUS", what=what), "GETFILESTATUS", path)["FileStatus"]

    def _exists(self, path: str) -> bool:
        try:
            self._status(path)
            return True
        except NotFound:
            return False

    def _list(self, path: str) -> list[dict[str, Any]] | None:
        """The FileStatus entries of a directory (paged), or None if it does not exist."""
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            try:
                if self._batch_listing:
                    try:
                        # lower case: the NameNode (3.5.0) ignores the documented camel-case startAfter
                        resp = self._nn("GET", path, "LISTSTATUS_BATCH", startafter=after)
                    except MdlError as exc:
                        if getattr(exc, "remote_exception", None) not in ("IllegalArgumentException",
                                                                           "UnsupportedOperationException"):
                            raise
                        self._batch_listing = False  # an old NameNode or HttpFS: one big LISTSTATUS
                        continue
                    doc = self._json(resp, "LISTSTATUS_BATCH", path)["DirectoryListing"]
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
                    resp = self._nn("GET", path, "LISTSTATUS")
                    return self._json(resp, "LISTSTATUS", path)["FileStatuses"]["FileStatus"]
            except NotFound:
                return None

    def _subdirs(self, path: str, validate: Callable[[str], str]) -> list[str]:
        """Directories in ``path`` with valid names (``validate``); anything else is skipped (logged)."""
        out = []
        for st in self._list(path) or []:
            entry = st.get("pathSuffix")
            if not isinstance(entry, str) or not entry or entry == STAGING_DIR:
                continue
            why = invalid_name(entry, validate)
            if why is None and st.get("type") != "DIRECTORY":
                why = f"not a directory ({str(st.get('type')).lower()})"
            if why is not None:
                skip_foreign(entry, path, why)
                continue
            out.append(entry)
        return sorted(out)

    def _delete(self, path: str) -> bool:
        resp = self._nn("DELETE", path, "DELETE", recursive="true")
        return bool(self._json(resp, "DELETE", path).get("boolean"))

    def _mkdirs(self, path: str) -> None:
        resp = self._nn("PUT", path, "MKDIRS")
        if not self._json(resp, "MKDIRS", path).get("boolean"):
            raise MdlError(f"HDFS could not create directory {path}")

    def _location(self, resp: "Response", op: str, path: str) -> str:
        if resp.status == 307:  # a NameNode that ignores noredirect
            return resp.headers["Location"]
        loc = self._json(resp, op, path).get("Location")
        if not loc:
            raise MdlError(f"the NameNode did not name a DataNode for {op} {path}")
        return loc

    # -- DataNodes ------------------------------------------------------------------------------

    def _dn(self, method: str, url: str, *, data: Any = None, stream: bool = False) -> "Response":
        """One request to a DataNode ``Location``; failures become :class:`_DataNodeError`."""
        addr = _hostport(url)
        try:
            resp = self._web.request(method, url, body=data, stream=stream, timeout=(self.timeout, self.timeout))
        except HttpError as exc:
            raise _DataNodeError(addr, exc.detail, unreachable=exc.unsent) from None
        if resp.status >= 300:
            exc_name, msg = _remote(resp)  # reads the error document (small), even of a stream
            release(resp)
            raise _DataNodeError(addr, f"{exc_name + ': ' if exc_name else ''}{msg}",
                                 remote=(resp.status, exc_name, msg))
        return resp

    def _learn_datanodes(self, path: str | None = None) -> None:
        """Map DataNode HTTP addresses to transfer addresses (best effort; for excludedatanodes)."""
        found: dict[str, str] = {}
        try:
            base = self._order()[0]
            resp = self._web.request("GET", base + "/jmx", params={"qry": "Hadoop:service=NameNode,name=NameNodeInfo"},
                                     timeout=(self.timeout, self.timeout), authenticate=True)
            if resp.status < 300:
                for key, node in json.loads(resp.json()["beans"][0]["LiveNodes"]).items():
                    xfer = node.get("xferaddr") or key
                    host = key.rsplit(":", 1)[0]
                    for addr in (node.get("infoAddr"), node.get("infoSecureAddr")):
                        if addr and not addr.endswith(":0"):
                            found[addr] = xfer
                            found[f"{host}:{addr.rsplit(':', 1)[1]}"] = xfer
        except Exception as exc:  # noqa: BLE001 - JMX may be closed off; then block locations or nothing
            log.debug("no DataNode list from JMX: %s", exc)
        if path is not None:
            try:
                resp = self._nn("GET", path, "GET_BLOCK_LOCATIONS", offset=0, length=1 << 62)
                for block in self._json(resp, "GET_BLOCK_LOCATIONS", path)["LocatedBlocks"]["locatedBlocks"]:
                    for dn in block.get("locations", []):
                        xfer = f"{dn['ipAddr']}:{dn['xferPort']}"
                        for host in (dn.get("hostName"), dn.get("ipAddr")):
                            for port in (dn.get("infoPort"), dn.get("infoSecurePort")):
                                if host and port:
                                    found[f"{host}:{port}"] = xfer
            except Exception as exc:  # noqa: BLE001
                log.debug("no block locations for %s: %s", path, exc)
        with self._lock:
            self._dn_map.update(found)

    def _xfer_address(self, http_addr: str, path: str | None = None) -> str:
        """What to put in ``excludedatanodes`` for the DataNode serving HTTP at ``http_addr``."""
        self._learn_datanodes(path)  # failures are rare: refresh (transfer ports change on restarts)
        with self._lock:
            known = self._dn_map.get(http_addr)
        # Unknown: the host alone (the NameNode then excludes the DataNode on that host).
        return known or http_addr.rsplit(":", 1)[0]

    def _dn_failure(self, e: _DataNodeError, verb: str, path: str, what: str | None, attempts: int) -> MdlError:
        if e.unreachable:
            return DataNodeUnreachable(f"cannot reach HDFS DataNode {e.address} to {verb} {what or path}: "
                                       f"{e.detail} ({attempts} attempt(s))", e.address, DATANODE_HINT)
        if e.remote is not None:
            status, exc_name, msg = e.remote
            err = self._error(status, exc_name, msg, "CREATE" if verb == "write" else "OPEN", path, what)
            if not isinstance(err, (PermissionDenied, NotFound, Conflict)):
                err = MdlError(f"HDFS DataNode {e.address} failed to {verb} {what or path}: "
                               f"{exc_name + ': ' if exc_name else ''}{msg} ({attempts} attempt(s))")
            return err
        return Unavailable(f"lost the connection to HDFS DataNode {e.address} while trying to {verb} "
                           f"{what or path}: {e.detail} ({attempts} attempt(s))", hint=DATANODE_HINT)

    def _create(self, path: str, data: "bytes | _FileBody", what: str | None = None) -> None:
        """Write ``path`` (overwriting it) in the two WebHDFS steps; retried as a whole (``data`` is sent again)."""
        exclude: list[str] = []
        attempt = 0
        while True:
            try:
                resp = self._nn("PUT", path, "CREATE", what=what, overwrite="true", noredirect="true",
                                blocksize=self.blocksize, replication=self.replication,
                                excludedatanodes=",".join(exclude) or None)
            except MdlError as exc:
                if not exclude or isinstance(exc, (NotFound, PermissionDenied, Unavailable)):
                    raise
                exclude.clear()  # no DataNode left to choose: let the NameNode choose freely again
                continue
            location = self._location(resp, "CREATE", path)
            try:
                self._dn("PUT", location, data=data)
                return
            except _DataNodeError as e:
                if isinstance(data, _FileBody):
                    data.close()  # an attempt abandoned mid-body: close its file now
                attempt += 1
                if not e.retriable or attempt > self.retries:
                    raise self._dn_failure(e, "write", path, what, attempt) from None
                log.info("retrying write of %s after %s", path, e)
                if e.unreachable:
                    x = self._xfer_address(e.address)
                    if x not in exclude:
                        exclude.append(x)
                time.sleep(self._backoff(attempt))

    def _reader(self, path: str, start: int, end: int, what: str | None = None) -> "WebHdfsReader":
        return WebHdfsReader(self, path, start, end, what)

    # -- the contract ---------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        return self._subdirs(self.root, validate_name)

    def list_versions(self, name: str) -> list[str]:
        validate_name(name)
        return self._subdirs(self._path(name), validate_version)

    def _file_length(self, path: str, what: str) -> int:
        st = self._status(path, what)
        if st.get("type") != "FILE":
            raise NotFound(f"{what} does not exist in {self.url} (it is a directory)")
        return int(st["length"])

    def read_bytes(self, name: str, version: str, rel: str, limit: int = MANIFEST_MAX) -> bytes:
        path, what = self._file(name, version, rel)
        length = self._file_length(path, what)
        if length > limit:  # known from GETFILESTATUS: refused before a byte is read
            raise too_large(f"{what} in {self.url}", length, limit)
        with self._reader(path, 0, length, what) as f:
            return f.read()

    def open(self, name: str, version: str, rel: str) -> "WebHdfsReader":
        path, what = self._file(name, version, rel)
        return self._reader(path, 0, self._file_length(path, what), what)

    def stage(self, name: str, version: str) -> "WebHdfsStage":
        validate_name(name)
        validate_version(version)
        return WebHdfsStage(self, name, version)

    def list_staging(self, name: str | None = None) -> list[StagingEntry]:
        if name:
            names = [name] if self._is_dir(self._path(validate_name(name))) else []
        else:
            names = self.list_models()
        now = time.time()
        out = []
        for n in names:
            d = self._path(n, STAGING_DIR)
            for st in self._list(d) or []:
                entry = st.get("pathSuffix")
                if not isinstance(entry, str) or not entry:
                    continue  # LISTSTATUS of a file: the file itself
                if st.get("type") != "DIRECTORY" or not is_staging_name(entry):
                    skip_foreign(entry, d, "not an mdl staging directory")
                    continue
                age = max(0.0, now - st.get("modificationTime", 0) / 1000.0)
                out.append(StagingEntry(n, posixpath.join(d, st["pathSuffix"]), age))
        return out

    def _is_dir(self, path: str) -> bool:
        """True if ``path`` is a directory (listing below a file is refused as a permission problem)."""
        try:
            st = self._status(path)
        except NotFound:
            return False
        if st.get("type") != "DIRECTORY":
            skip_foreign(posixpath.basename(path), posixpath.dirname(path), "not a directory")
            return False
        return True

    def _is_staging_path(self, path: str) -> bool:
        if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path:
            return False
        prefix = self.root.rstrip("/") + "/"
        if not path.startswith(prefix):
            return False
        parts = path[len(prefix):].split("/")
        return (len(parts) == 3 and parts[1] == STAGING_DIR and is_staging_name(parts[2])
                and invalid_name(parts[0], validate_name) is None)

    def remove_staging(self, entry: StagingEntry) -> None:
        if not self._is_staging_path(entry.path):
            raise InvalidInput(f"{entry.path!r} is not an mdl staging path under {self.root}")  # never delete anything else
        self._delete(entry.path)

    def download(self, name: str, version: str, entry: FileEntry, dest: Path,
                 on_bytes: OnBytes | None = None) -> str:
        """Copy one file to ``dest``, hashing it on the way. Returns the sha256 of ``dest``."""
        path, what = self._file(name, version, entry.path)
        try:
            return self._download(path, what, entry.size, dest, on_bytes)
        except MdlError:
            # The length came from the manifest (no GETFILESTATUS round trip): if the stored file has
            # another length, reads past its end fail; say what really is wrong.
            actual = self._file_length(path, what)
            if actual != entry.size:
                raise IntegrityError(f"{name}/{version}/{entry.path} does not match its manifest "
                                     f"(stored size {actual}, expected {entry.size})",
                                     hint="the stored copy is corrupt: push the version again or pull another "
                                          "one") from None
            raise

    def _download(self, path: str, what: str, length: int, dest: Path, on_bytes: OnBytes | None) -> str:
        parts = min(self.max_parts, length // max(1, self.range_min)) if length >= 2 * self.range_min else 1
        if parts <= 1:
            h = hashlib.sha256()
            buf = memoryview(bytearray(min(CHUNK, max(1, length))))  # a small model needs no 1 MiB buffer
            with create_new(dest) as out, self._reader(path, 0, length, what) as src:
                while n := src.readinto(buf):
                    h.update(buf[:n])
                    _write(out, buf[:n])
                    if on_bytes:
                        on_bytes(n)
            return h.hexdigest()

        lock = threading.Lock()
        size = -(-length // parts)
        spans = [(off, min(length, off + size)) for off in range(0, length, size)]
        stop = threading.Event()
        with create_new(dest) as out:  # one descriptor for every range: dest is opened once
            fd = out.fileno()
            try:
                os.posix_fallocate(fd, 0, length)
            except (AttributeError, OSError):
                out.truncate(length)

            def fetch(span: tuple[int, int]) -> None:
                start, end = span
                buf = memoryview(bytearray(CHUNK))
                with self._reader(path, start, end, what) as src:
                    pos = start
                    while not stop.is_set() and (n := src.readinto(buf)):
                        _pwrite(fd, buf[:n], pos)
                        pos += n
                        if on_bytes:
                            with lock:
                                on_bytes(n)

            with ThreadPoolExecutor(max_workers=len(spans), thread_name_prefix="mdl-range") as pool:
                futures = [pool.submit(fetch, s) for s in spans]
                try:
                    for f in futures:
                        f.result()
                except BaseException:
                    stop.set()
                    raise
        h = hashlib.sha256()
        with open_beneath(dest.parent, dest.name) as f:  # what was written, never a symlink in its place
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()

    # -- diagnostics ----------------------------------------------------------------------------

    def check(self) -> list[CheckResult]:
        """Connectivity check: NameNode, tree root, a tiny write + read + delete, every DataNode.

        Never raises for what it finds; each step is a :class:`CheckResult`.
        """
        results: list[CheckResult] = []

        def fail(name: str, exc: BaseException) -> list[CheckResult]:
            hint = getattr(exc, "hint", None)
            results.append(CheckResult(name, False, getattr(exc, "message", None) or str(exc), hint))
            return results

        try:
            t = time.monotonic()
            self._status("/")
            base = self._order()[0]
            results.append(CheckResult("namenode", True, f"{base} answered in {time.monotonic() - t:.2f}s "
                                                         f"(HDFS user {self.who})"))
        except MdlError as exc:
            return fail("namenode", exc)
        try:
            st = self._status(self.root)
            results.append(CheckResult("root", st.get("type") == "DIRECTORY",
                                       f"{self.root}: {st.get('type', '?').lower()} owned by {st.get('owner')}:"
                                       f"{st.get('group')} mode {st.get('permission')}"))
        except NotFound:
            results.append(CheckResult("root", True, f"{self.root} does not exist yet (the first push creates it)"))
        except MdlError as exc:
            fail("root", exc)

        path = self._path(STAGING_DIR, f"check.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}")
        payload = secrets.token_bytes(64)
        written = False
        try:
            location = self._location(self._nn("PUT", path, "CREATE", overwrite="true", noredirect="true"),
                                      "CREATE", path)
            self._dn("PUT", location, data=payload)
            written = True
            results.append(CheckResult("write", True, f"wrote {len(payload)} bytes through DataNode "
                                                      f"{_hostport(location)}"))
            location = self._location(self._nn("GET", path, "OPEN", offset=0, length=len(payload),
                                                noredirect="true"), "OPEN", path)
            ok = self._dn("GET", location).data == payload
            results.append(CheckResult("read", ok, f"read back through DataNode {_hostport(location)}"
                                                   + ("" if ok else ": the bytes differ")))
        except _DataNodeError as e:
            fail("write" if not written else "read", self._dn_failure(e, "write" if not written else "read",
                                                                     path, None, 1))
        except MdlError as exc:
            fail("write" if not written else "read", exc)
        self._learn_datanodes(path if written else None)
        with self._lock:
            addrs = sorted({a for a in self._dn_map if not a.endswith(":0")})
        bad = []
        for addr in addrs:
            host, port = addr.rsplit(":", 1)
            try:
                socket.create_connection((host, int(port)), timeout=min(self.timeout, 5.0)).close()
            except OSError as exc:
                bad.append(f"{addr} ({exc.strerror or exc})")
        if bad:
            results.append(CheckResult("datanodes", False, "unreachable DataNode(s): " + ", ".join(bad),
                                       DATANODE_HINT))
        elif addrs:
            results.append(CheckResult("datanodes", True, f"{len(addrs)} DataNode address(es) reachable: "
                                                          + ", ".join(addrs)))
        if written:
            try:
                self._delete(path)
                results.append(CheckResult("delete", True, f"removed {path}"))
            except MdlError as exc:
                fail("delete", exc)
        return results


class WebHdfsReader(io.RawIOBase):
    """A streaming reader of bytes ``[start, end)`` of an HDFS file, resuming where a DataNode broke off."""

    def __init__(self, storage: WebHdfsStorage, path: str, start: int, end: int, what: str | None = None) -> None:
        super().__init__()
        self._s, self._path, self._what = storage, path, what
        self._pos, self._end = start, end
        self._resp: "Response | None" = None
        self._recv: Callable[[memoryview], int] | None = None  # readinto of the response body
        self._addr = ""
        self._exclude: list[str] = []
        self._failures = 0

    def readable(self) -> bool:
        return True

    def _connect(self) -> None:
        resp = self._s._nn("GET", self._path, "OPEN", what=self._what, offset=self._pos,
                           length=self._end - self._pos, noredirect="true",
                           excludedatanodes=",".join(self._exclude) or None)
        location = self._s._location(resp, "OPEN", self._path)
        self._addr = _hostport(location)
        self._resp = self._s._dn("GET", location, stream=True)
        self._recv = body_reader(self._resp)

    def _drop(self) -> None:
        if self._resp is not None:
            release(self._resp)
            self._resp = None

    def readinto(self, b: Any) -> int:
        if self.closed:
            raise ValueError("read of a closed file")
        view = memoryview(b).cast("B")
        view = view[: max(0, min(len(view), self._end - self._pos))]
        if not view:
            return 0
        while True:
            try:
                if self._resp is None:
                    try:
                        self._connect()
                    except MdlError as exc:
                        if not self._exclude or isinstance(exc, (NotFound, PermissionDenied, Unavailable)):
                            raise
                        self._exclude.clear()  # every replica excluded: let the NameNode choose again
                        raise _DataNodeError(self._addr or "?", exc.message) from None
                assert self._recv is not None
                try:
                    n = self._recv(view)
                except Exception as exc:  # socket/http errors mid-stream: resume at self._pos
                    raise _DataNodeError(self._addr, describe(exc)) from None
                if not n:
                    raise _DataNodeError(self._addr, f"stream ended {self._end - self._pos} bytes early")
                self._pos += n
                self._failures = 0
                return n
            except _DataNodeError as e:
                self._drop()
                self._failures += 1
                if not e.retriable or self._failures > self._s.retries:
                    raise self._s._dn_failure(e, "read", self._path, self._what, self._failures) from None
                log.info("resuming read of %s at %d after %s", self._path, self._pos, e)
                if e.unreachable:
                    x = self._s._xfer_address(e.address, self._path)
                    if x not in self._exclude:
                        self._exclude.append(x)
                time.sleep(self._s._backoff(self._failures))

    def readall(self) -> bytes:
        buf = bytearray(max(0, self._end - self._pos))
        view, got = memoryview(buf), 0
        while n := self.readinto(view[got:got + CHUNK]):  # a break loses at most one chunk's progress
            got += n
        return bytes(buf)

    def close(self) -> None:
        self._drop()
        super().close()


class _FileBody:
    """The first ``size`` bytes of a local file as a request body of known length (``Content-Length``).

    Each iteration (one per attempt of :meth:`WebHdfsStorage._create`) reads the file again into one
    reused buffer, hashing each chunk before it is sent: ``sha256`` is that of the bytes sent by the last
    complete iteration. ``on_bytes`` hears of each byte once, however many attempts.
    """

    def __init__(self, local: Path, size: int, on_bytes: OnBytes | None) -> None:
        self.local, self.size, self.on_bytes = local, size, on_bytes
        self.sha256 = ""
        self._reported = 0
        self._it: Generator[memoryview, None, None] | None = None

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[memoryview]:
        self.close()
        self._it = self._chunks()
        return self._it

    def close(self) -> None:
        if self._it is not None:
            self._it.close()
            self._it = None

    def _chunks(self) -> Generator[memoryview, None, None]:
        h = hashlib.sha256()
        buf = memoryview(bytearray(min(CHUNK, self.size)))  # sent before the next read: one buffer is enough
        sent = 0
        with open_source(self.local) as f:  # NotFound if it vanished, InvalidInput if unreadable
            while sent < self.size:
                try:
                    n = f.readinto(buf[: self.size - sent])
                except OSError as exc:  # a local failure, not the network's: never retried as a DataNode error
                    raise MdlError(f"cannot read {str(self.local)!r}: {exc.strerror or exc}") from None
                if not n:
                    raise MdlError(f"{str(self.local)!r} shrank while it was being pushed",
                                   hint="push again once the file is complete")
                sent += n
                if self.on_bytes and sent > self._reported:
                    self.on_bytes(sent - self._reported)
                    self._reported = sent
                h.update(buf[:n])
                yield buf[:n]
        self.sha256 = h.hexdigest()


class WebHdfsStage(Stage):
    """A push in progress under ``<root>/<name>/.mdl-staging/<version>.<pid>.<token>``."""

    def __init__(self, storage: WebHdfsStorage, name: str, version: str) -> None:
        self._s = storage
        self.name, self.version = name, version
        self.path = storage._path(name, STAGING_DIR, staging_name(version))
        self._manifest: bytes | None = None
        self._published = False
        try:
            storage._mkdirs(self.path)
        except MdlError as exc:
            if getattr(exc, "remote_exception", None) in ("ParentNotDirectoryException", "FileAlreadyExistsException"):
                raise IntegrityError(f"cannot stage {name}/{version}: {storage._path(name)} or its "
                                     f"{STAGING_DIR} is not a directory in {storage.url}", hint=TREE_HINT) from None
            raise

    def upload(self, rel: str, local: Path, on_bytes: OnBytes | None = None) -> str:
        rel = _check_rel(rel)
        try:
            size = os.stat(local).st_size
        except OSError as exc:
            raise source_error(exc, local) from None
        body = _FileBody(local, size, on_bytes)
        self._s._create(posixpath.join(self.path, rel), body if size else b"",
                        what=f"{self.name}/{self.version}/{rel} (staged)")
        return body.sha256 if size else hashlib.sha256().hexdigest()

    def write_manifest(self, manifest: Manifest) -> None:
        data = manifest.to_json()
        self._s._create(posixpath.join(self.path, MANIFEST_NAME), data,
                        what=f"manifest of {self.name}/{self.version} (staged)")
        self._manifest = data

    def retarget(self, version: str) -> None:
        self.version = validate_version(version)

    @property
    def final_path(self) -> str:
        return self._s._path(self.name, self.version)

    def publish(self) -> None:
        final = self.final_path
        attempt = 0
        while True:
            try:
                # rename2: atomic, never into an existing directory, fails if `final` exists at all.
                self._s._nn("PUT", self.path, "RENAME", idempotent=False, destination=final, renameoptions="NONE",
                            what=f"staged version {self.name}/{self.version}")
                self._published = True
                return
            except _Ambiguous as amb:
                outcome = self._outcome(final)
                if outcome == "won":
                    self._published = True
                    return
                if outcome == "lost":
                    raise VersionExists(f"version {self.name}/{self.version} already exists") from None
                attempt += 1  # the rename did not happen: the destination is still free, try again
                if attempt > self._s.retries:
                    raise Unavailable(f"could not publish {self.name}/{self.version}: the NameNode "
                                      f"{amb.base} did not answer the rename ({amb.detail})",
                                      hint=NAMENODE_HINT) from None
                time.sleep(self._s._backoff(attempt))
            except MdlError as exc:
                if getattr(exc, "remote_exception", None) == "FileAlreadyExistsException":
                    raise VersionExists(f"version {self.name}/{self.version} already exists") from None
                if isinstance(exc, NotFound):
                    raise MdlError(f"the staged files of {self.name}/{self.version} vanished before publishing "
                                   f"({self.path})", hint="was `mdl clean` run during the push? push again") from None
                raise

    def _outcome(self, final: str) -> str:
        """After a lost answer to the rename: 'won', 'lost' or 'not-done' (read back, idempotently)."""
        staged = self._s._exists(self.path)
        try:
            theirs = self._s._reader(posixpath.join(final, MANIFEST_NAME), 0,
                                     self._s._file_length(posixpath.join(final, MANIFEST_NAME), final)).read()
        except NotFound:
            theirs = None
        if not staged and self._manifest is not None and theirs == self._manifest:
            return "won"
        if self._s._exists(final):
            return "lost"
        if staged:
            return "not-done"
        raise MdlError(f"the staged files of {self.name}/{self.version} vanished during publishing ({self.path})")

    def abort(self) -> None:
        if self._published:
            return
        try:
            self._s._delete(self.path)
        except MdlError as exc:  # best effort: `mdl clean` removes what is left
            log.warning("could not remove staging path %s: %s", self.path, exc.message)
