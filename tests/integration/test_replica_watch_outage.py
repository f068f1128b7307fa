"""A replica watch through a ZooKeeper outage: nothing delivered while cut off, the current list after.

The outage is the watcher's alone: its client reaches the ensemble through a TCP proxy the test cuts,
while a writer keeps changing the replicas directly. (Stopping the shared dev ensemble, as
test_watch_faults does, would also cut off every other test using it meanwhile.)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from mdl.client import Client
from mdl.config import load
from mdl.registry.zookeeper import parse_url

from ..contract.test_replica_watch import Deliveries, ids_are
from ..helpers import until

pytestmark = pytest.mark.cluster


@pytest.fixture(params=["distributed"])
def backend(request, cluster):
    return request.param


class CuttableProxy:
    """A TCP proxy to ``target``; ``cut`` drops every connection and refuses new ones until ``restore``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.open = True
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                if not self.open:
                    raise OSError("cut")
                up = socket.create_connection(self.target, timeout=2)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            with self._lock:
                self._conns += [down, up]
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.open = False
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self._server.close()


@pytest.fixture
def proxied_client(backend_env) -> Iterator[tuple[Client, CuttableProxy]]:
    """A client whose registry is reached through a CuttableProxy (session timeout 2 s)."""
    hosts, chroot = parse_url(backend_env["MDL_REGISTRY_URL"])
    host, port = hosts.split(",")[0].rsplit(":", 1)
    proxy = CuttableProxy((host, int(port)))
    env = {**backend_env, "MDL_REGISTRY_URL": f"zk://127.0.0.1:{proxy.port}{chroot}", "MDL_REGISTRY_TIMEOUT": "2"}
    c = Client(load(env=env))
    yield c, proxy
    c.close()
    proxy.close()


@pytest.mark.parametrize("outage", [1.0, 5.0], ids=["within-session", "session-expires"])
def test_a_watch_delivers_nothing_while_cut_off_and_the_current_list_after(proxied_client, make_client, outage):
    watcher, proxy = proxied_client
    reg = make_client().registry
    a = reg.register_replica("rw-outage", "a", {"state": "ready"})
    got = Deliveries()
    w = watcher.watch_replicas("rw-outage", got)
    try:
        got.wait(ids_are("a"), 10, "the first delivery")
        assert w.live
        session = watcher.registry.session.session_id()
        proxy.cut()
        until(lambda: not w.live, 5, what="the watch to notice the outage")
        count = len(got.lists)
        reg.register_replica("rw-outage", "b", {"state": "ready"})  # changes made meanwhile
        a.close()
        late = Deliveries()
        w2 = watcher.watch_replicas("rw-outage-late", late)  # started while cut off
        time.sleep(outage)
        assert not w.live and not w2.live and late.lists == []
        stopped = time.monotonic()
        w2.stop()
        until(
            lambda: not [t for t in threading.enumerate() if t.name.endswith("-rw-outage-late")],
            2,
            what="a watch stopped while cut off to end",
        )
        assert time.monotonic() - stopped < 1.0
        assert not w.live
        assert len(got.lists) == count, got.lists  # nothing delivered while cut off
        proxy.restore()
        started = time.monotonic()
        got.wait(ids_are("b"), 15, "the list as it is after the outage")
        assert w.live
        recovered = time.monotonic() - started
        assert recovered < 10, recovered
        # the 2 s session outlives a 1 s outage (kazoo dropped its watches all the same) but not a 5 s one
        assert (watcher.registry.session.session_id() == session) == (outage < 2)
        start = time.monotonic()
        reg.register_replica("rw-outage", "c", {"state": "ready"})  # and after it
        got.wait(ids_are("b", "c"), 5, "a registration after the outage")
        assert time.monotonic() - start < 1.0
    finally:
        w.stop()


def test_an_endpoints_file_stays_through_an_outage_and_converges_after(proxied_client, make_client, tmp_path):
    """``mdl endpoints --watch``'s Follower cut off from ZooKeeper: the file is left alone (not emptied,
    not reloaded); once it is back, what changed meanwhile reaches the file, a removal only after the
    recovery window (replicas whose sessions expired need that long to register again)."""
    from mdl.discovery.follow import Follower, FollowOptions, renderer

    from ..contract.test_endpoints_follow import server_record, servers

    watcher, proxy = proxied_client
    reg = make_client().registry
    a = reg.register_replica("rw-file", "a", server_record(20001))
    b = reg.register_replica("rw-file", "b", server_record(20002))
    out = tmp_path / "backend.cfg"
    events: list[dict] = []
    follower = Follower(watcher, "rw-file", renderer("rw-file", "haproxy"),
                        FollowOptions(out, exec_cmd="true", recovery=2.0), events.append)
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    try:
        until(lambda: out.exists() and servers(out) == ["a", "b"], 10, what="a and b in the file")
        written = out.read_bytes(), out.stat().st_ino, follower.writes
        proxy.cut()
        until(lambda: any(e["event"] == "registry-unavailable" for e in events), 10, what="the outage said")
        b.close()
        c = reg.register_replica("rw-file", "c", server_record(20003))
        time.sleep(3.0)  # past the 2 s session
        assert (out.read_bytes(), out.stat().st_ino, follower.writes) == written
        proxy.restore()
        until(lambda: any(e["event"] == "registry-back" for e in events), 15, what="the registry back")
        seen: list[list[str]] = []
        until(lambda: seen.append(servers(out)) or seen[-1] == ["a", "c"], 15, 0.02, what="a and c in the file")
        assert all("a" in s for s in seen)  # never emptied on the way
        assert any(e["event"] == "held" and e["dropped"] == ["127.0.0.1:20002"] for e in events), events
        assert follower.reloads == follower.writes
        c.close()
    finally:
        follower.stop()
        thread.join(10)
        a.close()
