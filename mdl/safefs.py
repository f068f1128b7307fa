"""File-system steps that stay where they are told: no symlink followed, nothing truncated, nothing
removed that is not a real directory under a real root.

Storage and registry contents name files (a manifest's paths, a tree's entries) and are untrusted
input; these are the only ways mdl opens, creates or removes what such names point at.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from mdl.errors import Escape, MdlError, NotFound, PermissionDenied

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def create_new(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for writing, creating it: never an existing file, never through a symlink at
    ``path`` itself (so nothing that was there can be truncated)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise Escape(f"{str(path)!r} already exists: refusing to overwrite it") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:  # a name from untrusted input that this file system cannot hold
            raise MdlError(f"cannot create {str(path)[:200]!r}: {exc.strerror}") from None
        raise  # the file system's own failure (full, read-only, permissions): the caller's to judge
    return os.fdopen(fd, "wb")


def open_beneath(root: str | os.PathLike, rel: str) -> BinaryIO:
    """Open ``root/rel`` for reading without following a symlink anywhere in ``rel``; only a regular
    file (a FIFO, socket or device is refused without being opened). ``root`` itself is trusted
    (configuration). NotFound if there is no such file (or a file stands where a directory should)."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise Escape(f"{rel!r} is not a plain relative path")
    fd = _open_dir(os.fspath(root), None, rel, 0)
    try:
        for i, part in enumerate(parts[:-1], 1):
            nxt = _open_dir(part, fd, rel, i)
            os.close(fd)
            fd = nxt
        try:
            # Look before opening: a device or a FIFO planted in the tree is never opened at all.
            st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise Escape(f"{rel!r} is a symlink: refusing to follow it")
            if not stat.S_ISREG(st.st_mode):
                raise Escape(f"{rel!r} is not a regular file")
            # O_NONBLOCK: should a FIFO take the file's place now, the open must not block; cleared below.
            ffd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            raise _refusal(exc, rel) from None
    finally:
        os.close(fd)
    try:
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode):
            raise Escape(f"{rel!r} is not a regular file")
        os.set_blocking(ffd, True)
    except BaseException:
        os.close(ffd)
        raise
    return os.fdopen(ffd, "rb")


def _open_dir(name: str, dir_fd: int | None, rel: str, depth: int) -> int:
    """Open a directory: the trusted root (``dir_fd`` None), or component ``depth`` of ``rel`` (not
    following a symlink)."""
    try:
        return os.open(
            name, _DIR_FLAGS if dir_fd is not None else os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError as exc:
        if dir_fd is not None and exc.errno in (errno.ELOOP, errno.ENOTDIR):
            # O_DIRECTORY|O_NOFOLLOW fails alike on a symlink and on a file: tell them apart.
            prefix = "/".join(rel.split("/")[:depth])
            try:
                is_link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
            except OSError:
                is_link = False
            if is_link:
                raise Escape(f"{rel!r} passes through a symlink ({prefix!r}): refusing to follow it") from None
            raise NotFound(f"{rel!r} does not exist ({prefix!r} is not a directory)") from None
        raise _refusal(exc, rel) from None


def _refusal(exc: OSError, rel: str) -> Exception:
    if exc.errno == errno.ENOENT:
        return NotFound(f"{rel!r} does not exist")
    if exc.errno == errno.ENOTDIR:  # the trusted root, or a component swapped for a file meanwhile
        return NotFound(f"{rel!r} does not exist (a file stands where a directory should be)")
    if exc.errno == errno.EACCES:
        return PermissionDenied(f"{rel!r} is not readable (permission denied)")
    if exc.errno == errno.ELOOP:  # a symlink (O_NOFOLLOW)
        return Escape(f"{rel!r} passes through a symlink: refusing to follow it")
    if exc.errno in (errno.ENXIO, errno.ENODEV):  # a socket or a device
        return Escape(f"{rel!r} is not a regular file")
    return MdlError(f"cannot open {rel!r}: {exc.strerror or exc}")


def is_real_dir(path: str | os.PathLike) -> bool:
    """A directory that is not a symlink."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def real_path_under(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True if every component of ``path`` below ``root`` is a real directory (no symlink) and
    ``path`` lies strictly inside ``root``."""
    root_s, path_s = os.path.abspath(root), os.path.abspath(path)
    rel = os.path.relpath(path_s, root_s)
    if rel == "." or rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        return False
    cur = root_s
    for part in rel.split(os.sep):
        cur = os.path.join(cur, part)
        if not is_real_dir(cur):
            return False
    return True


def remove_tree(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Remove the directory ``path`` only if it is a real directory reached from ``root`` through real
    directories (never a symlink's target). Every step is taken through an open directory (openat,
    O_NOFOLLOW) and shutil.rmtree works below that descriptor, so a component swapped for a symlink
    while this runs is not followed either. Returns True if something was removed."""
    root_s, path_s = os.path.abspath(root), os.path.abspath(path)
    rel = os.path.relpath(path_s, root_s)
    if rel == "." or rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        return False
    parts = rel.split(os.sep)
    try:
        fd = os.open(root_s, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                return False
            os.close(fd)
            fd = nxt
        try:
            if not stat.S_ISDIR(os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode):
                return False
        except OSError:
            return False
        # With dir_fd, rmtree takes its fd-based path: it refuses a symlink at the top (rechecked
        # after opening it) and never follows one inside.
        shutil.rmtree(parts[-1], ignore_errors=True, dir_fd=fd)  # type: ignore[call-arg]  # 3.11+ has dir_fd
        return True
    finally:
        os.close(fd)


def inside(directory: Path, rel: str) -> Path:
    """``directory/rel`` for a checked relative path, its parent directories created as real
    directories one at a time (nothing is created through a symlink); refuses (Escape) if any of
    them is a symlink or a file, and (MdlError) a path this file system cannot hold (too long)."""
    target = directory / rel
    path = directory
    for part in rel.split("/")[:-1]:
        path = path / part
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        except NotADirectoryError:
            raise Escape(f"{rel!r} needs a directory where a file is") from None
        except OSError as exc:  # ENAMETOOLONG, ENOSPC, EACCES...
            raise MdlError(
                f"cannot create the directories of {rel[:80]!r} in {str(directory)!r}: {exc.strerror or exc}"
            ) from None
        try:
            mode = os.lstat(path).st_mode
        except OSError as exc:
            raise MdlError(
                f"cannot create the directories of {rel[:80]!r} in {str(directory)!r}: {exc.strerror or exc}"
            ) from None
        if stat.S_ISLNK(mode):
            raise Escape(f"{rel!r} passes through a symlink: refusing to follow it")
        if not stat.S_ISDIR(mode):
            raise Escape(f"{rel!r} needs a directory where a file is")
    return target
