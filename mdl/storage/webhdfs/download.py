"""Reading files (internal to the package, but for :class:`WebHdfsReader`): ranged ``OPEN`` requests
that resume where a DataNode broke off, and a file's download to a local path (one stream hashed as it
arrives, or parallel ranges hashed afterwards)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from mdl.errors import MdlError, NotFound, PermissionDenied, Unavailable
from mdl.manifest import CHUNK
from mdl.safefs import create_new, open_beneath
from mdl.storage.base import OnBytes
from mdl.storage.http import Response, body_reader, describe, release
from mdl.storage.webhdfs.datanodes import DataNodeError
from mdl.storage.webhdfs.protocol import hostport

if TYPE_CHECKING:
    from mdl.storage.webhdfs.session import WebHdfsSession

log = logging.getLogger("mdl.storage.webhdfs")


class WebHdfsReader(io.RawIOBase):
    """A streaming reader of bytes ``[start, end)`` of an HDFS file, resuming where a DataNode broke off."""

    def __init__(self, session: WebHdfsSession, path: str, start: int, end: int, what: str | None = None) -> None:
        super().__init__()
        self._session, self._path, self._what = session, path, what
        self._pos, self._end = start, end
        self._resp: Response | None = None
        self._recv: Callable[[memoryview], int] | None = None  # readinto of the response body
        self._addr = ""
        #: transfer addresses of DataNodes the next ``OPEN`` asks the NameNode to avoid
        self.exclude: list[str] = []
        self._failures = 0

    def readable(self) -> bool:
        return True

    def _connect(self) -> None:
        s = self._session
        resp = s.namenode(
            "GET",
            self._path,
            "OPEN",
            what=self._what,
            offset=self._pos,
            length=self._end - self._pos,
            noredirect="true",
            excludedatanodes=",".join(self.exclude) or None,
        )
        location = s.location(resp, "OPEN", self._path)
        self._addr = hostport(location)
        self._resp = s.datanodes.request("GET", location, stream=True)
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
                        if not self.exclude or isinstance(exc, (NotFound, PermissionDenied, Unavailable)):
                            raise
                        self.exclude.clear()  # every replica excluded: let the NameNode choose again
                        raise DataNodeError(self._addr or "?", exc.message) from None
                assert self._recv is not None
                try:
                    n = self._recv(view)
                except Exception as exc:  # socket/http errors mid-stream: resume at self._pos
                    raise DataNodeError(self._addr, describe(exc)) from None
                if not n:
                    raise DataNodeError(self._addr, f"stream ended {self._end - self._pos} bytes early")
                self._pos += n
                self._failures = 0
                return n
            except DataNodeError as e:
                self._drop()
                self._failures += 1
                s = self._session
                if not e.retriable or self._failures > s.retries:
                    raise s.datanodes.failure(e, "read", self._path, self._what, self._failures) from None
                log.info("resuming read of %s at %d after %s", self._path, self._pos, e)
                if e.unreachable:
                    x = s.datanodes.exclude_address(e.address, self._path)
                    if x not in self.exclude:
                        self.exclude.append(x)
                s.backoff.sleep(self._failures)

    def readall(self) -> bytes:
        buf = bytearray(max(0, self._end - self._pos))
        view, got = memoryview(buf), 0
        while n := self.readinto(view[got : got + CHUNK]):  # a break loses at most one chunk's progress
            got += n
        return bytes(buf)

    def close(self) -> None:
        self._drop()
        super().close()


def write_pieces(out: BinaryIO, view: memoryview, most: int = 64 * 1024) -> None:
    """Write ``view`` to a local file in pieces of at most ``most`` bytes (HdfsCLI writes 64 KiB).

    The kernel sizes page-cache folios by the write. On the benchmark VM (a balloon reporting free
    memory to its host), 1 MiB writes, so 1 MiB folios, cost about 1 s more system time per GiB pulled
    than 64 KiB writes, spent copying into the fresh folios; the extra system calls are negligible.
    """
    for i in range(0, len(view), most):
        out.write(view[i : i + most])


def pwrite_pieces(fd: int, view: memoryview, offset: int, most: int = 64 * 1024) -> None:
    """:func:`write_pieces` at ``offset`` of ``fd`` (ranges are written in parallel through one descriptor)."""
    end = len(view)
    i = 0
    while i < end:
        i += os.pwrite(fd, view[i : min(end, i + most)], offset + i)


def download(
    session: WebHdfsSession,
    path: str,
    what: str,
    length: int,
    dest: Path,
    on_bytes: OnBytes | None,
    *,
    max_parts: int,
    range_min: int,
) -> str:
    """Copy the ``length`` bytes of ``path`` to the new file ``dest``; the sha256 of what was written.

    Files of at least ``2 * range_min`` bytes are read in up to ``max_parts`` parallel ranges of at
    least ``range_min`` bytes, then hashed; anything else in one stream, hashed as it arrives.
    """
    parts = min(max_parts, length // max(1, range_min)) if length >= 2 * range_min else 1
    if parts <= 1:
        h = hashlib.sha256()
        buf = memoryview(bytearray(min(CHUNK, max(1, length))))  # a small model needs no 1 MiB buffer
        with create_new(dest) as out, session.reader(path, 0, length, what) as src:
            while n := src.readinto(buf):
                h.update(buf[:n])
                write_pieces(out, buf[:n])
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
            with session.reader(path, start, end, what) as src:
                pos = start
                while not stop.is_set() and (n := src.readinto(buf)):
                    pwrite_pieces(fd, buf[:n], pos)
                    pos += n
                    if on_bytes:
                        with lock:
                            on_bytes(n)

        with ThreadPoolExecutor(max_workers=len(spans), thread_name_prefix="mdl-range") as pool:
            futures = [pool.submit(fetch, s) for s in spans]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()
                raise
    h = hashlib.sha256()
    with open_beneath(dest.parent, dest.name) as f:  # what was written, never a symlink in its place
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
