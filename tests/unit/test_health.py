"""The sidecars' small HTTP endpoint (mdl/health.py): its clients are untrusted."""

from __future__ import annotations

import socket
import time

import httpx

from mdl import health


def test_a_client_that_sends_nothing_is_dropped_and_documents_are_served(monkeypatch):
    monkeypatch.setattr(health._Handler, "timeout", 0.5)
    server = health.bind_health("127.0.0.1", 0).start(
        live=lambda: True,
        ready=lambda: {"ready": True},
        documents={"/sd": lambda: (200, "application/json", b"[]\n")},
    )
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        silent = socket.create_connection(server.server_address[:2])  # a slowloris: connects, says nothing
        started = time.monotonic()
        silent.settimeout(5)
        assert silent.recv(1) == b""  # closed by the server...
        assert time.monotonic() - started < 3  # ...after its read timeout, not never
        silent.close()
        r = httpx.get(url + "/sd")
        assert (r.status_code, r.headers["content-type"], r.text) == (200, "application/json", "[]\n")
        assert httpx.get(url + "/readyz").json() == {"ready": True}
        assert httpx.get(url + "/nope").status_code == 404
        assert httpx.post(url + "/sd").status_code == 501  # GET only
    finally:
        server.shutdown()
        server.server_close()
