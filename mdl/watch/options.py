"""The watch engine's settings: ``mdl watch``'s options (``mdl serve`` sets some of them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdl.names import DEFAULT_ALIAS

Emit = Callable[[dict[str, Any]], None]  # hears each event of the engine (one JSON-able dict)


@dataclass
class WatchOptions:
    alias: str = DEFAULT_ALIAS
    version: str | None = None  # pin a version instead of following an alias
    keep: int = 3
    exec_cmd: str | None = None
    signal: str | None = None
    pidfile: Path | None = None
    webhook: str | None = None
    prefetch: bool = False
    prefetch_interval: float = 2.0
    poll: float = 0.0  # > 0: re-read the pointer every ``poll`` seconds instead of subscribing
    jitter: float = 0.0
    max_concurrent: int = 0  # downloads of this model at once across the fleet; 0 = no cap
    syncing_after: float = 1.0  # a download reports "syncing" only once it has run this long
    heartbeat: float = 5.0  # the loop wakes at least this often (liveness, retries)
    resync: float = 60.0  # with a live subscription, still re-read the pointer this often (a safety net)
    retry_base: float = 1.0
    retry_max: float = 60.0
    hook_timeout: float = 60.0
    require_signature: bool = False  # refuse versions without a valid signature (or trust.require_signature)
    address: str | None = None  # for servers: the URL replicas are reached at
    kind: str = "watcher"
    extra: dict[str, Any] = field(default_factory=dict)
