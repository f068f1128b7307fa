"""The storage contract: an immutable tree ``<root>/<name>/<version>/<files>``.

A version becomes visible in one atomic step (``Stage.publish``) after its files and, last, its
manifest were written under a hidden staging path; it vanishes in one atomic step too
(``Storage.hide_version``) before its bytes are purged. Every backend implements this contract and the
suite in ``tests/contract`` proves it for each.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from mdl.errors import Conflict, IntegrityError, InvalidInput, MdlError, NotFound
from mdl.manifest import CHUNK, MANIFEST_MAX, MANIFEST_NAME, FileEntry, Manifest, check_entry_path
from mdl.names import validate_version

STAGING_DIR = ".mdl-staging"  # per model: <root>/<name>/.mdl-staging/<version>.<pid>.<token>
DELETING_DIR = ".mdl-deleting"  # per model: <root>/<name>/.mdl-deleting/<version>.<token>
#: per model: <root>/<name>/.mdl-signatures/<version>/<sig_id>.sig, outside the version (its digest never changes)
SIGNATURES_DIR = ".mdl-signatures"
SIG_SUFFIX = ".sig"
#: what listings of models and versions pass over without a word: mdl's own hidden directories
OWN_DIRS = frozenset({STAGING_DIR, DELETING_DIR, SIGNATURES_DIR})
OnBytes = Callable[[int], None]
TREE_HINT = "the stored tree was changed behind mdl's back"

#: Whatever the tree holds is untrusted input: entries that are not mdl's are skipped, said here.
log = logging.getLogger("mdl.storage")


def skip_foreign(entry: str, where: str, why: str) -> None:
    """An entry of the tree that is not mdl's (``lost+found``, a stray file, a symlink): skipped."""
    log.debug("skipping %r in %s: %s", entry, where, why)


def invalid_name(entry: str, validate: Callable[[str], str]) -> str | None:
    """Why ``entry`` is not a valid model name / version id (``validate``), or None if it is."""
    try:
        validate(entry)
    except InvalidInput as exc:
        return exc.message
    return None


def staging_name(version: str) -> str:
    """The name of a push's private staging directory: ``<version>.<pid>.<8 hex digits>``."""
    return f"{version}.{os.getpid()}.{secrets.token_hex(4)}"


def is_staging_name(entry: str) -> bool:
    """True if ``entry`` is a name :func:`staging_name` gives (anything else in a staging directory is
    not mdl's, and ``clean`` leaves it alone)."""
    parts = entry.rsplit(".", 2)
    if len(parts) != 3:
        return False
    version, pid, token = parts
    return (
        invalid_name(version, validate_version) is None
        and pid.isascii()
        and pid.isdigit()
        and len(token) == 8
        and all(c in "0123456789abcdef" for c in token)
    )


def hidden_name(version: str) -> str:
    """The name a version is hidden under while it is deleted: ``<version>.<8 hex digits>``."""
    return f"{version}.{secrets.token_hex(4)}"


def hidden_version(entry: str) -> str | None:
    """The version an entry of a :data:`DELETING_DIR` hides (named by :func:`hidden_name`), or None if
    ``entry`` is not such a name (not mdl's: never purged)."""
    version, dot, token = entry.rpartition(".")
    if not dot or len(token) != 8 or not all(c in "0123456789abcdef" for c in token):
        return None
    return version if invalid_name(version, validate_version) is None else None


def check_sig_id(sig_id: str) -> str:
    """A signature's id: 64 lowercase hex digits (the signer's key id); InvalidInput otherwise."""
    if not isinstance(sig_id, str) or len(sig_id) != 64 or any(c not in "0123456789abcdef" for c in sig_id):
        raise InvalidInput(f"invalid signature id {str(sig_id)[:80]!r}: 64 lowercase hex digits expected")
    return sig_id


def sig_id_of(entry: str) -> str | None:
    """The signature id an entry of a version's signature directory names (``<sig_id>.sig``), or None."""
    if not entry.endswith(SIG_SUFFIX):
        return None
    sig_id = entry[: -len(SIG_SUFFIX)]
    return sig_id if invalid_name(sig_id, check_sig_id) is None else None


def signature_temp(sig_id: str) -> str:
    """The hidden name a signature is written under before it is renamed (or linked) into place."""
    return f".{sig_id}.{secrets.token_hex(4)}.tmp"


def signature_differs(name: str, version: str, sig_id: str) -> Conflict:
    return Conflict(
        f"{name}/{version} already carries a different signature {sig_id}",
        hint="a signature is never overwritten; see the signatures with: mdl verify " + f"{name} {version}",
    )


def version_gone(name: str, version: str, url: str) -> NotFound:
    """A file of a version could not be read because the version itself is gone from the storage at
    ``url`` (deleted meanwhile)."""
    return NotFound(
        f"version {name}/{version} no longer exists in {url} (deleted while being read?)",
        hint=f"see the versions with: mdl list {name}",
    )


def stored_rel(name: str, version: str, rel: str) -> str:
    """``rel`` as a path inside a stored version (a manifest's path, or the manifest itself):
    IntegrityError unless it is a plain relative path, whatever the caller was given."""
    if rel == MANIFEST_NAME:
        return rel
    try:
        return check_entry_path(rel)
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"refusing to read from {name}/{version}: {exc}", hint=TREE_HINT) from None


def too_large(what: str, size: int, limit: int) -> IntegrityError:
    return IntegrityError(
        f"{what} is {size} bytes, more than the {limit} mdl reads: refusing to read it", hint=TREE_HINT
    )


def open_source(local: Path) -> BinaryIO:
    """Open a local file being pushed (unbuffered). It may have changed since it was scanned: gone
    (NotFound), unreadable (InvalidInput), or no longer a regular file (never blocks on a FIFO)."""
    try:
        fd = os.open(local, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise source_error(exc, local) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInput(f"{str(local)!r} is no longer a regular file", hint="push regular files only")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def source_error(exc: OSError, local: Path) -> MdlError:
    """What a failure to open or stat a file being pushed means to the user."""
    if isinstance(exc, FileNotFoundError):
        return vanished(local)
    if isinstance(exc, PermissionError):
        return InvalidInput(f"file {str(local)!r} is not readable (permission denied)")
    return MdlError(f"cannot read {str(local)!r}: {exc.strerror or exc}")


def vanished(local: Path) -> NotFound:
    return NotFound(
        f"file {str(local)!r} vanished while it was being pushed", hint="push again once the file is complete"
    )


class StagingEntry(NamedTuple):
    """Debris of a push that never published: ``path`` is backend-specific."""

    name: str
    path: str
    age_seconds: float


class Stage(ABC):
    """A version being written; invisible to readers until ``publish``."""

    name: str
    version: str

    @abstractmethod
    def upload(self, rel: str, local: Path, on_bytes: OnBytes | None = None) -> str:
        """Write one local file into the staged version; return the sha256 of the bytes sent."""

    @abstractmethod
    def write_manifest(self, manifest: Manifest) -> None:
        """Write the manifest; called last."""

    @abstractmethod
    def retarget(self, version: str) -> None:
        """Publish under another version id (after losing a race for an automatic id)."""

    @abstractmethod
    def publish(self) -> None:
        """Make the version visible in one atomic step; raise VersionExists if it already is."""

    @abstractmethod
    def abort(self) -> None:
        """Remove the staged files (best effort, idempotent)."""


class Storage(ABC):
    """A versioned model tree."""

    url: str

    @abstractmethod
    def list_models(self) -> list[str]:
        """Models in the tree: real directories with valid names; anything else is skipped (logged)."""

    @abstractmethod
    def list_versions(self, name: str) -> list[str]:
        """Published versions of a model (any order): real directories with valid version ids; hidden
        paths and anything else are skipped (logged)."""

    @abstractmethod
    def read_bytes(self, name: str, version: str, rel: str, limit: int = MANIFEST_MAX) -> bytes:
        """A small file of a version (the manifest); NotFound if absent; IntegrityError, before
        reading it, if it holds more than ``limit`` bytes."""

    @abstractmethod
    def open(self, name: str, version: str, rel: str) -> BinaryIO:
        """A streaming reader of one file of a version."""

    @abstractmethod
    def stage(self, name: str, version: str) -> Stage:
        """Begin writing a new version under a hidden staging path."""

    @abstractmethod
    def list_staging(self, name: str | None = None) -> list[StagingEntry]:
        """Staging directories of pushes (any age) of valid models: only real directories named as
        :func:`staging_name` names them, in real staging directories; anything else is skipped."""

    @abstractmethod
    def remove_staging(self, entry: StagingEntry) -> None:
        """Remove one staging directory; InvalidInput for a path that is not one, and never anything
        reached through a symlink."""

    @abstractmethod
    def hide_version(self, name: str, version: str) -> str | None:
        """Hide a published version in one atomic rename to ``<name>/.mdl-deleting/<version>.<token>``
        (readers see it vanish at once); the hidden path, or None if there is no such version
        directory. Only a real directory is moved (Escape for a symlink or a file)."""

    @abstractmethod
    def list_hidden(self, name: str) -> list[str]:
        """The entries (names, sorted) of ``name``'s :data:`DELETING_DIR` named by :func:`hidden_name`:
        versions hidden by deletes, purged or not yet; anything else there is skipped (logged)."""

    @abstractmethod
    def purge_hidden(self, name: str, entry: str, *, trash: bool = False) -> None:
        """Delete the hidden ``entry`` of ``name`` recursively (idempotent), or with ``trash`` move it
        into the user's trash where the storage has one (:attr:`has_trash`; InvalidInput where not).
        Never removes anything but that entry of the model's :data:`DELETING_DIR`."""

    #: whether :meth:`purge_hidden` can move versions into a trash (HDFS) instead of deleting them
    has_trash: bool = False

    # -- signatures: <name>/.mdl-signatures/<version>/<sig_id>.sig, untrusted like the rest ----------

    @abstractmethod
    def put_signature(self, name: str, version: str, sig_id: str, data: bytes) -> bool:
        """Add a signature in one atomic step (a hidden temporary, then renamed). Never overwrites: the
        same ``sig_id`` again is a no-op if the bytes are identical (False), Conflict if not. True if added."""

    @abstractmethod
    def list_signatures(self, name: str, version: str) -> list[str]:
        """The ids (sorted) of ``name/version``'s signatures: regular files named ``<sig_id>.sig``;
        anything else is skipped (logged), a symlink included."""

    @abstractmethod
    def read_signature(self, name: str, version: str, sig_id: str, limit: int) -> bytes:
        """One signature's bytes; NotFound if absent; IntegrityError, before reading it, if it holds
        more than ``limit`` bytes or is not a regular file (never through a symlink)."""

    @abstractmethod
    def remove_signatures(self, name: str, version: str, *, trash: bool = False) -> None:
        """Remove every signature of ``name/version`` (idempotent; never anything reached through a symlink),
        or with ``trash`` move them into the trash beside the version (as :meth:`purge_hidden` does)."""

    def close(self) -> None:
        """Release connections."""

    def read_manifest(self, name: str, version: str) -> Manifest:
        """The manifest of ``name/version``, checked (IntegrityError) to be a valid one of this very
        version: a manifest copied or moved from elsewhere in the tree is refused."""
        data = self.read_bytes(name, version, MANIFEST_NAME, MANIFEST_MAX)
        return Manifest.from_json(data, where=f"manifest of {name}/{version}", expect=(name, version))

    def download(self, name: str, version: str, entry: FileEntry, dest: Path, on_bytes: OnBytes | None = None) -> str:
        """Stream one file to ``dest``, a path that must not exist yet (never truncated, never
        through a symlink); return the sha256 of what was written."""
        from mdl.hashing import BackgroundSha256
        from mdl.safefs import create_new

        h = BackgroundSha256()
        try:
            with self.open(name, version, entry.path) as src, create_new(dest) as out:
                for chunk in iter_chunks(src, h, on_bytes):
                    out.write(chunk)
        finally:
            digest = h.hexdigest()
        return digest


def iter_chunks(f: BinaryIO, h: Any, on_bytes: OnBytes | None) -> Iterator[bytes]:
    """Read ``f`` in chunks, hashing and counting as it goes."""
    while chunk := f.read(CHUNK):
        h.update(chunk)
        if on_bytes:
            on_bytes(len(chunk))
        yield chunk
