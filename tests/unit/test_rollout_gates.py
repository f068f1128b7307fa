"""Metric gates: the servers' /metrics read, differenced over a step, judged against thresholds."""

from __future__ import annotations

import math

import pytest

from mdl.rollout.gates import Counts, Thresholds, judge, parse_metrics, window

TEXT = """\
# HELP mdl_requests_total Requests answered
# TYPE mdl_requests_total counter
mdl_requests_total{model="lr",version="v1",protocol="v2",code="200"} 90.0
mdl_requests_total{model="lr",version="v2",protocol="v2",code="200"} 8.0
mdl_requests_total{model="lr",version="v2",protocol="tfserving",code="500"} 2.0
mdl_requests_total{model="other",version="v2",protocol="v2",code="500"} 50.0
mdl_request_duration_seconds_bucket{model="lr",version="v2",protocol="v2",le="0.01"} 5.0
mdl_request_duration_seconds_bucket{model="lr",version="v2",protocol="v2",le="0.05"} 9.0
mdl_request_duration_seconds_bucket{model="lr",version="v2",protocol="v2",le="+Inf"} 10.0
"""


def test_parse_counts_requests_errors_and_buckets_of_one_model():
    got = parse_metrics(TEXT, "lr")
    assert (got["v1"].requests, got["v1"].errors) == (90, 0)
    assert (got["v2"].requests, got["v2"].errors) == (10, 2)
    assert got["v2"].buckets == {0.01: 5, 0.05: 9, math.inf: 10}
    assert got["v2"].quantile(0.5) == 0.01 and got["v2"].quantile(0.9) == 0.05 and got["v2"].quantile(0.99) == math.inf


@pytest.mark.parametrize("hostile", [
    "", "garbage", "\x00" * 100, 'mdl_requests_total{model="lr",version="v2",code="500"} NaN',
    'mdl_requests_total{model="lr",version="v2",code="500"} -5', 'mdl_requests_total{model="lr"} 1',
    'mdl_requests_total{model="lr",version="v2",code="500"} 1e400', "mdl_requests_total{" + "a" * 100000,
    'mdl_request_duration_seconds_bucket{model="lr",version="v2",le="x"} 1',
])
def test_what_is_not_the_format_reads_as_no_data(hostile):
    got = parse_metrics(hostile, "lr")
    assert all(c.requests in (0, math.inf) for c in got.values())  # 1e400 parses as inf: a counter, if absurd
    assert judge(got.get("v2", Counts()), Thresholds(max_error_rate=0.01))[0] in ("no-data", "fail", "pass")


def test_a_window_is_the_difference_summed_over_servers_and_a_restart_counts_from_zero():
    before = {"a": {"v2": Counts(10, 1)}, "b": {"v2": Counts(100, 0)}}
    after = {"a": {"v2": Counts(30, 2)}, "b": {"v2": Counts(5, 5)}, "c": {"v2": Counts(7, 0)}}  # b restarted
    w = window(before, after, "v2")
    assert (w.requests, w.errors) == (20 + 5 + 7, 1 + 5 + 0)


def test_judge_thresholds_and_no_data():
    t = Thresholds(max_error_rate=0.05, max_p99=0.05, min_requests=10)
    assert judge(Counts(9, 0), t)[0] == "no-data"
    ok = Counts(100, 1, {0.01: 90, 0.05: 100, math.inf: 100})
    assert judge(ok, t)[0] == "pass"
    verdict, why = judge(Counts(100, 6, {0.05: 100, math.inf: 100}), t)
    assert verdict == "fail" and why.startswith("error rate 6.00% > 5%")
    verdict, why = judge(Counts(100, 0, {0.05: 50, 0.1: 100, math.inf: 100}), t)
    assert verdict == "fail" and why.startswith("p99 100ms > 50ms")
    assert judge(Counts(0, 0), Thresholds())[0] == "pass"  # no thresholds: nothing to judge
    assert Thresholds.from_doc({"max_error_rate": "1%", "on_no_data": "explode", "min_requests": True}) == Thresholds()
