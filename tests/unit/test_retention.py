import time
from datetime import datetime, timezone

import pytest

from mdl.config import load
from mdl.registry import HistoryEntry
from mdl.retention import (
    DAY,
    Decision,
    Rules,
    VersionFacts,
    created_at,
    duration,
    plan,
    rm_refusals,
    rollback_windows,
)

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0


def iso(ago: float) -> str:
    """The manifest's created field of a version made ``ago`` seconds before NOW."""
    return datetime.fromtimestamp(NOW - ago, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def v(version, ago=10 * DAY, size=100, **kw):
    return VersionFacts(version, iso(ago), size, **kw)


def days_old(*ages_in_days):
    """Versions v0 (oldest) .. vN, one per age, a day apart by default."""
    return [v(f"v{i}", ago=a * DAY) for i, a in enumerate(ages_in_days)]


def summary(p):
    return [(d.version, d.delete, d.reasons) for d in p.decisions]


def test_keep_last_keeps_exactly_the_newest_n():
    facts = days_old(5, 4, 3, 2)
    p = plan("m", facts, Rules(keep_last=2), NOW)
    assert summary(p) == [
        ("v3", False, ("among the newest 2",)),
        ("v2", False, ("among the newest 2",)),
        ("v1", True, ("beyond the newest 2",)),
        ("v0", True, ("beyond the newest 2",)),
    ]
    assert [d.version for d in p.delete] == ["v1", "v0"] and [d.version for d in p.keep] == ["v3", "v2"]
    assert p.bytes_freed == 200


def test_keep_last_with_exactly_n_versions_deletes_nothing():
    p = plan("m", days_old(3, 2, 1), Rules(keep_last=3), NOW)
    assert not p.delete and len(p.keep) == 3 and p.bytes_freed == 0


def test_keep_days_boundary_exactly_d_days_is_deleted():
    facts = [v("a", ago=30 * DAY), v("b", ago=30 * DAY - 1), v("c", ago=30 * DAY + 1)]
    p = plan("m", facts, Rules(keep_days=30), NOW)
    assert summary(p) == [
        ("b", False, ("younger than 30 days",)),
        ("a", True, ("older than 30 days",)),
        ("c", True, ("older than 30 days",)),
    ]


def test_fractional_and_singular_days_read_well():
    p = plan("m", [v("a", ago=DAY / 4), v("b", ago=DAY)], Rules(keep_days=0.5), NOW)
    assert summary(p) == [("a", False, ("younger than 0.5 days",)), ("b", True, ("older than 0.5 days",))]
    p = plan("m", [v("a", ago=2 * DAY)], Rules(keep_days=1), NOW)
    assert summary(p) == [("a", True, ("older than 1 day",))]


def test_count_and_age_rules_keep_the_union_and_delete_only_what_both_condemn():
    facts = days_old(40, 35, 20, 10, 1)
    p = plan("m", facts, Rules(keep_last=2, keep_days=30), NOW)
    assert summary(p) == [
        ("v4", False, ("among the newest 2", "younger than 30 days")),
        ("v3", False, ("among the newest 2", "younger than 30 days")),
        ("v2", False, ("younger than 30 days",)),
        ("v1", True, ("beyond the newest 2", "older than 30 days")),
        ("v0", True, ("beyond the newest 2", "older than 30 days")),
    ]


def test_without_count_or_age_rule_nothing_is_deleted():
    facts = [v("old", ago=1000 * DAY), v("fresh", ago=60, aliases=("latest",))]
    p = plan("m", facts, Rules(), NOW)
    assert summary(p) == [
        ("fresh", False, ("aliased: latest", "newer than grace (1h)")),
        ("old", False, ("no retention rule",)),
    ]


def test_grace_edge():
    facts = [v("inside", ago=HOUR - 1), v("edge", ago=HOUR), v("outside", ago=HOUR + 1)]
    p = plan("m", facts, Rules(keep_last=1, grace=HOUR), NOW)
    assert summary(p) == [
        ("inside", False, ("newer than grace (1h)", "among the newest 1")),
        ("edge", True, ("beyond the newest 1",)),
        ("outside", True, ("beyond the newest 1",)),
    ]
    p = plan("m", facts, Rules(keep_last=1, grace=0), NOW)
    assert [d.version for d in p.delete] == ["edge", "outside"]


def test_every_protection_is_named_and_wins_over_the_rules():
    facts = [
        v("a", ago=90 * DAY, aliases=("latest", "prod")),
        v("p", ago=91 * DAY, pinned=True),
        v("w", ago=92 * DAY, window=("prod",)),
        v("u", ago=93 * DAY, in_use=("host-a-1", "host-b-1")),
        v("x", ago=94 * DAY),
    ]
    p = plan("m", facts, Rules(keep_last=1, keep_days=7), NOW)
    assert summary(p) == [
        ("a", False, ("aliased: latest, prod", "among the newest 1")),
        ("p", False, ("pinned",)),
        ("w", False, ("rollback window of prod",)),
        ("u", False, ("in use by host-a-1, host-b-1",)),
        ("x", True, ("beyond the newest 1", "older than 7 days")),
    ]
    everything = v("all", ago=60, aliases=("latest",), pinned=True, window=("prod",), in_use=("r1",))
    (d,) = plan("m", [everything], Rules(keep_last=5, keep_days=1), NOW).decisions
    assert d.reasons == (
        "aliased: latest",
        "pinned",
        "rollback window of prod",
        "in use by r1",
        "newer than grace (1h)",
        "among the newest 5",
        "younger than 1 day",
    )


@pytest.mark.parametrize("created", [
    "", "yesterday", "2026-13-01T00:00:00Z", "2026-05-01T00:00:00",  # no offset: any zone
    "9" * 10_000, "2026-05-01T00:00:00Z\n", "\x00", "2026-05-01T00:00:00+25:00", "2026-02-30T00:00:00Z", "NaN",
])
def test_unreadable_creation_time_is_kept_and_not_counted(created):
    facts = [VersionFacts("zzz-hostile", created, 7), *days_old(3, 2, 1)]
    p = plan("m", facts, Rules(keep_last=2, keep_days=0, grace=0), NOW)
    assert summary(p) == [
        ("zzz-hostile", False, ("creation time unreadable",)),
        ("v2", False, ("among the newest 2",)),
        ("v1", False, ("among the newest 2",)),
        ("v0", True, ("beyond the newest 2", "older than 0 days")),
    ]


def test_a_created_field_that_is_not_even_a_string_is_unreadable():
    assert created_at(None) is None and created_at(12) is None and created_at(["2026-01-01T00:00:00Z"]) is None
    facts = [VersionFacts("a", 1.5e9, 1), VersionFacts("b", {"x": 1}, 1)]  # type: ignore[arg-type]
    assert all(d.reasons == ("creation time unreadable",) for d in plan("m", facts, Rules(keep_last=1), NOW).decisions)


def test_creation_time_formats_that_are_readable():
    assert created_at("2026-06-01T00:00:00Z") == NOW
    assert created_at("2026-06-01T00:00:00.123456Z") == NOW + 0.123456
    assert created_at("2026-06-01T02:00:00+02:00") == NOW
    assert created_at(iso(0)) == NOW
    assert created_at("0001-01-01T00:00:00+05:00") == -62135614800.0  # ancient but readable: old
    assert created_at("9999-12-31T23:59:59-05:00") == 253402318799.0


def test_a_version_created_in_the_future_is_kept_whatever_the_grace():
    p = plan("m", [v("future", ago=-DAY), v("old", ago=DAY)], Rules(keep_last=1, grace=0), NOW)
    assert summary(p) == [
        ("future", False, ("creation time in the future", "among the newest 1")),
        ("old", True, ("beyond the newest 1",)),
    ]


def test_ties_in_creation_time_rank_by_version_id_descending():
    facts = [v("b", ago=DAY), v("a", ago=DAY), v("c", ago=DAY)]
    p = plan("m", facts, Rules(keep_last=2), NOW)
    assert summary(p) == [
        ("c", False, ("among the newest 2",)),
        ("b", False, ("among the newest 2",)),
        ("a", True, ("beyond the newest 2",)),
    ]


def test_deleting_versions_are_finished_and_do_not_take_a_place_among_the_newest():
    facts = [v("new", ago=DAY, deleting=True, size=5), v("mid", ago=2 * DAY), v("old", ago=3 * DAY, size=9),
             v("pinned-but-tombstoned", ago=4 * DAY, deleting=True, pinned=True, size=1)]
    p = plan("m", facts, Rules(keep_last=1), NOW)
    assert summary(p) == [
        ("new", True, ("deletion in progress",)),
        ("mid", False, ("among the newest 1",)),
        ("old", True, ("beyond the newest 1",)),
        ("pinned-but-tombstoned", True, ("deletion in progress",)),
    ]
    assert p.bytes_freed == 15
    # without any rule gc still finishes deletions a killed rm left
    assert [d.version for d in plan("m", facts, Rules(), NOW).delete] == ["new", "pinned-but-tombstoned"]


def test_a_tombstoned_version_an_alias_names_is_never_deleted():
    p = plan("m", [v("x", ago=99 * DAY, deleting=True, aliases=("prod",))], Rules(keep_last=1), NOW)
    assert summary(p) == [("x", False, ("aliased: prod", "deletion in progress"))]


def test_empty_model():
    p = plan("m", [], Rules(keep_last=1, keep_days=1), NOW)
    assert p.decisions == [] and p.delete == [] and p.keep == [] and p.bytes_freed == 0
    assert p.to_dict() == {
        "name": "m",
        "rules": {"keep_last": 1, "keep_days": 1, "grace": 3600.0, "rollback_window": 3},
        "delete": [],
        "keep": [],
        "bytes_freed": 0,
    }


def test_to_dict_is_the_gc_json_shape():
    facts = [v("new", ago=DAY, size=10, aliases=("latest",)), v("old", ago=2 * DAY, size=300)]
    p = plan("fraud", facts, Rules(keep_last=1, grace=60), NOW)
    assert p.to_dict() == {
        "name": "fraud",
        "rules": {"keep_last": 1, "keep_days": None, "grace": 60, "rollback_window": 3},
        "delete": [{"version": "old", "bytes": 300, "reasons": ["beyond the newest 1"]}],
        "keep": [{"version": "new", "reasons": ["aliased: latest", "among the newest 1"]}],
        "bytes_freed": 300,
    }
    assert p.delete == [Decision("old", True, ("beyond the newest 1",), 300)]


def test_plan_of_1000_versions_is_fast_and_right():
    facts = [v(f"{i:05d}", ago=(1000 - i) * HOUR, size=i, aliases=("latest",) if i == 3 else ()) for i in range(1000)]
    started = time.perf_counter()
    p = plan("big", facts, Rules(keep_last=10, keep_days=7), NOW)
    elapsed = time.perf_counter() - started
    # 7 days = 168 hours: versions 833..999 are younger; 990..999 are also the newest 10; 3 is aliased
    assert [d.version for d in p.keep] == [f"{i:05d}" for i in range(999, 832, -1)] + ["00003"]
    assert len(p.delete) == 1000 - 167 - 1 and p.decisions[0].version == "00999"
    assert p.bytes_freed == sum(range(833)) - 3
    assert elapsed < 0.1, elapsed


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (59, "59s"), (60, "1m"), (3600, "1h"), (5400, "1h30m"), (86400, "1d"), (90061, "1d1h1m1s"),
    (1.5, "1.5s"), (3600.0, "1h"),
])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_describe():
    assert Rules(keep_last=5, keep_days=30, grace=3600, rollback_window=3).describe() == (
        "keep_last=5, keep_days=30, grace=1h, rollback_window=3"
    )
    assert Rules(keep_days=0.5, grace=0, rollback_window=0).describe() == "keep_days=0.5, grace=0s, rollback_window=0"
    assert Rules().describe() == "grace=1h, rollback_window=3" and not Rules().has_rule


def test_for_model_applies_the_models_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "retention:\n  keep_last: 5\n  keep_days: 30\n  grace: 600\n  rollback_window: 2\n  models:\n"
        "    fraud:\n      keep_last: 50\n    scratch:\n      keep_days: null\n      grace: 0\n    plain:\n"
    )
    cfg = load(env={}, config_path=p)
    assert Rules.for_model(cfg, "other") == Rules(5, 30.0, 600.0, 2)
    assert Rules.for_model(cfg, "plain") == Rules(5, 30.0, 600.0, 2)
    assert Rules.for_model(cfg, "fraud") == Rules(50, 30.0, 600.0, 2)
    assert Rules.for_model(cfg, "scratch") == Rules(5, None, 0.0, 2)
    assert Rules.for_model(load(env={}, config_path=None), "any") == Rules(None, None, 3600.0, 3)


def h(alias, frm, to, action="promote"):
    return HistoryEntry(0, alias, frm, to, "ci", "2026-01-01T00:00:00Z", action)


def test_rollback_windows_from_a_realistic_history():
    history = [
        h("latest", None, "v1"),
        h("latest", "v1", "v2"),
        h("prod", None, "v1"),
        h("latest", "v2", "v3"),
        h("latest", "v3", "v4"),
        h("prod", "v1", "v3"),
        h("latest", "v4", "v5"),
        h("latest", "v5", "v4", "rollback"),  # latest back on v4: v5 is in its window, v4 is not
        h("staging", None, "v2"),
        h("staging", "v2", None, "remove"),  # removed: its last value stays a rollback target
    ]
    aliases = {"latest": "v4", "prod": "v3"}
    assert rollback_windows(history, aliases, 3) == {
        "v5": ("latest",),
        "v3": ("latest",),
        "v2": ("latest", "staging"),
        "v1": ("prod",),
    }
    assert rollback_windows(history, aliases, 1) == {"v5": ("latest",), "v1": ("prod",), "v2": ("staging",)}
    assert rollback_windows(history, aliases, 0) == {}
    assert rollback_windows([], aliases, 3) == {}


def test_rollback_windows_ignore_entries_without_an_alias_and_repeat_visits():
    class Lifecycle:  # a pin/unpin/delete entry: no alias
        alias = None
        from_version = "v9"
        to_version = "v9"

    history = [h("a", None, "v1"), h("a", "v1", "v2"), h("a", "v2", "v1"), h("a", "v1", "v2"), Lifecycle()]
    assert rollback_windows(history, {"a": "v2"}, 3) == {"v1": ("a",)}
    assert rollback_windows(iter(history), {"a": "v2"}, 3) == {"v1": ("a",)}


def test_rm_refusals():
    free = v("x")
    assert rm_refusals(free, force=False) == [] and rm_refusals(free, force=True) == []
    busy = v("x", window=("prod",), in_use=("host-a-1",))
    assert rm_refusals(busy, force=False) == ["in use by host-a-1", "rollback window of prod"]
    assert rm_refusals(busy, force=True) == []
    hard = v("x", aliases=("latest",), pinned=True, window=("prod",), in_use=("r1", "r2"))
    assert rm_refusals(hard, force=False) == [
        "aliased: latest", "pinned", "in use by r1, r2", "rollback window of prod"
    ]
    assert rm_refusals(hard, force=True) == ["aliased: latest", "pinned"]
