"""What the registry holds is untrusted input: anyone with access to it can write the pointer
document, history entries and replica records. On every backend: a pointer that is not a JSON
object of valid alias -> valid version is an IntegrityError (exit 8) naming the model, on every
read (get, compare-and-set, watch); a watch survives one and recovers when it is fixed; unreadable
history entries and replica records are skipped; nothing a registry holds becomes a path."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from mdl.errors import IntegrityError
from mdl.registry.base import NO_REVISION

from ..helpers import make_model, until
from .backdoor import add_history, add_model_named, hostile_replicas, read_pointer, write_pointer

BAD_POINTERS = [
    ("not-json", b"latest=v1"),
    ("not-utf8", b"\xff\xfe{}"),
    ("json-list", b'["v1"]'),
    ("json-string", b'"v1"'),
    ("json-number", b"7"),
    ("version-number", b'{"latest": 5}'),
    ("version-null", b'{"latest": null}'),
    ("version-object", b'{"latest": {"v": "v1"}}'),
    ("version-traversal", b'{"latest": "../../../etc"}'),
    ("version-absolute", b'{"latest": "/etc/passwd"}'),
    ("version-empty", b'{"latest": ""}'),
    ("alias-traversal", b'{"../x": "v1"}'),
    ("alias-empty", b'{"": "v1"}'),
    ("deep-nesting", b"[" * 100000 + b"]" * 100000),
]


@pytest.fixture
def lr(client, tmp_path):
    """Model lr with v1 and v2, latest -> v1."""
    for v in ("v1", "v2"):
        client.push("lr", make_model(tmp_path / v, v.encode()), version=v)
    client.promote("lr", "v1")
    return client


@pytest.mark.parametrize("raw", [r for _, r in BAD_POINTERS], ids=[i for i, _ in BAD_POINTERS])
def test_a_bad_pointer_is_an_integrity_error_on_every_read(lr, raw):
    write_pointer(lr.registry, "lr", raw)
    stored = read_pointer(lr.registry, "lr")
    for read in (lambda: lr.registry.get("lr"), lambda: lr.pointer("lr"), lambda: lr.resolve("lr"),
                 lambda: lr.promote("lr", "v2"), lambda: lr.registry.cas("lr", "latest", "v2", 1, "me", "promote"),
                 lambda: lr.list_versions("lr")):
        with pytest.raises(IntegrityError) as err:
            read()
        assert err.value.exit_code == 8
        assert err.value.message.startswith("the pointer of 'lr' (") and err.value.hint
        assert "\n" not in err.value.message
    assert read_pointer(lr.registry, "lr") == stored  # mdl never rewrites what it cannot read
    assert lr.history("lr")[-1].to_version == "v1"  # and no move was recorded


def test_an_empty_pointer_document_holds_no_aliases(lr):
    write_pointer(lr.registry, "lr", b"")
    p = lr.registry.get("lr")
    assert p.aliases == {} and p.revision != NO_REVISION


def test_a_watch_survives_a_bad_pointer_and_follows_the_fix(lr, caplog):
    seen: list[dict] = []
    got = threading.Event()

    def callback(pointer):
        seen.append(dict(pointer.aliases))
        got.set()

    caplog.set_level(logging.WARNING)
    w = lr.registry.watch("lr", callback)
    try:
        assert got.wait(10) and seen[-1] == {"latest": "v1"}
        got.clear()
        write_pointer(lr.registry, "lr", b'{"latest": "../../../etc"}')
        until(lambda: "'../../../etc'" in caplog.text, 3, what="the bad pointer to be logged")
        assert "the pointer of 'lr'" in caplog.text and "'../../../etc'" in caplog.text
        assert not got.is_set() and w.live  # nothing delivered, the watch still runs
        write_pointer(lr.registry, "lr", b"not json either")
        time.sleep(0.5)
        assert not got.is_set()
        write_pointer(lr.registry, "lr", json.dumps({"latest": "v2"}).encode())
        assert got.wait(15), "the watch died on the bad pointer"
        assert seen == [{"latest": "v1"}, {"latest": "v2"}]
        assert caplog.text.count("'../../../etc'") == 1  # logged once, not at every retry
    finally:
        w.stop()


def test_unreadable_history_entries_are_skipped(lr):
    lr.promote("lr", "v2")
    for entry in ({"alias": "../x", "from": "v1", "to": "v2", "who": "a", "at": "b", "action": "promote"},
                  {"alias": "latest", "from": "v2", "to": "../../etc", "who": "a", "at": "b", "action": "promote"},
                  {"alias": "latest", "from": 5, "to": "v1", "who": "a", "at": "b", "action": "promote"},
                  {"alias": "latest", "from": "v2", "to": "v1", "who": 7, "at": "b", "action": "promote"},
                  {"alias": "latest", "from": "v2", "to": "v1", "who": "a", "at": "b", "action": "explode"},
                  {"alias": None}, b"\x00\xffnot json"):
        add_history(lr.registry, "lr", entry)
    history = lr.history("lr")
    assert [(h.alias, h.from_version, h.to_version, h.action) for h in history] == [
        ("latest", None, "v1", "promote"), ("latest", "v1", "v2", "promote")]
    assert lr.rollback("lr").version == "v1"  # the undo stack reads only what mdl wrote


def test_unreadable_replica_records_are_skipped(lr):
    good = json.dumps({"kind": "server", "state": "ready", "loaded": "v1", "alias": "latest",
                       "address": "http://127.0.0.1:1"}).encode()
    bad = {"not-json": b"{oops", "a-list": b"[1, 2]", "alias-list": b'{"alias": ["latest"], "state": "ready"}',
           "loaded-object": b'{"loaded": {"v": 1}, "kind": "server", "address": "http://x"}',
           "address-number": b'{"kind": "server", "address": 8080, "loaded": "v1", "state": "ready"}',
           "not-utf8": b"\xff\xfe", "good": good}
    with hostile_replicas(lr.registry, "lr", bad):
        replicas = lr.replicas("lr")
        assert [(r.id, r.data) for r in replicas] == [("good", json.loads(good))]


def test_invalid_model_names_in_the_registry_are_not_listed(lr):
    add_model_named(lr.registry, "bad name")
    if type(lr.registry).__name__ == "SqliteRegistry":
        add_model_named(lr.registry, "../evil")
    assert lr.registry.list_models() == ["lr"]
    assert [m.name for m in lr.list_models()] == ["lr"]
