"""watch and serve say why they are stuck: ``--once`` in one ``error:``/``hint:`` pair with the exit code of
the cause, the long-running forms in a ``waiting`` event with the reason and the next command; and under
``-o json`` every line on stdout is one JSON object (issue 15, items 1 and 2). The real binary."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading

import pytest

from ..helpers import MDL, make_model

NOT_FOUND, INTEGRITY = 3, 8


def lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def json_lines(data: bytes) -> list[dict]:
    """Every line of ``data`` as a JSON object (fails on the first line that is not one)."""
    docs = [json.loads(line) for line in lines(data)]
    assert all(isinstance(d, dict) for d in docs), docs
    return docs


@pytest.fixture
def lr(client, tmp_path):
    """A model with one version, v1, that no alias names."""
    client.push("lr", make_model(tmp_path / "s1", b"model 1"), version="v1")
    return client


@pytest.mark.parametrize(
    "args,error,hint",
    [
        (["nope"], "model 'nope' does not exist", "see the models with: mdl list"),
        (["nope", "-V", "v1"], "model 'nope' does not exist", "see the models with: mdl list"),
        (["lr"], "alias 'latest' of lr is not set", "promote a version: mdl promote lr VERSION"),
        (["lr", "-a", "canary"], "alias 'canary' of lr is not set",
         "promote a version: mdl promote lr VERSION --alias canary"),
        (["lr", "-V", "v9"], "version lr/v9 does not exist", "see the versions of lr with: mdl list lr"),
    ],
    ids=["model", "model-pinned", "alias", "alias-canary", "version"],
)
def test_once_names_what_is_missing_and_exits_3(run_mdl, lr, tmp_path, args, error, hint):
    r = run_mdl("watch", *args, "-d", str(tmp_path / "d"), "--once")
    assert r.returncode == NOT_FOUND, r.stderr
    assert lines(r.stderr) == [f"error: {error}", f"hint: {hint}"]
    assert r.stdout == b""


def test_once_json_failure_keeps_stdout_json_and_says_why(run_mdl, lr, tmp_path):
    r = run_mdl("watch", "lr", "-d", str(tmp_path / "d"), "--once", "-o", "json")
    assert r.returncode == NOT_FOUND
    assert lines(r.stderr) == [
        "error: alias 'latest' of lr is not set",
        "hint: promote a version: mdl promote lr VERSION",
    ]
    [waiting] = json_lines(r.stdout)
    assert {k: waiting[k] for k in ("event", "model", "reason", "hint", "serving")} == {
        "event": "waiting",
        "model": "lr",
        "reason": "alias 'latest' of lr is not set",
        "hint": "promote a version: mdl promote lr VERSION",
        "serving": None,
    }


def test_once_json_ends_with_a_synced_event_holding_the_path(run_mdl, lr, tmp_path):
    lr.promote("lr", "v1")
    d = tmp_path / "d"
    r = run_mdl("watch", "lr", "-d", str(d), "--once", "-o", "json")
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    assert [e["event"] for e in events] == ["downloading", "downloaded", "swapped", "synced"]
    assert {k: events[-1][k] for k in ("model", "version", "path")} == {
        "model": "lr",
        "version": "v1",
        "path": str(d / "current"),
    }
    assert r.stderr == b""
    text = run_mdl("watch", "lr", "-d", str(d), "--once")  # text mode: the path, alone, on stdout
    assert (text.returncode, lines(text.stdout), text.stderr) == (0, [str(d / "current")], b"")


def test_once_on_a_corrupt_version_exits_8_with_its_reason(run_mdl, lr, tmp_path):
    from ..helpers import write_stored

    write_stored(lr, "lr", "v1", "model.pkl", b"tampered")
    lr.promote("lr", "v1")
    r = run_mdl("watch", "lr", "-d", str(tmp_path / "d"), "--once")
    assert r.returncode == INTEGRITY, r.stderr
    bad = "lr/v1/model.pkl does not match its manifest (sha256 d121be310300…, expected cd36b49d7b2a…)"
    hint = "the stored copy is corrupt: push the version again or pull another one"
    log = [ln.split(" ", 1)[1] for ln in lines(r.stderr)[:-2]]  # without the timestamps
    assert log == [
        "lr downloading version=v1 bytes=7",
        f"lr failed version=v1 error={bad} hint={hint} permanent=True retry=when the pointer moves, or on SIGHUP",
    ]
    assert lines(r.stderr)[-2:] == [f"error: lr: no verified version in {tmp_path / 'd'}: v1: {bad}", f"hint: {hint}"]


def test_once_with_the_registry_unreachable_exits_6_and_says_where(run_mdl, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    registry = tmp_path / "file" / "registry.db"
    r = run_mdl("watch", "lr", "-d", str(tmp_path / "d"), "--once", env={"MDL_REGISTRY_URL": f"sqlite://{registry}"})
    assert r.returncode == 6, r.stderr
    why = f"cannot open registry '{registry}': [Errno 17] File exists: '{tmp_path / 'file'}'"
    assert lines(r.stderr)[-2:] == [
        f"error: lr: no verified version in {tmp_path / 'd'}: {why}",
        "hint: check registry.url and that its directory is writable",
    ]
    event = lines(r.stderr)[0].split(" ", 1)[1]
    assert event.startswith(f"lr registry-unavailable error={why} hint=check registry.url and that its directory")


class Events:
    """A long-running ``mdl watch|serve ... -o json``: its stdout lines, each parsed as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([MDL, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.seen: list[dict] = []
        self._q: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(json.loads(line))  # a line that is not JSON fails the test (next() sees None)
        self._q.put(None)

    def next(self, event: str, timeout: float = 30.0) -> dict:
        while True:
            doc = self._q.get(timeout=timeout)
            assert doc is not None, f"exited {self.proc.wait()} before {event}: {self.seen}"
            self.seen.append(doc)
            if doc["event"] == event:
                return doc

    def stop(self) -> tuple[int, bytes]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@pytest.fixture
def follow(backend_env):
    started: list[Events] = []

    def start(*args: str) -> Events:
        started.append(Events(list(args), {**os.environ, **backend_env}))
        return started[-1]

    yield start
    for e in started:
        if e.proc.poll() is None:
            e.stop()


def test_watch_waits_for_a_model_that_does_not_exist_then_follows_it(follow, client, tmp_path):
    d = tmp_path / "d"
    w = follow("watch", "nope", "-d", str(d), "-o", "json")
    waiting = w.next("waiting")
    assert (waiting["reason"], waiting["hint"]) == ("model 'nope' does not exist", "see the models with: mdl list")
    client.push("nope", make_model(tmp_path / "s", b"model 1"), version="v1")
    client.promote("nope", "v1")
    assert w.next("swapped")["version"] == "v1"
    assert [e["event"] for e in w.seen].count("waiting") == 1  # said once, not on every heartbeat
    rc, _ = w.stop()
    assert rc == 0 and os.readlink(d / "current") == "versions/v1"


def test_watch_says_an_unset_alias_once_and_in_readyz(follow, lr, tmp_path):
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w = follow("watch", "lr", "-d", str(tmp_path / "d"), "-o", "json", "--health-port", str(port))
    waiting = w.next("waiting")
    assert (waiting["reason"], waiting["hint"]) == (
        "alias 'latest' of lr is not set",
        "promote a version: mdl promote lr VERSION",
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert answer.value.code == 503
    assert json.loads(answer.value.read()) == {
        "ready": False,
        "version": None,
        "state": "waiting",
        "error": "alias 'latest' of lr is not set",
        "hint": "promote a version: mdl promote lr VERSION",
    }
    lr.promote("lr", "v1")
    assert w.next("swapped")["version"] == "v1"
    rc, _ = w.stop()
    assert rc == 0


def test_serve_of_a_model_that_does_not_exist_says_so(follow, tmp_path):
    s = follow("serve", "nope", "--port", "0", "-o", "json", "--cache", str(tmp_path / "cache"))
    s.next("listening")
    waiting = s.next("waiting")
    assert (waiting["reason"], waiting["hint"]) == ("model 'nope' does not exist", "see the models with: mdl list")
    rc, _ = s.stop()
    assert rc == 0
