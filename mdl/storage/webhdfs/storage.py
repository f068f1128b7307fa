"""The storage contract on HDFS: :class:`WebHdfsStorage` wires the session, the reader, the stage and
the check together (the design is in the package's docstring)."""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, TypeVar, cast, overload

from mdl.errors import ConfigError, Conflict, IntegrityError, InvalidInput, MdlError, NotFound
from mdl.manifest import MANIFEST_MAX, FileEntry
from mdl.names import validate_name, validate_version
from mdl.storage.base import (
    DELETING_DIR,
    OWN_DIRS,
    SIG_SUFFIX,
    SIGNATURES_DIR,
    STAGING_DIR,
    TREE_HINT,
    OnBytes,
    StagingEntry,
    Storage,
    check_sig_id,
    hidden_name,
    hidden_version,
    invalid_name,
    is_staging_name,
    sig_id_of,
    signature_differs,
    signature_temp,
    skip_foreign,
    stored_rel,
    too_large,
    version_gone,
)
from mdl.storage.webhdfs.check import CheckResult, check
from mdl.storage.webhdfs.download import download
from mdl.storage.webhdfs.protocol import parse_url
from mdl.storage.webhdfs.session import WebHdfsSession
from mdl.storage.webhdfs.stage import WebHdfsStage
from mdl.storage.webhdfs.upload import write_file

if TYPE_CHECKING:
    from mdl.config import Config

T = TypeVar("T")


class _OnSession(Generic[T]):
    """A setting of the storage kept on its session: ``storage.retries = 1`` reaches every request."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _OnSession[T]: ...
    @overload
    def __get__(self, obj: WebHdfsStorage, owner: type) -> T: ...

    def __get__(self, obj: WebHdfsStorage | None, owner: type) -> Any:
        return self if obj is None else getattr(obj.session, self.name)

    def __set__(self, obj: WebHdfsStorage, value: T) -> None:
        setattr(obj.session, self.name, value)


class WebHdfsStorage(Storage):
    """Versions on HDFS over WebHDFS; publish is one ``rename2`` on the NameNode."""

    namenodes: _OnSession[list[str]] = _OnSession()
    user: _OnSession[str | None] = _OnSession()
    auth: _OnSession[str] = _OnSession()
    timeout: _OnSession[float] = _OnSession()
    retries: _OnSession[int] = _OnSession()
    #: HDFS block size for files written (None: the cluster's ``dfs.blocksize``).
    blocksize: _OnSession[int | None] = _OnSession()
    #: replication of files written (None: the cluster's ``dfs.replication``).
    replication: _OnSession[int | None] = _OnSession()
    #: the pause before retry n: equal jitter, ``backoff_base`` doubling up to ``backoff_max`` (mdl.retry.Backoff)
    backoff_base: _OnSession[float] = _OnSession()
    backoff_max: _OnSession[float] = _OnSession()
    #: with ``max_parts`` > 1, files of at least ``2 * range_min`` bytes are downloaded in ranges of at
    #: least this size...
    range_min: int = 16 * 1024 * 1024
    #: ...by at most this many parallel ranged reads per file, hashed after the download (one pass more
    #: over the file). 1: one stream per file, hashed as it arrives (fastest unless one DataNode stream
    #: is slower than the disk and the hashing).
    max_parts: int = 1
    #: deleted versions can go to the HDFS user's trash (``purge_hidden(..., trash=True)``)
    has_trash = True

    def __init__(
        self,
        url: str,
        *,
        root: str = "/models",
        user: str | None = None,
        auth: str = "simple",
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        pool_size: int = 64,
        hadoop_conf_dir: str | None = None,
        principal: str | None = None,
        keytab: str | None = None,
    ) -> None:
        _, namenodes = parse_url(url, hadoop_conf_dir)
        if not root or not root.startswith("/"):
            raise ConfigError(f"storage.root {root!r} must be an absolute HDFS path like /models")
        self.url = url
        self.root = posixpath.normpath(root)
        if self.root.startswith("//"):
            self.root = "/" + self.root.lstrip("/")
        #: the request machinery every piece shares (internal to the package)
        self.session = WebHdfsSession(
            url,
            namenodes,
            user=user,
            auth=auth,
            ca_bundle=ca_bundle,
            timeout=timeout,
            retries=retries,
            pool_size=pool_size,
            principal=principal,
            keytab=keytab,
        )

    @classmethod
    def from_config(cls, config: Config) -> WebHdfsStorage:
        return cls(
            config["storage.url"],
            root=config["storage.root"] or "/models",
            user=config["storage.user"],
            auth=config["storage.auth"] or "simple",
            ca_bundle=config["storage.ca_bundle"],
            timeout=config["storage.timeout"] or 30.0,
            retries=config["storage.retries"] or 0,
            hadoop_conf_dir=config["storage.hadoop_conf_dir"],
            principal=config["storage.principal"],
            keytab=config["storage.keytab"],
        )

    def __repr__(self) -> str:
        return f"WebHdfsStorage({self.url!r}, root={self.root!r}, user={self.user!r})"

    def close(self) -> None:
        self.session.close()

    @property
    def who(self) -> str:
        return self.session.who

    # -- paths ----------------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _file(self, name: str, version: str, rel: str) -> tuple[str, str]:
        """The HDFS path of a stored file; ``rel`` (a manifest's, untrusted) must be a plain relative path."""
        validate_name(name)
        validate_version(version)
        rel = stored_rel(name, version, rel)
        return self._path(name, version, rel), f"{name}/{version}/{rel}"

    def _subdirs(self, path: str, validate: Callable[[str], str]) -> list[str]:
        """Directories in ``path`` with valid names (``validate``); anything else is skipped (logged)."""
        out = []
        for st in self.session.listing(path) or []:
            entry = st.get("pathSuffix")
            if not isinstance(entry, str) or not entry or entry in OWN_DIRS:
                continue
            why = invalid_name(entry, validate)
            if why is None and st.get("type") != "DIRECTORY":
                why = f"not a directory ({str(st.get('type')).lower()})"
            if why is not None:
                skip_foreign(entry, path, why)
                continue
            out.append(entry)
        return sorted(out)

    # -- the contract ---------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        return self._subdirs(self.root, validate_name)

    def list_versions(self, name: str) -> list[str]:
        validate_name(name)
        return self._subdirs(self._path(name), validate_version)

    def read_bytes(self, name: str, version: str, rel: str, limit: int = MANIFEST_MAX) -> bytes:
        path, what = self._file(name, version, rel)
        length = self.session.file_length(path, what)
        if length > limit:  # known from GETFILESTATUS: refused before a byte is read
            raise too_large(f"{what} in {self.url}", length, limit)
        with self.session.reader(path, 0, length, what) as f:
            return f.read()

    def open(self, name: str, version: str, rel: str) -> BinaryIO:
        path, what = self._file(name, version, rel)
        try:
            length = self.session.file_length(path, what)
        except NotFound:
            if not self._has_version(name, version):  # hidden by a delete since the manifest was read
                raise version_gone(name, version, self.url) from None
            raise
        reader = self.session.reader(path, 0, length, what)
        return cast(BinaryIO, reader)  # a WebHdfsReader: binary, read-only, unbuffered

    def _has_version(self, name: str, version: str) -> bool:
        try:
            return self.session.status(self._path(name, version)).get("type") == "DIRECTORY"
        except NotFound:
            return False

    def stage(self, name: str, version: str) -> WebHdfsStage:
        validate_name(name)
        validate_version(version)
        return WebHdfsStage(self.session, self._path(name), name, version)

    def list_staging(self, name: str | None = None) -> list[StagingEntry]:
        if name:
            names = [name] if self._is_dir(self._path(validate_name(name))) else []
        else:
            names = self.list_models()
        now = time.time()
        out = []
        for n in names:
            d = self._path(n, STAGING_DIR)
            for st in self.session.listing(d) or []:
                entry = st.get("pathSuffix")
                if not isinstance(entry, str) or not entry:
                    continue  # LISTSTATUS of a file: the file itself
                if st.get("type") != "DIRECTORY" or not is_staging_name(entry):
                    skip_foreign(entry, d, "not an mdl staging directory")
                    continue
                age = max(0.0, now - st.get("modificationTime", 0) / 1000.0)
                out.append(StagingEntry(n, posixpath.join(d, st["pathSuffix"]), age))
        return out

    def _is_dir(self, path: str) -> bool:
        """True if ``path`` is a directory (listing below a file is refused as a permission problem)."""
        try:
            st = self.session.status(path)
        except NotFound:
            return False
        if st.get("type") != "DIRECTORY":
            skip_foreign(posixpath.basename(path), posixpath.dirname(path), "not a directory")
            return False
        return True

    def _is_staging_path(self, path: str) -> bool:
        if not isinstance(path, str) or not path.startswith("/") or posixpath.normpath(path) != path:
            return False
        prefix = self.root.rstrip("/") + "/"
        if not path.startswith(prefix):
            return False
        parts = path[len(prefix) :].split("/")
        return (
            len(parts) == 3
            and parts[1] == STAGING_DIR
            and is_staging_name(parts[2])
            and invalid_name(parts[0], validate_name) is None
        )

    def remove_staging(self, entry: StagingEntry) -> None:
        if not self._is_staging_path(entry.path):
            # never delete anything else
            raise InvalidInput(f"{entry.path!r} is not an mdl staging path under {self.root}")
        self.session.delete(entry.path)

    def download(self, name: str, version: str, entry: FileEntry, dest: Path, on_bytes: OnBytes | None = None) -> str:
        """Copy one file to ``dest``, hashing it on the way. Returns the sha256 of ``dest``."""
        try:
            return self._download(name, version, entry, dest, on_bytes)
        except NotFound:
            if not self._has_version(name, version):  # hidden by a delete while it was read
                raise version_gone(name, version, self.url) from None
            raise

    def _download(self, name: str, version: str, entry: FileEntry, dest: Path, on_bytes: OnBytes | None) -> str:
        path, what = self._file(name, version, entry.path)
        try:
            return download(
                self.session, path, what, entry.size, dest, on_bytes, max_parts=self.max_parts, range_min=self.range_min
            )
        except MdlError:
            # The length came from the manifest (no GETFILESTATUS round trip): if the stored file has
            # another length, reads past its end fail; say what really is wrong.
            actual = self.session.file_length(path, what)
            if actual != entry.size:
                raise IntegrityError(
                    f"{name}/{version}/{entry.path} does not match its manifest "
                    f"(stored size {actual}, expected {entry.size})",
                    hint="the stored copy is corrupt: push the version again or pull another one",
                ) from None
            raise

    # -- deletes: one rename out of sight, then DELETE (or a move into the trash) --------------------

    def hide_version(self, name: str, version: str) -> str | None:
        validate_name(name)
        validate_version(version)
        src = self._path(name, version)
        try:
            st = self.session.status(src)
        except NotFound:
            return None
        if st.get("type") != "DIRECTORY":
            raise IntegrityError(
                f"{name}/{version} in {self.url} is not a directory: refusing to delete it", hint=TREE_HINT
            )
        deleting = self._path(name, DELETING_DIR)
        try:
            self.session.mkdirs(deleting)
        except MdlError as exc:
            if getattr(exc, "remote_exception", None) in ("ParentNotDirectoryException", "FileAlreadyExistsException"):
                raise IntegrityError(f"{deleting} is not a directory in {self.url}", hint=TREE_HINT) from None
            raise
        dst = posixpath.join(deleting, hidden_name(version))
        return dst if self.session.rename(src, dst, what=f"version {name}/{version}") else None

    def list_hidden(self, name: str) -> list[str]:
        d = self._path(validate_name(name), DELETING_DIR)
        out = []
        for st in self.session.listing(d) or []:
            entry = st.get("pathSuffix")
            if not isinstance(entry, str) or not entry:
                continue  # LISTSTATUS of a file: the file itself
            if hidden_version(entry) is None:
                skip_foreign(entry, d, "not a version hidden by mdl")
                continue
            out.append(entry)
        return sorted(out)

    def purge_hidden(self, name: str, entry: str, *, trash: bool = False) -> None:
        validate_name(name)
        version = hidden_version(entry)
        if version is None:
            raise InvalidInput(f"{entry!r} is not a version hidden by mdl")  # never delete anything else
        path = self._path(name, DELETING_DIR, entry)
        if trash:
            self._to_trash(path, self._path(name, version))
        else:
            self.session.delete(path)

    def _to_trash(self, path: str, original: str) -> None:
        """Move ``path`` where Hadoop's trash would put ``original``: ``<trash root>/Current/<original>``,
        with the time in milliseconds appended if that is taken (as ``hadoop fs -rm`` does)."""
        target = posixpath.join(self.session.trash_root(path), "Current", original.lstrip("/"))
        self.session.mkdirs(posixpath.dirname(target))
        dst = target
        for _ in range(100):
            try:
                self.session.rename(path, dst, what=f"{path} (into the trash)")
                return
            except Conflict:
                dst = f"{target}{int(time.time() * 1000)}"
        raise Conflict(f"could not find a free name for {original} in the trash ({target}...)")

    # -- signatures: <name>/.mdl-signatures/<version>/<sig_id>.sig ------------------------------------

    def _signatures(self, name: str, version: str) -> str:
        return self._path(validate_name(name), SIGNATURES_DIR, validate_version(version))

    def put_signature(self, name: str, version: str, sig_id: str, data: bytes) -> bool:
        d = self._signatures(name, version)
        final = posixpath.join(d, check_sig_id(sig_id) + SIG_SUFFIX)
        if not self._is_dir(self._path(name)):
            raise NotFound(f"model {name!r} does not exist in {self.url}")
        try:
            self.session.mkdirs(d)
        except MdlError as exc:
            if getattr(exc, "remote_exception", None) in ("ParentNotDirectoryException", "FileAlreadyExistsException"):
                raise IntegrityError(f"{d} is not a directory in {self.url}", hint=TREE_HINT) from None
            raise
        tmp = posixpath.join(d, signature_temp(sig_id))
        what = f"signature {sig_id} of {name}/{version}"
        write_file(self.session, tmp, data, what=f"{what} (temporary)")
        try:
            # rename2 never replaces an existing name: the signature appears whole, or not at all
            self.session.rename(tmp, final, what=what)
            return True
        except Conflict:
            pass
        finally:
            if self.session.exists(tmp):
                self.session.delete(tmp)
        if self.read_signature(name, version, sig_id, len(data)) != data:
            raise signature_differs(name, version, sig_id)
        return False

    def list_signatures(self, name: str, version: str) -> list[str]:
        d = self._signatures(name, version)
        out = []
        for st in self.session.listing(d) or []:
            entry = st.get("pathSuffix")
            if not isinstance(entry, str) or not entry:
                continue  # LISTSTATUS of a file: the file itself
            sig_id = sig_id_of(entry)
            if sig_id is None or st.get("type") != "FILE":
                if not entry.startswith("."):  # a hidden temporary is a signature being added
                    skip_foreign(entry, d, "not a signature file")
                continue
            out.append(sig_id)
        return sorted(out)

    def read_signature(self, name: str, version: str, sig_id: str, limit: int) -> bytes:
        path = posixpath.join(self._signatures(name, version), check_sig_id(sig_id) + SIG_SUFFIX)
        what = f"signature {sig_id} of {name}/{version}"
        try:
            st = self.session.status(path, what)
        except NotFound:
            raise NotFound(f"{what} does not exist in {self.url}") from None
        if st.get("type") != "FILE":
            raise IntegrityError(f"{what} in {self.url} is not a regular file", hint=TREE_HINT)
        length = int(st.get("length", 0))
        if length > limit:  # known from GETFILESTATUS: refused before a byte is read
            raise too_large(f"{what} in {self.url}", length, limit)
        with self.session.reader(path, 0, length, what) as f:
            return f.read()

    def remove_signatures(self, name: str, version: str, *, trash: bool = False) -> None:
        path = self._signatures(name, version)
        try:
            if not trash:
                self.session.delete(path)
            elif self.session.exists(path):  # restored from the trash, the version comes back signed
                self._to_trash(path, path)
        except NotFound:
            pass

    def check(self) -> list[CheckResult]:
        """Connectivity check: NameNode, tree root, a tiny write + read + delete, every DataNode.

        Never raises for what it finds; each step is a :class:`CheckResult`.
        """
        return check(self.session, self.root)
