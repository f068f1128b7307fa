"""The registry contract: per model a pointer document of aliases, moved by compare-and-set, with
an append-only history, a level-triggered watch, and live replica records.
"""

from __future__ import annotations

import re
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
# Steps of a staged rollout (``rollout-start``, ``rollout-step``, ``rollout-abort``...): an alias, from the
# stable to the candidate version; any ``rollout-<word>`` is one, so a later mdl may add some.
ROLLOUT_ACTION_PREFIX = "rollout-"
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


class Rollout(NamedTuple):
    """A model's staged rollout: ``doc`` as :func:`parse_rollout` returns it (None if it has none),
    kept beside the pointer and moved by compare-and-set like it."""

    name: str
    doc: dict[str, Any] | None
    revision: int = NO_REVISION


class Pointer(NamedTuple):
    """``aliases`` is the document any reader sees, e.g. ``{"latest": "20261127T171300Z"}``. ``rollout``:
    the model's rollout as read with it (watch deliveries, ``get_with_rollout``); None if not read."""

    name: str
    aliases: dict[str, str]
    revision: int = NO_REVISION
    rollout: Rollout | None = None


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
    if not all(isinstance(x, str) for x in (who, at, action)):
        return None
    rollout = is_rollout_action(action)
    if action not in ACTIONS and not rollout:
        return None
    try:
        if rollout:  # an alias (``from`` stable ``to`` candidate) and optionally a version and a rule
            if not isinstance(alias, str) or not (version is None or isinstance(version, str)):
                return None
            if rule is not None and (not isinstance(rule, str) or len(rule) > ROLLOUT_REASON_MAX):
                return None
            validate_alias(alias)
            for v in (frm, to, version):
                if v is not None:
                    validate_version(v)
            return HistoryEntry(seq, alias, frm, to, who, at, action, version, rule)
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


def is_rollout_action(action: Any) -> bool:
    """Whether ``action`` names a step of a staged rollout (``rollout-`` and a lowercase word)."""
    return isinstance(action, str) and _ROLLOUT_ACTION_RE.fullmatch(action) is not None


_ROLLOUT_ACTION_RE = re.compile(re.escape(ROLLOUT_ACTION_PREFIX) + r"[a-z][a-z-]{0,31}")


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


ROLLOUT_STATES = ("running", "paused", "aborted", "succeeded")
ROLLOUT_MAX_BYTES = 32 * 1024 * 1024  # a stored document larger than this is refused unread (100000 ids fit)
ROLLOUT_MAX_STEPS = 20
ROLLOUT_MAX_ASSIGNED = 100_000
ROLLOUT_MAX_OPTIONS = 64 * 1024  # bytes of the ``options`` object, serialised
ROLLOUT_MAX_DEPTH = 8  # nesting of ``options``
ROLLOUT_REASON_MAX = 2000  # characters of ``reason`` (and of a rollout history entry's ``rule``, its note)
ROLLOUT_STAMPS = ("by", "started", "updated", "step_started")
_ROLLOUT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BAD_REPLICA_ID_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff/]")


def parse_rollout(data: bytes | str | None, name: str, where: str, hint: str | None = None) -> dict[str, Any] | None:
    """The staged-rollout document of ``name`` as stored at ``where``, checked (see the schema in
    docs of the ``rollout`` commands): None for absent or empty data; anything that does not match is
    an IntegrityError (exit 8) naming the model and the place. The work is bounded: larger than
    ROLLOUT_MAX_BYTES is refused unread, nesting is checked without recursion. ``reason`` (absent: None)
    and ``options`` (absent: {}) are filled in; unknown keys are kept (a later mdl may add some)."""
    from mdl.errors import IntegrityError, InvalidInput
    from mdl.names import validate_alias, validate_version

    def bad(why: str) -> IntegrityError:
        return IntegrityError(
            f"the rollout document of {name!r} ({where}) {why}",
            hint=hint or "fix or delete it with the registry's own tools; mdl does not change a rollout it cannot read",
        )

    if data is None or (isinstance(data, (bytes, bytearray, str)) and not data.strip()):
        return None
    if not isinstance(data, (str, bytes, bytearray)):
        raise bad(f"is not a JSON document (a stored {type(data).__name__})")
    if len(data) > ROLLOUT_MAX_BYTES:
        raise bad(f"is larger than {ROLLOUT_MAX_BYTES} bytes")
    import json

    def no_constant(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    try:
        doc = json.loads(data, parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("is not valid JSON") from None
    if not isinstance(doc, dict):
        raise bad(f"is not a JSON object (a JSON {type(doc).__name__})")
    doc.setdefault("reason", None)
    doc.setdefault("options", {})

    def text(key: str, limit: int) -> str:
        value = doc.get(key)
        if not isinstance(value, str) or len(value) > limit:
            raise bad(f"has {key} {_short(value)}, not a string of at most {limit} characters")
        return value

    rollout_id = doc.get("id")
    if not isinstance(rollout_id, str) or not _ROLLOUT_ID_RE.fullmatch(rollout_id):
        raise bad(f"has an invalid id {_short(rollout_id)} (1-64 of A-Z a-z 0-9 _ -)")
    for key, check in (("alias", validate_alias), ("stable", validate_version), ("candidate", validate_version)):
        value = doc.get(key)
        try:
            if not isinstance(value, str):
                raise InvalidInput("not a string")
            check(value)
        except InvalidInput:
            raise bad(f"has an invalid {key} {_short(value)}") from None
    steps = doc.get("steps")
    if (
        not isinstance(steps, list)
        or not 1 <= len(steps) <= ROLLOUT_MAX_STEPS
        or not all(type(w) is int and 1 <= w <= 100 for w in steps)
        or any(a >= b for a, b in zip(steps, steps[1:], strict=False))
        or steps[-1] != 100
    ):
        raise bad(f"has steps {_short(steps)}, not 1-{ROLLOUT_MAX_STEPS} increasing whole percentages ending at 100")
    step = doc.get("step")
    if type(step) is not int or not 0 <= step < len(steps):
        raise bad(f"has step {_short(step)}, not an index into its {len(steps)} steps")
    if doc.get("state") not in ROLLOUT_STATES:
        raise bad(f"has state {_short(doc.get('state'))}, not one of {', '.join(ROLLOUT_STATES)}")
    assigned = doc.get("assigned")
    if not isinstance(assigned, list) or len(assigned) > ROLLOUT_MAX_ASSIGNED:
        raise bad(f"has assigned that are not a list of at most {ROLLOUT_MAX_ASSIGNED} replica ids")
    for rid in assigned:
        if (
            not isinstance(rid, str)
            or not 1 <= len(rid) <= 255
            or rid in (".", "..")
            or _BAD_REPLICA_ID_CHAR.search(rid)
        ):
            raise bad(f"assigns an invalid replica id {_short(rid)}")
    if len(set(assigned)) != len(assigned):
        raise bad("assigns a replica twice")
    reason = doc["reason"]
    if reason is not None and (not isinstance(reason, str) or len(reason) > ROLLOUT_REASON_MAX):
        raise bad(f"has reason {_short(reason)}, not null or a string of at most {ROLLOUT_REASON_MAX} characters")
    for key in ROLLOUT_STAMPS:
        text(key, 200)
    options = doc["options"]
    if not isinstance(options, dict):
        raise bad(f"has options {_short(options)}, not a JSON object")
    if _depth_over(options, ROLLOUT_MAX_DEPTH):
        raise bad(f"has options nested deeper than {ROLLOUT_MAX_DEPTH} levels")
    if len(json.dumps(options)) > ROLLOUT_MAX_OPTIONS:
        raise bad(f"has options larger than {ROLLOUT_MAX_OPTIONS} bytes")
    return doc


def rollout_to_write(
    name: str, doc: dict[str, Any], entry: dict[str, str | None] | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the document as it will read back, the history record of ``entry``) for ``set_rollout``, or
    InvalidInput: a bug must not store a document that every reader would refuse. The record moves
    ``doc``'s alias from its stable to its candidate version, so that ``mdl history`` reads well."""
    import json

    from mdl.errors import IntegrityError, InvalidInput
    from mdl.names import validate_version

    try:
        data = json.dumps(doc, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"the rollout document of {name!r} is not JSON: {exc}") from None
    try:
        checked = parse_rollout(data, name, "to be written")
    except IntegrityError as exc:
        raise InvalidInput(exc.message) from None
    if checked is None:
        raise InvalidInput(f"the rollout document of {name!r} is empty")
    if entry is None:
        return checked, None
    who, action, version, rule = entry.get("who"), entry.get("action"), entry.get("version"), entry.get("rule")
    if not isinstance(who, str) or not is_rollout_action(action):
        raise InvalidInput(f"a rollout history entry needs who and a rollout-<step> action, not {entry!r}")
    if version is not None:
        validate_version(version)
    if rule is not None and (not isinstance(rule, str) or len(rule) > ROLLOUT_REASON_MAX):
        raise InvalidInput(f"the rule (note) of a rollout history entry is not a short string: {_short(rule)}")
    record = {
        "alias": checked["alias"],
        "from": checked["stable"],
        "to": checked["candidate"],
        "who": who,
        "action": action,
        "version": version,
        "rule": rule,
    }
    return checked, record


def _depth_over(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests more than ``limit`` containers deep (without recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


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
    def rollout(self, name: str) -> Rollout:
        """The model's staged rollout (doc None, NO_REVISION if it has none); IntegrityError if the
        stored document does not match the schema (see :func:`parse_rollout`)."""

    @abstractmethod
    def set_rollout(
        self, name: str, doc: dict[str, Any], expected_revision: int, entry: dict[str, str | None] | None
    ) -> Rollout:
        """Replace (at NO_REVISION: create) the rollout document if it is still at ``expected_revision``;
        append ``entry`` (``who``, a ``rollout-...`` ``action``, ``version``, ``rule``) to the history as a
        move of ``doc``'s alias from its stable to its candidate, in the same atomic step. CasConflict
        otherwise; InvalidInput (nothing written) for a document :func:`parse_rollout` would refuse."""

    @abstractmethod
    def get_with_rollout(self, name: str) -> Pointer:
        """The current pointer with its ``rollout`` read together (one transaction, or pointer then rollout)."""

    @abstractmethod
    def list_models(self) -> list[str]: ...

    @abstractmethod
    def watch(self, name: str, callback: PointerCallback) -> Watch:
        """Call ``callback`` with the current pointer, its ``rollout`` read with it, at once and again
        after every change of either. Quick successive changes may be coalesced: callers reconcile with
        the latest value. An unreadable pointer delivers nothing; an unreadable rollout document
        delivers the pointer with the last good rollout (None if none was read yet), logged once."""

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
