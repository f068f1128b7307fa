"""Servers as a fleet: discovery with ``mdl endpoints``, ``mdl status``, and ``promote --wait``."""

from __future__ import annotations

import json
import signal

import httpx

from ..helpers import until
from .conftest import infer, push


def _endpoints(mdl, *args: str) -> list[str]:
    r = mdl("endpoints", "iris", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().split()


def test_three_servers_are_discovered_killed_one_disappears_promote_waits_for_all(serve, mdl, iris, backend_env):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    push(mdl, "iris", iris["v2"], "v2")
    servers = [serve("iris") for _ in range(3)]
    for s in servers:
        s.wait_ready("v1")
    urls = sorted(s.url for s in servers)
    until(lambda: _endpoints(mdl) == urls, 30, 0.1,  # each registers "ready" right after its first load
          what=lambda: f"endpoints {urls}, not {_endpoints(mdl)}")
    doc = json.loads(mdl("endpoints", "iris", "-o", "json").stdout)
    assert [e["url"] for e in doc["endpoints"]] == urls
    assert {(e["version"], e["alias"], e["state"]) for e in doc["endpoints"]} == {("v1", "latest", "ready")}
    assert _endpoints(mdl, "--version", "v2") == []
    status = json.loads(mdl("status", "iris", "-o", "json").stdout)
    assert sorted(r["address"] for r in status["replicas"]) == urls
    assert {r["kind"] for r in status["replicas"]} == {"server"} and all(r["matches"] for r in status["replicas"])

    victim = servers.pop(1)
    victim.stop(signal.SIGKILL)  # no chance to deregister: the registry notices the process is gone
    live = sorted(s.url for s in servers)
    until(lambda: _endpoints(mdl) == live, float(backend_env.get("MDL_REGISTRY_TIMEOUT", "10")) * 3 + 10, 0.2,
          what=lambda: f"endpoints {live} without the killed one, not {_endpoints(mdl)}")

    r = mdl("promote", "iris", "v2", "--wait", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert b"2 replicas ready on iris/v2" in r.stderr
    for s in servers:  # --wait returned: every server already answers with v2
        resp = infer(s.url)
        assert resp.status_code == 200 and resp.json()["model_version"] == "v2"
        assert resp.headers["x-model-version"] == "v2"
    assert _endpoints(mdl, "--version", "v2") == live

    # a graceful stop deregisters at once and exits 0
    leaving = servers.pop()
    assert leaving.stop(signal.SIGTERM) == 0
    assert _endpoints(mdl) == [servers[0].url]
    assert any(e["event"] == "stopping" for e in leaving.events)
    r = mdl("endpoints", "iris", "-q")
    assert r.stdout.decode().split() == [servers[0].url]
    assert httpx.get(servers[0].url + "/v2/health/ready").status_code == 200
