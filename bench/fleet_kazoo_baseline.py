#!/usr/bin/env python3
"""The floor under bench/fleet_scale.py's notification latency: N raw kazoo sessions, each with kazoo's
own DataWatch recipe on one node, in P processes on this machine, against the dev ZooKeeper ensemble.
The node is set 5 times, 4 s apart; each session's callback records CLOCK_MONOTONIC when it sees the
value (shared by every process). Prints p50/p99/max of "set -> seen" over all sessions and settings.

    .venv/bin/python bench/fleet_kazoo_baseline.py [N=1000] [P=10]

No mdl code runs here: what it measures is what 1,000 ZooKeeper sessions cost on this machine's CPUs
(kazoo's threads, the ensemble's fan-out), the same for any client built on kazoo. Runs on mdl's
interpreter (it needs kazoo); uses its own znode /mdl-bench-rawkazoo and deletes it.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time

from kazoo.client import KazooClient

HOSTS = "127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183"
ROOT = "/mdl-bench-rawkazoo"
PATH = f"{ROOT}/node"
SETS, PAUSE = 5, 4.0


def worker(n: int, out: mp.Queue, ready: mp.Queue, go: mp.Event) -> None:
    clients, seen = [], []
    for i in range(n):
        c = KazooClient(hosts=HOSTS, timeout=10)
        c.start(timeout=30)
        clients.append(c)

        def saw(data: bytes | None, stat: object) -> None:
            if data is not None:
                seen.append((data.decode(), time.monotonic()))

        c.DataWatch(PATH, saw)
        if i % 8 == 7:
            time.sleep(0.05)  # sessions start a few at a time (as fleet_scale.py's workers do)
    ready.put(n)
    go.wait()
    time.sleep(SETS * PAUSE + 5)
    out.put(seen)
    for c in clients:
        c.stop()
        c.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    p = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    admin = KazooClient(hosts=HOSTS)
    admin.start()
    admin.ensure_path(PATH)
    admin.set(PATH, b"v0")
    out: mp.Queue = mp.Queue()
    ready: mp.Queue = mp.Queue()
    go = mp.Event()
    procs = [mp.Process(target=worker, args=(n // p, out, ready, go)) for _ in range(p)]
    for proc in procs:
        proc.start()
        ready.get()  # one worker at a time
    go.set()
    time.sleep(2)
    sent = {}
    for k in range(1, SETS + 1):
        sent[f"v{k}"] = time.monotonic()
        admin.set(PATH, f"v{k}".encode())
        time.sleep(PAUSE)
    lat = sorted(t - sent[v] for _ in procs for v, t in out.get() if v in sent)
    for proc in procs:
        proc.join()
    admin.delete(ROOT, recursive=True)
    admin.stop()

    def pct(q: float) -> int:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000)

    print(json.dumps({"sessions": n, "processes": p, "notifications": len(lat), "expected": n // p * p * SETS,
                      "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(lat[-1] * 1000)}))


if __name__ == "__main__":
    main()
