"""Bad input: one ``error:`` line (and at most one ``hint:``), the documented exit code, no traceback,
and storage, registry and the file system around exactly as they were."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest

from ..contract.backdoor import read_pointer, write_pointer
from ..helpers import BACKENDS, write_stored

FAILED, USAGE, NOT_FOUND, CONFLICT, CONFIG, INTEGRITY = 1, 2, 3, 4, 7, 8


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
    (tmp_path / "loop" / "sub").mkdir(parents=True)
    (tmp_path / "loop" / "sub" / "model.pkl").write_bytes(b"\x80\x04loop")
    os.symlink(tmp_path / "loop", tmp_path / "loop" / "sub" / "back")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    (tmp_path / "unknown-key.yaml").write_text("storage:\n  urll: x\n")
    (tmp_path / "broken.yaml").write_text("storage: [\n")
    (tmp_path / "wrong-type.yaml").write_text("transfer:\n  jobs: lots\n")
    (tmp_path / "reserved").mkdir()
    (tmp_path / "reserved" / ".mdl-manifest.json").write_text("{}")
    (tmp_path / "model3.pkl").write_bytes(b"\x80\x04three")
    (tmp_path / "bad.j2").write_text("{{ name }}\n{% for %}\n")
    # alias stable: v1 then v2, so `rollback -a stable` would move it back to v1
    assert cli("promote", "lr", "v1", "--alias", "stable").exit_code == 0
    assert cli("promote", "lr", "v2", "--alias", "stable").exit_code == 0
    for fname, text in CONFIG_FILES.items():
        (tmp_path / fname).write_bytes(text if isinstance(text, bytes) else text.encode())
    return tmp_path


CONFIG_FILES: dict[str, str | bytes] = {  # bad config files, one per kind of mistake
    "latin1.yaml": "output: json  # café\n".encode("latin-1"),
    "cc-list.yaml": "current-context: [a]\ncontexts:\n  a: {}\n",
    "cc-not-mapping.yaml": "current-context: a\ncontexts:\n  a: [output, json]\n",
    "contexts-list.yaml": "contexts: [a, b]\n",
    "context-name-number.yaml": "contexts:\n  1:\n    output: json\n",
    "timeout-nan.yaml": "storage:\n  timeout: .nan\n",
    "timeout-inf.yaml": "registry:\n  timeout: .inf\n",
    "jobs-huge.yaml": "transfer:\n  jobs: 100000\n",
    "jobs-float.yaml": "transfer:\n  jobs: 2.5\n",
    "section-scalar.yaml": "registry: sqlite:///tmp/x.db\n",
    "url-list.yaml": "storage:\n  url: [file:///a, file:///b]\n",
    "url-nul.yaml": "storage:\n  url: \"file:///tmp/a\\0b\"\n",
    "key-number.yaml": "1: x\n",
    "progress-bool.yaml": "progress: true\n",
}


def tree(root):
    """Every path under ``root`` with its type, size and (for files) content digest."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                out[str(p)] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                out[str(p)] = ("dir" if p.is_dir() else "other", None)
    return out


def outside(world):
    """The file system a command could touch besides storage and registry: the test's directory,
    the caches and the config home."""
    return {"world": tree(world), "cache": tree(os.environ["XDG_CACHE_HOME"]),
            "config": tree(os.environ["XDG_CONFIG_HOME"])}


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
    ("rollback-unknown-alias", ["rollback", "lr", "--alias", "prod"], NOT_FOUND, "alias 'prod' of lr is not set"),
    ("pull-unknown-model", ["pull", "nomodel", "-d", "{t}/o"], NOT_FOUND, "does not exist"),
    ("pull-unknown-version", ["pull", "lr", "v9", "-d", "{t}/o"], NOT_FOUND, "does not exist"),
    ("pull-unknown-alias", ["pull", "lr", "--alias", "prod", "-d", "{t}/o"], NOT_FOUND, "no alias 'prod'"),
    ("pull-version-and-alias", ["pull", "lr", "v1", "--alias", "latest", "-d", "{t}/o"], USAGE, "not both"),
    ("pull-foreign-dir", ["pull", "lr", "-d", "{t}/foreign"], CONFLICT, "holds no mdl version"),
    ("pull-onto-file", ["pull", "lr", "-d", "{t}/model.pkl"], USAGE, "not a directory"),
    ("list-unknown-model", ["list", "nomodel"], NOT_FOUND, "does not exist"),
    ("history-unknown-model", ["history", "nomodel"], NOT_FOUND, "does not exist"),
    ("config-unknown-key", ["--config", "{t}/unknown-key.yaml", "list"], CONFIG,
     "unknown configuration key 'storage.urll'"),
    ("config-malformed", ["--config", "{t}/broken.yaml", "list"], CONFIG, "not valid YAML"),
    ("config-wrong-type", ["--config", "{t}/wrong-type.yaml", "list"], CONFIG, "transfer.jobs"),
    ("config-missing-file", ["--config", "{t}/nope.yaml", "list"], CONFIG, "does not exist"),
    ("config-unknown-context", ["--context", "prod", "list"], CONFIG, "context 'prod' is not defined"),
    ("storage-bad-scheme", ["--storage", "s3://bucket/x", "list"], CONFIG, "unknown scheme 's3'"),
    ("registry-bad-scheme", ["--registry", "etcd://h:1", "list"], CONFIG, "unknown scheme 'etcd'"),
    ("output-format", ["list", "-o", "xml"], USAGE, "unknown output format"),
    # -o is checked while the command line is parsed: nothing happens before it is
    ("promote-output", ["promote", "lr", "v2", "-o", "xml"], USAGE, "unknown output format 'xml'"),
    ("rollback-output", ["rollback", "lr", "--alias", "stable", "-o", "xml"], USAGE, "unknown output format 'xml'"),
    ("push-output", ["push", "lr", "{t}/model3.pkl", "--promote", "-o", "xml"], USAGE, "unknown output format"),
    ("pull-output", ["pull", "lr", "-d", "{t}/o", "--output", "yaml"], USAGE, "unknown output format 'yaml'"),
    ("clean-output", ["clean", "--older-than", "0", "-o", "xml"], USAGE, "unknown output format 'xml'"),
    ("status-output", ["status", "lr", "-o", "xml"], USAGE, "unknown output format 'xml'"),
    ("history-output", ["history", "lr", "-o", "xml"], USAGE, "unknown output format 'xml'"),
    ("endpoints-output", ["endpoints", "lr", "-o", "xml"], USAGE, "unknown output format 'xml'"),
    ("config-output", ["config", "-o", "xml"], USAGE, "unknown output format 'xml'"),
    ("watch-output", ["watch", "lr", "-d", "{t}/o", "--once", "-o", "xml"], USAGE, "unknown output format 'xml'"),
    ("output-empty", ["list", "-o", ""], USAGE, "unknown output format ''"),
    # promote's --wait options without --wait, and --expect, are checked before the move
    ("promote-min-ready-without-wait", ["promote", "lr", "v2", "--min-ready", "1"], USAGE, "--min-ready needs --wait"),
    ("promote-rollback-on-failure-without-wait", ["promote", "lr", "v2", "--rollback-on-failure"], USAGE,
     "--rollback-on-failure needs --wait"),
    ("promote-timeout-without-wait", ["promote", "lr", "v2", "--timeout", "5"], USAGE, "--timeout needs --wait"),
    ("promote-expect-invalid", ["promote", "lr", "v2", "--expect", "../v1"], USAGE, "invalid version"),
    # watch: hooks and names are checked before the local directory is made or anything downloaded
    ("watch-signal-unknown", ["watch", "lr", "-d", "{t}/o", "--signal", "FOO", "--pidfile", "{t}/pid"], USAGE,
     "--signal 'FOO' is not a signal"),
    ("watch-signal-without-pidfile", ["watch", "lr", "-d", "{t}/o", "--signal", "HUP"], USAGE,
     "--signal needs --pidfile"),
    ("watch-pidfile-without-signal", ["watch", "lr", "-d", "{t}/o", "--pidfile", "{t}/pid"], USAGE,
     "--pidfile needs --signal"),
    ("watch-webhook-not-http", ["watch", "lr", "-d", "{t}/o", "--webhook", "file:///etc/passwd"], USAGE,
     "is not an http(s) URL"),
    ("watch-webhook-bad-port", ["watch", "lr", "-d", "{t}/o", "--webhook", "http://h:99999/"], USAGE,
     "is not an http(s) URL"),
    ("watch-alias-bad", ["watch", "lr", "-d", "{t}/o", "--alias", "../x"], USAGE, "invalid alias"),
    ("watch-version-bad", ["watch", "lr", "-d", "{t}/o", "--version", "a/b", "--once"], USAGE, "invalid version"),
    ("watch-name-bad", ["watch", "../lr", "-d", "{t}/o", "--once"], USAGE, "invalid model name"),
    ("endpoints-alias-bad", ["endpoints", "lr", "--alias", "a b"], USAGE, "invalid alias"),
    ("endpoints-version-bad", ["endpoints", "lr", "--version", "../v1"], USAGE, "invalid version"),
    # endpoints: how to render and where, checked before the registry is read or a file written
    ("endpoints-watch-without-out", ["endpoints", "lr", "-o", "haproxy", "--watch"], USAGE, "--watch needs --out FILE"),
    ("endpoints-exec-without-out", ["endpoints", "lr", "-o", "nginx", "--exec", "true"], USAGE,
     "--exec needs --out FILE"),
    ("endpoints-out-table", ["endpoints", "lr", "--out", "{t}/o"], USAGE, "--out needs a file format"),
    ("endpoints-template-and-o", ["endpoints", "lr", "-o", "haproxy", "--template", "{t}/model3.pkl"], USAGE,
     "--template and -o both say how to render"),
    ("endpoints-template-missing", ["endpoints", "lr", "--template", "{t}/nope.j2"], USAGE,
     "cannot read the template '{t}/nope.j2'"),
    ("endpoints-template-syntax", ["endpoints", "lr", "--template", "{t}/bad.j2"], USAGE, "bad.j2:2: template"),
    # configuration files with values of the wrong kind
    ("config-not-utf8", ["--config", "{t}/latin1.yaml", "list"], CONFIG, "is not UTF-8 text"),
    ("config-current-context-list", ["--config", "{t}/cc-list.yaml", "list"], CONFIG,
     "current-context in {t}/cc-list.yaml must be a context name"),
    ("config-current-context-not-mapping", ["--config", "{t}/cc-not-mapping.yaml", "promote", "lr", "v2"], CONFIG,
     "context 'a' in {t}/cc-not-mapping.yaml must be a mapping"),
    ("config-contexts-list", ["--config", "{t}/contexts-list.yaml", "list"], CONFIG,
     "contexts in {t}/contexts-list.yaml must be a mapping"),
    ("config-context-name-number", ["--config", "{t}/context-name-number.yaml", "--context", "1", "list"], CONFIG,
     "context name 1 in"),
    ("config-timeout-nan", ["--config", "{t}/timeout-nan.yaml", "list"], CONFIG,
     "storage.timeout in {t}/timeout-nan.yaml must be a finite number"),
    ("config-timeout-inf", ["--config", "{t}/timeout-inf.yaml", "list"], CONFIG, "registry.timeout in"),
    ("config-jobs-huge", ["--config", "{t}/jobs-huge.yaml", "pull", "lr", "-d", "{t}/o"], CONFIG,
     "transfer.jobs in {t}/jobs-huge.yaml must be at most 64"),
    ("config-jobs-float", ["--config", "{t}/jobs-float.yaml", "list"], CONFIG, "must be a whole number, got 2.5"),
    ("config-section-scalar", ["--config", "{t}/section-scalar.yaml", "list"], CONFIG,
     "registry in {t}/section-scalar.yaml must be a mapping of registry.* keys"),
    ("config-url-list", ["--config", "{t}/url-list.yaml", "list"], CONFIG, "storage.url in"),
    ("config-url-nul", ["--config", "{t}/url-nul.yaml", "list"], CONFIG, "must not contain control characters"),
    ("config-key-number", ["--config", "{t}/key-number.yaml", "list"], CONFIG, "configuration key 1 in"),
    ("config-progress-bool", ["--config", "{t}/progress-bool.yaml", "list"], CONFIG, "progress in"),
    ("config-is-a-directory", ["--config", "{t}/empty", "list"], CONFIG, "cannot read config file"),
    ("context-unknown-on-promote", ["--context", "nope", "promote", "lr", "v2"], CONFIG,
     "context 'nope' is not defined"),
    ("pull-parent-missing", ["pull", "lr", "-d", "/proc/nope"], USAGE, "its parent directory does not exist"),
    ("push-symlink-loop", ["push", "lr", "{t}/loop"], USAGE, "is a symlink loop"),
]

ENV_CASES = [
    # (id, environment, argv, exit code, text the error line must contain)
    ("env-jobs-zero", {"MDL_TRANSFER_JOBS": "0"}, ["list"], CONFIG,
     "transfer.jobs in env MDL_TRANSFER_JOBS must be positive"),
    ("env-jobs-negative", {"MDL_TRANSFER_JOBS": "-1"}, ["pull", "lr", "-d", "{t}/o"], CONFIG, "must be positive"),
    ("env-jobs-1e9", {"MDL_TRANSFER_JOBS": "1e9"}, ["list"], CONFIG, "must be a whole number, got '1e9'"),
    ("env-jobs-huge", {"MDL_TRANSFER_JOBS": "1000000000"}, ["push", "lr", "{t}/model3.pkl"], CONFIG,
     "must be at most 64"),
    ("env-storage-timeout-nan", {"MDL_STORAGE_TIMEOUT": "nan"}, ["list"], CONFIG,
     "storage.timeout in env MDL_STORAGE_TIMEOUT must be a finite number"),
    ("env-storage-timeout-inf", {"MDL_STORAGE_TIMEOUT": "inf"}, ["list"], CONFIG, "must be a finite number"),
    ("env-registry-timeout-negative", {"MDL_REGISTRY_TIMEOUT": "-5"}, ["promote", "lr", "v2"], CONFIG,
     "registry.timeout in env MDL_REGISTRY_TIMEOUT must be positive"),
    ("env-retries-huge", {"MDL_STORAGE_RETRIES": "100000"}, ["list"], CONFIG, "must be at most 100"),
    ("env-output-xml", {"MDL_OUTPUT": "xml"}, ["promote", "lr", "v2"], CONFIG,
     "output in env MDL_OUTPUT must be one of table, wide, json"),
    ("env-progress-bad", {"MDL_PROGRESS": "sometimes"}, ["push", "lr", "{t}/model3.pkl"], CONFIG,
     "progress in env MDL_PROGRESS must be one of"),
    ("env-context-unknown", {"MDL_CONTEXT": "nope"}, ["rollback", "lr", "--alias", "stable"], CONFIG,
     "context 'nope' is not defined"),
    ("env-storage-url-control", {"MDL_STORAGE_URL": "file:///tmp/a\tb"}, ["list"], CONFIG,
     "must not contain control characters"),
    ("env-registry-no-file", {"MDL_REGISTRY_URL": "sqlite://"}, ["list"], CONFIG, "names no database file"),
    ("env-registry-not-a-database", {"MDL_REGISTRY_URL": "sqlite://{t}/model.pkl"}, ["history", "lr"], CONFIG,
     "is not an SQLite database"),
    ("env-config-missing", {"MDL_CONFIG": "{t}/nope.yaml"}, ["list"], CONFIG, "does not exist"),
    ("env-storage-url-no-path", {"MDL_STORAGE_URL": "file://"}, ["pull", "lr", "-d", "{t}/o"], CONFIG,
     "storage.url 'file://' has no path"),
]


def check_one_clear_line(r, code, needle):
    """The documented exit code, nothing on stdout, one error line naming the problem, at most a hint."""
    lines = r.stderr.splitlines()
    assert r.exit_code == code, r.stderr
    assert r.stdout == ""
    assert lines and lines[0].startswith("error: ") and needle in lines[0], lines
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), lines
    assert "Traceback" not in r.stderr and "unexpected" not in r.stderr


@pytest.mark.parametrize("argv,code,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line(cli, client, world, argv, code, needle):
    before, around = snapshot(client), outside(world)
    r = cli(*[a.format(t=world) for a in argv])
    check_one_clear_line(r, code, needle.format(t=world))
    assert snapshot(client) == before
    assert outside(world) == around
    assert (world / "foreign" / "keep.txt").read_text() == "mine"
    assert not (world / "o").exists()


@pytest.mark.parametrize("env,argv,code,needle", [c[1:] for c in ENV_CASES], ids=[c[0] for c in ENV_CASES])
def test_bad_env_value_gets_one_clear_line(cli, client, world, env, argv, code, needle):
    before, around = snapshot(client), outside(world)
    r = cli(*[a.format(t=world) for a in argv], env={k: v.format(t=world) for k, v in env.items()})
    check_one_clear_line(r, code, needle)
    assert snapshot(client) == before
    assert outside(world) == around
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


USAGE_ERRORS = [  # caught by the option's own type or range: Typer's usage error, exit 2
    ["push", "lr"], ["frobnicate"], ["pull", "lr", "-j", "0"], ["list", "--bogus"],
    ["promote", "lr", "v2", "--wait", "--timeout", "nan"],
    ["promote", "lr", "v2", "--wait", "--timeout", "-1"],
    ["promote", "lr", "v2", "--wait", "--min-ready", "-1"],
    ["watch", "lr", "-d", "{t}/o", "--health-port", "99999"],
    ["watch", "lr", "-d", "{t}/o", "--health-port", "-1"],
    ["watch", "lr", "-d", "{t}/o", "--jitter", "inf"],
    ["watch", "lr", "-d", "{t}/o", "--poll", "nan"],
    ["watch", "lr", "-d", "{t}/o", "--keep", "1"],
    ["watch", "lr", "-d", "{t}/o", "--max-concurrent", "-1"],
    ["clean", "--older-than", "nan"],
    ["push", "lr", "{t}/model3.pkl", "-j", "65"],
]


@pytest.mark.parametrize("argv", USAGE_ERRORS, ids=[" ".join(a[:1] + a[-2:]) for a in USAGE_ERRORS])
def test_usage_errors_exit_2_without_traceback(cli, world, client, argv):
    before, around = snapshot(client), outside(world)
    r = cli(*[a.format(t=world) for a in argv])
    assert r.exit_code == USAGE, r.stderr
    lines = r.stderr.splitlines()  # mdl's voice, not Typer's "Usage: ... Error: ..."
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), lines
    assert r.stdout == ""
    assert snapshot(client) == before
    assert outside(world) == around and not (world / "o").exists()


def test_a_health_port_in_use_fails_before_any_download(run_mdl, client, world):
    """--health-port is listened on first: a port in use is exit 1 naming it, with nothing downloaded,
    no local directory made and no replica registered."""
    before, around = snapshot(client), outside(world)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_mdl("watch", "lr", "-d", str(world / "o"), "--health-port", str(port), timeout=60)
    lines = r.stderr.decode().splitlines()
    assert r.returncode == FAILED, lines
    assert lines[0] == f"error: cannot listen on 127.0.0.1:{port}: Address already in use", lines
    assert len(lines) == 2 and lines[1].startswith("hint: ") and r.stdout == b""
    assert not (world / "o").exists() and client.replicas("lr") == []
    assert snapshot(client) == before and outside(world) == around


BAD_POINTERS = [
    ("pointer-not-json", b"{latest: v1", "is not valid JSON"),
    ("pointer-list", b'["v1"]', "is not a JSON object of alias -> version"),
    ("pointer-version-number", b'{"latest": 1, "stable": "v2"}', "maps alias 'latest' to 1, not a version id"),
    ("pointer-version-traversal", b'{"latest": "../../../../etc", "stable": "v2"}',
     "maps alias 'latest' to an invalid version id '../../../../etc'"),
    ("pointer-alias-traversal", b'{"../latest": "v1"}', "holds an invalid alias '../latest'"),
]


@pytest.mark.parametrize("raw,needle", [c[1:] for c in BAD_POINTERS], ids=[c[0] for c in BAD_POINTERS])
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_corrupted_pointer_is_an_integrity_failure(cli, client, world, backend, raw, needle):
    """The pointer document is written behind mdl's back (SQLite row / ZooKeeper node): every command
    that reads it says so in one line with exit 8 and changes nothing, the pointer least of all.
    On every backend: where the error line says the pointer is, and the hint, are the backend's own."""
    write_pointer(client.registry, "lr", raw)
    stored, history = read_pointer(client.registry, "lr"), len(client.registry.history("lr"))
    before = snapshot_storage(client)
    around = outside(world)
    where, fix = {"embedded": ("the pointer of 'lr' (row 'lr' of table pointers in ", "hint: fix or delete that row"),
                  "distributed": ("the pointer of 'lr' (znode /", "hint: fix or delete that znode")}[backend]
    for argv in (["list", "lr"], ["promote", "lr", "v2"], ["rollback", "lr", "--alias", "stable"],
                 ["pull", "lr", "-d", str(world / "o")], ["status", "lr", "-o", "json"], ["list"]):
        r = cli(*argv)
        check_one_clear_line(r, INTEGRITY, "the pointer of 'lr' (")
        assert needle in r.stderr.splitlines()[0], r.stderr
        assert where in r.stderr.splitlines()[0] and r.stderr.splitlines()[1].startswith(fix), r.stderr
    r = cli("watch", "lr", "-d", str(world / "o"), "--once", "-o", "json")  # fails static: nothing served
    lines = r.stderr.splitlines()
    assert r.exit_code == INTEGRITY and lines[0].startswith("error: lr: no verified version in "), lines
    assert "the pointer of 'lr'" in lines[0] and len(lines) == 2 and "Traceback" not in r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events and all(e["event"] != "downloading" for e in events)
    assert read_pointer(client.registry, "lr") == stored and len(client.registry.history("lr")) == history
    assert snapshot_storage(client) == before and client.replicas("lr") == []
    after = outside(world)
    after["world"] = {p: v for p, v in after["world"].items() if not p.startswith(str(world / "o"))}
    assert after == around  # (watch made its local directory, empty of versions)
    assert not (world / "o" / "current").exists() and not list((world / "o").glob("versions/*"))


def snapshot_storage(client):
    s = client.storage
    return {n: sorted((v, s.read_manifest(n, v).digest) for v in s.list_versions(n)) for n in s.list_models()}


def test_hostile_history_and_replica_records_are_skipped(cli, client, world):
    """History entries and replica records anyone could have written: skipped, never a crash."""
    from ..contract.backdoor import add_history, hostile_replicas

    add_history(client.registry, "lr", {"alias": "stable", "from": "v2", "to": "../../etc", "who": "x", "at": "y",
                                        "action": "promote"})
    add_history(client.registry, "lr", b"\xff not json")
    r = cli("history", "lr", "-o", "json")
    assert r.exit_code == 0 and "Traceback" not in r.stderr, r.stderr
    assert [(h["alias"], h["from"], h["to"]) for h in json.loads(r.stdout)["history"]] == [
        ("latest", None, "v1"), ("stable", None, "v1"), ("stable", "v1", "v2")]
    records = {"bad-json": b"{", "bad-alias": b'{"alias": ["stable"], "state": "ready", "loaded": "v1"}',
               "bad-loaded": b'{"kind": "server", "loaded": {"x": 1}, "address": "http://127.0.0.1:9"}',
               "bad-address": b'{"kind": "server", "loaded": "v1", "state": "ready", "address": 9}'}
    with hostile_replicas(client.registry, "lr", records):
        for argv in (["status", "lr"], ["status", "lr", "-o", "json"], ["endpoints", "lr"],
                     ["promote", "lr", "v2", "--wait", "--timeout", "1", "--min-ready", "0"]):
            r = cli(*argv)
            assert r.exit_code == 0 and "Traceback" not in r.stderr and "unexpected" not in r.stderr, (argv, r.stderr)
    assert json.loads(cli("status", "lr", "-o", "json").stdout)["replicas"] == []
    r = cli("rollback", "lr", "--alias", "stable")
    assert r.exit_code == 0 and client.pointer("lr").aliases["stable"] == "v1"  # the valid entries decide


def test_debug_shows_the_traceback(cli, world):
    r = cli("--debug", "promote", "lr", "v404")
    assert r.exit_code == NOT_FOUND and "Traceback" in r.stderr and "error: version lr/v404" in r.stderr
