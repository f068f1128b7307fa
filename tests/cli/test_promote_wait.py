"""promote --wait for CD pipelines (issue 15, item 5): progress on stderr, an exit code for every
outcome, each saying where the alias points now, and hints that never contradict what happened."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import threading
import time

import pytest

import mdl.fleet
from mdl.fleet import ReplicaRecord

from ..helpers import MDL, until

NOT_FOUND, TIMEOUT, FAILED, INTERRUPTED = 3, 5, 1, 130


@pytest.fixture
def lr(cli, tmp_path):
    """Model lr with versions v1 (latest) and v2."""
    for v in ("v1", "v2"):
        p = tmp_path / v / "model.pkl"
        p.parent.mkdir()
        p.write_bytes(f"weights {v}".encode())
        assert cli("push", "lr", str(p), "--version", v, *(["--promote"] if v == "v1" else [])).exit_code == 0


@pytest.fixture
def replica(client):
    """Register a live replica of lr in this process: replica(id, **fields) -> handle (closed at teardown)."""
    handles = []

    def register(rid: str, **fields):
        fields.setdefault("alias", "latest")
        handles.append(client.register_replica("lr", rid, ReplicaRecord(kind="watcher", **fields).to_dict()))
        return handles[-1]

    yield register
    for h in handles:
        h.close()


def lines(r) -> list[str]:
    return r.stderr.splitlines()


def test_no_replica_following_the_alias_exits_3_saying_where_it_points(cli, lr, monkeypatch):
    monkeypatch.setattr(mdl.fleet, "NO_FOLLOWER_GRACE", 0.2)
    r = cli("promote", "lr", "v2", "--wait")
    assert (r.exit_code, r.stdout) == (NOT_FOUND, "")
    assert lines(r) == [
        "lr:latest -> v2 (was v1)",
        "waiting: no replica follows latest yet",
        "error: no live replica follows lr:latest, so none will report v2 ready; lr:latest points at v2",
        "hint: start one (mdl watch lr -d DIR, or mdl serve lr), or pass --min-ready 0 to not wait for replicas",
    ]


def test_min_ready_0_accepts_no_replicas(cli, lr):
    r = cli("promote", "lr", "v2", "--wait", "--min-ready", "0")
    assert (r.exit_code, lines(r)) == (0, [
        "lr:latest -> v2 (was v1)",
        "0 replicas ready on lr/v2; lr:latest points at v2",
    ])


def test_progress_is_a_line_per_change_off_a_terminal(cli, lr, replica, client):
    a = replica("a", desired="v1", loaded="v1", state="ready")
    b = replica("b", desired="v1", loaded="v1", state="ready")
    replica("other", alias="stable", desired="v1", loaded="v1", state="ready")  # follows another alias

    def roll_out() -> None:  # once the alias moved, the replicas follow one by one
        until(lambda: client.pointer("lr").aliases["latest"] == "v2", 30, 0.01)
        for handle in (a, b):
            time.sleep(0.5)
            handle.update(desired="v2", state="syncing")  # no change in the counts: no line
            time.sleep(0.2)
            handle.update(loaded="v2", state="ready")

    t = threading.Thread(target=roll_out)
    t.start()
    r = cli("promote", "lr", "v2", "--wait", "--timeout", "30")
    t.join()
    assert (r.exit_code, lines(r)) == (0, [
        "lr:latest -> v2 (was v1)",
        "waiting: 0 of 2 replicas ready on lr/v2",
        "waiting: 1 of 2 replicas ready on lr/v2",
        "2 replicas ready on lr/v2; lr:latest points at v2",
    ])


def test_timeout_exits_5_saying_where_the_alias_points(cli, lr, replica):
    replica("a", desired="v2", loaded="v1", state="syncing")
    r = cli("promote", "lr", "v2", "--wait", "--timeout", "0.2")
    assert (r.exit_code, lines(r)) == (TIMEOUT, [
        "lr:latest -> v2 (was v1)",
        "waiting: 0 of 1 replica ready on lr/v2",
        "error: 0 of 1 replica ready on lr/v2 after 0.2s; waiting for: a (syncing, loaded v1); lr:latest points at v2",
        "hint: see the fleet with: mdl status lr; undo the promotion with: mdl rollback lr --alias latest",
    ])


def test_a_failed_replica_exits_1_and_hints_at_the_rollback(cli, lr, replica):
    replica("a", desired="v2", loaded="v1", state="failed", error="load: boom")
    r = cli("promote", "lr", "v2", "--wait")
    assert (r.exit_code, lines(r)) == (FAILED, [
        "lr:latest -> v2 (was v1)",
        "error: 1 replica failed to load lr/v2: a: load: boom; lr:latest points at v2",
        "hint: roll back with: mdl rollback lr --alias latest",
    ])


def test_rolled_back_says_so_and_hints_no_rollback(cli, lr, replica):
    replica("a", desired="v2", loaded="v1", state="failed", error="load: boom")
    r = cli("promote", "lr", "v2", "--wait", "--rollback-on-failure")
    assert (r.exit_code, lines(r)) == (FAILED, [
        "lr:latest -> v2 (was v1)",
        "rolled back: lr:latest -> v1",
        "error: 1 replica failed to load lr/v2: a: load: boom; rolled back, lr:latest points at v1",
        "hint: see the fleet with: mdl status lr",
    ])


def test_nothing_to_roll_back_to_says_why_and_hints_a_promotion(cli, lr, replica):
    replica("a", alias="canary", desired="v2", loaded=None, state="failed", error="load: boom")
    r = cli("promote", "lr", "v2", "-a", "canary", "--wait", "--rollback-on-failure")
    assert (r.exit_code, lines(r)) == (FAILED, [
        "lr:canary -> v2 (was unset)",
        "error: 1 replica failed to load lr/v2: a: load: boom; not rolled back: it was unset before; "
        "lr:canary points at v2",
        "hint: point it at a version that loads: mdl promote lr VERSION --alias canary",
    ])


def _start(backend_env: dict[str, str], **kw) -> subprocess.Popen:
    env = {**os.environ, **backend_env}
    return subprocess.Popen([MDL, "promote", "lr", "v2", "--wait", "--timeout", "60"], env=env, **kw)


def test_ctrl_c_exits_130_saying_where_the_alias_points(lr, replica, backend_env):
    replica("a", desired="v2", loaded="v1", state="syncing")
    p = _start(backend_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stderr is not None
    first = [p.stderr.readline(), p.stderr.readline()]
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert (p.returncode, out) == (INTERRUPTED, b"")
    assert [x.decode() for x in first] + err.decode().splitlines() == [
        "lr:latest -> v2 (was v1)\n",
        "waiting: 0 of 1 replica ready on lr/v2\n",
        "error: interrupted with 0 of 1 replica ready on lr/v2; lr:latest points at v2",
        "hint: see the fleet with: mdl status lr; undo the promotion with: mdl rollback lr --alias latest",
    ]


def test_on_a_terminal_progress_is_one_line_rewritten_in_place(lr, replica, backend_env):
    late = replica("a", desired="v2", loaded="v1", state="syncing")
    primary, secondary = pty.openpty()
    p = _start(backend_env, stdout=subprocess.PIPE, stderr=secondary)
    os.close(secondary)
    seen = b""

    def read() -> bytes:
        nonlocal seen
        while select.select([primary], [], [], 0.05)[0]:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            seen += chunk
        return seen

    until(lambda: b"0 of 1 replica ready" in read(), 30, what="the progress line")
    late.update(loaded="v2", state="ready")
    p.wait(timeout=30)
    time.sleep(0.1)
    read()
    os.close(primary)
    assert p.returncode == 0
    assert seen.decode() == (
        "lr:latest -> v2 (was v1)\r\n"
        "\r\x1b[K0 of 1 replica ready on lr/v2"
        "\r\x1b[K"
        "1 replica ready on lr/v2; lr:latest points at v2\r\n"
    )
