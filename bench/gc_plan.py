#!/usr/bin/env python3
"""``gc`` planning and deletion over a model with many versions: time, storage and registry requests.

    python bench/gc_plan.py [--backend embedded|distributed] [--versions 1000] [--delete 100] [--repeat 3]

Two models, populated through the library's storage (8 versions written in parallel, timed): ``wide`` with --versions
versions of 1 file, ``deep`` with a fifth as many versions of 10 files each. On each: 4 promotes (an
alias and a rollback window), then, timed and counted:

* ``list`` (the baseline): ``Client.list_versions``: the storage listing and one manifest read per
  version, what ``mdl list NAME`` does;
* ``plan``: ``Client.gc(plan_only=True)`` keeping all but --delete versions (grace 0, rollback window 3);
* ``delete``: the same ``gc`` applied: --delete versions deleted (a fifth as many on ``deep``); its
  figures per deleted version, in all and less its own plan (what deleting adds).

Storage requests are HTTP requests to WebHDFS (NameNode and DataNodes), or on the embedded backend
calls of the storage's public methods (each a few file-system calls); ``ops`` are storage method
calls on both. Registry requests are ZooKeeper requests, or calls of the SQLite registry's methods.
Plan and list are the median of --repeat runs; requests come from one run. Per version means per
stored version for list and plan, per deleted version for the deletion. ``x list`` = plan time /
list time, in the same invocation.

Counting needs hooks inside the library, so the measuring runs in a child on mdl's own interpreter
(``--worker``); this script itself, like the other benches, imports only the standard library. On
the distributed backend it works under its own HDFS root and ZooKeeper chroot, and deletes both.

Targets: planning --versions versions < 2 s embedded, < 20 s distributed; storage requests per
version of the plan on ``deep`` (10 files a version) at most 1.5x those on ``wide`` (1 file): they
grow with versions, not files. Exit code 0 whether or not a target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

import _benchlib as bl

PLAN_TARGET_S = {"embedded": 2.0, "distributed": 20.0}
FILES_RATIO_TARGET = 1.5
PARALLEL_PUSHES = 8
PROMOTES = 4


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, default=1000, help="versions of the 1-file model (default: %(default)s)")
    ap.add_argument("--delete", type=int, default=100, help="versions gc deletes from it (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="timed list and plan runs (default: %(default)s)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    bl.add_common_args(ap)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.versions < 10 or not 0 < args.delete < args.versions - PROMOTES or args.repeat < 1:
        ap.error("need --versions >= 10, 0 < --delete < --versions - 4 and --repeat >= 1")
    args.rss_method = bl.configure(args)
    be = bl.Backend.create(args.backend, args.workdir)
    run = uuid.uuid4().hex[:10]
    if args.backend == "distributed":  # a private tree and chroot, deleted at the end
        hosts = be.env["MDL_REGISTRY_URL"].split("://", 1)[1].split("/", 1)[0]
        be.env["MDL_STORAGE_ROOT"] = f"/mdl-bench/gc-{run}/models"
        be.env["MDL_REGISTRY_URL"] = f"zk://{hosts}/mdl-bench-gc-{run}"
    try:
        return bench(args, be)
    finally:
        be.cleanup(args.keep)


def bench(args: argparse.Namespace, be: bl.Backend) -> int:
    py = bl.interpreter_of(args.mdl)
    scenarios = [
        {"name": "gc-wide", "versions": args.versions, "files": 1, "delete": args.delete},
        {"name": "gc-deep", "versions": args.versions // 5, "files": 10, "delete": max(1, args.delete // 5)},
    ]
    print(f"mdl gc plan bench: backend {args.backend}, {args.repeat} timed list/plan runs, python {py}")
    spec = {"scenarios": scenarios, "repeat": args.repeat, "work": str(be.root), "backend": args.backend}
    r = bl.check(bl.run_measured([py, __file__, "--worker", json.dumps(spec)], be.env), "the measuring child")
    results = json.loads(r.stdout)

    rows = []
    for s in results["scenarios"]:
        n, d = s["versions"], s["delete"]["deleted"]
        rows.append([f"{s['name']} ({n} x {s['files']} files)", "populate", f"{s['populate_s']:.1f}", "", "", "", ""])
        plan = s["plan"]
        s["delete_beyond_plan"] = {k: s["delete"][k] - plan[k] for k in ("seconds", "storage", "ops", "registry")}
        for phase, label, per in (("list", "list", n), ("plan", "plan", n), ("delete", f"gc --yes: {d} deleted", d),
                                  ("delete_beyond_plan", "  less its plan", d)):
            m = s[phase]
            rows.append(["", label, f"{m['seconds']:.3f}", f"{m['seconds'] / per * 1000:.2f}",
                         f"{m['storage'] / per:.2f}", f"{m['ops'] / per:.2f}", f"{m['registry'] / per:.2f}"])
        s["plan_vs_list"] = s["plan"]["seconds"] / s["list"]["seconds"]
        rows.append(["", "x list", f"{s['plan_vs_list']:.2f}", "", "", "", ""])
    print(f"\nstorage: {'HTTP requests' if args.backend == 'distributed' else 'storage method calls'}; "
          f"registry: {'ZooKeeper requests' if args.backend == 'distributed' else 'registry method calls'}")
    print(bl.table(["model", "phase", "seconds", "ms/version", "storage/version", "ops/version",
                    "registry/version"], rows))

    wide, deep = results["scenarios"]
    target_s = PLAN_TARGET_S[args.backend]
    per_version = {s["name"]: s["plan"]["storage"] / s["versions"] for s in (wide, deep)}
    ratio = per_version["gc-deep"] / per_version["gc-wide"]
    targets = [
        {"target": f"plan of {wide['versions']} versions < {target_s:g} s",
         "value_s": round(wide["plan"]["seconds"], 3), "pass": wide["plan"]["seconds"] < target_s},
        {"target": f"plan storage requests per version, 10 files vs 1 file <= {FILES_RATIO_TARGET}x",
         "value": round(ratio, 2), "pass": ratio <= FILES_RATIO_TARGET},
    ]
    print()
    for t in targets:
        print(f"{bl.verdict(t['pass'])}  {t['target']}: {t.get('value_s', t.get('value'))}")
    bl.save(f"gc_plan_{args.backend}", {
        "bench": "gc_plan", "env": bl.env_info(args.mdl), **be.describe(),
        "params": {"versions": args.versions, "delete": args.delete, "repeat": args.repeat,
                   "parallel_pushes": PARALLEL_PUSHES, "promotes": PROMOTES},
        "results": results, "targets": targets,
    }, args.no_save)
    return 0


# -- the measuring child (mdl's interpreter) ------------------------------------------------------

STORAGE_METHODS = ("list_models", "list_versions", "read_bytes", "read_manifest", "open", "download", "stage",
                   "list_staging", "remove_staging", "hide_version", "list_hidden", "purge_hidden")
REGISTRY_METHODS = ("get", "cas", "history", "lifecycle", "set_lifecycle", "list_models", "list_replicas",
                    "put_manifest", "get_manifest", "register_replica", "download_slot")


class Counters:
    """Storage and registry requests of one client, from :meth:`reset` on."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        import threading

        self.ops = self.storage = self.registry = 0
        self._lock, self._depth = threading.Lock(), threading.local()
        self._count_calls(client.storage, STORAGE_METHODS, "ops")
        session = getattr(client.storage, "session", None)
        self.http = session is not None
        if self.http:  # WebHDFS: every HTTP request, NameNode and DataNode alike
            http = session.http
            send = http.request

            def request(method, url, **kw):  # type: ignore[no-untyped-def]
                self._add("storage")
                return send(method, url, **kw)

            http.request = request
        else:
            self._count_calls(client.storage, STORAGE_METHODS, "storage")
        zk = getattr(client.registry, "session", None)
        if zk is not None:  # ZooKeeper: every request kazoo sends (a transaction is one)
            kazoo = zk.client()
            call = kazoo._call

            def counted(*a, **kw):  # type: ignore[no-untyped-def]
                self._add("registry")
                return call(*a, **kw)

            kazoo._call = counted
        else:
            self._count_calls(client.registry, REGISTRY_METHODS, "registry")
        self.reset()

    def _add(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def _count_calls(self, obj, methods, what: str) -> None:  # type: ignore[no-untyped-def]
        """Count the outermost calls of ``obj``'s ``methods`` (one that calls another counts once)."""
        for m in methods:
            if not hasattr(obj, m):
                continue
            inner = getattr(obj, m)

            def wrapped(*a, _inner=inner, **kw):  # type: ignore[no-untyped-def]
                depth = getattr(self._depth, what, 0)
                if depth == 0:
                    self._add(what)
                setattr(self._depth, what, depth + 1)
                try:
                    return _inner(*a, **kw)
                finally:
                    setattr(self._depth, what, depth)

            setattr(obj, m, wrapped)

    def reset(self) -> None:
        with self._lock:
            self.ops = self.storage = self.registry = 0

    def take(self, seconds: float) -> dict:
        with self._lock:
            return {"seconds": seconds, "storage": self.storage, "ops": self.ops, "registry": self.registry}


def populate(name: str, versions: int, files: int, work: Path) -> list[str]:
    """``versions`` versions of ``files`` tiny files each, oldest first, 8 at a time. Each is written as
    a push writes it (stage, upload, manifest last, one publishing rename) without what a push adds
    before (listing the model's versions, comparing with the newest), which would make populating
    quadratic in the number of versions."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from mdl import __version__
    from mdl.client import Client
    from mdl.host import now_iso
    from mdl.manifest import Manifest, digest_of, scan_source
    from mdl.transfer import NoProgress, upload_files

    local = threading.local()
    made: list = []

    def write(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = Client.from_config()
            made.append(local.client)
        client, version = local.client, f"v{i:05d}"
        src = work / f"{name}-src-{i}"
        src.mkdir()
        for f in range(files):
            (src / f"part-{f:02d}.txt").write_text(f"{name} {i} {f}\n")
        kind, found = scan_source(src)
        stage = client.storage.stage(name, version)
        entries = upload_files(stage, found, 4, NoProgress())
        stage.write_manifest(Manifest(name=name, version=version, files=entries, digest=digest_of(entries),
                                      created=now_iso(), creator=client.identity, mdl_version=__version__,
                                      format="directory", kind=kind))
        stage.publish()

    with ThreadPoolExecutor(PARALLEL_PUSHES) as pool:
        list(pool.map(write, range(versions)))
    for c in made:
        c.close()
    return [f"v{i:05d}" for i in range(versions)]


def measure(counters: Counters, fn, repeat: int) -> dict:  # type: ignore[no-untyped-def]
    """The median time of ``repeat`` runs of ``fn``; the requests of the last one."""
    import statistics
    import time

    times = []
    for _ in range(repeat):
        counters.reset()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {**counters.take(statistics.median(times)), "runs_s": times}


def worker(spec: dict) -> dict:
    import functools
    import time

    from mdl.client import Client
    from mdl.retention import Rules

    out = []
    work = Path(spec["work"])
    for s in spec["scenarios"]:
        name, n = s["name"], s["versions"]
        t0 = time.perf_counter()
        versions = populate(name, n, s["files"], work)
        populate_s = time.perf_counter() - t0
        with Client.from_config() as client:
            for v in versions[-PROMOTES:]:  # latest on the newest; the 3 before it in its rollback window
                client.promote(name, v)
            counters = Counters(client)
            rules = Rules(keep_last=n - s["delete"], grace=0, rollback_window=3)
            listed = measure(counters, functools.partial(client.list_versions, name), spec["repeat"])
            planned = measure(counters, functools.partial(client.gc, name, rules=rules), spec["repeat"])
            plan = client.gc(name, rules=rules, plan_only=True).plan
            counters.reset()
            t0 = time.perf_counter()
            result = client.gc(name, rules=rules, plan_only=False)
            deleted = {**counters.take(time.perf_counter() - t0), "deleted": len(result.deleted),
                       "skipped": len(result.skipped)}
            left = len(client.stored_versions(name))
        out.append({**s, "populate_s": populate_s, "list": listed, "plan": planned,
                    "plan_deletes": len(plan.delete), "delete": deleted, "left": left})
    if spec["backend"] == "distributed":
        drop_run()
    return {"scenarios": out}


def drop_run() -> None:
    """Delete this run's HDFS tree and ZooKeeper chroot."""
    import getpass

    from hdfs import InsecureClient
    from kazoo.client import KazooClient

    namenode = os.environ["MDL_STORAGE_URL"].split("://", 1)[1].split(",")[0]
    run_root = os.environ["MDL_STORAGE_ROOT"].rsplit("/", 1)[0]
    user = os.environ.get("MDL_STORAGE_USER") or getpass.getuser()
    InsecureClient(f"http://{namenode}", user=user, timeout=30).delete(run_root, recursive=True)
    hosts, chroot = os.environ["MDL_REGISTRY_URL"].split("://", 1)[1].split("/", 1)
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=10)
    try:
        zk.delete("/" + chroot, recursive=True)
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    sys.exit(main())
