"""The host-wide file store: one download per file per host, verified links, garbage by link count."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from mdl.blobcache import BlobCache
from mdl.errors import IntegrityError
from mdl.manifest import FileEntry

DATA = b"the bytes of a model file"
ENTRY = FileEntry("model.pkl", len(DATA), hashlib.sha256(DATA).hexdigest())


class Downloads:
    """A download that writes ``data`` (verifying it, as download_version's does) and counts calls."""

    def __init__(self, data: bytes = DATA, delay: float = 0.0) -> None:
        self.data, self.delay, self.calls = data, delay, 0
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> None:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        path.write_bytes(self.data)
        if hashlib.sha256(self.data).hexdigest() != ENTRY.sha256:
            raise IntegrityError("does not match its manifest")


def test_the_first_fetch_downloads_the_next_links(tmp_path):
    store, dl = BlobCache(tmp_path / "blobs"), Downloads()
    assert store.usable_for(tmp_path / "a")
    assert store.fetch(ENTRY, tmp_path / "a", dl) is False  # downloaded
    assert store.fetch(ENTRY, tmp_path / "b", dl) is True  # linked
    assert dl.calls == 1
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == DATA
    blob = tmp_path / "blobs" / ENTRY.sha256
    assert os.stat(blob).st_nlink == 3 and os.stat(blob).st_mode & 0o777 == 0o444
    assert not [p for p in blob.parent.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_fetches_download_once(tmp_path):
    store, dl = BlobCache(tmp_path / "blobs"), Downloads(delay=0.2)
    store.usable_for(tmp_path)
    threads = [threading.Thread(target=store.fetch, args=(ENTRY, tmp_path / f"t{i}", dl)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dl.calls == 1  # the others waited on the lock, then linked
    assert all((tmp_path / f"t{i}").read_bytes() == DATA for i in range(8))


def test_a_damaged_stored_file_is_dropped_and_downloaded_again(tmp_path):
    store, dl = BlobCache(tmp_path / "blobs"), Downloads()
    store.usable_for(tmp_path)
    store.fetch(ENTRY, tmp_path / "a", dl)
    blob = tmp_path / "blobs" / ENTRY.sha256
    os.unlink(tmp_path / "a")
    blob.chmod(0o644)
    blob.write_bytes(b"the bytes of a model fil!")  # same size, other bytes
    assert store.fetch(ENTRY, tmp_path / "b", dl) is False
    assert dl.calls == 2 and (tmp_path / "b").read_bytes() == DATA and blob.read_bytes() == DATA


def test_a_failed_download_leaves_nothing(tmp_path):
    store = BlobCache(tmp_path / "blobs")
    store.usable_for(tmp_path)
    with pytest.raises(IntegrityError):
        store.fetch(ENTRY, tmp_path / "a", Downloads(b"corrupt"))
    assert not (tmp_path / "a").exists()
    assert [p.name for p in (tmp_path / "blobs").iterdir()] == [".locks"]


def test_release_removes_only_what_nothing_links_to(tmp_path):
    store, dl = BlobCache(tmp_path / "blobs"), Downloads()
    store.usable_for(tmp_path)
    store.fetch(ENTRY, tmp_path / "a", dl)
    store.fetch(ENTRY, tmp_path / "b", dl)
    os.unlink(tmp_path / "a")
    assert store.release([ENTRY]) == []  # b still links it
    os.unlink(tmp_path / "b")
    assert store.release([ENTRY]) == [ENTRY.sha256]
    assert not (tmp_path / "blobs" / ENTRY.sha256).exists()
    assert store.release([ENTRY, FileEntry("x", 1, "not-a-digest")]) == []


@pytest.mark.parametrize("value, on", [(None, False), ("", False), ("none", False), ("off", False),
                                        ("~/blobs", True)])
def test_the_setting_turns_it_off(value, on):
    store = BlobCache.from_setting(value)
    assert (store is not None) == on
    if on:
        assert store.root == Path("~/blobs").expanduser()


def test_a_digest_that_is_not_one_never_becomes_a_path(tmp_path):
    store = BlobCache(tmp_path / "blobs")
    with pytest.raises(IntegrityError):
        store.fetch(FileEntry("x", 1, "../../etc/passwd"), tmp_path / "x", Downloads())


def test_sweep_removes_what_nothing_links_and_dead_downloads_only(tmp_path):
    store, dl = BlobCache(tmp_path / "blobs"), Downloads()
    store.usable_for(tmp_path)
    store.fetch(ENTRY, tmp_path / "kept", dl)
    other = b"another file"
    other_entry = FileEntry("o", len(other), hashlib.sha256(other).hexdigest())
    store.fetch(other_entry, tmp_path / "gone", _writer(other))
    os.unlink(tmp_path / "gone")  # its directory deleted wholesale: only the store links it
    dead = tmp_path / "blobs" / f".{ENTRY.sha256}.123.abcd.tmp"  # a download that died
    dead.write_bytes(b"half")
    assert sorted(store.sweep()) == sorted([other_entry.sha256, dead.name])
    assert (tmp_path / "blobs" / ENTRY.sha256).exists() and (tmp_path / "kept").read_bytes() == DATA
    assert store.sweep() == []


def _writer(data: bytes):
    return lambda path: path.write_bytes(data)
