"""The storage contract: an immutable tree ``<root>/<name>/<version>/<files>``.

A version becomes visible in one atomic step (``Stage.publish``) after its files and, last, its
manifest were written under a hidden staging path. Every backend implements this contract and the
suite in ``tests/contract`` proves it for each.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple

from mdl.manifest import CHUNK, MANIFEST_NAME, FileEntry, Manifest

STAGING_DIR = ".mdl-staging"  # per model: <root>/<name>/.mdl-staging/<version>.<token>
OnBytes = Callable[[int], None]


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
    def list_models(self) -> list[str]: ...

    @abstractmethod
    def list_versions(self, name: str) -> list[str]:
        """Published versions of a model (any order); hidden paths are never versions."""

    @abstractmethod
    def read_bytes(self, name: str, version: str, rel: str) -> bytes:
        """A small file of a version (the manifest); NotFound if absent."""

    @abstractmethod
    def open(self, name: str, version: str, rel: str) -> BinaryIO:
        """A streaming reader of one file of a version."""

    @abstractmethod
    def stage(self, name: str, version: str) -> Stage:
        """Begin writing a new version under a hidden staging path."""

    @abstractmethod
    def list_staging(self, name: str | None = None) -> list[StagingEntry]: ...

    @abstractmethod
    def remove_staging(self, entry: StagingEntry) -> None: ...

    def close(self) -> None:
        """Release connections."""

    def read_manifest(self, name: str, version: str) -> Manifest:
        data = self.read_bytes(name, version, MANIFEST_NAME)
        return Manifest.from_json(data, where=f"manifest of {name}/{version}")

    def download(self, name: str, version: str, entry: FileEntry, dest: Path,
                 on_bytes: OnBytes | None = None) -> str:
        """Stream one file to ``dest``; return the sha256 of what was written."""
        from mdl.hashing import BackgroundSha256

        h = BackgroundSha256()
        try:
            with self.open(name, version, entry.path) as src, open(dest, "wb") as out:
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
