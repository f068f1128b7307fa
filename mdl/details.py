"""One version seen whole without pulling it: its files, where the aliases point, who promoted it,
whether it is pinned, which replicas run it (``mdl show``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mdl.client import Client
    from mdl.fleet import ReplicaRecord
    from mdl.manifest import Manifest
    from mdl.registry.base import HistoryEntry


@dataclass
class VersionDetails:
    """A version's manifest with what the registry and the fleet say about it."""

    manifest: Manifest
    aliases: list[str]  # the aliases that point at it now
    promotions: list[HistoryEntry]  # the history entries that moved an alias to it, oldest first
    replicas: list[ReplicaRecord]  # the live replicas that have it loaded or are moving to it
    pinned: bool = False  # mdl pin: rm and gc never delete it

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": m.name,
            "version": m.version,
            "digest": m.digest,
            "format": m.format,
            "kind": m.kind,
            "created": m.created,
            "creator": m.creator,
            "bytes": m.bytes,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in m.files],
            "aliases": self.aliases,
            "pinned": self.pinned,
            "promotions": [e.to_dict() for e in self.promotions],
            "replicas": [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "state": r.state,
                    "loaded": r.loaded,
                    "desired": r.desired,
                    "alias": r.alias,
                    "host": r.host,
                    "address": r.address,
                }
                for r in self.replicas
            ],
        }


def describe(client: Client, name: str, version: str | None = None, alias: str | None = None) -> VersionDetails:
    """``name``'s ``version`` (default: the one ``alias``, default latest, points at). NotFound names
    the missing model, alias or version."""
    from mdl.fleet import Fleet

    version = client.resolve(name, version=version, alias=alias)
    manifest = client.manifest(name, version)
    aliases = sorted(a for a, v in client.pointer(name).aliases.items() if v == version)
    promotions = [e for e in client.history(name) if e.to_version == version]
    replicas = [r for r in Fleet(client).replicas(name) if version in (r.loaded, r.desired)]
    pinned = version in client.registry.lifecycle(name).pins
    return VersionDetails(manifest, aliases, sorted(promotions, key=lambda e: e.seq), replicas, pinned)
