"""The registry's lifecycle document (pins, tombstones) on every backend: compare-and-set together with
the pointer, history entries for pin/unpin/delete, hostile documents refused."""

from __future__ import annotations

import pytest

from mdl.errors import CasConflict, IntegrityError, NotFound
from mdl.registry.base import NO_REVISION, Lifecycle

from ..helpers import make_model
from .backdoor import write_lifecycle


@pytest.fixture
def versions(client, tmp_path):
    for i in (1, 2, 3):
        client.push("lr", make_model(tmp_path / str(i), f"model {i}".encode()), version=f"v{i}")
    client.promote("lr", "v1")
    return ["v1", "v2", "v3"]


def test_a_new_model_has_an_empty_lifecycle(client, versions):
    lc = client.registry.lifecycle("lr")  # ZooKeeper: the first promote created an empty document (revision 0)
    assert (lc.pins, lc.tombstones) == ({}, {}) and lc.revision in (NO_REVISION, 0)


def test_set_lifecycle_is_compare_and_set_with_its_history_entry(client, versions):
    reg = client.registry
    start = reg.lifecycle("lr").revision
    pinned = Lifecycle("lr", {"v2": {"who": "a", "at": "t"}}, {})
    first = reg.set_lifecycle(pinned, start, None, {"who": "a", "action": "pin", "version": "v2"})
    assert first.revision == start + 1 and reg.lifecycle("lr") == first
    with pytest.raises(CasConflict):  # a stale revision
        reg.set_lifecycle(pinned._replace(pins={}), start, None, None)
    dropped = reg.set_lifecycle(pinned._replace(pins={}), start + 1, None, None)  # no history entry
    assert dropped.revision == start + 2 and reg.lifecycle("lr").pins == {}
    entries = [e for e in reg.history("lr") if e.action == "pin"]
    assert [(e.alias, e.version, e.who, e.from_version, e.to_version) for e in entries] == [
        (None, "v2", "a", None, None)]


def test_a_delete_loses_to_a_promote_that_moved_the_pointer_first(client, versions):
    reg = client.registry
    pointer, lc = reg.get("lr"), reg.lifecycle("lr")
    client.promote("lr", "v2")  # the pointer moves after the delete read it
    tomb = lc._replace(tombstones={"v2": {"who": "gc", "at": "t", "rule": "keep_last=1"}})
    with pytest.raises(CasConflict):
        reg.set_lifecycle(tomb, lc.revision, pointer.revision, {"who": "gc", "action": "delete", "version": "v2"})
    assert reg.lifecycle("lr").tombstones == {} and all(e.action != "delete" for e in reg.history("lr"))


def test_a_promote_loses_to_a_tombstone_recorded_first(client, versions):
    reg = client.registry
    pointer, lc = reg.get("lr"), reg.lifecycle("lr")
    reg.set_lifecycle(lc._replace(tombstones={"v3": {"who": "gc", "at": "t"}}), lc.revision,
                      pointer.revision, {"who": "gc", "action": "delete", "version": "v3", "rule": "keep_last=1"})
    with pytest.raises(CasConflict):  # the lifecycle document changed after the promote read it
        reg.cas("lr", "latest", "v3", pointer.revision, "me", "promote", lifecycle_revision=lc.revision)
    with pytest.raises(NotFound, match="v3 is being deleted"):  # and, re-reading, the client refuses
        client.promote("lr", "v3")
    assert reg.get("lr").aliases == {"latest": "v1"}
    delete = [e for e in reg.history("lr") if e.action == "delete"]
    assert [(e.version, e.rule) for e in delete] == [("v3", "keep_last=1")]
    assert delete[0].to_dict()["rule"] == "keep_last=1"


def test_set_lifecycle_on_a_model_without_pointer(client, tmp_path):
    client.push("bert", make_model(tmp_path, b"bert"), version="b1")
    reg = client.registry
    assert reg.get("bert").revision == NO_REVISION
    lc = reg.set_lifecycle(Lifecycle("bert", {}, {"b1": {"who": "x", "at": "t"}}), NO_REVISION, NO_REVISION,
                           {"who": "x", "action": "delete", "version": "b1"})
    assert lc.tombstones == {"b1": {"who": "x", "at": "t"}}
    with pytest.raises(NotFound):
        client.promote("bert", "b1")


@pytest.mark.parametrize("raw", [
    b"not json",
    b"[1, 2]",
    b'{"pins": []}',
    b'{"pins": {"../../etc": {"who": "x"}}}',
    b'{"tombstones": {"v1": "yes"}}',
    b'{"tombstones": {"v1": {"who": 5}}}',
    b'{"pins": {"v1": {"who": "' + b"x" * 500 + b'"}}}',
    b"[" * 100000,
])
def test_a_hostile_lifecycle_document_is_one_integrity_error(client, versions, raw):
    write_lifecycle(client.registry, "lr", raw)
    with pytest.raises(IntegrityError) as exc:
        client.registry.lifecycle("lr")
    assert "lifecycle document of 'lr'" in exc.value.message and "\n" not in exc.value.message
    with pytest.raises(IntegrityError):  # a promote reads it too: nothing moves on a document it cannot read
        client.promote("lr", "v2")
    assert client.pointer("lr").aliases == {"latest": "v1"}


def test_unknown_keys_of_a_later_mdl_are_ignored(client, versions):
    write_lifecycle(client.registry, "lr", b'{"pins": {"v2": {"who": "a"}}, "tombstones": {}, "holds": {"x": 1}}')
    assert client.registry.lifecycle("lr").pins == {"v2": {"who": "a"}}
