#!/usr/bin/env python3
"""HAProxy in front of ``mdl serve`` replicas, configured only by ``mdl endpoints --watch``: draining vs not.

    python bench/load_balancer.py [--backend embedded|distributed] [--rounds 1] [--burst 50]

The scenario of tests/server/test_load_balancer.py, timed. Per run: a fresh model (v1 promoted, v2
pushed), 3 servers ready, a one-shot ``mdl endpoints -o haproxy --out backend.cfg``, HAProxy 2.6
(``-W -db -f main.cfg -f backend.cfg``), the follower (``mdl endpoints NAME -o haproxy --watch --out
backend.cfg --exec 'kill -USR2 <haproxy master>' --json``) and tests/server/loadgen.py through HAProxy
(4 threads, a new connection per request, so what is measured is the balancer's view). Phases, each
from its start to the next one's (CLOCK_MONOTONIC, the load generator's clock):

* join: a 4th server starts; until it is ready, in the backend file, + 1 s;
* SIGTERM: one server stops; until it exits + 1 s (seconds until it is out of the backend file too);
* SIGKILL: one server is killed; until the registry notices and it is out of the file + 1 s;
* promote: ``mdl promote NAME v2 --wait`` (every server swaps with ``--swap resource``), then until the
  backend file lists every server and the follower has not written for 2.5 s (the file can lag the
  fleet: one that swapped all at once may be written out of it after it is back), + 1 s; ``last write
  s``: from the promote to the follower's last write.

A request counts in the phase its answer came in (a request sent just before a SIGKILL fails because
of it; requests answered before the join are left out, those answered after the end count in promote).

Two configurations, alternating, ``--rounds`` each: ``mdl`` (``--swap resource --max-unavailable 1
--drain-delay 2``: mdl's defaults but the swap policy) and ``baseline`` (``--max-unavailable 0
--drain-delay 0``: servers that leave at once, all together, as a balancer sees servers that do not
drain). Reported: requests, failed requests (status != 200) per phase, seconds from SIGTERM / SIGKILL
to the server's removal from the backend file, the follower's writes and reloads.

Then once, a burst: a follower of another model writing its own file with ``--exec 'echo x >>
COUNT'``, and a child registering ``--burst`` ready server records through the library: the reloads
the burst causes and the seconds from the first registration to all of them in the file.

Targets: ``mdl``: no failed request in the join, SIGTERM and promote phases; burst: <= 2 reloads.
On ``distributed`` it works under its own HDFS root and ZooKeeper chroot, and deletes both.
Writes bench/results/load_balancer.json.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import _benchlib as bl

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
LOADGEN = bl.REPO / "tests" / "server" / "loadgen.py"
CONFIGS = {
    "mdl": ["--swap", "resource", "--max-unavailable", "1", "--drain-delay", "2"],
    "baseline": ["--swap", "resource", "--max-unavailable", "0", "--drain-delay", "0"],
}
PHASES = ("join", "sigterm", "sigkill", "promote")
TRAIN = """
import pickle, sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
for path, c in ((sys.argv[1], 1.0), (sys.argv[2], 0.01)):
    open(path, "wb").write(pickle.dumps(LogisticRegression(C=c, max_iter=500).fit(x, y)))
"""
BURST = """
import sys, time
from mdl.client import Client
from mdl.config import load
name, n = sys.argv[1], int(sys.argv[2])
with Client(load()) as c:
    c.registry  # connect before the clock starts
    handles = []
    t0 = time.monotonic()
    for i in range(n):
        handles.append(c.register_replica(name, f"burst-{i:03d}", {
            "kind": "server", "state": "ready", "alias": "latest", "desired": "v1", "loaded": "v1",
            "address": f"http://127.0.0.1:{20000 + i}"}))
    print(t0, time.monotonic(), flush=True)
    sys.stdin.readline()  # the parent saw all of them in the file
    for h in handles:
        h.close()
"""
DROP_CHROOT = """
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=10)
zk.start(timeout=10)
try:
    zk.delete(sys.argv[2], recursive=True)
finally:
    zk.stop()
    zk.close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(pred, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def http_json(url: str, timeout: float = 2) -> tuple[int, dict | None, dict]:
    """(status, JSON body or None, headers); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body, status, headers = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as exc:
        body, status, headers = exc.read(), exc.code, dict(exc.headers)
    except (urllib.error.URLError, OSError):
        return 0, None, {}
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    return status, doc if isinstance(doc, dict) else None, headers


class Events:
    """A child's JSON lines on stdout, collected by a thread."""

    def __init__(self, proc: subprocess.Popen, copy: Path) -> None:
        self.proc, self.events, self.copy = proc, [], copy
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.copy, "ab") as f:  # kept with --keep
            for line in self.proc.stdout:
                f.write(line)
                f.flush()
                self._add(line)

    def _add(self, line: bytes) -> None:
        try:
            doc = json.loads(line)
        except ValueError:
            return
        if isinstance(doc, dict):
            doc["_seen"] = time.monotonic()  # when the bench read it (CLOCK_MONOTONIC, as the load generator)
            self.events.append(doc)

    def started(self, log: Path) -> bool:
        """It printed "following" (exits the bench if it stopped instead)."""
        if self.proc.poll() is not None:
            raise SystemExit(f"the follower exited {self.proc.returncode}: {log.read_text()[-3000:]}")
        return self.count("following") == 1

    def last(self, event: str) -> float:
        """When the bench last read ``event`` (0: never)."""
        return max((e["_seen"] for e in list(self.events) if e.get("event") == event), default=0.0)

    def count(self, event: str) -> int:
        return sum(1 for e in list(self.events) if e.get("event") == event)

    def first(self, event: str) -> dict | None:
        return next((e for e in list(self.events) if e.get("event") == event), None)


class Server(Events):
    def __init__(self, mdl: str, env: dict, name: str, opts: list[str], cache: Path, log: Path) -> None:
        super().__init__(
            subprocess.Popen(
                [mdl, "serve", name, "--port", "0", "-o", "json", "--cache", str(cache), *opts],
                env=env,
                cwd=bl.REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=open(log, "wb"),
            ),
            log.with_suffix(".jsonl"),
        )
        self.log = log
        self.url = ""

    def wait_ready(self, version: str, timeout: float = 120) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            if not self.url:
                e = self.first("listening")
                self.url = str(e["address"]) if e else ""
                return False
            status, doc, _ = http_json(self.url + "/v2/health/ready")
            return status == 200 and doc is not None and doc.get("version") == version

        until(ready, timeout, f"a server ready on {version}", 0.1)


def stop_all(procs: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM every live child at once, SIGKILL those still alive after ``timeout``."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Bench:
    def __init__(self, args: argparse.Namespace, be: bl.Backend) -> None:
        self.args, self.be, self.root = args, be, be.root
        self.env = be.env
        self.procs: list[subprocess.Popen] = []

    def follower(self, name: str, out: Path, reload: str, d: Path) -> Events:
        """``mdl endpoints NAME -o haproxy --watch --out OUT --exec RELOAD --json``, its events in ``d``."""
        proc = subprocess.Popen(
            [self.args.mdl, "endpoints", name, "-o", "haproxy", "--watch", "--out", str(out), "--exec", reload]
            + ["--json"],
            env=self.env,
            cwd=bl.REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=open(d / "follower.log", "wb"),
        )
        return Events(proc, d / "follower.jsonl")

    def mdl(self, *argv: str, timeout: float = 180) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [self.args.mdl, *argv], env=self.env, cwd=bl.REPO, capture_output=True, text=True, timeout=timeout
        )
        if r.returncode != 0:
            raise SystemExit(f"mdl {' '.join(argv)} failed ({r.returncode}): {r.stderr}{r.stdout}")
        return r

    def ids(self, name: str) -> dict[str, str]:
        """URL -> replica id of the servers ``mdl endpoints`` lists."""
        doc = json.loads(self.mdl("endpoints", name, "-o", "json").stdout)
        return {e["url"]: e["id"] for e in doc["endpoints"]}

    def serve(self, name: str, config: str, d: Path) -> Server:
        i = len(list(d.glob("serve-*.log")))
        s = Server(self.args.mdl, self.env, name, CONFIGS[config], d / f"cache-{i}", d / f"serve-{i}.log")
        self.procs.append(s.proc)
        return s

    def run(self, config: str, rnd: int, v1: Path, v2: Path) -> dict:
        name = f"iris-{config}-{rnd}"
        d = self.root / name
        d.mkdir()
        self.mdl("push", name, str(v1), "--version", "v1", "--promote")
        self.mdl("push", name, str(v2), "--version", "v2")
        servers = [self.serve(name, config, d) for _ in range(3)]
        for s in servers:
            s.wait_ready("v1")
        until(lambda: len(self.ids(name)) == 3, 30, "three servers listed", 0.1)
        backend = d / "backend.cfg"
        self.mdl("endpoints", name, "-o", "haproxy", "--out", str(backend))
        port = free_port()
        main = d / "haproxy.cfg"
        main.write_text(
            "global\n    master-worker\n"
            "defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n"
            f"frontend fe\n    bind 127.0.0.1:{port}\n    http-response set-header X-Served-By %s\n"
            f"    default_backend mdl_{name}\n"
        )
        haproxy = subprocess.Popen(
            [HAPROXY, "-W", "-db", "-f", str(main), "-f", str(backend)],
            stdin=subprocess.DEVNULL,
            stdout=open(d / "haproxy.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        self.procs.append(haproxy)
        follower = self.follower(name, backend, f"kill -USR2 {haproxy.pid}", d)
        self.procs.append(follower.proc)
        lb = f"http://127.0.0.1:{port}"
        until(lambda: http_json(lb + "/v2/health/ready")[0] == 200, 30, "HAProxy to answer")
        until(lambda: follower.started(d / "follower.log"), 30, "the follower to start")
        out, stop_file = d / "load.jsonl", d / "load.stop"
        load = subprocess.Popen(
            [
                sys.executable,
                str(LOADGEN),
                f"{lb}/v2/models/{name}/infer",
                str(out),
                "--threads",
                "4",
                "--fresh",
                "--stop-file",
                str(stop_file),
                "--max-seconds",
                "300",
            ],
            stdin=subprocess.DEVNULL,
        )
        self.procs.append(load)
        time.sleep(1.0)
        listed = lambda sid: f"    server {sid} " in backend.read_text()  # noqa: E731

        def removal(sid: str, t0: float, timeout: float) -> float:
            until(lambda: not listed(sid), timeout, f"{sid} out of the backend file", 0.005)
            return time.monotonic() - t0

        t = {}
        # join: a 4th server; ready, in the backend, + 1 s
        t["join"] = time.monotonic()
        fourth = self.serve(name, config, d)
        servers.append(fourth)
        fourth.wait_ready("v1")
        fourth_id = until(lambda: self.ids(name).get(fourth.url), 30, "the fourth server listed", 0.1)
        until(lambda: listed(fourth_id), 15, "the fourth server in the backend file", 0.02)
        time.sleep(1.0)

        # SIGTERM: wait for its exit + 1 s; when it left the backend file is timed meanwhile
        ids = self.ids(name)
        leaving = servers.pop(0)
        leaving_id = ids[leaving.url]
        t["sigterm"] = time.monotonic()
        leaving.proc.send_signal(signal.SIGTERM)
        term_out = removal(leaving_id, t["sigterm"], 30)
        term_rc = leaving.proc.wait(30)
        term_exit = time.monotonic() - t["sigterm"]
        time.sleep(1.0)

        # SIGKILL: until the registry notices and the follower drops it + 1 s
        victim = servers.pop(0)
        victim_id = ids[victim.url]
        t["sigkill"] = time.monotonic()
        victim.proc.kill()
        victim.proc.wait(10)
        kill_out = removal(victim_id, t["sigkill"], float(self.env.get("MDL_REGISTRY_TIMEOUT", "10")) * 3 + 10)
        time.sleep(1.0)

        # promote v2: every server swaps with --swap resource
        t["promote"] = time.monotonic()
        self.mdl("promote", name, "v2", "--wait", "--timeout", "90")
        promote_s = time.monotonic() - t["promote"]

        # the balancer's view may lag the fleet (a fleet that swapped all at once can be written out of the
        # file after it is back): wait until the file lists every server and the follower has been quiet for
        # longer than it can hold a change (max_wait + min_interval), and HAProxy answers
        def settled() -> bool:
            return (
                backend.read_text().count("    server ") == len(servers)
                and time.monotonic() - follower.last("written") > 2.5
                and http_json(lb + "/v2/health/ready")[0] == 200
            )

        until(settled, 60, "the backend to settle after the promote", 0.05)
        answers_s = max(0.0, follower.last("written") - t["promote"])
        time.sleep(1.0)
        t_end = time.monotonic()
        stop_file.touch()
        if load.wait(60) != 0:
            raise SystemExit(f"the load generator failed ({load.returncode})")
        stop_all([follower.proc])
        stop_all([haproxy])
        stop_all([s.proc for s in servers])
        rows = [json.loads(line) for line in out.read_text().splitlines()]

        bounds = [t[p] for p in PHASES] + [t_end]
        phases = {}
        for p, a, b in zip(PHASES, bounds[:-1], bounds[1:], strict=True):
            # by when the answer came (r[1]): a request sent just before a kill fails because of it
            in_phase = [r for r in rows if a <= r[1] < b or (p == PHASES[-1] and r[1] >= b)]
            bad = sorted((r for r in in_phase if r[2] != 200), key=lambda r: r[1])
            phases[p] = {
                "seconds": round(b - a, 2),
                "requests": len(in_phase),
                "failed": len(bad),
                # when into the phase (s) the first failed requests were answered, status, error
                "first_failed": [[round(r[1] - a, 3), r[2], r[4] if r[2] == 0 else None] for r in bad[:5]],
                # from the first failed answer to the last: a balancer with no server fails fast, so a
                # count alone overstates a short outage
                "failing_s": round(bad[-1][1] - bad[0][1], 3) if bad else 0.0,
                "statuses": {str(k): sum(1 for r in bad if r[2] == k) for k in sorted({r[2] for r in bad})},
            }
        t_join, t_term = t["join"], t["sigterm"]
        return {
            "config": config,
            "round": rnd,
            "model": name,
            "server_options": CONFIGS[config],
            "requests": len(rows),
            "failed": sum(1 for r in rows if r[2] != 200),
            "phases": phases,
            "phase_starts_monotonic": {**t, "end": t_end},
            "load_s": round(t_end - t["join"] + 1.0, 2),
            "sigterm_to_out_of_file_s": round(term_out, 3),
            "sigterm_to_exit_s": round(term_exit, 3),
            "sigterm_exit_code": term_rc,
            "sigkill_to_out_of_file_s": round(kill_out, 3),
            "promote_wait_s": round(promote_s, 2),
            "promote_to_last_write_s": round(answers_s, 2),
            "fourth_took_traffic": any(r[5] == fourth_id for r in rows if t_join <= r[0] < t_term and r[2] == 200),
            "versions_at_end": sorted({str(r[3]) for r in rows if r[0] > t_end - 0.5 and r[2] == 200}),
            "writes": follower.count("written"),
            "reloads": follower.count("reloaded"),
            "reload_failures": follower.count("reload-failed"),
        }

    def burst(self, n: int, v1: Path) -> dict:
        name = "lb-burst"
        d = self.root / name
        d.mkdir()
        self.mdl("push", name, str(v1), "--version", "v1", "--promote")  # endpoints wants a model that exists
        out, count = d / "backend.cfg", d / "reloads.txt"
        count.touch()
        follower = self.follower(name, out, f"echo x >> {count}", d)
        self.procs.append(follower.proc)
        until(lambda: follower.started(d / "follower.log"), 30, "the burst follower to start")
        time.sleep(1.5)  # its first write (an empty backend), if any, is not the burst's
        before = len(count.read_text().splitlines())
        child = subprocess.Popen(
            [bl.interpreter_of(self.args.mdl), "-c", BURST, name, str(n)],
            env=self.env,
            cwd=bl.REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(child)
        assert child.stdin is not None and child.stdout is not None
        line = child.stdout.readline().split()
        if len(line) != 2:
            raise SystemExit(f"the registering child failed ({child.wait()})")
        t_first, t_last = map(float, line)
        servers = lambda: out.read_text().count("    server ") if out.exists() else 0  # noqa: E731
        until(lambda: servers() >= n, 60, f"{n} servers in the burst follower's file", 0.005)
        all_in = time.monotonic() - t_first
        time.sleep(2.0)  # a write still pending would land in here
        reloads = len(count.read_text().splitlines()) - before
        child.stdin.write("done\n")
        child.stdin.flush()
        child.wait(60)
        stop_all([follower.proc])
        return {
            "replicas": n,
            "register_s": round(t_last - t_first, 3),
            "all_in_file_s": round(all_in, 3),
            "reloads": reloads,
            "exec_failures": follower.count("reload-failed"),
        }

    def drop_distributed(self, run_root: str, chroot: str) -> None:
        """Delete this run's HDFS tree (WebHDFS DELETE) and ZooKeeper chroot (a kazoo child)."""
        hosts = self.env["MDL_STORAGE_URL"].split("://", 1)[1].split("/", 1)[0].split(",")
        user = self.env.get("MDL_STORAGE_USER") or getpass.getuser()
        http = "https" if self.env["MDL_STORAGE_URL"].startswith("swebhdfs") else "http"
        for host in hosts:
            req = urllib.request.Request(
                f"{http}://{host}/webhdfs/v1{urllib.parse.quote(run_root)}?op=DELETE&recursive=true&user.name={user}",
                method="DELETE",
            )
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
                break
            except (urllib.error.URLError, OSError):
                continue
        else:
            bl.warn(f"could not delete {run_root}; remove it by hand")
        zk = self.env["MDL_REGISTRY_URL"].split("://", 1)[1].split("/", 1)[0]
        if (
            subprocess.run(
                [bl.interpreter_of(self.args.mdl), "-c", DROP_CHROOT, zk, chroot], capture_output=True
            ).returncode
            != 0
        ):
            bl.warn(f"could not delete the ZooKeeper chroot {chroot}; remove it by hand")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bl.add_common_args(ap)
    ap.add_argument("--rounds", type=int, default=1, help="runs of each configuration, alternating (default 1)")
    ap.add_argument("--burst", type=int, default=50, help="replica records registered at once (default 50)")
    args = ap.parse_args()
    if args.rounds < 1 or args.burst < 1:
        ap.error("--rounds and --burst must be >= 1")
    if not os.access(HAPROXY, os.X_OK):
        raise SystemExit("haproxy is missing: apt-get install haproxy")
    bl.configure(args)
    be = bl.Backend.create(args.backend, args.workdir)
    run_id = uuid.uuid4().hex[:10]
    run_root = chroot = ""
    if args.backend == "distributed":  # a private tree and chroot, deleted at the end
        hosts = be.env["MDL_REGISTRY_URL"].split("://", 1)[1].split("/", 1)[0]
        run_root, chroot = f"/mdl-bench/lb-{run_id}", f"/mdl-bench-lb-{run_id}"
        be.env["MDL_STORAGE_ROOT"] = f"{run_root}/models"
        be.env["MDL_REGISTRY_URL"] = f"zk://{hosts}{chroot}"
    b = Bench(args, be)
    try:
        v1, v2 = be.root / "v1.pkl", be.root / "v2.pkl"
        subprocess.run([bl.interpreter_of(args.mdl), "-c", TRAIN, str(v1), str(v2)], check=True)
        print(f"load balancer bench: backend {args.backend}, {args.rounds} round(s), {HAPROXY}", flush=True)
        runs = []
        for rnd in range(1, args.rounds + 1):
            order = list(CONFIGS) if rnd % 2 else list(reversed(CONFIGS))
            for config in order:
                r = b.run(config, rnd, v1, v2)
                runs.append(r)
                ph = r["phases"]
                print(
                    f"{config:<8} round {rnd}: {r['requests']} requests, failed "
                    + ", ".join(f"{p} {ph[p]['failed']}" for p in PHASES)
                    + f"; SIGTERM -> out {r['sigterm_to_out_of_file_s']:.2f} s; {r['reloads']} reloads",
                    flush=True,
                )
        burst = b.burst(args.burst, v1)

        rows = []
        for r in runs:
            ph = r["phases"]
            rows.append(
                [
                    r["config"],
                    str(r["round"]),
                    str(r["requests"]),
                    f"{r['load_s']:.1f}",
                    *(str(ph[p]["failed"]) for p in PHASES),
                    f"{r['sigterm_to_out_of_file_s']:.2f}",
                    f"{r['sigkill_to_out_of_file_s']:.2f}",
                    f"{r['promote_wait_s']:.1f}",
                    f"{r['promote_to_last_write_s']:.1f}",
                    str(r["writes"]),
                    str(r["reloads"]),
                ]
            )
        print()
        print(
            bl.table(
                [
                    "config",
                    "round",
                    "requests",
                    "load s",
                    "failed join",
                    "SIGTERM",
                    "SIGKILL",
                    "promote",
                    "SIGTERM->out s",
                    "SIGKILL->out s",
                    "promote s",
                    "last write s",
                    "writes",
                    "reloads",
                ],
                rows,
            )
        )
        print(
            f"\nburst: {burst['replicas']} replicas registered in {burst['register_s']:.2f} s; all in the file "
            f"{burst['all_in_file_s']:.2f} s after the first; {burst['reloads']} reload(s)"
        )
        mine = [r for r in runs if r["config"] == "mdl"]
        failed = {p: sum(r["phases"][p]["failed"] for r in mine) for p in ("join", "sigterm", "promote")}
        targets = [
            {"target": f"mdl: 0 failed requests in the {p} phase", "pass": failed[p] == 0, "value_failed": failed[p]}
            for p in failed
        ]
        targets.append(
            {
                "target": f"burst of {args.burst}: <= 2 reloads",
                "pass": burst["reloads"] <= 2,
                "value_reloads": burst["reloads"],
            }
        )
        for t_ in targets:
            print(f"{bl.verdict(t_['pass'])}  {t_['target']}")
        doc = {
            "benchmark": "load_balancer",
            "env": bl.env_info(args.mdl),
            **be.describe(),
            "haproxy": subprocess.run([HAPROXY, "-v"], capture_output=True, text=True).stdout.split("\n")[0],
            "load_generator": "tests/server/loadgen.py --threads 4 --fresh",
            "rounds": args.rounds,
            "runs": runs,
            "burst": burst,
            "targets": targets,
        }
        bl.save("load_balancer", doc, args.no_save)
        return 0
    finally:
        stop_all(b.procs)
        if args.backend == "distributed":
            b.drop_distributed(run_root, chroot)
        be.cleanup(args.keep)


if __name__ == "__main__":
    sys.exit(main())
