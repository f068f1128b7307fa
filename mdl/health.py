"""A tiny liveness/readiness endpoint for sidecars (``/livez``, ``/readyz``)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def serve_health(host: str, port: int, live: Callable[[], bool], ready: Callable[[], dict]) -> ThreadingHTTPServer:
    """Start the endpoint in a daemon thread. ``ready`` returns {"ready": bool, ...details}."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/livez":
                ok, body = live(), {"live": live()}
            elif self.path == "/readyz":
                body = ready()
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

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="mdl-health", daemon=True).start()
    return server
