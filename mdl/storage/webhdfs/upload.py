"""Writing files (internal to the package): the upload body of a local file, and a file's ``CREATE`` in
the two WebHDFS steps (the NameNode names a DataNode, the data goes there), retried as a whole."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from mdl.errors import MdlError, NotFound, PermissionDenied, Unavailable
from mdl.manifest import CHUNK
from mdl.storage.base import OnBytes, open_source
from mdl.storage.webhdfs.datanodes import DataNodeError

if TYPE_CHECKING:
    from mdl.storage.webhdfs.session import WebHdfsSession

log = logging.getLogger("mdl.storage.webhdfs")


class FileBody:
    """The first ``size`` bytes of a local file as a request body of known length (``Content-Length``).

    Each iteration (one per attempt of :func:`write_file`) reads the file again into one reused
    buffer, hashing each chunk before it is sent: ``sha256`` is that of the bytes sent by the last
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
            readinto = cast(io.FileIO, f).readinto  # open_source opens it unbuffered
            while sent < self.size:
                try:
                    n = readinto(buf[: self.size - sent])
                except OSError as exc:  # a local failure, not the network's: never retried as a DataNode error
                    raise MdlError(f"cannot read {str(self.local)!r}: {exc.strerror or exc}") from None
                if not n:
                    raise MdlError(
                        f"{str(self.local)!r} shrank while it was being pushed",
                        hint="push again once the file is complete",
                    )
                sent += n
                if self.on_bytes and sent > self._reported:
                    self.on_bytes(sent - self._reported)
                    self._reported = sent
                h.update(buf[:n])
                yield buf[:n]
        self.sha256 = h.hexdigest()


def write_file(session: WebHdfsSession, path: str, data: bytes | FileBody, what: str | None = None) -> None:
    """Write ``path`` (overwriting it) in the two WebHDFS steps; retried as a whole (``data`` is sent again)."""
    exclude: list[str] = []
    attempt = 0
    while True:
        try:
            resp = session.namenode(
                "PUT",
                path,
                "CREATE",
                what=what,
                overwrite="true",
                noredirect="true",
                blocksize=session.blocksize,
                replication=session.replication,
                excludedatanodes=",".join(exclude) or None,
            )
        except MdlError as exc:
            if not exclude or isinstance(exc, (NotFound, PermissionDenied, Unavailable)):
                raise
            exclude.clear()  # no DataNode left to choose: let the NameNode choose freely again
            continue
        location = session.location(resp, "CREATE", path)
        try:
            session.datanodes.request("PUT", location, data=data)
            return
        except DataNodeError as e:
            if isinstance(data, FileBody):
                data.close()  # an attempt abandoned mid-body: close its file now
            attempt += 1
            if not e.retriable or attempt > session.retries:
                raise session.datanodes.failure(e, "write", path, what, attempt) from None
            log.info("retrying write of %s after %s", path, e)
            if e.unreachable:
                x = session.datanodes.exclude_address(e.address)
                if x not in exclude:
                    exclude.append(x)
            session.backoff.sleep(attempt)
