"""Moving files: parallel uploads into a stage and verified downloads into a local directory.

Memory stays bounded: every file is streamed in 1 MiB chunks, at most ``jobs`` at a time.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from mdl.errors import Conflict, IntegrityError, InvalidInput
from mdl.manifest import MANIFEST_NAME, FileEntry, Manifest, file_matches, hash_file
from mdl.safefs import create_new, inside, remove_tree
from mdl.storage.base import Stage, Storage

if TYPE_CHECKING:
    from mdl.blobcache import BlobCache

T = TypeVar("T")


class Progress(Protocol):
    def add_total(self, n: int) -> None: ...
    def advance(self, n: int) -> None: ...


class NoProgress:
    def add_total(self, n: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


class _Counter:
    """Thread-safe adapter so worker threads can report bytes."""

    def __init__(self, progress: Progress) -> None:
        self._p = progress
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self._p.advance(n)


def run_parallel(fn: Callable[[T], None], items: Iterable[T], jobs: int) -> None:
    """Run ``fn`` over ``items`` on up to ``jobs`` threads; the first error wins and is raised."""
    items = list(items)
    if jobs <= 1 or len(items) <= 1:
        for it in items:
            fn(it)
        return
    pool = ThreadPoolExecutor(max_workers=min(jobs, len(items)))
    try:
        futures = [pool.submit(fn, it) for it in items]
        for f in futures:
            f.result()
    finally:  # after a failure or Ctrl-C/SIGTERM, files not yet begun are not begun
        pool.shutdown(wait=True, cancel_futures=True)


def hash_files(files: list[tuple[str, Path]], jobs: int, progress: Progress) -> list[FileEntry]:
    """FileEntry for each local file, hashed in parallel."""
    progress.add_total(sum(p.stat().st_size for _, p in files))
    counter = _Counter(progress)
    entries: dict[str, FileEntry] = {}

    def one(item: tuple[str, Path]) -> None:
        rel, local = item
        size, sha = hash_file(local, counter)
        entries[rel] = FileEntry(rel, size, sha)

    run_parallel(one, files, jobs)
    return [entries[rel] for rel, _ in files]


def upload_files(
    stage: Stage, files: list[tuple[str, Path]], jobs: int, progress: Progress, expected: list[FileEntry] | None = None
) -> list[FileEntry]:
    """Upload into the stage, hashing what is sent (one pass over each file); return the entries.

    With ``expected`` (the files were hashed before), a file that changed since fails the push.
    """
    progress.add_total(sum(p.stat().st_size for _, p in files))
    counter = _Counter(progress)
    want = {e.path: e for e in expected or []}
    sent: dict[str, FileEntry] = {}

    def one(item: tuple[str, Path]) -> None:
        rel, local = item
        size = 0

        def count(n: int) -> None:
            nonlocal size
            size += n
            counter(n)

        sha = stage.upload(rel, local, count)
        entry = sent[rel] = FileEntry(rel, size, sha)
        if expected is not None and want.get(rel) != entry:
            raise IntegrityError(
                f"{str(local)!r} changed while it was being pushed", hint="push again once the file is complete"
            )

    run_parallel(one, files, jobs)
    return [sent[rel] for rel, _ in files]


def verify_local(dest: Path, manifest: Manifest) -> bool:
    """True if ``dest`` holds this version's manifest and every file with its size and sha256."""
    try:
        local = Manifest.from_json((dest / MANIFEST_NAME).read_bytes())
    except (OSError, IntegrityError):
        return False
    if local.digest != manifest.digest:
        return False
    return all(file_matches(dest / e.path, e) for e in manifest.files)


TMP_MARK = ".mdl-tmp-"  # .NAME.mdl-tmp-TOKEN: a download in progress (flock held) or a dead one's debris
OLD_MARK = ".mdl-old-"  # .NAME.mdl-old-TOKEN: the replaced copy, between two renames of a swap
OLD_AFTER = 3600.0


def download_version(
    storage: Storage,
    manifest: Manifest,
    dest: Path,
    jobs: int,
    progress: Progress,
    force: bool = False,
    cache: BlobCache | None = None,
    accept: Callable[[Manifest], None] | None = None,
) -> None:
    """Download every file to a temporary sibling of ``dest``, verify, then rename into place.

    ``accept`` is the last word once every file matched the manifest and before the rename (the
    signature policy): it raises to refuse the version, and the temporary copy goes.

    On any failure nothing is left behind and ``dest`` is as it was. With a ``cache`` (on the same
    file system), files come from it, or are downloaded once into it, and are hard-linked. Every
    file is created new inside the temporary directory (never through a symlink, never over a file),
    whatever paths the manifest holds.
    """
    dest = dest.absolute()
    if os.path.exists(dest):
        if not os.path.isdir(dest):
            raise InvalidInput(f"{str(dest)!r} exists and is not a directory")
        if any(dest.iterdir()) and not (dest / MANIFEST_NAME).exists() and not force:
            raise Conflict(
                f"{str(dest)!r} is not empty and holds no mdl version",
                hint="choose another directory with -d, or pass --force to replace it",
            )
    tmp = _tmp_beside(dest)
    lock = None
    try:
        lock = _make_locked_dir(tmp, dest)
        shared = cache if cache is not None and cache.usable_for(tmp) else None
        progress.add_total(manifest.bytes)
        counter = _Counter(progress)

        def one(entry: FileEntry) -> None:
            target = inside(tmp, entry.path)

            def fetch(path: Path) -> None:
                sha = storage.download(manifest.name, manifest.version, entry, path, counter)
                if sha != entry.sha256 or path.stat().st_size != entry.size:
                    raise IntegrityError(
                        f"{manifest.name}/{manifest.version}/{entry.path} does not match its manifest "
                        f"(sha256 {sha[:12]}…, expected {entry.sha256[:12]}…)",
                        hint="the stored copy is corrupt: push the version again or pull another one",
                    )

            if shared is None:
                fetch(target)
                return
            try:
                if shared.fetch(entry, target, fetch):
                    counter(entry.size)
            except OSError as exc:  # the store itself failed (permissions, a full disk): do without it
                import logging

                logging.getLogger("mdl.transfer").warning(
                    "shared store %s unusable (%s): downloading %s directly", shared.root, exc, entry.path
                )
                if os.path.lexists(target):  # inside our own temporary directory: ours to remove
                    os.unlink(target)
                fetch(target)

        run_parallel(one, manifest.files, jobs)
        if accept is not None:
            accept(manifest)
        with create_new(tmp / MANIFEST_NAME) as f:
            f.write(manifest.to_json())
        _swap_into_place(tmp, dest)
    except BaseException as exc:
        # Ours unless making it failed (then nothing is there, or what is there is not ours). A signal
        # landing between that mkdir and ``lock =`` still finds the directory removed here.
        if not (lock is None and isinstance(exc, InvalidInput)):
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)


def _tmp_beside(dest: Path) -> Path:
    """A fresh name for the temporary sibling of ``dest`` (its parent created if missing); temporaries
    of downloads that died (no lock held) are swept first."""
    parent = dest.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InvalidInput(f"cannot create {str(dest)!r}: {str(parent)!r} is not a directory") from None
    except OSError as exc:
        raise InvalidInput(
            f"cannot create {str(dest)!r}: its parent directory does not exist and cannot be created ({exc.strerror})",
            hint="choose another directory with -d",
        ) from None
    sweep_temporaries(parent, dest.name)
    return parent / f".{dest.name}{TMP_MARK}{secrets.token_hex(4)}"


def _make_locked_dir(tmp: Path, dest: Path) -> int:
    """Create ``tmp`` and return a descriptor holding its flock(2) for as long as the download runs."""
    try:
        tmp.mkdir()
    except OSError as exc:
        why = "its parent directory does not exist" if exc.errno == errno.ENOENT else exc.strerror
        raise InvalidInput(f"cannot create {str(dest)!r}: {why}", hint="choose another directory with -d") from None
    fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def sweep_temporaries(parent: Path, name: str | None = None) -> list[str]:
    """Remove from ``parent`` the temporaries of downloads that were killed (of ``name`` only, if
    given): ours alone (the names mdl gives them), real directories, and only when no live download
    holds their lock."""
    tmp, old = (f".{name}{TMP_MARK}", f".{name}{OLD_MARK}") if name else (TMP_MARK, OLD_MARK)
    removed: list[str] = []
    try:
        names = [
            n
            for n in os.listdir(parent)
            if n.startswith(".") and (n.startswith((tmp, old)) if name else (tmp in n or old in n))
        ]
    except OSError:
        return removed
    for n in names:
        path = parent / n
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # gone, not a directory, or a symlink: not ours
        try:
            if old in n:  # renamed aside for a moment by a swap: only an old one is debris
                if time.time() - os.fstat(fd).st_ctime < OLD_AFTER:
                    continue
            else:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a download in progress holds it
        finally:
            os.close(fd)
        if remove_tree(path, parent):
            removed.append(n)
    return removed


def _swap_into_place(tmp: Path, dest: Path) -> None:
    if not os.path.exists(dest):
        os.rename(tmp, dest)
        return
    old = dest.parent / f".{dest.name}{OLD_MARK}{secrets.token_hex(4)}"
    os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except OSError:
        os.rename(old, dest)
        raise
    shutil.rmtree(old, ignore_errors=True)
