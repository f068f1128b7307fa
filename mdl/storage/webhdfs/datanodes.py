"""The DataNodes' side of a session (internal to the package).

Data never passes through the NameNode: a ``CREATE``/``OPEN`` answer names a DataNode ``Location``
and :meth:`DataNodes.request` goes there. A failure is a :class:`DataNodeError` until the step gives
up (:meth:`DataNodes.failure` makes it an MdlError); meanwhile the next attempt asks the NameNode to
avoid that DataNode by its transfer address (:meth:`DataNodes.exclude_address`).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from mdl.errors import (
    Conflict,
    DataNodeUnreachable,
    MdlError,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from mdl.storage.http import HttpError, Response, release
from mdl.storage.webhdfs.protocol import DATANODE_HINT, FINAL_EXCEPTIONS, QUOTA_EXCEPTIONS, hostport, remote_error

if TYPE_CHECKING:
    from mdl.storage.webhdfs.session import WebHdfsSession

log = logging.getLogger("mdl.storage.webhdfs")


class DataNodeError(Exception):
    """A DataNode step failed. ``unreachable``: never connected; ``remote``: it answered an error."""

    def __init__(
        self, address: str, detail: str, *, unreachable: bool = False, remote: tuple[int, str | None, str] | None = None
    ) -> None:
        super().__init__(f"DataNode {address}: {detail}")
        self.address, self.detail, self.unreachable, self.remote = address, detail, unreachable, remote

    @property
    def retriable(self) -> bool:
        if self.remote is None:
            return True
        status, exc, _ = self.remote
        return exc not in FINAL_EXCEPTIONS and status != 401


class DataNodes:
    """Requests to DataNodes, and what is known of their addresses (``host:httpPort`` -> ``ip:xferPort``)."""

    def __init__(self, session: WebHdfsSession) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._xfer: dict[str, str] = {}

    def request(self, method: str, url: str, *, data: Any = None, stream: bool = False) -> Response:
        """One request to a DataNode ``Location``; failures become :class:`DataNodeError`."""
        addr = hostport(url)
        timeout = self._session.timeout
        try:
            resp = self._session.http.request(method, url, body=data, stream=stream, timeout=(timeout, timeout))
        except HttpError as exc:
            raise DataNodeError(addr, exc.detail, unreachable=exc.unsent) from None
        if resp.status >= 300:
            exc_name, msg = remote_error(resp)  # reads the error document (small), even of a stream
            release(resp)
            raise DataNodeError(
                addr, f"{exc_name + ': ' if exc_name else ''}{msg}", remote=(resp.status, exc_name, msg)
            )
        return resp

    def learn(self, path: str | None = None) -> None:
        """Map DataNode HTTP addresses to transfer addresses (best effort; for excludedatanodes): from the
        NameNode's JMX ``LiveNodes``, and with ``path`` from its ``GET_BLOCK_LOCATIONS`` too."""
        s = self._session
        found: dict[str, str] = {}
        try:
            resp = s.http.request(
                "GET",
                s.active_namenode + "/jmx",
                params={"qry": "Hadoop:service=NameNode,name=NameNodeInfo"},
                timeout=(s.timeout, s.timeout),
                authenticate=True,
            )
            if resp.status < 300:
                for key, node in json.loads(resp.json()["beans"][0]["LiveNodes"]).items():
                    xfer = node.get("xferaddr") or key
                    host = key.rsplit(":", 1)[0]
                    for addr in (node.get("infoAddr"), node.get("infoSecureAddr")):
                        if addr and not addr.endswith(":0"):
                            found[addr] = xfer
                            found[f"{host}:{addr.rsplit(':', 1)[1]}"] = xfer
        except Exception as exc:
            log.debug("no DataNode list from JMX: %s", exc)
        if path is not None:
            try:
                resp = s.namenode("GET", path, "GET_BLOCK_LOCATIONS", offset=0, length=1 << 62)
                for block in s.json(resp, "GET_BLOCK_LOCATIONS", path)["LocatedBlocks"]["locatedBlocks"]:
                    for dn in block.get("locations", []):
                        xfer = f"{dn['ipAddr']}:{dn['xferPort']}"
                        for host in (dn.get("hostName"), dn.get("ipAddr")):
                            for port in (dn.get("infoPort"), dn.get("infoSecurePort")):
                                if host and port:
                                    found[f"{host}:{port}"] = xfer
            except Exception as exc:
                log.debug("no block locations for %s: %s", path, exc)
        with self._lock:
            self._xfer.update(found)

    def known(self) -> dict[str, str]:
        """What :meth:`learn` found so far: DataNode HTTP address -> transfer address."""
        with self._lock:
            return dict(self._xfer)

    def exclude_address(self, http_addr: str, path: str | None = None) -> str:
        """What to put in ``excludedatanodes`` for the DataNode serving HTTP at ``http_addr``."""
        self.learn(path)  # failures are rare: refresh (transfer ports change on restarts)
        with self._lock:
            known = self._xfer.get(http_addr)
        # Unknown: the host alone (the NameNode then excludes the DataNode on that host).
        return known or http_addr.rsplit(":", 1)[0]

    def failure(self, e: DataNodeError, verb: str, path: str, what: str | None, attempts: int) -> MdlError:
        """The MdlError of a DataNode step (``verb``: write or read) that gave up after ``attempts``."""
        if e.unreachable:
            return DataNodeUnreachable(
                f"cannot reach HDFS DataNode {e.address} to {verb} {what or path}: {e.detail} ({attempts} attempt(s))",
                e.address,
                DATANODE_HINT,
            )
        if e.remote is not None:
            status, exc_name, msg = e.remote
            err = self._session.error(status, exc_name, msg, "CREATE" if verb == "write" else "OPEN", path, what)
            if not isinstance(err, (PermissionDenied, NotFound, Conflict)) and exc_name not in QUOTA_EXCEPTIONS:
                err = MdlError(
                    f"HDFS DataNode {e.address} failed to {verb} {what or path}: "
                    f"{exc_name + ': ' if exc_name else ''}{msg} ({attempts} attempt(s))"
                )
            return err
        return Unavailable(
            f"lost the connection to HDFS DataNode {e.address} while trying to {verb} "
            f"{what or path}: {e.detail} ({attempts} attempt(s))",
            hint=DATANODE_HINT,
        )
