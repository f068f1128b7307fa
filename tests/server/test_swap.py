"""Swapping versions under load: no failed request, and the answering version follows the alias."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mdl.fleet import Fleet

from .conftest import infer, push

LOADGEN = Path(__file__).with_name("loadgen.py")


def test_twenty_promotions_and_rollbacks_under_load(serve, mdl, iris, client, tmp_path):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    push(mdl, "iris", iris["v2"], "v2")
    s = serve("iris")
    s.wait_ready("v1")
    stop, out = tmp_path / "stop", tmp_path / "load.jsonl"
    gen = subprocess.Popen([sys.executable, str(LOADGEN), s.url + "/v2/models/iris/infer", str(out), "--threads", "4",
                            "--stop-file", str(stop), "--max-seconds", "150"])
    try:
        time.sleep(0.5)
        moves = []  # (version the alias names, when the move started, when every replica reported it ready)
        for i in range(20):
            started = time.monotonic()
            target = client.promote("iris", "v2").version if i % 2 == 0 else client.rollback("iris").version
            Fleet(client).wait_for_rollout("iris", target, timeout=60, poll=0.01)
            moves.append((target, started, time.monotonic()))
            time.sleep(0.25)
    finally:
        stop.touch()
        assert gen.wait(60) == 0
    ended = time.monotonic()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) > 500, len(rows)
    failed = [r for r in rows if r[2] != 200]
    assert not failed, failed[:5]
    assert all(r[3] == r[4] and r[3] in ("v1", "v2") for r in rows)  # header and body agree
    assert [m[0] for m in moves] == ["v2", "v1"] * 10
    first = moves[0][1]
    assert {r[3] for r in rows if r[1] < first} == {"v1"}
    for i, (target, _, ready) in enumerate(moves):
        until = moves[i + 1][1] if i + 1 < len(moves) else ended
        window = [r[3] for r in rows if r[0] > ready and r[1] < until]  # sent after ready, answered before next move
        assert window, f"no request completed after move {i}"
        assert set(window) == {target}, (i, target, set(window))
    worst = max(r[1] - r[0] for r in rows)
    print(f"\n{len(rows)} requests, 20 swaps, worst latency {worst * 1000:.1f} ms")
    metrics = httpx.get(s.url + "/metrics").text
    assert 'mdl_model_swaps_total{model="iris",result="ok"} 21.0' in metrics
    assert 'result="failed"} 0.0' in metrics


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_format_without_a_loader_fails_once_and_says_loader(serve, mdl, iris, tmp_path):
    """No built-in loader is a permanent failure: one load attempt, one failed event with the --loader
    hint, /readyz says why; then it waits for the alias to move (here: to a pickle it can load)."""
    pt = tmp_path / "pt" / "model.pt"
    pt.parent.mkdir()
    pt.write_bytes(b"not really pytorch")
    push(mdl, "iris", pt, "v1", "--format", "pytorch", "--promote")
    s = serve("iris")
    failed = s.wait_event(lambda e: e["event"] == "failed")
    error = "no built-in loader for format 'pytorch' (built in: pickle, joblib, onnx, skops)"
    assert {k: failed[k] for k in ("version", "error", "hint", "permanent", "retry", "serving")} == {
        "version": "v1",
        "error": error,
        "hint": "serve it with --loader module:function",
        "permanent": True,
        "retry": "when the pointer moves, or on SIGHUP",
        "serving": None,
    }
    ready = httpx.get(s.url + "/readyz")
    assert ready.status_code == 503
    assert {k: ready.json()[k] for k in ("state", "error", "hint")} == {
        "state": "failed",
        "error": f"v1: {error}",
        "hint": "serve it with --loader module:function",
    }
    time.sleep(2.0)  # a transient failure would have been retried (and logged) a few times by now
    kinds = [e["event"] for e in s.events]
    assert (kinds.count("load-failed"), kinds.count("failed"), kinds.count("downloading")) == (1, 1, 1), kinds
    push(mdl, "iris", iris["v1"], "v2", "--promote")
    s.wait_ready("v2")


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_version_that_fails_to_load_leaves_the_old_one_serving(serve, mdl, iris, tmp_path):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    bad = tmp_path / "bad" / "model.pkl"
    bad.parent.mkdir()
    bad.write_bytes(pickle.dumps({"not": "a model"}))
    push(mdl, "iris", bad, "v2")
    s = serve("iris")
    s.wait_ready("v1")
    r = mdl("promote", "iris", "v2", "--wait", "--timeout", "30")
    assert r.returncode == 1, r.stderr
    assert b"failed to load iris/v2" in r.stderr and b"has no predict method" in r.stderr
    resp = infer(s.url)
    assert resp.status_code == 200 and resp.json()["model_version"] == "v1"
    status = json.loads(mdl("status", "iris", "-o", "json").stdout)["replicas"]
    assert [(x["kind"], x["state"], x["loaded"]) for x in status] == [("server", "failed", "v1")]
    assert "no predict method" in status[0]["error"]
    e = s.wait_event(lambda e: e["event"] == "load-failed")
    assert e["version"] == "v2" and e["serving"] == "v1"
    tf = httpx.get(s.url + "/v1/models/iris").json()
    assert tf["model_version_status"][0]["version"] == "v1" and "no predict method" in tf["last_error"]
    assert 'mdl_model_swaps_total{model="iris",result="failed"}' in httpx.get(s.url + "/metrics").text
    # the fleet recovers when the alias moves back
    assert mdl("rollback", "iris").returncode == 0
    r = mdl("promote", "iris", "v1", "--wait", "--timeout", "30")
    assert r.returncode == 0, r.stderr
    assert infer(s.url).json()["model_version"] == "v1"


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_resource_swap_drops_the_old_model_first(serve, mdl, iris):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    push(mdl, "iris", iris["v2"], "v2")
    s = serve("iris", "--swap", "resource")
    s.wait_ready("v1")
    r = mdl("promote", "iris", "v2", "--wait", "--timeout", "30")
    assert r.returncode == 0, r.stderr
    assert infer(s.url).json()["model_version"] == "v2"
    names = [e["event"] for e in s.events if e["event"] in ("unloaded", "loaded")]
    assert names == ["loaded", "unloaded", "loaded"]
    unloaded = next(e for e in s.events if e["event"] == "unloaded")
    assert unloaded["version"] == "v1"


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_joblib_custom_loader_and_restart_from_the_local_copy(serve, mdl, iris, tmp_path):
    push(mdl, "iris", iris["joblib"], "v1", "--promote")
    s = serve("iris")
    s.wait_ready("v1")
    assert infer(s.url).json()["outputs"][0]["data"] == iris["models"]["v1"].predict([[5.1, 3.5, 1.4, 0.2]]).tolist()
    assert s.stop() == 0

    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "my_loader.py").write_text(
        "import joblib\n"
        "class Doubler:\n"
        "    def __init__(self, m): self.m = m\n"
        "    def predict(self, x): return self.m.predict(x) * 2 + 100\n"
        "def load(path):\n"
        "    return Doubler(joblib.load(path / 'model.joblib'))\n")
    cache = tmp_path / "shared-cache"
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(plugin), os.environ.get("PYTHONPATH")) if p)}
    s2 = serve("iris", "--loader", "my_loader:load", "--cache", str(cache), env=env)
    s2.wait_ready("v1")
    out = infer(s2.url).json()["outputs"][0]["data"]
    assert out == (iris["models"]["v1"].predict([[5.1, 3.5, 1.4, 0.2]]) * 2 + 100).tolist()
    assert s2.stop() == 0
    # a restart resumes the verified local copy (no download)
    s3 = serve("iris", "--loader", "my_loader:load", "--cache", str(cache), env=env)
    s3.wait_ready("v1")
    assert any(e["event"] == "resumed" for e in s3.events)
    assert not any(e["event"] == "downloading" for e in s3.events)


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_bad_options_fail_fast(mdl, tmp_path):
    r = mdl("serve", "iris", "--loader", "nonexistent_module_xyz:load", "--port", "0")
    assert r.returncode == 2 and b"cannot import" in r.stderr
    r = mdl("serve", "iris", "--swap", "sometimes")
    assert r.returncode == 2 and b"--swap" in r.stderr
    r = mdl("serve", "iris", "--max-body", "lots")
    assert r.returncode == 2
    r = mdl("serve", "bad/name", "--port", "0")
    assert r.returncode == 2
