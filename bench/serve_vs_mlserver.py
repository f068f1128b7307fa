#!/usr/bin/env python3
"""mdl serve (pickle and ONNX) vs MLServer: single-row scikit-learn predictions, same machine, same load generator.

    python bench/serve_vs_mlserver.py [--duration 10] [--rounds 3] [--connections 1,8,64]
                                      [--mlserver-venv bench/.venv-mlserver] [--mlserver-workers 1,0]

Both servers serve the same model (logistic regression on iris, trained by each server's own
scikit-learn from the same data with the same parameters) over the Open Inference Protocol v2; mdl
serves it twice, as the joblib file (scikit-learn's predict) and converted to ONNX by skl2onnx
(onnxruntime; the same body, answered with the graph's two outputs, label and probabilities), and
``wrk`` (``apt-get install wrk``; one thread, keep-alive, the same Lua script posting the same
single-row JSON body) drives each in turn for ``--duration`` seconds after a warm-up, alternating
servers for ``--rounds`` rounds per connection count; the servers not being measured are paused
(SIGSTOP), so their timers cannot steal a core. Reported: requests per second, p50, p99 and
max latency (median over rounds), and non-2xx/socket errors. Then ``mdl serve`` alone under load
(tests/server/loadgen.py, which timestamps every request) while the alias flips between two versions
every ``--swap-every`` seconds (promote, then wait for the replica to report it ready, from one
long-lived process using the library): the latency of requests in flight during a swap, worst case
included, next to that of every other request of the same run.

MLServer (``mlserver`` + ``mlserver-sklearn``, its scikit-learn runtime) runs from its own venv
(created on first use; its dependencies may conflict with mdl's) with its defaults except
``debug: false`` (no access log) — and, for each ``--mlserver-workers`` value, ``parallel_workers``
(1 is MLServer's default: inference in a worker process; 0: in the server process). mdl is compared
with the best of them. Targets: at least 1.5x MLServer's requests per second with a p99 no worse
(the pickle model), and at least 1.5x MLServer's requests per second for the ONNX one.
Writes bench/results/serve_vs_mlserver.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import _benchlib as bl

MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "httptools",
                 "uvloop<0.22"]  # 1.7.1's workers call asyncio.get_event_loop(), which uvloop 0.22+ refuses
BODY = '{"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
TRAIN = """
import sys, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(C=float(sys.argv[2]), max_iter=500).fit(x, y), sys.argv[1])
"""
TO_ONNX = """
import sys, joblib, numpy as np
from skl2onnx import to_onnx
graph = to_onnx(joblib.load(sys.argv[1]), np.zeros((1, 4), dtype=np.float32), options={"zipmap": False})
open(sys.argv[2], "wb").write(graph.SerializeToString())
"""
ONNX = "mdl serve (ONNX)"
FLIP = """
import sys, time
from mdl.client import Client
from mdl.fleet import Fleet
every, seconds = float(sys.argv[1]), float(sys.argv[2])
with Client.from_config() as c:
    target = "v1" if c.pointer("iris").aliases.get("latest") == "v2" else "v2"
    print("ready", flush=True)
    sys.stdin.readline()
    end = time.monotonic() + seconds
    while time.monotonic() + every < end:
        time.sleep(every)
        t0 = time.monotonic()
        c.promote("iris", target)
        Fleet(c).wait_for_rollout("iris", target, timeout=30, poll=0.02)
        print(t0, time.monotonic(), flush=True)
        target = "v1" if target == "v2" else "v2"
"""
LUA = """
wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"p999_us": %%d, "max_us": %%d, "mean_us": %%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
""" % BODY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}; log {log}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout}s; log {log}:\n{log.read_text()[-3000:]}")


def pause(proc: subprocess.Popen, paused: bool) -> None:
    """SIGSTOP/SIGCONT a server's process group: an idle server's timers and heartbeats (MLServer runs
    several processes) must not steal the CPU from the one being measured on a 2-core machine."""
    try:
        os.killpg(proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)
    except ProcessLookupError:
        pass


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's own process group (MLServer's workers too), SIGKILL after 20 s."""
    pause(proc, False)
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
        return


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if r.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({r.returncode}): {r.stderr}{r.stdout}")
    d = json.loads(line[len("WRKJSON "):])
    d["rps"] = d["requests"] / (d["duration_us"] / 1e6)
    d["errors"] = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    return d


def ensure_mlserver(venv: Path, sklearn_version: str) -> Path:
    py = venv / "bin" / "python"
    if not (venv / "bin" / "mlserver").exists():
        bl.warn(f"creating {venv} with {' '.join(MLSERVER_PINS)} (one time)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *MLSERVER_PINS, f"scikit-learn=={sklearn_version}"],
                       check=True)
    return py


def mdl_command(mdl: str, env: dict) -> list[str]:
    """The mdl binary, or (until mdl/cli/app.py registers serve) the same app with serve added."""
    if subprocess.run([mdl, "serve", "--help"], capture_output=True, env=env).returncode == 0:
        return [mdl]
    return [bl.interpreter_of(mdl), "-m", "tests.server._mdl"]


def _stats(lat: list[float]) -> dict:
    lat = sorted(lat)
    pick = lambda p: round(lat[min(len(lat) - 1, int(len(lat) * p))] * 1000, 2) if lat else None  # noqa: E731
    return {"count": len(lat), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def swap_phase(args: argparse.Namespace, mdl_py: str, env: dict, mdl_url: str, root: Path) -> dict:
    """mdl serve under steady load (tests/server/loadgen.py: per-request timestamps) while the alias flips
    every --swap-every seconds; the latency of requests in flight during a swap (from the promotion to the
    replica reporting ready, + 300 ms) against every other request of the same run, so a noisy neighbour
    affects both alike."""
    out, stop = root / "swap-load.jsonl", root / "swap-stop"
    gen = subprocess.Popen([mdl_py, str(bl.REPO / "tests" / "server" / "loadgen.py"), mdl_url + "/v2/models/iris/infer",
                            str(out), "--threads", str(args.swap_threads), "--stop-file", str(stop),
                            "--max-seconds", str(args.swap_seconds + 60)])
    flip = subprocess.Popen([mdl_py, "-c", FLIP, str(args.swap_every), str(args.swap_seconds)], env=env,
                            cwd=bl.REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert flip.stdin is not None and flip.stdout is not None
    if flip.stdout.readline().strip() != "ready":
        raise SystemExit("the promoter did not start")
    time.sleep(1.0)
    flip.stdin.write("go\n")
    flip.stdin.flush()
    text, _ = flip.communicate(timeout=args.swap_seconds + 120)
    time.sleep(1.0)
    stop.touch()
    gen.wait(60)
    if flip.returncode != 0 or gen.returncode != 0:
        raise SystemExit(f"swap phase failed (promoter {flip.returncode}, load generator {gen.returncode})")
    swaps = [tuple(map(float, line.split())) for line in text.splitlines() if line.strip()]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    in_swap = [any(r[1] > a - 0.02 and r[0] < b + 0.3 for a, b in swaps) for r in rows]
    ready = sorted(b - a for a, b in swaps)
    return {"threads": args.swap_threads, "seconds": args.swap_seconds, "swaps": len(swaps),
            "promote_to_ready_ms_median": round(statistics.median(ready) * 1000, 1) if ready else None,
            "promote_to_ready_ms_max": round(max(ready) * 1000, 1) if ready else None,
            "requests": len(rows), "failed": sum(1 for r in rows if r[2] != 200),
            "versions": sorted({str(r[3]) for r in rows}),
            "during_swaps": _stats([r[1] - r[0] for r, s in zip(rows, in_swap) if s]),
            "elsewhere": _stats([r[1] - r[0] for r, s in zip(rows, in_swap) if not s])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bl.add_common_args(ap)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default %(default)s)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per connection count")
    ap.add_argument("--connections", default="1,8,64", help="wrk connection counts (default %(default)s)")
    ap.add_argument("--mlserver-venv", default=str(bl.BENCH_DIR / ".venv-mlserver"))
    ap.add_argument("--mlserver-workers", default="1,0", help="MLServer parallel_workers settings to run")
    ap.add_argument("--swap-seconds", type=float, default=30.0, help="length of the swap run (default %(default)s)")
    ap.add_argument("--swap-every", type=float, default=1.0, help="seconds between promotions (default %(default)s)")
    ap.add_argument("--swap-threads", type=int, default=16,
                    help="connections of the load generator during swaps (default %(default)s)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    bl.configure(args)
    conns = [int(c) for c in args.connections.split(",")]
    workers = [int(w) for w in args.mlserver_workers.split(",") if w != ""]
    backend = bl.Backend.create("embedded", args.workdir)  # the registry is only for swaps: local is fine
    root = backend.root
    procs: list[subprocess.Popen] = []
    try:
        mdl_py = bl.interpreter_of(args.mdl)
        sk = subprocess.run([mdl_py, "-c", "import sklearn; print(sklearn.__version__)"], capture_output=True,
                            text=True, check=True).stdout.strip()
        ml_py = ensure_mlserver(Path(args.mlserver_venv), sk)
        ml_versions = subprocess.run([str(ml_py), "-c", "import mlserver, sklearn; "
                                      "print(mlserver.__version__, sklearn.__version__)"],
                                     capture_output=True, text=True, check=True).stdout.split()

        # the same model, trained by each side's own scikit-learn
        for d, py in (("mdl-v1", mdl_py), ("mdl-v2", mdl_py), ("ml", str(ml_py))):
            (root / d).mkdir()
            c = "0.01" if d == "mdl-v2" else "1.0"
            subprocess.run([py, "-c", TRAIN, str(root / d / "model.joblib"), c], check=True)
        env = {**backend.env, "PYTHONPATH": str(bl.REPO)}
        mdl = mdl_command(args.mdl, env)
        for v, d in (("v1", "mdl-v1"), ("v2", "mdl-v2")):
            bl.check(bl.run_measured([*mdl, "push", "iris", str(root / d / "model.joblib"), "--version", v], env=env,
                                     cwd=bl.REPO), f"mdl push {v}")
        bl.check(bl.run_measured([*mdl, "promote", "iris", "v1"], env=env, cwd=bl.REPO), "mdl promote")
        subprocess.run([mdl_py, "-c", TO_ONNX, str(root / "mdl-v1" / "model.joblib"), str(root / "iris.onnx")],
                       check=True)
        bl.check(bl.run_measured([*mdl, "push", "iris-onnx", str(root / "iris.onnx"), "--version", "v1", "--promote"],
                                 env=env, cwd=bl.REPO), "mdl push iris-onnx")

        servers: dict[str, str] = {}
        port = free_port()
        log = root / "mdl-serve.log"
        procs.append(subprocess.Popen([*mdl, "serve", "iris", "--port", str(port), "--cache", str(root / "cache")],
                                      env=env, cwd=bl.REPO, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                      start_new_session=True))
        wait_http(f"http://127.0.0.1:{port}/v2/models/iris/ready", 120, procs[-1], log)
        servers["mdl serve"] = f"http://127.0.0.1:{port}/v2/models/iris/infer"
        proc_of = {"mdl serve": procs[-1]}
        mdl_url = f"http://127.0.0.1:{port}"
        port = free_port()
        log = root / "mdl-serve-onnx.log"
        procs.append(subprocess.Popen([*mdl, "serve", "iris-onnx", "--port", str(port), "--cache",
                                       str(root / "cache-onnx")], env=env, cwd=bl.REPO, stdout=open(log, "wb"),
                                      stderr=subprocess.STDOUT, start_new_session=True))
        wait_http(f"http://127.0.0.1:{port}/v2/models/iris-onnx/ready", 120, procs[-1], log)
        servers[ONNX] = f"http://127.0.0.1:{port}/v2/models/iris-onnx/infer"
        proc_of[ONNX] = procs[-1]

        for w in workers:
            d = root / f"mlserver-{w}"
            (d / "iris").mkdir(parents=True)
            shutil.copy(root / "ml" / "model.joblib", d / "iris" / "model.joblib")
            (d / "iris" / "model-settings.json").write_text(json.dumps({
                "name": "iris", "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"}}))
            p = free_port()
            (d / "settings.json").write_text(json.dumps({
                "host": "127.0.0.1", "http_port": p, "grpc_port": free_port(), "metrics_port": free_port(),
                "debug": False, "parallel_workers": w}))
            log = d / "mlserver.log"
            procs.append(subprocess.Popen([str(ml_py.parent / "mlserver"), "start", str(d)], cwd=d,
                                          stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True))
            wait_http(f"http://127.0.0.1:{p}/v2/models/iris/ready", 180, procs[-1], log)
            servers[f"MLServer (parallel_workers={w})"] = f"http://127.0.0.1:{p}/v2/models/iris/infer"
            proc_of[f"MLServer (parallel_workers={w})"] = procs[-1]

        script = root / "post.lua"
        script.write_text(LUA)
        runs: dict[str, dict[int, list[dict]]] = {s: {c: [] for c in conns} for s in servers}
        for c in conns:
            for r in range(args.rounds):
                order = list(servers) if r % 2 == 0 else list(reversed(servers))
                for name in order:
                    for other, proc in proc_of.items():  # only the measured server runs
                        pause(proc, other != name)
                    wrk(servers[name], script, c, args.warmup)
                    res = wrk(servers[name], script, c, args.duration)
                    runs[name][c].append(res)
                    print(f"c={c:<3} round {r + 1}  {name:<32} {res['rps']:9.0f} req/s  "
                          f"p50 {res['p50_us'] / 1000:7.2f} ms  p99 {res['p99_us'] / 1000:7.2f} ms  "
                          f"errors {res['errors']}", flush=True)

        def summary(rs: list[dict]) -> dict:
            med = lambda k: statistics.median(x[k] for x in rs)  # noqa: E731
            return {"rps": round(med("rps"), 1), "p50_ms": round(med("p50_us") / 1000, 3),
                    "p99_ms": round(med("p99_us") / 1000, 3), "max_ms": round(max(x["max_us"] for x in rs) / 1000, 3),
                    "requests": sum(x["requests"] for x in rs), "errors": sum(x["errors"] for x in rs),
                    "rounds": rs}

        results = {name: {str(c): summary(runs[name][c]) for c in conns} for name in servers}

        for p in procs[1:]:  # MLServer and the ONNX server are done: no sharing the CPU with the swap run
            stop(p)
        pause(proc_of["mdl serve"], False)
        swap_doc = swap_phase(args, mdl_py, env, mdl_url, root)

        # targets, per connection count, against the best MLServer configuration
        targets = []
        rows = []
        for c in conns:
            m = results["mdl serve"][str(c)]
            others = {n: results[n][str(c)] for n in servers if not n.startswith("mdl serve")}
            best_name, best = max(others.items(), key=lambda kv: kv[1]["rps"])  # the fastest MLServer setting
            tight_name, tight = min(others.items(), key=lambda kv: kv[1]["p99_ms"])  # and its best p99
            ratio = m["rps"] / best["rps"] if best["rps"] else float("inf")
            targets.append({"target": f"c={c}: >= 1.5x MLServer req/s (best: {best_name}, {best['rps']:.0f} req/s)",
                            "pass": ratio >= 1.5, "value_ratio": round(ratio, 2)})
            targets.append({"target": f"c={c}: p99 <= MLServer's (best: {tight_name}, {tight['p99_ms']:.2f} ms)",
                            "pass": m["p99_ms"] <= tight["p99_ms"], "value_ms": m["p99_ms"]})
            targets.append({"target": f"c={c}: no failed requests (mdl serve)", "pass": m["errors"] == 0,
                            "value_errors": m["errors"]})
            o = results[ONNX][str(c)]
            onnx_ratio = o["rps"] / best["rps"] if best["rps"] else float("inf")
            targets.append({"target": f"c={c}: ONNX >= 1.5x MLServer req/s (best: {best_name})",
                            "pass": onnx_ratio >= 1.5 and o["errors"] == 0, "value_ratio": round(onnx_ratio, 2)})
            for n in servers:
                s = results[n][str(c)]
                rows.append([f"c={c}", n, f"{s['rps']:.0f}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}",
                             f"{s['max_ms']:.1f}", str(s["errors"]), f"{s['rps'] / best['rps']:.2f}x"])
        sw = swap_doc
        targets.append({"target": "no failed requests during swaps", "pass": sw["failed"] == 0 and sw["swaps"] > 0,
                        "value_errors": sw["failed"]})
        print()
        print(bl.table(["load", "server", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "vs best MLServer"], rows))
        near, far = sw["during_swaps"], sw["elsewhere"]
        print(f"\nswaps: {sw['swaps']} promotions in {args.swap_seconds:g} s under {sw['threads']}-connection load "
              f"({sw['requests']} requests, {sw['failed']} failed; promote -> replica ready median "
              f"{sw['promote_to_ready_ms_median']} ms, max {sw['promote_to_ready_ms_max']} ms)\n"
              f"  requests in flight during a swap: {near['count']}, p50 {near['p50_ms']} ms, p99 {near['p99_ms']} ms, "
              f"worst {near['max_ms']} ms\n"
              f"  all other requests of the run:    {far['count']}, p50 {far['p50_ms']} ms, p99 {far['p99_ms']} ms, "
              f"worst {far['max_ms']} ms")
        for t_ in targets:
            print(f"{bl.verdict(t_['pass'])}  {t_['target']}")
        doc = {"benchmark": "serve_vs_mlserver", "env": bl.env_info(args.mdl),
               "mlserver": {"version": ml_versions[0], "sklearn": ml_versions[1], "venv": args.mlserver_venv},
               "sklearn": sk, "load_generator": "wrk -t1 (keep-alive), one single-row v2 JSON body",
               "duration_s": args.duration, "rounds": args.rounds, "results": results, "swap": swap_doc,
               "targets": targets}
        bl.save("serve_vs_mlserver", doc, args.no_save)
        return 0
    finally:
        for p in procs:
            stop(p)
        backend.cleanup(args.keep)


if __name__ == "__main__":
    sys.exit(main())
