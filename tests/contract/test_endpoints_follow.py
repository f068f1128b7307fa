"""``mdl endpoints --watch --out FILE --exec CMD`` (mdl.discovery.follow.Follower) on every backend:
one reload per burst, writes only on change, fail static, hostile records kept out of the file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mdl.discovery.follow import Follower, FollowOptions, read_current, renderer

from ..helpers import make_model, until
from .backdoor import hostile_replicas


@pytest.fixture
def model(client, tmp_path):
    client.push("lr", make_model(tmp_path / "m", b"weights"), version="v1")
    client.promote("lr", "v1")
    return "lr"


def server_record(port: int, state: str = "ready", version: str = "v1", **extra) -> dict:
    return {"kind": "server", "host": "localhost", "pid": 1, "alias": "latest", "desired": version,
            "loaded": version, "state": state, "address": f"http://127.0.0.1:{port}", **extra}


def servers(out: Path) -> list[str]:
    """The names of the servers an HAProxy backend file lists."""
    return [ln.split()[1] for ln in out.read_text().splitlines() if ln.strip().startswith("server ")]


class Running:
    """A Follower on a thread of its own; ``reloads()`` counts the lines its --exec appended."""

    def __init__(self, client, out: Path, fmt: str = "haproxy", **opts) -> None:
        self.count_file = out.with_name("reloads")
        self.events: list[dict] = []
        opts.setdefault("exec_cmd", f"echo reloaded >> {self.count_file}")
        self.follower = Follower(client, "lr", renderer("lr", fmt), FollowOptions(out, **opts), self.events.append)
        self.thread = threading.Thread(target=self.follower.run, daemon=True)
        self.thread.start()

    def reloads(self) -> int:
        text = read_current(self.count_file)
        return len(text.splitlines()) if text else 0

    def named(self, event: str) -> list[dict]:
        return [e for e in self.events if e["event"] == event]

    def stop(self) -> None:
        self.follower.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_a_burst_of_fifty_registrations_gives_one_or_two_reloads(client, make_client, model, tmp_path):
    out = tmp_path / "backend.cfg"
    running = Running(make_client(), out)
    try:
        until(lambda: running.reloads() == 1, 10, what="the first render (no servers yet)")
        assert servers(out) == []
        handles = [client.register_replica("lr", f"r{i:02d}", server_record(20000 + i)) for i in range(50)]
        until(lambda: len(servers(out)) == 50, 20, what="all 50 servers in the file")
        threading.Event().wait(1.5)  # anything still coming would have come by now
        burst = running.reloads() - 1
        assert 1 <= burst <= 2, burst
        assert len(running.named("written")) == running.reloads()
        for h in handles:
            h.close()
        until(lambda: servers(out) == [], 20, what="all 50 gone again")
    finally:
        running.stop()


def test_the_file_changes_only_when_the_rendering_does(client, model, tmp_path):
    out = tmp_path / "backend.cfg"
    h = client.register_replica("lr", "r1", server_record(20001))
    running = Running(client, out)
    try:
        until(lambda: "127.0.0.1:20001" in (read_current(out) or ""), 10, what="the server in the file")
        first = out.stat().st_ino
        h.update(since="2026-12-02T00:00:00Z", error=None)  # a record change the rendering does not show
        threading.Event().wait(1.5)
        assert out.stat().st_ino == first and running.reloads() == 1
        h.update(state="draining")  # leaving: out of the backend at once
        until(lambda: "127.0.0.1:20001" not in out.read_text(), 5, what="the draining server out of the file")
        h.update(state="ready")
        until(lambda: "127.0.0.1:20001" in out.read_text(), 5, what="the server back")
        assert running.reloads() == 3
    finally:
        running.stop()
        h.close()


def test_a_file_already_right_is_neither_written_nor_reloaded(client, model, tmp_path):
    out = tmp_path / "backend.cfg"
    h = client.register_replica("lr", "r1", server_record(20001))
    out.write_text(renderer("lr", "haproxy")([_record("r1", server_record(20001))]).text)
    before = out.stat().st_mtime_ns
    running = Running(client, out)
    try:
        until(lambda: running.named("following"), 5)
        threading.Event().wait(1.0)
        assert out.stat().st_mtime_ns == before and running.reloads() == 0
    finally:
        running.stop()
        h.close()


def test_a_failing_check_keeps_the_old_file_and_a_failing_reload_is_retried(client, model, tmp_path):
    out = tmp_path / "backend.cfg"
    gate = tmp_path / "reload-works"
    running = Running(client, out, check_cmd='! grep -q 20666 "$MDL_ENDPOINTS_FILE"',
                      exec_cmd=f"test -e {gate} && echo reloaded >> {tmp_path / 'reloads'}")
    try:
        until(lambda: running.named("reload-failed"), 10, what="the first reload to fail")
        gate.touch()
        until(lambda: running.reloads() == 1, 10, what="the reload retried until it works")
        good = out.read_text()
        bad = client.register_replica("lr", "r6", server_record(20666))
        until(lambda: running.named("check-failed"), 10, what="the check to refuse the file")
        assert out.read_text() == good and not list(tmp_path.glob(".backend.cfg.*"))
        bad.close()
    finally:
        running.stop()


def test_hostile_replica_records_never_reach_the_file(client, model, tmp_path):
    out = tmp_path / "backend.cfg"
    good = client.register_replica("lr", "ok", server_record(20001))
    hostile = {
        "inject": json.dumps(server_record(20002) | {"address": "http://127.0.0.1:20002\n    server evil 6.6.6.6:80"}),
        "evil server;": json.dumps(server_record(20003)),  # an id no config may quote as is
        "notjson": b"{nope",
        "list": b"[1, 2]",
        "version": json.dumps(server_record(20004) | {"loaded": "v1\nserver x 1.2.3.4:1"}),
    }
    with hostile_replicas(client.registry, "lr", {k: v if isinstance(v, bytes) else v.encode()
                                                  for k, v in hostile.items()}):
        running = Running(client, out)
        try:
            until(lambda: "127.0.0.1:20001" in (read_current(out) or ""), 10, what="the good server in the file")
            text = out.read_text()
            assert "6.6.6.6" not in text and "1.2.3.4" not in text and "evil" not in text
            assert servers(out) == ["ok"]
            assert running.thread.is_alive()
        finally:
            running.stop()
    good.close()


def test_prometheus_file_sd_lists_every_live_server_with_labels(client, model, tmp_path):
    out = tmp_path / "targets.json"
    handles = [client.register_replica("lr", "a", server_record(20001)),
               client.register_replica("lr", "b", server_record(20002, state="failed", error="boom"))]
    running = Running(client, out, fmt="prometheus", exec_cmd=None)
    try:
        until(lambda: read_current(out) and len(json.loads(out.read_text())) == 2, 10, what="both targets")
        groups = json.loads(out.read_text())
        assert [g["targets"] for g in groups] == [["127.0.0.1:20001"], ["127.0.0.1:20002"]]
        assert {g["labels"]["replica"] for g in groups} == {"a", "b"}
        assert all(g["labels"]["model"] == "lr" and g["labels"]["version"] == "v1" for g in groups)
    finally:
        running.stop()
        for h in handles:
            h.close()


def _record(rid: str, data: dict):
    from mdl.fleet import ReplicaRecord
    from mdl.registry.base import Replica

    record = ReplicaRecord.from_replica(Replica(rid, data))
    assert record is not None
    return record
