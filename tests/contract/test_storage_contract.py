"""The storage contract (tree, atomic publish, immutability, version ids), on every backend."""

from __future__ import annotations

import re

import pytest

from mdl import __version__
from mdl.errors import Conflict, InvalidInput, NotFound, VersionExists
from mdl.manifest import MANIFEST_NAME, FileEntry, Manifest, digest_of
from mdl.names import VERSION_TIME_FORMAT

from ..helpers import make_dir, make_model


def read(client, name, version, rel) -> bytes:
    with client.storage.open(name, version, rel) as f:
        return f.read()


def test_tree_holds_name_version_files_and_a_manifest(client, tmp_path):
    src = make_dir(tmp_path, {"weights.bin": b"w" * 1000, "config/params.json": b'{"a": 1}', "empty": b""})
    r = client.push("bert", src, version="v1")
    assert (r.name, r.version, r.files, r.bytes, r.changed) == ("bert", "v1", 3, 1008, True)
    assert client.storage.list_models() == ["bert"]
    assert client.storage.list_versions("bert") == ["v1"]
    assert read(client, "bert", "v1", "config/params.json") == b'{"a": 1}'
    assert read(client, "bert", "v1", "empty") == b""
    m = client.storage.read_manifest("bert", "v1")
    assert [(f.path, f.size) for f in m.files] == [("config/params.json", 8), ("empty", 0), ("weights.bin", 1000)]
    assert m.digest == r.digest == digest_of(m.files)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", m.created)
    assert "@" in m.creator and m.mdl_version == __version__
    assert (m.format, m.kind) == ("directory", "directory")
    assert read(client, "bert", "v1", MANIFEST_NAME) == m.to_json()


@pytest.mark.parametrize("filename,content,fmt", [
    ("model.pkl", b"anything", "pickle"),
    ("model.joblib", b"anything", "joblib"),
    ("model.onnx", b"anything", "onnx"),
    ("model.bin", b"\x80\x04\x95rest", "pickle"),
    ("model.bin", b"plain", "file"),
])
def test_format_is_detected_from_name_or_content(client, tmp_path, filename, content, fmt):
    r = client.push("m", make_model(tmp_path, content, filename))
    assert r.format == fmt == client.storage.read_manifest("m", r.version).format


def test_format_flag_overrides_detection(client, tmp_path):
    r = client.push("m", make_model(tmp_path), fmt="onnx")
    assert client.storage.read_manifest("m", r.version).format == "onnx"


def test_staged_version_is_invisible_until_published(client, tmp_path):
    stage = client.storage.stage("lr", "v1")
    entries = []
    try:
        for rel, data in (("a.bin", b"a" * 100), ("b.bin", b"b" * 50)):
            sha = stage.upload(rel, make_model(tmp_path, data, rel))
            entries.append(FileEntry(rel, len(data), sha))
        assert client.storage.list_versions("lr") == []
        with pytest.raises(NotFound):
            client.storage.read_manifest("lr", "v1")
        m = Manifest("lr", "v1", entries, digest_of(entries), "2026-01-01T00:00:00.000000Z", "t@h", __version__,
                     "directory", "directory")
        stage.write_manifest(m)
        assert client.storage.list_versions("lr") == []
        assert len(client.storage.list_staging("lr")) == 1
        stage.publish()
    except BaseException:
        stage.abort()
        raise
    assert client.storage.list_versions("lr") == ["v1"]
    assert client.storage.read_manifest("lr", "v1").digest == m.digest
    assert client.storage.list_staging("lr") == []


def test_publish_never_replaces_or_nests_into_an_existing_version(client, tmp_path):
    client.push("lr", make_model(tmp_path, b"first"), version="v1")
    stage = client.storage.stage("lr", "v1")
    p = make_model(tmp_path, b"second", "other.pkl")
    sha = stage.upload("other.pkl", p)
    e = [FileEntry("other.pkl", 6, sha)]
    stage.write_manifest(Manifest("lr", "v1", e, digest_of(e), "2026-01-01T00:00:00.000000Z", "t@h", __version__,
                                  "pickle", "file"))
    with pytest.raises(VersionExists):
        stage.publish()
    stage.abort()
    assert read(client, "lr", "v1", "model.pkl") == b"first"
    with pytest.raises(NotFound):
        read(client, "lr", "v1", "other.pkl")
    assert client.storage.list_staging("lr") == []


def test_aborted_stage_leaves_nothing(client, tmp_path):
    stage = client.storage.stage("lr", "v9")
    stage.upload("model.pkl", make_model(tmp_path))
    stage.abort()
    stage.abort()  # idempotent
    assert client.storage.list_versions("lr") == []
    assert client.storage.list_staging("lr") == []


def test_clean_removes_only_old_staging_debris(client, tmp_path):
    client.push("lr", make_model(tmp_path), version="v1")
    stage = client.storage.stage("lr", "v2")
    stage.upload("model.pkl", make_model(tmp_path, b"partial"))
    assert client.clean(older_than=3600) == []  # a push may still be running in a young stage
    found = client.clean(dry_run=True, older_than=0)
    assert [e.name for e in found] == ["lr"]
    assert len(client.storage.list_staging()) == 1
    removed = client.clean(older_than=0)
    assert [e.path for e in removed] == [e.path for e in found]
    assert client.storage.list_staging() == []
    assert client.storage.list_versions("lr") == ["v1"]
    assert read(client, "lr", "v1", "model.pkl") == b"\x80\x04model-bytes"


def test_remove_staging_refuses_paths_that_are_not_staging(client, tmp_path):
    from mdl.storage import StagingEntry

    client.push("lr", make_model(tmp_path), version="v1")
    for path in ("/", "lr", "lr/v1"):
        with pytest.raises(InvalidInput):
            client.storage.remove_staging(StagingEntry("lr", path, 1e9))
    assert client.storage.list_versions("lr") == ["v1"]


def test_pushing_other_content_to_an_existing_version_conflicts(client, tmp_path):
    client.push("lr", make_model(tmp_path, b"one"), version="v1")
    with pytest.raises(Conflict) as err:
        client.push("lr", make_model(tmp_path, b"two"), version="v1")
    assert err.value.exit_code == 4
    assert read(client, "lr", "v1", "model.pkl") == b"one"


def test_pushing_identical_content_again_is_a_no_op(client, tmp_path):
    src = make_model(tmp_path)
    first = client.push("lr", src)
    again = client.push("lr", src)
    explicit = client.push("lr", src, version=first.version)
    assert first.changed and not again.changed and not explicit.changed
    assert again.version == explicit.version == first.version
    assert client.storage.list_versions("lr") == [first.version]


def test_default_version_is_a_sortable_utc_timestamp_made_unique(client, tmp_path, monkeypatch):
    import mdl.client

    monkeypatch.setattr(mdl.client, "timestamp_version", lambda: "20261127T171300Z")
    a = client.push("lr", make_model(tmp_path, b"a"))
    b = client.push("lr", make_model(tmp_path, b"b"))
    c = client.push("lr", make_model(tmp_path, b"c"))
    assert [a.version, b.version, c.version] == ["20261127T171300Z", "20261127T171300Z-01", "20261127T171300Z-02"]
    assert sorted([c.version, a.version, b.version]) == [a.version, b.version, c.version]
    monkeypatch.undo()
    d = client.push("lr", make_model(tmp_path, b"d"))
    assert re.fullmatch(r"\d{8}T\d{6}Z", d.version)
    from datetime import datetime

    datetime.strptime(d.version, VERSION_TIME_FORMAT)


def test_concurrent_pushes_of_one_version_have_exactly_one_winner(make_client, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    srcs = [make_model(tmp_path / str(i), f"content-{i}".encode()) for i in range(4)]

    def push(i: int):
        try:
            return make_client().push("lr", srcs[i], version="v1")
        except Conflict:
            return None

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(push, range(4)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    c = make_client()
    assert c.storage.list_versions("lr") == ["v1"]
    assert c.storage.read_manifest("lr", "v1").digest == winners[0].digest
    assert c.storage.list_staging() == []
