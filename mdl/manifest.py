"""The version manifest: every file's path, size and sha256, and the version's digest."""

from __future__ import annotations

import functools
import json
import os
import stat
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

from mdl.errors import IntegrityError, InvalidInput, NotFound

MANIFEST_NAME = ".mdl-manifest.json"
SCHEMA = 1
CHUNK = 1024 * 1024

_FORMAT_BY_SUFFIX = {
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".onnx": "onnx",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".safetensors": "safetensors",
    ".h5": "keras",
    ".keras": "keras",
    ".json": "json",
}
FORMATS = sorted(set(_FORMAT_BY_SUFFIX.values()) | {"directory", "file", "tensorflow-savedmodel"})


@dataclass(frozen=True)
class FileEntry:
    """One file of a version, by its path relative to the version directory."""

    path: str
    size: int
    sha256: str


@dataclass
class Manifest:
    """What a version holds; written last into the staged version, so its presence means complete."""

    name: str
    version: str
    files: list[FileEntry]
    digest: str
    created: str
    creator: str
    mdl_version: str
    format: str
    kind: str  # "file" (one file pushed) or "directory"
    schema: int = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        # What dataclasses.asdict gives, without its deep copies (a watcher writes one per swap).
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["files"] = [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files]
        doc["bytes"] = self.bytes
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, where: str = "manifest") -> "Manifest":
        try:
            doc = json.loads(data)
            files = [FileEntry(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in doc["files"]]
            m = cls(
                name=doc["name"], version=doc["version"], files=files, digest=doc["digest"],
                created=doc["created"], creator=doc["creator"], mdl_version=doc["mdl_version"],
                format=doc["format"], kind=doc.get("kind", "directory"), schema=int(doc.get("schema", 1)),
                extra=doc.get("extra") or {},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{where} is not a valid mdl manifest ({exc})") from None
        if m.digest != digest_of(m.files):
            raise IntegrityError(f"{where} is inconsistent: its digest does not match its file list")
        return m


def digest_of(files: Iterable[FileEntry]) -> str:
    """A hash over the sorted file entries: equal digests mean byte-identical versions."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(files, key=lambda e: e.path):
        h.update(f"{f.sha256}  {f.size}  {f.path}\n".encode())
    return "sha256:" + h.hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=None)
def hostname() -> str:
    import socket  # not at import time: start-up of commands that never need it

    return socket.gethostname()


def creator() -> str:
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{hostname()}"


def file_matches(path: Path, entry: FileEntry) -> bool:
    """True if the local file at ``path`` has ``entry``'s size and sha256."""
    try:
        return os.stat(path).st_size == entry.size and hash_file(path)[1] == entry.sha256
    except OSError:
        return False


def hash_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Size and sha256 of a local file, streamed."""
    import hashlib

    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        buf = memoryview(bytearray(min(CHUNK, os.fstat(f.fileno()).st_size or 1)))  # small files, small buffers
        while n := f.readinto(buf):
            h.update(buf[:n])
            size += n
            if on_bytes:
                on_bytes(n)
    return size, h.hexdigest()


def check_relpath(rel: str) -> str:
    """Reject paths that cannot be stored on every backend (HDFS rejects ':')."""
    parts = rel.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidInput(f"file path {rel!r} is not a plain relative path")
    if any(":" in part for part in parts):
        raise InvalidInput(f"file name {rel!r} contains ':', which HDFS does not allow", hint="rename the file")
    if rel == MANIFEST_NAME:
        raise InvalidInput(f"{MANIFEST_NAME!r} is reserved for mdl's manifest", hint="rename the file")
    return rel


def scan_source(source: Path) -> tuple[str, list[tuple[str, Path]]]:
    """The files to push from a file or a directory, as (relative path, local path), sorted."""
    try:
        st = source.stat()
    except FileNotFoundError:
        raise NotFound(f"path {str(source)!r} does not exist") from None
    except PermissionError:
        raise InvalidInput(f"path {str(source)!r} is not readable (permission denied)") from None
    if stat.S_ISREG(st.st_mode):
        _check_readable(source)
        return "file", [(check_relpath(source.name), source)]
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidInput(f"path {str(source)!r} is neither a regular file nor a directory")
    found: list[tuple[str, Path]] = []

    def onerror(exc: OSError) -> None:
        raise InvalidInput(f"cannot read {exc.filename!r}: {exc.strerror}")

    for dirpath, dirnames, filenames in os.walk(source, onerror=onerror, followlinks=False):
        dirnames.sort()
        for fn in sorted(filenames):
            local = Path(dirpath) / fn
            if not local.is_file():
                raise InvalidInput(f"{str(local)!r} is not a regular file", hint="push regular files only")
            _check_readable(local)
            found.append((check_relpath(local.relative_to(source).as_posix()), local))
    if not found:
        raise InvalidInput(f"directory {str(source)!r} holds no files", hint="push a directory with the model's files")
    return "directory", sorted(found)


def _check_readable(path: Path) -> None:
    if not os.access(path, os.R_OK):
        raise InvalidInput(f"file {str(path)!r} is not readable (permission denied)")


def detect_format(kind: str, files: list[tuple[str, Path]]) -> str:
    """A format hint from names and content: pickle, joblib, onnx, ..., directory or file."""
    names = [rel for rel, _ in files]
    if kind == "directory":
        if "saved_model.pb" in names:
            return "tensorflow-savedmodel"
        return "directory"
    rel, local = files[0]
    fmt = _FORMAT_BY_SUFFIX.get(PurePosixPath(rel).suffix.lower())
    if fmt:
        return fmt
    with open(local, "rb") as f:
        head = f.read(2)
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    return "file"
