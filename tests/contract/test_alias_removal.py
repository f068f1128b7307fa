"""Removing an alias (compare-and-set, recorded in the history) and naming the missing subject, on every backend."""

from __future__ import annotations

import pytest

from mdl.errors import CasConflict, Conflict, NotFound
from mdl.fleet import Fleet, ReplicaRecord

from ..helpers import make_model


@pytest.fixture
def lr(client, tmp_path):
    """Model lr: v1 and v2, latest -> v1, canary -> v2."""
    for v in ("v1", "v2"):
        client.push("lr", make_model(tmp_path / v, f"model {v}".encode()), version=v)
    client.promote("lr", "v1")
    client.promote("lr", "v2", alias="canary")


def test_remove_alias_takes_it_out_of_the_pointer_and_records_it(client, lr):
    move = client.remove_alias("lr", "canary")
    assert move.to_dict() == {
        "name": "lr", "alias": "canary", "previous": "v2", "version": None, "changed": True, "action": "remove"}
    assert client.pointer("lr").aliases == {"latest": "v1"}
    last = client.history("lr")[-1]
    assert (last.alias, last.from_version, last.to_version, last.action) == ("canary", "v2", None, "remove")
    assert {"seq", "alias", "from", "to", "who", "at", "action"} <= set(last.to_dict())
    assert [h.action for h in client.history("lr", "canary")] == ["promote", "remove"]


def test_rollback_restores_a_removed_alias(client, lr):
    client.remove_alias("lr", "canary")
    back = client.rollback("lr", alias="canary")
    assert (back.previous, back.version) == (None, "v2")
    assert client.pointer("lr").aliases == {"latest": "v1", "canary": "v2"}


def test_removing_an_unset_alias_or_of_an_unknown_model_is_not_found(client, lr, make_client):
    with pytest.raises(NotFound) as e:
        client.remove_alias("lr", "stable")
    assert e.value.message == "alias 'stable' of lr is not set"
    with pytest.raises(NotFound) as e:
        client.remove_alias("nope", "latest")
    assert e.value.message == "model 'nope' does not exist"
    client.remove_alias("lr", "canary")
    with pytest.raises(NotFound):  # another client removed it already
        make_client().remove_alias("lr", "canary")
    assert len(client.history("lr")) == 3


def test_removal_is_a_compare_and_set(client, lr):
    stale = client.pointer("lr").revision
    client.promote("lr", "v1", alias="canary")
    with pytest.raises(CasConflict):
        client.registry.cas("lr", "canary", None, stale, "t@h", "remove")
    assert client.pointer("lr").aliases == {"latest": "v1", "canary": "v1"}


def test_an_alias_live_replicas_follow_is_removed_only_when_forced(client, lr):
    record = ReplicaRecord(kind="watcher", alias="canary", desired="v2", loaded="v2", state="ready").to_dict()
    handle = client.register_replica("lr", "w1", record)
    try:
        with pytest.raises(Conflict) as e:
            client.remove_alias("lr", "canary")
        assert e.value.message == "alias 'canary' of lr is followed by 1 live replica: w1"
        assert client.pointer("lr").aliases["canary"] == "v2"
        client.remove_alias("lr", "latest")  # followed by none
        assert client.remove_alias("lr", "canary", force=True).previous == "v2"
        assert client.pointer("lr").aliases == {}
    finally:
        handle.close()


def test_missing_models_and_aliases_are_not_found_everywhere(client, lr):
    fleet = Fleet(client)
    for call in (lambda: fleet.status("nope"), lambda: fleet.endpoints("nope"), lambda: client.history("nope"),
                 lambda: client.promote("nope", "v1"), lambda: client.rollback("nope")):
        with pytest.raises(NotFound) as e:
            call()
        assert e.value.message == "model 'nope' does not exist"
    with pytest.raises(NotFound) as e:
        client.history("lr", "nope")
    assert e.value.message == "alias 'nope' of lr was never set"
    with pytest.raises(NotFound) as e:
        client.rollback("lr", alias="stable")
    assert e.value.message == "alias 'stable' of lr is not set"
    assert fleet.status("lr").replicas == [] and fleet.endpoints("lr") == []  # exists: an empty fleet


def test_a_model_with_versions_but_no_pointer_exists(client, tmp_path):
    client.push("bare", make_model(tmp_path, b"bare"), version="v1")
    assert Fleet(client).status("bare").aliases == {}
    assert client.history("bare") == []
