"""mdl against a real HA NameNode pair (``python -m mdl.devcluster up --ha``): failover and a stopped
NameNode during list/push/pull, and a watcher across a failover. No mocks: the one thing wrapped is a
client's HTTP layer, to count the requests that reach each NameNode."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import pytest

from mdl.client import Client
from mdl.config import load
from mdl.errors import MdlError
from mdl.manifest import MANIFEST_NAME, hash_file
from mdl.storage.base import STAGING_DIR
from mdl.storage.webhdfs import WebHdfsStorage
from mdl.watch.engine import Watcher

from ..helpers import MDL, ZK_HOSTS, current, drop_zk_tree, until

pytestmark = pytest.mark.cluster

SUPERUSER = "root" if os.getuid() == 0 else None
# 96 one-MiB blocks in 8 files: a push or pull long enough to fail over in the middle, and more
# NameNode requests after the failover than the first ones
BIG_FILES = {f"part-{i}.bin": 12 * 1024 * 1024 + i for i in range(8)}
# the case: a failover during a 1 GiB push (1,024 blocks of 1 MiB, 3 replicas each)
GIB_FILES = {f"part-{i}.bin": 128 * 1024 * 1024 + i for i in range(8)}


def namenode_urls(ha) -> tuple[str, str | None]:
    """(active, standby) NameNode addresses, as ``127.0.0.1:port`` (standby None if it is stopped)."""
    nns = {n["state"]: f"127.0.0.1:{n['http_port']}" for n in ha.namenodes() if n["running"]}
    return nns["active"], nns.get("standby")


@pytest.fixture
def env(ha_cluster, cluster):
    """MDL_* settings for a fresh tree on the HA cluster; the registry is the default cluster's ZooKeeper."""
    run = uuid.uuid4().hex[:10]
    yield {
        "MDL_STORAGE_URL": ha_cluster.info()["storage_url"],
        "MDL_STORAGE_ROOT": f"/mdl-test/{run}/models",
        "MDL_STORAGE_USER": ha_cluster.superuser(),
        "MDL_STORAGE_TIMEOUT": "20",
        "MDL_REGISTRY_URL": f"zk://{ZK_HOSTS}/mdl-test-ha-{run}",
        "MDL_REGISTRY_TIMEOUT": "5",
    }
    for n in ha_cluster.namenodes():  # a test that stopped a NameNode may have failed before restarting it
        if not n["running"]:
            ha_cluster.start_namenode(n["index"])
    admin = WebHdfsStorage(ha_cluster.info()["storage_url"], root="/", user=SUPERUSER, timeout=20)
    try:
        admin.session.delete(f"/mdl-test/{run}")
    finally:
        admin.close()
    drop_zk_tree(f"/mdl-test-ha-{run}")


@pytest.fixture
def make_client(env):
    made: list[Client] = []

    def make(storage_url: str | None = None) -> Client:
        e = dict(env, MDL_STORAGE_URL=storage_url) if storage_url else env
        made.append(Client(load(env=e)))
        return made[-1]

    yield make
    for c in made:
        c.close()


def count_requests(client: Client, on_datanode: Callable[[], None] | None = None) -> Counter:
    """Count, per ``host:port``, the HTTP requests ``client``'s storage sends from now on;
    ``on_datanode`` is called (once) at its first request to a DataNode."""
    seen: Counter = Counter()
    http = client.storage.session.http  # type: ignore[attr-defined]
    namenodes = {urlsplit(u).netloc for u in client.storage.session.namenodes}  # type: ignore[attr-defined]
    send = http.request

    def counted(method, url, **kw):
        where = urlsplit(url).netloc
        seen[where] += 1
        if on_datanode is not None and where not in namenodes and sum(seen[w] for w in seen if w not in namenodes) == 1:
            on_datanode()
        return send(method, url, **kw)

    http.request = counted
    return seen


def model_dir(tmp_path: Path, name: str, files: dict[str, int]) -> Path:
    d = tmp_path / name
    d.mkdir()
    for f, size in files.items():
        (d / f).write_bytes(os.urandom(size))
    return d


def same_tree(a: Path, b: Path) -> bool:
    """``b`` holds exactly ``a``'s files, byte for byte (besides the manifest a pull writes)."""

    def files(d: Path) -> list[Path]:
        return sorted(p.relative_to(d) for p in d.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)

    return files(a) == files(b) and all(hash_file(a / f)[1] == hash_file(b / f)[1] for f in files(a))


class FailoverOnData:
    """Fails the cluster over (in a thread) as soon as ``client`` sends its first bytes to a DataNode;
    ``stop``: by shutting the active NameNode down (the env fixture starts it again)."""

    def __init__(self, ha, client: Client, stop: bool = False) -> None:
        self.ha, self.stop, self.done_at = ha, stop, 0.0
        self.error: Exception | None = None
        self.before, _ = namenode_urls(ha)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.seen = count_requests(client, self.thread.start)

    def _run(self) -> None:
        try:
            if self.stop:
                self.ha.stop_namenode(next(n["index"] for n in self.ha.namenodes() if n["state"] == "active"))
            else:
                self.ha.failover_namenode()
            self.done_at = time.monotonic()
        except Exception as e:  # reported by check()
            self.error = e

    def check(self, finished_at: float) -> None:
        """The failover happened, while the operation still ran, and it then used the new active one."""
        self.thread.join(60)
        assert self.error is None and self.done_at, self.error
        assert self.done_at < finished_at, "the operation finished before the failover: make it bigger"
        after, _ = namenode_urls(self.ha)
        assert after != self.before and self.seen[after] > 0, self.seen


@pytest.mark.parametrize("standby_first", [False, True], ids=["active-first", "standby-first"])
def test_list_push_pull_remember_the_active_namenode(ha_cluster, make_client, tmp_path, standby_first):
    active, standby = namenode_urls(ha_cluster)
    assert standby is not None
    order = [standby, active] if standby_first else [active, standby]
    client = make_client("webhdfs://" + ",".join(order))
    seen = count_requests(client)
    assert client.stored_versions("lr") == []
    assert seen[standby] == (1 if standby_first else 0) and seen[active] >= 1
    src = model_dir(tmp_path, "src", {"a.bin": 3 * 1024 * 1024 + 5, "b.txt": 100})
    client.push("lr", src, version="v1")
    assert client.stored_versions("lr") == ["v1"]
    assert [m.name for m in client.list_models()] == ["lr"]
    client.pull("lr", "v1", dest=tmp_path / "out")
    assert same_tree(src, tmp_path / "out")
    assert seen[standby] == (1 if standby_first else 0), seen  # remembered: nothing more to the standby
    assert seen[active] > 5


def test_a_nameservice_url_resolves_through_the_hadoop_client_config(ha_cluster, env, tmp_path):
    """``webhdfs://mdlns`` + the dev cluster's client hdfs-site.xml: the real `mdl` binary finds both
    NameNodes, on either side of a failover."""
    e = {**os.environ, **env, "MDL_STORAGE_URL": "webhdfs://mdlns",
         "MDL_STORAGE_HADOOP_CONF_DIR": str(ha_cluster.conf_dir / "client")}
    src = model_dir(tmp_path, "src", {"m.bin": 100_000})
    r = subprocess.run([MDL, "push", "lr", str(src), "--version", "v1"], env=e, capture_output=True)
    assert r.returncode == 0, r.stderr
    ha_cluster.failover_namenode()
    r = subprocess.run([MDL, "list", "lr", "-o", "json"], env=e, capture_output=True)
    assert r.returncode == 0 and [v["version"] for v in json.loads(r.stdout)["versions"]] == ["v1"], r.stderr


@pytest.mark.parametrize(("stop", "files"), [(False, GIB_FILES), (True, BIG_FILES)], ids=["failover-1GiB", "active-stops"])
def test_failover_during_a_push_completes_or_fails_cleanly(ha_cluster, make_client, tmp_path, stop, files):
    src = model_dir(tmp_path, "src", files)
    client = make_client()
    failover = FailoverOnData(ha_cluster, client, stop)
    try:
        client.push("lr", src, version="v1", jobs=2)
        pushed = True
    except MdlError as e:  # allowed, if clean: an mdl error (exit code), no version, only staging debris
        assert e.exit_code != 0 and "\n" not in str(e)
        pushed = False
    failover.check(time.monotonic())
    check = make_client()
    if pushed:
        assert check.stored_versions("lr") == ["v1"]
        check.pull("lr", "v1", dest=tmp_path / "out")
        assert same_tree(src, tmp_path / "out")
    else:
        assert check.stored_versions("lr") == []
        assert all(e.name == "lr" and STAGING_DIR in e.path for e in check.clean(older_than=0))
        assert check.stored_versions("lr") == []


def test_failover_during_a_pull_is_retried_on_the_new_active(ha_cluster, make_client, tmp_path):
    src = model_dir(tmp_path, "src", BIG_FILES)
    make_client().push("lr", src, version="v1")
    client = make_client()
    client.stored_versions("lr")  # the active NameNode is known before the pull starts
    failover = FailoverOnData(ha_cluster, client)
    client.pull("lr", "v1", dest=tmp_path / "out", jobs=2)
    failover.check(time.monotonic())
    assert same_tree(src, tmp_path / "out")


def test_commands_keep_working_when_the_active_namenode_stops(ha_cluster, env, make_client, tmp_path):
    client = make_client()
    client.push("lr", model_dir(tmp_path, "v1", {"m.bin": 2 * 1024 * 1024}), version="v1")
    first = next(n["index"] for n in ha_cluster.namenodes() if n["state"] == "active")
    nns = ha_cluster.stop_namenode(first)
    try:
        assert [n["state"] for n in nns if n["index"] != first] == ["active"]
        assert client.stored_versions("lr") == ["v1"]
        src = model_dir(tmp_path, "v2", {"m.bin": 2 * 1024 * 1024 + 1})
        client.push("lr", src, version="v2")
        client.pull("lr", "v2", dest=tmp_path / "out")
        assert same_tree(src, tmp_path / "out")
        r = subprocess.run([MDL, "list", "lr"], env={**os.environ, **env}, capture_output=True)
        assert r.returncode == 0 and b"v2" in r.stdout, r.stderr
    finally:
        ha_cluster.start_namenode(first)
    assert client.stored_versions("lr") == ["v1", "v2"]


def test_a_fleet_of_watchers_keeps_serving_across_a_failover_and_catches_up(ha_cluster, make_client, tmp_path):
    client = make_client()
    v1 = model_dir(tmp_path, "v1", {"model.bin": 1024 * 1024 + 1})
    client.push("lr", v1, version="v1")
    client.promote("lr", "v1")
    dirs = [tmp_path / f"serve{i}" for i in range(3)]
    fleet = [Watcher(make_client(), "lr", d) for d in dirs]
    for w in fleet:
        w.start()
    try:
        until(lambda: all(current(d) == "v1" for d in dirs) and all(w.ready for w in fleet), timeout=30)
        ha_cluster.failover_namenode()
        v2 = model_dir(tmp_path, "v2", {"model.bin": 1024 * 1024 + 2})
        client.push("lr", v2, version="v2")
        for d in dirs:  # nothing moved while the alias stood still
            assert current(d) == "v1" and (d / "current" / "model.bin").read_bytes() == (v1 / "model.bin").read_bytes()
        client.promote("lr", "v2")
        until(lambda: all(current(d) == "v2" for d in dirs) and all(w.ready for w in fleet), timeout=30)
        ha_cluster.failover_namenode()  # and back: the fleet follows the next promotion too
        client.promote("lr", "v1")
        until(lambda: all(current(d) == "v1" for d in dirs) and all(w.ready for w in fleet), timeout=30)
        assert all(same_tree(v1, d / "current") for d in dirs)
        assert all(w.error is None for w in fleet)
    finally:
        for w in fleet:
            w.stop()
