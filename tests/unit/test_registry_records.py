"""The one parser of what a registry holds (pointer documents, history entries, replica records):
pure logic, so plain unit tests. Both backends use it (see tests/contract/test_hostile_registry.py)."""

from __future__ import annotations

import pytest

from mdl.errors import IntegrityError
from mdl.registry.base import HistoryEntry, parse_history_entry, parse_pointer, parse_replica_data


@pytest.mark.parametrize("data,aliases", [
    (b'{"latest": "v1", "canary": "20261127T171300Z"}', {"latest": "v1", "canary": "20261127T171300Z"}),
    ('{"latest": "v1"}', {"latest": "v1"}),
    (b"{}", {}),
    (b"", {}),
    (b"  \n", {}),
    (None, {}),
])
def test_good_pointer_documents(data, aliases):
    assert parse_pointer(data, "lr", "here") == aliases


@pytest.mark.parametrize("data,why", [
    (b"nope", "is not valid JSON"),
    (b"\xff\xfe\xfd", "is not valid JSON"),
    (b"[]", "is not a JSON object of alias -> version (a JSON list)"),
    (b"null", "is not a JSON object"),
    (b'"latest"', "(a JSON str)"),
    (b'{"latest": 1}', "maps alias 'latest' to 1, not a version id"),
    (b'{"latest": true}', "maps alias 'latest' to True"),
    (b'{"latest": ["v1"]}', "maps alias 'latest' to ['v1']"),
    (b'{"latest": "a/b"}', "an invalid version id 'a/b'"),
    (b'{"latest": ".."}', "an invalid version id '..'"),
    (b'{"latest": "v1\\n"}', "an invalid version id 'v1\\n'"),
    (b'{"latest": "' + b"x" * 129 + b'"}', "an invalid version id 'xxxx"),
    (b'{"a b": "v1"}', "holds an invalid alias 'a b'"),
    (b"[" * 50000, "is not valid JSON"),
    (7, "is not a JSON document (a stored int)"),
])
def test_bad_pointer_documents_are_integrity_errors_naming_the_model(data, why):
    with pytest.raises(IntegrityError) as err:
        parse_pointer(data, "lr", "row 'lr' of table pointers", hint="fix it")
    assert err.value.message.startswith("the pointer of 'lr' (row 'lr' of table pointers) ")
    assert why in err.value.message and err.value.hint == "fix it" and err.value.exit_code == 8
    assert "\n" not in err.value.message and len(err.value.message) < 300


def test_history_entries_are_what_mdl_writes_or_nothing():
    ok = {"alias": "latest", "from": None, "to": "v1", "who": "me@h", "at": "2026-01-01T00:00:00Z",
          "action": "promote"}
    assert parse_history_entry(3, ok) == HistoryEntry(3, "latest", None, "v1", "me@h", "2026-01-01T00:00:00Z",
                                                      "promote")
    assert parse_history_entry(4, {"alias": "latest", "from": "v1", "to": None}) == HistoryEntry(
        4, "latest", "v1", None, "", "", "promote")  # what older entries may lack has defaults
    for bad in (None, [], "x", {**ok, "alias": "../x"}, {**ok, "alias": 1}, {**ok, "to": "../../etc"},
                {**ok, "from": 5}, {**ok, "who": None}, {**ok, "at": []}, {**ok, "action": "delete"}):
        assert parse_history_entry(1, bad) is None, bad
    assert parse_history_entry(None, ok) is None and parse_history_entry(True, ok) is None


def test_replica_records_are_objects_with_string_fields_or_nothing():
    assert parse_replica_data(b'{"state": "ready", "pid": 7, "extra": [1]}') == {"state": "ready", "pid": 7,
                                                                                 "extra": [1]}
    assert parse_replica_data(b"") == {}
    for bad in (b"{", b"[]", b"null", b"\xff", 5, None, b'{"alias": ["x"]}', b'{"loaded": 1}',
                b'{"address": {"u": 1}}', b'{"state": true}'):
        assert parse_replica_data(bad) is None, bad
