"""A real HAProxy in front of ``mdl serve`` replicas, configured only by ``mdl endpoints --watch``.

Under continuous load (fresh connections, so what is measured is the balancer's view, not a client's
keep-alive races with HAProxy's reloads): a replica joins, one stops with SIGTERM, one is killed with
SIGKILL, and a promote swaps every replica with ``--swap resource``. The figures (failed requests per
phase, reloads) are printed; the README's "Load balancing" section quotes them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ..helpers import MDL, REPO, until
from .conftest import push
from .test_swap import LOADGEN

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
DRAIN = {"MDL_SERVE_DRAIN_DELAY": "2"}  # the default; tests elsewhere set 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Follower:
    """``mdl endpoints NAME -o haproxy --watch --out FILE --exec CMD --json``, its events collected."""

    def __init__(self, env: dict[str, str], out: Path, exec_cmd: str, log: Path) -> None:
        self.events: list[dict] = []
        self.proc = subprocess.Popen(
            [MDL, "endpoints", "iris", "-o", "haproxy", "--watch", "--out", str(out), "--exec", exec_cmd, "--json"],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=open(log, "wb"))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def count(self, event: str) -> int:
        return sum(1 for e in self.events if e["event"] == event)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


class Load:
    """tests/server/loadgen.py against URL; ``rows(since, until)`` the responses sent in a window."""

    def __init__(self, url: str, tmp: Path) -> None:
        self.out, self.stop_file = tmp / "load.jsonl", tmp / "load.stop"
        self.proc = subprocess.Popen([sys.executable, str(LOADGEN), url, str(self.out), "--threads", "4", "--fresh",
                                      "--stop-file", str(self.stop_file), "--max-seconds", "240"])
        self.rows: list[list] = []

    def finish(self) -> list[list]:
        self.stop_file.touch()
        assert self.proc.wait(60) == 0
        self.rows = [json.loads(line) for line in self.out.read_text().splitlines()]
        return self.rows

    def failed(self, start: float, end: float) -> list[list]:
        """Failures answered in [start, end) (a request sent just before a phase began fails in it)."""
        return [r for r in self.rows if start <= r[1] < end and r[2] != 200]

    def served_by(self, start: float, end: float) -> set:
        return {r[5] for r in self.rows if start <= r[0] < end and r[2] == 200}


def _answers(url: str) -> str | None:
    """Which server answered a readiness check through the balancer (None: it did not answer 200)."""
    try:
        r = httpx.get(url + "/v2/health/ready", timeout=2)
    except httpx.HTTPError:
        return None
    return r.headers.get("x-served-by") if r.status_code == 200 else None


def _ids(mdl) -> dict[str, str]:
    """URL -> replica id of the servers ``mdl endpoints`` lists."""
    doc = json.loads(mdl("endpoints", "iris", "-o", "json").stdout)
    return {e["url"]: e["id"] for e in doc["endpoints"]}


def test_haproxy_follows_joins_stops_kills_and_resource_swaps_under_load(
    serve, mdl, iris, backend_env, tmp_path
):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    push(mdl, "iris", iris["v2"], "v2")
    swap = ("--swap", "resource", "--max-unavailable", "1")
    servers = [serve("iris", *swap, env=DRAIN) for _ in range(3)]
    for s in servers:
        s.wait_ready("v1")
    until(lambda: len(_ids(mdl)) == 3, 30, 0.1, what="three servers listed")

    backend = tmp_path / "backend.cfg"
    r = mdl("endpoints", "iris", "-o", "haproxy", "--out", str(backend))
    assert r.returncode == 0, r.stderr
    port = _free_port()
    main = tmp_path / "haproxy.cfg"
    main.write_text(
        "global\n    master-worker\n"
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n"
        f"frontend fe\n    bind 127.0.0.1:{port}\n    http-response set-header X-Served-By %s\n"
        "    default_backend mdl_iris\n")
    haproxy = subprocess.Popen([HAPROXY, "-W", "-db", "-f", str(main), "-f", str(backend)],
                               stdout=open(tmp_path / "haproxy.log", "wb"), stderr=subprocess.STDOUT)
    env = {**os.environ, **backend_env}
    follower = Follower(env, backend, f"kill -USR2 {haproxy.pid}", tmp_path / "follower.log")
    lb = f"http://127.0.0.1:{port}"
    load = None
    try:
        until(lambda: _answers(lb), 30, 0.1, what="HAProxy to answer")
        until(lambda: follower.count("following") == 1, 30, 0.1, what="the follower to start")
        assert follower.count("written") == 0  # the file already held what it renders: no rewrite, no reload
        load = Load(lb + "/v2/models/iris/infer", tmp_path)
        time.sleep(1.0)

        # 1. a fourth replica joins: it gets traffic once it is ready, and nothing fails meanwhile
        t_join = time.monotonic()
        fourth = serve("iris", *swap, env=DRAIN)
        servers.append(fourth)
        fourth.wait_ready("v1")
        fourth_id = until(lambda: _ids(mdl).get(fourth.url), 30, 0.1, what="the fourth server listed")
        until(lambda: fourth_id in backend.read_text(), 10, 0.05, what="the fourth server in the backend")
        until(lambda: _answers(lb) == fourth_id, 15, 0.02, what="HAProxy to send the fourth server requests")
        time.sleep(1.0)

        # 2. SIGTERM: it leaves the backend, keeps answering for the drain delay, then exits 0
        t_term = time.monotonic()
        leaving = servers.pop(0)
        leaving_id = _ids(mdl)[leaving.url]
        assert leaving.stop(signal.SIGTERM) == 0
        assert leaving_id not in backend.read_text()
        time.sleep(1.0)

        # 3. SIGKILL: no chance to deregister; HAProxy's health check and retries cover until the registry notices
        t_kill = time.monotonic()
        victim = servers.pop(0)
        victim_id = _ids(mdl)[victim.url]
        victim.stop(signal.SIGKILL)
        until(lambda: victim_id not in backend.read_text(), float(backend_env.get("MDL_REGISTRY_TIMEOUT", "10")) * 3 + 10,
              0.1, what="the killed server out of the backend")
        time.sleep(1.0)

        # 4. promote v2: every replica swaps with --swap resource, one out of rotation at a time
        t_promote = time.monotonic()
        r = mdl("promote", "iris", "v2", "--wait", "--timeout", "90")
        assert r.returncode == 0, r.stderr
        time.sleep(1.0)
        t_end = time.monotonic()
        rows = load.finish()
    finally:
        if load is not None and not load.stop_file.exists():
            load.stop_file.touch()
        follower.stop()
        haproxy.send_signal(signal.SIGTERM)
        haproxy.wait(20)

    assert len(rows) > 200, len(rows)
    joined, termed, killed, promoted = (load.failed(a, b) for a, b in
                                        ((t_join, t_term), (t_term, t_kill), (t_kill, t_promote), (t_promote, t_end)))
    print(f"\n{len(rows)} requests through HAProxy; failed: join {len(joined)}, SIGTERM {len(termed)}, "
          f"SIGKILL {len(killed)}, promote --swap resource {len(promoted)}; "
          f"{follower.count('written')} writes, {follower.count('reloaded')} reloads")
    assert fourth_id in load.served_by(t_join, t_term)  # the new replica took traffic...
    assert not joined and not termed and not promoted, (joined[:3], termed[:3], promoted[:3])
    assert len(killed) <= 4, killed[:5]  # ...HAProxy re-sends a refused connection to another server
    assert {r[3] for r in rows if r[0] > t_end - 0.5 and r[2] == 200} == {"v2"}
    assert leaving_id not in load.served_by(t_kill, t_end) and victim_id not in load.served_by(t_promote, t_end)
    assert follower.count("reload-failed") == 0
    assert follower.count("reloaded") == follower.count("written") <= 12
