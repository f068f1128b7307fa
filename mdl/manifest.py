"""The version manifest: every file's path, size and sha256, and the version's digest."""

from __future__ import annotations

import builtins
import json
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

from mdl.errors import IntegrityError, InvalidInput, NotFound

MANIFEST_NAME = ".mdl-manifest.json"
SCHEMA = 1
CHUNK = 1024 * 1024
MANIFEST_MAX = 64 * 1024 * 1024  # the largest manifest mdl reads (about 150 bytes a file)
MAX_FILES = 200_000
MAX_DEPTH = 64
_PLAIN_PARTS = frozenset(("", ".", ".."))
_BAD_CHAR = re.compile(r"[\x00-\x1f\x7f\\:]")
_SHA256 = re.compile(r"[0-9a-f]{64}")

_FORMAT_BY_SUFFIX = {
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".onnx": "onnx",
    ".skops": "skops",
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

    def to_json(self) -> builtins.bytes:  # builtins: the property above shadows ``bytes`` here
        # What dataclasses.asdict gives, without its deep copies (a watcher writes one per swap).
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["files"] = [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files]
        doc["bytes"] = self.bytes
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(
        cls, data: builtins.bytes, where: str = "manifest", expect: tuple[str | None, str] | None = None
    ) -> Manifest:
        """Parse and check a manifest read from anywhere (storage, the registry, a local copy): it is
        untrusted input. ``expect`` = (name or None, version) it must describe. IntegrityError otherwise."""
        if len(data) > MANIFEST_MAX:
            raise IntegrityError(f"{where} is larger than {MANIFEST_MAX} bytes")
        try:
            doc = json.loads(data)
        except RecursionError:
            raise IntegrityError(f"{where} is not a valid mdl manifest (nested too deeply)") from None
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
            raise IntegrityError(f"{where} is not a valid mdl manifest (not JSON: {exc})") from None
        try:
            m = _parse(doc)
        except _Invalid as exc:
            raise IntegrityError(f"{where} is not a valid mdl manifest ({exc})") from None
        if m.digest != digest_of(m.files):
            raise IntegrityError(f"{where} is inconsistent: its digest does not match its file list")
        if expect is not None:
            name, version = expect
            if (name is not None and m.name != name) or m.version != version:
                raise IntegrityError(
                    f"{where} describes {m.name}/{m.version}, not {name or m.name}/{version}",
                    hint="the stored tree was changed behind mdl's back",
                )
        return m


class _Invalid(ValueError):
    pass


_KINDS = {int: "an integer", str: "a string", list: "a list", dict: "an object", bool: "true or false"}


def _field(doc: dict, key: str, kind: type, default: Any = _Invalid) -> Any:
    if key not in doc:
        if default is _Invalid:
            raise _Invalid(f"{key!r} is missing")
        return default
    value = doc[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _Invalid(f"{key!r} must be {_KINDS.get(kind, 'a ' + kind.__name__)}")
    return value


def _parse(doc: Any) -> Manifest:
    from mdl.errors import InvalidInput
    from mdl.names import validate_name, validate_version

    if not isinstance(doc, dict):
        raise _Invalid("not a JSON object")
    name, version = _field(doc, "name", str), _field(doc, "version", str)
    try:
        validate_name(name)
        validate_version(version)
    except InvalidInput as exc:
        raise _Invalid(exc.message) from None
    raw = _field(doc, "files", list)
    if not raw:
        raise _Invalid("it lists no files")
    if len(raw) > MAX_FILES:
        raise _Invalid(f"it lists more than {MAX_FILES} files")
    files = [_entry(i, f) for i, f in enumerate(raw)]
    _check_tree([f.path for f in files])
    digest = _field(doc, "digest", str)
    if not (digest.startswith("sha256:") and is_sha256(digest[7:])):
        raise _Invalid("'digest' is not 'sha256:' and 64 hex digits")
    kind = _field(doc, "kind", str, "directory")
    if kind not in ("file", "directory"):
        raise _Invalid(f"'kind' must be file or directory, not {kind[:40]!r}")
    schema = _field(doc, "schema", int, SCHEMA)
    extra = _field(doc, "extra", dict, None) or {}
    strings = {k: _field(doc, k, str) for k in ("created", "creator", "mdl_version", "format")}
    if any(len(v) > 1024 for v in strings.values()):
        raise _Invalid("a text field is longer than 1024 characters")
    return Manifest(
        name=name, version=version, files=files, digest=digest, kind=kind, schema=schema, extra=extra, **strings
    )


def _entry(i: int, f: Any) -> FileEntry:
    if not isinstance(f, dict):
        raise _Invalid(f"files[{i}] is not an object")
    path, size, sha = _field(f, "path", str), _field(f, "size", int), _field(f, "sha256", str)
    try:
        check_entry_path(path)
    except ValueError as exc:
        raise _Invalid(f"files[{i}]: {exc}") from None
    if size < 0:
        raise _Invalid(f"files[{i}]: size {size} is negative")
    if not is_sha256(sha):
        raise _Invalid(f"files[{i}]: sha256 is not 64 lowercase hex digits")
    return FileEntry(path, size, sha)


def check_entry_path(rel: str) -> str:
    """A manifest path that can only name a file inside the version directory: relative, normalised,
    no empty, '.', '..' or over-long components, no NUL, backslash, control character or ':', not
    the manifest itself, nested at most MAX_DEPTH deep. ValueError naming the problem otherwise."""
    if not rel or len(rel) > 4096:
        raise ValueError("empty or overlong path")
    if rel[0] == "/":
        raise ValueError(f"{rel[:80]!r} is absolute")
    parts = rel.split("/")
    if len(parts) > MAX_DEPTH:
        raise ValueError(f"{rel[:80]!r} is nested more than {MAX_DEPTH} directories deep")
    if not _PLAIN_PARTS.isdisjoint(parts):
        raise ValueError(f"{rel[:80]!r} is not a plain relative path")
    try:
        size = len(rel.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: a name that is not UTF-8
        raise ValueError(f"file name {rel[:80]!r} is not valid UTF-8") from None
    if size > 255 and any(len(p.encode("utf-8")) > 255 for p in parts):
        raise ValueError(f"{rel[:80]!r} has a component longer than 255 bytes")
    bad = _BAD_CHAR.search(rel)
    if bad:
        if bad.group() == ":":
            raise ValueError(f"file name {rel[:80]!r} contains ':', which HDFS does not allow")
        raise ValueError(f"file name {rel[:80]!r} contains a backslash or a control character")
    if rel == MANIFEST_NAME:
        raise ValueError(f"{MANIFEST_NAME!r} is reserved for mdl's manifest")
    return rel


def _check_tree(paths: list[str]) -> None:
    """No path twice, and no path that is also a directory of another (one would overwrite the other)."""
    seen: set[str] = set()
    for p in paths:
        if p in seen:
            raise _Invalid(f"{p[:80]!r} is listed twice")
        seen.add(p)
    for p in paths:
        parts = p.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in seen:
                raise _Invalid(f"{p[:80]!r} is inside {'/'.join(parts[:depth])[:80]!r}, which is listed as a file")


def is_sha256(s: str) -> bool:
    return _SHA256.fullmatch(s) is not None


def digest_of(files: Iterable[FileEntry]) -> str:
    """A hash over the sorted file entries: equal digests mean byte-identical versions."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(files, key=lambda e: e.path):
        h.update(f"{f.sha256}  {f.size}  {f.path}\n".encode())
    return "sha256:" + h.hexdigest()


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
    """A path pushed into a version: the rules ``check_entry_path`` holds every manifest to."""
    try:
        return check_entry_path(rel)
    except ValueError as exc:
        raise InvalidInput(str(exc), hint="rename the file") from None


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
    _walk(source, "", found, [(st.st_dev, st.st_ino)])
    if not found:
        raise InvalidInput(f"directory {str(source)!r} holds no files", hint="push a directory with the model's files")
    return "directory", sorted(found)


def _walk(directory: Path, prefix: str, found: list[tuple[str, Path]], ancestors: list[tuple[int, int]]) -> None:
    """Every file below ``directory``. Symlinks are followed, to files and to directories alike (a
    model directory assembled from links is pushed whole); a link back to a directory it is in is
    a loop, refused with the path."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise InvalidInput(f"cannot read {str(directory)!r}: {exc.strerror}") from None
    for e in entries:
        local = Path(e.path)
        rel = prefix + e.name
        try:
            st = os.stat(local)  # follows a symlink
        except FileNotFoundError:
            raise NotFound(f"path {str(local)!r} does not exist", hint="a dangling symlink? remove it") from None
        except OSError as exc:
            raise InvalidInput(f"cannot read {str(local)!r}: {exc.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if len(ancestors) >= MAX_DEPTH:
                raise InvalidInput(f"{str(local)!r} is nested more than {MAX_DEPTH} directories deep")
            if key in ancestors:
                raise InvalidInput(
                    f"{str(local)!r} is a symlink loop (it leads back to a directory it is in)",
                    hint="remove the link or push a directory without loops",
                )
            _walk(local, rel + "/", found, ancestors + [key])
        elif stat.S_ISREG(st.st_mode):
            _check_readable(local)
            found.append((check_relpath(rel), local))
        else:
            raise InvalidInput(f"{str(local)!r} is not a regular file", hint="push regular files only")


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
        head = f.read(4)
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if head == b"PK\x03\x04" and _is_skops(local):
        return "skops"
    return "file"


def _is_skops(path: Path) -> bool:
    """A zip archive with skops' schema.json at its top (reads the central directory only)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return "schema.json" in z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
