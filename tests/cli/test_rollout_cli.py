"""``mdl rollout``: exact output of status, and one clear line for every mistake."""

from __future__ import annotations

import json

import pytest

from mdl.registry.base import NO_REVISION

from ..helpers import make_model

DOC = {
    "id": "r1", "alias": "latest", "stable": "v1", "candidate": "v2", "steps": [10, 50, 100], "step": 1,
    "state": "running", "assigned": ["a", "b"], "reason": None, "options": {}, "by": "ci", "started": "s",
    "updated": "u", "step_started": "", "followers": 4, "driven_at": "",
}


@pytest.fixture
def lr(cli, client, tmp_path):
    for v in ("v1", "v2"):
        assert cli("push", "lr", str(make_model(tmp_path / v, v.encode())), "--version", v).exit_code == 0
    assert cli("promote", "lr", "v1").exit_code == 0
    return client


def test_status_in_words_and_in_json(cli, lr):
    lr.set_rollout("lr", DOC, NO_REVISION, None)
    handles = [lr.register_replica("lr", rid, {"kind": "watcher", "alias": "latest", "loaded": v, "state": "ready"})
               for rid, v in (("a", "v2"), ("b", "v2"), ("c", "v1"), ("d", "v1"))]
    try:
        r = cli("rollout", "status", "lr")
        assert (r.exit_code, r.stderr) == (0, "")
        assert r.stdout == (
            "rollout r1 of lr:latest: v1 -> v2\n"
            "state:    running\n"
            "step:     2 of 3 (50%; steps 10,50,100)\n"
            "replicas: 2 of 4 on the candidate; loaded: v2: 2, v1: 2\n"
        )
        doc = json.loads(cli("rollout", "status", "lr", "-o", "json").stdout)
        assert {k: doc[k] for k in ("state", "step", "weight", "followers", "counts", "assigned")} == {
            "state": "running", "step": 1, "weight": 50, "followers": 4, "counts": {"v2": 2, "v1": 2},
            "assigned": ["a", "b"]}
    finally:
        for h in handles:
            h.close()


def test_pause_resume_and_abort_by_hand(cli, lr):
    lr.set_rollout("lr", DOC, NO_REVISION, None)
    assert cli("rollout", "pause", "lr", "--reason", "dashboards").exit_code == 0
    assert json.loads(cli("rollout", "status", "lr", "-o", "json").stdout)["reason"] == "dashboards"
    assert cli("rollout", "resume", "lr", "--detach").exit_code == 0
    r = cli("rollout", "abort", "lr", "--reason", "p99 regression")
    assert r.exit_code == 0
    doc = json.loads(cli("rollout", "status", "lr", "-o", "json").stdout)
    assert (doc["state"], doc["assigned"], doc["reason"]) == ("aborted", [], "p99 regression")
    actions = [h["action"] for h in json.loads(cli("history", "lr", "-o", "json").stdout)["history"]]
    assert actions[-3:] == ["rollout-pause", "rollout-resume", "rollout-abort"]


MISTAKES = [
    (["rollout", "start", "lr", "v2", "--steps", "10,5,100"], 2, "--steps 10,5,100: 1 to 20 percentages"),
    (["rollout", "start", "lr", "v2", "--steps", "a,b"], 2, "--steps 'a,b': percentages separated by commas"),
    (["rollout", "start", "lr", "v2", "--interval", "soon"], 2, "--interval 'soon' is not a duration"),
    (["rollout", "start", "lr", "v2", "--max-error-rate", "lots"], 2, "--max-error-rate 'lots' is not a percentage"),
    (["rollout", "start", "lr", "v2", "--on-no-data", "panic"], 2, "--on-no-data 'panic': use pause, pass, fail"),
    (["rollout", "start", "lr", "v9"], 3, "v9"),
    (["rollout", "start", "lr", "v2", "--alias", "canary"], 3, "lr:canary is not set"),
    (["rollout", "start", "lr", "v1"], 4, "lr:latest already points at v1"),
    (["rollout", "status", "lr"], 3, "lr has no rollout"),
    (["rollout", "abort", "lr"], 4, "lr has no rollout running or paused"),
    (["rollout", "resume", "lr"], 4, "lr has no rollout to resume"),
]


@pytest.mark.parametrize("argv,code,needle", MISTAKES, ids=[" ".join(m[0][1:]) for m in MISTAKES])
def test_mistakes_get_one_clear_line(cli, lr, argv, code, needle):
    r = cli(*argv)
    lines = r.stderr.splitlines()
    assert r.exit_code == code, r.stderr
    assert r.stdout == "" and lines[0].startswith("error: ") and needle in lines[0], lines
    assert len(lines) <= 2 and "Traceback" not in r.stderr
    assert lr.rollout("lr").doc is None


def test_a_second_rollout_while_one_runs_is_a_conflict(cli, lr):
    lr.set_rollout("lr", DOC, NO_REVISION, None)
    r = cli("rollout", "start", "lr", "v2", "--detach")
    assert r.exit_code == 4
    assert r.stderr.splitlines()[0] == "error: lr has a rollout running (latest: v1 -> v2, step 2 of 3)"


def test_status_watch_follows_until_the_end_and_exits_1_if_aborted(cli, lr, make_client):
    import threading

    from mdl.rollout.driver import RolloutDriver

    lr.set_rollout("lr", DOC, NO_REVISION, None)
    other = make_client()
    timer = threading.Timer(1.0, lambda: RolloutDriver(other, "lr").abort("p99 regression"))
    timer.start()
    try:
        r = cli("rollout", "status", "lr", "-w")
    finally:
        timer.join()
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0] == "rollout r1 of lr:latest: v1 -> v2"
    assert r.stdout.splitlines()[-1] == (
        "aborted: step 2 of 3 (50%), 0 of 0 on v2; loaded: none (p99 regression)")
    assert r.stderr.splitlines()[0] == "error: the rollout of lr was aborted: p99 regression"


def test_a_reason_from_the_registry_reaches_the_terminal_only_as_text(cli, lr):
    from ..contract.backdoor import write_rollout  # a writer behind mdl's back

    write_rollout(lr.registry, "lr", json.dumps({**DOC, "state": "paused", "reason": "\x1b[2J\x1b[31mgone\rX"}))
    r = cli("rollout", "status", "lr")
    assert r.exit_code == 0, r.stderr
    assert "\x1b" not in r.stdout and "\r" not in r.stdout
    assert "state:    paused (\\x1b[2J\\x1b[31mgone\\x0dX)" in r.stdout.splitlines()
