"""Run a long-lived follower (``mdl watch``'s Watcher, ``mdl serve``'s server) until it is told to stop.

:func:`run` owns what is the process's: SIGTERM and SIGINT stop the service (each one calls its
``stop``: a second one is the service's to read, e.g. serve stops waiting for in-flight requests),
SIGHUP re-syncs, and the optional /livez + /readyz endpoint, listening before the service is even
made, so that a port in use fails before anything happens. A reader of the events that goes away
(EPIPE on stdout) ends the process the same graceful way: :func:`mdl.cli.common.reader_gone` sends
SIGTERM once a handler is installed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from mdl.health import Document, bind_health


class Service(Protocol):
    def run(self) -> None:
        """Start, and block until stopped."""

    def stop(self) -> None:
        """SIGTERM/SIGINT, once per signal (from the signal handler: it must not block for long)."""

    def resync(self) -> None:
        """SIGHUP: re-read what to follow."""


@runtime_checkable
class Checked(Service, Protocol):
    """A service that answers the health endpoint."""

    def live(self) -> bool: ...

    def readiness(self) -> dict[str, Any]:
        """{"ready": bool, ...details}"""


@runtime_checkable
class Published(Checked, Protocol):
    """A checked service that also serves documents of its own beside the health checks."""

    def documents(self) -> dict[str, Document]:
        """path -> () -> (status, content type, body)"""


def run(make: Callable[[], Service], *, health_port: int | None = None, health_host: str = "127.0.0.1") -> None:
    """Make the service (after binding the health endpoint, if any), run it until a signal stops it,
    then close the endpoint and put the previous signal handlers back."""
    health = bind_health(health_host, health_port) if health_port is not None else None
    try:
        service = make()
        if health is not None and not isinstance(service, Checked):
            raise TypeError(f"{type(service).__name__} has no health checks (live, readiness)")
    except BaseException:
        if health is not None:
            health.server_close()
        raise
    handlers: dict[signal.Signals, Callable[..., None]] = {
        signal.SIGTERM: lambda *_: service.stop(),
        signal.SIGINT: lambda *_: service.stop(),
        signal.SIGHUP: lambda *_: service.resync(),
    }
    previous = {s: signal.signal(s, h) for s, h in handlers.items()}
    if health is not None and isinstance(service, Checked):  # (checked above: it is)
        documents = service.documents() if isinstance(service, Published) else None
        health.start(live=service.live, ready=service.readiness, documents=documents)
    try:
        service.run()
    finally:
        if health is not None:
            health.shutdown()
            health.server_close()
        for s, h in previous.items():
            signal.signal(s, h)
