"""Storage backends, chosen by the URL scheme of ``storage.url``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mdl.errors import ConfigError
from mdl.storage.base import Stage, StagingEntry, Storage

if TYPE_CHECKING:
    from mdl.config import Config

__all__ = ["Stage", "StagingEntry", "Storage", "open_storage"]


def open_storage(config: Config) -> Storage:
    url: str = config["storage.url"]
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    if scheme == "file":
        from mdl.storage.local import LocalStorage

        return LocalStorage(url)
    if scheme in ("webhdfs", "swebhdfs"):
        from mdl.storage.webhdfs import WebHdfsStorage

        return WebHdfsStorage.from_config(config)
    raise ConfigError(
        f"storage.url {url!r} has unknown scheme {scheme!r}", hint="use file:///path or webhdfs://host:port"
    )
