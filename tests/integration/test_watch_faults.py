"""The sidecar under real faults: the whole ZooKeeper ensemble down, a DataNode dying mid-download."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mdl import devcluster
from mdl.manifest import hash_file

from ..helpers import current

pytestmark = pytest.mark.cluster


@pytest.fixture(params=["distributed"])
def backend(request, cluster):
    return request.param


def serving_is_valid(d: Path, version: str, content: bytes) -> bool:
    return current(d) == version and (d / "current" / "model.bin").read_bytes() == content


def test_zookeeper_outage_keeps_serving_and_catches_up(fleet, run_mdl, tmp_path, client):
    contents = {}
    for v in ("v1", "v2"):
        src = tmp_path / v / "model.bin"
        src.parent.mkdir()
        contents[v] = v.encode() * 1000
        src.write_bytes(contents[v])
        assert run_mdl("push", "lr", str(src.parent), "--version", v).returncode == 0
    assert run_mdl("promote", "lr", "v1").returncode == 0
    dirs = fleet.start(3)
    fleet.wait_registered(3)
    assert run_mdl("promote", "lr", "v1", "--wait", "--timeout", "60").returncode == 0
    devcluster.stop_zk_all()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 20:
            assert all(serving_is_valid(d, "v1", contents["v1"]) for d in dirs)
            assert all(p.poll() is None for p in fleet.procs)
            time.sleep(0.5)
        r = run_mdl("promote", "lr", "v2", timeout=60)
        assert r.returncode == 6, r.stderr  # unavailable, and nothing moved
    finally:
        devcluster.start_zk_all()
    r = run_mdl("promote", "lr", "v2", "--wait", "--timeout", "90", "--min-ready", "3")
    assert r.returncode == 0, r.stderr
    assert all(serving_is_valid(d, "v2", contents["v2"]) for d in dirs)


def test_a_datanode_dying_during_downloads_does_not_stop_them(fleet, run_mdl, tmp_path, client):
    src = tmp_path / "big"
    src.mkdir()
    for i in range(6):
        (src / f"part-{i}.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    assert run_mdl("push", "lr", str(src), "--version", "v1").returncode == 0
    dirs = fleet.start(3)
    fleet.wait_registered(3)
    killer = threading.Timer(0.5, devcluster.stop_datanode, args=(1,))
    try:
        killer.start()
        r = run_mdl("promote", "lr", "v1", "--wait", "--timeout", "180")
        killer.join()
        assert r.returncode == 0, r.stderr
    finally:
        devcluster.start_datanode(1)
    for d in dirs:
        for i in range(6):
            assert hash_file(d / "current" / f"part-{i}.bin")[1] == hash_file(src / f"part-{i}.bin")[1]
