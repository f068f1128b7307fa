"""What the library's operations return: plain named tuples, each with ``to_dict()`` (the ``-o json``
documents of the CLI, which only ever gain keys)."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["ModelSummary", "MoveResult", "PullResult", "PushResult", "VersionInfo"]


class PushResult(NamedTuple):
    name: str
    version: str
    digest: str
    files: int
    bytes: int
    format: str
    created: str
    changed: bool
    uploaded: bool
    promoted: str | None = None
    signature: dict[str, Any] | None = None  # push --sign: who signed (mdl.trust), and whether it was added

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        if d["signature"] is None:  # the key exists only for push --sign
            del d["signature"]
        return d


class VersionInfo(NamedTuple):
    version: str
    bytes: int
    files: int
    created: str
    creator: str
    format: str
    digest: str
    aliases: list[str]

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class ModelSummary(NamedTuple):
    name: str
    aliases: dict[str, str]
    versions: int

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class MoveResult(NamedTuple):
    """A move of ``alias``: ``version`` is where it points now (None once ``action`` remove took it away)."""

    name: str
    alias: str
    previous: str | None
    version: str | None
    changed: bool
    action: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class PullResult(NamedTuple):
    name: str
    version: str
    digest: str
    path: str
    files: int
    bytes: int
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()
