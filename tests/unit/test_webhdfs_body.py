"""WebHDFS transfer pieces that need no cluster: the upload body (a file of known length, read into one
reused buffer, hashed) and the download's local writes."""

from __future__ import annotations

import hashlib
import os

import pytest

from mdl.errors import MdlError, NotFound
from mdl.storage.webhdfs import FileBody, write_pieces


def test_a_file_body_has_a_length_and_gives_the_file_from_one_reused_buffer(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 5)
    (tmp_path / "f").write_bytes(data)
    reported: list[int] = []
    body = FileBody(tmp_path / "f", len(data), reported.append)
    assert len(body) == len(data)  # requests sends Content-Length, not chunks
    chunks, buffers = [], set()
    for view in body:
        assert isinstance(view, memoryview)
        buffers.add(id(view.obj))
        chunks.append(bytes(view))  # a view is valid until the next one is asked for
    assert b"".join(chunks) == data and len(chunks) == 4
    assert len(buffers) == 1  # no allocation per chunk
    assert body.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(reported) == len(data)


def test_a_file_body_sent_again_hashes_again_and_reports_each_byte_once(tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 1)
    (tmp_path / "f").write_bytes(data)
    reported: list[int] = []
    body = FileBody(tmp_path / "f", len(data), reported.append)
    next(iter(body))  # an attempt that broke off after one chunk...
    assert body.sha256 == ""
    assert b"".join(bytes(v) for v in body) == data  # ...and the next one, from the start
    assert body.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(reported) == len(data)


def test_an_abandoned_attempt_is_closed(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 3 * 1024 * 1024)
    body = FileBody(tmp_path / "f", 3 * 1024 * 1024, None)
    it = iter(body)
    next(it)
    body.close()
    with pytest.raises(StopIteration):
        next(it)  # its file is closed


def test_a_file_body_sends_its_length_only_and_fails_if_the_file_shrank(tmp_path):
    (tmp_path / "f").write_bytes(b"abcdef")
    body = FileBody(tmp_path / "f", 4, None)  # the file grew after its size was taken
    assert b"".join(bytes(v) for v in body) == b"abcd" and body.sha256 == hashlib.sha256(b"abcd").hexdigest()
    with pytest.raises(MdlError, match="shrank while it was being pushed"):
        list(FileBody(tmp_path / "f", 10, None))
    with pytest.raises(NotFound, match="vanished while it was being pushed"):  # local, not retried as the network's
        list(FileBody(tmp_path / "missing", 10, None))


def test_a_small_file_body_needs_no_1_mib_buffer(tmp_path):
    (tmp_path / "f").write_bytes(b"tiny")
    (view,) = list(FileBody(tmp_path / "f", 4, None))
    assert bytes(view) == b"tiny" and len(view.obj) == 4


def test_downloads_write_the_local_file_in_small_pieces(tmp_path):
    data = os.urandom(200_001)
    writes: list[int] = []

    class Out:
        def write(self, b):
            writes.append(len(b))
            return len(b)

    with open(tmp_path / "f", "wb") as f:
        write_pieces(f, memoryview(data))
    write_pieces(Out(), memoryview(data))
    assert (tmp_path / "f").read_bytes() == data
    assert writes == [65536, 65536, 65536, 3393]
