"""The connectivity diagnosis of a WebHDFS storage: NameNode, tree root, a tiny write + read + delete,
every DataNode (:meth:`WebHdfsStorage.check`)."""

from __future__ import annotations

import os
import posixpath
import secrets
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mdl.errors import MdlError, NotFound
from mdl.storage.base import STAGING_DIR
from mdl.storage.webhdfs.datanodes import DataNodeError
from mdl.storage.webhdfs.protocol import DATANODE_HINT, hostport

if TYPE_CHECKING:
    from mdl.storage.webhdfs.session import WebHdfsSession


@dataclass(frozen=True)
class CheckResult:
    """One line of :meth:`WebHdfsStorage.check`."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None


def check(session: WebHdfsSession, root: str) -> list[CheckResult]:
    """Connectivity check of the tree at ``root``: never raises for what it finds; each step is a result."""
    results: list[CheckResult] = []

    def fail(name: str, exc: BaseException) -> list[CheckResult]:
        hint = getattr(exc, "hint", None)
        results.append(CheckResult(name, False, getattr(exc, "message", None) or str(exc), hint))
        return results

    try:
        t = time.monotonic()
        session.status("/")
        results.append(
            CheckResult(
                "namenode",
                True,
                f"{session.active_namenode} answered in {time.monotonic() - t:.2f}s (HDFS user {session.who})",
            )
        )
    except MdlError as exc:
        return fail("namenode", exc)
    try:
        st = session.status(root)
        results.append(
            CheckResult(
                "root",
                st.get("type") == "DIRECTORY",
                f"{root}: {st.get('type', '?').lower()} owned by {st.get('owner')}:"
                f"{st.get('group')} mode {st.get('permission')}",
            )
        )
    except NotFound:
        results.append(CheckResult("root", True, f"{root} does not exist yet (the first push creates it)"))
    except MdlError as exc:
        fail("root", exc)

    path = posixpath.join(root, STAGING_DIR, f"check.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}")
    payload = secrets.token_bytes(64)
    written = False
    try:
        location = session.location(
            session.namenode("PUT", path, "CREATE", overwrite="true", noredirect="true"), "CREATE", path
        )
        session.datanodes.request("PUT", location, data=payload)
        written = True
        results.append(CheckResult("write", True, f"wrote {len(payload)} bytes through DataNode {hostport(location)}"))
        location = session.location(
            session.namenode("GET", path, "OPEN", offset=0, length=len(payload), noredirect="true"), "OPEN", path
        )
        ok = session.datanodes.request("GET", location).data == payload
        results.append(
            CheckResult(
                "read", ok, f"read back through DataNode {hostport(location)}" + ("" if ok else ": the bytes differ")
            )
        )
    except DataNodeError as e:
        step = "write" if not written else "read"
        fail(step, session.datanodes.failure(e, step, path, None, 1))
    except MdlError as exc:
        fail("write" if not written else "read", exc)
    session.datanodes.learn(path if written else None)
    addrs = sorted({a for a in session.datanodes.known() if not a.endswith(":0")})
    bad = []
    for addr in addrs:
        host, port = addr.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=min(session.timeout, 5.0)).close()
        except OSError as exc:
            bad.append(f"{addr} ({exc.strerror or exc})")
    if bad:
        results.append(CheckResult("datanodes", False, "unreachable DataNode(s): " + ", ".join(bad), DATANODE_HINT))
    elif addrs:
        results.append(
            CheckResult("datanodes", True, f"{len(addrs)} DataNode address(es) reachable: " + ", ".join(addrs))
        )
    if written:
        try:
            session.delete(path)
            results.append(CheckResult("delete", True, f"removed {path}"))
        except MdlError as exc:
            fail("delete", exc)
    return results
