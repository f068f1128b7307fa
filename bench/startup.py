#!/usr/bin/env python3
"""Start-up latency of the real ``mdl`` binary against ``python -c pass`` on the same interpreter.

    python bench/startup.py [--runs 21] [--warmup 3] [--models 5] [--backend embedded|distributed]

Commands timed (fork to exit, round-robin so drift hits all alike): ``mdl --help``,
``mdl list -o json`` (after pushing --models small models), and the baseline ``python -c pass``
(``python -I -S -c pass`` too, the bare interpreter floor). The package is byte-compiled first, as a
wheel install leaves it. Then ``python -X importtime`` of
``mdl --help`` and the 10 imports with the largest cumulative time, as a hint for optimisation.

Target: median < 100 ms for each mdl command. Exit code 0 whether or not a target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import _benchlib as bl

TARGET_MS = 100


def importtime(py: str, mdl: str, env: dict[str, str], top: int) -> tuple[list[dict], int, int]:
    """Parse ``-X importtime`` of ``mdl --help`` (best of 3, per module the minimum)."""
    best: dict[str, dict] = {}
    for _ in range(3):
        r = bl.check(bl.run_measured([py, "-X", "importtime", mdl, "--help"], env), "importtime")
        for line in r.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if not m:
                continue
            self_us, cum_us, depth, mod = int(m[1]), int(m[2]), len(m[3]) // 2, m[4]
            if mod not in best or cum_us < best[mod]["cumulative_us"]:
                best[mod] = {"module": mod, "self_us": self_us, "cumulative_us": cum_us, "depth": depth}
    ranked = sorted(best.values(), key=lambda d: d["cumulative_us"], reverse=True)
    return ranked[:top], sum(d["self_us"] for d in best.values()), len(best)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=21, help="timed runs per command (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs first (default: %(default)s)")
    ap.add_argument("--models", type=int, default=5, help="models pushed before `mdl list` (default: %(default)s)")
    ap.add_argument("--top", type=int, default=10, help="import-time offenders shown (default: %(default)s)")
    bl.add_common_args(ap)
    args = ap.parse_args()
    args.rss_method = bl.configure(args)
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be >= 1 and --warmup >= 0")
    if not os.access(args.mdl, os.X_OK):
        ap.error(f"{args.mdl} is not an executable mdl")
    be = bl.Backend.create(args.backend, args.workdir)
    try:
        return bench(args, be)
    finally:
        be.cleanup(args.keep)


def bench(args: argparse.Namespace, be: bl.Backend) -> int:
    mdl, env = args.mdl, be.env
    py = bl.interpreter_of(mdl)
    print(f"mdl startup bench: {args.runs} runs after {args.warmup} warm-ups, backend {args.backend}, "
          f"python {py}")

    # A wheel install byte-compiles mdl; an editable one under PYTHONDONTWRITEBYTECODE never would,
    # and every run would pay for compiling the sources.
    pkg = bl.check(bl.run_measured([py, "-c", "import mdl, os; print(os.path.dirname(mdl.__file__))"], env,
                                   capture=True), "locate mdl").stdout.strip()
    bl.check(bl.run_measured([py, "-m", "compileall", "-q", pkg], env, capture=True), "compileall")

    # Stable names: on a shared (distributed) backend a re-run re-pushes identical content, a no-op,
    # so nothing piles up; the embedded backend lives in the temp dir and goes with it.
    names = [f"bench-startup-m{i}" for i in range(args.models)]
    for i, name in enumerate(names):
        f = be.root / f"model-{i}.json"
        f.write_text(json.dumps({"model": i}))
        bl.check(bl.run_measured([mdl, "push", name, str(f), "--promote", "--no-progress", "-q"], env), "mdl push")
    listed = json.loads(bl.check(bl.run_measured([mdl, "list", "-o", "json"], env), "mdl list").stdout)
    if len(listed["models"]) < args.models:
        bl.warn(f"mdl list shows {len(listed['models'])} models, expected >= {args.models}")

    cmds = {
        "python -c pass": [py, "-c", "pass"],
        "python -I -S -c pass": [py, "-I", "-S", "-c", "pass"],
        "mdl --help": [mdl, "--help"],
        "mdl list -o json": [mdl, "list", "-o", "json"],
    }
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    rss: dict[str, list[int]] = {k: [] for k in cmds}
    for i in range(args.warmup + args.runs):
        for key, cmd in cmds.items():  # round-robin
            r = bl.check(bl.run_measured(cmd, env, capture=True), key)
            if i >= args.warmup:
                walls[key].append(r.wall_s)
                rss[key].append(r.maxrss_kib)

    base = bl.median(walls["python -c pass"])
    results = {}
    rows = []
    for key in cmds:
        med = bl.median(walls[key])
        results[key] = {"wall_s": walls[key], "median_ms": med * 1000, "min_ms": min(walls[key]) * 1000,
                        "max_ms": max(walls[key]) * 1000, "ratio_vs_python": med / base,
                        "over_python_ms": (med - base) * 1000, "peak_rss_mib": max(rss[key]) / 1024}
        r = results[key]
        rows.append([key, f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}", f"{r['max_ms']:.1f}",
                     f"{r['ratio_vs_python']:.2f}", f"{r['over_python_ms']:+.1f}", f"{r['peak_rss_mib']:.1f}"])
    print(f"\npeak RSS via {args.rss_method}")
    print(bl.table(["command", "median ms", "min", "max", "x python", "+ms", "RSS MiB"], rows))

    targets = []
    for key in ("mdl --help", "mdl list -o json"):
        med = results[key]["median_ms"]
        ok = med < TARGET_MS
        targets.append({"target": f"{key} median < {TARGET_MS} ms", "value_ms": round(med, 1), "pass": ok})
        print(f"{bl.verdict(ok)}  {key}: median {med:.1f} ms < {TARGET_MS} ms")

    top, total_self_us, nmods = importtime(py, mdl, env, args.top)
    print(f"\npython -X importtime {os.path.basename(mdl)} --help: {nmods} modules, "
          f"{total_self_us / 1000:.0f} ms importing in all; top {args.top} by cumulative time "
          "(best of 3; nested entries are counted in their parents):")
    print(bl.table(["module", "cumulative ms", "self ms", "depth"],
                   [[d["module"], f"{d['cumulative_us'] / 1000:.1f}", f"{d['self_us'] / 1000:.1f}", str(d["depth"])]
                    for d in top]))

    bl.save("startup", {
        "bench": "startup", "env": bl.env_info(mdl), **be.describe(),
        "rss_method": args.rss_method, "params": {"runs": args.runs, "warmup": args.warmup, "models": args.models, "python": py},
        "results": results, "targets": targets,
        "importtime_help_top": top, "importtime_help_total_self_ms": total_self_us / 1000,
        "importtime_help_modules": nmods,
    }, args.no_save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
