"""``mdl endpoints --watch`` as a process: Prometheus HTTP service discovery on ``--listen``, SIGHUP, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

import httpx

from ..helpers import MDL, make_model, until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def test_listen_serves_prometheus_http_sd_that_follows_the_fleet(client, backend_env, tmp_path):
    client.push("lr", make_model(tmp_path / "m", b"w"), version="v1")
    client.promote("lr", "v1")
    port = _free_port()
    proc = subprocess.Popen([MDL, "endpoints", "lr", "-o", "prometheus", "--watch", "--listen", f"127.0.0.1:{port}",
                             "--json"], env={**os.environ, **backend_env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    sd = f"http://127.0.0.1:{port}/sd"
    handle = None
    try:
        until(lambda: (r := _get(sd)) is not None and r.status_code == 200 and r.json() == [], 20,
              what="an empty target list on /sd")
        assert _get(f"http://127.0.0.1:{port}/readyz").json()["ready"] is True
        handle = client.register_replica("lr", "r1", {"kind": "server", "host": "box", "alias": "latest",
                                                      "loaded": "v1", "state": "syncing",
                                                      "address": "http://127.0.0.1:20001"})
        groups = until(lambda: (r := _get(sd)) is not None and r.json(), 10, what="the server on /sd")
        assert groups == [{"targets": ["127.0.0.1:20001"],
                           "labels": {"model": "lr", "version": "v1", "alias": "latest", "host": "box",
                                      "replica": "r1"}}]
        proc.send_signal(signal.SIGHUP)  # renders again: the same text, nothing changes
        handle.close()
        handle = None
        until(lambda: (r := _get(sd)) is not None and r.json() == [], 10, what="the server gone from /sd")
    finally:
        if handle is not None:
            handle.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    events = [json.loads(line)["event"] for line in out.decode().splitlines()]
    assert events[0] == "following" and events.count("rendered") == 3, events
    assert b"Traceback" not in err
