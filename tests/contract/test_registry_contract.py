"""The registry contract (pointer, compare-and-set, history, rollback, watch, replicas) on every backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mdl.errors import CasConflict, Conflict, NotFound
from mdl.manifest import Manifest
from mdl.registry.base import MANIFEST_COPY_MAX, NO_REVISION

from ..helpers import make_model, until


@pytest.fixture
def versions(client, tmp_path):
    """Three pushed versions v1, v2, v3 of model lr."""
    for i in (1, 2, 3):
        client.push("lr", make_model(tmp_path / str(i), f"model {i}".encode()), version=f"v{i}")
    return ["v1", "v2", "v3"]


def test_pointer_is_a_plain_alias_document(client, versions):
    assert client.pointer("lr").aliases == {} and client.pointer("lr").revision == NO_REVISION
    move = client.promote("lr", "v1")
    assert (move.previous, move.version, move.changed) == (None, "v1", True)
    client.promote("lr", "v2", alias="canary")
    assert client.pointer("lr").aliases == {"latest": "v1", "canary": "v2"}
    assert client.registry.list_models() == ["lr"]


def test_promote_to_current_version_is_a_no_op(client, versions):
    client.promote("lr", "v1")
    again = client.promote("lr", "v1")
    assert not again.changed
    assert len(client.history("lr")) == 1


def test_a_pointer_may_only_name_an_existing_version(client, versions):
    with pytest.raises(NotFound):
        client.promote("lr", "v404")
    with pytest.raises(NotFound):
        client.promote("nosuchmodel", "v1")
    assert client.pointer("lr").aliases == {}
    assert client.registry.history("lr") == []


def test_compare_and_set_refuses_a_stale_revision(client, versions):
    client.promote("lr", "v1")
    stale = client.pointer("lr").revision
    client.promote("lr", "v2")
    with pytest.raises(CasConflict):
        client.registry.cas("lr", "latest", "v3", stale, "t@h", "promote")
    assert client.pointer("lr").aliases == {"latest": "v2"}
    assert [h.to_version for h in client.history("lr")] == ["v1", "v2"]


def test_expect_guards_a_promotion(client, versions):
    client.promote("lr", "v1")
    with pytest.raises(Conflict):
        client.promote("lr", "v3", expect="v2")
    assert client.promote("lr", "v3", expect="v1").changed
    assert client.pointer("lr").aliases["latest"] == "v3"


def test_history_records_every_move(client, versions):
    client.promote("lr", "v1")
    client.promote("lr", "v2")
    client.promote("lr", "v3", alias="canary")
    client.rollback("lr")
    h = client.history("lr")
    assert [(e.alias, e.from_version, e.to_version, e.action) for e in h] == [
        ("latest", None, "v1", "promote"), ("latest", "v1", "v2", "promote"),
        ("canary", None, "v3", "promote"), ("latest", "v2", "v1", "rollback")]
    assert [e.seq for e in h] == sorted(e.seq for e in h) and len({e.seq for e in h}) == 4
    assert all("@" in e.who and e.at.endswith("Z") for e in h)
    assert [e.to_version for e in client.history("lr", alias="canary")] == ["v3"]


def test_rollback_undoes_promotions_one_by_one(client, versions):
    for v in versions:
        client.promote("lr", v)
    assert client.rollback("lr").version == "v2"
    assert client.rollback("lr").version == "v1"
    with pytest.raises(NotFound):
        client.rollback("lr")
    client.promote("lr", "v3")
    assert client.rollback("lr").version == "v1"
    assert client.pointer("lr").aliases == {"latest": "v1"}


def test_rollback_without_history_fails_and_changes_nothing(client, versions):
    with pytest.raises(NotFound):
        client.rollback("lr")
    client.promote("lr", "v1")
    with pytest.raises(NotFound):
        client.rollback("lr")
    assert client.pointer("lr").aliases == {"latest": "v1"}


def test_concurrent_promotes_lose_no_update(make_client, versions):
    targets = [versions[i % 3] for i in range(8)]
    clients = [make_client() for _ in targets]
    barrier = threading.Barrier(len(targets))

    def promote(i: int):
        barrier.wait()
        # alternate targets so that no move is a no-op against its predecessor
        return clients[i].promote("lr", f"v{(i % 2) + 1}" if i else "v3")

    with ThreadPoolExecutor(len(targets)) as pool:
        moves = list(pool.map(promote, range(len(targets))))
    history = make_client().history("lr")
    changed = [m for m in moves if m.changed]
    assert len(history) == len(changed)
    assert make_client().pointer("lr").aliases["latest"] == history[-1].to_version
    for prev, cur in zip(history, history[1:], strict=False):
        assert cur.from_version == prev.to_version  # a chain: no move was lost


def test_watch_delivers_current_pointer_then_every_change(make_client, versions):
    watcher, writer = make_client(), make_client()
    writer.promote("lr", "v1")
    seen: list[dict] = []
    changed = threading.Event()

    def on_change(p):
        seen.append(dict(p.aliases))
        changed.set()

    w = watcher.registry.watch("lr", on_change)
    try:
        assert changed.wait(5)
        assert seen[0] == {"latest": "v1"}
        for v in ("v2", "v3"):
            changed.clear()
            start = time.monotonic()
            writer.promote("lr", v)
            assert changed.wait(5)
            latency = time.monotonic() - start
            assert seen[-1]["latest"] == v
            assert latency < 1.0, latency
    finally:
        w.stop()
    count = len(seen)
    writer.promote("lr", "v1")
    time.sleep(0.5)
    assert len(seen) == count  # a stopped watch delivers nothing


def test_watch_on_a_model_without_pointer_starts_empty(make_client, versions):
    seen: list[dict] = []
    ev = threading.Event()

    def on_change(p) -> None:
        seen.append(dict(p.aliases))
        ev.set()

    w = make_client().registry.watch("lr", on_change)
    try:
        assert ev.wait(5) and seen[0] == {}
        ev.clear()
        make_client().promote("lr", "v2")
        assert ev.wait(5) and seen[-1] == {"latest": "v2"}
    finally:
        w.stop()


def test_replicas_register_update_and_deregister(make_client):
    reg = make_client().registry
    h = reg.register_replica("lr", "host-a-1", {"address": "http://127.0.0.1:1", "state": "syncing"})
    reg.register_replica("other", "host-b-1", {"state": "ready"})
    view = make_client().registry
    assert [(r.id, r.data["state"]) for r in view.list_replicas("lr")] == [("host-a-1", "syncing")]
    h.update(state="ready", loaded="v1")
    assert view.list_replicas("lr")[0].data == {"address": "http://127.0.0.1:1", "state": "ready", "loaded": "v1"}
    h.close()
    assert view.list_replicas("lr") == []
    assert [r.id for r in view.list_replicas("other")] == ["host-b-1"]


REPLICA_CHILD = """
import sys, time
from mdl.client import Client
c = Client()
c.registry.register_replica("lr", "child", {"state": "ready"})
print("registered", flush=True)
time.sleep(600)
"""


def test_a_replica_disappears_when_its_process_dies(backend_env, make_client):
    env = {**os.environ, **backend_env}
    child = subprocess.Popen([sys.executable, "-c", REPLICA_CHILD], env=env, stdout=subprocess.PIPE)
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == b"registered"
        view = make_client().registry
        assert [r.id for r in view.list_replicas("lr")] == ["child"]
        child.send_signal(signal.SIGKILL)
        child.wait()
        until(lambda: view.list_replicas("lr") == [], float(backend_env.get("MDL_REGISTRY_TIMEOUT", "10")) * 3 + 5,
              0.2, what="the dead process's replica to disappear")
    finally:
        child.kill()
        child.wait()


def test_download_slots_cap_a_fleet_and_free_when_released(make_client):
    """At most ``limit`` holders at once across independent clients (sessions); released slots are free
    again. (That a ZooKeeper holder's slots free when its session ends: tests/integration.)"""
    regs = [make_client().registry for _ in range(3)]
    active, peak, lock = [0], [0], threading.Lock()

    def work(i: int) -> None:
        with regs[i % 3].download_slot("lr", 2):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.15)
            with lock:
                active[0] -= 1

    with ThreadPoolExecutor(7) as pool:
        list(pool.map(work, range(7)))
    assert peak[0] == 2
    both = threading.Event()

    def take_both() -> None:
        with regs[0].download_slot("lr", 2), regs[1].download_slot("lr", 2):
            both.set()

    t = threading.Thread(target=take_both, daemon=True)  # (a daemon: the test fails, not hangs, if it blocks)
    t.start()
    assert both.wait(10), "a released slot is still taken"
    t.join(10)


def test_pointer_document_is_json_any_reader_understands(client, versions):
    client.promote("lr", "v2")
    assert json.loads(json.dumps(client.pointer("lr").aliases)) == {"latest": "v2"}


def test_promote_keeps_a_manifest_copy_the_fleet_reads(make_client, versions):
    admin, reader = make_client(), make_client()
    assert reader.registry.get_manifest("lr", "v2") is None
    admin.promote("lr", "v2")
    stored = admin.storage.read_manifest("lr", "v2")
    assert Manifest.from_json(reader.registry.get_manifest("lr", "v2")) == stored
    assert reader.manifest("lr", "v2", from_registry=True) == stored
    admin.promote("lr", "v3")
    admin.rollback("lr")  # back to v2: its copy is kept, not written twice
    assert Manifest.from_json(reader.registry.get_manifest("lr", "v2")) == stored


def test_a_copy_that_does_not_fit_or_does_not_match_falls_back_to_storage(make_client, versions):
    c = make_client()
    c.registry.put_manifest("lr", "v1", b"x" * (MANIFEST_COPY_MAX + 1))
    assert c.registry.get_manifest("lr", "v1") is None
    c.registry.put_manifest("lr", "v2", b"{not json")
    c.registry.put_manifest("lr", "v3", c.storage.read_manifest("lr", "v1").to_json())  # another version's
    assert c.manifest("lr", "v2", from_registry=True) == c.storage.read_manifest("lr", "v2")
    assert c.manifest("lr", "v3", from_registry=True) == c.storage.read_manifest("lr", "v3")
