"""The registry contract: per model a pointer document of aliases, moved by compare-and-set, with
an append-only history, a level-triggered watch, and live replica records.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

from mdl.errors import Unavailable

NO_REVISION = -1  # the revision of a model that has no pointer (or lifecycle document) yet
ALIAS_ACTIONS = ("promote", "rollback", "remove")  # moves of an alias; "remove" has no ``to`` version
LIFECYCLE_ACTIONS = ("pin", "unpin", "delete")  # changes of a version's lifecycle: no alias, a ``version``
ACTIONS = ALIAS_ACTIONS + LIFECYCLE_ACTIONS
Notice = Callable[[str], None]  # a note for the person waiting (e.g. "connecting to ..."), never an error


class RegistryUnavailable(Unavailable):
    """The registry could not be reached: ``message`` names the registry's internal step, ``reason``
    only why, so that the client can name the user's operation instead (``Client.operation``)."""

    def __init__(self, message: str, hint: str | None = None, *, reason: str) -> None:
        super().__init__(message, hint)
        self.reason = reason

    def adding(self, extra: str) -> RegistryUnavailable:
        """The same error with ``extra`` appended to its message and reason."""
        return RegistryUnavailable(self.message + extra, self.hint, reason=self.reason + extra)


# Records are NamedTuples, not dataclasses: immutable all the same, and each dataclass costs every
# command about a millisecond of start-up to generate its methods.


class Pointer(NamedTuple):
    """``aliases`` is the document any reader sees, e.g. ``{"latest": "20261127T171300Z"}``."""

    name: str
    aliases: dict[str, str]
    revision: int = NO_REVISION


class HistoryEntry(NamedTuple):
    """One change: an alias moved (``alias``, ``from_version`` -> ``to_version``) or, for pin, unpin
    and delete, a version's lifecycle (``alias`` None, ``version`` and, for a delete by ``gc``, ``rule``)."""

    seq: int
    alias: str | None
    from_version: str | None
    to_version: str | None
    who: str
    at: str
    action: str  # promote | rollback | remove | pin | unpin | delete
    version: str | None = None
    rule: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["from"] = d.pop("from_version")
        d["to"] = d.pop("to_version")
        return d


class Lifecycle(NamedTuple):
    """A model's pinned versions and the versions being deleted (tombstones), each mapped to who did it
    and when (a tombstone also to the ``rule`` of the gc that decided it, if any). Kept beside the
    pointer and moved by compare-and-set together with it: a promote fails if the document changed
    under it, a delete if the pointer did."""

    name: str
    pins: dict[str, dict[str, str]]
    tombstones: dict[str, dict[str, str]]
    revision: int = NO_REVISION

    def to_json(self) -> bytes:
        import json

        return json.dumps({"pins": self.pins, "tombstones": self.tombstones}, sort_keys=True).encode()


class Replica(NamedTuple):
    id: str
    data: dict[str, Any]


class Watch:
    """A running watch; ``stop`` ends it. Callbacks run on the watch's own thread."""

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def wait_stopped(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking at once when the watch is stopped; returns ``stopped``."""
        return self._stopped.wait(timeout)

    @property
    def live(self) -> bool:
        """True while every change will be delivered (for a remote registry: while connected)."""
        return not self.stopped


class ReplicaHandle(ABC):
    """A registered replica; it disappears when ``close`` is called or its process dies."""

    id: str

    @abstractmethod
    def update(self, **data: Any) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


def parse_pointer(data: bytes | str | None, name: str, where: str, hint: str | None = None) -> dict[str, str]:
    """The alias -> version document of ``name`` as stored at ``where``, checked: anyone with access
    to the registry can write it, and what it names becomes storage and local paths.

    Empty data is no aliases. Anything but a JSON object of valid alias names to valid version ids
    is an IntegrityError (exit 8) naming the model and where the document is.
    """
    from mdl.errors import IntegrityError, InvalidInput
    from mdl.names import validate_alias, validate_version

    def bad(why: str) -> IntegrityError:
        return IntegrityError(
            f"the pointer of {name!r} ({where}) {why}",
            hint=hint or "fix or delete it with the registry's own tools; mdl does not change a pointer it cannot read",
        )

    if (
        data is None
        or (isinstance(data, (bytes, bytearray)) and not data.strip())
        or (isinstance(data, str) and not data.strip())
    ):
        return {}
    if not isinstance(data, (str, bytes, bytearray)):
        raise bad(f"is not a JSON document (a stored {type(data).__name__})")
    import json

    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("is not valid JSON") from None
    if not isinstance(doc, dict):
        raise bad(f"is not a JSON object of alias -> version (a JSON {type(doc).__name__})")
    for alias, version in doc.items():
        try:
            validate_alias(alias)
        except InvalidInput:
            raise bad(f"holds an invalid alias {_short(alias)}") from None
        if not isinstance(version, str):
            raise bad(f"maps alias {alias!r} to {_short(version)}, not a version id")
        try:
            validate_version(version)
        except InvalidInput:
            raise bad(f"maps alias {alias!r} to an invalid version id {_short(version)}") from None
    return doc


def parse_history_entry(seq: Any, d: Any) -> HistoryEntry | None:
    """A history entry from its stored fields, or None if they are not what mdl writes (the caller
    skips it): for an alias move ``alias`` a valid alias and ``from``/``to`` valid version ids or null;
    for pin/unpin/delete no alias (null or empty) and ``version`` a valid version id; the rest strings."""
    from mdl.errors import InvalidInput
    from mdl.names import validate_alias, validate_version

    if not isinstance(d, dict) or not isinstance(seq, int) or isinstance(seq, bool):
        return None
    alias, frm, to = d.get("alias"), d.get("from"), d.get("to")
    who, at, action = d.get("who", ""), d.get("at", ""), d.get("action", "promote")
    version, rule = d.get("version"), d.get("rule")
    if not all(isinstance(x, str) for x in (who, at, action)) or action not in ACTIONS:
        return None
    try:
        if action in LIFECYCLE_ACTIONS:
            if alias not in (None, "") or not isinstance(version, str) or frm is not None or to is not None:
                return None
            validate_version(version)
            if rule is not None and (not isinstance(rule, str) or len(rule) > 200):
                return None
            return HistoryEntry(seq, None, None, None, who, at, action, version, rule)
        if not isinstance(alias, str):
            return None
        validate_alias(alias)
        for v in (frm, to):
            if v is not None:
                validate_version(v)
    except InvalidInput:
        return None
    return HistoryEntry(seq, alias, frm, to, who, at, action)


def parse_lifecycle(data: bytes | str | None, name: str, where: str, hint: str | None = None) -> tuple[dict, dict]:
    """(pins, tombstones) of ``name``'s lifecycle document as stored at ``where``, checked like the pointer:
    a JSON object whose ``pins`` and ``tombstones`` map valid version ids to objects of short strings.
    Empty data is neither; anything else is an IntegrityError (exit 8) naming the model and the place.
    Unknown top-level keys are ignored (a later mdl may add some)."""
    from mdl.errors import IntegrityError, InvalidInput
    from mdl.names import validate_version

    def bad(why: str) -> IntegrityError:
        return IntegrityError(
            f"the lifecycle document of {name!r} ({where}) {why}",
            hint=hint
            or "fix or delete it with the registry's own tools; mdl does not change a document it cannot read",
        )

    if data is None or (isinstance(data, (bytes, bytearray, str)) and not data.strip()):
        return {}, {}
    if not isinstance(data, (str, bytes, bytearray)):
        raise bad(f"is not a JSON document (a stored {type(data).__name__})")
    import json

    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("is not valid JSON") from None
    if not isinstance(doc, dict):
        raise bad(f"is not a JSON object (a JSON {type(doc).__name__})")
    found: list[dict[str, dict[str, str]]] = []
    for key in ("pins", "tombstones"):
        part = doc.get(key, {})
        if not isinstance(part, dict):
            raise bad(f"has {key} that are not a JSON object")
        for version, info in part.items():
            try:
                validate_version(version)
            except InvalidInput:
                raise bad(f"names an invalid version id {_short(version)} in {key}") from None
            if not isinstance(info, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and len(v) <= 200 for k, v in info.items()
            ):
                raise bad(f"describes {key[:-1]} {version!r} with {_short(info)}, not an object of strings")
        found.append(part)
    return found[0], found[1]


# Replica fields mdl reads (status, endpoints, promote --wait): each a string (or absent / null).
REPLICA_STRING_FIELDS = ("kind", "state", "loaded", "desired", "alias", "address", "host", "since", "error")


def parse_replica_data(data: bytes | str | None) -> dict[str, Any] | None:
    """A replica's record as stored, or None if it is not a JSON object with string keys whose
    known fields hold strings (the caller skips it)."""
    import json

    if isinstance(data, (bytes, bytearray)) and not data:
        return {}
    if not isinstance(data, (str, bytes, bytearray)):
        return None
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    if any(not (doc.get(k) is None or isinstance(doc[k], str)) for k in REPLICA_STRING_FIELDS):
        return None
    return doc


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


PointerCallback = Callable[[Pointer], None]
ReplicasCallback = Callable[[list[Replica]], None]
MANIFEST_COPY_MAX = 256 * 1024  # well under ZooKeeper's 1 MiB node limit


def deliver(callback: PointerCallback, pointer: Pointer) -> None:
    """Call a watch callback; its failure is logged and never stops the watch."""
    try:
        callback(pointer)
    except Exception:
        import logging  # only here: start-up of short commands never logs

        logging.getLogger("mdl.registry").exception("watch callback for %s failed", pointer.name)


def deliver_replicas(callback: ReplicasCallback, name: str, replicas: list[Replica]) -> None:
    """Call a replica watch's callback with a copy of ``replicas`` (the callback may keep or change
    it); its failure is logged and never stops the watch."""
    try:
        callback([Replica(r.id, dict(r.data)) for r in replicas])
    except Exception:
        import logging

        logging.getLogger("mdl.registry").exception("replica watch callback for %s failed", name)


class Registry(ABC):
    url: str

    @abstractmethod
    def get(self, name: str) -> Pointer:
        """The current pointer (empty aliases and NO_REVISION if the model has none)."""

    @abstractmethod
    def cas(
        self,
        name: str,
        alias: str,
        version: str | None,
        expected_revision: int,
        who: str,
        action: str,
        lifecycle_revision: int | None = None,
    ) -> Pointer:
        """Set (or with ``None`` remove) one alias if the pointer is still at ``expected_revision`` (and,
        unless ``lifecycle_revision`` is None, the lifecycle document at that revision); append the move
        to the history in the same atomic step. Raise CasConflict otherwise."""

    @abstractmethod
    def history(self, name: str) -> list[HistoryEntry]:
        """Every move of the model's aliases and change of its versions' lifecycle, oldest first."""

    @abstractmethod
    def lifecycle(self, name: str) -> Lifecycle:
        """The model's pins and tombstones (empty, NO_REVISION if it has no document yet)."""

    @abstractmethod
    def set_lifecycle(
        self,
        lifecycle: Lifecycle,
        expected_revision: int,
        pointer_revision: int | None,
        entry: dict[str, str | None] | None,
    ) -> Lifecycle:
        """Replace the lifecycle document if it is still at ``expected_revision`` and (unless
        ``pointer_revision`` is None) the pointer still at ``pointer_revision``; append ``entry``
        (``who``, ``action``, ``version``, ``rule``) to the history in the same atomic step. Raise
        CasConflict otherwise."""

    @abstractmethod
    def list_models(self) -> list[str]: ...

    @abstractmethod
    def watch(self, name: str, callback: PointerCallback) -> Watch:
        """Call ``callback`` with the current pointer at once and again after every change.
        Quick successive changes may be coalesced: callers reconcile with the latest value."""

    @abstractmethod
    def register_replica(self, name: str, replica_id: str, data: dict[str, Any]) -> ReplicaHandle: ...

    @abstractmethod
    def list_replicas(self, name: str) -> list[Replica]: ...

    @abstractmethod
    def watch_replicas(self, name: str, callback: ReplicasCallback) -> Watch:
        """Call ``callback`` with the live replicas of ``name`` (as ``list_replicas`` returns them, sorted
        by id) at once and again after every change: a replica registers, deregisters, dies (its
        session/process ends) or updates its record. Level-triggered: quick successive changes may be
        coalesced, callers use the latest list. Nothing is delivered while the registry cannot be read
        (``live`` is False then); after recovery the current list is delivered. An identical list is
        not delivered twice in a row."""

    def put_manifest(self, name: str, version: str, data: bytes) -> None:
        """Keep a copy of a version's manifest beside its pointer (idempotent: versions are immutable),
        so a fleet switching to that version reads it here rather than from storage. A cache: a
        backend may keep none, and a copy larger than MANIFEST_COPY_MAX is not kept."""

    def get_manifest(self, name: str, version: str) -> bytes | None:
        """The copy kept by ``put_manifest``, or None."""
        return None

    def download_slot(self, name: str, limit: int, pool: str = "download") -> AbstractContextManager[None]:
        """Hold one of ``limit`` slots of ``pool`` for a model across the fleet (no cap if ``limit`` <= 0):
        ``download`` (``watch --max-concurrent``), ``unavailable`` (``serve --max-unavailable``)."""
        if limit <= 0:
            return nullcontext()
        return self._slot(name, limit, pool)

    def _slot(self, name: str, limit: int, pool: str) -> AbstractContextManager[None]:
        raise NotImplementedError(f"{type(self).__name__} has no download slots")

    def close(self) -> None:
        """Release connections."""
