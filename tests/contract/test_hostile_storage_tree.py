"""Issue 12: the storage tree is untrusted input to every reader, on every backend.

Whatever the tree holds (written by anyone with write access to storage), a reader skips what is
not mdl's, refuses what is wrong with a documented exit code, and never creates, truncates, follows
or deletes anything outside its destination. Entries are planted behind mdl's back: on HDFS with
the ``hdfs`` package as the superuser, locally with plain file-system calls. Symlinks exist only on
the local backend (HDFS has them disabled by default), so those tests run on the embedded one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from mdl import __version__
from mdl.client import Client
from mdl.config import load
from mdl.errors import ConfigError, ExitCode, IntegrityError, NotFound
from mdl.manifest import MANIFEST_MAX, MANIFEST_NAME, FileEntry, Manifest, digest_of
from mdl.storage.local import LocalStorage

WEBHDFS = "http://127.0.0.1:19870"
OLD = 1_000_000_000  # an mtime long past: every planted staging entry is "old" to clean


class Tree:
    """Plants entries in the storage tree behind mdl's back, on either backend."""

    def __init__(self, client: Client) -> None:
        storage = client.storage
        self.local: Path | None = storage.root if isinstance(storage, LocalStorage) else None
        if self.local is None:
            from hdfs import InsecureClient

            self.hdfs = InsecureClient(WEBHDFS, user="root", timeout=60)
            self.root = client.config["storage.root"]

    def mkdir(self, rel: str) -> None:
        if self.local is not None:
            (self.local / rel).mkdir(parents=True, exist_ok=True)
            os.utime(self.local / rel, (OLD, OLD))
        else:
            self.hdfs.makedirs(f"{self.root}/{rel}")
            self.hdfs.set_times(f"{self.root}/{rel}", modification_time=OLD * 1000)

    def write(self, rel: str, data: bytes) -> None:
        if self.local is not None:
            (self.local / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.local / rel).write_bytes(data)
        else:
            self.hdfs.write(f"{self.root}/{rel}", data=data, overwrite=True)

    def read(self, rel: str) -> bytes:
        if self.local is not None:
            return (self.local / rel).read_bytes()
        with self.hdfs.read(f"{self.root}/{rel}") as f:
            return f.read()

    def exists(self, rel: str) -> bool:
        if self.local is not None:
            return os.path.lexists(self.local / rel)
        return self.hdfs.status(f"{self.root}/{rel}", strict=False) is not None

    def copy_version(self, src: str, dest: str) -> None:
        """Copy every file of a stored version, manifest included, to another place in the tree."""
        for rel in ("model.pkl", MANIFEST_NAME):
            self.write(f"{dest}/{rel}", self.read(f"{src}/{rel}"))


def model(tmp_path: Path, data: bytes = b"\x80\x04model-bytes", name: str = "model.pkl") -> Path:
    p = tmp_path / "src" / hashlib.sha256(data).hexdigest()[:8] / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


# -- foreign entries: skipped by every reader -----------------------------------------------------

FOREIGN_IN_ROOT = ["lost+found", "_tmp", ".x", "bad name", "modèle"]
FOREIGN_IN_MODEL = ["lost+found", "_tmp", ".x", "bad name", "v1~"]


def plant_foreign(tree: Tree) -> list[str]:
    """Foreign entries where models, versions and staging directories would be; returns their paths."""
    planted = []
    for n in FOREIGN_IN_ROOT:
        tree.mkdir(n)
        planted.append(n)
    tree.write("m2", b"a plain file where a model directory would be")
    # a foreign directory that looks like a model with staging debris: clean must not touch it
    tree.mkdir("lost+found/.mdl-staging/v1.1.deadbeef")
    for n in FOREIGN_IN_MODEL:
        tree.mkdir(f"lr/{n}")
        planted.append(f"lr/{n}")
    tree.write("lr/v0", b"a plain file where a version directory would be")
    tree.copy_version("lr/v1", "lr/_tmp")  # even with a manifest inside, _tmp is no version id
    for n in ("junk", "lost+found", "v1.1.NOTHEX00", "v1.x.deadbeef"):
        tree.mkdir(f"lr/.mdl-staging/{n}")
        planted.append(f"lr/.mdl-staging/{n}")
    tree.write("lr/.mdl-staging/v1.1.cafebabe", b"a file named like a stage")
    planted += ["m2", "lost+found/.mdl-staging/v1.1.deadbeef", "lr/v0", "lr/.mdl-staging/v1.1.cafebabe"]
    return planted


def test_foreign_entries_are_skipped_by_listings_push_and_clean(client, tmp_path, caplog):
    client.push("lr", model(tmp_path, b"one"), version="v1")
    tree = Tree(client)
    planted = plant_foreign(tree)
    caplog.set_level(logging.DEBUG, logger="mdl.storage")

    assert client.storage.list_models() == ["lr"]
    assert [m.name for m in client.list_models()] == ["lr"]
    assert client.storage.list_versions("lr") == ["v1"]
    assert [v.version for v in client.list_versions("lr")] == ["v1"]
    skipped = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("mdl.storage"))
    for n in ("lost+found", "_tmp", "bad name", "m2", "v0"):
        assert repr(n) in skipped, (n, skipped)

    r = client.push("lr", model(tmp_path, b"two"))  # a default version: the newest is looked for
    assert r.changed and r.version != "v1"
    assert sorted(client.storage.list_versions("lr")) == sorted(["v1", r.version])
    assert client.pull("lr", r.version, dest=tmp_path / "pulled").files == 1

    assert client.storage.list_staging() == [] and client.storage.list_staging("lr") == []
    assert client.clean(older_than=0) == [] and client.clean("lr", older_than=0) == []
    assert client.clean("m2", older_than=0) == []  # a file where the model directory would be
    assert all(tree.exists(p) for p in planted), [p for p in planted if not tree.exists(p)]


def test_the_cli_lists_a_tree_with_foreign_entries(client, run_mdl, tmp_path):
    client.push("lr", model(tmp_path), version="v1")
    plant_foreign(Tree(client))
    for args in (["list"], ["list", "lr"], ["clean", "--older-than", "0"]):
        r = run_mdl(*args)
        assert r.returncode == 0, (args, r.stderr)
    r = run_mdl("push", "lr", str(model(tmp_path, b"other")))
    assert r.returncode == 0, r.stderr
    r = run_mdl("--debug", "list")  # silent by default; --debug says what was skipped and why
    assert r.returncode == 0 and "debug: mdl.storage: skipping 'lost+found'" in r.stderr.decode(), r.stderr
    assert "skipping" not in run_mdl("list").stderr.decode()


# -- manifests: checked against where they were read from -------------------------------------------


def test_a_manifest_describing_another_version_is_refused(client, tmp_path):
    client.push("lr", model(tmp_path), version="v1")
    tree = Tree(client)
    tree.copy_version("lr/v1", "lr/v2")  # a version copied whole under another id
    tree.copy_version("lr/v1", "other/v1")  # ... or under another model
    for name, version in (("lr", "v2"), ("other", "v1")):
        with pytest.raises(IntegrityError) as err:
            client.manifest(name, version)
        assert f"{name}/{version}" in err.value.message and err.value.exit_code == ExitCode.INTEGRITY
        with pytest.raises(IntegrityError):
            client.pull(name, version, dest=tmp_path / f"{name}-{version}")
        assert not (tmp_path / f"{name}-{version}").exists()
    assert [v.version for v in client.list_versions("lr")] == ["v1"]  # listed as not mdl's


def test_an_oversized_manifest_is_refused_without_reading_it(client, tmp_path):
    client.push("lr", model(tmp_path), version="v1")
    tree = Tree(client)
    if tree.local is not None:
        (tree.local / "lr" / "v2").mkdir()
        with open(tree.local / "lr" / "v2" / MANIFEST_NAME, "wb") as f:
            f.truncate(MANIFEST_MAX + 1)  # sparse: as large as it says, at no cost
    else:
        tree.write(f"lr/v2/{MANIFEST_NAME}", bytes(MANIFEST_MAX + 1))
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError) as err:
            client.manifest("lr", "v2")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "lr/v2" in err.value.message and str(MANIFEST_MAX) in err.value.message
    assert peak < MANIFEST_MAX // 8, f"{peak} bytes allocated to refuse it"
    assert [v.version for v in client.list_versions("lr")] == ["v1"]


# -- paths inside a version and local destinations ------------------------------------------------


def test_stored_paths_that_are_not_plain_are_refused(client, tmp_path):
    client.push("lr", model(tmp_path), version="v1")
    client.push("lr", model(tmp_path, b"v2"), version="v2")
    for rel in ("../v2/model.pkl", "/etc/passwd", "./model.pkl", "a//b", "a\\b", ""):
        with pytest.raises(IntegrityError):
            client.storage.read_bytes("lr", "v1", rel)
        with pytest.raises(IntegrityError):
            client.storage.open("lr", "v1", rel)
    dest = tmp_path / "x"
    with pytest.raises(IntegrityError):
        client.storage.download("lr", "v1", FileEntry("../v2/model.pkl", 2, "0" * 64), dest)
    assert not dest.exists()


def test_download_never_truncates_or_follows_its_destination(client, tmp_path):
    m = client.storage.read_manifest("lr", client.push("lr", model(tmp_path), version="v1").version)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "link"
    link.symlink_to(victim)
    for dest in (victim, link):
        with pytest.raises(IntegrityError) as err:
            client.storage.download("lr", "v1", m.files[0], dest)
        assert str(dest) in err.value.message
    assert victim.read_bytes() == b"precious" and link.is_symlink()


# -- the files being pushed ---------------------------------------------------------------------


def test_a_file_that_vanishes_while_it_is_pushed_is_not_found(client, tmp_path):
    gone = model(tmp_path)
    stage = client.storage.stage("lr", "v1")
    try:
        gone.unlink()
        with pytest.raises(NotFound) as err:
            stage.upload("model.pkl", gone)
    finally:
        stage.abort()
    assert err.value.exit_code == ExitCode.NOT_FOUND
    assert "vanished while it was being pushed" in err.value.message and str(gone) in err.value.message
    assert err.value.hint == "push again once the file is complete"


# -- the local backend: symlinks, FIFOs, the URL ----------------------------------------------------


@pytest.fixture
def local(tmp_path_factory) -> Client:
    d = tmp_path_factory.mktemp("embedded")
    c = Client(load(env={"MDL_STORAGE_URL": f"file://{d}/models", "MDL_REGISTRY_URL": f"sqlite://{d}/r.db"}))
    yield c
    c.close()


def forge(root: Path, name: str, version: str, data: bytes, where: Path | None = None) -> None:
    """Write a manifest of ``name/version`` describing ``model.pkl`` as ``data`` (valid in every way)."""
    e = [FileEntry("model.pkl", len(data), hashlib.sha256(data).hexdigest())]
    m = Manifest(name, version, e, digest_of(e), "2026-01-01T00:00:00.000000Z", "t@h", __version__, "pickle", "file")
    target = (where or root / name / version) / MANIFEST_NAME
    target.unlink(missing_ok=True)
    target.write_bytes(m.to_json())


@pytest.fixture
def outside(tmp_path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "passwd").write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    return d


def refused(client: Client, name: str, version: str, dest: Path) -> IntegrityError:
    with pytest.raises(IntegrityError) as err:
        client.pull(name, version, dest=dest, jobs=1)
    assert err.value.exit_code == ExitCode.INTEGRITY
    assert not dest.exists()
    return err.value


def test_pull_refuses_a_stored_file_replaced_by_a_symlink(local, outside, tmp_path):
    local.push("lr", model(tmp_path), version="v1")
    root = local.storage.root
    victim = outside / "passwd"
    before = victim.read_bytes()
    (root / "lr" / "v1" / "model.pkl").unlink()
    (root / "lr" / "v1" / "model.pkl").symlink_to(victim)
    forge(root, "lr", "v1", before)  # its sha256 made to match the victim's
    err = refused(local, "lr", "v1", tmp_path / "pulled")
    assert "lr/v1/model.pkl" in err.message and "symlink" in err.message
    assert victim.read_bytes() == before


def test_pull_refuses_a_symlinked_version_directory(local, outside, tmp_path):
    local.push("lr", model(tmp_path), version="v1")
    root = local.storage.root
    (outside / "v2").mkdir()
    (outside / "v2" / "model.pkl").write_bytes(b"elsewhere")
    forge(root, "lr", "v2", b"elsewhere", where=outside / "v2")
    (root / "lr" / "v2").symlink_to(outside / "v2")
    assert local.storage.list_versions("lr") == ["v1"]
    err = refused(local, "lr", "v2", tmp_path / "pulled")
    assert "lr/v2" in err.message and "symlink" in err.message
    assert (outside / "v2" / "model.pkl").read_bytes() == b"elsewhere"


def test_pull_refuses_a_symlinked_model_directory(local, outside, tmp_path):
    local.push("lr", model(tmp_path), version="v1")
    root = local.storage.root
    (outside / "m" / "v1").mkdir(parents=True)
    (outside / "m" / "v1" / "model.pkl").write_bytes(b"elsewhere")
    forge(root, "lr2", "v1", b"elsewhere", where=outside / "m" / "v1")
    (root / "lr2").symlink_to(outside / "m")
    assert local.storage.list_models() == ["lr"]
    assert local.storage.list_versions("lr2") == []
    err = refused(local, "lr2", "v1", tmp_path / "pulled")
    assert "lr2" in err.message and "symlink" in err.message


@pytest.mark.timeout(20)
def test_a_fifo_in_the_tree_is_refused_without_waiting(local, tmp_path):
    local.push("lr", model(tmp_path), version="v1")
    local.push("lr", model(tmp_path, b"two"), version="v2")
    v1 = local.storage.root / "lr" / "v1"
    (v1 / "model.pkl").unlink()
    os.mkfifo(v1 / "model.pkl")
    err = refused(local, "lr", "v1", tmp_path / "pulled")
    assert "lr/v1/model.pkl" in err.message and "not a regular file" in err.message
    (local.storage.root / "lr" / "v2" / MANIFEST_NAME).unlink()
    os.mkfifo(local.storage.root / "lr" / "v2" / MANIFEST_NAME)
    with pytest.raises(IntegrityError):
        local.manifest("lr", "v2")


def old_stage(parent: Path) -> Path:
    """What looks like the staging debris of a push that died long ago, holding a precious file."""
    d = parent / "v1.1.deadbeef"
    d.mkdir(parents=True)
    (d / "precious").write_bytes(b"keep me")
    os.utime(d, (OLD, OLD))
    return d


def test_clean_never_follows_a_symlinked_staging_directory(local, outside, tmp_path):
    local.push("lr", model(tmp_path), version="v1")
    victim = old_stage(outside / "staging")
    (local.storage.root / "lr" / ".mdl-staging").rmdir()
    (local.storage.root / "lr" / ".mdl-staging").symlink_to(outside / "staging")
    assert local.storage.list_staging() == [] and local.storage.list_staging("lr") == []
    assert local.clean(older_than=0) == [] and local.clean("lr", older_than=0) == []
    assert (victim / "precious").read_bytes() == b"keep me"


def test_clean_never_follows_a_symlinked_model_directory(local, outside, tmp_path):
    local.push("lr", model(tmp_path), version="v1")
    victim = old_stage(outside / "m" / ".mdl-staging")
    (local.storage.root / "lr3").symlink_to(outside / "m")
    assert local.storage.list_staging() == [] and local.storage.list_staging("lr3") == []
    assert local.clean(older_than=0) == [] and local.clean("lr3", older_than=0) == []
    assert (victim / "precious").read_bytes() == b"keep me"


def test_remove_staging_never_removes_through_a_symlink(local, outside, tmp_path):
    from mdl.errors import Escape
    from mdl.storage import StagingEntry

    local.push("lr", model(tmp_path), version="v1")
    victim = old_stage(outside / "staging")
    (local.storage.root / "lr" / ".mdl-staging").rmdir()
    (local.storage.root / "lr" / ".mdl-staging").symlink_to(outside / "staging")
    with pytest.raises(Escape):
        local.storage.remove_staging(StagingEntry("lr", str(local.storage.root / "lr" / ".mdl-staging" / victim.name),
                                                  1e9))
    assert (victim / "precious").read_bytes() == b"keep me"


def test_push_never_stages_through_a_planted_symlink(local, outside, tmp_path):
    local.push("lr", model(tmp_path), version="v1")
    (local.storage.root / "lr" / ".mdl-staging").rmdir()
    (local.storage.root / "lr" / ".mdl-staging").symlink_to(outside)
    (local.storage.root / "lr4").symlink_to(outside)
    for name in ("lr", "lr4"):
        with pytest.raises(IntegrityError) as err:
            local.push(name, model(tmp_path, b"new"))
        assert "symlink" in err.value.message
    assert sorted(p.name for p in outside.iterdir()) == ["passwd"]  # nothing created there
    assert local.storage.list_versions("lr") == ["v1"]


@pytest.mark.parametrize("url,problem", [
    ("file://", "has no path"),
    ("file://localhost", "has no path"),
    ("file:relative/models", "is not an absolute path"),
    ("file:///srv/models?x=1", "has a query or fragment"),
    ("file:///srv/models#top", "has a query or fragment"),
    ("file:///srv/mo%00dels", "NUL"),
])
def test_a_file_url_without_an_absolute_path_is_a_config_error(url, problem):
    with pytest.raises(ConfigError) as err:
        LocalStorage(url)
    assert problem in err.value.message and err.value.exit_code == ExitCode.CONFIG
    assert "file:///absolute/path" in err.value.hint


def test_file_urls_that_name_an_absolute_path():
    assert LocalStorage("file:///srv/my%20models").root == Path("/srv/my models")
    assert LocalStorage("file://localhost/srv/models").root == Path("/srv/models")
    assert LocalStorage("file:/srv/models").root == Path("/srv/models")
    assert LocalStorage("/srv/models").root == Path("/srv/models")


def test_the_cli_refuses_an_empty_file_url():
    env = {**os.environ, "MDL_STORAGE_URL": "file://"}
    r = subprocess.run([sys.executable, "-m", "mdl", "list"], env=env, capture_output=True, timeout=60)
    assert r.returncode == ExitCode.CONFIG, r.stderr
    assert b"storage.url 'file://' has no path" in r.stderr and b"file:///absolute/path" in r.stderr
