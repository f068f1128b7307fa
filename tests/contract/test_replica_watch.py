"""The replica watch (``Client.watch_replicas``) on every backend: what is delivered, when, and what not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from mdl.registry.base import Replica

from ..helpers import until
from .backdoor import hostile_replicas


class Deliveries:
    """The lists a watch delivered, in order, each with its time."""

    def __init__(self) -> None:
        self.lists: list[list[Replica]] = []
        self.times: list[float] = []
        self._cond = threading.Condition()

    def __call__(self, replicas: list[Replica]) -> None:
        with self._cond:
            self.lists.append(replicas)
            self.times.append(time.monotonic())
            self._cond.notify_all()

    def ids(self, i: int = -1) -> list[str]:
        return [r.id for r in self.lists[i]]

    def wait(self, pred: Any, timeout: float, what: str) -> list[Replica]:
        """Wait until the latest list satisfies ``pred``; returns it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self.lists and pred(self.lists[-1])):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"gave up after {timeout:g}s waiting for {what}; got {self.lists!r}")
                self._cond.wait(left)
            return self.lists[-1]


def ids_are(*ids: str):
    return lambda replicas: [r.id for r in replicas] == list(ids)


def watcher_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "replicas" in t.name and t.name.endswith(f"-{name}")]


def test_first_delivery_at_once_also_for_a_model_that_appears_later(make_client):
    watcher, writer = make_client(), make_client()
    got = Deliveries()
    w = watcher.watch_replicas("rw-later", got)
    try:
        assert got.wait(lambda r: True, 5, "the first delivery") == []
        start = time.monotonic()
        h = writer.registry.register_replica("rw-later", "a", {"state": "ready"})
        got.wait(ids_are("a"), 5, "the first replica of a model that did not exist")
        assert time.monotonic() - start < 1.0
        assert got.lists == [[], [Replica("a", {"state": "ready"})]]
        h.close()
        got.wait(ids_are(), 5, "the replica to go")
    finally:
        w.stop()


def test_register_update_and_close_are_delivered_within_a_second(make_client):
    watcher, writer = make_client(), make_client()
    reg = writer.registry
    first = reg.register_replica("rw", "b", {"state": "syncing", "address": "http://127.0.0.1:2"})
    got = Deliveries()
    w = watcher.watch_replicas("rw", got)
    try:
        got.wait(ids_are("b"), 5, "the replica registered before the watch")
        # ids that look like the watch's own markers are replicas like any other
        for rid in ("full", "children", "a"):
            start = time.monotonic()
            reg.register_replica("rw", rid, {"state": "ready"})
            got.wait(lambda r, rid=rid: rid in [x.id for x in r], 5, f"replica {rid}")
            assert time.monotonic() - start < 1.0
        assert got.ids() == ["a", "b", "children", "full"]  # sorted by id
        start = time.monotonic()
        first.update(state="ready", loaded="v1")
        latest = got.wait(lambda r: r[1].data.get("loaded") == "v1", 5, "the updated record")
        assert time.monotonic() - start < 1.0
        assert latest[1] == Replica("b", {"state": "ready", "address": "http://127.0.0.1:2", "loaded": "v1"})
        assert latest == watcher.registry.list_replicas("rw")
        start = time.monotonic()
        first.close()
        got.wait(ids_are("a", "children", "full"), 5, "the closed replica to go")
        assert time.monotonic() - start < 1.0
        time.sleep(0.3)
        assert all(a != b for a, b in zip(got.lists, got.lists[1:], strict=False))  # no list twice in a row
    finally:
        w.stop()


REPLICA_CHILD = """
import time
from mdl.client import Client
c = Client()
c.registry.register_replica("rw-kill", "child", {"state": "ready"})
print("registered", flush=True)
time.sleep(600)
"""


def test_a_replica_whose_process_is_killed_disappears(backend_env, make_client):
    # the child's ZooKeeper session times out after 2 s (the dev ensemble's tickTime of 500 ms allows it)
    env = {**os.environ, **backend_env, "MDL_REGISTRY_TIMEOUT": "2"}
    child = subprocess.Popen([sys.executable, "-c", REPLICA_CHILD], env=env, stdout=subprocess.PIPE)
    assert child.stdout is not None
    got = Deliveries()
    w = make_client().watch_replicas("rw-kill", got)
    try:
        assert child.stdout.readline().strip() == b"registered"
        got.wait(ids_are("child"), 5, "the child's replica")
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed = time.monotonic()
        embedded = backend_env["MDL_REGISTRY_URL"].startswith("sqlite:")
        got.wait(ids_are(), 2.5 if embedded else 15, "the killed process's replica to go")
        took = time.monotonic() - killed
        assert took < (1.6 if embedded else 12), took
    finally:
        w.stop()
        child.kill()
        child.wait()


def test_a_burst_of_registrations_is_delivered_a_few_times_not_fifty(make_client):
    watcher, writer = make_client(), make_client()
    got = Deliveries()
    w = watcher.watch_replicas("rw-burst", got)
    try:
        got.wait(ids_are(), 5, "the first delivery")
        handles = [writer.registry.register_replica("rw-burst", f"r{i:02d}", {"state": "ready"}) for i in range(50)]
        got.wait(lambda r: len(r) == 50, 5, "all 50 replicas")
        time.sleep(0.5)
        assert got.ids() == [f"r{i:02d}" for i in range(50)]
        assert len(got.lists) - 1 <= 10, [len(x) for x in got.lists]
        for h in handles:
            h.close()
        got.wait(ids_are(), 5, "all 50 gone")
        assert len(got.lists) - 1 <= 20, [len(x) for x in got.lists]
    finally:
        w.stop()


def test_unreadable_records_are_skipped_and_the_watch_keeps_working(make_client):
    watcher, writer = make_client(), make_client()
    good = writer.registry.register_replica("rw-hostile", "good", {"state": "ready"})
    hostile = {
        "not-json": b"{not json",
        "not-an-object": b"[1, 2, 3]",
        "state-not-a-string": b'{"state": {"$gt": ""}}',
        "bad-utf8": b'\xff\xfe{"state": "ready"}',
        "deep": b"[" * 100_000 + b"]" * 100_000,
    }
    with hostile_replicas(writer.registry, "rw-hostile", hostile):
        got = Deliveries()
        w = watcher.watch_replicas("rw-hostile", got)
        try:
            got.wait(ids_are("good"), 5, "only the readable record")
            writer.registry.register_replica("rw-hostile", "later", {"state": "ready"})
            got.wait(ids_are("good", "later"), 5, "a record registered after the hostile ones")
            good.update(state="draining")
            got.wait(lambda r: r[0].data["state"] == "draining", 5, "an update after the hostile ones")
            assert w.live
        finally:
            w.stop()


def test_nothing_is_delivered_after_stop_and_the_thread_ends(make_client):
    watcher, writer = make_client(), make_client()
    got = Deliveries()
    w = watcher.watch_replicas("rw-stop", got)
    got.wait(ids_are(), 5, "the first delivery")
    assert w.live
    until(lambda: watcher_threads("rw-stop"), 2, what="the watch's thread")
    w.stop()
    assert not w.live
    count = len(got.lists)
    for i in range(3):
        writer.registry.register_replica("rw-stop", f"after-{i}", {"state": "ready"})
        time.sleep(0.3)
    assert len(got.lists) <= count + 1  # at most one that was in flight
    until(lambda: not watcher_threads("rw-stop"), 2, what="the watch's thread to end")


def test_a_callback_that_fails_or_keeps_the_list_does_not_stop_the_watch(make_client):
    watcher, writer = make_client(), make_client()
    got = Deliveries()

    def callback(replicas: list[Replica]) -> None:
        got(replicas)
        for r in replicas:
            r.data["mutated"] = True  # the list is the callback's own
        raise RuntimeError("a broken callback")

    w = watcher.watch_replicas("rw-cb", callback)
    try:
        got.wait(ids_are(), 5, "the first delivery")
        h = writer.registry.register_replica("rw-cb", "a", {"state": "ready"})
        got.wait(ids_are("a"), 5, "a delivery after a failed callback")
        h.update(state="ready")  # the same record: no new delivery
        h.update(state="draining")
        got.wait(lambda r: r[0].data["state"] == "draining", 5, "the change")
        assert [r[0].data["state"] for r in got.lists[1:]] == ["ready", "draining"]
    finally:
        w.stop()


def test_a_sqlite_row_of_an_impossible_process_is_dropped(tmp_path):
    """SQLite only: rows whose pid no process can have (hostile writers) count as dead, never crash the watch."""
    import sqlite3

    from mdl.host import hostname
    from mdl.registry.sqlite import SqliteRegistry

    reg = SqliteRegistry(f"sqlite://{tmp_path}/registry.db")
    try:
        with sqlite3.connect(reg.path, isolation_level=None) as c:
            for rid, pid in (("huge", 2**62), ("zero", 0), ("text", "12"), ("neg", -1), ("blob", b"\x01")):
                c.execute("INSERT INTO replicas VALUES ('rw', ?, '{}', ?, ?, '')", (rid, hostname(), pid))
        got = Deliveries()
        w = reg.watch_replicas("rw", got)
        try:
            assert got.wait(lambda r: True, 5, "the first delivery") == []
            assert w.live
            reg.register_replica("rw", "ok", {})
            got.wait(ids_are("ok"), 2, "a good replica")
        finally:
            w.stop()
    finally:
        reg.close()


def test_a_sqlite_registry_that_cannot_be_read_delivers_nothing_until_it_can(tmp_path, caplog):
    """SQLite only: the replicas table gone (a broken or foreign file): ``live`` False, nothing delivered,
    one warning; once it is back the current list is delivered."""
    import sqlite3

    from mdl.registry.sqlite import _SCHEMA, SqliteRegistry

    reg = SqliteRegistry(f"sqlite://{tmp_path}/registry.db")
    try:
        reg.register_replica("rw", "a", {})
        got = Deliveries()
        w = reg.watch_replicas("rw", got)
        try:
            got.wait(ids_are("a"), 5, "the first delivery")
            with sqlite3.connect(reg.path, isolation_level=None) as c:
                c.execute("DROP TABLE replicas")
            until(lambda: not w.live, 2, what="the watch to notice")
            time.sleep(1.5)  # past a forced re-list
            assert len(got.lists) == 1 and not w.live
            assert sum("no such table" in r.getMessage() for r in caplog.records) == 1
            with sqlite3.connect(reg.path, isolation_level=None) as c:
                c.executescript(_SCHEMA)
            reg.register_replica("rw", "b", {})
            got.wait(ids_are("b"), 2, "the list once the table is back")
            assert w.live
        finally:
            w.stop()
    finally:
        reg.close()
