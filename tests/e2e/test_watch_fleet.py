"""The sidecar as a fleet: separate ``mdl watch`` processes against the test backend."""

from __future__ import annotations

import json
import signal
import time

from ..helpers import current, until, write_stored


def push_versions(run_mdl, tmp_path, n: int, name: str = "lr") -> list[str]:
    out = []
    for i in range(1, n + 1):
        p = tmp_path / f"src-{i}" / "model.pkl"
        p.parent.mkdir()
        p.write_bytes(f"model {i} ".encode() * 1000)
        assert run_mdl("push", name, str(p), "--version", f"v{i}").returncode == 0
        out.append(f"v{i}")
    return out


def test_five_watchers_follow_promotions_and_promote_wait_waits_for_all(fleet, run_mdl, tmp_path):
    versions = push_versions(run_mdl, tmp_path, 3)
    assert run_mdl("promote", "lr", "v1").returncode == 0
    dirs = fleet.start(5)
    fleet.wait_registered(5)
    r = run_mdl("promote", "lr", "v1", "--wait", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert [current(d) for d in dirs] == ["v1"] * 5
    moves = ["v2", "v3", "rollback", "v1", "v3", "rollback", "v2", "rollback", "rollback", "v3"]
    for move in moves:
        if move == "rollback":
            r = run_mdl("rollback", "lr", "-o", "json")
            assert r.returncode == 0, r.stderr
            target = json.loads(r.stdout)["version"]
            r = run_mdl("promote", "lr", target, "--wait", "--timeout", "60")
        else:
            target = move
            r = run_mdl("promote", "lr", target, "--wait", "--timeout", "60")
        assert r.returncode == 0, r.stderr
        # --wait returned: every watcher already serves the target
        assert [current(d) for d in dirs] == [target] * 5, move
    assert {x["loaded"] for x in fleet.replicas()} == {target}
    assert all(x["state"] == "ready" for x in fleet.replicas())
    for d in dirs:
        assert (d / "current" / "model.pkl").read_bytes() == f"model {target[1:]} ".encode() * 1000
        assert len(list((d / "versions").iterdir())) <= 3  # --keep 3 by default
    assert set(versions) >= {target}


def test_a_corrupt_version_is_refused_and_promote_wait_rolls_back(fleet, run_mdl, tmp_path, client):
    push_versions(run_mdl, tmp_path, 2)
    assert run_mdl("promote", "lr", "v1").returncode == 0
    dirs = fleet.start(2)
    fleet.wait_registered(2)
    assert run_mdl("promote", "lr", "v1", "--wait", "--timeout", "60").returncode == 0
    write_stored(client, "lr", "v2", "model.pkl", b"corrupted bytes")
    r = run_mdl("promote", "lr", "v2", "--wait", "--timeout", "60", "--rollback-on-failure")
    assert r.returncode == 1, r.stderr
    assert b"failed to load lr/v2" in r.stderr and b"does not match its manifest" in r.stderr
    assert b"rolled back: lr:latest -> v1" in r.stderr
    assert [current(d) for d in dirs] == ["v1", "v1"]
    pointer = json.loads(run_mdl("list", "-o", "json").stdout)["models"][0]["aliases"]
    assert pointer == {"latest": "v1"}
    until(lambda: all(x["state"] == "ready" for x in fleet.replicas()), 30, 0.2, what="every watcher ready again")


def test_promote_wait_times_out_naming_laggards(fleet, run_mdl, tmp_path):
    push_versions(run_mdl, tmp_path, 2)
    assert run_mdl("promote", "lr", "v1").returncode == 0
    fleet.start(1, "--exec", "sleep 30")  # a hook that never finishes in time
    fleet.wait_registered(1)
    r = run_mdl("promote", "lr", "v2", "--wait", "--timeout", "2")
    assert r.returncode == 5
    assert b"waiting for:" in r.stderr


def test_sigterm_deregisters_and_sigkill_replica_disappears(fleet, run_mdl, tmp_path, backend_env):
    push_versions(run_mdl, tmp_path, 1)
    assert run_mdl("promote", "lr", "v1").returncode == 0
    fleet.start(2)
    fleet.wait_registered(2)
    term, kill = fleet.procs
    started = time.monotonic()
    term.send_signal(signal.SIGTERM)
    assert term.wait(10) == 0
    until(lambda: len(fleet.replicas()) == 1, 10 - (time.monotonic() - started), 0.1,
          what="the SIGTERMed watcher to deregister")
    kill.send_signal(signal.SIGKILL)
    kill.wait()
    until(lambda: fleet.replicas() == [], float(backend_env.get("MDL_REGISTRY_TIMEOUT", "10")) * 3 + 5, 0.2,
          what="the SIGKILLed watcher's replica to disappear")
