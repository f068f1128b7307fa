"""Hostile storage, on every backend: a writer with storage (or registry) access plants manifests
whose entries lead outside the destination, collide with files there or with the host's shared
store, or are malformed. pull, promote, watch --once and clean refuse (exit 8) and nothing outside
mdl's own paths is created, truncated or deleted."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import pytest

from mdl.client import Client
from mdl.errors import IntegrityError
from mdl.manifest import MANIFEST_NAME, FileEntry, digest_of
from mdl.watch import Watcher

from ..helpers import make_model, write_stored

PAYLOAD = b"#!/bin/sh\necho owned\n"
VICTIM = b"precious bytes"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def with_files(doc: dict, files: list[dict]) -> dict:
    """``doc`` listing ``files``, its digest recomputed (as an attacker would)."""
    entries = [FileEntry(f["path"], f["size"], f["sha256"]) for f in files]
    return {**doc, "files": files, "digest": digest_of(entries) if all(
        isinstance(f.get("path"), str) and isinstance(f.get("size"), int) for f in files) else doc["digest"]}


def entry(path: str, data: bytes = PAYLOAD) -> dict:
    return {"path": path, "size": len(data), "sha256": sha(data)}


# id -> (the planted manifest from the good one and the site, {stored path: bytes} planted beside it)
Variant = Callable[[dict, dict], bytes]
VARIANTS: dict[str, Variant] = {
    "traversal": lambda d, s: json.dumps(with_files(d, [entry("../../planted.sh")])).encode(),
    "traversal-deep": lambda d, s: json.dumps(with_files(d, [entry("a/../../../../planted.sh")])).encode(),
    "absolute-victim-wrong-sha": lambda d, s: json.dumps(with_files(d, [entry(s["victim"], b"other")])).encode(),
    "absolute-victim-store-sha": lambda d, s: json.dumps(with_files(d, [entry(s["victim"], s["model"])])).encode(),
    "duplicate": lambda d, s: json.dumps(with_files(d, [entry("model.pkl"), entry("model.pkl")])).encode(),
    "file-and-directory": lambda d, s: json.dumps(with_files(d, [entry("a"), entry("a/b")])).encode(),
    "no-files": lambda d, s: json.dumps(with_files(d, [])).encode(),
    "negative-size": lambda d, s: json.dumps(with_files(d, [{**entry("m"), "size": -1}])).encode(),
    "bad-sha": lambda d, s: json.dumps(with_files(d, [{**entry("m"), "sha256": "zz"}])).encode(),
    "backslash": lambda d, s: json.dumps(with_files(d, [entry("..\\..\\planted.sh")])).encode(),
    "nul": lambda d, s: json.dumps(with_files(d, [entry("m\x00.sh")])).encode(),
    "empty-component": lambda d, s: json.dumps(with_files(d, [entry("a//m")])).encode(),
    "manifest-itself": lambda d, s: json.dumps(with_files(d, [entry(MANIFEST_NAME)])).encode(),
    "too-deep": lambda d, s: json.dumps(with_files(d, [entry("/".join(["d"] * 80) + "/m")])).encode(),
    "other-version": lambda d, s: json.dumps({**d, "version": "v1"}).encode(),
    "other-name": lambda d, s: json.dumps({**d, "name": "other"}).encode(),
    "size-as-text": lambda d, s: json.dumps(with_files(d, [{**entry("m"), "size": "21"}])).encode(),
    "not-an-object": lambda d, s: b"[]",
    "not-json": lambda d, s: b"\xff\xfe{",
    "nested-deeply": lambda d, s: b"[" * 200_000 + b"]" * 200_000,
}


@pytest.fixture
def site(client, tmp_path):
    """lr: v1 (latest) and v2, both good; a victim file outside every destination."""
    client.push("lr", make_model(tmp_path / "one", b"\x80\x04model one"), version="v1", promote=True)
    client.push("lr", make_model(tmp_path / "two", b"\x80\x04model two"), version="v2")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    good = json.loads(client.storage.read_bytes("lr", "v2", MANIFEST_NAME))
    return {"victim": str(victim), "model": b"\x80\x04model one", "good": good, "tmp": tmp_path}


def plant(client: Client, site: dict, variant: str) -> None:
    """Replace v2's manifest (and, for traversals on the local backend, plant the payload where the
    entry resolves in the tree)."""
    data = VARIANTS[variant](site["good"], site)
    write_stored(client, "lr", "v2", MANIFEST_NAME, data)
    root = getattr(client.storage, "root", None)
    if isinstance(root, Path) and variant.startswith("traversal"):
        (root / "planted.sh").write_bytes(PAYLOAD)


def untouched(site: dict) -> None:
    tmp = site["tmp"]
    assert Path(site["victim"]).read_bytes() == VICTIM
    for where in (tmp, tmp.parent, tmp.parent.parent):
        assert not (where / "planted.sh").exists()
    assert [p.name for p in tmp.iterdir() if ".mdl-" in p.name] == []  # no temporaries left


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_pull_refuses_a_hostile_manifest(client, site, variant):
    plant(client, site, variant)
    out = site["tmp"] / "out"
    with pytest.raises(IntegrityError) as err:
        client.pull("lr", "v2", dest=out)
    assert err.value.exit_code == 8
    assert not out.exists()
    untouched(site)


@pytest.mark.parametrize("variant", ["traversal", "absolute-victim-wrong-sha", "other-version", "nested-deeply"])
def test_promote_refuses_and_copies_nothing_into_the_registry(client, site, variant):
    plant(client, site, variant)
    with pytest.raises(IntegrityError):
        client.promote("lr", "v2")
    assert client.pointer("lr").aliases == {"latest": "v1"}
    assert client.registry.get_manifest("lr", "v2") is None


@pytest.mark.parametrize("variant", ["traversal", "absolute-victim-wrong-sha", "absolute-victim-store-sha",
                                     "duplicate", "file-and-directory", "nested-deeply"])
def test_a_watcher_keeps_serving_and_touches_nothing(client, make_client, site, variant):
    d = site["tmp"] / "dir"
    w = Watcher(make_client(), "lr", d)
    assert w.sync_once()  # v1, its file now in the host's shared store (the store-sha variant's bait)
    w.stop()
    plant(client, site, variant)
    client.registry.cas("lr", "latest", "v2", client.pointer("lr").revision, "attacker", "promote")
    events: list[dict] = []
    w = Watcher(make_client(), "lr", d, emit=events.append)
    assert w.sync_once()  # still serving v1
    w.stop()
    assert os.readlink(d / "current") == "versions/v1"
    failed = [e for e in events if e["event"] == "failed"]
    assert failed and failed[0]["version"] == "v2" and "not a valid mdl manifest" in failed[0]["error"]
    assert sorted(os.listdir(d / "versions")) == ["v1"]
    untouched(site)


def test_a_poisoned_registry_copy_is_ignored_for_storage(client, make_client, site):
    """``promote`` keeps a manifest copy in the registry; a hostile copy there is refused and the
    storage original (verified the same way) is used."""
    client.promote("lr", "v2")
    hostile = VARIANTS["absolute-victim-store-sha"](site["good"], site)
    _overwrite_registry_copy(client, hostile)
    assert client.registry.get_manifest("lr", "v2") == hostile
    w = Watcher(make_client(), "lr", site["tmp"] / "dir")
    assert w.sync_once()
    w.stop()
    assert (site["tmp"] / "dir" / "current" / "model.pkl").read_bytes() == b"\x80\x04model two"
    untouched(site)


def _overwrite_registry_copy(client: Client, data: bytes) -> None:
    """Write the registry's manifest copy behind mdl's back, on either registry."""
    url = client.config["registry.url"]
    if url.startswith("sqlite://"):
        import sqlite3

        db = sqlite3.connect(url[len("sqlite://"):])
        db.execute("UPDATE manifests SET data = ? WHERE model = 'lr' AND version = 'v2'", (data,))
        db.commit()
        db.close()
        return
    from kazoo.client import KazooClient

    hosts, chroot = url[len("zk://"):].split("/", 1)
    zk = KazooClient(hosts=hosts)
    zk.start(timeout=10)
    try:
        zk.set(f"/{chroot}/models/lr/manifests/v2", data)
    finally:
        zk.stop()
        zk.close()


@pytest.mark.parametrize("variant", ["traversal", "absolute-victim-wrong-sha"])
def test_the_binary_says_one_line_and_exits_8(run_mdl, client, site, variant):
    plant(client, site, variant)
    out = site["tmp"] / "out"
    r = run_mdl("pull", "lr", "v2", "-d", str(out))
    lines = r.stderr.decode().splitlines()
    assert r.returncode == 8, r.stderr
    assert lines[0].startswith("error: manifest of lr/v2 is not a valid mdl manifest"), lines
    assert len(lines) <= 2 and "Traceback" not in r.stderr.decode()
    assert not out.exists()
    untouched(site)


def test_watch_once_binary_refuses(run_mdl, client, site):
    plant(client, site, "absolute-victim-store-sha")
    client.registry.cas("lr", "latest", "v2", client.pointer("lr").revision, "attacker", "promote")
    r = run_mdl("watch", "lr", "-d", str(site["tmp"] / "dir"), "--once", "-o", "json")
    assert r.returncode == 8, r.stderr
    events = [json.loads(line) for line in r.stdout.decode().splitlines() if line.startswith("{")]
    assert any(e["event"] == "failed" and e["version"] == "v2" for e in events), events
    assert "Traceback" not in r.stderr.decode()
    untouched(site)


def test_clean_touches_nothing_a_manifest_names(client, site):
    plant(client, site, "traversal")
    assert client.clean(older_than=0) == []
    untouched(site)
    assert client.storage.list_versions("lr") and sorted(client.storage.list_versions("lr")) == ["v1", "v2"]


def test_an_unreadable_manifest_is_not_an_unexpected_error(client, site):
    """``list`` skips a version whose manifest is hostile; it never crashes on it."""
    plant(client, site, "nested-deeply")
    assert [v.version for v in client.list_versions("lr")] == ["v1"]
