import os

from mdl.versiondir import VersionDir
from mdl.manifest import MANIFEST_NAME, FileEntry, Manifest, digest_of


def manifest(version: str, sha: str = "a" * 64) -> Manifest:
    files = [FileEntry("m.pkl", 1, sha)]
    return Manifest("lr", version, files, digest_of(files), "2026-11-27T00:00:00.000000Z", "u@h", "0.1.0",
                    "pickle", "file")


def test_a_manifest_is_parsed_once_while_its_file_stays_the_same(tmp_path):
    cache = VersionDir(tmp_path)
    (cache.path("v1")).mkdir()
    path = cache.path("v1") / MANIFEST_NAME
    path.write_bytes(manifest("v1").to_json())
    first = cache.manifest("v1")
    assert first == manifest("v1") and cache.manifest("v1") is first
    tmp = path.with_name("new")
    tmp.write_bytes(manifest("v1", "b" * 64).to_json())
    os.replace(tmp, path)  # another file (a re-download): read again
    assert cache.manifest("v1") == manifest("v1", "b" * 64)
    path.write_bytes(b"{damaged")
    assert cache.manifest("v1") is None
    path.unlink()
    assert cache.manifest("v1") is None and cache.manifest("nope") is None


def test_local_versions_skip_files_and_partials(tmp_path):
    cache = VersionDir(tmp_path)
    for v in ("v2", "v1", ".v3.mdl-tmp-ab"):
        cache.path(v).mkdir()
    (cache.versions / "stray-file").write_text("x")
    assert cache.local_versions() == ["v1", "v2"]
