"""The distributed deployment as other tools see it, and as the mdl binary reports its failures."""

from __future__ import annotations

import json
import time

import pytest

from mdl import devcluster

from ..helpers import ZK_HOSTS

pytestmark = pytest.mark.cluster


@pytest.fixture(params=["distributed"])
def backend(request, cluster):
    return request.param


@pytest.fixture
def pushed(run_mdl, tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    (src / "model.pkl").write_bytes(bytes(range(256)) * 4096)
    (src / "sub").mkdir()
    (src / "sub" / "vocab.txt").write_text("hello\n")
    r = run_mdl("push", "bert", str(src), "--version", "v1", "--promote")
    assert r.returncode == 0, r.stderr
    return src


def test_hadoop_fsshell_sees_the_tree_and_identical_bytes(pushed, backend_env):
    root = backend_env["MDL_STORAGE_ROOT"]
    ls = devcluster.fs_shell("-ls", "-R", root, check=True).stdout.decode()
    paths = {line.split()[-1] for line in ls.splitlines() if line.startswith(("-", "d"))}
    assert {f"{root}/bert", f"{root}/bert/v1", f"{root}/bert/v1/model.pkl", f"{root}/bert/v1/sub/vocab.txt",
            f"{root}/bert/v1/.mdl-manifest.json"} <= paths
    assert not any(".mdl-staging/" in p for p in paths)
    cat = devcluster.fs_shell("-cat", f"{root}/bert/v1/model.pkl", check=True).stdout
    assert cat == (pushed / "model.pkl").read_bytes()


def test_a_plain_kazoo_client_reads_the_pointer(pushed, backend_env):
    from kazoo.client import KazooClient

    chroot = backend_env["MDL_REGISTRY_URL"].rsplit("/", 1)[1]
    zk = KazooClient(hosts=ZK_HOSTS)
    zk.start(timeout=10)
    try:
        data, _ = zk.get(f"/{chroot}/models/bert/pointer")
    finally:
        zk.stop()
        zk.close()
    assert json.loads(data) == {"latest": "v1"}


def test_unreachable_namenode_is_exit_6_within_the_timeout(run_mdl, tmp_path):
    (tmp_path / "m.pkl").write_bytes(b"x")
    started = time.monotonic()
    r = run_mdl("push", "lr", str(tmp_path / "m.pkl"),
                env={"MDL_STORAGE_URL": "webhdfs://127.0.0.1:1", "MDL_STORAGE_TIMEOUT": "3"})
    assert r.returncode == 6, r.stderr
    assert time.monotonic() - started < 15
    lines = r.stderr.decode().splitlines()
    assert lines[0].startswith("error: ") and "127.0.0.1:1" in lines[0] and "Traceback" not in r.stderr.decode()


def test_all_zookeeper_servers_down_is_exit_6_and_nothing_moves(pushed, run_mdl, backend_env):
    devcluster.stop_zk_all()
    try:
        for argv in (["promote", "bert", "v1", "--alias", "canary"], ["history", "bert"], ["rollback", "bert"]):
            started = time.monotonic()
            r = run_mdl(*argv)
            assert r.returncode == 6, (argv, r.stderr)
            assert time.monotonic() - started < float(backend_env["MDL_REGISTRY_TIMEOUT"]) + 10
            lines = r.stderr.decode().splitlines()  # the note a person waiting sees, then one error and a hint
            assert lines[0].startswith("connecting to ZooKeeper at ") and lines[1].startswith("error: "), lines
            assert len(lines) == 3 and lines[2].startswith("hint: ") and b"Traceback" not in r.stderr
    finally:
        devcluster.start_zk_all()
    doc = json.loads(run_mdl("history", "bert", "-o", "json", check=True).stdout)
    assert [(h["alias"], h["to"]) for h in doc["history"]] == [("latest", "v1")]


def test_an_acl_protected_pointer_cannot_be_moved_without_credentials(pushed, run_mdl, tmp_path, backend_env):
    creds = tmp_path / "zk-digest"
    creds.write_text("ops:s3cret\n")
    owner = {"MDL_REGISTRY_DIGEST_FILE": str(creds)}
    # a fresh model created by the credentialed identity carries the ACL
    assert run_mdl("push", "secure", str(pushed), "--version", "v1", env=owner).returncode == 0
    assert run_mdl("push", "secure", str(pushed / "model.pkl"), "--version", "v2", env=owner).returncode == 0
    assert run_mdl("promote", "secure", "v1", env=owner).returncode == 0
    r = run_mdl("promote", "secure", "v2")
    assert r.returncode == 1, r.stderr
    first = r.stderr.decode().splitlines()[0]
    assert first.startswith("error: ") and "ACL" in first
    listing = json.loads(run_mdl("list", "-o", "json", check=True).stdout)
    assert {m["name"]: m["aliases"] for m in listing["models"]}["secure"] == {"latest": "v1"}
    assert run_mdl("promote", "secure", "v2", env=owner).returncode == 0


def test_hdfs_permission_denied_names_path_and_user(pushed, run_mdl, tmp_path):
    r = run_mdl("push", "bert", str(pushed / "model.pkl"), "--version", "v2", env={"MDL_STORAGE_USER": "alice"})
    assert r.returncode == 1, r.stderr
    first = r.stderr.decode().splitlines()[0]
    assert first.startswith("error: ") and "alice" in first and "permission" in first.lower()
