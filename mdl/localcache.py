"""The sidecar's local directory: verified versions and an atomically swapped ``current`` link.

    DIR/versions/<version>/...     verified copies (each with its .mdl-manifest.json)
    DIR/current -> versions/<v>    what the serving process reads
    DIR/previous -> versions/<v>   the version before (kept by retention, used to revert a swap)
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Callable

from mdl.errors import IntegrityError
from mdl.manifest import MANIFEST_NAME, Manifest
from mdl.transfer import verify_local


class LocalCache:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.versions = self.root / "versions"
        self.versions.mkdir(parents=True, exist_ok=True)

    def path(self, version: str) -> Path:
        return self.versions / version

    def _link(self, name: str) -> str | None:
        try:
            target = os.readlink(self.root / name)
        except OSError:
            return None
        return Path(target).name

    @property
    def current(self) -> str | None:
        v = self._link("current")
        return v if v and self.path(v).is_dir() else None

    @property
    def previous(self) -> str | None:
        return self._link("previous")

    def manifest(self, version: str) -> Manifest | None:
        try:
            return Manifest.from_json((self.path(version) / MANIFEST_NAME).read_bytes())
        except (OSError, IntegrityError):
            return None

    def has_verified(self, version: str, manifest: Manifest) -> bool:
        return verify_local(self.path(version), manifest)

    def local_versions(self) -> list[str]:
        return sorted(p.name for p in self.versions.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _point(self, name: str, version: str) -> None:
        tmp = self.root / f".{name}.{secrets.token_hex(4)}"
        os.symlink(Path("versions") / version, tmp)
        os.replace(tmp, self.root / name)  # rename(2) over the old link: readers see old or new

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
            if m is not None and removed_manifest:
                removed_manifest(m)
        return removed

    def clean_partials(self) -> None:
        """Remove temporary directories left by interrupted downloads."""
        for p in self.versions.iterdir():
            if p.name.startswith(".") and ".mdl-" in p.name:
                shutil.rmtree(p, ignore_errors=True)
