"""The WebHDFS HTTP layer against real sockets on loopback: what failed, and whether it was sent."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler

import pytest

from mdl.storage.http import Http, HttpError, body_reader, release

from ..helpers import http_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as WebHDFS servers do
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, dict(self.headers), body))
        out = b"x" * 100_000 if self.path.startswith("/big") else b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    _Handler.seen = []
    with http_server(_Handler) as srv:
        yield f"http://127.0.0.1:{srv.server_address[1]}"


def test_params_go_only_on_urls_built_from_a_path(server):
    web = Http(params={"user.name": "svc"}, headers={"Accept-Encoding": "identity"})
    assert web.request("GET", server + "/webhdfs/v1/m", params={"op": "LISTSTATUS"}).json() == {"ok": True}
    web.request("GET", server + "/dn?op=OPEN&user.name=other")  # a Location as the NameNode gave it
    assert [s[1] for s in _Handler.seen] == ["/webhdfs/v1/m?user.name=svc&op=LISTSTATUS", "/dn?op=OPEN&user.name=other"]


def test_an_iterable_body_goes_with_its_length_not_chunked(server):
    class Body:
        def __len__(self) -> int:
            return 6

        def __iter__(self):
            yield memoryview(b"abc")
            yield memoryview(b"def")

    Http().request("PUT", server + "/dn", body=Body())
    method, _, headers, body = _Handler.seen[0]
    assert (method, headers.get("Content-Length"), headers.get("Transfer-Encoding"), body) == (
        "PUT", "6", None, b"abcdef")


def test_a_streamed_body_read_to_the_end_keeps_the_connection(server):
    web = Http()
    resp = web.request("GET", server + "/big", stream=True)
    recv, buf, got = body_reader(resp), bytearray(65536), 0
    while n := recv(memoryview(buf)):
        got += n
    release(resp)
    assert got == 100_000
    pool = web._direct.connection_from_url(server)
    assert pool.pool is not None
    assert pool.num_connections == 1 and pool.pool.qsize() == pool.pool.maxsize  # back in the pool
    web.request("GET", server + "/small")
    assert pool.num_connections == 1  # reused, not a new one


def test_authenticate_adds_the_header_only_when_asked(server):
    web = Http(auth=lambda host: f"Negotiate token-for-{host}")
    web.request("GET", server + "/nn", params={}, authenticate=True)
    web.request("GET", server + "/dn")
    assert _Handler.seen[0][2].get("Authorization") == "Negotiate token-for-127.0.0.1"
    assert "Authorization" not in _Handler.seen[1][2]


def test_a_refused_connection_was_never_sent():
    with pytest.raises(HttpError) as err:
        Http().request("GET", f"http://127.0.0.1:{free_port()}/x", timeout=(2, 2))
    assert err.value.unsent and err.value.detail == "connection refused"


def test_no_answer_in_time_may_have_been_acted_on():
    with socket.socket() as silent:  # accepts (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(HttpError) as err:
            Http().request("PUT", f"http://127.0.0.1:{silent.getsockname()[1]}/x", body=b"data", timeout=(2, 0.3))
    assert not err.value.unsent and err.value.detail == "no answer in time (read timed out)"


def test_an_unresolvable_host_was_never_sent():
    with pytest.raises(HttpError) as err:
        Http().request("GET", "http://namenode.invalid:9870/x", timeout=(3, 3))
    assert err.value.unsent and err.value.detail == "host name does not resolve"
