"""rm, pin and gc end to end on every backend: the rules, deletes killed at each step of the protocol
(finished by the next gc), and a pull of a version deleted mid-download."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import mdl.publish
from mdl.errors import Conflict, ExitCode, InvalidInput, NotFound
from mdl.retention import Rules

from ..helpers import WEBHDFS_URL, make_dir, make_model

NOW = datetime.now(timezone.utc)


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def lr(client, tmp_path, monkeypatch):
    """lr/v1..v5 created 40, 30, 20, 10 and 1 days ago, of 100..500 bytes; latest moved v2 -> v4."""
    for i, days in ((1, 40), (2, 30), (3, 20), (4, 10), (5, 1)):
        monkeypatch.setattr(mdl.publish, "now_iso", lambda days=days: ago(days))
        client.push("lr", make_model(tmp_path / f"v{i}", b"w" * 100 * i), version=f"v{i}")
    monkeypatch.undo()
    client.promote("lr", "v2")
    client.promote("lr", "v4")
    return client


def stored(client) -> list[str]:
    return sorted(client.stored_versions("lr"))


def gone(client, version: str) -> bool:
    """Deleted completely: not listed, no manifest, nothing hidden left, no tombstone."""
    with pytest.raises(NotFound):
        client.manifest("lr", version)
    return (
        version not in client.stored_versions("lr")
        and version not in [v.version for v in client.list_versions("lr")]
        and client.storage.list_hidden("lr") == []
        and version not in client.registry.lifecycle("lr").tombstones
    )


def test_rm_refuses_what_an_alias_a_pin_a_rollback_window_or_a_replica_needs(lr):
    client = lr
    with pytest.raises(Conflict, match="aliased: latest") as exc:
        client.rm("lr", ["v4"], force=True)
    assert exc.value.exit_code == ExitCode.CONFLICT
    assert client.pin("lr", "v3") is True and client.pin("lr", "v3") is False
    with pytest.raises(Conflict, match="pinned"):
        client.rm("lr", ["v3"], force=True)
    with pytest.raises(Conflict, match="rollback window of latest"):
        client.rm("lr", ["v2"])
    handle = client.register_replica("lr", "host-a-1", {"kind": "watch", "state": "loading", "desired": "v1"})
    try:
        with pytest.raises(Conflict, match="in use by host-a-1"):
            client.rm("lr", ["v1"])
        assert [d.version for d in client.rm("lr", ["v1", "v2"], force=True)] == ["v1", "v2"]
    finally:
        handle.close()
    assert stored(client) == ["v3", "v4", "v5"] and gone(client, "v1") and gone(client, "v2")
    assert client.unpin("lr", "v3") is True
    assert [(d.version, d.bytes, d.trash) for d in client.rm("lr", ["v3"])] == [("v3", 300, False)]
    with pytest.raises(NotFound):
        client.rm("lr", ["v3"])
    with pytest.raises(NotFound, match="does not exist"):  # a deleted version can never be promoted
        client.promote("lr", "v3", alias="canary")
    actions = [(e.action, e.version) for e in client.history("lr") if e.alias is None]
    assert actions == [("pin", "v3"), ("delete", "v1"), ("delete", "v2"), ("unpin", "v3"), ("delete", "v3")]


def test_gc_applies_count_age_grace_and_keeps_what_is_needed(lr):
    client = lr
    client.pin("lr", "v1")
    plan = client.gc("lr", rules=Rules(keep_last=1, keep_days=15)).plan
    assert {d.version: d.delete for d in plan.decisions} == {
        "v5": False, "v4": False, "v3": True, "v2": False, "v1": False}
    assert stored(client) == ["v1", "v2", "v3", "v4", "v5"]  # planning deletes nothing
    result = client.gc("lr", rules=Rules(keep_last=1, keep_days=15, grace=86400 * 25), plan_only=False)
    assert [d.version for d in result.deleted] == [] and result.skipped == []  # v3 is in the grace window
    result = client.gc("lr", rules=Rules(keep_last=1, rollback_window=0), plan_only=False)
    assert [d.version for d in result.deleted] == ["v3", "v2"] and result.to_dict()["changed"] is True
    assert stored(client) == ["v1", "v4", "v5"] and gone(client, "v3") and gone(client, "v2")
    assert client.gc("lr", plan_only=False).to_dict()["changed"] is False  # no rule in the config: keeps all


def _tombstone(client, version: str) -> None:
    """Step 1 of a delete: the tombstone, recorded as rm records it."""
    reg = client.registry
    pointer, lc = reg.get("lr"), reg.lifecycle("lr")
    mark = {"who": "killed@rm", "at": ago(0)}
    reg.set_lifecycle(lc._replace(tombstones={**lc.tombstones, version: mark}), lc.revision, pointer.revision,
                      {"who": "killed@rm", "action": "delete", "version": version})


@pytest.mark.parametrize("left", ["tombstone", "tombstone+hidden", "hidden"])
def test_a_delete_killed_at_any_step_is_finished_by_gc(lr, left):
    client = lr
    if "tombstone" in left:
        _tombstone(client, "v3")
        with pytest.raises(NotFound, match="v3 is being deleted"):  # no alias may name it from now on
            client.promote("lr", "v3", alias="canary")
        with pytest.raises(NotFound, match="being deleted"):
            client.pin("lr", "v3")
    if "hidden" in left:
        assert client.storage.hide_version("lr", "v3") is not None
        assert "v3" not in client.stored_versions("lr") and len(client.storage.list_hidden("lr")) == 1
    plan = client.gc("lr").plan
    if left == "tombstone":  # still stored: the plan says gc will finish it (a hidden one is no longer listed)
        assert [(d.version, d.reasons) for d in plan.delete] == [("v3", ("deletion in progress",))]
    result = client.gc("lr", plan_only=False)
    assert result.finished == (["v3"] if "tombstone" in left else [])
    assert stored(client) == ["v1", "v2", "v4", "v5"] and gone(client, "v3")
    assert client.pointer("lr").aliases == {"latest": "v4"}


def test_rm_finishes_a_version_whose_delete_was_killed(lr):
    client = lr
    _tombstone(client, "v3")
    client.storage.hide_version("lr", "v3")
    assert [d.version for d in client.rm("lr", ["v3"])] == ["v3"]
    assert gone(client, "v3")


def test_a_pull_of_a_version_deleted_mid_download_fails_with_no_partial_copy(client, make_client, tmp_path):
    files = {f"part-{i}.bin": bytes([i]) * 4096 for i in range(4)}
    client.push("lr", make_dir(tmp_path, files), version="v1")
    client.push("lr", make_model(tmp_path, b"other"), version="v2", promote=True)
    deleter = make_client()
    real = client.storage.download
    calls: list[str] = []

    def download(name, version, entry, dest, on_bytes=None):
        calls.append(entry.path)
        if len(calls) == 2:  # the first file is in: the version is deleted under the pull's feet
            deleter.rm("lr", ["v1"], force=True)
        return real(name, version, entry, dest, on_bytes)

    client.storage.download = download
    dest = tmp_path / "pulled"
    with pytest.raises(NotFound) as exc:
        client.pull("lr", "v1", dest=dest, jobs=1)
    assert exc.value.exit_code == ExitCode.NOT_FOUND and "v1" in exc.value.message
    assert not dest.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert gone(client, "v1")


def test_rm_into_the_trash_on_hdfs_and_refused_before_anything_elsewhere(lr):
    client = lr
    if not client.storage.has_trash:
        with pytest.raises(InvalidInput, match="--trash is for HDFS"):
            client.rm("lr", ["v3"], trash=True)
        assert "v3" in stored(client) and client.registry.lifecycle("lr").tombstones == {}
        assert client.storage.list_hidden("lr") == []
        return
    from hdfs import InsecureClient

    hdfs = InsecureClient("http://" + WEBHDFS_URL.split("://", 1)[1], user="root", timeout=60)
    in_trash = f"/user/{client.storage.user}/.Trash/Current{client.storage.root}/lr"
    try:
        assert [(d.version, d.trash) for d in client.rm("lr", ["v3"], trash=True)] == [("v3", True)]
        assert gone(client, "v3") and hdfs.list(in_trash) == ["v3"]
        with hdfs.read(f"{in_trash}/v3/model.pkl") as f:
            assert f.read() == b"w" * 300
    finally:
        hdfs.delete(f"/user/{client.storage.user}/.Trash/Current{client.storage.root.split('/models')[0]}",
                    recursive=True)
