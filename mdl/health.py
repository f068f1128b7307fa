"""A tiny liveness/readiness endpoint for sidecars (``/livez``, ``/readyz``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mdl.errors import MdlError


class HealthServer(ThreadingHTTPServer):
    """Bound (and listening) from construction; answers once ``start`` gave it its two checks."""

    daemon_threads = True
    live: Callable[[], bool] = staticmethod(lambda: False)
    ready: Callable[[], dict] = staticmethod(lambda: {"ready": False})

    def start(self, live: Callable[[], bool], ready: Callable[[], dict]) -> HealthServer:
        self.live, self.ready = live, ready
        threading.Thread(target=self.serve_forever, name="mdl-health", daemon=True).start()
        return self

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-answer is not worth a traceback on stderr


class _Handler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        if self.path == "/livez":
            ok = bool(self.server.live())
            body: dict = {"live": ok}
        elif self.path == "/readyz":
            body = self.server.ready()
            ok = bool(body.get("ready"))
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
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
            hint="choose another --health-port, or stop the process that uses this one",
        ) from None
