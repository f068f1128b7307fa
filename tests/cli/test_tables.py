"""Tables as scripts and people get them: tab-separated lines in a pipe, aligned columns on a terminal
where identifiers never break (narrow terminals drop columns first), ``-o wide``, empty listings."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from datetime import datetime, timedelta, timezone

import pytest

import mdl.client
import mdl.publish

from ..helpers import MDL

CREATED = "2026-11-27T17:13:00.000000Z"
V1, V2 = "20261127T171300Z", "20261202T022847Z"
DIGEST = "sha256:" + "0" * 64


@pytest.fixture
def registry(cli, tmp_path, monkeypatch):
    """lr with two versions (latest=V1, canary=V2), bert with one; fixed creation time and creator."""
    monkeypatch.setattr(mdl.publish, "now_iso", lambda: CREATED)
    monkeypatch.setattr(mdl.client, "creator", lambda: "ci@build")
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x04weights")
    assert cli("push", "lr", str(model), "--version", V1, "--promote").exit_code == 0
    model.write_bytes(b"\x80\x04weights, the second" + b"x" * 3000)
    assert cli("push", "lr", str(model), "--version", V2).exit_code == 0
    assert cli("promote", "lr", V2, "--alias", "canary").exit_code == 0
    assert cli("push", "bert", str(model), "--version", "b1").exit_code == 0
    return tmp_path


def env(backend_env: dict, **extra: str) -> dict:
    return {**os.environ, **backend_env, "NO_COLOR": "1", **extra}


def piped(backend_env: dict, *args: str, **extra: str) -> subprocess.CompletedProcess:
    """The real binary with stdout and stderr read through pipes."""
    return subprocess.run([MDL, *args], capture_output=True, text=True, env=env(backend_env, **extra), timeout=60)


def on_terminal(backend_env: dict, *args: str, columns: int = 70, **extra: str) -> tuple[int, str]:
    """The real binary on a pseudo-terminal ``columns`` wide: its exit code and what the terminal got
    (stdout and stderr together, as a person sees them), colour codes removed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    e = env(backend_env, TERM="xterm", **extra)
    e.pop("COLUMNS", None)
    e.pop("MDL_NO_PROGRESS", None)
    proc = subprocess.Popen([MDL, *args], stdin=follower, stdout=follower, stderr=follower, env=e)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed: the process is done
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    code = proc.wait(timeout=60)
    screen = re.sub(r"\x1b\[[0-9;]*m", "", out.decode()).replace("\r\n", "\n")
    return code, screen


def test_piped_tables_are_tab_separated_without_rule_or_padding(registry, backend_env):
    r = piped(backend_env, "list")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "NAME\tALIASES\tVERSIONS\nbert\t-\t1\nlr\tcanary=20261202T022847Z, latest=20261127T171300Z\t2\n"
    r = piped(backend_env, "list", "lr")
    assert r.stdout == (
        "VERSION\tCREATED\tSIZE\tFILES\tFORMAT\tALIASES\n"
        f"{V2}\t2026-11-27 17:13:00Z\t3.0 KiB\t1\tpickle\tcanary\n"
        f"{V1}\t2026-11-27 17:13:00Z\t9 B\t1\tpickle\tlatest\n"
    )
    r = piped(backend_env, "history", "lr")
    when = [line.split("\t")[1] for line in r.stdout.splitlines()[1:]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", w) for w in when), when
    assert r.stdout == (
        "SEQ\tWHEN\tALIAS\tACTION\tFROM\tTO\tWHO\n"
        f"1\t{when[0]}\tlatest\tpromote\t-\t{V1}\tci@build\n"
        f"2\t{when[1]}\tcanary\tpromote\t-\t{V2}\tci@build\n"
    )
    for line in piped(backend_env, "config").stdout.splitlines():
        assert len(line.split("\t")) == 3 and line == line.rstrip() and "\u2500" not in line


@pytest.mark.parametrize("lang", ["C", "C.UTF-8"])
def test_awk_gets_the_versions_and_nothing_else(registry, backend_env, lang):
    """`mdl list lr | awk 'NR>1{print $1}'`: the versions, no rule line, whatever the locale."""
    listing = piped(backend_env, "list", "lr", LANG=lang, LC_ALL=lang).stdout
    awk = subprocess.run(["awk", "NR>1{print $1}"], input=listing, capture_output=True, text=True, check=True)
    assert awk.stdout == f"{V2}\n{V1}\n"


def test_wide_adds_creator_and_digest(registry, backend_env):
    r = piped(backend_env, "list", "lr", "-o", "wide")
    header, *rows = r.stdout.splitlines()
    assert header == "VERSION\tCREATED\tSIZE\tFILES\tFORMAT\tALIASES\tCREATOR\tDIGEST"
    assert [row.split("\t")[6] for row in rows] == ["ci@build", "ci@build"]
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", row.split("\t")[7]) for row in rows)
    assert piped(backend_env, "list", "-o", "wide").stdout == piped(backend_env, "list").stdout  # nothing to add


def test_a_70_column_terminal_keeps_version_ids_whole(registry, backend_env):
    """At 70 columns `list lr` drops FORMAT, then FILES: every version id stays on one line."""
    code, screen = on_terminal(backend_env, "list", "lr")
    assert code == 0
    assert screen.splitlines() == [
        "VERSION            CREATED                SIZE      FILES   ALIASES",
        "\u2500" * 67,
        f"{V2}   2026-11-27 17:13:00Z   3.0 KiB   1       canary",
        f"{V1}   2026-11-27 17:13:00Z   9 B       1       latest",
    ]
    code, screen = on_terminal(backend_env, "list")
    assert screen.splitlines() == [
        "NAME   ALIASES                                            VERSIONS",
        "\u2500" * 66,
        "bert   -                                                  1",
        "lr     canary=20261202T022847Z, latest=20261127T171300Z   2",
    ]
    # at 40 the aliases wrap between aliases, never inside one; what is still too wide the terminal wraps
    code, screen = on_terminal(backend_env, "list", columns=40)
    assert screen.splitlines() == [
        "NAME   ALIASES                    VERSIONS",
        "\u2500" * 42,
        "bert   -                          1",
        "lr     canary=20261202T022847Z,   2",
        "       latest=20261127T171300Z",
    ]


def test_history_timestamps_never_wrap(registry, backend_env, monkeypatch):
    """WHEN is whole or absent: at 70 columns SEQ and WHO go; at 50 ACTION and then WHEN go too."""
    code, screen = on_terminal(backend_env, "history", "lr")
    lines = screen.splitlines()
    assert code == 0 and lines[0].split() == ["WHEN", "ALIAS", "ACTION", "FROM", "TO"]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ   ", row) for row in lines[2:]), lines
    code, screen = on_terminal(backend_env, "history", "lr", columns=50)
    lines = screen.splitlines()
    assert lines[0].split() == ["ALIAS", "FROM", "TO"] and lines[2].split() == ["latest", "-", V1], lines


def test_an_empty_cell_reads_dash_on_a_terminal_too(registry, backend_env):
    code, screen = on_terminal(backend_env, "list", "bert")
    assert screen.splitlines()[2].split()[-1] == "-"


def test_wide_terminal_shows_every_column(registry, backend_env):
    code, screen = on_terminal(backend_env, "list", "lr", "-o", "wide", columns=200)
    header, rule, *rows = screen.splitlines()
    assert header.split() == ["VERSION", "CREATED", "SIZE", "FILES", "FORMAT", "ALIASES", "CREATOR", "DIGEST"]
    assert rule == "\u2500" * len(rows[0]) and all(row == row.rstrip() for row in rows)
    assert rows[0].startswith(f"{V2}   2026-11-27 17:13:00Z   3.0 KiB   1       pickle   canary    ci@build   sha256:")


def test_status_on_a_terminal_and_piped(registry, backend_env, client):
    since = (datetime.now(timezone.utc) - timedelta(seconds=200)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    shown = since[:10] + " " + since[11:19] + "Z"
    replica = "web-7f9c6d-4242-a1b2c3"
    common = {"kind": "server", "alias": "latest", "since": since, "host": "web-7f9c6d", "state": "ready"}
    handles = [
        client.registry.register_replica("lr", replica, {**common, "loaded": V1, "address": "http://10.0.0.7:8080"}),
        client.registry.register_replica(
            "lr", "batch-2", {**common, "kind": "watcher", "state": "failed", "error": "no loader for format onnx"}
        ),
    ]
    try:
        r = piped(backend_env, "status", "lr")
        assert r.stdout == (
            "ID\tKIND\tSTATE\tLOADED\tALIAS\tMATCH\tSINCE\tAGE\tERROR\n"
            f"batch-2\twatcher\tfailed\t-\tlatest\tno\t{shown}\t3m\tno loader for format onnx\n"
            f"{replica}\tserver\tready\t{V1}\tlatest\tyes\t{shown}\t3m\t-\n"
        )
        assert r.stderr == f"{V1}: 1, nothing loaded: 1\n"
        wide = piped(backend_env, "status", "lr", "-o", "wide").stdout.splitlines()
        assert wide[0].endswith("\tERROR\tADDRESS\tHOST") and wide[2].endswith("\t-\thttp://10.0.0.7:8080\tweb-7f9c6d")
        code, screen = on_terminal(backend_env, "status", "lr")
        assert screen.splitlines() == [
            "ID                       STATE    LOADED             MATCH   AGE",
            "\u2500" * 64,
            "batch-2                  failed   -                  no      3m",
            f"{replica}   ready    {V1}   yes     3m",
            f"{V1}: 1, nothing loaded: 1",
        ]
        code, screen = on_terminal(backend_env, "status", "lr", columns=160)
        assert screen.splitlines()[0].split() == [
            "ID", "KIND", "STATE", "LOADED", "ALIAS", "MATCH", "SINCE", "AGE", "ERROR"]
        assert f"   {shown}   3m    no loader for format onnx\n" in screen
    finally:
        for h in handles:
            h.close()


def test_empty_listings_say_so_on_stderr(cli, backend_env, tmp_path, client):
    r = piped(backend_env, "list")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "no models yet: push one with: mdl push NAME PATH\n")
    model = tmp_path / "m.pkl"
    model.write_bytes(b"\x80\x04w")
    cli("push", "lr", str(model), "--version", "v1", "--promote")
    r = piped(backend_env, "status", "lr")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "no live replicas of lr\n")
    cli("push", "bert", str(model), "--version", "b1")
    r = piped(backend_env, "history", "bert")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "no alias of bert has moved yet\n")
    storage = client.storage
    storage.root.joinpath("lr", "v1").rename(tmp_path / "gone")  # lr keeps its alias, its only version is gone
    r = piped(backend_env, "list", "lr")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "no versions of lr\n")
    assert piped(backend_env, "list", "lr", "-o", "json").stdout.count('"versions": []') == 1


def test_the_progress_bar_counts_in_binary_units(backend_env, tmp_path):
    """What a person sees while pushing: the bar counts MiB, like the summary line after it."""
    model = tmp_path / "big.bin"
    model.write_bytes(os.urandom(5 * 1024 * 1024))
    code, screen = on_terminal(backend_env, "push", "big", str(model), "--version", "v1", columns=100)
    assert code == 0
    assert "5.0/5.0 MiB" in screen and re.search(r" \d+\.\d (MiB|GiB)/s ", screen), repr(screen)
    assert not re.search(r"\d (kB|MB|GB)\b", screen), repr(screen)
    assert screen.endswith("v1\npushed big/v1: 1 file, 5.0 MiB, " + screen.rsplit(", ", 1)[1])
