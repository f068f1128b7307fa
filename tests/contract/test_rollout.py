"""Staged rollouts on every backend, with in-process watchers as the fleet: steps, the share within
one replica through joins and leaves, stickiness, gates and abort, the driver dying and resume."""

from __future__ import annotations

import functools
import threading

import pytest

from mdl.errors import Conflict, RolloutFailed
from mdl.rollout.assign import target
from mdl.rollout.driver import RolloutDriver, RolloutOptions
from mdl.watch import Watcher

from .. import helpers
from ..helpers import current, make_model

until = functools.partial(helpers.until, timeout=30.0, interval=0.02)


@pytest.fixture
def lr(client, tmp_path):
    for i in (1, 2):
        client.push("lr", make_model(tmp_path / f"s{i}", f"model {i}".encode()), version=f"v{i}")
    client.promote("lr", "v1")
    return client


class Fleet:
    """Watchers of lr:latest, each with a client of its own."""

    def __init__(self, make_client, root) -> None:
        self.make_client, self.root = make_client, root
        self.watchers: dict[str, Watcher] = {}

    def start(self, n: int) -> list[Watcher]:
        new = []
        for _ in range(n):
            w = Watcher(self.make_client(), "lr", self.root / f"w{len(self.watchers)}")
            w.start()
            self.watchers[w.replica_id] = w
            new.append(w)
        return new

    def stop(self, w: Watcher) -> None:
        w.stop()
        del self.watchers[w.replica_id]

    def versions(self) -> dict[str, str | None]:
        return {rid: current(w.dir.root) for rid, w in self.watchers.items()}

    def all_on(self, version: str) -> bool:
        return all(v == version for v in self.versions().values())


@pytest.fixture
def fleet(make_client, tmp_path):
    f = Fleet(make_client, tmp_path / "fleet")
    yield f
    for w in list(f.watchers.values()):
        w.stop()


def registered(client, n: int) -> bool:
    return len(client.replicas("lr")) == n


def drive(driver: RolloutDriver, stop: threading.Event, out: list) -> threading.Thread:
    def run() -> None:
        try:
            out.append(driver.run(stop))
        except Exception as exc:  # the test looks at it
            out.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_steps_move_the_share_then_the_alias(lr, fleet, make_client):
    fleet.start(5)
    until(lambda: registered(lr, 5) and fleet.all_on("v1"))
    events: list[dict] = []
    driver = RolloutDriver(make_client(), "lr", emit=events.append)
    driver.start("v2", "latest", RolloutOptions(steps=(20, 60, 100), interval=0))
    final = driver.run()
    assert final.state == "succeeded" and lr.pointer("lr").aliases["latest"] == "v2"
    ready = [(e["weight"], e["on_candidate"]) for e in events if e["event"] == "step-ready"]
    assert ready == [(20, 1), (60, 3), (100, 5)]
    until(lambda: fleet.all_on("v2"))
    actions = [h.action for h in lr.history("lr")]
    assert actions[-1] == "rollout-succeed" and "promote" in actions and actions.count("rollout-step") == 2
    last_promote = len(actions) - 1 - actions[::-1].index("promote")
    assert actions.index("rollout-start") < actions.index("rollout-step") < last_promote


def test_a_failing_gate_aborts_and_returns_everyone_to_stable(lr, fleet, make_client):
    fleet.start(4)
    until(lambda: registered(lr, 4))
    driver = RolloutDriver(make_client(), "lr")
    driver.start("v2", "latest", RolloutOptions(steps=(50, 100), interval=0, gate_cmd="echo too slow >&2; exit 1"))
    with pytest.raises(RolloutFailed, match="aborted: step 1 \\(50%\\): gate 'echo too slow >&2; exit 1' exited 1"):
        driver.run()
    state = driver.current()
    assert (state.state, state.assigned) == ("aborted", ())
    until(lambda: fleet.all_on("v1"))
    assert lr.pointer("lr").aliases["latest"] == "v1"


def test_joins_and_leaves_keep_the_share_within_one_and_assignments_stick(lr, fleet, make_client):
    fleet.start(4)
    until(lambda: registered(lr, 4))
    driver = RolloutDriver(make_client(), "lr")
    driver.start("v2", "latest", RolloutOptions(steps=(50, 100), interval=3600))
    stop, out = threading.Event(), []
    t = drive(driver, stop, out)
    try:
        def share_ok() -> bool:
            state = driver.current()
            live = {r.id for r in lr.replicas("lr")}
            return set(state.assigned) <= live and len(state.assigned) == target(50, len(live))

        until(share_ok)
        first = set(driver.current().assigned)
        fleet.start(2)  # joins
        until(lambda: registered(lr, 6) and share_ok())
        assert first <= set(driver.current().assigned)  # nobody already on the candidate moved
        leaving = next(w for rid, w in fleet.watchers.items() if rid not in first)
        fleet.stop(leaving)  # a leave on the stable side
        until(lambda: registered(lr, 5) and share_ok())
        assert first <= set(driver.current().assigned)
        until(lambda: sorted(str(v) for v in fleet.versions().values()) in (["v1", "v1", "v2", "v2", "v2"],
                                                                            ["v1", "v1", "v1", "v2", "v2"]))
        for rid, w in fleet.watchers.items():  # each on the side its assignment says
            want = "v2" if rid in driver.current().assigned else "v1"
            until(lambda w=w, want=want: current(w.dir.root) == want)
    finally:
        stop.set()
        t.join(20)
    assert out and out[0].state == "running"  # stopped, not ended: it stays where it is


def test_the_driver_dies_and_resume_continues_from_another_machine(lr, fleet, make_client):
    fleet.start(3)
    until(lambda: registered(lr, 3))
    first = RolloutDriver(make_client(), "lr")
    first.start("v2", "latest", RolloutOptions(steps=(34, 100), interval=1))
    stop, out = threading.Event(), []
    t = drive(first, stop, out)
    until(lambda: first.current().step_started != "")  # step 1 ready: one replica on v2
    stop.set()  # the driver dies here
    t.join(20)
    held = first.current()
    assert (held.state, held.step, len(held.assigned)) == ("running", 0, 1)
    until(lambda: sorted(str(v) for v in fleet.versions().values()) == ["v1", "v1", "v2"])
    second = RolloutDriver(make_client(), "lr")
    assert second.resume().state == "running"
    assert second.run().state == "succeeded"
    until(lambda: fleet.all_on("v2"))


def test_pause_abort_promote_by_hand_and_one_rollout_at_a_time(lr, fleet, make_client):
    fleet.start(2)
    until(lambda: registered(lr, 2))
    driver = RolloutDriver(make_client(), "lr")
    driver.start("v2", "latest", RolloutOptions(steps=(50, 100), interval=3600))
    with pytest.raises(Conflict, match="has a rollout running"):
        driver.start("v2", "latest", RolloutOptions())
    assert driver.pause("looking at the dashboards").state == "paused"
    assert driver.run().state == "paused"  # a paused rollout is not driven
    assert driver.resume().state == "running"
    assert driver.promote().state == "succeeded"
    assert lr.pointer("lr").aliases["latest"] == "v2"
    until(lambda: fleet.all_on("v2"))
    with pytest.raises(Conflict, match="no rollout running"):
        driver.abort("too late")
    driver.start("v1", "latest", RolloutOptions(steps=(50, 100), interval=3600))  # a finished one is replaced
    assert driver.abort("changed my mind").assigned == ()
    assert lr.pointer("lr").aliases["latest"] == "v2"


def test_a_replica_that_joins_mid_rollout_starts_on_the_side_it_is_placed(lr, fleet, make_client):
    fleet.start(3)
    until(lambda: registered(lr, 3) and fleet.all_on("v1"))
    driver = RolloutDriver(make_client(), "lr")
    driver.start("v2", "latest", RolloutOptions(steps=(75, 100), interval=3600))  # 2 of 3, then 3 of 4
    stop, out = threading.Event(), []
    t = drive(driver, stop, out)
    try:
        until(lambda: driver.current().step_started != "")
        events: list[dict] = []
        joiner = Watcher(make_client(), "lr", fleet.root / "joiner", emit=events.append)
        joiner.start()
        fleet.watchers[joiner.replica_id] = joiner
        until(lambda: registered(lr, 4) and len(driver.current().assigned) == target(75, 4))
        until(lambda: [e["version"] for e in events if e["event"] == "swapped"] != [])
        swapped = [e["version"] for e in events if e["event"] == "swapped"]
        want = "v2" if joiner.replica_id in driver.current().assigned else "v1"
        assert swapped == [want]  # straight onto its side: no stable first, then a switch
        assert joiner.replica_id in driver.current().assigned  # 3 -> 4 followers opened a seat: the newcomer's
    finally:
        stop.set()
        t.join(20)


def test_gc_and_rm_keep_the_versions_an_active_rollout_names(lr, fleet, make_client, tmp_path):
    from mdl.retention import Rules

    lr.push("lr", make_model(tmp_path / "s3", b"model 3"), version="v3")
    driver = RolloutDriver(make_client(), "lr")
    driver.start("v3", "latest", RolloutOptions(steps=(50, 100), interval=3600))
    with pytest.raises(Conflict, match="rollout of latest"):
        lr.rm("lr", ["v3"], force=True)
    rules = Rules(keep_last=0, grace=0, rollback_window=0)
    plan = lr.gc("lr", rules=rules).plan
    kept = {d.version: d.reasons for d in plan.decisions if not d.delete}
    assert "v3" in kept and any("rollout of latest" in r for r in kept["v3"])
    driver.abort("done looking")
    assert "v3" in {d.version for d in lr.gc("lr", rules=rules).plan.decisions if d.delete}
