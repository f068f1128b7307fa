"""The fleet of a model: its live replicas (watchers and servers), what each holds, and whether it
matches what its alias names.

``ReplicaRecord`` is the one definition of the record a replica reports to the registry (written
by the watcher, read by ``mdl status``, ``mdl endpoints`` and ``promote --wait``). Registry
contents are untrusted: ``ReplicaRecord.from_replica`` never raises, a field of the wrong type
reads as None.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from mdl.errors import NotFound, RolloutFailed, Timeout
from mdl.registry.base import Replica

if TYPE_CHECKING:
    from mdl.client import Client

# The fields of a record, in the order the watcher writes them.
RECORD_FIELDS = (
    "kind",
    "host",
    "pid",
    "dir",
    "alias",
    "desired",
    "loaded",
    "digest",
    "state",
    "since",
    "error",
    "address",
)
SERVING_STATES = ("ready", "syncing", "failed")  # a server in these answers with the version it has loaded
NO_FOLLOWER_GRACE = 2.0  # seconds promote --wait gives a (re)starting replica to register before giving up


@dataclass(frozen=True, kw_only=True)
class ReplicaRecord:
    """What one replica reports: ``kind`` watcher|server, ``alias`` it follows (None when pinned to
    ``desired``), ``loaded`` version and its ``digest``, ``state`` (ready, syncing, failed, ...)
    since when, the last ``error``, and for a server the ``address`` it answers at.

    ``extra`` holds keys mdl does not know (servers add ``swap``, embedders their own).
    ``stored_keys`` is the key order a record was read with, so ``to_dict`` gives back what was
    stored; a record built in code has None and ``to_dict`` writes every field.
    """

    id: str = ""
    kind: str | None = None
    host: str | None = None
    pid: int | None = None
    dir: str | None = None
    alias: str | None = None
    desired: str | None = None
    loaded: str | None = None
    digest: str | None = None
    state: str | None = None
    since: str | None = None
    error: str | None = None
    address: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    stored_keys: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document a registry stores (``id`` is the registry's key, not part of it).
        Keys of ``extra`` come last and win over a field of the same name."""
        known = {k: getattr(self, k) for k in RECORD_FIELDS}
        if self.stored_keys is not None:  # as read: its stored keys in order, then fields set since (replace)
            doc = {
                k: known[k] if k in known else self.extra[k] for k in self.stored_keys if k in known or k in self.extra
            }
            doc.update((k, v) for k, v in known.items() if k not in doc and v is not None)
        else:
            doc = known
        return {**doc, **self.extra}

    def to_replica(self) -> Replica:
        return Replica(self.id, self.to_dict())

    @classmethod
    def from_replica(cls, replica: Replica) -> ReplicaRecord | None:
        """The record of a registry entry, or None if it is not a JSON object (the caller skips it).
        A known field of the wrong type reads as None; unknown keys go to ``extra``."""
        rid, data = getattr(replica, "id", None), getattr(replica, "data", None)
        if not isinstance(rid, str) or not isinstance(data, dict):
            return None
        values: dict[str, Any] = {}
        for k in RECORD_FIELDS:
            v = data.get(k)
            if k == "pid":
                values[k] = v if isinstance(v, int) and not isinstance(v, bool) else None
            else:
                values[k] = v if isinstance(v, str) else None
        extra = {k: v for k, v in data.items() if k not in RECORD_FIELDS}
        keys = tuple(k for k in data if isinstance(k, str))
        return cls(id=rid, **values, extra=extra, stored_keys=keys)

    # -- what the record means ------------------------------------------------------------------

    def target(self, aliases: dict[str, str]) -> str | None:
        """The version this replica should hold: what its alias names, or the version it is pinned to."""
        return aliases.get(self.alias) if self.alias else self.desired

    def matches(self, aliases: dict[str, str]) -> bool:
        """Ready on the version it should hold (``aliases``: the model's pointer)."""
        return self.loaded == self.target(aliases) and self.state == "ready"

    def follows(self, alias: str) -> bool:
        return self.alias == alias

    def ready_on(self, version: str) -> bool:
        return self.loaded == version and self.state == "ready"

    def failed_on(self, version: str) -> bool:
        return self.desired == version and self.state == "failed"

    @property
    def is_serving(self) -> bool:
        """A server that answers now: it has an address and a loaded version. One syncing a new
        version, or that failed to load one, still answers with the version it has; dead processes
        never appear (their registration disappears)."""
        return self.endpoint() is not None

    def endpoint(self) -> Endpoint | None:
        """This replica as an endpoint if it is serving, else None."""
        if self.kind != "server" or not self.address or not self.loaded or self.state not in SERVING_STATES:
            return None
        return Endpoint(self.address, self.id, self.loaded, self.alias, self.state, self.host, self.error)


class Endpoint(NamedTuple):
    """A live server that answers now (``mdl endpoints``)."""

    url: str
    id: str
    version: str
    alias: str | None
    state: str
    host: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def serving(records: list[ReplicaRecord], alias: str | None = None, version: str | None = None) -> list[Endpoint]:
    """The records that are serving (see ``ReplicaRecord.is_serving``), optionally only those following
    ``alias`` or with ``version`` loaded, as endpoints sorted by URL."""
    found = (
        r.endpoint()
        for r in records
        if (alias is None or r.alias == alias) and (version is None or r.loaded == version)
    )
    return sorted((e for e in found if e is not None), key=lambda e: e.url)


class FleetStatus(NamedTuple):
    """Every live replica of a model against its pointer (``mdl status``)."""

    name: str
    aliases: dict[str, str]
    replicas: list[ReplicaRecord]

    def matches(self, record: ReplicaRecord) -> bool:
        return record.matches(self.aliases)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per replica: its record, ``id`` and ``matches``."""
        return [{**r.to_dict(), "id": r.id, "matches": self.matches(r)} for r in self.replicas]

    @property
    def counts(self) -> dict[str, int]:
        """Replicas per loaded version (``-`` for none), in the order first seen."""
        return dict(Counter(r.loaded or "-" for r in self.replicas))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "aliases": self.aliases, "replicas": self.rows(), "counts": self.counts}


class RolloutProgress(NamedTuple):
    """Where a rollout stands: ``ready`` of the ``needed`` replicas, out of ``following`` live ones."""

    ready: int
    needed: int
    following: int


def plural(n: int, word: str) -> str:
    """``1 replica``, ``2 replicas``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Fleet:
    """The live replicas of models in ``client``'s registry, read as ``ReplicaRecord``.

    from mdl.fleet import Fleet
    Fleet(client).wait_for_rollout("lr", "20261127T171300Z")
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    def replicas(self, name: str) -> list[ReplicaRecord]:
        """The live replicas of ``name``; a record that is not a JSON object is skipped."""
        records = (ReplicaRecord.from_replica(r) for r in self.client.replicas(name))
        return [r for r in records if r is not None]

    def status(self, name: str) -> FleetStatus:
        """The replicas of ``name`` against its pointer; NotFound if the model does not exist (one that
        exists but has no replicas is an empty fleet)."""
        aliases = self.client.pointer(name).aliases
        replicas = self.replicas(name)
        if not aliases and not replicas:
            self.client.require_model(name)
        return FleetStatus(name, aliases, replicas)

    def endpoints(self, name: str, alias: str | None = None, version: str | None = None) -> list[Endpoint]:
        """The servers of ``name`` that answer now (of ``alias`` / with ``version`` loaded), sorted by URL."""
        from mdl.names import validate_alias, validate_version

        if alias is not None:
            validate_alias(alias)
        if version is not None:
            validate_version(version)
        replicas = self.replicas(name)
        if not replicas:
            self.client.require_model(name)
        return serving(replicas, alias, version)

    def wait_for_rollout(
        self,
        name: str,
        version: str,
        *,
        alias: str = "latest",
        timeout: float = 300.0,
        min_ready: int | None = None,
        poll: float = 0.05,
        on_progress: Callable[[RolloutProgress], None] | None = None,
    ) -> list[ReplicaRecord]:
        """Block until every live replica following ``alias`` (or ``min_ready`` of them) reports
        ``version`` loaded and ready; return those. ``on_progress`` hears where it stands while it
        waits, first and after every change. Timeout (exit 5) names the laggards; a replica that
        failed to load ``version`` is RolloutFailed (exit 1); without ``min_ready``, no replica
        following ``alias`` (none registers within ``NO_FOLLOWER_GRACE`` seconds) is NotFound
        (exit 3): nothing would ever report the version ready, and waiting longer rarely helps."""
        start = time.monotonic()
        deadline = start + timeout
        last: RolloutProgress | None = None
        while True:
            following = [r for r in self.replicas(name) if r.follows(alias)]
            done = [r for r in following if r.ready_on(version)]
            failed = [r for r in following if r.failed_on(version)]
            needed = len(following) if min_ready is None else min_ready
            if failed:
                raise RolloutFailed(
                    f"{plural(len(failed), 'replica')} failed to load {name}/{version}: "
                    + "; ".join(f"{r.id}: {r.error}" for r in failed),
                    hint=f"roll back with: mdl rollback {name} --alias {alias}",
                    replicas=[r.to_replica() for r in failed],
                )
            if min_ready is None and not following:
                if time.monotonic() >= min(deadline, start + NO_FOLLOWER_GRACE):
                    raise NotFound(
                        f"no live replica follows {name}:{alias}, so none will report {version} ready",
                        hint=f"start one (mdl watch {name} -d DIR, or mdl serve {name}), "
                        "or pass --min-ready 0 to not wait for replicas",
                    )
            elif len(done) >= needed:
                return done
            now = RolloutProgress(len(done), needed, len(following))
            if on_progress is not None and now != last:
                on_progress(now)
            last = now
            if time.monotonic() >= deadline:
                laggards = [r for r in following if r not in done]
                names = ", ".join(f"{r.id} ({r.state}, loaded {r.loaded})" for r in laggards)
                raise Timeout(
                    f"{len(done)} of {plural(needed, 'replica')} ready on {name}/{version} after {timeout:g}s; "
                    f"waiting for: {names or 'replicas that have not registered'}",
                    hint=f"see the fleet with: mdl status {name}",
                )
            time.sleep(poll)
