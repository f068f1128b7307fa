"""Exact output of each command, in the manner of sqlite-utils' CLI tests."""

from __future__ import annotations

import json

import pytest

import mdl.client
import mdl.publish

FIXED = "2026-11-27T17:13:00.000000Z"


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "model.pkl"
    p.write_bytes(b"\x80\x04weights")
    return p


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(mdl.publish, "now_iso", lambda: FIXED)
    monkeypatch.setattr(mdl.client, "creator", lambda: "ci@build")


def test_push_prints_the_version_on_stdout_and_a_note_on_stderr(cli, model, frozen):
    r = cli("push", "lr", str(model), "--version", "v1")
    assert r.exit_code == 0
    assert r.stdout == "v1\n"
    assert r.stderr.startswith("pushed lr/v1: 1 file, 9 B, sha256:")
    again = cli("push", "lr", str(model), "--version", "v1")
    assert again.stdout == "v1\n" and again.stderr.startswith("unchanged: lr/v1 already holds this content")


def test_push_json_contract(cli, model, frozen):
    r = cli("push", "lr", str(model), "--version", "v1", "--promote", "-o", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == {
        "name": "lr", "version": "v1", "digest": doc["digest"], "files": 1, "bytes": 9, "format": "pickle",
        "created": FIXED, "changed": True, "uploaded": True, "promoted": "latest",
    }
    assert doc["digest"].startswith("sha256:") and len(doc["digest"]) == 71
    assert json.loads(cli("push", "lr", str(model), "--json").stdout)["changed"] is False


def test_list_tables_and_json(cli, model, tmp_path, frozen):
    cli("push", "lr", str(model), "--version", "v1", "--promote")
    other = tmp_path / "d"
    other.mkdir()
    (other / "a.bin").write_bytes(b"x" * 2048)
    cli("push", "bert", str(other), "--version", "b1")
    r = cli("list")
    assert r.exit_code == 0
    assert r.stdout == "NAME\tALIASES\tVERSIONS\nbert\t-\t1\nlr\tlatest=v1\t1\n"  # piped: tab-separated
    assert json.loads(cli("list", "-o", "json").stdout) == {"models": [
        {"name": "bert", "aliases": {}, "versions": 1}, {"name": "lr", "aliases": {"latest": "v1"}, "versions": 1}]}
    assert cli("list", "-q").stdout == "bert\nlr\n"
    r = cli("list", "bert")
    assert r.stdout == (
        "VERSION\tCREATED\tSIZE\tFILES\tFORMAT\tALIASES\n" "b1\t2026-11-27 17:13:00Z\t2.0 KiB\t1\tdirectory\t-\n"
    )
    doc = json.loads(cli("list", "lr", "--json").stdout)
    assert doc["name"] == "lr" and doc["aliases"] == {"latest": "v1"}
    assert doc["versions"] == [{"version": "v1", "bytes": 9, "files": 1, "created": FIXED, "creator": "ci@build",
                                "format": "pickle", "digest": doc["versions"][0]["digest"], "aliases": ["latest"],
                                "pinned": False}]


def test_promote_rollback_history(cli, model, tmp_path, frozen, monkeypatch):
    cli("push", "lr", str(model), "--version", "v1")
    model.write_bytes(b"v2 bytes")
    cli("push", "lr", str(model), "--version", "v2")
    r = cli("promote", "lr", "v1")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "lr:latest -> v1 (was unset)\n")
    r = cli("promote", "lr", "v2", "-o", "json")
    assert json.loads(r.stdout) == {"name": "lr", "alias": "latest", "previous": "v1", "version": "v2",
                                    "changed": True, "action": "promote"}
    r = cli("promote", "lr", "v2")
    assert (r.exit_code, r.stderr) == (0, "unchanged: lr:latest already points at v2\n")
    r = cli("rollback", "lr")
    assert (r.exit_code, r.stderr) == (0, "lr:latest -> v1 (was v2)\n")
    doc = json.loads(cli("history", "lr", "-o", "json").stdout)
    assert doc["name"] == "lr"
    assert [(h["alias"], h["from"], h["to"], h["action"]) for h in doc["history"]] == [
        ("latest", None, "v1", "promote"), ("latest", "v1", "v2", "promote"), ("latest", "v2", "v1", "rollback")]
    assert set(doc["history"][0]) == {"seq", "alias", "from", "to", "who", "at", "action", "version", "rule"}
    table = cli("history", "lr").stdout.splitlines()
    assert table[0].split("\t") == ["SEQ", "WHEN", "ALIAS", "ACTION", "FROM", "TO", "WHO"]
    assert len(table) == 4 and table[-1].split("\t")[2:6] == ["latest", "rollback", "v2", "v1"]


def test_pull_prints_the_directory(cli, model, tmp_path):
    cli("push", "lr", str(model), "--version", "v1", "--promote")
    dest = tmp_path / "out"
    r = cli("pull", "lr", "-d", str(dest))
    assert (r.exit_code, r.stdout) == (0, f"{dest}\n")
    assert r.stderr == "pulled lr/v1: 1 file, 9 B, verified\n"
    r = cli("pull", "lr", "v1", "-d", str(dest), "-o", "json")
    doc = json.loads(r.stdout)
    assert doc == {"name": "lr", "version": "v1", "digest": doc["digest"], "path": str(dest), "files": 1,
                   "bytes": 9, "changed": False}


def test_clean_dry_run_and_json(cli, model, client):
    cli("push", "lr", str(model), "--version", "v1")
    stage = client.storage.stage("lr", "v2")
    stage.upload("model.pkl", model)
    r = cli("clean", "--older-than", "0", "--dry-run")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 1 and ".mdl-staging" in r.stdout
    assert r.stderr == "would remove 1 staging path\n"
    doc = json.loads(cli("clean", "--older-than", "0", "--json").stdout)
    assert doc["changed"] is True and doc["dry_run"] is False and len(doc["removed"]) == 1
    assert client.storage.list_staging() == []


def test_config_shows_values_and_origins(cli, tmp_path, monkeypatch):
    p = tmp_path / "c.yaml"
    p.write_text("transfer:\n  jobs: 2\n")
    r = cli("--config", str(p), "config", "-o", "json", env={"MDL_OUTPUT": "table"})
    doc = json.loads(r.stdout)
    assert doc["file"] == str(p)
    assert doc["settings"]["transfer.jobs"] == {"value": 2, "origin": f"file {p}"}
    assert doc["settings"]["output"] == {"value": "table", "origin": "env MDL_OUTPUT"}
    assert doc["settings"]["progress"] == {"value": "auto", "origin": "default"}
    r = cli("--storage", "file:///tmp/elsewhere", "config")
    line = next(x for x in r.stdout.splitlines() if x.startswith("storage.url"))
    assert line == "storage.url\tfile:///tmp/elsewhere\tflag"


def test_version_and_help():
    from typer.testing import CliRunner

    from mdl import __version__
    from mdl.cli.app import app

    r = CliRunner().invoke(app, ["--version"])
    assert r.stdout == f"mdl {__version__}\n"
    r = CliRunner().invoke(app, ["--help"])
    assert r.exit_code == 0 and "Exit codes: 0 success" in r.stdout and "8 integrity failure" in r.stdout
