import dataclasses
import hashlib
import json
import os

import pytest

from mdl.errors import IntegrityError, InvalidInput, NotFound
from mdl.manifest import (MANIFEST_NAME, FileEntry, Manifest, check_relpath, detect_format, digest_of, hash_file,
                          scan_source)


def entries():
    return [FileEntry("b", 2, "b" * 64), FileEntry("a", 1, "a" * 64)]


def test_digest_ignores_order_but_not_content():
    assert digest_of(entries()) == digest_of(list(reversed(entries())))
    assert digest_of(entries()) != digest_of([FileEntry("b", 2, "b" * 64), FileEntry("a", 1, "ab" * 32)])
    assert digest_of(entries()) != digest_of([FileEntry("b", 2, "b" * 64), FileEntry("c", 1, "a" * 64)])
    assert digest_of(entries()).startswith("sha256:")


def test_manifest_roundtrip_and_tamper_detection():
    m = Manifest("lr", "v1", entries(), digest_of(entries()), "2026-11-27T00:00:00.000000Z", "u@h", "0.1.0",
                 "pickle", "file")
    doc = json.loads(m.to_json())
    assert doc["bytes"] == 3 and doc["schema"] == 1
    assert Manifest.from_json(m.to_json()) == m
    doc["files"][0]["sha256"] = "f" * 64
    with pytest.raises(IntegrityError):
        Manifest.from_json(json.dumps(doc).encode())
    with pytest.raises(IntegrityError):
        Manifest.from_json(b"{not json")


def test_to_json_is_every_field_and_the_byte_count():
    m = Manifest("lr", "v1", entries(), digest_of(entries()), "2026-11-27T00:00:00.000000Z", "u@h", "0.1.0",
                 "pickle", "file", extra={"k": [1, {"x": 2}]})
    expected = {**dataclasses.asdict(m), "bytes": 3}
    assert m.to_json() == (json.dumps(expected, indent=2, sort_keys=True) + "\n").encode()


def test_hash_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert hash_file(p) == (3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    (tmp_path / "empty").write_bytes(b"")
    assert hash_file(tmp_path / "empty") == (0, hashlib.sha256().hexdigest())
    big = os.urandom(3 * 1024 * 1024 + 5)  # several reads
    (tmp_path / "big").write_bytes(big)
    seen: list[int] = []
    assert hash_file(tmp_path / "big", seen.append) == (len(big), hashlib.sha256(big).hexdigest())
    assert sum(seen) == len(big)


@pytest.mark.parametrize("rel", ["/abs", "a/../b", "./a", "a:b", MANIFEST_NAME])
def test_relpaths_that_cannot_be_stored_are_refused(rel):
    with pytest.raises(InvalidInput):
        check_relpath(rel)


def test_scan_source(tmp_path):
    with pytest.raises(NotFound):
        scan_source(tmp_path / "missing")
    (tmp_path / "d").mkdir()
    with pytest.raises(InvalidInput):
        scan_source(tmp_path / "d")
    (tmp_path / "d" / "z").write_bytes(b"1")
    (tmp_path / "d" / "sub").mkdir()
    (tmp_path / "d" / "sub" / "a").write_bytes(b"2")
    kind, files = scan_source(tmp_path / "d")
    assert kind == "directory" and [r for r, _ in files] == ["sub/a", "z"]
    kind, files = scan_source(tmp_path / "d" / "z")
    assert kind == "file" and [r for r, _ in files] == ["z"]


def test_detect_format(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert detect_format("directory", [("saved_model.pb", tmp_path / "saved_model.pb")]) == "tensorflow-savedmodel"
    assert detect_format("directory", [("x", tmp_path / "saved_model.pb")]) == "directory"


def test_scan_follows_symlinked_directories_and_refuses_loops(tmp_path):
    shared = tmp_path / "shared"
    (shared / "deep").mkdir(parents=True)
    (shared / "deep" / "w.bin").write_bytes(b"w")
    src = tmp_path / "model"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.symlink(shared, src / "weights")  # a model directory assembled from links is pushed whole
    kind, files = scan_source(src)
    assert kind == "directory" and [rel for rel, _ in files] == ["a.txt", "weights/deep/w.bin"]
    os.symlink(src, shared / "deep" / "up")  # model/weights/deep/up -> model: a loop
    with pytest.raises(InvalidInput, match="is a symlink loop"):
        scan_source(src)
