"""The embedded storage: a local directory holding ``<name>/<version>/<files>``."""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from mdl.errors import ConfigError, InvalidInput, NotFound, PermissionDenied, VersionExists
from mdl.manifest import MANIFEST_NAME, Manifest
from mdl.names import validate_name, validate_version
from mdl.storage.base import STAGING_DIR, OnBytes, Stage, StagingEntry, Storage, iter_chunks


def _path_of(url: str) -> Path:
    if "://" not in url:
        return Path(url).expanduser().absolute()
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise ConfigError(f"storage.url {url!r} names a host; use file:///absolute/path")
    return Path(unquote(parsed.path))


class LocalStage(Stage):
    def __init__(self, storage: "LocalStorage", name: str, version: str) -> None:
        self.name, self.version = name, version
        self._final = storage.root / name / version
        staging = storage.root / name / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        self.path = staging / f"{version}.{os.getpid()}.{os.urandom(4).hex()}"
        self.path.mkdir()

    def upload(self, rel: str, local: Path, on_bytes: OnBytes | None = None) -> str:
        dest = self.path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        from mdl.hashing import BackgroundSha256

        h = BackgroundSha256()
        try:
            with open(local, "rb") as src, open(dest, "wb") as out:
                for chunk in iter_chunks(src, h, on_bytes):
                    out.write(chunk)
        finally:
            digest = h.hexdigest()
        return digest

    def write_manifest(self, manifest: Manifest) -> None:
        tmp = self.path / (MANIFEST_NAME + ".tmp")
        tmp.write_bytes(manifest.to_json())
        os.replace(tmp, self.path / MANIFEST_NAME)

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
            raise

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class LocalStorage(Storage):
    """Versions in a directory on this machine; publish is one rename(2)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = _path_of(url)

    def _model_dirs(self) -> list[Path]:
        try:
            return sorted(p for p in self.root.iterdir() if not p.name.startswith(".") and p.is_dir())
        except FileNotFoundError:
            return []
        except PermissionError:
            raise PermissionDenied(f"cannot read storage directory {str(self.root)!r}: permission denied") from None

    def list_models(self) -> list[str]:
        return [p.name for p in self._model_dirs()]

    def list_versions(self, name: str) -> list[str]:
        validate_name(name)
        try:
            entries = list((self.root / name).iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [p.name for p in entries if not p.name.startswith(".") and p.is_dir()]

    def _file(self, name: str, version: str, rel: str) -> Path:
        validate_name(name)
        validate_version(version)
        return self.root / name / version / rel

    def read_bytes(self, name: str, version: str, rel: str) -> bytes:
        try:
            return self._file(name, version, rel).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{name}/{version}/{rel} does not exist in {self.url}") from None

    def open(self, name: str, version: str, rel: str) -> BinaryIO:
        try:
            return open(self._file(name, version, rel), "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{name}/{version}/{rel} does not exist in {self.url}") from None

    def stage(self, name: str, version: str) -> Stage:
        try:
            return LocalStage(self, name, version)
        except PermissionError:
            raise PermissionDenied(f"cannot write under {str(self.root)!r}: permission denied") from None

    def list_staging(self, name: str | None = None) -> list[StagingEntry]:
        dirs = [self.root / name] if name else self._model_dirs()
        now = time.time()
        out = []
        for d in dirs:
            try:
                entries = list((d / STAGING_DIR).iterdir())
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                try:
                    age = now - e.stat().st_mtime
                except FileNotFoundError:
                    continue
                out.append(StagingEntry(d.name, str(e), age))
        return out

    def remove_staging(self, entry: StagingEntry) -> None:
        path = Path(entry.path)
        if path.parent.name != STAGING_DIR or path.parent.parent.parent != self.root:
            raise InvalidInput(f"{entry.path!r} is not an mdl staging path")  # never delete anything else
        shutil.rmtree(path, ignore_errors=True)
