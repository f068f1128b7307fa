"""Bad input: one ``error:`` line (and at most one ``hint:``), the documented exit code, no traceback,
and storage and registry exactly as they were."""

from __future__ import annotations

import os

import pytest

from ..conftest import write_stored

USAGE, NOT_FOUND, CONFLICT, CONFIG, INTEGRITY = 2, 3, 4, 7, 8


@pytest.fixture
def world(cli, client, tmp_path):
    """lr with v1 (latest) and v2; a pulled copy; the paths the cases use."""
    m = tmp_path / "model.pkl"
    m.write_bytes(b"\x80\x04one")
    assert cli("push", "lr", str(m), "--version", "v1", "--promote").exit_code == 0
    m2 = tmp_path / "model2.pkl"
    m2.write_bytes(b"\x80\x04two")
    assert cli("push", "lr", str(m2), "--version", "v2").exit_code == 0
    (tmp_path / "empty").mkdir()
    (tmp_path / "colon").mkdir()
    (tmp_path / "colon" / "a:b").write_bytes(b"x")
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "pipe")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    (tmp_path / "unknown-key.yaml").write_text("storage:\n  urll: x\n")
    (tmp_path / "broken.yaml").write_text("storage: [\n")
    (tmp_path / "wrong-type.yaml").write_text("transfer:\n  jobs: lots\n")
    (tmp_path / "reserved").mkdir()
    (tmp_path / "reserved" / ".mdl-manifest.json").write_text("{}")
    return tmp_path


def snapshot(client):
    s = client.storage
    return {
        "models": s.list_models(),
        "versions": {n: sorted((v, s.read_manifest(n, v).digest) for v in s.list_versions(n)) for n in s.list_models()},
        "staging": [e.path for e in s.list_staging()],
        "pointers": {n: client.registry.get(n).aliases for n in client.registry.list_models()},
        "history": {n: len(client.registry.history(n)) for n in client.registry.list_models()},
    }


CASES = [
    # (id, argv with {t} for the temp dir, exit code, text the error line must contain)
    ("name-slash", ["push", "bad/name", "{t}/model.pkl"], USAGE, "invalid model name"),
    ("name-dot", ["push", ".hidden", "{t}/model.pkl"], USAGE, "invalid model name"),
    ("name-dotdot", ["promote", "a..b", "v1"], USAGE, "invalid model name"),
    ("name-too-long", ["list", "x" * 129], USAGE, "at most 128"),
    ("version-colon", ["push", "lr", "{t}/model.pkl", "--version", "v:1"], USAGE, "invalid version"),
    ("version-slash", ["pull", "lr", "a/b", "-d", "{t}/o"], USAGE, "invalid version"),
    ("alias-bad", ["promote", "lr", "v1", "--alias", "-x"], USAGE, "invalid alias"),
    ("missing-path", ["push", "lr", "{t}/missing.pkl"], NOT_FOUND, "does not exist"),
    ("dangling-symlink", ["push", "lr", "{t}/dangling"], NOT_FOUND, "does not exist"),
    ("special-file", ["push", "lr", "{t}/fifo"], USAGE, "not a regular file"),
    ("empty-dir", ["push", "lr", "{t}/empty"], USAGE, "holds no files"),
    ("colon-in-file", ["push", "lr", "{t}/colon"], USAGE, "contains ':'"),
    ("reserved-file", ["push", "lr", "{t}/reserved"], USAGE, "reserved"),
    ("unknown-format", ["push", "lr", "{t}/model.pkl", "--format", "tarball"], USAGE, "unknown format"),
    ("immutable", ["push", "lr", "{t}/model.pkl", "--version", "v2"], CONFLICT, "already exists with different"),
    ("promote-missing-version", ["promote", "lr", "v404"], NOT_FOUND, "does not exist"),
    ("promote-unknown-model", ["promote", "nomodel", "v1"], NOT_FOUND, "does not exist"),
    ("promote-expect", ["promote", "lr", "v2", "--expect", "v2"], CONFLICT, "points at v1, not v2"),
    ("rollback-no-history", ["rollback", "lr"], NOT_FOUND, "no earlier version"),
    ("rollback-unknown-alias", ["rollback", "lr", "--alias", "prod"], NOT_FOUND, "no earlier version"),
    ("pull-unknown-model", ["pull", "nomodel", "-d", "{t}/o"], NOT_FOUND, "does not exist"),
    ("pull-unknown-version", ["pull", "lr", "v9", "-d", "{t}/o"], NOT_FOUND, "does not exist"),
    ("pull-unknown-alias", ["pull", "lr", "--alias", "prod", "-d", "{t}/o"], NOT_FOUND, "no alias 'prod'"),
    ("pull-version-and-alias", ["pull", "lr", "v1", "--alias", "latest", "-d", "{t}/o"], USAGE, "not both"),
    ("pull-foreign-dir", ["pull", "lr", "-d", "{t}/foreign"], CONFLICT, "holds no mdl version"),
    ("pull-onto-file", ["pull", "lr", "-d", "{t}/model.pkl"], USAGE, "not a directory"),
    ("list-unknown-model", ["list", "nomodel"], NOT_FOUND, "does not exist"),
    ("history-unknown-model", ["history", "nomodel"], NOT_FOUND, "does not exist"),
    ("config-unknown-key", ["--config", "{t}/unknown-key.yaml", "list"], CONFIG, "unknown configuration key 'storage.urll'"),
    ("config-malformed", ["--config", "{t}/broken.yaml", "list"], CONFIG, "not valid YAML"),
    ("config-wrong-type", ["--config", "{t}/wrong-type.yaml", "list"], CONFIG, "transfer.jobs"),
    ("config-missing-file", ["--config", "{t}/nope.yaml", "list"], CONFIG, "does not exist"),
    ("config-unknown-context", ["--context", "prod", "list"], CONFIG, "context 'prod' is not defined"),
    ("storage-bad-scheme", ["--storage", "s3://bucket/x", "list"], CONFIG, "unknown scheme 's3'"),
    ("registry-bad-scheme", ["--registry", "etcd://h:1", "list"], CONFIG, "unknown scheme 'etcd'"),
    ("output-format", ["list", "-o", "xml"], USAGE, "unknown output format"),
]


@pytest.mark.parametrize("argv,code,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line(cli, client, world, argv, code, needle):
    before = snapshot(client)
    r = cli(*[a.format(t=world) for a in argv])
    lines = r.stderr.splitlines()
    assert r.exit_code == code, r.stderr
    assert r.stdout == ""
    assert lines[0].startswith("error: ") and needle in lines[0], lines
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), lines
    assert "Traceback" not in r.stderr
    assert snapshot(client) == before
    assert (world / "foreign" / "keep.txt").read_text() == "mine"
    assert not (world / "o").exists()


def test_bad_env_value_is_a_config_error(cli, world, client):
    before = snapshot(client)
    r = cli("list", env={"MDL_TRANSFER_JOBS": "many"})
    assert r.exit_code == CONFIG and r.stderr.startswith("error: transfer.jobs in env MDL_TRANSFER_JOBS")
    assert snapshot(client) == before


def test_corrupted_stored_file_is_an_integrity_failure(cli, world, client):
    write_stored(client, "lr", "v1", "model.pkl", b"\x80\x04bad")
    before = snapshot(client)
    r = cli("pull", "lr", "-d", str(world / "o"))
    assert r.exit_code == INTEGRITY
    assert r.stderr.splitlines()[0].startswith("error: lr/v1/model.pkl does not match its manifest")
    assert not (world / "o").exists() and snapshot(client) == before
    assert [p.name for p in world.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("argv", [["push", "lr"], ["frobnicate"], ["pull", "lr", "-j", "0"], ["list", "--bogus"]])
def test_usage_errors_exit_2_without_traceback(cli, world, client, argv):
    before = snapshot(client)
    r = cli(*argv)
    assert r.exit_code == USAGE
    assert "Error:" in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    assert snapshot(client) == before


def test_debug_shows_the_traceback(cli, world):
    r = cli("--debug", "promote", "lr", "v404")
    assert r.exit_code == NOT_FOUND and "Traceback" in r.stderr and "error: version lr/v404" in r.stderr
