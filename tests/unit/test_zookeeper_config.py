"""The ZooKeeper registry's configuration and its behaviour with no ensemble at all (no cluster needed)."""

from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("kazoo")

from mdl.config import load  # noqa: E402
from mdl.errors import ConfigError, InvalidInput, Unavailable  # noqa: E402
from mdl.registry.zookeeper import ZooKeeperRegistry, parse_url, read_credentials  # noqa: E402


@pytest.mark.parametrize("url, hosts, chroot", [
    ("zk://h1:2181,h2:2182,h3/models", "h1:2181,h2:2182,h3:2181", "/models"),
    ("zk://127.0.0.1:12181", "127.0.0.1:12181", "/mdl"),
    ("zk://zk.example.com:2181/", "zk.example.com:2181", ""),
    ("zk://h1/a/b/", "h1:2181", "/a/b"),
    ("zk://[::1]:2181,h2/x", "[::1]:2181,h2:2181", "/x"),
])
def test_url(url, hosts, chroot):
    assert parse_url(url) == (hosts, chroot)


@pytest.mark.parametrize("url", ["zk://", "zk://h1,,h2/x", "zk://h1:notaport/x", "zk://h1/a/../b",
                                 "zk://h1/zookeeper", "zk://h1/x?y=1", "zk://u@h1/x", "zk://h1:99999/x"])
def test_bad_url(url):
    with pytest.raises(ConfigError):
        parse_url(url)


def test_credentials_from_file_or_env(tmp_path):
    digest = tmp_path / "digest"
    digest.write_text("svc:pa:ss\n")
    with_file = load(env={"MDL_REGISTRY_DIGEST_FILE": str(digest)})
    assert read_credentials(with_file, env={"MDL_REGISTRY_DIGEST": "other:pw"}) == ("svc", "pa:ss")
    assert read_credentials(load(env={}), env={"MDL_REGISTRY_DIGEST": "other:pw"}) == ("other", "pw")
    assert read_credentials(load(env={}), env={}) is None
    digest.write_text("no-colon")
    with pytest.raises(ConfigError, match="user:password"):
        read_credentials(with_file, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        read_credentials(load(env={"MDL_REGISTRY_DIGEST_FILE": str(tmp_path / "missing")}), env={})


def _dead_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return port


def test_no_ensemble_fails_within_the_timeout_and_closes_promptly():
    port = _dead_port()
    reg = ZooKeeperRegistry(f"zk://127.0.0.1:{port}/mdl", timeout=1.5)
    try:
        w = reg.watch("lr", lambda p: None)  # never blocks the caller
        for call in (lambda: reg.get("lr"), lambda: reg.cas("lr", "latest", "v1", -1, "me@h", "promote"),
                     reg.list_models, lambda: reg.register_replica("lr", "r1", {})):
            t = time.monotonic()
            with pytest.raises(Unavailable, match=f"cannot connect to ZooKeeper at 127.0.0.1:{port} within 1.5 s"):
                call()
            assert time.monotonic() - t < 2.5
        w.stop()
    finally:
        t = time.monotonic()
        reg.close()
        assert time.monotonic() - t < 2.5
    with pytest.raises(Unavailable, match="closed"):
        reg.get("lr")


def test_replica_ids_must_be_node_names():
    reg = ZooKeeperRegistry(f"zk://127.0.0.1:{_dead_port()}/mdl", timeout=1)
    try:
        for bad in ("", "a/b", "..", "x\n"):
            with pytest.raises(InvalidInput):
                reg.register_replica("lr", bad, {})
    finally:
        reg.close()
