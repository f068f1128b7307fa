"""A push in progress, published by one ``rename2`` on the NameNode (see the package's docstring)."""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mdl.errors import IntegrityError, InvalidInput, MdlError, NotFound, Unavailable, VersionExists
from mdl.manifest import MANIFEST_NAME, Manifest
from mdl.names import validate_version
from mdl.storage.base import STAGING_DIR, TREE_HINT, OnBytes, Stage, source_error, staging_name
from mdl.storage.webhdfs.protocol import NAMENODE_HINT
from mdl.storage.webhdfs.session import LostAnswer
from mdl.storage.webhdfs.upload import FileBody, write_file

if TYPE_CHECKING:
    from mdl.storage.webhdfs.session import WebHdfsSession

log = logging.getLogger("mdl.storage.webhdfs")


def _check_rel(rel: str) -> str:
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or any(part in ("", ".", "..") for part in rel.split("/")):
        raise InvalidInput(f"invalid file path {rel!r} inside a version")
    return str(p)


class WebHdfsStage(Stage):
    """A push in progress under ``<model_dir>/.mdl-staging/<version>.<pid>.<token>``."""

    def __init__(self, session: WebHdfsSession, model_dir: str, name: str, version: str) -> None:
        self._session = session
        self._model_dir = model_dir
        self.name, self.version = name, version
        self.path = posixpath.join(model_dir, STAGING_DIR, staging_name(version))
        self._manifest: bytes | None = None
        self._published = False
        try:
            session.mkdirs(self.path)
        except MdlError as exc:
            if getattr(exc, "remote_exception", None) in ("ParentNotDirectoryException", "FileAlreadyExistsException"):
                raise IntegrityError(
                    f"cannot stage {name}/{version}: {model_dir} or its "
                    f"{STAGING_DIR} is not a directory in {session.url}",
                    hint=TREE_HINT,
                ) from None
            raise

    def upload(self, rel: str, local: Path, on_bytes: OnBytes | None = None) -> str:
        rel = _check_rel(rel)
        try:
            size = os.stat(local).st_size
        except OSError as exc:
            raise source_error(exc, local) from None
        body = FileBody(local, size, on_bytes)
        write_file(
            self._session,
            posixpath.join(self.path, rel),
            body if size else b"",
            what=f"{self.name}/{self.version}/{rel} (staged)",
        )
        return body.sha256 if size else hashlib.sha256().hexdigest()

    def write_manifest(self, manifest: Manifest) -> None:
        data = manifest.to_json()
        write_file(
            self._session,
            posixpath.join(self.path, MANIFEST_NAME),
            data,
            what=f"manifest of {self.name}/{self.version} (staged)",
        )
        self._manifest = data

    def retarget(self, version: str) -> None:
        self.version = validate_version(version)

    @property
    def final_path(self) -> str:
        return posixpath.join(self._model_dir, self.version)

    def publish(self) -> None:
        final = self.final_path
        attempt = 0
        while True:
            try:
                # rename2: atomic, never into an existing directory, fails if `final` exists at all.
                self._session.namenode(
                    "PUT",
                    self.path,
                    "RENAME",
                    idempotent=False,
                    destination=final,
                    renameoptions="NONE",
                    what=f"staged version {self.name}/{self.version}",
                )
                self._published = True
                return
            except LostAnswer as lost:
                outcome = self._outcome(final)
                if outcome == "won":
                    self._published = True
                    return
                if outcome == "lost":
                    raise VersionExists(f"version {self.name}/{self.version} already exists") from None
                attempt += 1  # the rename did not happen: the destination is still free, try again
                if attempt > self._session.retries:
                    raise Unavailable(
                        f"could not publish {self.name}/{self.version}: the NameNode "
                        f"{lost.base} did not answer the rename ({lost.detail})",
                        hint=NAMENODE_HINT,
                    ) from None
                self._session.backoff.sleep(attempt)
            except MdlError as exc:
                if getattr(exc, "remote_exception", None) == "FileAlreadyExistsException":
                    raise VersionExists(f"version {self.name}/{self.version} already exists") from None
                if isinstance(exc, NotFound):
                    raise MdlError(
                        f"the staged files of {self.name}/{self.version} vanished before publishing ({self.path})",
                        hint="was `mdl clean` run during the push? push again",
                    ) from None
                raise

    def _outcome(self, final: str) -> str:
        """After a lost answer to the rename: 'won', 'lost' or 'not-done' (read back, idempotently)."""
        s = self._session
        staged = s.exists(self.path)
        manifest = posixpath.join(final, MANIFEST_NAME)
        try:
            theirs = s.reader(manifest, 0, s.file_length(manifest, final)).read()
        except NotFound:
            theirs = None
        if not staged and self._manifest is not None and theirs == self._manifest:
            return "won"
        if s.exists(final):
            return "lost"
        if staged:
            return "not-done"
        raise MdlError(f"the staged files of {self.name}/{self.version} vanished during publishing ({self.path})")

    def abort(self) -> None:
        if self._published:
            return
        try:
            self._session.delete(self.path)
        except MdlError as exc:  # best effort: `mdl clean` removes what is left
            log.warning("could not remove staging path %s: %s", self.path, exc.message)
