"""A host-wide store of verified files, named by their sha256, that replicas on one host share.

    <cache.dir>/<sha256>          a verified file, read-only (0444)
    <cache.dir>/.locks/<sha256>   flock(2) held while one process downloads that file

Several watchers (or servers) on one host following one model each need the same bytes. The first
to want a file downloads it once into the store (verified, then renamed into place); the others wait
on its lock and hard-link the result into their own version directories, checking size and sha256
again before use, so a replica never loads an unverified copy even if the store was tampered with.
A store on another filesystem than the version directory is not used (a link cannot cross it, and a
copy would only double the disk used). The file system counts the links: a stored file nothing links
to any more (``st_nlink == 1``) is garbage, removed when a watcher prunes a version that used it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mdl.errors import IntegrityError
from mdl.manifest import FileEntry, file_matches, is_sha256


class BlobCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    @classmethod
    def from_setting(cls, value: str | None) -> BlobCache | None:
        """``cache.dir``: a path, or empty / ``none`` / ``off`` for no shared store."""
        if not value or value.strip().lower() in ("none", "off", "false", "0"):
            return None
        return cls(Path(value).expanduser())

    def usable_for(self, dest: Path) -> bool:
        """True if files can be hard-linked from the store into ``dest`` (same file system)."""
        locks = self.root / ".locks"
        try:
            try:
                dev = os.stat(locks).st_dev
            except FileNotFoundError:
                locks.mkdir(parents=True, exist_ok=True)
                dev = os.stat(locks).st_dev
            parent = next(p for p in [dest, *dest.parents] if os.path.exists(p))
            return os.stat(parent).st_dev == dev
        except (OSError, StopIteration):
            return False

    def _blob(self, entry: FileEntry) -> Path:
        if not is_sha256(entry.sha256):
            raise IntegrityError(f"{entry.path}: {entry.sha256!r} is not a sha256 digest")
        return self.root / entry.sha256

    def _lock_file(self, sha: str) -> int:
        """An open descriptor of the file whose flock(2) guards ``sha`` (closing it releases the lock)."""
        return os.open(self.root / ".locks" / sha, os.O_CREAT | os.O_RDWR, 0o644)

    @contextmanager
    def _locked(self, sha: str) -> Iterator[None]:
        fd = self._lock_file(sha)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _link(self, blob: Path, target: Path, entry: FileEntry) -> bool:
        """Link a stored, still intact copy to ``target``; False if there is none."""
        try:
            os.link(blob, target)
        except FileNotFoundError:
            return False
        if file_matches(target, entry):
            return True
        os.unlink(target)  # damaged in the store: drop it there too, and download again
        try:
            os.unlink(blob)
        except FileNotFoundError:
            pass
        return False

    def fetch(self, entry: FileEntry, target: Path, download: Callable[[Path], None]) -> bool:
        """Put a verified copy of ``entry`` at ``target``. ``download(path)`` writes the file there and
        verifies it (raising if it does not match). True if the bytes came from the store."""
        blob = self._blob(entry)
        while True:
            if self._link(blob, target, entry):
                return True
            fd = self._lock_file(entry.sha256)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    # Another process is downloading it. Wait with a shared lock, so that every waiter
                    # wakes at once when it is done (and links in parallel); if it failed, try ourselves.
                    fcntl.flock(fd, fcntl.LOCK_SH)
                    continue
                if self._link(blob, target, entry):  # stored while we looked
                    return True
                tmp = self.root / f".{entry.sha256}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
                try:
                    download(tmp)
                    os.chmod(tmp, 0o444)
                    os.replace(tmp, blob)
                finally:
                    try:
                        os.unlink(tmp)
                    except FileNotFoundError:
                        pass
                os.link(blob, target)  # still locked: no release() can take it before we link it
                return False
            finally:
                os.close(fd)  # releases the lock

    def release(self, entries: list[FileEntry]) -> list[str]:
        """Remove stored files of ``entries`` that nothing links to any more; returns their digests."""
        removed = []
        for entry in entries:
            try:
                blob = self._blob(entry)
                if os.stat(blob).st_nlink != 1:
                    continue
                with self._locked(entry.sha256):  # not while another process is linking it
                    if os.stat(blob).st_nlink == 1:
                        os.unlink(blob)
                        removed.append(entry.sha256)
            except (OSError, IntegrityError):  # gone already, or not ours to judge
                continue
        return removed

    def sweep(self) -> list[str]:
        """Remove stored files that nothing links to any more (their directories were deleted
        wholesale) and the debris of downloads that died. Returns the names removed."""
        removed: list[str] = []
        try:
            names = [p.name for p in self.root.iterdir()]
        except FileNotFoundError:
            return removed
        for name in names:
            sha = name[1:65] if name.startswith(".") and name.endswith(".tmp") else name
            if not is_sha256(sha):
                continue
            try:
                fd = self._lock_file(sha)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a download of it is running
                path = self.root / name
                if name != sha or os.stat(path).st_nlink == 1:
                    os.unlink(path)
                    removed.append(name)
            except OSError:
                pass
            finally:
                os.close(fd)
        return removed
