"""ZooKeeperRegistry: the registry contract on a ZooKeeper ensemble, built from the package's parts."""

from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from kazoo.exceptions import NodeExistsError

from mdl.errors import InvalidInput
from mdl.names import validate_name
from mdl.registry.base import (
    MANIFEST_COPY_MAX,
    HistoryEntry,
    Lifecycle,
    Notice,
    Pointer,
    PointerCallback,
    Registry,
    Replica,
    ReplicaHandle,
    ReplicasCallback,
    Rollout,
    Watch,
    parse_history_entry,
)
from mdl.registry.zookeeper.config import node_acl, parse_url, read_credentials
from mdl.registry.zookeeper.layout import ZkPaths, history_nodes, history_seq
from mdl.registry.zookeeper.lifecycle import read_lifecycle, write_lifecycle
from mdl.registry.zookeeper.pointer import move_pointer, read_pointer
from mdl.registry.zookeeper.replica_watch import ReplicaWatch
from mdl.registry.zookeeper.replicas import ReplicaKeeper
from mdl.registry.zookeeper.rollout import read_rollout, write_rollout
from mdl.registry.zookeeper.session import ZkSession
from mdl.registry.zookeeper.slots import DownloadSlots
from mdl.registry.zookeeper.watch import PointerWatch, Watches

if TYPE_CHECKING:
    from mdl.config import Config

log = logging.getLogger("mdl.registry.zookeeper")


class ZooKeeperRegistry(Registry):
    """``session`` (a :class:`ZkSession`) is the one request path its parts share; ``paths`` where its
    nodes are."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        credentials: tuple[str, str] | None = None,
        read_acl: str = "world",
        notice: Notice | None = None,
    ) -> None:
        """``notice``: hears "connecting to ..." when a request waits for the ensemble (see ZkSession)."""
        acl = node_acl(credentials, read_acl)
        self.url = url
        self.hosts, self.chroot = parse_url(url)
        self.timeout = float(timeout)
        self.paths = ZkPaths(self.chroot)
        self.session = ZkSession(url, self.hosts, self.paths, self.timeout, credentials, acl, notice)
        self._watches = Watches(self.session, PointerWatch)
        self._replicas = ReplicaKeeper(self.session)
        self._replica_watches = Watches(self.session, ReplicaWatch)
        self._slots = DownloadSlots(self.session, on_release_failed=self._replicas.add_orphan)

    @classmethod
    def from_config(cls, config: Config, notice: Notice | None = None) -> ZooKeeperRegistry:
        return cls(
            config["registry.url"],
            timeout=config["registry.timeout"],
            credentials=read_credentials(config),
            read_acl=config["registry.read_acl"],
            notice=notice,
        )

    def __repr__(self) -> str:
        return f"ZooKeeperRegistry({self.url!r})"

    # -- pointer and history -------------------------------------------------------------------

    def get(self, name: str) -> Pointer:
        validate_name(name)
        what = f"reading the pointer of {name!r}"
        with self.session.errors(what, denied=f"reading the pointer of {name!r} is not allowed by its ZooKeeper ACL"):
            return read_pointer(self.session, name, self.session.deadline(), what)[0]

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
        validate_name(name)
        what = f"moving {name}:{alias}"
        with self.session.errors(what, denied=f"the pointer of {name!r} is protected by a ZooKeeper ACL"):
            return move_pointer(
                self.session, name, alias, version, expected_revision, who, action, what, lifecycle_revision
            )

    def lifecycle(self, name: str) -> Lifecycle:
        validate_name(name)
        what = f"reading the pins and deletions of {name!r}"
        with self.session.errors(what, denied=f"reading the lifecycle of {name!r} is not allowed by its ZooKeeper ACL"):
            return read_lifecycle(self.session, name, self.session.deadline(), what)

    def set_lifecycle(
        self,
        lifecycle: Lifecycle,
        expected_revision: int,
        pointer_revision: int | None,
        entry: dict[str, str | None] | None,
    ) -> Lifecycle:
        name = validate_name(lifecycle.name)
        what = f"changing the pins and deletions of {name!r}"
        with self.session.errors(what, denied=f"the lifecycle of {name!r} is protected by a ZooKeeper ACL"):
            return write_lifecycle(self.session, lifecycle, expected_revision, pointer_revision, entry, what)

    def rollout(self, name: str) -> Rollout:
        validate_name(name)
        what = f"reading the rollout of {name!r}"
        with self.session.errors(what, denied=f"reading the rollout of {name!r} is not allowed by its ZooKeeper ACL"):
            return read_rollout(self.session, name, self.session.deadline(), what)

    def set_rollout(
        self, name: str, doc: dict[str, Any], expected_revision: int, entry: dict[str, str | None] | None
    ) -> Rollout:
        validate_name(name)
        what = f"changing the rollout of {name!r}"
        with self.session.errors(what, denied=f"the rollout of {name!r} is protected by a ZooKeeper ACL"):
            return write_rollout(self.session, name, doc, expected_revision, entry, what)

    def get_with_rollout(self, name: str) -> Pointer:
        """Two reads: the pointer (after a sync), then the rollout (the sync covers it)."""
        validate_name(name)
        what = f"reading the pointer and rollout of {name!r}"
        session = self.session
        with session.errors(what, denied=f"reading the pointer of {name!r} is not allowed by its ZooKeeper ACL"):
            deadline = session.deadline()
            pointer = read_pointer(session, name, deadline, what)[0]
            return pointer._replace(rollout=read_rollout(session, name, deadline, what, sync=False))

    def history(self, name: str) -> list[HistoryEntry]:
        validate_name(name)
        session = self.session
        what = f"reading the history of {name!r}"
        deadline = session.deadline()
        path = self.paths.history(name)
        with session.errors(what, denied=f"reading the history of {name!r} is not allowed by its ZooKeeper ACL"):
            children = (
                session.call(lambda c: c.get_children_async(path), deadline, what, missing_ok=True, sync=path) or []
            )
            nodes = history_nodes(children)
            got = session.get_many([f"{path}/{n}" for n in nodes], deadline, what, missing_ok=True)
        entries = []
        for node, item in zip(nodes, got, strict=True):
            if item is None:
                continue
            try:
                d = json.loads(item[0].decode("utf-8")) if item[0] else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                d = None
            entry = parse_history_entry(history_seq(node), d)
            if entry is None:
                log.warning("skipping unreadable history entry %s/%s", path, node)
            else:
                entries.append(entry)
        return entries

    # -- manifest copies and models ------------------------------------------------------------

    def put_manifest(self, name: str, version: str, data: bytes) -> None:
        validate_name(name)
        if len(data) > MANIFEST_COPY_MAX:
            return
        session = self.session
        what = f"keeping the manifest of {name}/{version}"
        path = f"{self.paths.manifests(name)}/{version}"
        deadline = session.deadline()
        with session.errors(what):
            session.ensure_path(self.paths.manifests(name), deadline, what)
            try:
                session.call(lambda c: c.create_async(path, data, acl=session.acl), deadline, what)
            except NodeExistsError:
                pass

    def get_manifest(self, name: str, version: str) -> bytes | None:
        validate_name(name)
        what = f"reading the manifest copy of {name}/{version}"
        path = f"{self.paths.manifests(name)}/{version}"
        with self.session.errors(what):
            got = self.session.call(lambda c: c.get_async(path), self.session.deadline(), what, missing_ok=True)
        return got[0] if got is not None else None

    def list_models(self) -> list[str]:
        session = self.session
        what = "listing the models"
        deadline = session.deadline()
        models_path = self.paths.models()
        with session.errors(what, denied="listing the models is not allowed by the ZooKeeper ACL"):
            models = (
                session.call(
                    lambda c: c.get_children_async(models_path), deadline, what, missing_ok=True, sync=models_path
                )
                or []
            )
            stats = session.exists_many([self.paths.pointer(m) for m in models], deadline, what)
        return sorted(m for m, s in zip(models, stats, strict=True) if s is not None and _valid_name(m))

    # -- watches, replicas, download slots -----------------------------------------------------

    def watch(self, name: str, callback: PointerCallback) -> Watch:
        validate_name(name)
        return self._watches.start(name, callback)

    def register_replica(self, name: str, replica_id: str, data: dict[str, Any]) -> ReplicaHandle:
        return self._replicas.register(name, replica_id, data)

    def list_replicas(self, name: str) -> list[Replica]:
        return self._replicas.list_replicas(name)

    def watch_replicas(self, name: str, callback: ReplicasCallback) -> Watch:
        validate_name(name)
        return self._replica_watches.start(name, callback)

    def _slot(self, name: str, limit: int, pool: str) -> AbstractContextManager[None]:
        return self._slots.hold(name, limit, pool)

    def close(self) -> None:
        """Stop watches and the session (its replica nodes vanish); never hangs on a dead ensemble."""
        if not self.session.mark_closed():
            return
        self._replicas.close()
        self._watches.stop_all()
        self._replica_watches.stop_all()
        self.session.stop_client()


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidInput:
        log.warning("skipping the model node of an invalid model name %r", name)
        return False
    return True
