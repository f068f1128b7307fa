"""A followed model's local directory (``mdl watch -d``, ``mdl serve --cache``): verified versions and an
atomically swapped ``current`` link. Not a cache: files shared between such directories live in BlobCache.

    DIR/versions/<version>/...     verified copies (each with its .mdl-manifest.json)
    DIR/current -> versions/<v>    what the serving process reads
    DIR/previous -> versions/<v>   the version before (kept by retention, used to revert a swap)
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from mdl.errors import IntegrityError
from mdl.manifest import MANIFEST_NAME, Manifest
from mdl.transfer import sweep_temporaries, verify_local


class VersionDir:
    """A model's versions on local disk and the links that name the one served (see the module docstring)."""

    def __init__(self, root: Path, name: str | None = None) -> None:
        self.root = root.absolute()
        self.name = name  # the model whose versions these are (checked in every manifest read)
        self.versions = self.root / "versions"
        self.versions.mkdir(parents=True, exist_ok=True)
        # version -> ((inode, mtime, size) of its manifest file, the manifest parsed from it)
        self._manifests: dict[str, tuple[tuple[int, int, int], Manifest]] = {}

    def path(self, version: str) -> Path:
        return self.versions / version

    def _link(self, name: str) -> str | None:
        try:
            target = os.readlink(os.path.join(self.root, name))
        except OSError:
            return None
        return os.path.basename(target)

    @property
    def current(self) -> str | None:
        v = self._link("current")
        return v if v and os.path.isdir(os.path.join(self.versions, v)) else None

    @property
    def previous(self) -> str | None:
        return self._link("previous")

    def manifest(self, version: str) -> Manifest | None:
        """The manifest of the local copy of ``version`` (None if there is none, or it is damaged).
        Parsed once while the file stays the same: a watcher asks several times per swap."""
        path = os.path.join(self.versions, version, MANIFEST_NAME)
        try:
            st = os.stat(path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            known = self._manifests.get(version)
            if known is not None and known[0] == key:
                return known[1]
            with open(path, "rb", buffering=0) as f:
                m = Manifest.from_json(f.read(), where=path, expect=(self.name, version))
        except (OSError, IntegrityError):
            self._manifests.pop(version, None)
            return None
        self._manifests[version] = (key, m)
        return m

    def has_verified(self, version: str, manifest: Manifest) -> bool:
        return verify_local(self.path(version), manifest)

    def local_versions(self) -> list[str]:
        with os.scandir(self.versions) as it:  # file types from the directory listing: no stat each
            return sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())

    def _point(self, name: str, version: str) -> None:
        tmp = os.path.join(self.root, f".{name}.{secrets.token_hex(4)}")
        os.symlink(f"versions/{version}", tmp)
        os.replace(tmp, os.path.join(self.root, name))  # rename(2) over the old link: readers see old or new

    def swap(self, version: str) -> str | None:
        """Point ``current`` at ``version``; return the version it pointed at before."""
        before = self.current
        if before and before != version:
            self._point("previous", before)
        self._point("current", version)
        return before

    def revert(self, to: str | None) -> None:
        if to is None:
            try:
                os.unlink(self.root / "current")
            except FileNotFoundError:
                pass
        else:
            self._point("current", to)

    def prune(self, keep: int, removed_manifest: Callable[[Manifest], None] | None = None) -> list[str]:
        """Remove old versions beyond ``keep``; never current or previous. Returns what it removed;
        ``removed_manifest`` hears the manifest of each removed version."""
        protected = {self.current, self.previous}
        candidates = [v for v in self.local_versions() if v not in protected]
        candidates.sort(key=lambda v: self.path(v).stat().st_mtime, reverse=True)
        room = max(0, keep - len([p for p in protected if p]))
        removed = candidates[room:]
        for v in removed:
            m = self.manifest(v) if removed_manifest else None
            shutil.rmtree(self.path(v), ignore_errors=True)
            self._manifests.pop(v, None)
            if m is not None and removed_manifest:
                removed_manifest(m)
        return removed

    def clean_partials(self) -> None:
        """Remove temporary directories left by downloads that died (not one still running)."""
        sweep_temporaries(self.versions)
