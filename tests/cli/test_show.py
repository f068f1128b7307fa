"""mdl show: a version seen whole without pulling it."""

import hashlib
import json

import pytest


@pytest.fixture
def lr(cli, tmp_path):
    """lr/v1 (two files, latest and stable point at it) and lr/v2 (pushed, not promoted)."""
    src = tmp_path / "v1"
    src.mkdir()
    (src / "model.bin").write_bytes(b"w" * 2048)
    (src / "config.json").write_bytes(b"{}")
    assert cli("push", "lr", str(src), "--version", "v1", "--promote").exit_code == 0
    assert cli("promote", "lr", "v1", "--alias", "stable").exit_code == 0
    (tmp_path / "m2.bin").write_bytes(b"two")
    assert cli("push", "lr", str(tmp_path / "m2.bin"), "--version", "v2").exit_code == 0


def test_show_the_version_latest_names_as_a_person_reads_it(cli, client, lr):
    r = cli("show", "lr")
    assert r.exit_code == 0 and r.stderr == ""
    m = client.manifest("lr", "v1")
    who = m.creator
    h = client.history("lr")
    at = {e.alias: e.at[:19].replace("T", " ") + "Z" for e in h}
    sha = {f: hashlib.sha256(b).hexdigest() for f, b in {"config.json": b"{}", "model.bin": b"w" * 2048}.items()}
    assert r.stdout == (
        "Name:      lr\n"
        "Version:   v1\n"
        f"Digest:    {m.digest}\n"
        "Format:    directory\n"
        f"Created:   {m.created[:19].replace('T', ' ')}Z by {who}\n"
        "Size:      2.0 KiB in 2 files\n"
        "Aliases:   latest, stable\n"
        "Pinned:    no\n"
        f"Promoted:  latest by {who} at {at['latest']} (promote, #1)\n"
        f"Promoted:  stable by {who} at {at['stable']} (promote, #2)\n"
        "\n"
        "Files:\n"
        "PATH\tSIZE\tSHA256\n"
        f"config.json\t2 B\t{sha['config.json']}\n"
        f"model.bin\t2.0 KiB\t{sha['model.bin']}\n"
        "\n"
        "Replicas:\n"
        "  none\n"
    )


def test_show_json_names_every_file_and_the_replicas_running_it(cli, client, lr):
    handle = client.register_replica("lr", "host-a-1", {"kind": "serve", "state": "ready", "loaded": "v2",
                                                          "alias": "canary", "address": "http://127.0.0.1:9"})
    try:
        doc = json.loads(cli("show", "lr", "v2", "-o", "json").stdout)
    finally:
        handle.close()
    assert doc["name"] == "lr" and doc["version"] == "v2" and doc["aliases"] == [] and doc["promotions"] == []
    assert doc["files"] == [{"path": "m2.bin", "size": 3, "sha256": hashlib.sha256(b"two").hexdigest()}]
    assert [(r["id"], r["state"], r["loaded"]) for r in doc["replicas"]] == [("host-a-1", "ready", "v2")]
    assert doc["bytes"] == 3 and doc["digest"].startswith("sha256:")


def test_show_by_alias_and_quiet(cli, lr):
    assert cli("show", "lr", "--alias", "stable", "-q").stdout == "v1\n"


@pytest.mark.parametrize("argv, stderr", [
    (["show", "nope"], "error: model 'nope' does not exist\nhint: see the models with: mdl list\n"),
    (["show", "lr", "v9"], "error: version lr/v9 does not exist\nhint: see the versions with: mdl list lr\n"),
    (["show", "lr", "-a", "canary"], "error: model 'lr' has no alias 'canary'\n"
                                     "hint: promote a version first: mdl promote lr VERSION --alias canary\n"),
])
def test_show_names_what_is_missing(cli, lr, argv, stderr):
    r = cli(*argv)
    assert (r.exit_code, r.stdout, r.stderr) == (3, "", stderr)
