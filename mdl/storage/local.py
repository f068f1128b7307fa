"""The embedded storage: a local directory holding ``<name>/<version>/<files>``.

The root is configuration (trusted); everything below it is untrusted input. No symlink below the
root is ever followed (reads go through :func:`mdl.safefs.open_beneath`), listings skip whatever is
not a real directory with a valid name, and ``clean`` removes only real staging directories.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from mdl import safefs
from mdl.errors import (
    ConfigError,
    Escape,
    IntegrityError,
    InvalidInput,
    MdlError,
    NotFound,
    PermissionDenied,
    VersionExists,
)
from mdl.manifest import CHUNK, MANIFEST_MAX, MANIFEST_NAME, Manifest
from mdl.names import validate_name, validate_version
from mdl.storage.base import (
    DELETING_DIR,
    OWN_DIRS,
    SIG_SUFFIX,
    SIGNATURES_DIR,
    STAGING_DIR,
    TREE_HINT,
    OnBytes,
    Stage,
    StagingEntry,
    Storage,
    check_sig_id,
    hidden_name,
    hidden_version,
    invalid_name,
    is_staging_name,
    open_source,
    sig_id_of,
    signature_differs,
    signature_temp,
    skip_foreign,
    staging_name,
    stored_rel,
    too_large,
    version_gone,
)

_URL_HINT = "use file:///absolute/path"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _path_of(url: str) -> Path:
    if not url.strip():
        raise ConfigError("storage.url is empty", hint=_URL_HINT)
    if "://" not in url:
        if url.startswith("file:"):  # file:/absolute/path (no authority) is a file URL too; file:x is not
            path = unquote(url[len("file:") :])
            if not path.startswith("/"):
                raise ConfigError(f"storage.url {url!r} is not an absolute path", hint=_URL_HINT)
            return _checked(url, path)
        return _checked(url, str(Path(url).expanduser().absolute()))
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ConfigError(f"storage.url {url!r} is not a file:// URL", hint=_URL_HINT)
    if parsed.netloc not in ("", "localhost"):
        raise ConfigError(f"storage.url {url!r} names a host; use file:///absolute/path")
    if parsed.query or parsed.fragment or parsed.params or url.endswith(("?", "#")):
        raise ConfigError(
            f"storage.url {url!r} has a query or fragment; a file:// URL is a path only",
            hint=_URL_HINT + " (write a '?' or '#' in a directory name as %3F or %23)",
        )
    if not parsed.path:
        raise ConfigError(f"storage.url {url!r} has no path", hint=_URL_HINT)
    return _checked(url, unquote(parsed.path))


def _checked(url: str, path: str) -> Path:
    if "\0" in path:
        raise ConfigError(f"storage.url {url!r} holds a NUL character", hint=_URL_HINT)
    return Path(path)


def _scan(fd: int) -> list[os.DirEntry]:
    with os.scandir(fd) as it:
        return list(it)


def _scan_and_close(fd: int, where: Path) -> list[os.DirEntry]:
    """The entries of the directory open as ``fd`` (closed afterwards); a failure names ``where``."""
    try:
        return _scan(fd)
    except OSError as exc:
        raise _fs_error(exc, where) from None
    finally:
        os.close(fd)


class LocalStage(Stage):
    def __init__(self, storage: LocalStorage, name: str, version: str) -> None:
        self.name, self.version = name, version
        self._root = storage.root
        self._final = storage.root / name / version
        staging = _real_dirs(storage.root, name, STAGING_DIR)
        self.path = staging / staging_name(version)
        self.path.mkdir()
        if not safefs.real_path_under(self.path, self._root):  # swapped for a symlink meanwhile
            raise Escape(f"{str(self.path)!r} is reached through a symlink: refusing to write there", hint=TREE_HINT)

    def upload(self, rel: str, local: Path, on_bytes: OnBytes | None = None) -> str:
        from mdl.hashing import BackgroundSha256

        dest = safefs.inside(self.path, rel)
        with open_source(local) as src:
            try:
                out = safefs.create_new(dest)
            except OSError as exc:
                raise _write_error(exc, dest) from None
            h = BackgroundSha256()
            try:
                with out:
                    while True:
                        try:
                            chunk = src.read(CHUNK)
                        except OSError as exc:
                            raise MdlError(f"cannot read {str(local)!r}: {exc.strerror or exc}") from None
                        if not chunk:
                            break
                        h.update(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                        try:
                            out.write(chunk)
                        except OSError as exc:
                            raise _write_error(exc, dest) from None
            finally:
                digest = h.hexdigest()
        return digest

    def write_manifest(self, manifest: Manifest) -> None:
        tmp = self.path / (MANIFEST_NAME + ".tmp")
        tmp.unlink(missing_ok=True)  # left by an attempt that failed; unlink never follows a symlink
        try:
            with safefs.create_new(tmp) as out:
                out.write(manifest.to_json())
            os.replace(tmp, self.path / MANIFEST_NAME)
        except OSError as exc:
            raise _write_error(exc, tmp) from None

    def retarget(self, version: str) -> None:
        self.version = version
        self._final = self._final.with_name(version)

    def publish(self) -> None:
        try:
            # rename(2) refuses a non-empty target: every published version holds a manifest.
            os.rename(self.path, self._final)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise VersionExists(f"version {self.name}/{self.version} already exists") from None
            if exc.errno == errno.ENOENT:
                raise MdlError(
                    f"the staged files of {self.name}/{self.version} vanished before publishing ({self.path})",
                    hint="was `mdl clean` run during the push? push again",
                ) from None
            raise

    def abort(self) -> None:
        safefs.remove_tree(self.path, self._root)


def _real_dirs(root: Path, *parts: str) -> Path:
    """``root/parts...`` as real directories, created if missing; Escape if one is a symlink or a file
    (nothing is created through it)."""
    root.mkdir(parents=True, exist_ok=True)  # the root is configuration
    path = root
    for part in parts:
        path = path / part
        try:
            path.mkdir()
        except FileExistsError:
            pass
        if not safefs.is_real_dir(path):
            raise Escape(f"{str(path)!r} is a symlink or not a directory: refusing to write through it", hint=TREE_HINT)
    return path


def _write_error(exc: OSError, path: Path) -> MdlError:
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"cannot write {str(path)!r}: permission denied")
    return MdlError(f"cannot write {str(path)!r}: {exc.strerror or exc}")


class LocalStorage(Storage):
    """Versions in a directory on this machine; publish is one rename(2)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = _path_of(url)

    # -- listings: real directories with valid names, nothing else ------------------------------

    def _open_root(self) -> int | None:
        try:
            return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise ConfigError(
                f"storage directory {str(self.root)!r} is not a directory", hint="check storage.url"
            ) from None
        except PermissionError:
            raise PermissionDenied(f"cannot read storage directory {str(self.root)!r}: permission denied") from None

    def _open_model(self, root_fd: int, name: str) -> int | None:
        """The model directory ``name``, a real directory (not a symlink), or None."""
        try:
            return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                skip_foreign(name, str(self.root), "not a real directory (a file or a symlink)")
                return None
            if exc.errno == errno.EACCES:
                raise PermissionDenied(
                    f"cannot read model directory {str(self.root / name)!r}: permission denied"
                ) from None
            raise MdlError(f"cannot read {str(self.root / name)!r}: {exc.strerror or exc}") from None

    def _names(self, fd: int, where: Path, validate: Callable[[str], str]) -> list[str]:
        """Entries of the open directory ``fd`` that are real directories with valid names."""
        try:
            entries = _scan(fd)
        except PermissionError:
            raise PermissionDenied(f"cannot read directory {str(where)!r}: permission denied") from None
        out = []
        for e in entries:
            if e.name in OWN_DIRS:
                continue  # ours, never a model or a version
            why = invalid_name(e.name, validate)
            if why is None:
                try:
                    real = e.is_dir(follow_symlinks=False)
                except OSError:
                    real = False
                if not real:
                    why = "not a real directory (a file or a symlink)"
            if why is not None:
                skip_foreign(e.name, str(where), why)
                continue
            out.append(e.name)
        return sorted(out)

    def list_models(self) -> list[str]:
        fd = self._open_root()
        if fd is None:
            return []
        try:
            return self._names(fd, self.root, validate_name)
        finally:
            os.close(fd)

    def list_versions(self, name: str) -> list[str]:
        validate_name(name)
        root_fd = self._open_root()
        if root_fd is None:
            return []
        try:
            fd = self._open_model(root_fd, name)
        finally:
            os.close(root_fd)
        if fd is None:
            return []
        try:
            return self._names(fd, self.root / name, validate_version)
        finally:
            os.close(fd)

    # -- reads: never through a symlink, only regular files -------------------------------------

    def _open(self, name: str, version: str, rel: str) -> BinaryIO:
        validate_name(name)
        validate_version(version)
        rel = stored_rel(name, version, rel)
        path = f"{name}/{version}/{rel}"
        try:
            return safefs.open_beneath(self.root, path)
        except NotFound:
            raise NotFound(f"{path} does not exist in {self.url}") from None
        except Escape as exc:
            raise Escape(f"{exc.message} in {self.url}", hint=TREE_HINT) from None
        except PermissionDenied:
            raise PermissionDenied(f"cannot read {path} in {self.url}: permission denied") from None

    def read_bytes(self, name: str, version: str, rel: str, limit: int = MANIFEST_MAX) -> bytes:
        with self._open(name, version, rel) as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise too_large(f"{name}/{version}/{rel} in {self.url}", size, limit)
            data = f.read(size + 1)
            if len(data) > size:  # it grew since: read on, but never more than the limit allows
                data += f.read(limit + 1 - len(data))
        if len(data) > limit:
            raise too_large(f"{name}/{version}/{rel} in {self.url}", len(data), limit)
        return data

    def open(self, name: str, version: str, rel: str) -> BinaryIO:
        try:
            return self._open(name, version, rel)
        except NotFound:
            if not self._has_version(name, version):  # hidden by a delete since the manifest was read
                raise version_gone(name, version, self.url) from None
            raise

    def _has_version(self, name: str, version: str) -> bool:
        fd = self._model_fd(name)
        if fd is None:
            return False
        try:
            return stat.S_ISDIR(os.stat(version, dir_fd=fd, follow_symlinks=False).st_mode)
        except OSError:
            return False
        finally:
            os.close(fd)

    # -- writes ---------------------------------------------------------------------------------

    def stage(self, name: str, version: str) -> Stage:
        validate_name(name)
        validate_version(version)
        try:
            return LocalStage(self, name, version)
        except PermissionError:
            raise PermissionDenied(f"cannot write under {str(self.root)!r}: permission denied") from None
        except OSError as exc:  # the root is a file, the disk is full...
            raise MdlError(
                f"cannot create a staging directory under {str(self.root)!r}: {exc.strerror or exc}"
            ) from None

    # -- staging debris -------------------------------------------------------------------------

    def list_staging(self, name: str | None = None) -> list[StagingEntry]:
        names = [validate_name(name)] if name else self.list_models()
        now = time.time()
        out = []
        for n in names:
            staging = self.root / n / STAGING_DIR
            if not safefs.real_path_under(staging, self.root):
                if os.path.lexists(staging):
                    skip_foreign(STAGING_DIR, str(self.root / n), "not a real directory (a file or a symlink)")
                continue
            try:
                entries = list(os.scandir(staging))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError:
                raise PermissionDenied(f"cannot read directory {str(staging)!r}: permission denied") from None
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not is_staging_name(e.name) or not stat.S_ISDIR(st.st_mode):
                    skip_foreign(e.name, str(staging), "not an mdl staging directory")
                    continue
                out.append(StagingEntry(n, str(staging / e.name), max(0.0, now - st.st_mtime)))
        return out

    def remove_staging(self, entry: StagingEntry) -> None:
        path = Path(entry.path)
        if (
            path.parent.name != STAGING_DIR
            or path.parent.parent.parent != self.root
            or invalid_name(path.parent.parent.name, validate_name) is not None
            or not is_staging_name(path.name)
        ):
            raise InvalidInput(f"{entry.path!r} is not an mdl staging path")  # never delete anything else
        if not safefs.remove_tree(path, self.root) and os.path.lexists(path):
            raise Escape(
                f"{entry.path!r} is not a real directory under {str(self.root)!r}: refusing to remove it",
                hint=TREE_HINT,
            )

    # -- deletes: one rename out of sight, then removal inside <name>/.mdl-deleting only ---------

    def _model_fd(self, name: str) -> int | None:
        root_fd = self._open_root()
        if root_fd is None:
            return None
        try:
            return self._open_model(root_fd, name)
        finally:
            os.close(root_fd)

    def _deleting_fd(self, model_fd: int, name: str, *, create: bool) -> int | None:
        """The model's DELETING_DIR, a real directory (created if ``create``), or None if absent;
        Escape if a symlink or a file stands in its place."""
        where = self.root / name / DELETING_DIR
        if create:
            try:
                os.mkdir(DELETING_DIR, dir_fd=model_fd)
            except FileExistsError:
                pass
        try:
            return os.open(DELETING_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=model_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                raise Escape(
                    f"{str(where)!r} is a symlink or not a directory: refusing to use it", hint=TREE_HINT
                ) from None
            raise _fs_error(exc, where) from None

    def hide_version(self, name: str, version: str) -> str | None:
        validate_name(name)
        validate_version(version)
        fd = self._model_fd(name)
        if fd is None:
            return None
        entry = hidden_name(version)
        try:
            try:
                st = os.stat(version, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if not stat.S_ISDIR(st.st_mode):
                raise Escape(
                    f"{name}/{version} in {self.url} is not a real directory (a symlink or a file): "
                    "refusing to delete it",
                    hint=TREE_HINT,
                )
            dfd = self._deleting_fd(fd, name, create=True)
            assert dfd is not None
            try:
                # Both ends through descriptors: no symlink planted meanwhile is followed. rename(2)
                # moves the entry itself, never what a symlink that replaced it points at.
                os.rename(version, entry, src_dir_fd=fd, dst_dir_fd=dfd)
            except FileNotFoundError:
                return None  # hidden by another delete meanwhile
            finally:
                os.close(dfd)
        except OSError as exc:
            raise _fs_error(exc, self.root / name / version) from None
        finally:
            os.close(fd)
        return str(self.root / name / DELETING_DIR / entry)

    def list_hidden(self, name: str) -> list[str]:
        validate_name(name)
        fd = self._model_fd(name)
        if fd is None:
            return []
        where = self.root / name / DELETING_DIR
        try:
            try:
                dfd = self._deleting_fd(fd, name, create=False)
            except Escape:
                skip_foreign(DELETING_DIR, str(self.root / name), "not a real directory (a file or a symlink)")
                return []
        finally:
            os.close(fd)
        if dfd is None:
            return []
        entries = _scan_and_close(dfd, where)
        out = []
        for e in entries:
            if hidden_version(e.name) is None:
                skip_foreign(e.name, str(where), "not a version hidden by mdl")
                continue
            out.append(e.name)
        return sorted(out)

    def purge_hidden(self, name: str, entry: str, *, trash: bool = False) -> None:
        if trash:
            raise InvalidInput(f"--trash is for HDFS: {self.url} has no trash", hint="delete without --trash")
        validate_name(name)
        if hidden_version(entry) is None:
            raise InvalidInput(f"{entry!r} is not a version hidden by mdl")  # never delete anything else
        path = self.root / name / DELETING_DIR / entry
        fd = self._model_fd(name)
        if fd is None:
            return
        try:
            dfd = self._deleting_fd(fd, name, create=False)
        finally:
            os.close(fd)
        if dfd is None:
            return
        try:
            try:
                st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(entry, dir_fd=dfd)  # a symlink or file hidden in a race: unlink never follows
                return
        except OSError as exc:
            raise _fs_error(exc, path) from None
        finally:
            os.close(dfd)
        # remove_tree walks from the root through descriptors again, never through a symlink.
        safefs.remove_tree(path, self.root)
        if os.path.lexists(path):
            raise MdlError(
                f"could not remove all of {str(path)!r}", hint="check its permissions, then run mdl gc again"
            )

    # -- signatures: <name>/.mdl-signatures/<version>/<sig_id>.sig, reached through descriptors -------

    def _signatures_fd(self, name: str, version: str, *, create: bool) -> int | None:
        """The directory of ``name/version``'s signatures (created if ``create``), or None if absent;
        Escape if a symlink or a file stands on the way (nothing is created through it)."""
        validate_name(name)
        validate_version(version)
        fd = self._model_fd(name)
        if fd is None:
            if create:
                raise NotFound(f"model {name!r} does not exist in {self.url}")
            return None
        where = self.root / name
        try:
            for part in (SIGNATURES_DIR, version):
                where = where / part
                if create:
                    try:
                        os.mkdir(part, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except FileNotFoundError:
                    return None
                except OSError as exc:
                    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                        raise Escape(
                            f"{str(where)!r} is a symlink or not a directory: refusing to use it", hint=TREE_HINT
                        ) from None
                    raise _fs_error(exc, where) from None
                os.close(fd)
                fd = nxt
            result, fd = fd, -1
            return result
        except OSError as exc:
            raise _fs_error(exc, where) from None
        finally:
            if fd >= 0:
                os.close(fd)

    def put_signature(self, name: str, version: str, sig_id: str, data: bytes) -> bool:
        final = check_sig_id(sig_id) + SIG_SUFFIX
        dfd = self._signatures_fd(name, version, create=True)
        assert dfd is not None
        tmp = signature_temp(sig_id)
        where = self.root / name / SIGNATURES_DIR / version
        try:
            try:
                fd = os.open(tmp, _NEW_FILE, 0o644, dir_fd=dfd)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                try:
                    # link(2) never replaces an existing name: the signature appears whole, or not at all
                    os.link(tmp, final, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
                    return True
                except FileExistsError:
                    pass
            except OSError as exc:
                raise _fs_error(exc, where / final) from None
            finally:
                try:
                    os.unlink(tmp, dir_fd=dfd)
                except OSError:
                    pass
        finally:
            os.close(dfd)
        if self.read_signature(name, version, sig_id, len(data)) != data:
            raise signature_differs(name, version, sig_id)
        return False

    def list_signatures(self, name: str, version: str) -> list[str]:
        where = self.root / name / SIGNATURES_DIR / version
        try:
            dfd = self._signatures_fd(name, version, create=False)
        except Escape:
            skip_foreign(version, str(self.root / name / SIGNATURES_DIR), "not a real directory (a file or a symlink)")
            return []
        if dfd is None:
            return []
        entries = _scan_and_close(dfd, where)
        out = []
        for e in entries:
            sig_id = sig_id_of(e.name)
            try:
                regular = e.is_file(follow_symlinks=False)
            except OSError:
                regular = False
            if sig_id is None or not regular:
                if not e.name.startswith("."):  # a hidden temporary is a signature being added
                    skip_foreign(e.name, str(where), "not a signature file")
                continue
            out.append(sig_id)
        return sorted(out)

    def read_signature(self, name: str, version: str, sig_id: str, limit: int) -> bytes:
        validate_name(name)
        validate_version(version)
        path = f"{name}/{SIGNATURES_DIR}/{version}/{check_sig_id(sig_id)}{SIG_SUFFIX}"
        try:
            f = safefs.open_beneath(self.root, path)
        except NotFound:
            raise NotFound(f"signature {sig_id} of {name}/{version} does not exist in {self.url}") from None
        except IntegrityError as exc:  # Escape: a symlink or not a regular file
            raise IntegrityError(f"{exc.message} in {self.url}", hint=TREE_HINT) from None
        with f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise too_large(f"signature {path} in {self.url}", size, limit)
            data = f.read(limit + 1)
        if len(data) > limit:
            raise too_large(f"signature {path} in {self.url}", len(data), limit)
        return data

    def remove_signatures(self, name: str, version: str, *, trash: bool = False) -> None:
        if trash:
            raise InvalidInput(f"--trash is for HDFS: {self.url} has no trash", hint="delete without --trash")
        validate_name(name)
        validate_version(version)
        safefs.remove_tree(self.root / name / SIGNATURES_DIR / version, self.root)


def _fs_error(exc: OSError, path: Path) -> MdlError:
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"cannot change {str(path)!r}: permission denied")
    return MdlError(f"cannot change {str(path)!r}: {exc.strerror or exc}")
