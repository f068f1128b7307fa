"""``--prefetch``: download a version as soon as it is pushed, before it is promoted, so that the swap
finds it verified on disk."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mdl.client import Client
from mdl.errors import MdlError, NotFound
from mdl.versiondir import VersionDir
from mdl.watch.options import WatchOptions


class Prefetcher:
    """One thread that looks for new versions every ``prefetch_interval`` and has ``fetch`` download
    the newest (the engine's fetch: never the same version twice at once). Internal to mdl.watch."""

    def __init__(
        self,
        client: Client,
        name: str,
        opts: WatchOptions,
        local: VersionDir,
        fetch: Callable[[str], Any],
        event: Callable[..., None],
        stopped: threading.Event,
    ) -> None:
        self.client = client
        self.name = name
        self.opts = opts
        self.local = local
        self.fetch = fetch
        self.event = event
        self.stopped = stopped

    def start(self) -> None:
        threading.Thread(target=self._loop, name="mdl-prefetch", daemon=True).start()

    def _loop(self) -> None:
        older: set[str] = set()  # versions seen older than what is here: never fetched (or read) again
        while not self.stopped.wait(self.opts.prefetch_interval):
            try:
                versions = self.client.stored_versions(self.name)
                local = self.local.local_versions()
                fresh = [v for v in versions if v not in local and v not in older]
                if not fresh:
                    continue
                # Only a version pushed after everything here: not one that retention removed.
                here = [m.created for v in local if (m := self.local.manifest(v)) is not None]
                newest_here = max(here, default="")
                found = self.client.manifests(self.name, fresh)
                older.update(m.version for m in found if m.created <= newest_here)
                newer = [m for m in found if m.created > newest_here]
                if not newer:
                    continue
                newest = max(newer, key=lambda m: (m.created, m.version))
                self.fetch(newest.version)
                self.event("prefetched", version=newest.version)
            except NotFound:
                continue
            except MdlError as exc:
                self.event("prefetch-failed", error=exc.message)
