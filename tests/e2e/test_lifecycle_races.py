"""Deletes racing promotes and pulls, and ``mdl rm``/``mdl gc`` killed at random moments: no pointer ever
names a missing version, no pull leaves a partial copy, no version is ever half-deleted (docs/safety.md,
"How a version is deleted")."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mdl import lifecycle
from mdl.client import Client

from ..helpers import REPO
from .lifecycle_driver import copy_violation, pointer_violation, push_one

NAME = "lr"
RACE_SECONDS = 18
ROLES = {"promote": 3, "delete": 1, "pull": 1}
EXPECTED = {  # the outcomes each operation may have in the race; anything else is a finding
    "promote": {"ok", "NotFound", "Conflict"},  # the version was deleted (or is being deleted); lost 20 races
    "rm": {"ok", "Conflict"},  # aliased or in a rollback window meanwhile; lost 20 races
    "gc": {"ok", "Conflict"},  # lost 20 races finishing an earlier delete
    "push": {"ok"},
    "pull": {"ok", "NotFound"},
}


def assert_versions_whole(client: Client, tmp_path: Path, tag: str) -> None:
    """Every listed version pulls as a complete, verified copy."""
    for v in client.stored_versions(NAME):
        dest = tmp_path / f"verify-{tag}-{v}"
        client.pull(NAME, v, dest=dest, jobs=3)
        assert copy_violation(dest, NAME, v) is None


def assert_clean(client: Client) -> None:
    """Nothing a delete left midway: no tombstone, no hidden directory."""
    assert client.registry.lifecycle(NAME).tombstones == {}
    assert client.storage.list_hidden(NAME) == []


def test_promotes_deletes_and_pulls_racing_keep_every_invariant(client, backend_env, tmp_path):
    work = tmp_path / "setup"
    work.mkdir()
    for i in range(1, 13):
        push_one(client, NAME, f"v{i:04d}", work)
    client.promote(NAME, "v0001")
    env = {**os.environ, **backend_env}
    procs, logs = [], []
    for role, count in ROLES.items():
        for k in range(count):
            work = tmp_path / f"{role}-{k}"
            work.mkdir()
            logs.append(tmp_path / f"{role}-{k}.jsonl")
            args = [role, NAME, str(RACE_SECONDS), str(20261202 + len(logs)), str(work), str(logs[-1])]
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.e2e.lifecycle_driver", *args], env=env,
                                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    errs = [p.communicate(timeout=RACE_SECONDS + 120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), errs
    records = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    assert [r for r in records if r["violation"]] == []
    unexpected = [r for r in records if r["result"] not in EXPECTED[r["op"]]]
    assert unexpected == []
    by_op = {op: [r for r in records if r["op"] == op] for op in EXPECTED}
    counts = {op: len(rs) for op, rs in by_op.items()}
    assert len(records) >= 200 and counts["promote"] >= 80 and counts["rm"] + counts["gc"] >= 10, counts
    assert sum(len(r["deleted"]) for r in by_op["rm"] + by_op["gc"]) >= 10  # the race deleted for real
    assert sum(r["result"] == "ok" for r in by_op["pull"]) >= 10

    assert pointer_violation(client, NAME) is None
    assert_clean(client)
    listed = set(client.stored_versions(NAME))
    history = client.history(NAME)
    deletes = [h.version for h in history if h.action == "delete"]
    assert deletes and not listed & set(deletes)  # every version a delete entry names is gone
    assert_versions_whole(client, tmp_path, "end")


def start_victim(env: dict[str, str], op: str, versions: list[str]) -> subprocess.Popen:
    """An ``rm``/``gc`` process (lifecycle_driver.victim), returned once it is connected and about to delete."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.e2e.lifecycle_driver", "victim", NAME, op, *versions],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n", proc.communicate()
    return proc


def test_sigkill_during_rm_and_gc_never_leaves_a_half_deleted_version(client, run_mdl, backend_env, tmp_path):
    work = tmp_path / "src"
    work.mkdir()
    env = {**os.environ, **backend_env}
    rng = random.Random(20261202)
    made = 0

    def top_up() -> None:
        nonlocal made
        while len(client.stored_versions(NAME)) < 8:
            made += 1
            push_one(client, NAME, f"v{made:04d}", work)

    def victim(op: str) -> subprocess.Popen:
        aliased = set(client.pointer(NAME).aliases.values())
        free = [v for v in client.stored_versions(NAME) if v not in aliased]
        return start_victim(env, op, rng.sample(free, 3) if op == "rm" else [])

    top_up()
    client.promote(NAME, "v0001")
    full = {}
    for op in ("rm", "gc"):  # how long a whole rm and gc take (once connected): the kills land within
        out, err = victim(op).communicate(timeout=60)
        assert out.startswith(b"done "), err
        full[op] = float(out.split()[1])
        top_up()
    midway = trial = 0  # kills that left a delete midway (a tombstone or a hidden directory)
    while trial < 20 or (midway < 3 and trial < 60):  # 20 trials, more if too few landed midway
        trial += 1
        top_up()
        client.promote(NAME, rng.choice(client.stored_versions(NAME)))
        op = "rm" if trial % 2 else "gc"
        proc = victim(op)
        time.sleep(rng.uniform(0, full[op] * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert pointer_violation(client, NAME) is None
        assert_versions_whole(client, tmp_path, str(trial))
        tombstoned = set(client.registry.lifecycle(NAME).tombstones)
        midway += bool(tombstoned or client.storage.list_hidden(NAME))
        if trial % 4 < 2:
            r = run_mdl("gc", NAME, "--yes", "-o", "json")  # no rule: deletes nothing new, finishes the rest
            assert r.returncode == 0, r.stderr
            assert set(json.loads(r.stdout)["finished"]) == tombstoned
        else:
            assert set(lifecycle.finish(client, NAME)) == tombstoned
        assert_clean(client)
        assert not tombstoned & set(client.stored_versions(NAME))
        assert pointer_violation(client, NAME) is None
    assert midway >= 3, f"only {midway} of {trial} kills landed inside a deletion"
