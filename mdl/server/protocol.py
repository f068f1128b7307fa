"""The HTTP/1.1 connection protocol: uvicorn's (httptools, else h11), bounded for untrusted clients.

uvicorn closes a kept-alive connection that idles, but not one that connects and sends nothing, or sends
a request line and headers slowly (slowloris). Here the head of a request must arrive within
``read_timeout`` of the connection opening (the first request) or of its first bytes (the next ones), or
the connection is closed; a head over MAX_HEAD_BYTES gets a 431. The body has its own deadline in the
app, which works the same with any protocol. Past ``max_connections`` open connections, a new
connection's request gets a 503; a request the parser rejects gets a 400. Each is JSON
``{"error": ...}`` like every other refusal.

The hot path is untouched: a request that arrives whole in one read arms no timer (only a new
connection does, once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from mdl.server.codec import JSON_CT, error_body

OVER_CAPACITY_TIMEOUT = 1.0  # a connection past the cap gets at most this long to send its request
MAX_HEAD_BYTES = 64 * 1024  # a request line and headers larger than this get 431 (h11's own limit is 16 KiB)
LINGER_SECONDS = 2.0  # after a refusal, how long what the client still sends is read and dropped


class _Bounded:
    """Mixed in before uvicorn's protocol class; the subclass says when a request head is awaited."""

    read_timeout: float
    max_connections: int
    _timer: asyncio.TimerHandle | None = None
    _head_bytes = 0  # bytes received while a request's head is incomplete
    _lingering = False  # refused: the answer is sent, what still arrives is dropped until the close
    # set by uvicorn's protocol classes
    app: Any
    connections: set
    loop: asyncio.AbstractEventLoop
    server_state: Any
    transport: asyncio.Transport

    def _waiting_for_head(self) -> bool:
        raise NotImplementedError

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        timeout = self.read_timeout
        if len(self.connections) > self.max_connections:
            self.app = self._over_capacity
            timeout = min(timeout, OVER_CAPACITY_TIMEOUT)
        self._timer = self.loop.call_later(timeout, self._read_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        super().data_received(data)  # type: ignore[misc]
        if self._lingering:  # the parser refused the request (send_400_response)
            return
        if self._waiting_for_head():  # part of a head came (or stray bytes between requests)
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                # httptools keeps every header it is sent: bound what a head may hold
                self._refuse(self._raw_error(431, f"request line and headers over {MAX_HEAD_BYTES} bytes"))
                return
            if self._timer is None and not self.transport.is_closing():
                self._timer = self.loop.call_later(self.read_timeout, self._read_timed_out)
        else:
            self._head_bytes = 0
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _read_timed_out(self) -> None:
        self._timer = None
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to what its parser rejects, as JSON."""
        self._refuse(self._raw_error(400, "invalid HTTP request (the parser rejected it)"))

    def _refuse(self, answer: bytes) -> None:
        """Send ``answer`` and close, as a lingering close: closing a socket with unread bytes makes the
        kernel reset the connection, and a reset can destroy the answer before the client reads it. So
        the write side is shut first and what the client still sends is dropped, until it closes or
        LINGER_SECONDS pass."""
        self.transport.write(answer)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self._lingering = True
        self.transport.write_eof()
        self._timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _raw_error(self, status: int, message: str) -> bytes:
        body = error_body(message)
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(b"content-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % (JSON_CT, len(body)))
        return b"".join(head) + body

    async def _over_capacity(self, scope: dict, receive: Callable, send: Callable) -> None:
        body = error_body(f"too many connections: this server takes at most {self.max_connections} at a time")
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", JSON_CT),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def protocol_class(read_timeout: float, max_connections: int, httptools: bool = True) -> type[asyncio.Protocol]:
    """The class for ``uvicorn.Config(http=...)``: httptools' protocol, or h11's when ``httptools`` is False."""
    base: type
    if httptools:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base

        def waiting(self: Any) -> bool:
            return self.cycle is None or self.cycle.response_complete
    else:
        import h11
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

        def waiting(self: Any) -> bool:
            return self.conn.their_state is h11.IDLE

    return type(
        f"Bounded{base.__name__}",
        (_Bounded, base),
        {"read_timeout": read_timeout, "max_connections": max_connections, "_waiting_for_head": waiting},
    )
