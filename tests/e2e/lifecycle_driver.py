"""One role of the lifecycle race (tests/e2e/test_lifecycle_races.py), run as its own process against
the backend its ``MDL_*`` environment names::

    python -m tests.e2e.lifecycle_driver ROLE NAME SECONDS SEED WORKDIR LOG
    python -m tests.e2e.lifecycle_driver victim NAME rm|gc [VERSION...]

``promote``: promote random versions in a loop; ``delete``: ``rm`` and ``gc`` in a loop, pushing new
versions when few are left; ``pull``: pull the latest (or a random listed) version in a loop. Each
round appends one JSON line to LOG: the operation, its outcome (``ok`` or the error's class), a
``violation`` (None, or what broke an invariant, with the evidence) and its ``seconds``. ``victim``: one
``rm`` or ``gc`` for the SIGKILL test (see :func:`victim`).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mdl.client import Client
from mdl.errors import MdlError
from mdl.manifest import MANIFEST_NAME, Manifest
from mdl.retention import Rules

Log = Callable[..., None]
POOL_LOW, POOL_HIGH = 7, 10
PROMOTE_PAUSE = 0.3  # at most, between two promotes: back-to-back ones (dozens a second) starve the deletes


def pointer_violation(client: Client, name: str) -> str | None:
    """Whether the pointer names a version storage does not list. Decided only on a listing taken while
    the pointer stayed at one revision (a move during the listing proves nothing either way)."""
    for _ in range(20):
        before = client.pointer(name)
        listed = set(client.stored_versions(name))
        after = client.pointer(name)
        if before.revision == after.revision:
            missing = {a: v for a, v in before.aliases.items() if v not in listed}
            return f"pointer {before.aliases} names missing {missing}; listed {sorted(listed)}" if missing else None
    return None


def copy_violation(dest: Path, name: str, version: str) -> str | None:
    """Whether ``dest`` is not a whole copy of ``version``: every file of its manifest with its sha256,
    nothing else."""
    m = Manifest.from_json((dest / MANIFEST_NAME).read_bytes(), expect=(name, version))
    present = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    if present != {f.path for f in m.files} | {MANIFEST_NAME}:
        return f"copy of {version} holds {sorted(present)}, manifest lists {sorted(f.path for f in m.files)}"
    for f in m.files:
        if hashlib.sha256((dest / f.path).read_bytes()).hexdigest() != f.sha256:
            return f"copy of {version}: {f.path} does not match its sha256"
    return None


def debris(work: Path) -> list[str]:
    """Temporary directories a pull left beside its target."""
    return sorted(p.name for p in work.iterdir() if ".mdl-tmp-" in p.name or ".mdl-old-" in p.name)


def outcome(exc: BaseException | None) -> str:
    return "ok" if exc is None else type(exc).__name__


def promote(client: Client, name: str, rng: random.Random, deadline: float, work: Path, log: Log) -> None:
    seen: set[str] = set()
    while time.monotonic() < deadline:
        listed = client.stored_versions(name)
        seen.update(listed)
        pool = listed if listed and rng.random() < 0.8 else sorted(seen)  # sometimes one deleted already
        version = rng.choice(pool)
        err: MdlError | None = None
        try:
            client.promote(name, version)
        except MdlError as exc:
            err = exc
        log(op="promote", version=version, result=outcome(err), violation=pointer_violation(client, name))
        time.sleep(rng.uniform(0, PROMOTE_PAUSE))


def push_one(client: Client, name: str, version: str, work: Path) -> None:
    src = work / "src"
    src.mkdir(exist_ok=True)
    (src / "weights.bin").write_bytes(hashlib.sha256(version.encode()).digest() * 4096)  # 128 KiB
    (src / "config.json").write_text(json.dumps({"version": version}))
    client.push(name, src, version=version)


def delete(client: Client, name: str, rng: random.Random, deadline: float, work: Path, log: Log) -> None:
    made = len(client.stored_versions(name))
    while time.monotonic() < deadline:
        listed = client.stored_versions(name)
        if len(listed) < POOL_LOW:
            for _ in range(POOL_HIGH - len(listed)):
                made += 1
                push_one(client, name, f"v{made:04d}", work)
            log(op="push", version=f"v{made:04d}", result="ok", violation=None)
            continue
        gone: list[str] = []
        err: MdlError | None = None
        if rng.random() < 0.6:
            aliased = set(client.pointer(name).aliases.values())
            version = rng.choice([v for v in listed if v not in aliased] or listed)
            op, detail = "rm", {"version": version}
            try:
                gone = [d.version for d in client.rm(name, [version], force=rng.random() < 0.7)]
            except MdlError as exc:
                err = exc
        else:
            rules = Rules(keep_last=rng.randint(3, 6), grace=0, rollback_window=rng.randint(0, 1))
            op, detail = "gc", {"rules": rules.describe()}
            try:
                result = client.gc(name, rules=rules, plan_only=False)
                gone = [d.version for d in result.deleted]
                detail["skipped"] = {s.version: s.reason for s in result.skipped}
            except MdlError as exc:
                err = exc
        after = set(client.stored_versions(name))
        tombstones = client.registry.lifecycle(name).tombstones
        violation = pointer_violation(client, name)
        if still := sorted(v for v in gone if v in after or v in tombstones):
            violation = f"{op} deleted {still} but they are still listed or tombstoned"
        log(op=op, **detail, deleted=gone, result=outcome(err), violation=violation)


def pull(client: Client, name: str, rng: random.Random, deadline: float, work: Path, log: Log) -> None:
    pulls = work / "pulls"
    pulls.mkdir()
    i = 0
    while time.monotonic() < deadline:
        i += 1
        dest = pulls / f"copy-{i}"
        version: str | None = None
        if rng.random() < 0.5:
            listed = client.stored_versions(name)
            version = rng.choice(listed) if listed else None
        err: MdlError | None = None
        violation = None
        try:
            got = client.pull(name, version, dest=dest, jobs=2)
            violation = copy_violation(dest, name, got.version)
            shutil.rmtree(dest)
        except MdlError as exc:
            err = exc
            if dest.exists():
                violation = f"a failed pull ({exc.message}) left {dest.name}"
        if left := debris(pulls):
            violation = f"pull left temporary directories {left}"
        log(op="pull", version=version or "latest", result=outcome(err), violation=violation)


ROLES: dict[str, Callable[[Client, str, random.Random, float, Path, Log], None]] = {
    "promote": promote,
    "delete": delete,
    "pull": pull,
}


def victim(name: str, op: str, versions: list[str]) -> None:
    """An ``rm`` of ``versions`` (op ``rm``) or a ``gc`` keeping the newest 2 (op ``gc``) for the SIGKILL
    test: connected first, it prints ``ready``, then runs the operation and prints ``done SECONDS``.
    Timed from ``ready``, a kill lands inside the deletion, not in the interpreter's start-up."""
    with Client.from_config() as client:
        client.gc(name, rules=Rules(keep_last=1000), plan_only=True)  # imports done, connections open
        print("ready", flush=True)
        started = time.monotonic()
        if op == "rm":
            client.rm(name, versions, force=True)
        else:
            client.gc(name, rules=Rules(keep_last=2, grace=0, rollback_window=0), plan_only=False)
        print(f"done {time.monotonic() - started:.3f}", flush=True)


def main(argv: list[str]) -> None:
    if argv[0] == "victim":
        victim(argv[1], argv[2], argv[3:])
        return
    role, name, seconds, seed, work, out = argv
    deadline = time.monotonic() + float(seconds)
    with Client.from_config() as client, open(out, "a") as f:

        last = time.monotonic()

        def log(**record: Any) -> None:
            nonlocal last
            now = time.monotonic()
            f.write(json.dumps({**record, "seconds": round(now - last, 3)}) + "\n")
            f.flush()
            last = now

        ROLES[role](client, name, random.Random(int(seed)), deadline, Path(work), log)


if __name__ == "__main__":
    main(sys.argv[1:])
