"""Staged rollouts end to end: real ``mdl serve`` replicas under load, ``mdl rollout start`` as a
subprocess. A candidate that fails on purpose trips the gate and everyone returns to stable while the
stable replicas keep answering; a good candidate rolls out to the whole fleet without a failed request."""

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

from ..helpers import REPO, until
from .conftest import infer, push
from .flaky_model import FailsAbove

LOADGEN = Path(__file__).with_name("loadgen.py")
GATE = Path(__file__).with_name("flaky_model.py")
N = 4
# the servers unpickle tests.server.flaky_model.FailsAbove
SERVER_ENV = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


class Load:
    """One loadgen process per server (2 connections each); rows are tagged with the server's index."""

    def __init__(self, urls: list[str], tmp_path: Path) -> None:
        self.stop_file = tmp_path / "stop-load"
        self.outs = [tmp_path / f"load-{i}.jsonl" for i in range(len(urls))]
        self.procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(LOADGEN),
                    url + "/v2/models/iris/infer",
                    str(out),
                    "--threads",
                    "2",
                    "--stop-file",
                    str(self.stop_file),
                    "--max-seconds",
                    "90",
                ]
            )
            for url, out in zip(urls, self.outs, strict=True)
        ]

    def finish(self) -> list[list]:
        """Stop the generators; every row as [t_send, t_recv, status, header_version, body_version, _, server]."""
        self.stop_file.touch()
        for p in self.procs:
            assert p.wait(60) == 0
        return [[*json.loads(line), i] for i, out in enumerate(self.outs) for line in out.read_text().splitlines()]

    def kill(self) -> None:
        self.stop_file.touch()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _fleet(serve, mdl, iris, candidate: Path) -> list:
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    push(mdl, "iris", candidate, "v2")
    servers = [serve("iris", env=SERVER_ENV) for _ in range(N)]
    for s in servers:
        s.wait_ready("v1")
    return servers


def _answers(servers) -> list[str | None]:
    out = []
    for s in servers:
        r = infer(s.url)
        out.append(r.json().get("model_version") if r.status_code == 200 else f"HTTP {r.status_code}")
    return out


def _history(mdl) -> list[str]:
    r = mdl("history", "iris", "-o", "json")
    assert r.returncode == 0, r.stderr
    return [e["action"] for e in json.loads(r.stdout)["history"]]


def _status(mdl) -> dict:
    r = mdl("rollout", "status", "iris", "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("gate", ["max-error-rate", "gate-cmd"])
def test_a_failing_candidate_trips_the_gate_and_everyone_returns_to_stable(serve, mdl, iris, client, tmp_path, gate):
    bad = tmp_path / "bad" / "model.pkl"
    bad.parent.mkdir()
    bad.write_bytes(pickle.dumps(FailsAbove(iris["models"]["v1"])))
    servers = _fleet(serve, mdl, iris, bad)
    ok = infer(
        servers[0].url,
        body={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [4.9, 3.0, 1.4, 0.2]}]},
    )
    assert ok.status_code == 200  # the candidate is only bad for some inputs (checked on v1 here: same model)
    gate_args = (
        ["--max-error-rate", "1%", "--min-requests", "5", "--on-no-data", "fail"]
        if gate == "max-error-rate"
        else ["--gate-cmd", f"{sys.executable} {GATE}"]
    )
    load = Load([s.url for s in servers], tmp_path)
    try:
        time.sleep(1.0)
        started = time.monotonic()
        r = mdl(
            "rollout",
            "start",
            "iris",
            "v2",
            "--steps",
            "25,50,100",
            "--interval",
            "3s",
            *gate_args,
            "-o",
            "json",
            timeout=60,
        )
        ended = time.monotonic()
        # every server answers v1 again within a few seconds (the CLI exits right after writing the abort)
        until(lambda: _answers(servers) == ["v1"] * N, 10, 0.05, what=lambda: f"all on v1, not {_answers(servers)}")
        back = time.monotonic()
        stderr = r.stderr.decode()
        assert r.returncode == 1, (r.returncode, stderr, r.stdout)
        assert "aborted" in stderr and "step 1 (25%)" in stderr, stderr
        if gate == "max-error-rate":
            assert "error rate 100.00% > 1%" in stderr, stderr
        else:
            assert "gate" in stderr and "exited 1" in stderr and "5xx answers from v2 on 1 server(s)" in stderr, stderr
        events = [json.loads(line) for line in r.stdout.decode().splitlines()]
        kinds = [e["event"] for e in events]
        assert kinds[0] == "started" and kinds[-1] == "aborted" and "step" not in kinds, kinds
        status = _status(mdl)
        assert (status["state"], status["assigned"], status["step"]) == ("aborted", [], 0), status
        assert status["reason"] and "step 1 (25%)" in status["reason"]
        time.sleep(0.5)  # a little more load on the restored fleet
    finally:
        rows = load.finish() if all(p.poll() is None for p in load.procs) else (load.kill() or [])
    print(
        f"\n[{gate}] rollout aborted after {ended - started:.1f} s, fleet back on v1 {back - ended:.2f} s later; "
        f"{len(rows)} requests"
    )

    assert client.pointer("iris").aliases["latest"] == "v1"
    actions = _history(mdl)
    assert "rollout-start" in actions and "rollout-abort" in actions
    assert actions.index("rollout-start") < actions.index("rollout-abort")
    assert "rollout-step" not in actions and "rollout-succeed" not in actions

    assert len(rows) > 200, len(rows)
    stable = [x for x in rows if x[3] == "v1" or x[4] == "v1"]
    assert stable and all(x[2] == 200 and x[3] == x[4] == "v1" for x in stable), [x for x in stable if x[2] != 200][:5]
    failed = [x for x in rows if x[2] != 200]
    assert failed, "the candidate answered no request: the gate had nothing to catch"
    assert all(x[2] == 500 and x[3] == "v2" for x in failed), failed[:5]  # only the candidate failed
    assert all(started <= x[0] and x[1] <= back for x in failed)  # during the first step, before the way back
    on_candidate = {x[6] for x in rows if x[3] == "v2"}
    assert len(on_candidate) == 1, on_candidate  # 25% of 4: one server, the other three stayed on v1
    untouched = [x for x in rows if x[6] not in on_candidate]
    assert untouched and all(x[2] == 200 and x[3] == "v1" for x in untouched)
    print(f"[{gate}] {len(failed)} failed requests, all v2 answers of one server; {len(stable)} v1 answers, all 200")
    for s in servers:
        metrics = httpx.get(s.url + "/metrics").text
        assert 'result="failed"} 0.0' in metrics or 'result="failed"' not in metrics  # no load failed


def test_a_good_candidate_rolls_out_under_load_without_a_failed_request(serve, mdl, iris, client, tmp_path):
    servers = _fleet(serve, mdl, iris, iris["v2"])
    load = Load([s.url for s in servers], tmp_path)
    try:
        time.sleep(1.0)
        started = time.monotonic()
        r = mdl(
            "rollout",
            "start",
            "iris",
            "v2",
            "--steps",
            "25,50,100",
            "--interval",
            "1s",
            "--max-error-rate",
            "1%",
            "--min-requests",
            "5",
            "--on-no-data",
            "fail",
            "-o",
            "json",
            timeout=60,
        )
        ended = time.monotonic()
        assert r.returncode == 0, r.stderr
        until(lambda: _answers(servers) == ["v2"] * N, 15, 0.1, what=lambda: f"all on v2, not {_answers(servers)}")
        time.sleep(0.5)
    finally:
        rows = load.finish() if all(p.poll() is None for p in load.procs) else (load.kill() or [])
    print(f"\nrollout of 3 steps took {ended - started:.1f} s; {len(rows)} requests")
    events = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert [e["weight"] for e in events if e["event"] == "step"] == [50, 100]
    assert [e["event"] for e in events][-1] == "succeeded"
    assert client.pointer("iris").aliases["latest"] == "v2"
    status = _status(mdl)
    assert (status["state"], status["assigned"], status["counts"]) == ("succeeded", [], {"v2": N}), status
    actions = _history(mdl)
    assert actions.count("rollout-step") == 2 and actions[-1] == "rollout-succeed", actions
    assert len(rows) > 200, len(rows)
    failed = [x for x in rows if x[2] != 200]
    assert not failed, failed[:5]
    assert {x[3] for x in rows} == {"v1", "v2"} and all(x[3] == x[4] for x in rows)
    # the fleet moved in steps: some server answered v2 while another still answered v1
    first_v2 = min(x[0] for x in rows if x[3] == "v2")
    assert any(x[3] == "v1" and x[0] > first_v2 + 0.5 for x in rows)
