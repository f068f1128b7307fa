"""The watch engine in-process, on every backend: what it serves, and what it never does."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from mdl.client import Client
from mdl.config import load
from mdl.manifest import MANIFEST_NAME, FileEntry, Manifest, digest_of
from mdl.watch import Watcher, WatchOptions

from .. import helpers
from ..helpers import current, make_model, write_stored

until = functools.partial(helpers.until, timeout=20.0, interval=0.02)  # a watcher's loop, on a busy CI box


@pytest.fixture
def lr(client, tmp_path):
    for i in (1, 2, 3):
        client.push("lr", make_model(tmp_path / f"s{i}", f"model {i}".encode()), version=f"v{i}")
    client.promote("lr", "v1")
    return client


@pytest.fixture
def watchers():
    made: list[Watcher] = []
    yield made
    for w in made:
        w.stop()


def events_of(w_events, kind):
    return [e for e in w_events if e["event"] == kind]


def test_follows_the_alias_and_swaps_atomically(lr, make_client, tmp_path, watchers):
    events: list[dict] = []
    w = Watcher(make_client(), "lr", tmp_path / "dir", emit=events.append)
    watchers.append(w)
    w.start()
    until(lambda: current(tmp_path / "dir") == "v1" and w.state == "ready")
    lr.promote("lr", "v2")
    until(lambda: current(tmp_path / "dir") == "v2")
    assert (tmp_path / "dir" / "current" / "model.pkl").read_bytes() == b"model 2"
    assert [e["version"] for e in events_of(events, "swapped")] == ["v1", "v2"]
    assert events_of(events, "swapped")[1]["previous"] == "v1"
    until(lambda: lr.replicas("lr") and lr.replicas("lr")[0].data["loaded"] == "v2")
    r = lr.replicas("lr")[0].data
    assert (r["state"], r["desired"], r["alias"], r["kind"]) == ("ready", "v2", "latest", "watcher")
    assert r["digest"] == lr.manifest("lr", "v2").digest


def test_once_and_cold_start_reuse_a_verified_copy(lr, make_client, tmp_path):
    d = tmp_path / "dir"
    w = Watcher(make_client(), "lr", d)
    assert w.sync_once()
    w.stop()
    assert current(d) == "v1"
    events: list[dict] = []
    w2 = Watcher(make_client(), "lr", d, emit=events.append)
    assert w2.sync_once()
    w2.stop()
    assert events_of(events, "downloading") == []  # reused, not downloaded again


def test_a_tampered_local_copy_is_not_reused(lr, make_client, tmp_path):
    d = tmp_path / "dir"
    w = Watcher(make_client(), "lr", d)
    assert w.sync_once()
    w.stop()
    (d / "versions" / "v1" / "model.pkl").write_bytes(b"tampered")
    events: list[dict] = []
    w2 = Watcher(make_client(), "lr", d, emit=events.append)
    assert w2.sync_once()
    w2.stop()
    assert [e["version"] for e in events_of(events, "downloading")] == ["v1"]
    assert (d / "current" / "model.pkl").read_bytes() == b"model 1"


def test_a_local_copy_rewritten_with_its_manifest_is_not_reused(lr, make_client, tmp_path):
    """The copy passes its own (rewritten) manifest, but storage says the version is other bytes."""
    d = tmp_path / "dir"
    w = Watcher(make_client(), "lr", d)
    assert w.sync_once()
    w.stop()
    copy = d / "versions" / "v1"
    (copy / "model.pkl").write_bytes(b"tampered")
    forged = Manifest.from_json((copy / MANIFEST_NAME).read_bytes())
    files = [FileEntry("model.pkl", 8, hashlib.sha256(b"tampered").hexdigest())]
    forged = dataclasses.replace(forged, files=files, digest=digest_of(files))
    (copy / MANIFEST_NAME).write_bytes(forged.to_json())
    events: list[dict] = []
    w2 = Watcher(make_client(), "lr", d, emit=events.append)
    assert w2.sync_once()
    reported = lr.replicas("lr")[0].data["digest"]
    w2.stop()
    assert "storage say" in events_of(events, "discarded")[0]["reason"]
    assert [e["version"] for e in events_of(events, "downloading")] == ["v1"]
    assert (d / "current" / "model.pkl").read_bytes() == b"model 1"
    assert reported == lr.manifest("lr", "v1").digest  # the digest a replica reports is the one it verified


def test_a_failing_hook_keeps_the_old_version(lr, make_client, tmp_path, watchers):
    d = tmp_path / "dir"
    flag = tmp_path / "fail"
    opts = WatchOptions(exec_cmd=f'test ! -e {flag} || {{ echo "no $MDL_VERSION" >&2; exit 3; }}', retry_base=0.2)
    events: list[dict] = []
    w = Watcher(make_client(), "lr", d, opts, emit=events.append)
    watchers.append(w)
    w.start()
    until(lambda: current(d) == "v1" and w.state == "ready")
    flag.touch()
    lr.promote("lr", "v2")
    until(lambda: w.state == "failed")
    assert current(d) == "v1"
    assert "exited 3: no v2" in w.error
    until(lambda: lr.replicas("lr")[0].data["state"] == "failed")
    assert "exited 3" in lr.replicas("lr")[0].data["error"]
    flag.unlink()  # the retry with backoff succeeds once the hook does
    until(lambda: current(d) == "v2" and w.state == "ready")


def test_a_corrupt_stored_version_never_becomes_current(lr, make_client, tmp_path, watchers):
    d = tmp_path / "dir"
    w = Watcher(make_client(), "lr", d, WatchOptions(retry_base=0.2))
    watchers.append(w)
    w.start()
    until(lambda: current(d) == "v1" and w.state == "ready")
    write_stored(lr, "lr", "v2", "model.pkl", b"bad")
    lr.promote("lr", "v2")
    until(lambda: w.state == "failed")
    assert current(d) == "v1" and "does not match its manifest" in w.error
    assert not [p for p in (d / "versions").iterdir() if p.name.startswith(".")]


def test_keep_prunes_but_never_current_or_previous(lr, make_client, tmp_path, watchers):
    d = tmp_path / "dir"
    for i in (4, 5):
        lr.push("lr", make_model(tmp_path / f"s{i}", f"model {i}".encode()), version=f"v{i}")
    w = Watcher(make_client(), "lr", d, WatchOptions(keep=2))
    watchers.append(w)
    w.start()
    for v in ("v1", "v2", "v3", "v4", "v5"):
        lr.promote("lr", v)
        until(lambda: current(d) == v and w.state == "ready")
    until(lambda: sorted(p.name for p in (d / "versions").iterdir()) == ["v4", "v5"])
    assert os.readlink(d / "previous") == "versions/v4"


def test_registry_down_at_start_serves_the_local_copy(lr, make_client, tmp_path, backend_env):
    d = tmp_path / "dir"
    w = Watcher(make_client(), "lr", d)
    assert w.sync_once()
    w.stop()
    if backend_env["MDL_REGISTRY_URL"].startswith("sqlite"):
        broken = {"MDL_REGISTRY_URL": f"sqlite://{tmp_path}/file-not-dir/registry.db"}
        (tmp_path / "file-not-dir").write_text("x")
    else:
        broken = {"MDL_REGISTRY_URL": "zk://127.0.0.1:1/mdl", "MDL_REGISTRY_TIMEOUT": "1"}
    events: list[dict] = []
    c2 = Client(load(env={**backend_env, **broken}))
    w2 = Watcher(c2, "lr", d, WatchOptions(retry_base=0.2), emit=events.append)
    try:
        w2.start()
        until(lambda: events_of(events, "registry-unavailable"))
        assert w2.ready and current(d) == "v1"
        assert events_of(events, "resumed")[0]["version"] == "v1"
    finally:
        w2.stop()
        c2.close()  # no client left reconnecting to nothing for the rest of the session


def test_pinned_version_ignores_the_alias(lr, make_client, tmp_path):
    w = Watcher(make_client(), "lr", tmp_path / "dir", WatchOptions(version="v3"))
    assert w.sync_once()
    w.stop()
    assert current(tmp_path / "dir") == "v3"


def test_prefetch_downloads_before_promotion(lr, make_client, tmp_path, watchers):
    d = tmp_path / "dir"
    w = Watcher(make_client(), "lr", d, WatchOptions(prefetch=True, prefetch_interval=0.1))
    watchers.append(w)
    w.start()
    until(lambda: current(d) == "v1")
    lr.push("lr", make_model(tmp_path / "s9", b"model 9"), version="v9")
    until(lambda: (d / "versions" / "v9").is_dir())
    assert current(d) == "v1"
    events: list[dict] = []
    w.emit = events.append
    lr.promote("lr", "v9")
    until(lambda: current(d) == "v9")
    assert events_of(events, "downloading") == []


def test_only_a_slow_download_reports_syncing(lr, make_client, tmp_path, watchers):
    c = make_client()
    d = tmp_path / "dir"
    w = Watcher(c, "lr", d, WatchOptions(syncing_after=30))  # no timing luck: "quick" is certain
    watchers.append(w)
    w.start()
    until(lambda: current(d) == "v1" and w.state == "ready")
    until(lambda: [r.data["state"] for r in lr.replicas("lr")] == ["ready"])
    states: list[str] = []
    update = w.reporter._replica.update
    w.reporter._replica.update = lambda **data: (states.append(data["state"]), update(**data))[1]

    lr.promote("lr", "v2")  # a small model: no registry write until it is ready
    until(lambda: [(r.data["state"], r.data["loaded"]) for r in lr.replicas("lr")] == [("ready", "v2")])
    assert states == ["ready"]

    w.opts.syncing_after = 0.05
    gate = threading.Event()
    download = c.storage.download
    c.storage.download = lambda *a, **kw: (gate.wait(20), download(*a, **kw))[1]
    lr.promote("lr", "v3")
    until(lambda: [(r.data["state"], r.data["desired"], r.data["loaded"]) for r in lr.replicas("lr")]
          == [("syncing", "v3", "v2")])
    gate.set()
    until(lambda: [(r.data["state"], r.data["loaded"]) for r in lr.replicas("lr")] == [("ready", "v3")])
    assert states == ["ready", "syncing", "ready"]


def test_watchers_on_one_host_download_each_file_once(lr, make_client, tmp_path, watchers):
    downloads: list[str] = []
    clients = [make_client(), make_client()]
    for c in clients:  # count what each watcher asks the storage for
        real = c.storage.download
        c.storage.download = lambda *a, _real=real, **kw: downloads.append(a[1]) or _real(*a, **kw)
    dirs = [tmp_path / "a", tmp_path / "b"]
    for c, d in zip(clients, dirs):
        w = Watcher(c, "lr", d, WatchOptions(keep=1))
        watchers.append(w)
        w.start()
    until(lambda: all(current(d) == "v1" for d in dirs) and all(w.state == "ready" for w in watchers))
    for v in ("v2", "v3"):
        lr.promote("lr", v)
        until(lambda: all(current(d) == v for d in dirs))
    assert sorted(downloads) == ["v1", "v2", "v3"]  # once per host, not once per watcher
    for d in dirs:
        assert (d / "current" / "model.pkl").read_bytes() == b"model 3"
    store = Path(lr.config["cache.dir"])
    assert os.stat(store / lr.manifest("lr", "v3").files[0].sha256).st_nlink == 3  # the store + 2 watchers
    # keep=1: v1 is gone from both directories, so from the store too
    until(lambda: not (store / lr.manifest("lr", "v1").files[0].sha256).exists())


def test_without_the_shared_store_each_watcher_downloads(lr, backend_env, tmp_path, watchers):
    from mdl.config import load

    c = Client(load(env={**backend_env, "MDL_CACHE_DIR": "none"}))
    w = Watcher(c, "lr", tmp_path / "a")
    watchers.append(w)
    try:
        assert w.shared is None and w.sync_once() and current(tmp_path / "a") == "v1"
        assert os.stat(tmp_path / "a" / "current" / "model.pkl").st_nlink == 1
    finally:
        c.close()


def test_a_starting_watcher_sweeps_files_no_directory_links(lr, make_client, tmp_path):
    import shutil

    w = Watcher(make_client(), "lr", tmp_path / "a")
    assert w.sync_once()
    w.stop()
    blob = Path(lr.config["cache.dir"]) / lr.manifest("lr", "v1").files[0].sha256
    assert os.stat(blob).st_nlink == 2
    shutil.rmtree(tmp_path / "a")  # a replica's directory deleted wholesale
    w2 = Watcher(make_client(), "lr", tmp_path / "b", WatchOptions(version="v2"))
    assert w2.sync_once() and not blob.exists()
    w2.stop()


def test_a_broken_shared_store_is_done_without(lr, make_client, tmp_path):
    store = Path(lr.config["cache.dir"])
    (store / lr.manifest("lr", "v1").files[0].sha256).mkdir(parents=True)  # cannot be linked from
    w = Watcher(make_client(), "lr", tmp_path / "a")
    assert w.sync_once() and current(tmp_path / "a") == "v1"
    assert (tmp_path / "a" / "current" / "model.pkl").read_bytes() == b"model 1"
    w.stop()


def test_prefetch_never_fetches_back_what_retention_removed(lr, make_client, tmp_path, watchers):
    d = tmp_path / "dir"
    lr.promote("lr", "v3")  # v1 and v2 are older than what the watcher will hold
    w = Watcher(make_client(), "lr", d, WatchOptions(prefetch=True, prefetch_interval=0.1, keep=2))
    watchers.append(w)
    events: list[dict] = []
    w.emit = events.append
    w.start()
    until(lambda: current(d) == "v3")
    lr.push("lr", make_model(tmp_path / "s9", b"model 9"), version="v9")
    until(lambda: (d / "versions" / "v9").is_dir())
    time.sleep(0.5)  # a few more prefetch rounds
    assert [e["version"] for e in events_of(events, "prefetched")] == ["v9"]
    assert sorted(p.name for p in (d / "versions").iterdir()) == ["v3", "v9"]


def test_heartbeats_trust_a_live_subscription(lr, make_client, tmp_path, watchers):
    c = make_client()
    d = tmp_path / "dir"
    w = Watcher(c, "lr", d, WatchOptions(heartbeat=0.05))
    watchers.append(w)
    w.start()
    until(lambda: current(d) == "v1" and w.state == "ready")
    reads: list[str] = []
    get, get_with_rollout = c.registry.get, c.registry.get_with_rollout
    c.registry.get = lambda name: (reads.append(name), get(name))[1]
    c.registry.get_with_rollout = lambda name: (reads.append(name), get_with_rollout(name))[1]
    time.sleep(0.5)  # about 10 heartbeats
    assert reads == []  # every change is delivered: no pointer read per heartbeat
    lr.promote("lr", "v2")
    until(lambda: current(d) == "v2")
    reads.clear()  # (the embedded registry's watch delivers what it reads with get)
    w.resync()  # SIGHUP: read it again
    until(lambda: reads == ["lr"])
    time.sleep(0.3)
    assert reads == ["lr"]
    w.opts.resync = 0.1  # the safety net: a read at least this often
    w.resync()
    until(lambda: len(reads) >= 4)
    assert current(d) == "v2"


def test_reports_and_pruning_run_on_a_lower_priority_thread(lr, make_client, tmp_path, watchers):
    d = tmp_path / "dir"
    w = Watcher(make_client(), "lr", d, WatchOptions(keep=1))
    watchers.append(w)
    w.start()
    until(lambda: current(d) == "v1")
    for v in ("v2", "v3"):
        lr.promote("lr", v)
        until(lambda: current(d) == v)
    until(lambda: sorted(p.name for p in (d / "versions").iterdir()) == ["v2", "v3"])  # current + previous
    until(lambda: [(r.data["state"], r.data["loaded"]) for r in lr.replicas("lr")] == [("ready", "v3")])
    tid = w.reporter._chores_thread.native_id
    nice = int(Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    assert nice == os.getpriority(os.PRIO_PROCESS, 0) + 10


def test_a_permanent_failure_is_not_retried_until_the_pointer_moves(lr, make_client, tmp_path, watchers):
    """A corrupt stored version (IntegrityError) fails the same way every time: one attempt, one failed
    event, no download loop however short the backoff; promoting another version moves on."""
    d = tmp_path / "dir"
    events: list[dict] = []
    opts = WatchOptions(retry_base=0.01, retry_max=0.02, heartbeat=0.05)
    w = Watcher(make_client(), "lr", d, opts, emit=events.append)
    watchers.append(w)
    w.start()
    until(lambda: current(d) == "v1" and w.state == "ready")
    write_stored(lr, "lr", "v2", "model.pkl", b"bad")
    lr.promote("lr", "v2")
    until(lambda: w.state == "failed")
    time.sleep(1.0)  # dozens of heartbeats and retry periods
    failed = events_of(events, "failed")
    assert [(e["version"], e["permanent"], e["retry"]) for e in failed] == [
        ("v2", True, "when the pointer moves, or on SIGHUP")
    ]
    assert failed[0]["serving"] == "v1" and failed[0]["hint"]
    assert [e["version"] for e in events_of(events, "downloading")] == ["v1", "v2"]
    w.resync()  # SIGHUP: one more attempt, no more
    until(lambda: len(events_of(events, "failed")) == 2)
    time.sleep(0.5)
    assert len(events_of(events, "failed")) == 2
    lr.promote("lr", "v3")
    until(lambda: current(d) == "v3" and w.state == "ready")
    assert w.problem is None and w.readiness()["hint"] is None


def test_a_transient_failure_is_retried_with_backoff(lr, make_client, tmp_path, watchers):
    """A failing hook may work next time: retried (with the engine's backoff), each failure said."""
    d = tmp_path / "dir"
    flag = tmp_path / "fail"
    flag.touch()
    events: list[dict] = []
    opts = WatchOptions(exec_cmd=f"test ! -e {flag}", retry_base=0.05, retry_max=0.1)
    w = Watcher(make_client(), "lr", d, opts, emit=events.append)
    watchers.append(w)
    w.start()
    until(lambda: len(events_of(events, "failed")) >= 3)
    failed = events_of(events, "failed")
    assert all(e["permanent"] is False and e["retry"].startswith("in ") for e in failed)
    assert failed[0]["hint"] == "it is retried with backoff (SIGHUP: now)"
    flag.unlink()
    until(lambda: current(d) == "v1" and w.state == "ready")


def test_a_failed_exec_hook_shows_the_end_of_its_output(lr, make_client, tmp_path, watchers):
    d = tmp_path / "dir"
    script = tmp_path / "hook.sh"
    script.write_text('for i in $(seq 1 25); do echo "out $i"; done\nprintf "bad \\033[31mred\\n" >&2\nexit 4\n')
    events: list[dict] = []
    w = Watcher(make_client(), "lr", d, WatchOptions(exec_cmd=f"sh {script}", retry_base=5.0), emit=events.append)
    watchers.append(w)
    w.start()
    until(lambda: events_of(events, "failed"))
    e = events_of(events, "failed")[0]
    assert e["error"] == f"hook 'sh {script}' exited 4: bad \\x1b[31mred"
    assert e["stdout"] == "\n".join(f"out {i}" for i in range(6, 26))  # the last 20 lines
    assert e["stderr"] == "bad \\x1b[31mred"  # a terminal escape, escaped


def test_a_successful_hook_is_quiet(lr, make_client, tmp_path, watchers):
    events: list[dict] = []
    w = Watcher(make_client(), "lr", tmp_path / "dir", WatchOptions(exec_cmd="echo hello; echo there >&2"),
                emit=events.append)
    assert w.sync_once()
    w.stop()
    assert [e["event"] for e in events] == ["downloading", "downloaded", "swapped"]


def test_the_waiting_reason_is_the_one_readyz_gives(client, make_client, tmp_path, watchers):
    client.push("lr", make_model(tmp_path / "s1", b"model 1"), version="v1")
    events: list[dict] = []
    w = Watcher(make_client(), "lr", tmp_path / "dir", WatchOptions(alias="canary"), emit=events.append)
    watchers.append(w)
    w.start()
    until(lambda: events_of(events, "waiting"))
    reason, hint = "alias 'canary' of lr is not set", "promote a version: mdl promote lr VERSION --alias canary"
    assert (events[-1]["reason"], events[-1]["hint"]) == (reason, hint)
    assert w.readiness() == {"ready": False, "version": None, "state": "waiting", "error": reason, "hint": hint}
    until(lambda: client.replicas("lr") and client.replicas("lr")[0].data["error"] == reason)
