"""The real ``mdl`` binary as a subprocess: crashes mid-push and operators racing each other."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

from ..helpers import MDL


def versions(run_mdl) -> list[str]:
    r = run_mdl("list", "lr", "-q")
    return r.stdout.decode().split() if r.returncode == 0 else []


def test_sigkill_during_push_never_exposes_a_partial_version(run_mdl, backend_env, tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    for i in range(16):
        (src / f"shard-{i:02d}.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    env = {**os.environ, **backend_env}
    started = time.monotonic()
    assert run_mdl("push", "lr", str(src), "--version", "full").returncode == 0
    full = time.monotonic() - started
    rng = random.Random(20261127)
    seen = set(versions(run_mdl))
    for trial in range(20):
        (src / "trial.txt").write_text(str(trial))
        proc = subprocess.Popen([MDL, "push", "lr", str(src), "-j", "4"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, full * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = set(versions(run_mdl))
        assert seen <= now and len(now - seen) <= 1
        for v in now - seen:  # a version that became visible must be whole and verified
            r = run_mdl("pull", "lr", v, "-d", str(tmp_path / f"check-{trial}"), "-o", "json")
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["files"] == 17
        seen = now
    (src / "trial.txt").write_text("final")
    r = run_mdl("push", "lr", str(src), "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] is True
    r = run_mdl("clean", "--older-than", "0", "-o", "json")
    assert r.returncode == 0
    assert all("/.mdl-staging/" in e["path"] for e in json.loads(r.stdout)["removed"])
    newest = json.loads(run_mdl("list", "lr", "-o", "json").stdout)["versions"][0]["version"]
    assert set(versions(run_mdl)) == seen | {newest}


def test_eight_concurrent_promote_processes_lose_nothing(run_mdl, backend_env, tmp_path):
    for i in range(1, 9):
        p = tmp_path / f"m{i}.pkl"
        p.write_bytes(f"model {i}".encode())
        assert run_mdl("push", "lr", str(p), "--version", f"v{i}").returncode == 0
    env = {**os.environ, **backend_env}
    procs = [subprocess.Popen([MDL, "promote", "lr", f"v{i}", "-o", "json"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for i in range(1, 9)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e for _, e in outs]
    history = json.loads(run_mdl("history", "lr", "-o", "json").stdout)["history"]
    assert len(history) == 8
    assert sorted(h["to"] for h in history) == [f"v{i}" for i in range(1, 9)]
    for prev, cur in zip(history, history[1:], strict=False):
        assert cur["from"] == prev["to"]
    pointer = json.loads(run_mdl("list", "-o", "json").stdout)["models"][0]["aliases"]
    assert pointer == {"latest": history[-1]["to"]}
