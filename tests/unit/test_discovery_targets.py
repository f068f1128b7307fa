"""Replica records as balancer targets: validation of untrusted records, filters, order, duplicates."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from mdl.discovery import targets as targets_module
from mdl.discovery.targets import Target, monitored, parse_address, routable, valid_host
from mdl.errors import InvalidInput
from mdl.fleet import ReplicaRecord
from mdl.registry.base import Replica


def server(rid: str = "r1", address: Any = "http://10.0.0.1:8501", **fields: Any) -> ReplicaRecord:
    values: dict[str, Any] = {"kind": "server", "loaded": "v1", "alias": "latest", "state": "ready", "host": "node1"}
    values.update(fields)
    return ReplicaRecord(id=rid, address=address, **values)


@pytest.fixture(autouse=True)
def _fresh_warnings():
    targets_module._warned.clear()
    yield
    targets_module._warned.clear()


def test_a_ready_server_is_a_target_with_every_field():
    (t,) = routable([server()])
    assert t == Target(
        "r1", "10.0.0.1", 8501, "10.0.0.1:8501", "http://10.0.0.1:8501", "v1", "latest", "ready", "node1"
    )
    assert t.to_dict() == {
        "id": "r1",
        "host": "10.0.0.1",
        "port": 8501,
        "address": "10.0.0.1:8501",
        "url": "http://10.0.0.1:8501",
        "version": "v1",
        "alias": "latest",
        "state": "ready",
        "node": "node1",
    }


def test_ipv6_and_hostnames_and_a_trailing_slash():
    found = routable(
        [
            server("a", "http://[::1]:80"),
            server("b", "http://[2001:DB8:0:0::1]:8080/"),
            server("c", "http://Model-1.example.com:8501/"),
            server("d", "http://localhost:1"),
            server("e", "http://h:65535"),
        ]
    )
    by_id = {t.id: t for t in found}
    assert (by_id["a"].host, by_id["a"].address, by_id["a"].url) == ("::1", "[::1]:80", "http://[::1]:80")
    assert by_id["b"].address == "[2001:db8::1]:8080"  # canonical, so duplicates are found
    assert by_id["c"].host == "model-1.example.com" and by_id["c"].port == 8501
    assert by_id["d"].address == "localhost:1" and by_id["e"].port == 65535


def test_routable_follows_the_fleets_idea_of_serving():
    records = [
        server("ready", "http://h:1", state="ready"),
        server("syncing", "http://h:2", state="syncing"),
        server("failed", "http://h:3", state="failed"),
        server("draining", "http://h:4", state="draining"),
        server("stopping", "http://h:5", state="stopping"),
        server("loading", "http://h:6", state="syncing", loaded=None),
        server("watcher", "http://h:7", kind="watcher"),
        server("noaddr", None),
    ]
    assert [t.id for t in routable(records)] == ["ready", "syncing", "failed"]
    # Prometheus scrapes every live server whatever its state, even one that has not loaded a version
    assert [t.id for t in monitored(records)] == ["ready", "syncing", "failed", "draining", "stopping", "loading"]
    assert next(t for t in monitored(records) if t.id == "loading").version is None


def test_filters_by_alias_and_version():
    records = [
        server("a", "http://h:1", alias="latest", loaded="v1"),
        server("b", "http://h:2", alias="canary", loaded="v2"),
        server("c", "http://h:3", alias=None, desired="v2", loaded="v2"),
    ]
    assert [t.id for t in routable(records, alias="canary")] == ["b"]
    assert [t.id for t in routable(records, version="v2")] == ["b", "c"]
    assert [t.id for t in monitored(records, alias="latest", version="v2")] == []
    assert routable(records, version="v2")[1].alias is None
    with pytest.raises(InvalidInput):
        routable(records, alias="bad alias")
    with pytest.raises(InvalidInput):
        monitored(records, version="../v1")


def test_sorted_by_address_then_id():
    records = [
        server("z", "http://b:1"),
        server("y", "http://a:2"),
        server("x", "http://a:10"),
        server("w", "http://[::1]:1"),
    ]
    assert [t.address for t in routable(records)] == ["[::1]:1", "a:10", "a:2", "b:1"]
    assert routable(records) == routable(list(reversed(records)))


def test_a_duplicate_address_is_listed_once_for_the_first_id(caplog):
    records = [server("r2", "http://h:1"), server("r1", "http://H:1/"), server("r3", "http://h:2")]
    with caplog.at_level(logging.WARNING, logger="mdl.discovery"):
        found = routable(records)
        routable(records)
    assert [(t.id, t.address) for t in found] == [("r1", "h:1"), ("r3", "h:2")]
    dup = [r for r in caplog.records if "already listed" in r.getMessage()]
    assert len(dup) == 1 and "'r2'" in dup[0].getMessage()  # warned once, not on every render
    # the same address in IPv6 spellings is the same server
    assert [t.id for t in routable([server("a", "http://[::1]:80"), server("b", "http://[0:0::1]:80")])] == ["a"]


BAD_ADDRESSES = [
    "http://h:0",
    "http://h:65536",
    "http://h:-1",
    "http://h:99999",
    "http://h:080",
    "http://h",
    "http://h:",
    "http://user@h:80",
    "http://user:pw@h:80",
    "http://h:80/x",
    "http://h:80//",
    "http://h:80?x=1",
    "http://h:80#f",
    "https://h:443",
    "HTTP://h:80",
    "ftp://h:21",
    "h:80",
    "//h:80",
    "http:/h:80",
    " http://h:80",
    "http://h:80 ",
    "http://h :80",
    "http://h:80\n",
    "http://h:80\nserver evil 6.6.6.6:80",
    "http://h:80\r\n",
    "http://h:80;",
    "http://h;evil:80",
    "http://h{:80",
    "http://h}:80",
    "http://h#:80",
    "http://'h':80",
    'http://"h":80',
    "http://h\x00:80",
    "http://h\t:80",
    "http://-h:80",
    "http://h-:80",
    "http://h..x:80",
    "http://.h:80",
    "http://h_x:80",
    "http://999.1.1.1:80",
    "http://1.2.3:80",
    "http://01.2.3.4:80",
    "http://::1:80",
    "http://[::1]80",
    "http://[h]:80",
    "http://[fe80::1%eth0]:80",
    "http://[1.2.3.4]:80",
    "http://[:::]:80",
    "http://hоst:80",  # Cyrillic о
    "http://h\u200b:80",
    "http://ｈ:80",
    "http://h:８０",
    "http://h:\u0668\u0660",  # zero width, full width, Arabic digits
    "http://" + "a" * 10_000 + ":80",
    "http://" + ("a" * 63 + ".") * 4 + "com:80",
    "http://" + "a" * 64 + ":80",
    "",
    "http://",
    None,
    80,
    8.0,
    b"http://h:80",
    ["http://h:80"],
    {"http://h:80": 1},
    True,
]


@pytest.mark.parametrize("address", BAD_ADDRESSES, ids=range(len(BAD_ADDRESSES)))
def test_a_hostile_address_is_skipped_not_raised(address, caplog):
    with caplog.at_level(logging.WARNING, logger="mdl.discovery"):
        assert routable([server("bad", address), server("good", "http://h:1")]) == routable(
            [server("good", "http://h:1")]
        )
        assert [t.id for t in monitored([server("bad", address, state="draining")])] == []
    assert parse_address(address) is None
    assert all("\n" not in r.getMessage() for r in caplog.records)


BAD_IDS = [
    "",
    "-r",
    ".r",
    "_r",
    "r\n",
    "r\nserver evil 6.6.6.6:80 check",
    "r\r",
    "r;",
    "r{",
    "r}",
    "r#",
    "r'",
    'r"',
    "r x",
    "r\t",
    "r/x",
    "r\x00",
    "rо",
    "ｒ",
    "r" * 256,
    "r" * 10_000,
    None,
    7,
    ["r"],
]


@pytest.mark.parametrize("rid", BAD_IDS, ids=range(len(BAD_IDS)))
def test_a_hostile_id_is_skipped(rid, caplog):
    with caplog.at_level(logging.WARNING, logger="mdl.discovery"):
        assert routable([server(rid)]) == [] and monitored([server(rid)]) == []
    assert caplog.records and all("\n" not in r.getMessage() and len(r.getMessage()) < 200 for r in caplog.records)


def test_ids_up_to_255_safe_characters_pass():
    for rid in ("r", "R0", "host-1:8501.pid_7", "a" * 255, "0"):
        assert [t.id for t in routable([server(rid)])] == [rid]


HOSTILE_NAMES = [
    "v1\n",
    "v1\nserver evil 6.6.6.6:80",
    "v 1",
    "v1;",
    "v{1}",
    "v#1",
    "'v1'",
    '"v1"',
    "v1\r",
    "../v1",
    "-v1",
    "vе1",
    "v" * 10_000,
    5,
    ["v1"],
    "",
]


@pytest.mark.parametrize("value", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_a_hostile_version_or_alias_skips_the_record(value):
    assert routable([server(loaded=value)]) == []
    assert monitored([server(loaded=value)]) == []
    assert routable([server(alias=value)]) == []
    assert monitored([server(alias=value)]) == []


@pytest.mark.parametrize("value", [*HOSTILE_NAMES, "a" * 254, "-h", "h_1", "node 1", "1.2.3", "hоst"])
def test_a_hostile_node_reads_as_none(value):
    (t,) = routable([server(host=value)])
    assert t.node is None and t.id == "r1"


@pytest.mark.parametrize("value", [*HOSTILE_NAMES, "Ready", "ready\n", "réady", "a" * 33, "ready state"])
def test_a_hostile_state_reads_as_none(value):
    (t,) = monitored([server(state=value)])
    assert t.state is None and t.id == "r1"


def test_valid_states_and_nodes_are_kept():
    (t,) = monitored([server(state="draining", host="gpu-07.dc1.example")])
    assert (t.state, t.node) == ("draining", "gpu-07.dc1.example")
    assert monitored([server(state="a" * 33)])[0].state is None
    assert routable([server(host="10.1.2.3")])[0].node == "10.1.2.3"
    assert routable([server(host="fe80::1")])[0].node == "fe80::1"


def test_valid_host():
    assert valid_host("Example.COM") == "example.com"
    assert valid_host("::ffff:1.2.3.4") == "::ffff:102:304"
    assert valid_host("a" * 63) == "a" * 63
    for bad in ("a" * 64, "", None, "a." * 127 + "aa", "x.", "1.2.3.256", "x y", "fe80::1%lo", 3):
        assert valid_host(bad) is None, bad


def test_records_read_from_a_hostile_registry_never_raise():
    """Through ReplicaRecord.from_replica, as Fleet reads them: non-string fields read as None."""
    docs: list[Any] = [
        {"kind": "server", "address": 8501, "loaded": "v1", "state": "ready"},
        {"kind": "server", "address": "http://h:1", "loaded": {"v": 1}, "state": "ready"},
        {"kind": "server", "address": "http://h:2", "loaded": "v1", "state": ["ready"]},
        {"kind": ["server"], "address": "http://h:3", "loaded": "v1", "state": "ready"},
        {"kind": "server", "address": "http://h:4", "loaded": "v1", "state": "ready", "alias": 3, "host": None},
        {"kind": "server", "address": "http://h:5", "loaded": "v1", "state": "ready", "extra": "x" * 10_000},
    ]
    records = [ReplicaRecord.from_replica(Replica(f"r{i}", d)) for i, d in enumerate(docs)]
    assert all(r is not None for r in records)
    real = [r for r in records if r is not None]
    assert [t.id for t in routable(real)] == ["r4", "r5"]
    assert [t.id for t in monitored(real)] == ["r1", "r2", "r4", "r5"]


def test_warnings_are_bounded(monkeypatch):
    monkeypatch.setattr(targets_module, "_MAX_WARNED", 10)
    routable([server(f"bad id {i}") for i in range(50)])
    assert len(targets_module._warned) <= 10


def test_targets_are_immutable_and_records_untouched():
    record = server()
    (t,) = routable([record])
    with pytest.raises(AttributeError):
        t.id = "x"  # type: ignore[misc]
    assert record == replace(record)
