"""The one retry policy: exponential steps, equal jitter, a deadline that is never overshot."""

import time

from hypothesis import given
from hypothesis import strategies as st

from mdl.retry import Backoff, spread


def test_steps_double_from_base_up_to_the_cap():
    b = Backoff(base=0.25, cap=4.0)
    assert [b.step(n) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.step(0) == 0.25 and b.step(10**9) == 4.0  # no overflow for a very long outage


@given(st.floats(0.001, 10), st.floats(0.001, 100), st.integers(0, 10_000))
def test_a_delay_lies_between_half_and_all_of_its_step(base, cap, attempt):
    b = Backoff(base=base, cap=cap)
    d = b.delay(attempt)
    assert b.step(attempt) / 2 <= d <= b.step(attempt)


def test_delays_are_jittered_so_a_fleet_does_not_retry_in_lockstep():
    assert len({Backoff(base=1.0, cap=1.0).delay(1) for _ in range(50)}) > 40


def test_sleep_refuses_to_overshoot_the_deadline():
    b = Backoff(base=10.0, cap=10.0)
    started = time.monotonic()
    assert b.sleep(1, deadline=started + 1.0) is False
    assert time.monotonic() - started < 0.5
    assert Backoff(base=0.002, cap=0.002).sleep(1, deadline=time.monotonic() + 5) is True


def test_spread_is_within_its_window_and_zero_without_one():
    assert spread(0) == 0.0 and spread(-1) == 0.0
    assert all(0 <= spread(0.5) < 0.5 for _ in range(100))
