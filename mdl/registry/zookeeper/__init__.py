"""The distributed registry: pointers, history and replicas in a ZooKeeper ensemble (kazoo).

``registry.url`` is ``zk://h1:2181,h2:2181,h3:2181/chroot`` (port 2181 if left out; chroot ``/mdl``
if the URL has no path). Layout under the chroot::

    <chroot>/models/<name>/pointer               JSON alias -> version, e.g.
                                                 {"latest": "20261127T171300Z"}
                                                 (sorted keys, readable by any ZooKeeper client);
                                                 its znode version is Pointer.revision
                                                 (NO_REVISION = -1 while the node does not exist)
    <chroot>/models/<name>/history/h-0000000042  one persistent sequential node per move, JSON
                                                 {"alias", "from", "to", "who", "at", "action", "op"}
                                                 ("op" is a random id of the move); seq = 42
    <chroot>/models/<name>/lifecycle             JSON {"pins": {version: {who, at}}, "tombstones":
                                                 {version: {who, at[, rule]}}, "op"}: pinned versions
                                                 and versions being deleted (mdl.lifecycle); its znode
                                                 version is Lifecycle.revision
    <chroot>/models/<name>/rollout               JSON: the model's staged rollout (mdl.rollout: alias,
                                                 stable, candidate, steps, step, state, assigned, ...;
                                                 "op" as above); its znode version is Rollout.revision
    <chroot>/models/<name>/replicas/<id>         EPHEMERAL, the replica's JSON data
    <chroot>/models/<name>/slots/s-<holder>-0000000007
                                                 EPHEMERAL_SEQUENTIAL download-slot queue: a holder
                                                 owns a slot while fewer than ``limit`` nodes precede it

A model exists in the registry when its ``pointer`` node does (``list_models``).

Compare-and-set is one ZooKeeper multi-op transaction: ``setData(pointer, version=expected)`` (or
``create(pointer)`` when the expected revision is -1) plus ``create(history/h-, SEQUENTIAL)``.
A move to a version also carries ``check(lifecycle, version=seen)`` (or ``create(lifecycle)`` when
absent), and a change of the lifecycle document ``check(pointer, version=seen)``: a promote and a
delete of the same version cannot both succeed (mdl.lifecycle). Either all happen or none; a lost
race shows up as BadVersion / NodeExists in the results (kazoo's ``commit`` does not raise) and
becomes CasConflict. If the connection drops while the
transaction is in flight, the outcome is resolved after reconnecting (``sync`` + look for the
move's ``op`` id in the history) before it is re-sent; every attempt carries the same expected
version, so at most one can apply: a move is never recorded twice.

Reads are preceded by a ``sync`` (pipelined with them, one round trip): ZooKeeper followers may
lag, and without it a read in another process right after an acknowledged move could miss it.

Time limits: every call (including the lazy first connect) finishes within ``registry.timeout``
seconds or raises Unavailable (exit 6) naming the hosts; ``registry.timeout`` is also the
session timeout asked for (ZooKeeper clamps it to 2..20 ticks). The kazoo client keeps
reconnecting in the background (bounded backoff), so long-running watchers and replicas recover
by themselves; requests are only sent while connected and each waits at most until its deadline.

Watches are level-triggered: a one-shot ZooKeeper watch (``getData``/``exists`` with a watcher,
re-armed on every read, the same mechanism as kazoo's DataWatch) and the connection listener only
put a token on the watch's queue; the watch's own thread re-reads the pointer and calls back when
its (revision, mzxid) differs from the last delivered one (and once at start). After every
reconnect (SUSPENDED or LOST -> CONNECTED) the pointer is re-read, catching up with moves missed
while disconnected; while disconnected nothing is delivered (the caller keeps what it serves).
kazoo's callback and connection threads never block on our account. (kazoo's DataWatch recipe
itself is not used: its constructor reads synchronously, blocking the caller while disconnected,
and its re-reads retry without bound, up to 60 s apart, on kazoo's callback thread, which can
stall every other watch and ``close``.)

Replicas are ephemeral nodes: they vanish when ``close`` is called, the registry is closed, or the
session expires (process death). After a lost session a maintenance thread re-creates them (with
their latest data) on reconnect; registering an id held by another session takes it over.

Access control: with digest credentials (``registry.digest_file``, else env
``MDL_REGISTRY_DIGEST``, holding ``user:password``) the client authenticates with them and creates
every node with ``digest:user:<hash>`` ALL, plus ``world:anyone`` READ when ``registry.read_acl``
is ``world``. Others can then read but not move pointers (PermissionDenied), nor register replicas.

Replica watches (``watch_replicas``) keep a cache of a model's replica nodes: a children watch on
``replicas`` plus a data watch per node; an event re-reads only what changed, a reconnect everything.

Modules: ``config`` (URL, credentials, ACL), ``layout`` (node paths), ``session`` (:class:`ZkSession`:
the kazoo client, connection state, the one request path and its error mapping), ``pointer`` (read,
compare-and-set), ``watch`` (pointer watches), ``replicas`` (with the maintenance thread),
``replica_watch``, ``slots`` (download slots), ``registry`` (:class:`ZooKeeperRegistry`, which puts
them together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mdl.registry.zookeeper.config import DEFAULT_CHROOT, DEFAULT_PORT, DIGEST_ENV, parse_url, read_credentials
from mdl.registry.zookeeper.layout import HISTORY_PREFIX

if TYPE_CHECKING:
    from mdl.config import Config

__all__ = [
    "DEFAULT_CHROOT",
    "DEFAULT_PORT",
    "DIGEST_ENV",
    "HISTORY_PREFIX",
    "ZooKeeperRegistry",
    "parse_url",
    "read_credentials",
]

try:
    from mdl.registry.zookeeper.registry import ZooKeeperRegistry
except ModuleNotFoundError as exc:  # pragma: no cover - the "distributed" extra is not installed
    if exc.name != "kazoo" and not (exc.name or "").startswith("kazoo."):
        raise
    from mdl.errors import ConfigError

    class ZooKeeperRegistry:  # type: ignore[no-redef]
        """Stands in while kazoo is missing: opening a zk:// registry is a ConfigError."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ConfigError("a zk:// registry needs the kazoo package", hint="pip install 'mdl[distributed]'")

        @classmethod
        def from_config(cls, config: Config, notice: Any = None) -> Any:
            return cls(config["registry.url"], credentials=read_credentials(config))
