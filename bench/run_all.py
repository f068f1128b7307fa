#!/usr/bin/env python3
"""Run every mdl benchmark, then print one PASS/MISS line per target.

    python bench/run_all.py [--backend embedded|distributed] [--size-mib 1024] [--repeat 3] [--runs 21]

Each benchmark writes bench/results/<name>.json. Exit code 0 whether or not targets are met
(non-zero only if a benchmark itself failed to run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import _benchlib as bl


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("embedded", "distributed"), default="embedded")
    ap.add_argument("--mdl", default=str(bl.DEFAULT_MDL))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--size-mib", type=int, default=1024, help="transfer.py --size-mib")
    ap.add_argument("--repeat", type=int, default=3, help="transfer.py --repeat")
    ap.add_argument("--runs", type=int, default=21, help="startup.py --runs")
    ap.add_argument("--only", choices=("transfer", "startup"), action="append", help="run only these")
    args = ap.parse_args()

    common = ["--backend", args.backend, "--mdl", args.mdl] + (["--workdir", args.workdir] if args.workdir else [])
    benches = {
        "startup": ["--runs", str(args.runs)],
        "transfer": ["--size-mib", str(args.size_mib), "--repeat", str(args.repeat)],
    }
    failed = []
    for name, extra in benches.items():
        if args.only and name not in args.only:
            continue
        print(f"\n=== {name} ===", flush=True)
        rc = subprocess.call([sys.executable, str(bl.BENCH_DIR / f"{name}.py"), *common, *extra])
        if rc != 0:
            failed.append(name)

    print("\n=== targets ===")
    for name in benches:
        if (args.only and name not in args.only) or name in failed:
            continue
        doc = json.loads((bl.RESULTS_DIR / f"{name}.json").read_text())
        for t in doc["targets"]:
            value = t.get("value_ms", t.get("value_mib"))
            unit = "ms" if "value_ms" in t else "MiB"
            print(f"{bl.verdict(t['pass'])}  {t['target']}  (measured {value} {unit})")
    for name in failed:
        print(f"ERROR  {name} did not complete")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
