"""Assignment of a rollout's replicas: exact at every weight, sticky while others come and go."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mdl.rollout.assign import assign, target


def test_target_is_the_nearest_whole_number():
    assert [target(10, n) for n in (0, 1, 4, 5, 9, 10, 15, 1000)] == [0, 0, 0, 1, 1, 1, 2, 100]
    assert [target(50, n) for n in (1, 2, 3)] == [1, 1, 2]
    assert target(100, 7) == 7 and target(0, 7) == 0


def test_a_step_up_keeps_everyone_already_on_the_candidate():
    live = [f"r{i:03d}" for i in range(100)]
    ten = assign("ro1", [], live, 10)
    fifty = assign("ro1", ten, live, 50)
    assert len(ten) == 10 and len(fifty) == 50 and set(ten) <= set(fifty)
    assert assign("ro1", fifty, live, 100) == sorted(live)


def test_the_same_on_every_machine_and_spread_by_the_rollout_id():
    live = [f"host{i % 5}-{i}" for i in range(50)]
    assert assign("ro1", [], live, 20) == assign("ro1", [], list(reversed(live)), 20)
    assert assign("ro1", [], live, 20) != assign("ro2", [], live, 20)


events = st.lists(st.tuples(st.sampled_from(["join", "leave"]), st.integers(0, 10_000)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(weight=st.sampled_from([1, 10, 25, 33, 50, 90, 100]), start=st.integers(0, 40), churn=events)
def test_within_one_of_the_share_and_sticky_through_joins_and_leaves(weight, start, churn):
    live = [f"r{i}" for i in range(start)]
    assigned = assign("ro", [], live, weight)
    for i, (kind, n) in enumerate(churn):
        if kind == "join":
            live.append(f"j{n}-{i}")
        elif live:
            live.pop(n % len(live))
        before = set(assigned)
        assigned = assign("ro", assigned, live, weight)
        # exact after each change (the driver's answer): within one of w% of the live followers
        assert abs(len(assigned) - weight * len(live) / 100) <= 1
        assert set(assigned) <= set(live)
        # sticky: the fewest moves; nobody who stays alive leaves the candidate unless the share shrank
        survivors = before & set(live)
        moved_off = survivors - set(assigned)
        assert len(moved_off) == max(0, len(survivors) - len(assigned))
