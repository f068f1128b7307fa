"""Deleting a version's bytes, on every backend: one rename hides it (``<name>/.mdl-deleting/<version>.<token>``),
then it is purged (deleted, or on HDFS moved into the user's trash); listings and ``clean`` pass it over."""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdl.client import Client
from mdl.config import load
from mdl.errors import Escape, ExitCode, InvalidInput, NotFound
from mdl.manifest import MANIFEST_NAME
from mdl.storage.base import DELETING_DIR

from ..helpers import WEBHDFS_URL, make_dir, make_model

HIDDEN = re.compile(r"v1\.[0-9a-f]{8}")


class Tree:
    """The stored tree as anyone with access sees it: plain file-system calls, or WebHDFS as the superuser."""

    def __init__(self, client: Any) -> None:
        self.storage = client.storage
        self.local = isinstance(self.storage.root, Path)
        self.root = str(self.storage.root)
        if not self.local:
            from hdfs import InsecureClient

            self.hdfs = InsecureClient("http://" + WEBHDFS_URL.split("://", 1)[1], user="root", timeout=60)

    def exists(self, path: str) -> bool:
        if self.local:
            return os.path.lexists(path)
        return self.hdfs.status(path, strict=False) is not None

    def mkdir(self, rel: str) -> None:
        if self.local:
            os.makedirs(f"{self.root}/{rel}")
        else:
            self.hdfs.makedirs(f"{self.root}/{rel}")

    def names(self, path: str) -> list[str]:
        """The entries of a directory (WebHDFS LISTSTATUS on HDFS)."""
        return sorted(os.listdir(path) if self.local else self.hdfs.list(path))


@pytest.fixture
def tree(client) -> Tree:
    return Tree(client)


def push_two(client, tmp_path: Path) -> None:
    client.push("lr", make_model(tmp_path, b"one"), version="v1")
    client.push("lr", make_model(tmp_path, b"two"), version="v2")


def test_hide_makes_the_version_vanish_in_one_step(client, tree, tmp_path, caplog):
    push_two(client, tmp_path)
    caplog.set_level(logging.DEBUG, logger="mdl.storage")
    hidden = client.storage.hide_version("lr", "v1")
    assert hidden is not None
    assert posixpath.dirname(hidden) == f"{tree.root}/lr/{DELETING_DIR}"
    entry = posixpath.basename(hidden)
    assert HIDDEN.fullmatch(entry)
    assert tree.exists(f"{hidden}/{MANIFEST_NAME}") and not tree.exists(f"{tree.root}/lr/v1")
    assert client.storage.list_versions("lr") == ["v2"]
    assert client.storage.list_models() == ["lr"]
    assert client.storage.list_hidden("lr") == [entry]
    with pytest.raises(NotFound):
        client.storage.read_manifest("lr", "v1")
    assert client.storage.read_manifest("lr", "v2").name == "lr"
    assert not [r for r in caplog.records if DELETING_DIR in r.getMessage()]  # ours: passed over without a word


def test_hide_is_idempotent(client, tmp_path):
    push_two(client, tmp_path)
    assert client.storage.hide_version("lr", "v1") is not None
    assert client.storage.hide_version("lr", "v1") is None
    assert client.storage.hide_version("lr", "v9") is None
    assert client.storage.hide_version("nosuch", "v1") is None
    assert len(client.storage.list_hidden("lr")) == 1
    assert client.storage.list_hidden("nosuch") == []
    assert client.storage.list_hidden("lr-without-deletes") == []


def test_purge_removes_the_bytes_and_is_idempotent(client, tree, tmp_path):
    push_two(client, tmp_path)
    hidden = client.storage.hide_version("lr", "v1")
    assert hidden is not None
    entry = posixpath.basename(hidden)
    client.storage.purge_hidden("lr", entry)
    assert not tree.exists(hidden)
    assert client.storage.list_hidden("lr") == []
    client.storage.purge_hidden("lr", entry)  # already gone: nothing to do
    assert client.storage.list_versions("lr") == ["v2"]
    assert client.storage.read_manifest("lr", "v2").version == "v2"


def test_a_version_can_be_pushed_again_after_its_delete(client, tmp_path):
    push_two(client, tmp_path)
    client.storage.hide_version("lr", "v1")
    client.push("lr", make_model(tmp_path, b"one again"), version="v1")
    assert client.storage.list_versions("lr") == ["v1", "v2"]
    assert len(client.storage.list_hidden("lr")) == 1


def test_invalid_names_and_foreign_entries_are_refused_and_kept(client, tree, tmp_path):
    push_two(client, tmp_path)
    for version in ("../v2", ".mdl-staging", "", "a/b"):
        with pytest.raises(InvalidInput):
            client.storage.hide_version("lr", version)
    with pytest.raises(InvalidInput):
        client.storage.hide_version("../lr", "v1")
    tree.mkdir(f"lr/{DELETING_DIR}/not-ours")
    tree.mkdir(f"lr/{DELETING_DIR}/v1.ABCDEF01")
    assert client.storage.list_hidden("lr") == []
    for entry in ("not-ours", "v1.ABCDEF01", "../v2", "v2", f"../{DELETING_DIR}/not-ours", "v1.abcdef01/.."):
        with pytest.raises(InvalidInput):
            client.storage.purge_hidden("lr", entry)
    assert tree.names(f"{tree.root}/lr/{DELETING_DIR}") == ["not-ours", "v1.ABCDEF01"]
    assert client.storage.list_versions("lr") == ["v1", "v2"]


def test_clean_never_touches_hidden_versions(client, tmp_path):
    push_two(client, tmp_path)
    hidden = client.storage.hide_version("lr", "v1")
    assert client.storage.list_staging("lr") == [] and client.storage.list_staging() == []
    assert client.clean(older_than=0) == []
    assert client.storage.list_hidden("lr") == [posixpath.basename(str(hidden))]


class HideOnFirstBytes:
    """A pull's progress that hides the version being pulled as soon as its first bytes arrive."""

    def __init__(self, client, name: str, version: str) -> None:
        self.client, self.name, self.version = client, name, version
        self.hidden: str | None = None

    def add_total(self, n: int) -> None:
        pass

    def advance(self, n: int) -> None:
        if self.hidden is None:
            self.hidden = self.client.storage.hide_version(self.name, self.version)


def test_a_pull_across_a_delete_fails_not_found_and_leaves_nothing(client, tmp_path):
    files = {"a.bin": b"a" * 5000, "b.bin": b"b" * 7000, "c/d.bin": b"d" * 100}
    client.push("lr", make_dir(tmp_path, files), version="v1")
    out = tmp_path / "pulled"
    progress = HideOnFirstBytes(client, "lr", "v1")
    with pytest.raises(NotFound) as err:
        client.pull("lr", "v1", dest=out, jobs=1, progress=progress)
    assert progress.hidden is not None
    url = client.storage.url
    assert err.value.message == f"version lr/v1 no longer exists in {url} (deleted while being read?)"
    assert err.value.exit_code == ExitCode.NOT_FOUND == 3
    assert os.listdir(tmp_path) == ["srcdir"]  # no copy, whole or partial, and no temporary left


def test_a_reader_open_across_a_delete(client, tree, tmp_path):
    client.push("lr", make_dir(tmp_path, {"a.bin": b"a" * 3000, "b.bin": b"b" * 10}), version="v1")
    with client.storage.open("lr", "v1", "a.bin") as f:
        head = f.read(1000)
        assert client.storage.hide_version("lr", "v1") is not None
        if tree.local:  # an open file keeps working on a local disk (rename does not touch open descriptors)
            assert head + f.read() == b"a" * 3000
    gone = rf"^version lr/v1 no longer exists in {re.escape(client.storage.url)} \(deleted while being read\?\)$"
    with pytest.raises(NotFound, match=gone):
        client.storage.open("lr", "v1", "b.bin")


# -- the embedded storage: no symlink is ever followed, and there is no trash -----------------------


@pytest.fixture
def local(tmp_path_factory) -> Iterator[Client]:
    d = tmp_path_factory.mktemp("embedded")
    c = Client(load(env={"MDL_STORAGE_URL": f"file://{d}/models", "MDL_REGISTRY_URL": f"sqlite://{d}/r.db"}))
    yield c
    c.close()


def test_a_symlinked_version_directory_is_refused_and_nothing_outside_is_touched(local, tmp_path):
    local.push("lr", make_model(tmp_path), version="v1")
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "data").write_bytes(b"precious")
    link = local.storage.root / "lr" / "v2"
    link.symlink_to(outside / "keep")
    with pytest.raises(Escape, match="not a real directory"):
        local.storage.hide_version("lr", "v2")
    assert link.is_symlink() and (outside / "keep" / "data").read_bytes() == b"precious"
    assert local.storage.list_hidden("lr") == []


def test_a_symlinked_deleting_directory_is_never_used(local, tmp_path):
    local.push("lr", make_model(tmp_path), version="v1")
    outside = tmp_path / "outside"
    (outside / "v1.abcdef01").mkdir(parents=True)
    (outside / "v1.abcdef01" / "data").write_bytes(b"precious")
    (local.storage.root / "lr" / DELETING_DIR).symlink_to(outside)
    with pytest.raises(Escape):
        local.storage.hide_version("lr", "v1")
    assert local.storage.list_versions("lr") == ["v1"]
    assert local.storage.list_hidden("lr") == []
    with pytest.raises(Escape):
        local.storage.purge_hidden("lr", "v1.abcdef01")
    assert (outside / "v1.abcdef01" / "data").read_bytes() == b"precious"


def test_a_symlink_hidden_in_a_race_is_unlinked_not_followed(local, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data").write_bytes(b"precious")
    deleting = local.storage.root / "lr" / DELETING_DIR
    deleting.mkdir(parents=True)
    (deleting / "v1.abcdef01").symlink_to(outside)
    assert local.storage.list_hidden("lr") == ["v1.abcdef01"]
    local.storage.purge_hidden("lr", "v1.abcdef01")
    assert not os.path.lexists(deleting / "v1.abcdef01")
    assert (outside / "data").read_bytes() == b"precious"


def test_local_storage_has_no_trash(local, tmp_path):
    local.push("lr", make_model(tmp_path), version="v1")
    entry = posixpath.basename(str(local.storage.hide_version("lr", "v1")))
    assert local.storage.has_trash is False
    with pytest.raises(InvalidInput, match="--trash is for HDFS"):
        local.storage.purge_hidden("lr", entry, trash=True)
    assert local.storage.list_hidden("lr") == [entry]  # refused before anything was removed


# -- HDFS: Hadoop's trash ----------------------------------------------------------------------------


@pytest.fixture
def hdfs(client, tree) -> Iterator[str]:
    """The HDFS user's ``.Trash/Current``; what the test put there is removed afterwards."""
    current = f"/user/{client.storage.user}/.Trash/Current"
    yield current
    tree.hdfs.delete(current + tree.root.removesuffix("/models"), recursive=True)


@pytest.mark.cluster
@pytest.mark.parametrize("backend", ["distributed"], indirect=True)
def test_trash_moves_the_version_under_its_original_path(client, tree, hdfs, tmp_path):
    assert client.storage.has_trash is True
    client.push("lr", make_model(tmp_path, b"two"), version="v2")
    in_trash = f"{hdfs}{tree.root}/lr"
    for content in (b"first", b"second"):
        client.push("lr", make_model(tmp_path, content), version="v1")
        entry = posixpath.basename(str(client.storage.hide_version("lr", "v1")))
        client.storage.purge_hidden("lr", entry, trash=True)
        assert client.storage.list_hidden("lr") == []
    names = tree.names(in_trash)  # LISTSTATUS: the first as v1, the second with Hadoop's timestamp suffix
    assert len(names) == 2 and names[0] == "v1" and re.fullmatch(r"v1\d{13}", names[1]), names
    with tree.hdfs.read(f"{in_trash}/v1/model.pkl") as f:
        assert f.read() == b"first"
    with tree.hdfs.read(f"{in_trash}/{names[1]}/model.pkl") as f:
        assert f.read() == b"second"
    assert client.storage.list_versions("lr") == ["v2"]
