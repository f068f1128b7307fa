"""A rollout driven by the real binary over ``mdl watch`` processes: the driver is SIGKILLed mid-rollout,
the fleet stays where it was, and ``mdl rollout resume`` from another process finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from ..helpers import MDL, current, until


def push(run_mdl, tmp_path, version: str) -> None:
    p = tmp_path / f"src-{version}" / "model.pkl"
    p.parent.mkdir()
    p.write_bytes(f"model {version} ".encode() * 100)
    assert run_mdl("push", "lr", str(p), "--version", version).returncode == 0


def test_a_killed_driver_leaves_the_rollout_where_it_was_and_resume_finishes_it(
    fleet, run_mdl, backend_env, client, tmp_path
):
    for v in ("v1", "v2"):
        push(run_mdl, tmp_path, v)
    assert run_mdl("promote", "lr", "v1").returncode == 0
    dirs = fleet.start(4)
    fleet.wait_registered(4)
    until(lambda: [current(d) for d in dirs] == ["v1"] * 4, 60, 0.1, what="4 watchers on v1")
    driver = subprocess.Popen([MDL, "rollout", "start", "lr", "v2", "--steps", "50,100", "--interval", "3s",
                               "-o", "json"], env={**os.environ, **backend_env}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        until(lambda: sorted(str(current(d)) for d in dirs) == ["v1", "v1", "v2", "v2"], 60, 0.1,
              what="half the fleet on v2")

        def status() -> dict:
            return json.loads(run_mdl("rollout", "status", "lr", "-o", "json").stdout)

        until(lambda: status()["step_started"] != "", 30, 0.1, what="step 1 ready")
    finally:
        driver.send_signal(signal.SIGKILL)  # no chance to write anything
        driver.wait(10)
    held = status()
    assert (held["state"], held["step"], len(held["assigned"])) == ("running", 0, 2)
    assert sorted(str(current(d)) for d in dirs) == ["v1", "v1", "v2", "v2"]  # the fleet stays where it was
    assert client.pointer("lr").aliases == {"latest": "v1"}  # the alias moves only at the end
    r = run_mdl("rollout", "resume", "lr", "-o", "json", timeout=120)  # another process continues it
    assert r.returncode == 0, r.stderr
    events = [json.loads(line)["event"] for line in r.stdout.decode().splitlines()]
    assert "step" in events and "resumed" not in events, events  # it was running: driven on, not resumed
    assert events[-1] == "succeeded", events
    until(lambda: [current(d) for d in dirs] == ["v2"] * 4, 60, 0.1, what="all 4 on v2")
    final = status()
    assert final["state"] == "succeeded" and final["counts"] == {"v2": 4}
    assert client.pointer("lr").aliases == {"latest": "v2"}
