"""Registry backends, chosen by the URL scheme of ``registry.url``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mdl.errors import ConfigError
from mdl.registry.base import HistoryEntry, Notice, Pointer, Registry, Replica, ReplicaHandle, Watch

if TYPE_CHECKING:
    from mdl.config import Config

__all__ = ["HistoryEntry", "Pointer", "Registry", "Replica", "ReplicaHandle", "Watch", "open_registry"]


def open_registry(config: Config, notice: Notice | None = None) -> Registry:
    """``notice``: hears notes for a waiting person ("connecting to ...") from a remote registry."""
    url: str = config["registry.url"]
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        from mdl.registry.sqlite import SqliteRegistry

        return SqliteRegistry(url, timeout=config["registry.timeout"])
    if scheme == "zk":
        from mdl.registry.zookeeper import ZooKeeperRegistry

        return ZooKeeperRegistry.from_config(config, notice)
    raise ConfigError(
        f"registry.url {url!r} has unknown scheme {scheme!r}",
        hint="use sqlite:///path/registry.db or zk://host:2181/chroot",
    )
