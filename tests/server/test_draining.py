"""Draining: a server leaves the registry's list before it stops answering (SIGTERM, --swap resource),
and ``--max-unavailable`` keeps a resource-swapping fleet from going out of rotation all at once."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest

from ..helpers import until
from .conftest import infer, push


def _listed(mdl) -> dict[str, str]:
    """URL -> state of the servers ``mdl status`` shows."""
    doc = json.loads(mdl("status", "iris", "-o", "json").stdout)
    return {r["address"]: r["state"] for r in doc["replicas"]}


def _endpoints(mdl) -> list[str]:
    return mdl("endpoints", "iris").stdout.decode().split()


def test_sigterm_deregisters_then_keeps_answering_for_the_drain_delay(serve, mdl, iris):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    s = serve("iris", "--drain-delay", "2")
    s.wait_ready("v1")
    until(lambda: _endpoints(mdl) == [s.url], 10, what="the server listed")
    started = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    s.wait_event(lambda e: e["event"] == "draining")
    assert _endpoints(mdl) == []  # out of every list first...
    assert httpx.get(s.url + "/readyz").status_code == 503  # ...health checks agree...
    resp = infer(s.url)  # ...and requests are still answered
    assert resp.status_code == 200 and resp.json()["model_version"] == "v1"
    assert s.proc.wait(20) == 0
    took = time.monotonic() - started
    assert 2.0 <= took < 8.0, took
    drained = next(e for e in s.events if e["event"] == "draining")
    assert (drained["seconds"], drained["reason"]) == (2.0, "stopping")
    kinds = [e["event"] for e in s.events]
    assert kinds.index("stopping") < kinds.index("draining") < kinds.index("stopped")


def test_a_second_sigterm_cuts_the_drain_short(serve, mdl, iris):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    s = serve("iris", "--drain-delay", "60")
    s.wait_ready("v1")
    s.proc.send_signal(signal.SIGTERM)
    s.wait_event(lambda e: e["event"] == "draining")
    started = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(20) == 0
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_server_that_never_registered_stops_without_draining(serve, mdl, iris):
    s = serve("nosuchmodel", "--drain-delay", "60")
    s.wait_event(lambda e: e["event"] == "waiting")
    started = time.monotonic()
    assert s.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    assert not any(e["event"] == "draining" for e in s.events)


def test_resource_swaps_drain_first_and_take_turns_across_the_fleet(serve, mdl, iris):
    """Two servers with --swap resource --max-unavailable 1: on promote each reports draining (and
    answers 503 on /readyz) before it unloads, and never both at once."""
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    push(mdl, "iris", iris["v2"], "v2")
    servers = [serve("iris", "--swap", "resource", "--max-unavailable", "1", "--drain-delay", "1") for _ in range(2)]
    for s in servers:
        s.wait_ready("v1")
    seen: list[tuple[float, dict[str, str]]] = []
    ready: list[tuple[int, int]] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            seen.append((time.monotonic(), _listed(mdl)))
            ready.append(tuple(httpx.get(s.url + "/readyz", timeout=5).status_code for s in servers))  # type: ignore[arg-type]

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    try:
        r = mdl("promote", "iris", "v2", "--wait", "--timeout", "60")
        assert r.returncode == 0, r.stderr
    finally:
        stop.set()
        t.join(30)
    states = [st for _, st in seen]
    assert any("draining" in st.values() for st in states), states  # each said so before unloading
    assert not any(list(st.values()).count("draining") > 1 for st in states), states  # one at a time
    assert (503, 503) not in ready, ready  # never both out of rotation
    for s in servers:
        kinds = [e["event"] for e in s.events]
        assert kinds.index("draining") < kinds.index("unloaded"), kinds
        drained = next(e for e in s.events if e["event"] == "draining")
        assert (drained["reason"], drained["version"]) == ("--swap resource", "v1")
        assert infer(s.url).json()["model_version"] == "v2"
