"""Pins and deletions of versions (``mdl pin``/``unpin``/``rm``/``gc``) and the deletion protocol.

A delete never leaves a pointer naming a missing version (docs/safety.md, "How a version is
deleted"):

1. A tombstone for the version is recorded in the model's lifecycle document by compare-and-set,
   conditional on the pointer's revision: the check that no alias names the version (and that it is
   not pinned, in use or in a rollback window, unless forced) holds at that instant. A promote's own
   compare-and-set is conditional on the lifecycle document and it reads the version after that
   document, so it either sees the tombstone (or the version gone) and refuses, or the delete sees
   its move and refuses.
2. One rename hides the version directory (``<name>/.mdl-deleting/<version>.<token>``): readers see
   it vanish at once, never half-deleted; a pull in flight fails with exit 3 and leaves nothing.
3. The hidden directory is deleted (or, on HDFS with ``trash``, moved into the user's trash).
4. The tombstone is dropped.

A delete killed at any step is finished by the next ``finish`` (which ``gc`` runs first): tombstoned
versions are hidden and purged, hidden leftovers purged, tombstones dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from mdl.errors import CasConflict, Conflict, InvalidInput, NotFound
from mdl.host import now_iso
from mdl.names import validate_name, validate_version
from mdl.registry.base import Lifecycle, Pointer
from mdl.retry import Backoff

if TYPE_CHECKING:
    from mdl.client import Client
    from mdl.retention import Plan, Rules, VersionFacts

CAS_ATTEMPTS = 20
CAS_BACKOFF = Backoff(base=0.01, cap=0.5)
Entry = dict[str, str | None]


class Deleted(NamedTuple):
    """A version ``rm`` or ``gc`` deleted (``trash``: moved into the HDFS trash instead)."""

    name: str
    version: str
    bytes: int
    trash: bool

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def _update(
    client: Client, name: str, change: Callable[[Pointer, Lifecycle], tuple[Lifecycle, Entry | None, bool] | None]
) -> Lifecycle:
    """Compare-and-set the lifecycle document of ``name`` to what ``change(pointer, lifecycle)`` makes
    of it (None: nothing to do), with its history entry and, if it says so, conditional on the pointer
    read with it; re-read and decided again after each lost race."""
    registry = client.registry
    for attempt in range(CAS_ATTEMPTS):
        pointer, current = registry.get(name), registry.lifecycle(name)
        decided = change(pointer, current)
        if decided is None:
            return current
        new, entry, on_pointer = decided
        try:
            return registry.set_lifecycle(new, current.revision, pointer.revision if on_pointer else None, entry)
        except CasConflict:
            CAS_BACKOFF.sleep(attempt + 1)
    raise Conflict(
        f"gave up changing the lifecycle of {name} after {CAS_ATTEMPTS} concurrent updates", hint="try again"
    )


# -- pins ---------------------------------------------------------------------------------------


def pin(client: Client, name: str, version: str) -> bool:
    """Pin ``version``: ``rm`` and ``gc`` never delete it. False if it was pinned already."""
    validate_name(name)
    validate_version(version)
    who = client.identity
    changed = False

    def change(p: Pointer, lc: Lifecycle) -> tuple[Lifecycle, Entry, bool] | None:
        nonlocal changed
        if version in lc.pins:
            changed = False
            return None
        if version in lc.tombstones:
            raise NotFound(f"version {name}/{version} is being deleted", hint=f"see the versions with: mdl list {name}")
        client.manifest(name, version)  # only a version that exists (read after the document, as promote does)
        changed = True
        pins = {**lc.pins, version: {"who": who, "at": now_iso()}}
        return lc._replace(pins=pins), {"who": who, "action": "pin", "version": version}, False

    with client.operation(f"pin {name}/{version}"):
        _update(client, name, change)
    return changed


def unpin(client: Client, name: str, version: str) -> bool:
    """Unpin ``version``. False if it was not pinned."""
    validate_name(name)
    validate_version(version)
    who = client.identity
    changed = False

    def change(p: Pointer, lc: Lifecycle) -> tuple[Lifecycle, Entry, bool] | None:
        nonlocal changed
        changed = version in lc.pins
        if not changed:
            return None
        pins = {v: info for v, info in lc.pins.items() if v != version}
        return lc._replace(pins=pins), {"who": who, "action": "unpin", "version": version}, False

    with client.operation(f"unpin {name}/{version}"):
        _update(client, name, change)
        if not changed:
            client.manifest(name, version)  # an unknown version is exit 3, not a quiet no-op
    return changed


# -- what is known about each version ------------------------------------------------------------


def facts(client: Client, name: str, versions: list[str] | None = None, window: int = 3) -> list[VersionFacts]:
    """What retention rules and ``rm`` decide on, for every stored version of ``name`` (or ``versions``):
    created and size (from the manifests: one read per version, never per file), the aliases naming
    it, pinned, tombstoned, the aliases whose rollback window (the last ``window`` versions each
    pointed at before its current one) holds it, and the live replicas that have it loaded or are
    downloading it. A version whose manifest cannot be read gets an unreadable creation time."""
    return _facts(client, name, versions, window)[0]


def _facts(client: Client, name: str, versions: list[str] | None, window: int) -> tuple[list[VersionFacts], int]:
    """``facts`` and the pointer revision they hold for: the pointer is read before the history, so
    while the pointer stays at that revision no alias has moved since (a move appends its history
    entry in the same atomic step)."""
    from mdl.fleet import Fleet
    from mdl.retention import VersionFacts, rollback_windows

    validate_name(name)
    stored = client.stored_versions(name) if versions is None else versions
    manifests = {m.version: m for m in client.manifests(name, stored)}
    pointer, lc = client.pointer(name), client.registry.lifecycle(name)
    windows = rollback_windows(client.registry.history(name), pointer.aliases, window)
    replicas = Fleet(client).replicas(name)
    named = dict(pointer.aliases)  # what names a version: the aliases, and an active rollout's two versions
    named.update(_rollout_names(client, name))
    out = []
    for v in stored:
        m = manifests.get(v)
        out.append(
            VersionFacts(
                version=v,
                created=m.created if m is not None else "",
                bytes=m.bytes if m is not None else 0,
                aliases=tuple(sorted(a for a, target in named.items() if target == v)),
                pinned=v in lc.pins,
                window=windows.get(v, ()),
                in_use=tuple(sorted(r.id for r in replicas if v in (r.loaded, r.desired))),
                deleting=v in lc.tombstones,
            )
        )
    return out, pointer.revision


def _rollout_names(client: Client, name: str) -> dict[str, str]:
    """The versions an active staged rollout names, as pseudo-aliases (``rollout of latest``,
    ``rollout of latest (stable)``): kept like aliased versions. A rollout document that cannot be
    read protects nothing extra (its replicas keep the versions they hold, which ``in_use`` keeps)."""
    from mdl.errors import IntegrityError
    from mdl.rollout.state import RolloutState

    try:
        doc = client.rollout(name).doc
    except IntegrityError:
        return {}
    if doc is None:
        return {}
    state = RolloutState.from_doc(doc)
    if not state.active:
        return {}
    return {f"rollout of {state.alias}": state.candidate, f"rollout of {state.alias} (stable)": state.stable}


# -- deleting ------------------------------------------------------------------------------------


def _check_trash(client: Client, trash: bool) -> None:
    """``trash`` on a storage without one is refused before anything is touched (not after a tombstone)."""
    if trash and not client.storage.has_trash:
        raise InvalidInput(
            f"--trash is for HDFS: {client.config['storage.url']} has no trash", hint="delete without --trash"
        )


def rm(
    client: Client,
    name: str,
    versions: list[str],
    *,
    force: bool = False,
    trash: bool = False,
    window: int = 3,
    rule: str | None = None,
) -> list[Deleted]:
    """Delete ``versions`` of ``name`` by the protocol above. Refused (Conflict, exit 4, naming the
    reason) for an aliased or pinned version, and, unless ``force``, one a live replica has loaded or
    is downloading or that lies in an alias's rollback window. Every version is checked before any
    is deleted; an unknown one is NotFound (exit 3)."""
    from mdl.retention import rm_refusals

    validate_name(name)
    _check_trash(client, trash)
    wanted = list(dict.fromkeys(validate_version(v) for v in versions))
    with client.operation(f"rm {name}"):
        stored = set(client.stored_versions(name))
        tombstoned = client.registry.lifecycle(name).tombstones
        for v in wanted:
            if v not in stored and v not in tombstoned:
                client.manifest(name, v)  # says what is missing: the model, or the version
        found, seen = _facts(client, name, [v for v in wanted if v in stored], window)
        known = {f.version: f for f in found}
        for v in wanted:
            if v in known and (why := rm_refusals(known[v], force)):
                raise _refused(name, v, why, force)
        deleted = []
        for v in wanted:
            if v in known:
                deleted.append(_delete(client, name, known[v], seen, force, trash, window, rule))
            else:  # tombstoned and hidden already: a delete killed midway, finished here
                _purge(client, name, v, trash)
                deleted.append(Deleted(name, v, 0, trash))
        return deleted


def _refused(name: str, version: str, why: list[str], force: bool) -> Conflict:
    aliased = any(w.startswith("aliased") for w in why)
    pinned = "pinned" in why
    if aliased and pinned:
        hint = f"point its aliases at another version (mdl promote) and unpin it (mdl unpin {name} {version}) first"
    elif aliased:
        hint = f"point its aliases at another version first: mdl promote {name} OTHER_VERSION [--alias ALIAS]"
    elif pinned:
        hint = f"unpin it first: mdl unpin {name} {version}"
    else:
        hint = f"delete it anyway with: mdl rm {name} {version} --force"
    return Conflict(f"cannot delete {name}/{version}: {'; '.join(why)}", hint=hint)


def _delete(
    client: Client,
    name: str,
    known: VersionFacts,
    seen: int,
    force: bool,
    trash: bool,
    window: int,
    rule: str | None,
) -> Deleted:
    """Steps 1-4 for one version, whose ``known`` facts hold for pointer revision ``seen``."""
    from mdl.retention import rm_refusals

    who, version = client.identity, known.version

    def tombstone(p: Pointer, lc: Lifecycle) -> tuple[Lifecycle, Entry, bool] | None:
        nonlocal known, seen
        if version in lc.tombstones:
            return None  # already being deleted (by us before a lost connection, or a killed rm): finish it
        if p.revision != seen:  # an alias moved since the facts were read: read them again
            again, seen = _facts(client, name, [version], window)
            known = again[0]
        # decided on every attempt with the aliases and pins as read for this compare-and-set
        aliases = tuple(sorted(a for a, v in p.aliases.items() if v == version))
        f = dataclasses.replace(known, aliases=aliases, pinned=version in lc.pins)
        if why := rm_refusals(f, force):
            raise _refused(name, version, why, force)
        mark = {"who": who, "at": now_iso(), **({"rule": rule} if rule else {})}
        return (
            lc._replace(tombstones={**lc.tombstones, version: mark}),
            {"who": who, "action": "delete", "version": version, "rule": rule},
            True,
        )

    _update(client, name, tombstone)
    _purge(client, name, version, trash)
    return Deleted(name, version, known.bytes, trash)


def _purge(client: Client, name: str, version: str, trash: bool) -> None:
    """Steps 2-4: hide the version (if it is still there), purge what is hidden of it and its signatures,
    drop its tombstone."""
    from mdl.storage.base import hidden_version

    storage = client.storage
    storage.hide_version(name, version)
    for entry in storage.list_hidden(name):
        if hidden_version(entry) == version:  # "v1.<token>", never "v1.5.<token>"
            storage.purge_hidden(name, entry, trash=trash)
    storage.remove_signatures(name, version, trash=trash)  # kept outside the version: they go with it

    def drop(p: Pointer, lc: Lifecycle) -> tuple[Lifecycle, None, bool] | None:
        if version not in lc.tombstones:
            return None
        return lc._replace(tombstones={v: t for v, t in lc.tombstones.items() if v != version}), None, False

    _update(client, name, drop)


def finish(client: Client, name: str, *, trash: bool = False) -> list[str]:
    """Finish what deletes killed midway left of ``name``: every tombstoned version is hidden, purged
    and its tombstone dropped; hidden leftovers are purged. Returns the versions finished."""
    validate_name(name)
    _check_trash(client, trash)
    with client.operation(f"finish the deletions of {name}"):
        done = sorted(client.registry.lifecycle(name).tombstones)
        for version in done:
            _purge(client, name, version, trash)
        for entry in client.storage.list_hidden(name):
            client.storage.purge_hidden(name, entry, trash=trash)
    return done


# -- retention -----------------------------------------------------------------------------------


def plan(client: Client, name: str, rules: Rules, now: float | None = None) -> Plan:
    """What ``gc`` would delete of ``name`` under ``rules``, and why each survivor stays."""
    import time

    from mdl.retention import plan as make_plan

    with client.operation(f"plan the retention of {name}"):
        known = facts(client, name, window=rules.rollback_window)
    return make_plan(name, known, rules, time.time() if now is None else now)


class Skipped(NamedTuple):
    """A version a plan condemned that ``apply`` did not delete, and why (the world moved since)."""

    version: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def apply(client: Client, plan_: Plan, *, trash: bool = False) -> tuple[list[Deleted], list[Skipped]]:
    """Delete what ``plan_`` condemns, each through ``rm``'s checks without force: a version that
    became aliased, pinned, in use or part of a rollback window since the plan stays (skipped). The
    facts are read once for all of them (and again only when an alias moves meanwhile)."""
    from mdl.retention import rm_refusals

    name, window, rule = plan_.name, plan_.rules.rollback_window, plan_.rules.describe()
    _check_trash(client, trash)
    deleted: list[Deleted] = []
    skipped: list[Skipped] = []
    condemned = [d.version for d in plan_.delete]
    if not condemned:
        return deleted, skipped
    with client.operation(f"gc {name}"):
        stored = set(client.stored_versions(name))
        found, seen = _facts(client, name, [v for v in condemned if v in stored], window)
    for f in found:
        if why := rm_refusals(f, False):
            skipped.append(Skipped(f.version, f"cannot delete {name}/{f.version}: {'; '.join(why)}"))
            continue
        try:
            with client.operation(f"gc {name}"):
                deleted.append(_delete(client, name, f, seen, False, trash, window, rule))
        except (Conflict, NotFound) as exc:
            skipped.append(Skipped(f.version, exc.message))
    return deleted, skipped


class GcResult(NamedTuple):
    """What ``gc`` planned and (unless ``plan_only``) did: deletes finished from earlier runs, versions
    deleted or skipped, staging debris removed."""

    plan: Plan
    plan_only: bool
    finished: list[str]
    deleted: list[Deleted]
    skipped: list[Skipped]
    staging: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "plan_only": self.plan_only,
            "changed": bool(self.finished or self.deleted or self.staging),
            "finished": self.finished,
            "deleted": [d.to_dict() for d in self.deleted],
            "skipped": [s.to_dict() for s in self.skipped],
            "staging_removed": self.staging,
        }


def gc(client: Client, name: str, rules: Rules, *, plan_only: bool = True, trash: bool = False) -> GcResult:
    """Plan ``name``'s retention under ``rules``; unless ``plan_only``, first finish interrupted deletes,
    then delete what the plan condemns and the staging debris older than the grace window."""
    _check_trash(client, trash)
    if plan_only:
        return GcResult(plan(client, name, rules), True, [], [], [], [])
    finished = finish(client, name, trash=trash)
    made = plan(client, name, rules)
    deleted, skipped = apply(client, made, trash=trash)
    staging = [e.path for e in client.clean(name, older_than=rules.grace)]
    return GcResult(made, False, finished, deleted, skipped, staging)
