#!/usr/bin/env python3
"""Push and pull throughput of one large file with the real ``mdl`` binary, against plain ``cp``.

    python bench/transfer.py [--size-mib 1024] [--repeat 3] [--warmup 1] [--backend embedded|distributed] [--profile]

Fairness rules (see bench/README.md):
* the page cache is never dropped; before every timed run the run's source file is read through
  (so every contender starts with it cached) and ``sync`` flushes the previous run's dirty pages;
* ``cp`` copies the same source to the same filesystem as mdl's target (push: the storage
  directory's filesystem; pull: the pull directory), and contenders alternate order per repeat;
* every push uses a fresh model name, so mdl's "identical content, nothing to upload" shortcut never
  applies; wall time is fork-to-exit of the child (mdl's interpreter start-up included);
* ``--warmup`` untimed full rounds come first (new page-cache pages are costly the first time on a VM).

Targets: peak RSS of every mdl process < 100 MiB. Exit code 0 whether or not a target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import _benchlib as bl

RSS_TARGET_MIB = 100


def make_source(path: Path, size_mib: int) -> None:
    chunk = 8 * bl.MiB
    left = size_mib * bl.MiB
    with open(path, "wb") as f:
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per contender (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed full rounds (push+pull, both contenders) first (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=None, help="pass -j to mdl push/pull (default: mdl's config)")
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, run one push and one pull under cProfile and print the top functions")
    bl.add_common_args(ap)
    args = ap.parse_args()
    args.rss_method = bl.configure(args)
    if args.size_mib < 1 or args.repeat < 1 or args.warmup < 0:
        ap.error("--size-mib and --repeat must be >= 1, --warmup >= 0")
    mdl = args.mdl
    if not os.access(mdl, os.X_OK):
        ap.error(f"{mdl} is not an executable mdl")

    be = bl.Backend.create(args.backend, args.workdir)
    try:
        return bench(args, be)
    finally:
        be.cleanup(args.keep)


def bench(args: argparse.Namespace, be: bl.Backend) -> int:
    mdl, size, env = args.mdl, args.size_mib, be.env
    jobs = ["-j", str(args.jobs)] if args.jobs else []
    src = be.root / "model.bin"
    print(f"mdl transfer bench: {size} MiB x {args.repeat}, backend {args.backend} "
          f"({be.describe()['storage']}), temp {be.root}")
    make_source(src, size)
    bl.sync()

    # Baseline targets: same filesystem as mdl's target.
    push_cp_dir = be.storage_dir.parent if be.storage_dir else be.root  # storage is remote: local copy
    push_cp_dir.mkdir(parents=True, exist_ok=True)
    pull_dir = be.root / "pull"
    pull_dir.mkdir()

    startup = bl.median([bl.check(bl.run_measured([mdl, "--version"], env), "mdl --version").wall_s
                         for _ in range(3)])

    runs: dict[str, list[bl.Run]] = {k: [] for k in ("push/cp", "push/mdl", "pull/cp", "pull/mdl")}
    for i in range(-args.warmup, args.repeat):  # i < 0: warm-up rounds, not recorded
        name = f"bench-{os.getpid()}-{i + args.warmup}"
        order = ("cp", "mdl") if i % 2 == 0 else ("mdl", "cp")
        timed: dict[str, bl.Run] = {}
        version = None
        cp_push = push_cp_dir / f"cp-push-{i}.bin"
        for who in order:
            bl.sync()
            bl.read_through(src)
            if who == "cp":
                r = bl.check(bl.run_measured(["cp", str(src), str(cp_push)]), "cp (push baseline)")
            else:
                r = bl.check(bl.run_measured([mdl, "push", name, str(src), "--no-progress", "-o", "json", *jobs],
                                             env), "mdl push")
                version = json.loads(r.stdout)["version"]
            timed[f"push/{who}"] = r

        stored = be.stored_file(name, version, src.name) or src  # remote storage: baseline copies the source
        cp_pull, mdl_pull = pull_dir / f"cp-pull-{i}.bin", pull_dir / f"mdl-pull-{i}"
        for who in order:
            bl.sync()
            bl.read_through(stored)
            if who == "cp":
                r = bl.check(bl.run_measured(["cp", str(stored), str(cp_pull)]), "cp (pull baseline)")
            else:
                r = bl.check(bl.run_measured([mdl, "pull", name, version, "-d", str(mdl_pull), "--no-progress",
                                              "-o", "json", *jobs], env), "mdl pull")
                got = (mdl_pull / src.name).stat().st_size
                if got != size * bl.MiB:
                    bl.warn(f"pulled file has {got} bytes, expected {size * bl.MiB}")
                    return 2
            timed[f"pull/{who}"] = r

        # Clean up outside the timed windows.
        cp_push.unlink(missing_ok=True)
        cp_pull.unlink(missing_ok=True)
        shutil.rmtree(mdl_pull, ignore_errors=True)
        be.remove_model(name)
        bl.sync()
        if i >= 0:
            for k in runs:
                runs[k].append(timed[k])
        label = f"warm-up {i + args.warmup + 1}/{args.warmup}" if i < 0 else f"repeat {i + 1}/{args.repeat}"
        print(f"  {label}: " + ", ".join(f"{k} {timed[k].wall_s:.2f}s" for k in runs))

    results: dict[str, dict] = {}
    for key, rs in runs.items():
        walls = [r.wall_s for r in rs]
        med = bl.median(walls)
        results[key] = {"wall_s": walls, "median_s": med, "min_s": min(walls), "mib_per_s": size / med,
                        "maxrss_kib": [r.maxrss_kib for r in rs], "peak_rss_mib": max(r.maxrss_kib for r in rs) / 1024}
    for op in ("push", "pull"):
        results[f"{op}/mdl"]["ratio_vs_cp"] = results[f"{op}/mdl"]["mib_per_s"] / results[f"{op}/cp"]["mib_per_s"]

    rows = []
    for key, r in results.items():
        rows.append([key, f"{r['median_s']:.2f}", f"{r['min_s']:.2f}", f"{r['mib_per_s']:.0f}",
                     f"{r['ratio_vs_cp']:.2f}" if "ratio_vs_cp" in r else "1.00", f"{r['peak_rss_mib']:.1f}"])
    print(f"\npeak RSS via {args.rss_method}")
    print(bl.table(["op/contender", "median s", "best s", "MiB/s", "x cp", "peak RSS MiB"], rows))
    print(f"(mdl interpreter start-up, `mdl --version`: {startup * 1000:.0f} ms, included in mdl times)")

    targets = []
    for op in ("push", "pull"):
        peak = results[f"{op}/mdl"]["peak_rss_mib"]
        ok = peak < RSS_TARGET_MIB
        targets.append({"target": f"mdl {op} peak RSS < {RSS_TARGET_MIB} MiB", "value_mib": round(peak, 1),
                        "pass": ok})
        print(f"{bl.verdict(ok)}  mdl {op} peak RSS {peak:.1f} MiB < {RSS_TARGET_MIB} MiB")

    profile = None
    if args.profile:
        profile = run_profile(args, be, src, jobs)

    bl.save("transfer", {
        "bench": "transfer", "env": bl.env_info(mdl), **be.describe(),
        "rss_method": args.rss_method, "params": {"size_mib": size, "repeat": args.repeat, "warmup_rounds": args.warmup, "jobs": args.jobs,
                   "push_baseline": f"cp SOURCE {push_cp_dir}/", "pull_baseline": f"cp STORED_FILE {pull_dir}/",
                   "cache": "not dropped; source read through and sync before each timed run"},
        "mdl_startup_s": startup, "results": results, "targets": targets, "profile": profile,
    }, args.no_save)
    return 0


def run_profile(args: argparse.Namespace, be: bl.Backend, src: Path, jobs: list[str]) -> dict[str, str]:
    """One push and one pull under cProfile (main thread only: a one-file push runs inline)."""
    py = bl.interpreter_of(args.mdl)
    name = f"bench-{os.getpid()}-profile"
    out: dict[str, str] = {}
    version = None
    for op in ("push", "pull"):
        prof = be.root / f"{op}.prof"
        cmd = [args.mdl, "push", name, str(src)] if op == "push" else \
            [args.mdl, "pull", name, version, "-d", str(be.root / "pull" / "profile")]
        bl.sync()
        bl.read_through(src)
        r = bl.check(bl.run_measured([py, "-m", "cProfile", "-o", str(prof), *cmd, "--no-progress", "-o", "json",
                                      *jobs], be.env), f"profiled mdl {op}")
        if op == "push":
            version = json.loads(r.stdout)["version"]
        stats = bl.check(bl.run_measured([py, "-c", "import pstats, sys; pstats.Stats(sys.argv[1])"
                                          ".sort_stats('tottime').print_stats(12)", str(prof)]), "pstats").stdout
        text = stats[stats.find("   ncalls"):] if "   ncalls" in stats else stats
        out[op] = text
        print(f"\n--- cProfile: mdl {op} ({r.wall_s:.2f}s under the profiler), top 12 by own time ---\n{text.rstrip()}")
    shutil.rmtree(be.root / "pull" / "profile", ignore_errors=True)
    be.remove_model(name)
    return out


if __name__ == "__main__":
    sys.exit(main())
