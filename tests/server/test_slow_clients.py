"""Hostile HTTP clients of ``mdl serve``: stalled connections are closed after ``--read-timeout``, connections
past ``--max-connections`` get a fast 503, and protocol garbage gets a 400 — each answer ``{"error": ...}``.

Raw sockets on loopback, since an HTTP client library would never send these. Every server runs twice: on
uvicorn's httptools protocol, and on its h11 fallback (httptools hidden from the server process).
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ..helpers import until
from .conftest import INFER_BODY, REPO, ServerProc, clean_env

READ_TIMEOUT = 2.0
INFER = json.dumps(INFER_BODY).encode()


def _head(extra: str = "", length: int | None = None) -> bytes:
    cl = f"Content-Length: {length}\r\n" if length is not None else ""
    return (f"POST /v2/models/iris/infer HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{cl}{extra}"
            "\r\n").encode()


@pytest.fixture(scope="module")
def home(mdl_cmd, iris, tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile")
    env = clean_env({"MDL_STORAGE_URL": f"file://{home}/models", "MDL_REGISTRY_URL": f"sqlite://{home}/registry.db"},
                    home)
    r = subprocess.run([*mdl_cmd, "push", "iris", str(iris["v1"]), "--version", "v1", "--promote"], env=env,
                       cwd=REPO, capture_output=True)
    assert r.returncode == 0, r.stderr
    return home, env


def _start(mdl_cmd, home, impl: str, *args: str) -> ServerProc:
    root, env = home
    if impl == "h11":  # an httptools that cannot be imported: the server must fall back to uvicorn's h11 protocol
        hide = root / "no-httptools" / "httptools"
        hide.mkdir(parents=True, exist_ok=True)
        (hide / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
        env = {**env, "PYTHONPATH": str(hide.parent)}
    s = ServerProc([*mdl_cmd, "serve", "iris", "--port", "0", "-o", "json", *args], env,
                   root / f"serve-{impl}-{len(args)}-{time.monotonic_ns()}.log")
    s.wait_ready("v1")
    loaded = Path(f"/proc/{s.proc.pid}/maps").read_text()
    assert ("httptools" in loaded) == (impl == "httptools"), f"{impl} is not the protocol in use"
    return s


@pytest.fixture(scope="module", params=["httptools", "h11"])
def impl(request):
    return request.param


@pytest.fixture(scope="module")
def strict(mdl_cmd, home, impl):
    """A server with ``--read-timeout 2``."""
    s = _start(mdl_cmd, home, impl, "--read-timeout", str(READ_TIMEOUT))
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def capped(mdl_cmd, home, impl):
    """A server with ``--max-connections 4``."""
    s = _start(mdl_cmd, home, impl, "--max-connections", "4")
    yield s
    assert s.stop() == 0


def _connect(url: str) -> socket.socket:
    u = urlsplit(url)
    assert u.port is not None, url
    return socket.create_connection((u.hostname, u.port), timeout=5)


def _response(sock: socket.socket, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Read one response (Content-Length framed) from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    n = int(headers["content-length"])
    while len(body) < n:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of a response body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def _wait_closed(socks: dict[str, socket.socket], limit: float) -> dict[str, tuple[float, bytes]]:
    """For each socket: (when the server closed it, on the monotonic clock; what it sent first). At most
    ``limit`` seconds."""
    start = time.monotonic()
    sel = selectors.DefaultSelector()
    got: dict[str, bytes] = {}
    for name, s in socks.items():
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, name)
        got[name] = b""
    closed: dict[str, tuple[float, bytes]] = {}
    while len(closed) < len(socks) and time.monotonic() - start < limit:
        for key, _ in sel.select(timeout=0.1):
            name = key.data
            try:
                chunk = key.fileobj.recv(65536)  # type: ignore[union-attr]
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[name] += chunk
                continue
            closed[name] = (time.monotonic(), got[name])
            sel.unregister(key.fileobj)
    sel.close()
    return closed


def test_stalled_clients_are_closed_after_the_read_timeout(strict, impl):
    url = strict.url
    stalls = {
        "idle after connect": b"",
        "partial request line": b"POST /v2/models/iris/inf",
        "partial headers": b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: t\r\nContent-Type: appli",
        "partial body": _head(length=len(INFER)) + INFER[:20],
        "partial chunked body": _head("Transfer-Encoding: chunked\r\n") + b"%x\r\n" % len(INFER) + INFER[:20],
    }
    socks, stalled_at = {}, {}
    # a kept-alive connection that answered one request, then stalls in the next one's headers
    kept = _connect(url)
    kept.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
    assert _response(kept)[0] == 200
    for name, data in stalls.items():
        socks[name] = _connect(url)
        socks[name].sendall(data)
        stalled_at[name] = time.monotonic()
    kept.sendall(b"GET /v2/health/li")
    socks["partial headers after a kept-alive request"] = kept
    stalled_at["partial headers after a kept-alive request"] = time.monotonic()
    try:
        # the stalled clients do not hold up anyone else
        t0 = time.monotonic()
        r = httpx.post(url + "/v2/models/iris/infer", json=INFER_BODY, timeout=5)
        assert r.status_code == 200 and r.json()["model_version"] == "v1"
        assert time.monotonic() - t0 < 1
        closed = _wait_closed(socks, READ_TIMEOUT + 6)
    finally:
        for s in socks.values():
            s.close()
    assert set(closed) == set(socks), f"still open after {READ_TIMEOUT + 6} s: {set(socks) - set(closed)}"
    for name, (at, data) in closed.items():
        seconds = at - stalled_at[name]  # the body deadlines run 1 to 1.25 times the read timeout
        assert READ_TIMEOUT - 0.1 <= seconds < READ_TIMEOUT + 4, (name, seconds)
        if "body" in name:  # the request was routed: it gets an answer before the connection closes
            status, _, body = _response_of(data)
            assert status == 408, (name, data)
            assert "not received within 2 s" in json.loads(body)["error"], body
        else:
            assert data == b"", (name, data)
    r = httpx.post(url + "/v2/models/iris/infer", json=INFER_BODY, timeout=5)
    assert r.status_code == 200
    assert 'code="408"' in httpx.get(url + "/metrics").text


def _response_of(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
    assert headers["content-type"] == "application/json" and headers["connection"] == "close", headers
    return int(status_line.split()[1]), headers, body


def test_a_connection_past_the_cap_gets_a_fast_503(capped):
    url = capped.url
    held = []
    try:
        for _ in range(4):  # each answered one request, so the server holds it as an open connection
            s = _connect(url)
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _response(s)[0] == 200
            held.append(s)
        for _ in range(2):
            t0 = time.monotonic()
            extra = _connect(url)
            extra.sendall(_head(length=len(INFER)) + INFER)
            status, headers, body = _response(extra)
            assert time.monotonic() - t0 < 1
            assert status == 503 and headers["content-type"] == "application/json", (status, headers)
            assert headers["connection"] == "close" and headers["retry-after"] == "1"
            assert json.loads(body) == {"error": "too many connections: this server takes at most 4 at a time"}
            extra.settimeout(5)
            assert extra.recv(1) == b""  # and closed
            extra.close()
        # a held connection is still served
        held[0].sendall(_head(length=len(INFER)) + INFER)
        assert _response(held[0])[0] == 200
    finally:
        for s in held:
            s.close()

    def served() -> httpx.Response | None:
        r = httpx.post(url + "/v2/models/iris/infer", json=INFER_BODY, timeout=5)
        return r if r.status_code == 200 else None

    # the server sees the closes at once; allow for the scheduler anyway
    r = until(served, 5, what="a new connection to be served once the held ones closed")
    assert r.status_code == 200 and r.json()["model_version"] == "v1"


GARBAGE = {
    "negative content-length": _head(length=-1) + INFER,
    "content-length not a number": _head("Content-Length: 12abc\r\n") + INFER,
    "garbage request line": b"\x16\x03\x01\x02\x00 hello there\r\n\r\n",
    "header without a colon": b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n",
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_protocol_garbage_gets_a_json_400(strict, name):
    s = _connect(strict.url)
    try:
        s.sendall(GARBAGE[name])
        status, headers, body = _response(s)
        assert status == 400, (status, body)
        assert headers["content-type"] == "application/json" and headers["connection"] == "close"
        assert json.loads(body)["error"].startswith("invalid HTTP request"), body
        assert s.recv(1) == b""
    finally:
        s.close()
    assert httpx.post(strict.url + "/v2/models/iris/infer", json=INFER_BODY, timeout=5).status_code == 200


def test_an_endless_head_is_refused_past_its_limit(strict, impl):
    """Headers without end: httptools would keep them all in memory. Past 64 KiB the answer is a 431
    (h11 refuses at its own 16 KiB, as a 400), and the connection is closed."""
    s = _connect(strict.url)
    try:
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n" + b"".join(
            f"X-Pad-{i}: {'a' * 1000}\r\n".encode() for i in range(70)))  # ~70 KiB, never ending
        status, headers, body = _response(s)
        assert (status, headers["content-type"]) == ((431 if impl == "httptools" else 400), "application/json")
        assert json.loads(body)["error"], body
        assert s.recv(1) == b""
    finally:
        s.close()
    assert httpx.get(strict.url + "/v2/health/live", timeout=5).status_code == 200


def test_help_names_the_limits_and_the_pickle_risk(mdl_cmd):
    r = subprocess.run([*mdl_cmd, "serve", "--help"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "--read-timeout" in text and "--max-connections" in text
    assert "loading a pickle or joblib model runs code" in text
