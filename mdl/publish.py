"""Publishing a push: find whether it duplicates an existing version, else stage every file, write
the manifest last and make the version appear with one atomic step (see docs/safety.md, "How a version is
published"). Works through :class:`~mdl.client.Client`'s public API; ``Client.push`` calls it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mdl import __version__
from mdl.errors import Conflict, VersionExists
from mdl.host import now_iso
from mdl.manifest import FileEntry, Manifest, detect_format, digest_of
from mdl.names import unique_version

if TYPE_CHECKING:
    from mdl.client import Client
    from mdl.transfer import Progress


def immutable(name: str, version: str) -> Conflict:
    return Conflict(
        f"version {name}/{version} already exists with different content",
        hint="versions are immutable: push under a new version",
    )


def identical_version(
    client: Client, name: str, version: str | None, existing: list[str], files: list, jobs: int, progress: Progress
) -> Manifest | list[FileEntry] | None:
    """The existing version this push would duplicate (``--version``, else the newest one).

    Files are hashed up front only when a candidate has the same paths and sizes, so a new
    version is read once (hashed while it uploads). Returns the duplicate's manifest, or the
    entries hashed on the way (or None), and raises Conflict if ``version`` holds other bytes.
    """
    if version is not None:
        candidate = client.manifest(name, version) if version in existing else None
    else:
        candidate = _newest(client, name, existing)
    if candidate is None:
        return None
    shape = {(rel, local.stat().st_size) for rel, local in files}
    entries = None
    if shape == {(f.path, f.size) for f in candidate.files}:
        from mdl.transfer import hash_files

        entries = hash_files(files, jobs, progress)
        if digest_of(entries) == candidate.digest:
            return candidate
    if version is not None:
        raise immutable(name, version)
    return entries


def _newest(client: Client, name: str, versions: list[str]) -> Manifest | None:
    infos = client.manifests(name, versions)
    return max(infos, key=lambda m: (m.created, m.version)) if infos else None


def publish(
    client: Client,
    name: str,
    version: str,
    kind: str,
    files: list,
    fmt: str | None,
    jobs: int,
    progress: Progress,
    hashed: list[FileEntry] | None,
    auto_version: bool,
) -> Manifest:
    """Stage every file, write the manifest last, publish with one atomic step."""
    stage = client.storage.stage(name, version)
    published = False
    try:
        from mdl.transfer import upload_files

        entries = upload_files(stage, files, jobs, progress, expected=hashed)
        manifest = Manifest(
            name=name,
            version=version,
            files=entries,
            digest=digest_of(entries),
            created=now_iso(),
            creator=client.identity,
            mdl_version=__version__,
            format=fmt or detect_format(kind, files),
            kind=kind,
        )
        for _ in range(20):
            stage.write_manifest(manifest)
            try:
                stage.publish()
                published = True
                return manifest
            except VersionExists:
                existing = client.storage.list_versions(name)
                other = client.manifest(name, manifest.version)
                if other.digest == manifest.digest:
                    return other  # a concurrent push of the same bytes won
                if not auto_version:
                    raise immutable(name, manifest.version) from None
                manifest.version = unique_version(manifest.version, set(existing))
                stage.retarget(manifest.version)
        raise Conflict(f"could not find a free version id for {name}")
    finally:
        if not published:
            stage.abort()
