"""A tiny liveness/readiness endpoint for sidecars (``/livez``, ``/readyz``, and a service's own
read-only documents such as ``mdl endpoints --watch --listen``'s ``/sd``).

Its clients are untrusted: GET only, no request body read, and a connection that sends nothing for
``READ_TIMEOUT`` seconds is closed (no thread is held forever).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mdl.errors import MdlError

READ_TIMEOUT = 10.0  # seconds a client has to send its request line and headers
Document = Callable[[], "tuple[int, str, bytes]"]  # () -> (status, content type, body)


class HealthServer(ThreadingHTTPServer):
    """Bound (and listening) from construction; answers once ``start`` gave it its two checks."""

    daemon_threads = True
    live: Callable[[], bool] = staticmethod(lambda: False)
    ready: Callable[[], dict] = staticmethod(lambda: {"ready": False})
    documents: dict[str, Document] = {}

    def start(
        self, live: Callable[[], bool], ready: Callable[[], dict], documents: dict[str, Document] | None = None
    ) -> HealthServer:
        self.live, self.ready, self.documents = live, ready, dict(documents or {})
        threading.Thread(target=self.serve_forever, name="mdl-health", daemon=True).start()
        return self

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is not worth a traceback on stderr


class _Handler(BaseHTTPRequestHandler):
    server: HealthServer
    timeout = READ_TIMEOUT

    def do_GET(self) -> None:
        document = self.server.documents.get(self.path)
        if document is not None:
            status, content_type, data = document()
            self._answer(status, content_type, data)
            return
        if self.path == "/livez":
            ok = bool(self.server.live())
            body: dict = {"live": ok}
        elif self.path == "/readyz":
            body = self.server.ready()
            ok = bool(body.get("ready"))
        else:
            self.send_error(404)
            return
        self._answer(200 if ok else 503, "application/json", json.dumps(body).encode())

    def _answer(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def bind_health(host: str, port: int) -> HealthServer:
    """Listen on ``host:port`` now (before anything else is started), or raise MdlError (exit 1)."""
    try:
        return HealthServer((host, port), _Handler)
    except OverflowError:  # a port outside 0-65535 (the CLI's option already refuses one)
        raise MdlError(f"cannot listen on {host}:{port}: the port must be 0-65535") from None
    except OSError as exc:
        raise MdlError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another port, or stop the process that uses this one",
        ) from None
