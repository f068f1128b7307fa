"""The replica record and the fleet logic (status, endpoints, promote --wait) over a fake client."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from mdl.errors import InvalidInput, RolloutFailed, Timeout
from mdl.fleet import RECORD_FIELDS, Endpoint, Fleet, ReplicaRecord
from mdl.registry.base import Pointer, Replica, parse_replica_data


def written(**fields: Any) -> dict[str, Any]:
    """A record as the watcher writes it: every field, then its extras."""
    extra = fields.pop("extra", {})
    return ReplicaRecord(**fields, extra=extra).to_dict()


WATCHER = written(kind="watcher", host="h1", pid=101, dir="/srv/lr", alias="latest", desired="v2", loaded="v2",
                  digest="sha256:aa", state="ready", since="2026-01-02T03:04:05.678Z", error=None, address=None)
SERVER = written(kind="server", host="h2", pid=102, dir="/srv/s", alias="latest", desired="v2", loaded="v1",
                 digest="sha256:bb", state="syncing", since="2026-01-02T03:04:05Z", address="http://b:8501",
                 extra={"swap": "availability"})


class FakeClient:
    """What Fleet uses of a Client: the pointer and the raw replica records (``data`` as stored)."""

    def __init__(self, records: dict[str, Any], aliases: dict[str, str] | None = None) -> None:
        self.records, self.aliases, self.reads = records, aliases or {"latest": "v2"}, 0

    def pointer(self, name: str) -> Pointer:
        return Pointer(name, dict(self.aliases), 1)

    def replicas(self, name: str) -> list[Replica]:
        self.reads += 1
        records = self.records(self.reads) if callable(self.records) else self.records
        return [Replica(rid, data) for rid, data in records.items()]


def stored(records: dict[str, Any]) -> dict[str, Any]:
    """Records through a registry's JSON round trip and check (as SQLite and ZooKeeper read them)."""
    parsed = {rid: parse_replica_data(json.dumps(d)) for rid, d in records.items()}
    return {rid: d for rid, d in parsed.items() if d is not None}


# -- ReplicaRecord ---------------------------------------------------------------------------------


def test_a_record_built_in_code_writes_exactly_the_watchers_keys():
    d = ReplicaRecord(kind="server", host="h", pid=7, dir="/d", alias="latest", desired="v1", loaded=None,
                      digest=None, state="syncing", since="t", error=None, address="http://x:1",
                      extra={"swap": "memory"}).to_dict()
    assert list(d) == [*RECORD_FIELDS, "swap"]
    assert d["pid"] == 7 and d["loaded"] is None and d["swap"] == "memory"
    assert "id" not in d and "extra" not in d and "stored_keys" not in d
    assert list(ReplicaRecord().to_dict()) == list(RECORD_FIELDS)  # every key, null when unknown


def test_extra_keys_win_over_fields_as_the_watcher_merged_them():
    assert ReplicaRecord(state="ready", extra={"state": "custom"}).to_dict()["state"] == "custom"


def test_a_record_reads_back_what_was_stored():
    for data in (WATCHER, SERVER, {"state": "ready", "kind": "server", "address": "http://c"}, {}):
        r = ReplicaRecord.from_replica(Replica("r1", data))
        assert r is not None and r.id == "r1"
        assert r.to_dict() == data and list(r.to_dict()) == list(data)
        assert r.to_replica() == Replica("r1", data)
    r = ReplicaRecord.from_replica(Replica("s", SERVER))
    assert r is not None and r.extra == {"swap": "availability"} and r.pid == 102 and r.address == "http://b:8501"


def test_a_field_set_after_reading_is_written():
    r = ReplicaRecord.from_replica(Replica("r", {"kind": "watcher"}))
    assert r is not None
    assert replace(r, state="ready").to_dict() == {"kind": "watcher", "state": "ready"}


@pytest.mark.parametrize("bad", [
    {"pid": "12"}, {"pid": True}, {"pid": 1.5}, {"pid": [1]}, {"dir": 5}, {"digest": {"a": 1}},
    {"kind": ["server"]}, {"alias": 3}, {"loaded": {"v": 1}}, {"state": None}, {"since": 0}, {"error": False},
    {"address": 8080}, {"host": 1},
])
def test_a_field_of_the_wrong_type_reads_as_none(bad):
    data = {**WATCHER, **bad}
    r = ReplicaRecord.from_replica(Replica("w", data))
    assert r is not None
    (key,) = bad
    assert getattr(r, key) is None
    assert all(getattr(r, k) == WATCHER[k] for k in RECORD_FIELDS if k != key)


@pytest.mark.parametrize("replica", [
    Replica("x", None), Replica("x", []), Replica("x", "json"), Replica("x", 5), Replica(None, {}),  # type: ignore
    Replica(5, {"kind": "server"}), ("x",), None, object(),  # type: ignore
])
def test_a_record_that_is_not_an_object_is_skipped(replica):
    assert ReplicaRecord.from_replica(replica) is None


def test_a_huge_extra_is_carried_through():
    data = {**WATCHER, "blob": "x" * 1_000_000, "nested": {"a": [1, {"b": None}] * 1000}}
    r = ReplicaRecord.from_replica(Replica("w", data))
    assert r is not None and set(r.extra) == {"blob", "nested"}
    assert r.to_dict() == data and r.matches({"latest": "v2"})


def test_matches_follows_the_alias_or_the_pinned_version():
    following = ReplicaRecord(alias="latest", desired="v1", loaded="v2", state="ready")
    assert following.target({"latest": "v2"}) == "v2" and following.matches({"latest": "v2"})
    assert not following.matches({"latest": "v3"}) and not following.matches({})
    pinned = ReplicaRecord(alias=None, desired="v1", loaded="v1", state="ready")
    assert pinned.matches({"latest": "v2"})
    assert not replace(pinned, state="syncing").matches({})
    assert ReplicaRecord(state="ready").matches({})  # nothing wanted, nothing loaded (as before)


def test_serving_needs_a_server_with_an_address_a_version_and_a_live_state():
    s = ReplicaRecord(id="s", kind="server", address="http://a:1", loaded="v1", state="ready", host="h")
    assert s.is_serving and s.endpoint() == Endpoint("http://a:1", "s", "v1", None, "ready", "h", None)
    for state in ("syncing", "failed"):
        assert replace(s, state=state).is_serving
    for change in ({"kind": "watcher"}, {"kind": None}, {"address": ""}, {"address": None}, {"loaded": ""},
                   {"loaded": None}, {"state": "starting"}, {"state": None}):
        assert not replace(s, **change).is_serving and replace(s, **change).endpoint() is None


# -- Fleet -----------------------------------------------------------------------------------------


def old_status(client: FakeClient, name: str) -> dict[str, Any]:
    """What ``mdl status -o json`` emitted before the record was typed (the reference)."""
    from collections import Counter

    aliases = client.pointer(name).aliases
    rows = []
    for r in client.replicas(name):
        d = r.data
        target = aliases.get(d.get("alias")) if d.get("alias") else d.get("desired")
        rows.append({**d, "id": r.id, "matches": d.get("loaded") == target and d.get("state") == "ready"})
    counts = dict(Counter(r.get("loaded") or "-" for r in rows))
    return {"name": name, "aliases": aliases, "replicas": rows, "counts": counts}


def test_status_is_what_mdl_status_emitted():
    records = stored({"w1": WATCHER, "s1": SERVER, "p": {"state": "ready", "loaded": "v2", "kind": "watcher"},
                      "e": {}, "spoof": {**WATCHER, "id": "other", "matches": "yes"},
                      "pinned": written(kind="watcher", desired="v1", loaded="v1", state="ready")})
    client = FakeClient(records)
    st = Fleet(client).status("lr")
    assert json.dumps(st.to_dict(), sort_keys=True) == json.dumps(old_status(client, "lr"), sort_keys=True)
    assert [st.matches(r) for r in st.replicas] == [True, False, False, False, True, True]
    assert st.counts == {"v2": 3, "v1": 2, "-": 1}
    assert st.rows()[4]["id"] == "spoof" and st.rows()[4]["matches"] is True


def test_status_of_no_replicas():
    st = Fleet(FakeClient({})).status("lr")
    assert st.to_dict() == {"name": "lr", "aliases": {"latest": "v2"}, "replicas": [], "counts": {}}


def test_hostile_records_never_crash_a_reader():
    records = {"list": [1, 2], "str": "x", "none": None, "pid": {**WATCHER, "pid": "x"},
               "alias": {"alias": ["latest"], "state": "ready", "loaded": "v2", "kind": "server", "address": "u"},
               "types": {"kind": 1, "state": {}, "loaded": [], "address": 2.5, "since": 9, "error": {"e": 1}}}
    fleet = Fleet(FakeClient(records))
    assert [r.id for r in fleet.replicas("lr")] == ["pid", "alias", "types"]
    st = fleet.status("lr")
    json.dumps(st.to_dict())
    assert [st.matches(r) for r in st.replicas] == [True, False, False]
    assert [(e.id, e.alias) for e in fleet.endpoints("lr")] == [("alias", None)]  # read without its alias
    assert fleet.wait_for_rollout("lr", "v2", timeout=0) == [fleet.replicas("lr")[0]]


def test_endpoints_are_the_serving_servers_sorted_by_url():
    records = stored({
        "b": written(kind="server", host="h", alias="latest", loaded="v2", state="ready", address="http://b:1"),
        "a": written(kind="server", host="h", alias="stable", loaded="v1", state="failed", address="http://a:1",
                     error="boom"),
        "c": written(kind="server", alias="latest", loaded="v1", state="syncing", address="http://c:1"),
        "w": WATCHER,
        "starting": written(kind="server", alias="latest", state="starting", address="http://d:1"),
    })
    fleet = Fleet(FakeClient(records))
    assert [e.url for e in fleet.endpoints("lr")] == ["http://a:1", "http://b:1", "http://c:1"]
    assert [e.id for e in fleet.endpoints("lr", alias="latest")] == ["b", "c"]
    assert [e.id for e in fleet.endpoints("lr", version="v1")] == ["a", "c"]
    assert fleet.endpoints("lr", alias="latest", version="v1")[0].to_dict() == {
        "url": "http://c:1", "id": "c", "version": "v1", "alias": "latest", "state": "syncing", "host": None,
        "error": None}
    assert fleet.endpoints("lr", alias="canary") == []
    with pytest.raises(InvalidInput):
        fleet.endpoints("lr", alias="../x")
    with pytest.raises(InvalidInput):
        fleet.endpoints("lr", version="../../etc")


def replica(state: str, loaded: str | None, desired: str = "v2", alias: str | None = "latest",
            error: str | None = None) -> dict[str, Any]:
    return written(kind="watcher", alias=alias, desired=desired, loaded=loaded, state=state, error=error)


def test_wait_for_rollout_returns_once_every_follower_is_ready():
    def fleet_at(read: int) -> dict[str, Any]:
        later = read >= 3
        return {"a": replica("ready", "v2"), "b": replica("ready" if later else "syncing", "v2" if later else "v1"),
                "pinned": replica("ready", "v1", desired="v1", alias=None),
                "other": replica("ready", "v1", alias="stable")}

    client = FakeClient(fleet_at)
    done = Fleet(client).wait_for_rollout("lr", "v2", timeout=10, poll=0)
    assert [r.id for r in done] == ["a", "b"] and client.reads == 3


def test_wait_for_rollout_min_ready_is_enough():
    client = FakeClient({"a": replica("ready", "v2"), "b": replica("syncing", "v1")})
    assert [r.id for r in Fleet(client).wait_for_rollout("lr", "v2", timeout=10, min_ready=1, poll=0)] == ["a"]


def test_wait_for_rollout_times_out_naming_the_laggards():
    client = FakeClient({"a": replica("ready", "v2"), "b": replica("syncing", "v1")})
    with pytest.raises(Timeout) as e:
        Fleet(client).wait_for_rollout("lr", "v2", timeout=0, poll=0)
    assert e.value.message == ("1 of 2 replicas ready on lr/v2 after 0s; waiting for: b (syncing, loaded v1)")
    assert e.value.hint == "see the fleet with: mdl status lr"
    with pytest.raises(Timeout) as e:
        Fleet(FakeClient({})).wait_for_rollout("lr", "v2", timeout=0.01, min_ready=2, poll=0)
    assert e.value.message == ("0 of 2 replicas ready on lr/v2 after 0.01s; "
                               "waiting for: replicas that have not registered")


def test_wait_for_rollout_fails_when_a_follower_failed_to_load_the_version():
    failed = replica("failed", "v1", error="load: exited 3")
    client = FakeClient({"a": replica("ready", "v2"), "b": failed,
                         "old": replica("failed", "v1", desired="v0", error="not this one")})
    with pytest.raises(RolloutFailed) as e:
        Fleet(client).wait_for_rollout("lr", "v2", timeout=10, poll=0)
    assert e.value.message == "1 replica failed to load lr/v2: b: load: exited 3"
    assert e.value.hint == "roll back with: mdl rollback lr --alias latest"
    assert e.value.replicas == [Replica("b", failed)]
