#!/usr/bin/env python3
"""Promote -> every watcher swapped: push notifications (mdl watch) vs 1 s polling (TF Serving's default).

For N = 1, 10, 50 separate `mdl watch` processes on a small model, time from `promote` returning to
each watcher's `swapped` event (its own wall-clock stamp), per promotion the slowest watcher ("all
swapped"). The watchers share the host's store of verified files (the default: each file is
downloaded once per host); ``push_no_store`` runs them with ``cache.dir: none`` (every watcher
downloads, as one watcher per host would). The baseline is the same watcher in `--poll 1` mode,
measured in the same run. Then
`--prefetch` with a large model (default 512 MiB, N = 10): new versions are downloaded when pushed, so
the promotion is only a link swap.

    python bench/watch_latency.py [--backend embedded|distributed] [--ns 1,10,50] [--promotions 20]
                                  [--modes push,push_no_store,poll_1s] [--prefetch-trials 0]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MDL = str(REPO / ".venv" / "bin" / "mdl")
RESULTS = REPO / "bench" / "results"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def stamp(at: str) -> float:
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=__import__("datetime").timezone.utc).timestamp()


class Fleet:
    def __init__(self, env: dict, root: Path, n: int, extra: list[str], fleet_env: dict | None = None) -> None:
        self.events: queue.Queue = queue.Queue()
        self.procs = []
        env = {**env, **(fleet_env or {})}
        for i in range(n):
            p = subprocess.Popen([MDL, "watch", "lr", "-d", str(root / f"w{i}"), "-o", "json", *extra], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.procs.append(p)
            threading.Thread(target=self._read, args=(i, p), daemon=True).start()

    def _read(self, i: int, p: subprocess.Popen) -> None:
        for line in p.stdout:
            try:
                self.events.put((i, json.loads(line)))
            except ValueError:
                pass

    def wait_for(self, kind: str, version: str, timeout: float = 600) -> dict[int, dict]:
        got: dict[int, dict] = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(self.procs):
            try:
                i, e = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"timed out waiting for {kind} {version}: {len(got)}/{len(self.procs)}")
            if e.get("event") == kind and e.get("version") == version:
                got[i] = e
        return got

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def push_small(client, work: Path, tag: str) -> str:
    p = work / "small" / tag / "model.pkl"
    p.parent.mkdir(parents=True)
    p.write_bytes(f"small model {tag} ".encode() * 100)
    return client.push("lr", p, version=tag).version


def measure(client, env: dict, work: Path, n: int, promotions: int, extra: list[str], mode: str,
            fleet_env: dict | None = None, warmup: int = 3) -> dict:
    """Each promotion names a version pushed just before (not yet on any watcher): a real download."""
    root = Path(tempfile.mkdtemp(dir=work))
    client.promote("lr", push_small(client, work, f"{mode}-{n}-0"))
    fleet = Fleet(env, root, n, extra, fleet_env)
    try:
        fleet.wait_for("swapped", f"{mode}-{n}-0")
        for k in range(1, warmup + 1):  # untimed: the JVMs compile their hot paths, caches fill
            v = push_small(client, work, f"{mode}-{n}-w{k}")
            client.promote("lr", v)
            fleet.wait_for("swapped", v)
        time.sleep(1.0)  # let every watcher settle into its idle wait
        all_swapped, each = [], []
        for k in range(1, promotions + 1):
            v = push_small(client, work, f"{mode}-{n}-{k}")
            time.sleep(0.2)
            client.promote("lr", v)
            t0 = time.time()
            got = fleet.wait_for("swapped", v)
            lat = [max(0.0, stamp(e["at"]) - t0) for e in got.values()]
            each += lat
            all_swapped.append(max(lat))
            time.sleep(0.3)
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {"n": n, "promotions": promotions, "all_p50_ms": pct(all_swapped, 50) * 1e3,
            "all_p99_ms": pct(all_swapped, 99) * 1e3, "each_p50_ms": pct(each, 50) * 1e3,
            "each_p99_ms": pct(each, 99) * 1e3}


def measure_prefetch(client, env: dict, work: Path, n: int, size_mib: int, trials: int) -> dict:
    root = Path(tempfile.mkdtemp(dir=work))
    src = work / "big"
    src.mkdir(exist_ok=True)
    big = src / "model.bin"

    def push_big(tag: str) -> str:
        with open(big, "wb") as f:
            f.write(tag.encode().ljust(4096, b"\0"))
            block = os.urandom(1024 * 1024)
            for _ in range(size_mib):
                f.write(block)
        return client.push("lr", src, version=tag).version

    first = push_big("big-0")
    client.promote("lr", first)
    fleet = Fleet(env, root, n, ["--prefetch", "--keep", "2"])
    results = []
    try:
        fleet.wait_for("swapped", first)
        for t in range(1, trials + 1):
            v = push_big(f"big-{t}")
            fleet.wait_for("prefetched", v)
            # The fleet has just written n x size MiB; a promotion usually comes much later. Let the
            # kernel write it back first, or the swap's rename(2) waits behind that journal traffic.
            subprocess.run(["sync"], check=False)
            time.sleep(1.0)
            client.promote("lr", v)
            t0 = time.time()
            got = fleet.wait_for("swapped", v)
            results.append(max(stamp(e["at"]) - t0 for e in got.values()))
    finally:
        fleet.stop()
        shutil.rmtree(root, ignore_errors=True)
    return {"n": n, "size_mib": size_mib, "trials": trials, "all_max_ms": max(results) * 1e3,
            "all_p50_ms": statistics.median(results) * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("embedded", "distributed"), default="embedded")
    ap.add_argument("--ns", default="1,10,50")
    ap.add_argument("--promotions", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3, help="untimed promotions first, per mode and N")
    ap.add_argument("--prefetch-size-mib", type=int, default=512)
    ap.add_argument("--prefetch-n", type=int, default=10)
    ap.add_argument("--prefetch-trials", type=int, default=2, help="0: skip the prefetch measurement")
    ap.add_argument("--modes", default="push,push_no_store,poll_1s", help="which of the three to run")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mdl-bench-watch-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDL_")}
    env["MDL_NO_PROGRESS"] = "1"
    env["MDL_CACHE_DIR"] = str(work / "blobs")  # the host's shared store, this run's own
    if args.backend == "embedded":
        env["MDL_STORAGE_URL"] = f"file://{work}/models"
        env["MDL_REGISTRY_URL"] = f"sqlite://{work}/registry.db"
    else:
        run = os.urandom(4).hex()
        env["MDL_STORAGE_URL"] = os.environ.get("MDL_STORAGE_URL", "webhdfs://127.0.0.1:19870")
        env["MDL_STORAGE_ROOT"] = f"/mdl-bench/{run}/models"
        zk = os.environ.get("MDL_REGISTRY_URL", "zk://127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183")
        hosts = zk.split("://", 1)[1].split("/", 1)[0]  # a chroot of our own for this run
        env["MDL_REGISTRY_URL"] = f"zk://{hosts}/mdl-bench-{run}"
    sys.path.insert(0, str(REPO))
    os.environ.update(env)
    from mdl.client import Client
    from mdl.config import load

    client = Client(load(env=env))
    # push: the default (a shared host store: one download per file per host); push_no_store: every
    # watcher downloads for itself (cache.dir none), as on a fleet of one watcher per host;
    # poll_1s: the baseline, TF Serving's default file-system polling interval.
    modes = (("push", [], None), ("push_no_store", [], {"MDL_CACHE_DIR": "none"}),
             ("poll_1s", ["--poll", "1"], None))
    wanted = set(args.modes.split(","))
    if not wanted <= {m for m, _, _ in modes}:
        ap.error(f"--modes: choose from {', '.join(m for m, _, _ in modes)}")
    modes = tuple(m for m in modes if m[0] in wanted)
    out: dict = {"backend": args.backend, **{m: [] for m, _, _ in modes}}
    print(f"backend: {args.backend}; time from promote returning to swapped (ms)")
    print(f"{'mode':<15}{'N':>4}{'all p50':>10}{'all p99':>10}{'each p50':>10}{'each p99':>10}")
    try:
        for n in [int(x) for x in args.ns.split(",") if x]:
            for mode, extra, fleet_env in modes:
                r = measure(client, env, work, n, args.promotions, extra, mode, fleet_env, args.warmup)
                out[mode].append(r)
                print(f"{mode:<15}{n:>4}{r['all_p50_ms']:>10.1f}{r['all_p99_ms']:>10.1f}"
                      f"{r['each_p50_ms']:>10.1f}{r['each_p99_ms']:>10.1f}", flush=True)
        if args.prefetch_trials > 0:
            r = measure_prefetch(client, env, work, args.prefetch_n, args.prefetch_size_mib, args.prefetch_trials)
            out["prefetch"] = r
            print(f"prefetch {r['size_mib']} MiB, N={r['n']}: promote -> all swapped max {r['all_max_ms']:.1f} ms "
                  f"(median {r['all_p50_ms']:.1f} ms over {r['trials']} trials)")
        n50 = [r for r in out.get("push", []) if r["n"] == 50]
        if n50:
            print(f"target p99 < 300 ms at N=50: {'PASS' if n50[0]['all_p99_ms'] < 300 else 'MISS'} "
                  f"({n50[0]['all_p99_ms']:.1f} ms)")
        if "prefetch" in out:
            print(f"target prefetch < 500 ms: {'PASS' if out['prefetch']['all_max_ms'] < 500 else 'MISS'}")
    finally:
        client.close()
        shutil.rmtree(work, ignore_errors=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"watch_latency_{args.backend}.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
