"""The library's front door: push, list, promote, rollback, history, pull and clean.

    from mdl.client import Client
    with Client.from_config() as c:
        result = c.push("lr", "out/model.pkl", promote=True)

Backends open lazily, so a command that needs only the registry never touches storage.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdl import publish
from mdl.config import Config, load
from mdl.errors import (
    CasConflict,
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from mdl.host import creator
from mdl.manifest import FORMATS, Manifest, scan_source
from mdl.names import DEFAULT_ALIAS, timestamp_version, unique_version, validate_alias, validate_name, validate_version
from mdl.registry import Registry, open_registry
from mdl.registry.base import (
    NO_REVISION,
    HistoryEntry,
    Notice,
    Pointer,
    RegistryUnavailable,
    Replica,
    ReplicaHandle,
    Rollout,
    Watch,
    is_rollout_action,
)
from mdl.results import ModelSummary, MoveResult, PullResult, PushResult, VersionInfo
from mdl.retry import Backoff
from mdl.storage import StagingEntry, Storage, open_storage

if TYPE_CHECKING:  # the transfer machinery loads only for commands that move bytes (start-up time)
    from contextlib import AbstractContextManager

    from mdl.blobcache import BlobCache
    from mdl.lifecycle import Deleted, GcResult
    from mdl.retention import Rules
    from mdl.signing import Signer
    from mdl.transfer import Progress
    from mdl.trust import Checked

CAS_ATTEMPTS = 50
CAS_BACKOFF = Backoff(base=0.01, cap=0.5)


def rollback_target(history: list[HistoryEntry], alias: str) -> str | None:
    """The value ``alias`` had before its last promotion (or removal) not yet undone (an undo stack)."""
    stack: list[str | None] = []
    for h in history:
        if h.alias != alias or is_rollout_action(h.action):  # a rollout's steps do not move the alias
            continue
        if h.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(h.from_version)
    return stack[-1] if stack else None


class Client:
    def __init__(
        self,
        config: Config | None = None,
        *,
        storage: Storage | None = None,
        registry: Registry | None = None,
        notice: Notice | None = None,
    ) -> None:
        """``notice``: hears notes for the person waiting, e.g. "connecting to ZooKeeper at ... …" once
        a request has waited about a second for the registry (the CLI prints them on stderr)."""
        self.config = config or load()
        self._storage = storage
        self._registry = registry
        self.notice = notice

    @classmethod
    def from_config(cls, **kwargs: Any) -> Client:
        return cls(load(**kwargs))

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = open_storage(self.config)
        return self._storage

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = open_registry(self.config, self.notice)
        return self._registry

    @functools.cached_property
    def identity(self) -> str:
        """Who pushes and moves are recorded as: where the registry authenticates (ZooKeeper digest
        credentials) its user, e.g. ``deploy (zookeeper digest)``; with ``storage.auth: kerberos`` the
        principal HDFS knows this client by; else the self-reported ``user@host``."""
        if str(self.config["registry.url"]).startswith("zk://"):
            from mdl.registry.zookeeper.config import read_credentials

            credentials = read_credentials(self.config)
            if credentials:
                return f"{credentials[0]} (zookeeper digest)"
        if self.config["storage.auth"] == "kerberos":
            from mdl.storage.kerberos import principal_of

            found = principal_of(self.config["storage.principal"], self.config["storage.keytab"])
            if found:
                return found
        return creator()

    def close(self) -> None:
        for b in (self._storage, self._registry):
            if b is not None:
                b.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def operation(self, text: str) -> Iterator[None]:
        """Name the user's operation ``text`` when the registry cannot be reached inside it:
        "promote lr/v2: registry unreachable: cannot connect to ..." rather than the internal step."""
        try:
            yield
        except RegistryUnavailable as exc:
            raise Unavailable(f"{text}: registry unreachable: {exc.reason}", hint=exc.hint) from None

    def require_model(self, name: str, versions: list[str] | None = None) -> None:
        """NotFound (exit 3) unless ``name`` has a version in storage or a pointer in the registry
        (``versions``: its stored versions, if already read)."""
        if versions is None:
            versions = self.storage.list_versions(validate_name(name))
        if not versions and self.registry.get(name).revision == NO_REVISION:
            raise NotFound(f"model {name!r} does not exist", hint="see the models with: mdl list")

    def _alias_not_set(self, name: str, alias: str, hint: str) -> NotFound:
        """The error for an alias ``name`` does not have (or for ``name`` itself, if it does not exist)."""
        self.require_model(name)
        return NotFound(f"alias {alias!r} of {name} is not set", hint=hint)

    # -- versions -------------------------------------------------------------------------------

    def manifest(self, name: str, version: str, *, from_registry: bool = False) -> Manifest:
        """The manifest of a complete version; NotFound if there is no such version.

        ``from_registry``: use the copy the registry keeps of a promoted version if there is one
        (one registry read instead of storage round trips; every file is still checked against it).
        """
        validate_name(name)
        validate_version(version)
        if from_registry:
            try:
                data = self.registry.get_manifest(name, version)
            except Unavailable:
                data = None  # storage has the original
            if data is not None:
                try:
                    return Manifest.from_json(
                        data, where=f"registry copy of the manifest of {name}/{version}", expect=(name, version)
                    )
                except IntegrityError:
                    pass  # a damaged copy: storage has the original
        try:
            return self.storage.read_manifest(name, version)
        except NotFound:
            versions = self.storage.list_versions(name)
            if version in versions:
                raise IntegrityError(
                    f"version {name}/{version} has no manifest", hint="it was not written by mdl push; push it again"
                ) from None
            if not versions:
                self.require_model(name, versions)
            raise NotFound(
                f"version {name}/{version} does not exist", hint=f"see the versions with: mdl list {name}"
            ) from None

    def push(
        self,
        name: str,
        source: str | Path,
        *,
        version: str | None = None,
        fmt: str | None = None,
        promote: bool = False,
        alias: str = DEFAULT_ALIAS,
        jobs: int | None = None,
        progress: Progress | None = None,
        sign: bool = False,
    ) -> PushResult:
        """Upload a file or directory as a new immutable version; with ``sign``, sign it with
        ``trust.signing_key`` once published (and before any promotion, so a fleet requiring
        signatures never sees the alias move to an unsigned version)."""
        from mdl.transfer import NoProgress

        validate_name(name)
        if version is not None:
            validate_version(version)
        validate_alias(alias)
        if fmt is not None and fmt not in FORMATS:
            raise InvalidInput(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
        with self.operation(f"push {name}"):
            if sign:  # a missing or unusable key fails before anything is uploaded
                from mdl.trust import signing_material

                signing_material(self.config)
            return self._push(name, source, version, fmt, promote, alias, jobs, progress or NoProgress(), sign)

    def _push(
        self,
        name: str,
        source: str | Path,
        version: str | None,
        fmt: str | None,
        promote: bool,
        alias: str,
        jobs: int | None,
        progress: Progress,
        sign: bool = False,
    ) -> PushResult:
        jobs = jobs or self.config["transfer.jobs"]
        kind, files = scan_source(Path(source))
        existing = self.storage.list_versions(name)
        same = publish.identical_version(self, name, version, existing, files, jobs, progress)
        if isinstance(same, Manifest):
            result = PushResult(
                name,
                same.version,
                same.digest,
                len(same.files),
                same.bytes,
                same.format,
                same.created,
                changed=False,
                uploaded=False,
            )
        else:
            target = version or unique_version(timestamp_version(), set(existing))
            manifest = publish.publish(
                self, name, target, kind, files, fmt, jobs, progress, hashed=same, auto_version=version is None
            )
            result = PushResult(
                name,
                manifest.version,
                manifest.digest,
                len(manifest.files),
                manifest.bytes,
                manifest.format,
                manifest.created,
                changed=True,
                uploaded=True,
            )
        if sign:
            from mdl.trust import describe

            signer, added = self.sign(name, result.version)
            result = result._replace(signature={**describe(signer), "added": added}, changed=result.changed or added)
        if promote:
            move = self.promote(name, result.version, alias=alias)
            result = result._replace(promoted=alias, changed=result.changed or move.changed)
        return result

    def manifests(self, name: str, versions: list[str]) -> list[Manifest]:
        """The manifests of ``versions`` in storage (read in parallel); a version without one is left out."""

        def read(v: str) -> Manifest | None:
            try:
                return self.storage.read_manifest(name, v)
            except (NotFound, IntegrityError):
                return None  # not an mdl version: skip it in listings

        if len(versions) <= 1:
            found = [read(v) for v in versions]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(8, len(versions))) as pool:
                found = list(pool.map(read, versions))
        return [m for m in found if m is not None]

    def list_models(self) -> list[ModelSummary]:
        with self.operation("list the models"):
            names = sorted(set(self.storage.list_models()) | set(self.registry.list_models()))
            return [ModelSummary(n, self.registry.get(n).aliases, len(self.storage.list_versions(n))) for n in names]

    def list_versions(self, name: str) -> list[VersionInfo]:
        """Versions newest first, with the aliases that point at each."""
        validate_name(name)
        versions = self.storage.list_versions(name)
        with self.operation(f"list {name}"):
            aliases = self.registry.get(name).aliases
        if not versions and not aliases:
            raise NotFound(f"model {name!r} does not exist", hint="see the models with: mdl list")
        by_version: dict[str, list[str]] = {}
        for a, v in sorted(aliases.items()):
            by_version.setdefault(v, []).append(a)
        infos = [
            VersionInfo(
                m.version,
                m.bytes,
                len(m.files),
                m.created,
                m.creator,
                m.format,
                m.digest,
                by_version.get(m.version, []),
            )
            for m in self.manifests(name, versions)
        ]
        return sorted(infos, key=lambda i: (i.created, i.version), reverse=True)

    # -- pointers -------------------------------------------------------------------------------

    def pointer(self, name: str, with_rollout: bool = False) -> Pointer:
        """The pointer; ``with_rollout``: with its ``rollout`` read together (see Registry.get_with_rollout)."""
        validate_name(name)
        return self.registry.get_with_rollout(name) if with_rollout else self.registry.get(name)

    def rollout(self, name: str) -> Rollout:
        """The model's staged rollout (doc None if it has none); IntegrityError if it cannot be read."""
        return self.registry.rollout(validate_name(name))

    def set_rollout(
        self, name: str, doc: dict[str, Any], expected_revision: int, entry: dict[str, str | None] | None
    ) -> Rollout:
        """Compare-and-set the rollout document with its history entry; see Registry.set_rollout."""
        return self.registry.set_rollout(validate_name(name), doc, expected_revision, entry)

    def watch_pointer(self, name: str, callback: Callable[[Pointer], None]) -> Watch:
        """Call ``callback`` (on the watch's own thread) with the pointer now and after every change;
        quick successive changes may be coalesced. ``stop()`` the result to end it."""
        return self.registry.watch(validate_name(name), callback)

    def watch_replicas(self, name: str, callback: Callable[[list[Replica]], None]) -> Watch:
        """Call ``callback`` (on the watch's own thread) with the live replicas of ``name``, sorted by id,
        now and after every change; see :meth:`Registry.watch_replicas`. ``stop()`` the result to end it."""
        return self.registry.watch_replicas(validate_name(name), callback)

    def resolve(self, name: str, version: str | None = None, alias: str | None = None) -> str:
        """An explicit version, or the version an alias (default ``latest``) points at."""
        validate_name(name)
        if version is not None:
            if alias is not None:
                raise InvalidInput("give a version or --alias, not both")
            return validate_version(version)
        alias = validate_alias(alias or DEFAULT_ALIAS)
        with self.operation(f"resolve {name}:{alias}"):
            target = self.registry.get(name).aliases.get(alias)
        if target is None:
            if not self.storage.list_versions(name) and not self.registry.get(name).aliases:
                raise NotFound(f"model {name!r} does not exist", hint="see the models with: mdl list")
            raise NotFound(
                f"model {name!r} has no alias {alias!r}",
                hint=f"promote a version first: mdl promote {name} VERSION --alias {alias}",
            )
        return target

    def promote(self, name: str, version: str, *, alias: str = DEFAULT_ALIAS, expect: str | None = None) -> MoveResult:
        """Point ``alias`` at a complete version (compare-and-set; retried on a lost race).

        With ``expect``, move only if the alias currently points there (exit 4 otherwise).
        """
        validate_alias(alias)

        def target(p: Pointer) -> str:
            # read on every attempt, after the lifecycle document (see _move): a pointer may only name
            # a complete version that exists at the moment of the compare-and-set
            self._keep_manifest(self.manifest(name, version))
            return version

        with self.operation(f"promote {name}/{version}"):
            self.manifest(name, version)  # a missing version is said before anything else is read
            return self._move(name, alias, target, "promote", expect)

    def _keep_manifest(self, m: Manifest) -> None:
        """Before a pointer names a version, the registry gets a copy of its manifest: the fleet
        that follows reads it there (see ``manifest(from_registry=True)``)."""
        try:
            self.registry.put_manifest(m.name, m.version, m.to_json())
        except PermissionDenied:
            pass  # the move itself reports the ACL

    def rollback(self, name: str, *, alias: str = DEFAULT_ALIAS) -> MoveResult:
        """Return ``alias`` to the value it had before its last promotion."""
        validate_name(name)
        validate_alias(alias)

        def target(p: Pointer) -> str:
            history = self.registry.history(name)
            to = rollback_target(history, alias)
            if to is None:
                if alias not in p.aliases and all(h.alias != alias for h in history):
                    raise self._alias_not_set(
                        name, alias, hint=f"point it at a version first: mdl promote {name} VERSION --alias {alias}"
                    )
                raise NotFound(
                    f"{name}:{alias} has no earlier version to roll back to",
                    hint=f"see the moves with: mdl history {name}",
                )
            self._keep_manifest(self.manifest(name, to))
            return to

        with self.operation(f"rollback {name}:{alias}"):
            return self._move(name, alias, target, "rollback", None)

    def remove_alias(self, name: str, alias: str, *, force: bool = False) -> MoveResult:
        """Remove ``alias`` from the pointer (compare-and-set, recorded in the history as ``remove``;
        ``rollback`` restores it). NotFound if it is not set; Conflict while live replicas follow it,
        unless ``force``."""
        validate_name(name)
        validate_alias(alias)

        def target(p: Pointer) -> None:
            if alias not in p.aliases:
                raise self._alias_not_set(name, alias, hint=f"see the aliases with: mdl list {name}")
            if not force:
                from mdl.fleet import Fleet

                following = [r.id for r in Fleet(self).replicas(name) if r.follows(alias)]
                if following:
                    n = len(following)
                    raise Conflict(
                        f"alias {alias!r} of {name} is followed by {n} live replica{'s' if n != 1 else ''}: "
                        + ", ".join(following),
                        hint=f"point it elsewhere (mdl promote {name} VERSION --alias {alias}), stop those "
                        f"replicas, or remove it anyway with: mdl alias rm {name} {alias} --force",
                    )
            return None

        with self.operation(f"remove alias {name}:{alias}"):
            return self._move(name, alias, target, "remove", None)

    def _move(
        self, name: str, alias: str, target: Callable[[Pointer], str | None], action: str, expect: str | None
    ) -> MoveResult:
        """Compare-and-set ``alias`` to ``target(pointer)``, re-reading the pointer after each lost race.

        A move to a version is also conditional on the model's lifecycle document: read before
        ``target`` checks that the version exists, unchanged at the compare-and-set, and not naming the
        version as being deleted. A delete records its tombstone by compare-and-set before it removes
        anything, so either the delete sees this move (and refuses) or this move sees the tombstone
        (or the version gone): no pointer ever names a missing version (docs/safety.md).
        """
        for attempt in range(CAS_ATTEMPTS):
            p = self.registry.get(name)
            lifecycle = self.registry.lifecycle(name) if action != "remove" else None
            current = p.aliases.get(alias)
            if expect is not None and current != expect:
                raise Conflict(
                    f"{name}:{alias} points at {current or 'nothing'}, not {expect}",
                    hint="re-read with: mdl list " + name,
                )
            to = target(p)
            if lifecycle is not None and to in lifecycle.tombstones:
                raise NotFound(f"version {name}/{to} is being deleted", hint=f"see the versions with: mdl list {name}")
            if current == to and action == "promote":
                return MoveResult(name, alias, current, to, changed=False, action=action)
            try:
                self.registry.cas(
                    name,
                    alias,
                    to,
                    p.revision,
                    self.identity,
                    action,
                    lifecycle_revision=None if lifecycle is None else lifecycle.revision,
                )
                return MoveResult(name, alias, current, to, changed=True, action=action)
            except CasConflict:  # another move landed first: re-read and decide again
                CAS_BACKOFF.sleep(attempt + 1)
        raise Conflict(f"gave up moving {name}:{alias} after {CAS_ATTEMPTS} concurrent updates", hint="try again")

    def history(self, name: str, alias: str | None = None) -> list[HistoryEntry]:
        """Every move of ``name``'s aliases (of ``alias`` only, if given), oldest first; NotFound for a
        model that does not exist or an alias that was never set."""
        validate_name(name)
        if alias is not None:
            validate_alias(alias)
        with self.operation(f"history {name}"):
            entries = self.registry.history(name)
            if not entries:
                self.require_model(name)
            found = [h for h in entries if alias is None or h.alias == alias]
            if alias is not None and not found and alias not in self.registry.get(name).aliases:
                raise NotFound(
                    f"alias {alias!r} of {name} was never set", hint=f"see the aliases with: mdl list {name}"
                )
        return found

    # -- the fleet ------------------------------------------------------------------------------

    def replicas(self, name: str) -> list[Replica]:
        return self.registry.list_replicas(validate_name(name))

    # -- following a model (mdl.watch) ----------------------------------------------------------

    def register_replica(self, name: str, replica_id: str, data: dict[str, Any]) -> ReplicaHandle:
        """Announce a replica of ``name`` (``mdl status`` and ``promote --wait`` read it); it lives until
        the handle is closed or this process's registry session ends."""
        return self.registry.register_replica(validate_name(name), replica_id, data)

    def download_slot(self, name: str, limit: int, pool: str = "download") -> AbstractContextManager[None]:
        """Hold one of ``limit`` slots of ``pool`` of ``name`` across the fleet (no cap if ``limit`` <= 0):
        ``download`` (downloads at once), ``unavailable`` (servers out of rotation at once)."""
        return self.registry.download_slot(validate_name(name), limit, pool)

    def stored_versions(self, name: str) -> list[str]:
        """The ids of the complete versions in storage (no manifest read)."""
        return self.storage.list_versions(validate_name(name))

    # -- local copies ---------------------------------------------------------------------------

    def pull(
        self,
        name: str,
        version: str | None = None,
        *,
        alias: str | None = None,
        dest: str | Path | None = None,
        jobs: int | None = None,
        progress: Progress | None = None,
        force: bool = False,
        require_signature: bool = False,
    ) -> PullResult:
        """A verified copy of a version in ``dest`` (default ``./<name>``); a no-op if already there.
        Under the signature policy (``require_signature`` or ``trust.require_signature``) a version
        without a valid signature is refused (IntegrityError) and nothing is left behind."""
        version = self.resolve(name, version, alias)
        manifest = self.manifest(name, version)
        target = Path(dest) if dest is not None else Path.cwd() / name
        from mdl.transfer import verify_local

        changed = not verify_local(target, manifest)
        if changed:
            self.download(
                manifest, target, jobs=jobs, progress=progress, force=force, require_signature=require_signature
            )
        elif self.signature_required(require_signature):
            self.verify(name, version, manifest=manifest)
        return PullResult(
            name, version, manifest.digest, str(target.absolute()), len(manifest.files), manifest.bytes, changed
        )

    def download(
        self,
        manifest: Manifest,
        dest: str | Path,
        *,
        jobs: int | None = None,
        progress: Progress | None = None,
        force: bool = False,
        cache: BlobCache | None = None,
        require_signature: bool = False,
    ) -> None:
        """Download the version ``manifest`` describes into ``dest``, verified, replacing what is there
        only on success (see ``mdl.transfer.download_version``); ``cache``: a host's shared file store.
        Under the signature policy (:meth:`signature_required`) the version's signatures are checked
        once its files are, before the copy is moved into place: refused, nothing is left behind."""
        from mdl.transfer import NoProgress, download_version

        def accept(m: Manifest) -> None:
            self.verify(m.name, m.version, manifest=m)

        required = self.signature_required(require_signature)
        if required:  # no trust anchor (a configuration error) is said before anything is downloaded
            from mdl.trust import anchors

            anchors(self.config)

        download_version(
            self.storage,
            manifest,
            Path(dest),
            jobs or self.config["transfer.jobs"],
            progress or NoProgress(),
            force=force,
            cache=cache,
            accept=accept if required else None,
        )

    # -- signatures (mdl.trust) -----------------------------------------------------------------

    def signature_required(self, flag: bool = False) -> bool:
        """Whether pull, watch and serve refuse unsigned versions: ``flag`` or ``trust.require_signature``."""
        from mdl.trust import required

        return required(self.config, flag)

    def sign(self, name: str, version: str) -> tuple[Signer, bool]:
        """Sign a stored version with ``trust.signing_key``; the signer and whether a signature was added."""
        from mdl.trust import sign_version

        validate_name(name)
        validate_version(version)
        return sign_version(self, name, version)

    def verify(self, name: str, version: str, *, manifest: Manifest | None = None) -> list[Signer]:
        """The trusted signers of a version (IntegrityError if none). ``manifest``: the one its files were
        checked against (default: storage's)."""
        from mdl.trust import verify_version

        return verify_version(self, name, version, manifest or self.manifest(name, version))

    def signatures(self, name: str, version: str) -> list[Checked]:
        """Every stored signature of a version with its verdict (``mdl verify``)."""
        from mdl.trust import check_version

        return check_version(self, name, version, self.manifest(name, version))

    # -- lifecycle (mdl.lifecycle: the deletion protocol) ----------------------------------------

    def pin(self, name: str, version: str) -> bool:
        """Pin ``version``: never deleted by ``rm`` or ``gc``. False if it was pinned already."""
        from mdl import lifecycle

        return lifecycle.pin(self, name, version)

    def unpin(self, name: str, version: str) -> bool:
        from mdl import lifecycle

        return lifecycle.unpin(self, name, version)

    def rm(self, name: str, versions: list[str], *, force: bool = False, trash: bool = False) -> list[Deleted]:
        """Delete versions (refused for aliased and pinned ones, and without ``force`` for ones in use or
        in a rollback window of ``retention.rollback_window`` versions)."""
        from mdl import lifecycle

        window = self.config["retention.rollback_window"]
        return lifecycle.rm(self, name, versions, force=force, trash=trash, window=window)

    def gc(self, name: str, *, rules: Rules | None = None, plan_only: bool = True, trash: bool = False) -> GcResult:
        """Apply retention rules (default: the config's for ``name``); only plan unless ``plan_only`` is False."""
        from mdl import lifecycle
        from mdl.retention import Rules

        rules = rules or Rules.for_model(self.config, name)
        return lifecycle.gc(self, name, rules, plan_only=plan_only, trash=trash)

    def clean(
        self, name: str | None = None, *, older_than: float = 3600.0, dry_run: bool = False
    ) -> list[StagingEntry]:
        """Remove staging debris of pushes that died, older than ``older_than`` seconds."""
        if name is not None:
            validate_name(name)
        stale = [e for e in self.storage.list_staging(name) if e.age_seconds >= older_than]
        if not dry_run:
            for e in stale:
                self.storage.remove_staging(e)
        return stale
