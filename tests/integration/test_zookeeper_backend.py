"""The ZooKeeper registry against the real 3-server ensemble of ``mdl.devcluster``.

Every test works under its own chroot (``/mdl-test-<uuid>``), deleted afterwards. The fault tests
stop and restart ZooKeeper servers through the devcluster API and always restart them.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from kazoo.client import KazooClient

from mdl.config import load
from mdl.errors import CasConflict, PermissionDenied, Unavailable
from mdl.registry import open_registry
from mdl.registry.base import NO_REVISION
from mdl.registry.zookeeper import ZooKeeperRegistry

from ..helpers import ZK_HOSTS

pytestmark = pytest.mark.cluster

HOSTS = ZK_HOSTS
PORTS = tuple(int(h.rsplit(":", 1)[1]) for h in HOSTS.split(","))
ADMIN = ("mdl-admin", "s3cret")


@pytest.fixture(autouse=True)
def _zk(request):
    request.getfixturevalue("cluster")


@pytest.fixture
def plain():
    """A plain kazoo client (no mdl code) that can also delete protected test nodes."""
    k = KazooClient(HOSTS, auth_data=[("digest", ":".join(ADMIN))])
    k.start(10)
    yield k
    k.stop()
    k.close()


@pytest.fixture
def chroot(plain):
    path = f"/mdl-test-{uuid.uuid4().hex[:10]}"
    yield path
    for _ in range(3):
        try:
            plain.delete(path, recursive=True)
            break
        except Exception:  # an ephemeral may come and go during the delete
            time.sleep(0.5)


@pytest.fixture
def make_reg(chroot):
    made: list[ZooKeeperRegistry] = []

    def make(timeout: float = 3.0, hosts: str = HOSTS, **kw) -> ZooKeeperRegistry:
        made.append(ZooKeeperRegistry(f"zk://{hosts}{chroot}", timeout=timeout, **kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


class Seen:
    """Collects watch callbacks."""

    def __init__(self) -> None:
        self.items: list[tuple[float, dict, int]] = []
        self.cond = threading.Condition()

    def __call__(self, p) -> None:
        with self.cond:
            self.items.append((time.monotonic(), dict(p.aliases), p.revision))
            self.cond.notify_all()

    def wait_for(self, pred, timeout: float):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.items:
                    if pred(item[1]):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


def expire_session(reg: ZooKeeperRegistry) -> int:
    """Expire ``reg``'s session for real: a second client with the same id connects and closes it.
    (``reg`` may reconnect first and take its session back, dropping the second client before its
    close arrives: then try again.) Returns the expired session id."""
    sid, pw = reg.session.client().client_id
    for _ in range(5):
        other = KazooClient(HOSTS, client_id=(sid, pw))
        other.start(10)
        other.stop()
        other.close()
        if wait_until(lambda: reg.session.session_id() not in (None, sid), 3):
            return sid
    raise AssertionError(f"session {sid:#x} did not expire")


def synced_get(plain: KazooClient, path: str):
    """A plain client's read that sees every acknowledged write (followers may lag without sync)."""
    plain.sync(path)
    return plain.get(path)


def wait_until(pred, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# -- pointer, compare-and-set, history -----------------------------------------------------------


def test_pointer_is_plain_json_any_kazoo_client_reads(make_reg, plain, chroot):
    reg = make_reg()
    assert reg.get("lr").revision == NO_REVISION and reg.list_models() == []
    reg.cas("lr", "latest", "20261127T171300Z", NO_REVISION, "me@host", "promote")
    data, stat = synced_get(plain, f"{chroot}/models/lr/pointer")
    assert data == b'{"latest": "20261127T171300Z"}'
    assert json.loads(data) == {"latest": "20261127T171300Z"} and stat.version == 0
    p = reg.cas("lr", "canary", "v2", 0, "me@host", "promote")
    assert p.revision == 1 == synced_get(plain, f"{chroot}/models/lr/pointer")[1].version
    assert make_reg().get("lr").aliases == {"canary": "v2", "latest": "20261127T171300Z"}
    plain.sync("/")
    children = sorted(plain.get_children(f"{chroot}/models/lr/history"))
    assert [c[:2] for c in children] == ["h-", "h-"]
    first = json.loads(synced_get(plain, f"{chroot}/models/lr/history/{children[0]}")[0])
    assert {k: first[k] for k in ("alias", "from", "to", "who", "action")} == {
        "alias": "latest", "from": None, "to": "20261127T171300Z", "who": "me@host", "action": "promote"}
    h = reg.history("lr")
    assert [(e.seq, e.alias, e.from_version, e.to_version) for e in h] == [
        (int(children[0][2:]), "latest", None, "20261127T171300Z"), (int(children[1][2:]), "canary", None, "v2")]
    assert reg.list_models() == ["lr"]
    reg.cas("lr", "canary", None, 1, "me@host", "rollback")  # removing an alias keeps the pointer
    assert synced_get(plain, f"{chroot}/models/lr/pointer")[0] == b'{"latest": "20261127T171300Z"}'


def test_open_registry_dispatches_zk_urls(chroot):
    reg = open_registry(load(env={"MDL_REGISTRY_URL": f"zk://{HOSTS}{chroot}", "MDL_REGISTRY_TIMEOUT": "3"}))
    try:
        assert isinstance(reg, ZooKeeperRegistry) and reg.timeout == 3 and reg.chroot == chroot
        assert reg.get("lr").aliases == {}
    finally:
        reg.close()


def test_cas_refuses_a_stale_revision(make_reg):
    a, b = make_reg(), make_reg()
    a.cas("lr", "latest", "v1", NO_REVISION, "a@h", "promote")
    with pytest.raises(CasConflict):
        b.cas("lr", "latest", "v9", NO_REVISION, "b@h", "promote")  # create raced: exists already
    b.cas("lr", "latest", "v2", 0, "b@h", "promote")
    with pytest.raises(CasConflict):
        a.cas("lr", "latest", "v3", 0, "a@h", "promote")
    assert a.get("lr").aliases == {"latest": "v2"}
    assert [e.to_version for e in a.history("lr")] == ["v1", "v2"]


def test_concurrent_moves_from_8_registries_are_atomic(make_reg):
    regs = [make_reg(timeout=5) for _ in range(8)]
    regs[0].cas("lr", "latest", "v0", NO_REVISION, "init@h", "promote")
    barrier = threading.Barrier(len(regs))

    def mover(i: int) -> int:
        reg, wins = regs[i], 0
        barrier.wait()
        for j in range(6):
            p = reg.get("lr")
            try:
                reg.cas("lr", "latest", f"t{i}-{j}", p.revision, f"t{i}@h", "promote")
                wins += 1
            except CasConflict:
                time.sleep(random.uniform(0, 0.01))
        return wins

    with ThreadPoolExecutor(len(regs)) as pool:
        wins = sum(pool.map(mover, range(len(regs))))
    history = regs[0].history("lr")
    assert wins >= 6 and len(history) == wins + 1  # one entry per successful move, no more
    p = regs[0].get("lr")
    assert p.revision == wins and p.aliases["latest"] == history[-1].to_version
    for prev, cur in zip(history, history[1:], strict=False):
        assert cur.from_version == prev.to_version  # a chain: no move lost, none applied twice


@pytest.mark.parametrize("applied", [True, False])
def test_a_move_whose_answer_was_lost_is_resolved_not_repeated(make_reg, monkeypatch, applied):
    from kazoo.exceptions import ConnectionLoss

    reg = make_reg()
    reg.cas("lr", "latest", "v1", NO_REVISION, "w@h", "promote")
    real = reg.session.call
    lost: list[bool] = []

    def flaky(start, deadline, what, **kw):
        if kw.get("idempotent") is False and not lost:  # the transaction: lose it or its answer once
            lost.append(True)
            if applied:
                real(start, deadline, what, **kw)
            raise ConnectionLoss()
        return real(start, deadline, what, **kw)

    monkeypatch.setattr(reg.session, "call", flaky)
    assert reg.cas("lr", "latest", "v2", 0, "w@h", "rollback").revision == 1
    assert lost and [e.to_version for e in make_reg().history("lr")] == ["v1", "v2"]  # exactly once
    assert make_reg().get("lr") == reg.get("lr") and reg.get("lr").aliases == {"latest": "v2"}


# -- watch -----------------------------------------------------------------------------------------


def test_watch_calls_back_at_once_and_within_200ms_of_each_change(make_reg):
    watcher, writer = make_reg(), make_reg()
    seen = Seen()
    start = time.monotonic()
    w = watcher.watch("lr", seen)  # no pointer yet: an empty one first
    try:
        assert seen.wait_for(lambda a: a == {}, 3) and seen.items[0][0] - start < 1.0
        rev = NO_REVISION
        for v in ("v1", "v2", "v3", "v4"):
            rev = writer.cas("lr", "latest", v, rev, "w@h", "promote").revision
            moved = time.monotonic()
            item = seen.wait_for(lambda a, v=v: a.get("latest") == v, 2)
            assert item is not None
            assert item[0] - moved < 0.2, f"callback {item[0] - moved:.3f} s after the move"
        assert [i[2] for i in seen.items] == sorted({i[2] for i in seen.items})  # no duplicates
    finally:
        w.stop()
    count = len(seen.items)
    writer.cas("lr", "latest", "v5", rev, "w@h", "promote")
    time.sleep(0.3)
    assert len(seen.items) == count  # a stopped watch delivers nothing


def test_watch_catches_up_after_its_session_expired(make_reg):
    watcher, writer = make_reg(timeout=1), make_reg()
    writer.cas("lr", "latest", "v1", NO_REVISION, "w@h", "promote")
    seen = Seen()
    w = watcher.watch("lr", seen)
    try:
        assert seen.wait_for(lambda a: a == {"latest": "v1"}, 3)
        old = expire_session(watcher)
        writer.cas("lr", "latest", "v2", 0, "w@h", "promote")  # while the watcher re-establishes
        assert seen.wait_for(lambda a: a == {"latest": "v2"}, 5)
        assert watcher.session.session_id() not in (None, old)  # a new session
        writer.cas("lr", "latest", "v3", 1, "w@h", "promote")  # and the watch is armed again
        assert seen.wait_for(lambda a: a == {"latest": "v3"}, 2)
    finally:
        w.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_kazoo_connection_loop_that_dies_is_replaced(make_reg, plain, chroot):
    """kazoo#641: an exception in kazoo's connection loop ends it for good (seen here when two
    clients fought over one session); the registry starts a new client and carries on."""
    reg, writer = make_reg(timeout=2), make_reg()
    writer.cas("lr", "latest", "v1", NO_REVISION, "w@h", "promote")
    seen = Seen()
    w = reg.watch("lr", seen)
    reg.register_replica("lr", "r1", {"state": "ready"})
    assert seen.wait_for(lambda a: a == {"latest": "v1"}, 3)
    dying = reg.session.client()

    def boom(*args, **kwargs):
        raise IndexError("pop from an empty deque")

    dying._connection._read_response = boom  # the next answer kills the loop
    assert reg.get("lr").aliases == {"latest": "v1"}  # retried on a new client
    assert reg.session.client() is not dying
    writer.cas("lr", "latest", "v2", 0, "w@h", "promote")
    assert seen.wait_for(lambda a: a == {"latest": "v2"}, 5)
    node = f"{chroot}/models/lr/replicas/r1"
    assert wait_until(lambda: (s := plain.exists(node)) is not None and s.ephemeralOwner == reg.session.session_id(),
                      10)
    w.stop()


# -- replicas --------------------------------------------------------------------------------------


def test_replica_is_ephemeral_and_recreated_after_a_lost_session(make_reg, plain, chroot):
    view = make_reg()
    a = make_reg(timeout=1)
    h = a.register_replica("lr", "host-a-1", {"state": "syncing"})
    assert [(r.id, r.data) for r in view.list_replicas("lr")] == [("host-a-1", {"state": "syncing"})]
    node = f"{chroot}/models/lr/replicas/host-a-1"
    plain.sync("/")
    assert plain.exists(node).ephemeralOwner == a.session.session_id()
    h.update(state="ready", loaded="v1")
    assert view.list_replicas("lr")[0].data == {"state": "ready", "loaded": "v1"}

    old = expire_session(a)  # the server deletes the node; the registry re-creates it on reconnect
    assert wait_until(lambda: (s := plain.exists(node)) is not None and s.ephemeralOwner not in (0, old), 10)
    assert plain.exists(node).ephemeralOwner == a.session.session_id()
    assert view.list_replicas("lr")[0].data == {"state": "ready", "loaded": "v1"}
    h.update(state="draining")
    assert view.list_replicas("lr")[0].data["state"] == "draining"

    h.close()
    assert view.list_replicas("lr") == []
    b = make_reg()
    b.register_replica("lr", "host-b-1", {"state": "ready"})
    b.close()  # closing the registry ends the session: its replicas vanish at once
    assert view.list_replicas("lr") == []


CHILD = """
import sys, time
from mdl.registry.zookeeper import ZooKeeperRegistry
reg = ZooKeeperRegistry(sys.argv[1], timeout=1)
reg.register_replica("lr", "child", {"state": "ready"})
print("registered", flush=True)
time.sleep(600)
"""


def test_replica_of_a_killed_process_vanishes_when_its_session_expires(make_reg, chroot):
    view = make_reg()
    child = subprocess.Popen([sys.executable, "-c", CHILD, f"zk://{HOSTS}{chroot}"], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"registered"
        assert [r.id for r in view.list_replicas("lr")] == ["child"]
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed = time.monotonic()
        assert wait_until(lambda: view.list_replicas("lr") == [], 8, step=0.1)
        assert time.monotonic() - killed < 8
    finally:
        child.kill()
        child.wait()


# -- access control ------------------------------------------------------------------------------


def test_acl_protects_the_pointer_but_lets_everyone_read(make_reg, plain, chroot, tmp_path, monkeypatch):
    digest = tmp_path / "zk.digest"
    digest.write_text(":".join(ADMIN) + "\n")
    env = {"MDL_REGISTRY_URL": f"zk://{HOSTS}{chroot}", "MDL_REGISTRY_TIMEOUT": "3"}
    owner = ZooKeeperRegistry.from_config(load(env={**env, "MDL_REGISTRY_DIGEST_FILE": str(digest)}))
    try:
        owner.cas("lr", "latest", "v1", NO_REVISION, "admin@h", "promote")
        plain.sync("/")
        acls, _ = plain.get_acls(f"{chroot}/models/lr/pointer")
        assert {(a.id.scheme, a.perms) for a in acls} == {("digest", 31), ("world", 1)}

        anon = make_reg()
        assert anon.get("lr").aliases == {"latest": "v1"} and [e.to_version for e in anon.history("lr")] == ["v1"]
        with pytest.raises(PermissionDenied, match="pointer of 'lr' is protected by a ZooKeeper ACL"):
            anon.cas("lr", "latest", "v2", 0, "anon@h", "promote")
        with pytest.raises(PermissionDenied):
            anon.cas("other", "latest", "v2", NO_REVISION, "anon@h", "promote")  # nor create models
        monkeypatch.setenv("MDL_REGISTRY_DIGEST", "mdl-admin:wrong")
        wrong = ZooKeeperRegistry.from_config(load(env=env))
        try:
            with pytest.raises(PermissionDenied, match="'mdl-admin' is not allowed"):
                wrong.cas("lr", "latest", "v2", 0, "x@h", "promote")
        finally:
            wrong.close()
        monkeypatch.setenv("MDL_REGISTRY_DIGEST", ":".join(ADMIN))  # the env var works as well
        by_env = ZooKeeperRegistry.from_config(load(env=env))
        try:
            assert by_env.cas("lr", "latest", "v2", 0, "admin@h", "promote").revision == 1
        finally:
            by_env.close()
        assert anon.get("lr").aliases == {"latest": "v2"} and len(owner.history("lr")) == 2
    finally:
        owner.close()


def test_creator_read_acl_hides_the_pointer(make_reg):
    owner = make_reg(credentials=ADMIN, read_acl="creator")
    owner.cas("lr", "latest", "v1", NO_REVISION, "admin@h", "promote")
    assert owner.get("lr").aliases == {"latest": "v1"}
    with pytest.raises(PermissionDenied):
        make_reg().get("lr")


# -- faults ----------------------------------------------------------------------------------------


def test_one_server_down_everything_works_and_a_cut_off_watcher_catches_up(make_reg, plain, chroot):
    from mdl import devcluster

    sid = 3
    reg = make_reg(timeout=5)
    lonely = make_reg(timeout=1, hosts=f"127.0.0.1:{PORTS[sid - 1]}")  # knows only the server we stop
    reg.cas("lr", "latest", "v1", NO_REVISION, "w@h", "promote")
    seen, seen_lonely = Seen(), Seen()
    w1, w2 = reg.watch("lr", seen), lonely.watch("lr", seen_lonely)
    handle = lonely.register_replica("lr", "lonely", {"state": "ready"})
    assert seen.wait_for(lambda a: a == {"latest": "v1"}, 3)
    assert seen_lonely.wait_for(lambda a: a == {"latest": "v1"}, 3)
    devcluster.stop_zk(sid)
    try:
        assert reg.get("lr").aliases == {"latest": "v1"}
        assert reg.cas("lr", "latest", "v2", 0, "w@h", "promote").revision == 1
        assert [e.to_version for e in reg.history("lr")] == ["v1", "v2"]
        assert seen.wait_for(lambda a: a == {"latest": "v2"}, 5)
        # the cut-off watcher serves what it has: nothing is delivered while it is disconnected,
        # and its session expires (its replica node vanishes)
        assert wait_until(lambda: reg.list_replicas("lr") == [], 10, step=0.1)
        assert seen_lonely.items[-1][1] == {"latest": "v1"}
    finally:
        devcluster.start_zk(sid)
    # reconnected with a new session: it catches up with the missed move and re-registers
    assert seen_lonely.wait_for(lambda a: a == {"latest": "v2"}, 10)
    assert wait_until(lambda: [r.id for r in reg.list_replicas("lr")] == ["lonely"], 5)
    handle.update(state="draining")
    assert reg.list_replicas("lr")[0].data == {"state": "draining"}
    reg.cas("lr", "latest", "v3", 1, "w@h", "promote")
    assert seen_lonely.wait_for(lambda a: a == {"latest": "v3"}, 3)
    w1.stop()
    w2.stop()


def test_all_servers_down_fails_within_the_timeout_then_recovers(make_reg, chroot):
    from mdl import devcluster

    timeout, margin = 2.0, 1.0
    reg = make_reg(timeout=timeout)
    reg.cas("lr", "latest", "v1", NO_REVISION, "w@h", "promote")
    seen = Seen()
    w = reg.watch("lr", seen)
    assert seen.wait_for(lambda a: a == {"latest": "v1"}, 3)
    closing = make_reg(timeout=timeout)
    closing.get("lr")
    devcluster.stop_zk_all()
    try:
        fresh = make_reg(timeout=timeout)
        calls = {
            "get": lambda: reg.get("lr"),
            "cas": lambda: reg.cas("lr", "latest", "v2", 0, "w@h", "promote"),
            "history": lambda: reg.history("lr"),
            "fresh get": lambda: fresh.get("lr"),
            "fresh cas": lambda: fresh.cas("lr", "latest", "v2", 0, "w@h", "promote"),
        }

        def timed(name):
            t = time.monotonic()
            with pytest.raises(Unavailable) as err:
                calls[name]()
            return name, time.monotonic() - t, err.value

        with ThreadPoolExecutor(len(calls)) as pool:
            for name, took, exc in pool.map(timed, calls):
                assert took < timeout + margin, f"{name} took {took:.2f} s"
                assert "127.0.0.1:12181" in exc.message and exc.exit_code == 6
        t = time.monotonic()
        closing.close()
        assert time.monotonic() - t < timeout + margin
        assert len(seen.items) == 1  # nothing delivered during the outage
    finally:
        devcluster.start_zk_all()
    assert reg.get("lr").aliases == {"latest": "v1"}  # the same registry object recovers
    reg.cas("lr", "latest", "v2", 0, "w@h", "promote")
    assert seen.wait_for(lambda a: a == {"latest": "v2"}, 5)
    w.stop()


# -- download slots --------------------------------------------------------------------------------


def test_a_held_download_slot_frees_when_its_session_ends(make_reg):
    """The cap itself is in the registry contract suite; this is ZooKeeper's own half: a holder that
    dies (its session ends) frees its slot at once."""
    regs = [make_reg(timeout=1) for _ in range(2)]
    holder = regs[0]
    ctx = holder.download_slot("lr", 1)
    ctx.__enter__()  # held, never released: the process "dies" below
    got = threading.Event()

    def waiter() -> None:
        with regs[1].download_slot("lr", 1):
            got.set()

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    assert not got.wait(0.5)
    holder.close()  # its session ends: the slot frees at once
    assert got.wait(5)
    t.join(5)
