#!/usr/bin/env python3
"""Fleet scale: 1,000 replicas against the real ZooKeeper ensemble (issue 19, "measure first").

    python bench/fleet_scale.py --backend distributed [--replicas 1000] [--per-worker 100] [--promotions 5]
                                [--request-ns 100,300,1000] [--storm follower|leader|rolling|none]
                                [--record-updates]

The replicas are registered like ``mdl watch`` registers itself: each one is its own ``Client`` (its
own ZooKeeper session), holds a replica record (kind watcher, alias latest, state ready) and a pointer
watch (``Client.watch_pointer``). Its callback stamps ``time.monotonic()`` (CLOCK_MONOTONIC, shared by
every process of the host) when it first sees a version; with ``--record-updates`` it then also writes
``loaded`` = that version to its record (one write, where a real watcher writes twice: syncing, then
ready; nothing is downloaded).
The replicas are spread over child processes (``--per-worker`` each) on mdl's interpreter (10 x 100 by default);
a controller child (one more session) pushes tiny versions and promotes them with ``Client.promote``.

How this differs from 1,000 hosts: every session shares this machine's CPUs (and the three ZooKeeper
JVMs run on it too), the network is loopback, and 100 replicas share one Python process (one GIL), so
a notification waits behind the other 99 replicas' work in that process. The sessions themselves are
real: one kazoo client and one TCP connection per replica, as with one replica process per host.

Measured:

1. promote -> each replica saw the new version: p50/p99/max over ``--promotions`` promotions of all
   replicas' latencies, from just before ``Client.promote`` is called (and, for reference, from its
   return); per promotion the slowest replica ("all notified"). Target: p99 < 1 s.
2. ``mdl status NAME`` (the real CLI, table output): median of 3 after one untimed run. Target < 1 s.
   Also ``Fleet(client).replicas`` in the controller.
3. A rollout step's assignment over the replica ids: ``assign("id", [], ids, 10)`` and the step up to 50
   (pure), and ``RolloutDriver._assignment`` (the fleet read plus the assignment; its ``_rebalance``
   additionally writes the rollout document, which every watcher then re-reads: not timed here).
4. ZooKeeper requests per promotion at N = ``--request-ns``: counted on the client side (every request
   the replicas' kazoo clients send, pings excluded) and on the server side (``zk_packets_received`` of
   the ``mntr`` four-letter word summed over the servers, less the idle rate measured just before, so
   pings and other users of the ensemble are mostly subtracted). Per replica it must stay flat.
5. Reconnect storm (last; ``--storm follower``, the default, stops the follower most sessions are
   connected to, ``leader`` the leader, ``rolling`` each server in turn): time until every session is
   connected again and every replica registered, the replica count seen meanwhile (every 0.2 s), how
   many sessions expired, no replica lost, and one promotion still reaching all of them. A follower's
   restart should leave the sessions alive (they move to the other servers within the session timeout);
   a leader's costs an election, during which sessions may expire. The dev cluster is always brought
   fully back up (``zk start all``).

The distributed backend only (the targets are about ZooKeeper); it works in a ZooKeeper chroot and an
HDFS root of its own and deletes both. Standard library only; the children import mdl.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _benchlib as bl

NAME = "fleet"
TARGET_NOTIFY_P99_S = 1.0
TARGET_STATUS_S = 1.0
READY_TIMEOUT_S = 300.0  # for a worker's replicas to register and see the first version
NOTIFY_TIMEOUT_S = 120.0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


# -- the children: workers (replicas) and the controller, on mdl's interpreter ----------------------


def _serve(handlers: dict, first: dict | None = None) -> None:
    """Answer JSON commands from stdin, one JSON line each on stdout, until quit or EOF."""
    def say(doc: dict) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    if first is not None:
        say(first)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            doc = handlers[cmd["cmd"]](cmd)
        except Exception as exc:  # reported to the parent, which fails the run
            doc = {"error": f"{cmd['cmd']}: {exc!r}"}
        say(doc)
        if cmd["cmd"] == "quit":
            return


def count_requests(client, counter: list[int], lock: threading.Lock) -> None:  # type: ignore[no-untyped-def]
    """Count every request ``client``'s kazoo client sends (pings do not go through ``_call``)."""
    kazoo = client.registry.session.client()
    call = kazoo._call

    def counted(*a, **kw):  # type: ignore[no-untyped-def]
        with lock:
            counter[0] += 1
        return call(*a, **kw)

    kazoo._call = counted


def worker(spec: dict) -> None:
    """``spec["ids"]`` replicas, each its own Client (ZooKeeper session), record and pointer watch."""
    import resource
    from concurrent.futures import ThreadPoolExecutor

    from mdl.client import Client
    from mdl.config import load
    from mdl.fleet import ReplicaRecord
    from mdl.host import now_iso

    config = load()
    ids, initial, update = spec["ids"], spec["initial"], spec["update"]
    n = len(ids)
    cond = threading.Condition()
    seen: dict[str, dict[int, float]] = {}
    requests, lock = [0], threading.Lock()
    clients: list = [None] * n
    handles: list = [None] * n
    updates: queue.SimpleQueue = queue.SimpleQueue()

    def on_pointer(i: int, pointer) -> None:  # type: ignore[no-untyped-def]
        t = time.monotonic()
        v = pointer.aliases.get("latest")
        if v is None:
            return
        with cond:
            got = seen.setdefault(v, {})
            if i in got:
                return
            got[i] = t
            cond.notify_all()
        if update and v != initial:
            updates.put((i, v))

    def updater() -> None:  # what a watcher does once it holds the version: report it
        while True:
            i, v = updates.get()
            try:
                handles[i].update(desired=v, loaded=v, state="ready", since=now_iso())
            except Exception:  # Unavailable: kept and written on reconnect
                pass

    for _ in range(4):
        threading.Thread(target=updater, daemon=True).start()

    def start(i: int) -> None:
        c = Client(config)
        clients[i] = c
        count_requests(c, requests, lock)
        rec = ReplicaRecord(kind="watcher", host=f"bench-host-{ids[i]}", pid=os.getpid(), dir=f"/srv/{ids[i]}",
                            alias="latest", desired=initial, loaded=initial, state="ready", since=now_iso())
        handles[i] = c.register_replica(spec["name"], ids[i], rec.to_dict())
        c.watch_pointer(spec["name"], lambda p, i=i: on_pointer(i, p))

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(start, range(n)))
    with cond:
        cond.wait_for(lambda: len(seen.get(initial, {})) == n, READY_TIMEOUT_S)
        ok = len(seen.get(initial, {})) == n
    first = {"ready": ok, "n": n, "start_s": time.monotonic() - t0, "threads": threading.active_count()}

    def wait(cmd: dict) -> dict:
        v = cmd["version"]
        with cond:
            cond.wait_for(lambda: len(seen.get(v, {})) == n, cmd["wait_s"])
            got = dict(seen.get(v, {}))
        return {"times": list(got.values()), "missing": n - len(got)}

    def connected(cmd: dict) -> dict:
        return {"connected": sum(1 for c in clients if c.registry.session.connected)}

    def reqs(cmd: dict) -> dict:
        with lock:
            return {"requests": requests[0]}

    def rss(cmd: dict) -> dict:
        return {"rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "threads": threading.active_count()}

    def cpu(cmd: dict) -> dict:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {"cpu_s": ru.ru_utime + ru.ru_stime}

    def sessions(cmd: dict) -> dict:
        return {"sessions": [c.registry.session.session_id() for c in clients]}

    def quit_(cmd: dict) -> dict:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda c: c.close(), clients))
        return {"closed": n}

    _serve({"wait": wait, "connected": connected, "requests": reqs, "rss": rss, "cpu": cpu, "sessions": sessions,
            "quit": quit_}, first)


def controller(spec: dict) -> None:
    """One more session: pushes and promotes, reads the fleet, times the assignment, probes the count."""
    import statistics

    from mdl.client import Client
    from mdl.fleet import Fleet
    from mdl.rollout.assign import assign
    from mdl.rollout.driver import RolloutDriver
    from mdl.rollout.state import RolloutState

    client = Client.from_config()
    name, work = spec["name"], Path(spec["work"])
    probe: dict = {"stop": threading.Event(), "samples": [], "thread": None}

    def push(cmd: dict) -> dict:
        for v in cmd["versions"]:
            src = work / "src" / v / "model.bin"
            src.parent.mkdir(parents=True, exist_ok=True)
            src.write_bytes(f"fleet bench {v}\n".encode() * 64)
            client.push(name, src.parent, version=v)
        return {"pushed": len(cmd["versions"])}

    def promote(cmd: dict) -> dict:
        t0 = time.monotonic()
        client.promote(name, cmd["version"])
        return {"t0": t0, "t1": time.monotonic()}

    def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
        times, out = [], None
        for _ in range(repeat):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), out

    def ids(cmd: dict) -> dict:
        return {"ids": sorted(r.id for r in client.replicas(name))}

    def fleet(cmd: dict) -> dict:
        fleet = Fleet(client)
        raw_s, _ = timed(lambda: client.replicas(name), 3)
        fleet_s, recs = timed(lambda: fleet.replicas(name), 3)
        status_s, st = timed(lambda: fleet.status(name), 3)
        matching = sum(1 for r in st.replicas if st.matches(r))  # type: ignore[attr-defined]
        return {"list_replicas_s": raw_s, "fleet_replicas_s": fleet_s, "fleet_status_s": status_s,
                "count": len(recs), "matching": matching}  # type: ignore[arg-type]

    def assignment(cmd: dict) -> dict:
        live = sorted(r.id for r in Fleet(client).replicas(name))
        first_s, at10 = timed(lambda: assign("bench", [], live, 10), 21)
        step_s, at50 = timed(lambda: assign("bench", at10, live, 50), 21)
        kept = len(set(at10) & set(at50))  # type: ignore[arg-type]
        state = RolloutState(id="bench", alias="latest", stable=cmd["stable"], candidate=cmd["candidate"],
                             steps=(10, 50, 100), step=1, assigned=tuple(at10))  # type: ignore[arg-type]
        driver = RolloutDriver(client, name, who="bench")
        e2e_s, got = timed(lambda: driver._assignment(state), 3)
        return {"live": len(live), "assign_10_s": first_s, "assign_10_to_50_s": step_s, "n10": len(at10),
                "n50": len(at50), "kept_10_in_50": kept, "driver_assignment_s": e2e_s,
                "driver_n": len(got)}  # type: ignore[arg-type]

    def run_probe(interval: float) -> None:
        while not probe["stop"].is_set():
            t = time.monotonic()
            try:
                probe["samples"].append([t, len(client.replicas(name)), time.monotonic() - t, None])
            except Exception as exc:
                probe["samples"].append([t, None, time.monotonic() - t, type(exc).__name__])
            probe["stop"].wait(interval)

    def probe_start(cmd: dict) -> dict:
        probe["stop"].clear()
        probe["samples"] = []
        probe["thread"] = threading.Thread(target=run_probe, args=(cmd["interval"],), daemon=True)
        probe["thread"].start()
        return {}

    def probe_stop(cmd: dict) -> dict:
        probe["stop"].set()
        probe["thread"].join()
        return {"samples": probe["samples"]}

    def drop(cmd: dict) -> dict:
        """Delete this run's ZooKeeper chroot (after every replica is gone)."""
        from kazoo.client import KazooClient

        hosts, chroot = os.environ["MDL_REGISTRY_URL"].split("://", 1)[1].split("/", 1)
        client.close()
        zk = KazooClient(hosts=hosts, timeout=10)
        zk.start(timeout=15)
        try:
            zk.delete("/" + chroot, recursive=True)
        finally:
            zk.stop()
            zk.close()
        return {"dropped": "/" + chroot}

    def quit_(cmd: dict) -> dict:
        client.close()
        return {}

    _serve({"push": push, "promote": promote, "ids": ids, "fleet": fleet, "assign": assignment,
            "probe_start": probe_start, "probe_stop": probe_stop, "drop": drop, "quit": quit_},
           {"ready": True})


# -- the parent (standard library only) -------------------------------------------------------------


class Child:
    """A child answering one JSON line per command."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._err = open(log, "wb")
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self._err, text=True, bufsize=1)
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:  # type: ignore[union-attr]
            self._lines.put(line)
        self._lines.put(None)

    def send(self, cmd: str, **kw: object) -> None:
        self.p.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")  # type: ignore[union-attr]
        self.p.stdin.flush()  # type: ignore[union-attr]

    def reply(self, timeout: float = 600.0) -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise SystemExit(f"no answer from a child within {timeout:g} s (log: {self.log})") from None
        if line is None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"a child exited (rc {self.p.wait()}):\n{tail}")
        doc = json.loads(line)
        if "error" in doc:
            raise SystemExit(f"child error: {doc['error']} (log: {self.log})")
        return doc

    def ask(self, cmd: str, timeout: float = 600.0, **kw: object) -> dict:
        self.send(cmd, **kw)
        return self.reply(timeout)

    def close(self) -> None:
        if self.p.poll() is None:
            try:
                self.ask("quit", timeout=120)
            except (SystemExit, OSError):
                pass
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._err.close()


def ask_all(children: list[Child], cmd: str, timeout: float = 600.0, **kw: object) -> list[dict]:
    for c in children:
        c.send(cmd, **kw)
    return [c.reply(timeout) for c in children]


def four_letter(port: int, word: str, timeout: float = 2.0) -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode(errors="replace")
    except OSError:
        return None


def mntr(port: int) -> dict[str, str]:
    out = four_letter(port, "mntr") or ""
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def packets(ports: list[int]) -> int:
    return sum(int(mntr(p).get("zk_packets_received", 0)) for p in ports)


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the machine since boot, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


class Bench:
    def __init__(self, args: argparse.Namespace, be: bl.Backend, ports: list[int]) -> None:
        self.args, self.be, self.ports = args, be, ports
        self.py = bl.interpreter_of(args.mdl)
        self.workers: list[Child] = []
        self.ctl: Child | None = None
        self.versions = [f"v{i:03d}" for i in range(40)]
        self.next_version = 1
        self.results: dict = {}

    def child(self, role: str, spec: dict, log: str) -> Child:
        return Child([self.py, __file__, f"--{role}", json.dumps(spec)], self.be.env, self.be.root / log)

    @property
    def n(self) -> int:
        return self.args.per_worker * len(self.workers)

    def grow(self, total: int) -> None:
        """Start workers (each --per-worker replicas, at once) until ``total`` replicas are registered."""
        t0, started = time.monotonic(), 0
        while self.n < total:  # one worker at a time: a burst of session creations is not measured here
            k = len(self.workers)
            ids = [f"r{k:02d}-{i:03d}" for i in range(self.args.per_worker)]
            spec = {"name": NAME, "ids": ids, "initial": self.current, "update": self.args.record_updates}
            c = self.child("worker", spec, f"worker-{k}.log")
            self.workers.append(c)
            if not c.reply(READY_TIMEOUT_S + 60)["ready"]:
                raise SystemExit(f"a worker's replicas did not all see {self.current} (log: {c.log})")
            started += 1
        print(f"  {self.n} replicas registered and watching ({started} workers started one by one in "
              f"{time.monotonic() - t0:.1f} s)", flush=True)

    @property
    def current(self) -> str:
        """The version ``latest`` points at."""
        return self.versions[self.next_version - 1]

    def promote(self, timeout: float = NOTIFY_TIMEOUT_S) -> dict:
        """Promote the next version; every replica's latency from before the call and from its return."""
        v = self.versions[self.next_version]
        self.next_version += 1
        assert self.ctl is not None
        p = self.ctl.ask("promote", version=v)
        got = ask_all(self.workers, "wait", timeout=timeout + 60, version=v, wait_s=timeout)
        times = [t for g in got for t in g["times"]]
        missing = sum(g["missing"] for g in got)
        return {"version": v, "promote_s": p["t1"] - p["t0"], "missing": missing,
                "from_call": [t - p["t0"] for t in times], "from_return": [t - p["t1"] for t in times]}

    def requests_per_promotion(self) -> dict:
        """Client-side requests of the replicas and server-side packets for one promotion."""
        time.sleep(2.0)  # registration traffic over
        window = self.args.idle_window
        a = packets(self.ports)
        t = time.monotonic()
        time.sleep(window)
        idle_rate = (packets(self.ports) - a) / (time.monotonic() - t)
        before_req = sum(r["requests"] for r in ask_all(self.workers, "requests"))
        before_pk, t0 = packets(self.ports), time.monotonic()
        r = self.promote()
        time.sleep(1.0)  # the record updates after the notifications
        after_pk, t1 = packets(self.ports), time.monotonic()
        after_req = sum(x["requests"] for x in ask_all(self.workers, "requests"))
        n = self.n
        net: float | None = (after_pk - before_pk) - idle_rate * (t1 - t0)
        if after_pk < before_pk or idle_rate < 0:  # a server restarted (election): its counters began anew
            net = None
        return {"n": n, "missing": r["missing"], "client_requests": after_req - before_req,
                "client_per_replica": (after_req - before_req) / n, "server_packets_raw": after_pk - before_pk,
                "idle_packets_per_s": idle_rate, "window_s": t1 - t0, "server_packets_net": net,
                "server_net_per_replica": None if net is None else net / n,
                "all_notified_s": max(r["from_call"] or [0.0])}

    def zk_pids(self) -> list[int]:
        r = subprocess.run([self.py, "-m", "mdl.devcluster", "status"], capture_output=True, text=True, timeout=120)
        try:
            return [s["pid"] for s in json.loads(r.stdout)["zookeeper"]["servers"] if s.get("pid")]
        except (ValueError, KeyError, TypeError):
            return []

    def cpu(self, zk: list[int]) -> dict:
        """CPU seconds so far: the replica processes, the ZooKeeper servers, the whole machine."""
        busy, total = machine_cpu()
        return {"replicas": sum(r["cpu_s"] for r in ask_all(self.workers, "cpu")),
                "zookeeper": sum(proc_cpu_s(p) for p in zk), "machine_busy": busy, "machine_total": total}

    def sessions(self) -> list[int]:
        return [s for r in ask_all(self.workers, "sessions", timeout=60) for s in r["sessions"]]

    def connected(self) -> int:
        return sum(r["connected"] for r in ask_all(self.workers, "connected", timeout=60))

    def devcluster(self, *argv: str) -> None:
        r = subprocess.run([self.py, "-m", "mdl.devcluster", *argv], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise SystemExit(f"mdl.devcluster {' '.join(argv)} failed: {r.stderr or r.stdout}")

    def storm(self, sids: list[int], expected: list[str]) -> dict:
        """Stop server ``sid`` (sessions move to the others), wait for all to be connected, start it again."""
        assert self.ctl is not None
        rounds = []
        for sid in sids:
            conns = {p: int(mntr(p).get("zk_num_alive_connections", 0)) for p in self.ports}
            mode = mntr(self.ports[sid - 1]).get("zk_server_state")
            before = set(self.sessions())
            self.ctl.ask("probe_start", interval=0.2)
            t0 = time.monotonic()
            self.devcluster("zk", "stop", str(sid))
            stopped = time.monotonic() - t0
            lowest, back = self.n, None
            while time.monotonic() - t0 < 180:
                c = self.connected()
                lowest = min(lowest, c)
                if c == self.n and time.monotonic() - t0 > 1.0:
                    back = time.monotonic() - t0
                    break
                time.sleep(0.1)
            t1 = time.monotonic()
            self.devcluster("zk", "start", str(sid))
            restarted = time.monotonic() - t1
            registered, ids = None, []
            while time.monotonic() - t0 < 300:  # every replica registered again (expired sessions re-create)
                try:
                    ids = self.ctl.ask("ids", timeout=120)["ids"]
                except SystemExit:  # the registry did not answer in time: ask again
                    ids = []
                if len(ids) == self.n:
                    registered = time.monotonic() - t0
                    break
                time.sleep(1.0)
            samples = self.ctl.ask("probe_stop")["samples"]
            counts = [s[1] for s in samples if s[1] is not None]
            expired = self.n - len(before & set(self.sessions()))  # a new session id: the old one expired
            rounds.append({
                "server": sid, "mode": mode, "connections_before": conns, "stop_s": stopped,
                "all_registered_s": registered,
                "lowest_connected": lowest, "all_connected_s": back, "restart_s": restarted,
                "probe_samples": len(samples), "probe_errors": sum(1 for s in samples if s[3]),
                "probe_min_count": min(counts) if counts else None,
                "probe_max_read_s": max(s[2] for s in samples) if samples else None,
                "count_after": len(ids), "lost": sorted(set(expected) - set(ids)), "sessions_expired": expired,
                "connected_after": self.connected(),
            })
            print(f"  server {sid} ({mode}) restarted: all sessions connected after "
                  f"{f'{back:.2f} s' if back is not None else 'NEVER'} (lowest {lowest}), replicas seen "
                  f">= {rounds[-1]['probe_min_count']}, after: {len(ids)}; {expired} sessions expired", flush=True)
        try:
            r = self.promote()
        except SystemExit as exc:  # e.g. the registry still unavailable: reported, not fatal
            return {"rounds": rounds, "promotion_after": {"missing": self.n, "all_notified_s": None, "error": str(exc)}}
        return {"rounds": rounds, "promotion_after": {
            "missing": r["missing"], "all_notified_s": max(r["from_call"] or [float("nan")]),
            "p99_s": pct(r["from_call"], 99) if r["from_call"] else None}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--per-worker", type=int, default=100, help="replicas (sessions) per worker process")
    ap.add_argument("--promotions", type=int, default=5, help="timed promotions at --replicas")
    ap.add_argument("--request-ns", default="100,300,1000", help="fleet sizes for the requests per promotion")
    ap.add_argument("--idle-window", type=float, default=3.0, help="seconds of idle packets measured first")
    ap.add_argument("--storm", choices=("follower", "leader", "rolling", "none"), default="follower",
                    help="restart the follower with most sessions, the leader, each server in turn, or none")
    ap.add_argument("--record-updates", action="store_true",
                    help="each replica also writes loaded=version to its record when notified (one ZooKeeper "
                         "write per replica per promotion; a real watcher writes two)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--controller", help=argparse.SUPPRESS)
    bl.add_common_args(ap)
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if args.controller:
        controller(json.loads(args.controller))
        return 0
    if args.backend != "distributed":
        print("fleet_scale: the targets are about ZooKeeper (sessions, watches, a server restart); run it with "
              "--backend distributed (the embedded registry's replicas are exercised by the tests)")
        return 0
    ns = sorted({int(x) for x in args.request_ns.split(",") if x} | {args.replicas})
    if any(n % args.per_worker for n in ns):
        ap.error("--replicas and every --request-ns must be multiples of --per-worker")
    args.rss_method = bl.configure(args)
    be = bl.Backend.create(args.backend, args.workdir)
    run = uuid.uuid4().hex[:10]
    hosts = be.env["MDL_REGISTRY_URL"].split("://", 1)[1].split("/", 1)[0]
    be.env["MDL_STORAGE_ROOT"] = f"/mdl-bench/fleet-{run}/models"
    be.env["MDL_REGISTRY_URL"] = f"zk://{hosts}/mdl-bench-fleet-{run}"
    ports = [int(h.rsplit(":", 1)[1]) if ":" in h else 2181 for h in hosts.split(",")]
    b = Bench(args, be, ports)
    try:
        return bench(b, ns)
    finally:
        for c in b.workers:
            c.close()
        if b.ctl is not None:
            try:
                b.ctl.ask("drop", timeout=120)
            except SystemExit as exc:
                bl.warn(f"could not delete the chroot: {exc}")
            b.ctl.close()
        drop_storage(be)
        if args.storm != "none":  # whatever happened: every ZooKeeper server runs again
            b.devcluster("zk", "start", "all")
        be.cleanup(args.keep)


def drop_storage(be: bl.Backend) -> None:
    """Delete this run's HDFS tree (``/mdl-bench/fleet-<run>``) with one WebHDFS DELETE."""
    scheme, rest = be.env["MDL_STORAGE_URL"].split("://", 1)
    run_root = be.env["MDL_STORAGE_ROOT"].rsplit("/", 1)[0]
    user = be.env.get("MDL_STORAGE_USER") or os.environ.get("USER") or "root"
    http = "https" if scheme == "swebhdfs" else "http"
    for host in rest.split("/", 1)[0].split(","):
        url = f"{http}://{host}/webhdfs/v1{urllib.parse.quote(run_root)}?op=DELETE&recursive=true&user.name={user}"
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30) as r:
                r.read()
            return
        except (urllib.error.URLError, OSError):
            continue
    bl.warn(f"could not delete {run_root}; remove it by hand")


def bench(b: Bench, ns: list[int]) -> int:
    args = b.args
    print(f"fleet scale: {args.replicas} replicas in {args.replicas // args.per_worker} worker processes of "
          f"{args.per_worker}, one ZooKeeper session each; registry {b.be.env['MDL_REGISTRY_URL']}", flush=True)
    b.ctl = b.child("controller", {"name": NAME, "work": str(b.be.root)}, "controller.log")
    b.ctl.reply()
    b.ctl.ask("push", versions=b.versions)
    b.ctl.ask("promote", version=b.versions[0])
    res = b.results
    res["requests"] = []
    for n in ns:
        b.grow(n)
        r = b.requests_per_promotion()
        res["requests"].append(r)
        print(f"  N={n}: {r['client_requests']} client requests ({r['client_per_replica']:.2f}/replica), "
              f"server packets {server_packets(r)}", flush=True)
    res["workers"] = ask_all(b.workers, "rss")

    b.promote()  # untimed warm-up at full size
    time.sleep(1.0)
    proms, zk = [], b.zk_pids()
    cpu0, t0 = b.cpu(zk), time.monotonic()
    for _ in range(args.promotions):
        proms.append(b.promote())
        time.sleep(1.5)
    cpu1, wall = b.cpu(zk), time.monotonic() - t0
    notes = len(proms) * b.n
    busy = (cpu1["machine_busy"] - cpu0["machine_busy"]) / (cpu1["machine_total"] - cpu0["machine_total"])
    cpu = {"wall_s": wall, "notifications": notes, "replicas_cpu_s": cpu1["replicas"] - cpu0["replicas"],
           "zookeeper_cpu_s": cpu1["zookeeper"] - cpu0["zookeeper"], "machine_busy": busy}
    cpu["replicas_ms_per_notification"] = cpu["replicas_cpu_s"] / notes * 1e3
    cpu["zookeeper_ms_per_notification"] = cpu["zookeeper_cpu_s"] / notes * 1e3
    each = [t for p in proms for t in p["from_call"]]
    each_ret = [t for p in proms for t in p["from_return"]]
    res["notify"] = {
        "n": b.n, "promotions": len(proms), "missing": sum(p["missing"] for p in proms),
        "p50_s": pct(each, 50), "p99_s": pct(each, 99), "max_s": max(each),
        "from_return_p50_s": pct(each_ret, 50), "from_return_p99_s": pct(each_ret, 99),
        "all_notified_s": [max(p["from_call"]) for p in proms], "promote_s": [p["promote_s"] for p in proms],
        "cpu": cpu,
    }
    print(f"  notified: p50 {res['notify']['p50_s'] * 1e3:.0f} ms, p99 {res['notify']['p99_s'] * 1e3:.0f} ms, "
          f"max {res['notify']['max_s'] * 1e3:.0f} ms", flush=True)

    time.sleep(2.0)
    runs = [bl.check(bl.run_measured([args.mdl, "status", NAME], b.be.env), "mdl status") for _ in range(4)]
    status_rows = len(runs[-1].stdout.splitlines())
    res["status_cli"] = {"runs_s": [r.wall_s for r in runs[1:]], "median_s": bl.median([r.wall_s for r in runs[1:]]),
                         "maxrss_kib": max(r.maxrss_kib for r in runs), "output_lines": status_rows}
    res["fleet"] = b.ctl.ask("fleet")
    res["assign"] = b.ctl.ask("assign", stable=b.versions[0], candidate=b.versions[1])

    if args.storm != "none":
        expected = b.ctl.ask("ids")["ids"]
        if len(expected) != b.n:
            raise SystemExit(f"{len(expected)} replicas registered before the storm, expected {b.n}")
        stats = {s: mntr(b.ports[s - 1]) for s in range(1, len(b.ports) + 1)}
        if args.storm == "rolling":
            sids = list(stats)
        else:  # of the followers (or the leader), the server most sessions are connected to
            role = "leader" if args.storm == "leader" else "follower"
            pick = [s for s, m in stats.items() if m.get("zk_server_state") == role] or list(stats)
            sids = [max(pick, key=lambda s: int(stats[s].get("zk_num_alive_connections", 0)))]
        res["storm"] = b.storm(sids, expected)
    report(b, res)
    return 0


def server_packets(r: dict) -> str:
    if r["server_packets_net"] is None:
        return "n/a (a server's counters restarted: an election)"
    return (f"net {r['server_packets_net']:.0f} ({r['server_net_per_replica']:.2f}/r), raw {r['server_packets_raw']}, "
            f"idle {r['idle_packets_per_s']:.0f}/s")


def report(b: Bench, res: dict) -> None:
    args, ms = b.args, lambda s: f"{s * 1e3:.0f} ms"
    nt, st, fl, asg = res["notify"], res["status_cli"], res["fleet"], res["assign"]
    print(f"\nfleet scale, {nt['n']} replicas ({len(b.workers)} processes x {args.per_worker} sessions, "
          f"{os.cpu_count()} CPUs shared with the 3 ZooKeeper servers; record updates "
          f"{'on' if args.record_updates else 'off'})")
    rows = [
        ["promote -> notified p50 / p99 / max", f"{ms(nt['p50_s'])} / {ms(nt['p99_s'])} / {ms(nt['max_s'])}",
         f"{nt['promotions']} promotions x {nt['n']}, from before Client.promote; {nt['missing']} missed"],
        ["  from promote's return p50 / p99", f"{ms(nt['from_return_p50_s'])} / {ms(nt['from_return_p99_s'])}",
         "promote itself: " + ", ".join(ms(s) for s in nt["promote_s"])],
        ["  all notified, per promotion", ", ".join(ms(s) for s in nt["all_notified_s"]), ""],
        ["  CPU per notification", f"{nt['cpu']['replicas_ms_per_notification']:.1f} ms replica + "
         f"{nt['cpu']['zookeeper_ms_per_notification']:.2f} ms ZooKeeper",
         f"machine {nt['cpu']['machine_busy'] * 100:.0f}% busy over the {nt['cpu']['wall_s']:.0f} s of promotions"],
        ["  N=" + "/".join(str(r["n"]) for r in res["requests"]) + ": all notified",
         " / ".join(ms(r["all_notified_s"]) for r in res["requests"]), "one promotion each"],
        ["mdl status (CLI, median of 3)", ms(st["median_s"]), f"{st['output_lines']} lines, peak RSS "
         f"{st['maxrss_kib'] / 1024:.0f} MiB"],
        ["Fleet(client).replicas", ms(fl["fleet_replicas_s"]), f"list_replicas {ms(fl['list_replicas_s'])}, "
         f"status {ms(fl['fleet_status_s'])}; {fl['count']} records, {fl['matching']} matching"],
        ["assign 0 -> 10%", f"{asg['assign_10_s'] * 1e3:.2f} ms", f"{asg['n10']} of {asg['live']}"],
        ["assign 10 -> 50%", f"{asg['assign_10_to_50_s'] * 1e3:.2f} ms",
         f"{asg['n50']}; all {asg['kept_10_in_50']} of the 10% kept"],
        ["RolloutDriver._assignment", ms(asg["driver_assignment_s"]), "fleet read + assign"],
    ]
    for r in res["requests"]:
        rows.append([f"requests / promotion, N={r['n']}", f"{r['client_requests']} ({r['client_per_replica']:.2f}/r)",
                     f"server packets {server_packets(r)}"])
    storm = res.get("storm")
    if storm:
        for r in storm["rounds"]:
            back = r["all_connected_s"]
            reg = r["all_registered_s"]
            rows.append([f"restart server {r['server']} ({r['mode']})",
                         f"{back:.2f} s" if back is not None else "never",
                         f"to all connected (lowest {r['lowest_connected']}); all registered after "
                         f"{f'{reg:.1f} s' if reg is not None else 'NEVER (300 s)'}; replicas seen >= "
                         f"{r['probe_min_count']}, after {r['count_after']}, lost {len(r['lost'])}; "
                         f"{r['sessions_expired']} sessions expired"])
        pa = storm["promotion_after"]
        rows.append(["promotion after the storm", ms(pa["all_notified_s"]) if pa["all_notified_s"] else "failed",
                     pa.get("error") or f"{pa['missing']} missed"])
    print(bl.table(["measure", "value", "notes"], rows))

    per = [r["client_per_replica"] for r in res["requests"]]
    targets = [
        {"target": f"promote -> {nt['n']} notified p99 < {TARGET_NOTIFY_P99_S:g} s", "value_s": nt["p99_s"],
         "pass": nt["p99_s"] < TARGET_NOTIFY_P99_S and nt["missing"] == 0},
        {"target": f"mdl status over {nt['n']} replicas < {TARGET_STATUS_S:g} s", "value_s": st["median_s"],
         "pass": st["median_s"] < TARGET_STATUS_S},
        {"target": "requests per promotion linear in N (client requests per replica within 1.5x)",
         "value": [round(p, 2) for p in per], "pass": max(per) <= 1.5 * min(per)},
    ]
    if storm:
        lost = sum(len(r["lost"]) for r in storm["rounds"])
        ok = lost == 0 and all(r["all_connected_s"] is not None and r["count_after"] == nt["n"]
                               for r in storm["rounds"]) and storm["promotion_after"]["missing"] == 0
        targets.append({"target": "no replica lost after a server restart; a promotion reaches all",
                        "value": lost, "pass": ok})
    print()
    for t in targets:
        print(f"{bl.verdict(t['pass'])}  {t['target']}: {t.get('value_s', t.get('value'))}")
    bl.save("fleet_scale", {
        "bench": "fleet_scale", "env": bl.env_info(args.mdl), **b.be.describe(),
        "params": {"replicas": args.replicas, "per_worker": args.per_worker, "promotions": args.promotions,
                   "request_ns": args.request_ns, "storm": args.storm, "record_updates": args.record_updates,
                   "sessions": "one ZooKeeper session (Client) per replica"},
        "results": res, "targets": targets,
    }, args.no_save)


if __name__ == "__main__":
    sys.exit(main())
