"""The registry's rollout document (a staged rollout's state) on every backend: compare-and-set with its
history entry, delivered by the pointer watch with the pointer, hostile documents refused (and a watch
serves the last good one meanwhile)."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from typing import Any

import pytest

from mdl.client import rollback_target
from mdl.errors import CasConflict, IntegrityError, InvalidInput
from mdl.registry.base import NO_REVISION, Pointer, Rollout, parse_rollout
from mdl.registry.sqlite import SqliteRegistry

from ..helpers import until
from .backdoor import write_rollout


def rollout_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "r-1",
        "alias": "latest",
        "stable": "v1",
        "candidate": "v2",
        "steps": [10, 50, 100],
        "step": 0,
        "state": "running",
        "assigned": [],
        "reason": None,
        "options": {"max_error_rate": 0.01},
        "by": "alice@host",
        "started": "2026-12-02T18:00:00Z",
        "updated": "2026-12-02T18:00:00Z",
        "step_started": "2026-12-02T18:00:00Z",
    }
    doc.update(changes)
    return doc


def without(key: str) -> bytes:
    doc = rollout_doc()
    del doc[key]
    return json.dumps(doc).encode()


def raw(**changes: Any) -> bytes:
    return json.dumps(rollout_doc(**changes)).encode()


def nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


START = {"who": "alice", "action": "rollout-start", "version": "v2"}

HOSTILE: list[tuple[str, bytes]] = [
    ("not-json", b"running at 10%"),
    ("not-utf8", b"\xff\xfe{}"),
    ("a-list", b'["r-1"]'),
    ("a-string", b'"r-1"'),
    ("a-number", b"7"),
    ("deep-json", b"[" * 100_000),
    ("nan", raw(options={"x": 1}).replace(b'"x": 1', b'"x": NaN')),
    ("no-id", without("id")),
    ("id-slash", raw(id="a/b")),
    ("id-long", raw(id="x" * 65)),
    ("id-number", raw(id=5)),
    ("alias-path", raw(alias="../etc")),
    ("alias-null", raw(alias=None)),
    ("stable-empty", raw(stable="")),
    ("candidate-number", raw(candidate=5)),
    ("candidate-missing", without("candidate")),
    ("steps-empty", raw(steps=[])),
    ("steps-zero", raw(steps=[0, 100])),
    ("steps-101", raw(steps=[10, 101])),
    ("steps-not-increasing", raw(steps=[50, 10, 100])),
    ("steps-equal", raw(steps=[50, 50, 100])),
    ("steps-last-not-100", raw(steps=[10, 50])),
    ("steps-bools", raw(steps=[True, 100])),
    ("steps-floats", raw(steps=[10.0, 100])),
    ("steps-last-float", raw(steps=[10, 100.0])),
    ("steps-string", raw(steps="10,50,100")),
    ("steps-too-many", raw(steps=[*range(1, 21), 100])),
    ("steps-huge-int", raw(steps=[10**30, 100])),
    ("step-negative", raw(step=-1)),
    ("step-past-end", raw(step=3)),
    ("step-bool", raw(step=True)),
    ("step-float", raw(step=1.0)),
    ("step-string", raw(step="0")),
    ("state-unknown", raw(state="done")),
    ("state-null", raw(state=None)),
    ("assigned-string", raw(assigned="r1")),
    ("assigned-slash", raw(assigned=["ok", "a/b"])),
    ("assigned-newline", raw(assigned=["a\nb"])),
    ("assigned-del", raw(assigned=["a\x7f"])),
    ("assigned-c1", raw(assigned=["a\x85"])),
    ("assigned-surrogate", raw(options={}).replace(b'"assigned": []', b'"assigned": ["\\ud800"]')),
    ("assigned-duplicate", raw(assigned=["r1", "r2", "r1"])),
    ("assigned-empty-id", raw(assigned=[""])),
    ("assigned-dot", raw(assigned=["."])),
    ("assigned-dotdot", raw(assigned=[".."])),
    ("assigned-long-id", raw(assigned=["x" * 256])),
    ("assigned-number", raw(assigned=[5])),
    ("assigned-object", raw(assigned=[{"id": "r1"}])),
    ("reason-number", raw(reason=5)),
    ("reason-long", raw(reason="x" * 2001)),
    ("options-list", raw(options=[])),
    ("options-string", raw(options="fast")),
    ("options-huge", raw(options={"x": "y" * 70_000})),
    ("options-deep", raw(options=nested(9))),
    ("by-number", raw(by=5)),
    ("by-long", raw(by="x" * 201)),
    ("started-missing", without("started")),
    ("updated-null", raw(updated=None)),
    ("step-started-list", raw(step_started=["t"])),
]


def too_many_assigned(sqlite: bool) -> bytes:
    """More replica ids than allowed: 200000 on SQLite; on ZooKeeper 100001 short ones (a node holds 1 MiB)."""
    if sqlite:
        return raw(assigned=[f"replica-{i}" for i in range(200_000)])
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    ids = [digits[i % 36] + digits[i // 36 % 36] + digits[i // 1296 % 36] + digits[i // 46656] for i in range(100_001)]
    return raw(assigned=ids)


def is_sqlite(client) -> bool:
    return isinstance(client.registry, SqliteRegistry)


# -- the document ---------------------------------------------------------------------------------


def test_a_model_without_rollout_has_none(client):
    assert client.rollout("lr") == Rollout("lr", None, NO_REVISION)
    p = client.pointer("lr", with_rollout=True)
    assert p == Pointer("lr", {}, NO_REVISION, Rollout("lr", None, NO_REVISION))
    assert client.pointer("lr").rollout is None  # a plain read leaves the rollout unread


def test_set_rollout_creates_and_moves_by_compare_and_set(client):
    reg = client.registry
    first = client.set_rollout("lr", rollout_doc(), NO_REVISION, START)
    assert first == Rollout("lr", rollout_doc(), 0) and client.rollout("lr") == first
    with pytest.raises(CasConflict):  # it exists now: a second start loses
        client.set_rollout("lr", rollout_doc(id="r-2"), NO_REVISION, START)
    stepped = rollout_doc(step=1, assigned=["a", "b"], updated="2026-12-02T18:02:00Z")
    second = reg.set_rollout("lr", stepped, 0, {"who": "bob", "action": "rollout-step", "version": "v2"})
    assert second.revision == 1 and client.rollout("lr").doc == stepped
    with pytest.raises(CasConflict):  # a stale revision
        reg.set_rollout("lr", rollout_doc(state="aborted", reason="too slow"), 0, None)
    paused = reg.set_rollout("lr", rollout_doc(state="paused", reason="by hand"), 1, None)
    assert paused.revision == 2 and client.rollout("lr") == paused
    assert client.rollout("lr").doc["reason"] == "by hand"


def test_history_records_each_step_as_a_move_of_the_alias(client):
    reg = client.registry
    reg.cas("lr", "latest", "v1", NO_REVISION, "alice", "promote")
    reg.cas("lr", "latest", "v2", 0, "alice", "promote")
    doc = rollout_doc(stable="v2", candidate="v3")
    client.set_rollout("lr", doc, NO_REVISION, {"who": "bob", "action": "rollout-start", "version": "v3"})
    client.set_rollout(
        "lr",
        doc | {"state": "aborted", "reason": "5xx"},
        0,
        {"who": "bob", "action": "rollout-abort", "version": "v3", "rule": "error rate 7% > 1%"},
    )
    client.set_rollout("lr", doc, 1, None)  # no entry
    entries = client.history("lr")
    rollouts = [e for e in entries if e.action.startswith("rollout-")]
    assert [(e.alias, e.from_version, e.to_version, e.who, e.action, e.version, e.rule) for e in rollouts] == [
        ("latest", "v2", "v3", "bob", "rollout-start", "v3", None),
        ("latest", "v2", "v3", "bob", "rollout-abort", "v3", "error rate 7% > 1%"),
    ]
    assert rollouts[1].to_dict()["from"] == "v2" and len(entries) == 4
    assert rollback_target(entries, "latest") == "v1"  # a rollout's steps are not promotions to undo


def test_a_bad_document_or_entry_is_refused_before_writing(client):
    with pytest.raises(InvalidInput, match="rollout document of 'lr'"):
        client.set_rollout("lr", rollout_doc(steps=[10, 50]), NO_REVISION, START)
    with pytest.raises(InvalidInput, match="not JSON"):
        client.set_rollout("lr", rollout_doc(options={"when": object()}), NO_REVISION, START)
    with pytest.raises(InvalidInput, match="not JSON"):
        client.set_rollout("lr", rollout_doc(options={"x": float("nan")}), NO_REVISION, START)
    with pytest.raises(InvalidInput, match="rollout-<step> action"):
        client.set_rollout("lr", rollout_doc(), NO_REVISION, {"who": "a", "action": "promote", "version": "v2"})
    with pytest.raises(InvalidInput):
        client.set_rollout("lr", rollout_doc(), NO_REVISION, {"who": "a", "action": "rollout-start", "version": "../x"})
    with pytest.raises(InvalidInput):
        client.set_rollout("../lr", rollout_doc(), NO_REVISION, START)
    assert client.rollout("lr") == Rollout("lr", None, NO_REVISION)
    assert client.registry.history("lr") == []


def test_unknown_keys_are_kept_and_defaults_filled_in(client):
    doc = rollout_doc(shadow={"percent": 5}, later=[1, 2])
    del doc["reason"], doc["options"]
    written = client.set_rollout("lr", doc, NO_REVISION, None)
    assert written.doc == client.rollout("lr").doc == doc | {"reason": None, "options": {}}
    assert written.doc["shadow"] == {"percent": 5} and "op" not in written.doc
    write_rollout(client.registry, "lr", json.dumps(rollout_doc(future="yes")))
    assert client.rollout("lr").doc == rollout_doc(future="yes")


def test_limits_are_inclusive(client):
    ids = [f"replica-{i}" for i in range(2000)] + ["x" * 255, "é-ü"]
    doc = rollout_doc(
        id="x" * 64,
        steps=[*range(1, 20), 100],
        step=19,
        assigned=ids,
        reason="r" * 2000,
        options=nested(8) | {"pad": "p" * 60_000},
        by="b" * 200,
    )
    assert client.set_rollout("lr", doc, NO_REVISION, None).doc == doc
    assert client.rollout("lr").doc == doc


def test_a_document_too_large_for_a_zookeeper_node_is_refused_before_sending(client):
    doc = rollout_doc(assigned=[f"replica-host-{i:06d}" for i in range(60_000)])  # 1.4 MB
    if is_sqlite(client):
        assert client.set_rollout("lr", doc, NO_REVISION, START).doc == doc
        return
    with pytest.raises(InvalidInput, match="more than a ZooKeeper node holds"):
        client.set_rollout("lr", doc, NO_REVISION, START)
    assert client.rollout("lr").doc is None and client.registry.history("lr") == []


def test_hostile_documents_are_one_integrity_error(client):
    reg = client.registry
    for label, data in [*HOSTILE, ("too-many-assigned", too_many_assigned(is_sqlite(client)))]:
        write_rollout(reg, "lr", data)
        start = time.monotonic()
        with pytest.raises(IntegrityError) as exc:
            reg.rollout("lr")
        assert time.monotonic() - start < 2, label
        message = exc.value.message
        assert "rollout document of 'lr'" in message and "\n" not in message and len(message) < 400, (label, message)
        with pytest.raises(IntegrityError):
            reg.get_with_rollout("lr")
    write_rollout(reg, "lr", b"")  # empty: no rollout
    assert reg.rollout("lr").doc is None


def test_a_hostile_sqlite_row_of_another_type(tmp_path):
    reg = SqliteRegistry(f"sqlite://{tmp_path}/r.db")
    try:
        for value, revision in (
            (b"\x00\x01", 0),
            (42, 0),
            (json.dumps(rollout_doc()), "one"),
            (json.dumps(rollout_doc()), -4),
        ):
            with sqlite3.connect(reg.path) as c:
                c.execute(
                    "INSERT OR REPLACE INTO rollouts (model, doc, revision) VALUES ('lr', ?, ?)", (value, revision)
                )
            with pytest.raises(IntegrityError, match="rollout document of 'lr'"):
                reg.rollout("lr")
    finally:
        reg.close()


def test_an_existing_database_gains_the_rollouts_table(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:  # a registry made before rollouts
        c.execute("CREATE TABLE pointers (model TEXT PRIMARY KEY, doc TEXT NOT NULL, revision INTEGER NOT NULL)")
        c.execute("INSERT INTO pointers VALUES ('lr', '{\"latest\": \"v1\"}', 3)")
    reg = SqliteRegistry(f"sqlite://{path}")
    try:
        assert reg.rollout("lr") == Rollout("lr", None, NO_REVISION)
        reg.set_rollout("lr", rollout_doc(), NO_REVISION, None)
        assert reg.get_with_rollout("lr") == Pointer("lr", {"latest": "v1"}, 3, Rollout("lr", rollout_doc(), 0))
    finally:
        reg.close()


@pytest.mark.parametrize("label,data", HOSTILE[:12])
def test_parse_rollout_names_the_place(label, data):
    with pytest.raises(IntegrityError) as exc:
        parse_rollout(data, "lr", "somewhere", hint="do this")
    assert "(somewhere)" in exc.value.message and exc.value.hint == "do this"


def test_parse_rollout_of_other_stored_types():
    assert parse_rollout(None, "lr", "x") is None and parse_rollout(b"  \n", "lr", "x") is None
    for value in (5, 1.5, ["a"], memoryview(b"{}")):
        with pytest.raises(IntegrityError, match="not a JSON document"):
            parse_rollout(value, "lr", "x")  # type: ignore[arg-type]
    with pytest.raises(IntegrityError, match="larger than"):
        parse_rollout(b"{" + b" " * (32 * 1024 * 1024), "lr", "x")


# -- the watch ------------------------------------------------------------------------------------


class Deliveries:
    def __init__(self) -> None:
        self.seen: list[Pointer] = []
        self.event = threading.Event()

    def __call__(self, pointer: Pointer) -> None:
        self.seen.append(pointer)
        self.event.set()

    def next(self, what: str, timeout: float = 5) -> Pointer:
        assert self.event.wait(timeout), f"no delivery: {what}"
        self.event.clear()
        return self.seen[-1]


def test_the_watch_delivers_the_rollout_with_the_pointer(make_client):
    watcher, writer = make_client(), make_client()
    writer.registry.cas("lr", "latest", "v1", NO_REVISION, "alice", "promote")
    got = Deliveries()
    w = watcher.registry.watch("lr", got)
    try:
        first = got.next("the current pointer")
        assert first == Pointer("lr", {"latest": "v1"}, 0, Rollout("lr", None, NO_REVISION))
        start = time.monotonic()
        writer.set_rollout("lr", rollout_doc(), NO_REVISION, START)
        p = until(lambda: got.seen[-1].rollout.doc is not None and got.seen[-1], 5, what="the new rollout")
        assert time.monotonic() - start < 1.0
        assert p == Pointer("lr", {"latest": "v1"}, 0, Rollout("lr", rollout_doc(), 0))
        writer.set_rollout("lr", rollout_doc(step=1, assigned=["a"]), 0, None)
        until(lambda: got.seen[-1].rollout.revision == 1, 5, what="the rollout's step")
        assert got.seen[-1].rollout.doc["assigned"] == ["a"] and got.seen[-1].revision == 0
        writer.registry.cas("lr", "latest", "v2", 0, "alice", "promote")
        until(lambda: got.seen[-1].revision == 1, 5, what="the pointer's move")
        assert got.seen[-1] == Pointer("lr", {"latest": "v2"}, 1, Rollout("lr", rollout_doc(step=1, assigned=["a"]), 1))
    finally:
        w.stop()


def test_the_watch_serves_the_last_good_rollout_while_the_stored_one_is_hostile(make_client, caplog):
    watcher, writer = make_client(), make_client()
    reg = writer.registry
    reg.cas("lr", "latest", "v1", NO_REVISION, "alice", "promote")
    good = writer.set_rollout("lr", rollout_doc(assigned=["a"]), NO_REVISION, START)
    caplog.set_level(logging.WARNING)
    got = Deliveries()
    w = watcher.registry.watch("lr", got)
    try:
        assert got.next("the current pointer") == Pointer("lr", {"latest": "v1"}, 0, good)
        write_rollout(reg, "lr", raw(assigned=["a", "../../evil"]))
        until(lambda: "'../../evil'" in caplog.text, 5, what="the hostile rollout to be logged")
        write_rollout(reg, "lr", b"[" * 100_000)  # another bad one: logged, still nothing delivered
        until(lambda: "is not valid JSON" in caplog.text, 5, what="the second hostile rollout to be logged")
        time.sleep(0.3)
        assert not got.event.is_set() and w.live and len(got.seen) == 1
        reg.cas("lr", "latest", "v2", 0, "alice", "promote")  # the pointer still moves, with the last good rollout
        assert got.next("the pointer's move") == Pointer("lr", {"latest": "v2"}, 1, good)
        write_rollout(reg, "lr", raw(step=2, assigned=["a", "b"]))  # fixed
        fixed = got.next("the fixed rollout")
        assert fixed.revision == 1 and fixed.rollout.doc == rollout_doc(step=2, assigned=["a", "b"])
        assert caplog.text.count("'../../evil'") == 1  # logged once
    finally:
        w.stop()


def test_a_watch_started_on_a_hostile_rollout_delivers_the_pointer(make_client, caplog):
    writer = make_client()
    writer.registry.cas("lr", "latest", "v1", NO_REVISION, "alice", "promote")
    write_rollout(writer.registry, "lr", raw(state="exploded"))
    caplog.set_level(logging.WARNING)
    got = Deliveries()
    w = make_client().registry.watch("lr", got)
    try:
        assert got.next("the pointer") == Pointer("lr", {"latest": "v1"}, 0, None)  # no good rollout yet
        assert "'exploded'" in caplog.text
        write_rollout(writer.registry, "lr", b"")  # emptied: no rollout
        assert got.next("the emptied rollout").rollout.doc is None
    finally:
        w.stop()
