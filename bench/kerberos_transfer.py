#!/usr/bin/env python3
"""What Kerberos costs: push and pull on the Kerberized dev cluster against the simple-auth one.

    python bench/kerberos_transfer.py [--size-mib 256] [--files 64] [--repeat 3] [--start]

Both clusters are mdl's dev clusters on this host with the same shape (one NameNode, 3 DataNodes, the
same block size): the default one (``python -m mdl.devcluster up``) and the secure one
(``--state-dir ~/.cache/mdl/dev-cluster-secure up --secure --port-offset 400``, as the tests start it;
``--start`` starts either if needed). Each round pushes and pulls one large file and a directory of
``--files`` 1 MiB files on both, alternating which cluster goes first; every push uses a fresh model
name. The many-small-files case is where per-request costs show: on the secure cluster every NameNode
request carries a fresh SPNEGO token, and the DataNode requests carry the delegation token the
NameNode put in its redirect. The cost of one token is also timed in-process.
Exit code 0 whether or not the figures please; non-zero only when a step fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import _benchlib as bl

REPO = Path(__file__).resolve().parent.parent
SECURE_DIR = Path.home() / ".cache" / "mdl" / "dev-cluster-secure"
SECURE_OFFSET = 400


def clusters(start: bool) -> tuple[object, object]:
    sys.path.insert(0, str(REPO))
    from mdl.devcluster import DevCluster
    from mdl.devcluster.manager import default_state_dir

    plain, secure = DevCluster(default_state_dir()), DevCluster(SECURE_DIR, port_offset=SECURE_OFFSET, secure=True)
    for c in (plain, secure):
        if start:
            c.up()
        elif not c.status().get("healthy"):
            raise SystemExit(f"the dev cluster in {c.dir} is not running: pass --start")
    return plain, secure


def envs(plain, secure, work: Path) -> dict[str, dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MDL_", "KRB5"))}
    base.update(MDL_NO_PROGRESS="1", MDL_REGISTRY_URL=f"sqlite://{work}/registry.db", MDL_CACHE_DIR="none")
    run = uuid.uuid4().hex[:8]
    krb = secure.kerberos()
    ccache = f"FILE:{work}/krb5cc"
    secure.kinit(ccache)
    return {
        "simple": {**base, "MDL_STORAGE_URL": plain.info()["storage_url"], "MDL_STORAGE_USER": plain.superuser(),
                   "MDL_STORAGE_ROOT": f"/mdl-bench/{run}"},
        "kerberos": {**base, "MDL_STORAGE_URL": secure.info()["storage_url"], "MDL_STORAGE_AUTH": "kerberos",
                     "MDL_STORAGE_ROOT": f"/user/client/mdl-bench-{run}", "KRB5_CONFIG": krb["krb5_config"],
                     "KRB5CCNAME": ccache},
    }


def token_cost(env: dict[str, str], host: str, n: int = 2000) -> float:
    """Milliseconds of one SPNEGO token (credentials from the cache, the service ticket cached)."""
    code = ("import time; from mdl.storage.kerberos import Kerberos; k = Kerberos(); k.header(%r)\n"
            "t = time.perf_counter()\nfor _ in range(%d): k.header(%r)\n"
            "print((time.perf_counter() - t) / %d * 1000)") % (host, n, host, n)
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(REPO)}, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--start", action="store_true", help="start the clusters if they are not running")
    ap.add_argument("--mdl", default=str(REPO / ".venv" / "bin" / "mdl"))
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    plain, secure = clusters(args.start)
    with tempfile.TemporaryDirectory(prefix="mdl-bench-krb-") as tmp:
        work = Path(tmp)
        env = envs(plain, secure, work)
        big = work / "big"
        big.mkdir()
        with open(big / "model.bin", "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(bl.MiB))
        small = work / "small"
        small.mkdir()
        for i in range(args.files):
            (small / f"part-{i:03d}.bin").write_bytes(os.urandom(bl.MiB))
        cases = {"1 large file": (big, args.size_mib), f"{args.files} x 1 MiB": (small, args.files)}
        times: dict[tuple[str, str, str], list[float]] = {}
        for r in range(args.repeat + 1):  # round 0 warms up
            order = ["simple", "kerberos"] if r % 2 else ["kerberos", "simple"]
            for case, (src, _) in cases.items():
                for auth in order:
                    name = f"b{uuid.uuid4().hex[:8]}"
                    bl.read_through(src / next(iter(os.listdir(src))))
                    bl.sync()
                    push = bl.check(bl.run_measured([args.mdl, "push", name, str(src), "--version", "v1"],
                                                    env=env[auth]), f"push {case} ({auth})")
                    pull = bl.check(bl.run_measured([args.mdl, "pull", name, "v1", "-d", str(work / name)],
                                                    env=env[auth]), f"pull {case} ({auth})")
                    if r:
                        times.setdefault((case, "push", auth), []).append(push.wall_s)
                        times.setdefault((case, "pull", auth), []).append(pull.wall_s)
                    print(f"  round {r} {case} {auth}: push {push.wall_s:.2f}s pull {pull.wall_s:.2f}s", flush=True)
        rows, doc = [], {"rounds": args.repeat, "results": []}
        for case, (_, mib) in cases.items():
            for op in ("push", "pull"):
                s, k = bl.median(times[(case, op, "simple")]), bl.median(times[(case, op, "kerberos")])
                rows.append([f"{op} {case}", f"{mib / s:.0f}", f"{mib / k:.0f}", f"{s / k:.2f}"])
                doc["results"].append({"case": case, "op": op, "simple_s": s, "kerberos_s": k})
        cost = token_cost(env["kerberos"], "localhost")
        doc["spnego_token_ms"] = cost
        print(bl.table(["op", "simple MiB/s", "kerberos MiB/s", "kerberos / simple"], rows))
        print(f"one SPNEGO token: {cost:.3f} ms (credentials from the ticket cache, service ticket cached)")
        bl.save("kerberos_transfer", doc, args.no_save)


if __name__ == "__main__":
    main()
