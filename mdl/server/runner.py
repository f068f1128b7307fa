"""Run one server process: bind, start uvicorn, follow the alias with a Watcher, stop gracefully.

Order of events. Bind first (so ``--port 0`` knows its port and the registered URL is exact), start
uvicorn, then start the Watcher on a thread: it registers the replica (kind ``server``, address = the
URL), resumes a verified local copy or downloads the version the alias names, and calls
:meth:`ModelHolder.on_swap`, which loads it off the request path. Signals come through
:func:`mdl.watch.run`. SIGTERM/SIGINT: readiness turns 503, the replica deregisters, it keeps answering for
``drain_delay`` seconds (balancers following the registry drop it meanwhile), then uvicorn stops
accepting and lets in-flight requests finish (bounded), exit 0. SIGHUP: re-sync (forget failures,
re-read the pointer).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdl.client import Client
from mdl.errors import Conflict, MdlError
from mdl.host import now_iso
from mdl.names import validate_alias, validate_name, validate_version
from mdl.watch import Emit, Watcher, WatchOptions, run


@dataclass
class ServeOptions:
    alias: str = "latest"
    version: str | None = None
    host: str = "127.0.0.1"
    port: int = 8501
    cache: Path | None = None
    loader: str | None = None
    swap: str = "availability"
    max_batch: int = 64
    max_body: int = 16 * 1024 * 1024
    keep: int = 3
    graceful_timeout: float = 10.0
    max_unavailable: int = 1  # --swap resource: servers of the model out of rotation at once, fleet-wide (0: no cap)
    drain_delay: float = 2.0  # serve.drain_delay: seconds a replica keeps answering after it left the registry
    read_timeout: float = 30.0  # a request's line + headers, and then its body, each within this
    max_connections: int = 1024  # open HTTP connections; past it, requests get 503
    require_signature: bool = False  # load only signed versions (or trust.require_signature)
    pickle: str = "allow"  # serve.pickle: allow, signed or deny (mdl.server.loaders)
    skops_trusted: tuple[str, ...] = ()  # serve.skops_trusted: types skops may build beyond its defaults
    extra: dict[str, Any] = field(default_factory=dict)


def default_cache(name: str, port: int) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mdl" / "serve" / f"{name}-{port}"


def url_for(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MdlError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="pick another --port, or stop what holds it"
        ) from None
    return sock


def _allow_open_files(n: int) -> None:
    """Raise the soft limit on open files to ``n`` if it is lower (up to the hard limit), so that
    ``--max-connections``, not the limit (often 1024), decides when connections are refused."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < n:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n if hard == resource.RLIM_INFINITY else min(n, hard), hard))
    except (ImportError, ValueError, OSError):
        pass


@contextmanager
def _cache_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    f = open(root / ".mdl-serve.lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise Conflict(
            f"{root} is in use by another mdl serve", hint="give each server its own --cache directory"
        ) from None
    try:
        yield
    finally:
        f.close()


def _uvicorn_server(app: Any, opts: ServeOptions) -> Any:
    import uvicorn

    def has(module: str) -> bool:
        try:
            __import__(module)
            return True
        except ImportError:
            return False

    from mdl.server.protocol import protocol_class

    http = protocol_class(opts.read_timeout, opts.max_connections, httptools=has("httptools"))
    config = uvicorn.Config(
        app,
        http=http,
        ws="none",
        loop="uvloop" if has("uvloop") else "auto",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        backlog=2048,
        timeout_graceful_shutdown=max(opts.graceful_timeout, 0.01),  # type: ignore[arg-type]
        timeout_keep_alive=30,
    )

    class Server(uvicorn.Server):
        """uvicorn without its own signal handling: ours deregisters before stopping."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def install_signal_handlers(self) -> None:  # uvicorn < 0.29
            pass

    return Server(config)


def serve(client: Client, name: str, opts: ServeOptions, emit: Emit) -> int:
    """Serve ``name`` until SIGTERM/SIGINT; returns the exit code."""
    from mdl.server.model import resolve_loader

    validate_name(name)
    validate_alias(opts.alias)
    if opts.version:
        validate_version(opts.version)
    loader = resolve_loader(opts.loader) if opts.loader else None
    _allow_open_files(opts.max_connections + 256)  # + the model's files, the registry, the listening socket...
    sock = bind(opts.host, opts.port)
    port = sock.getsockname()[1]
    temp_cache = opts.cache is None and opts.port == 0
    cache = opts.cache or (
        Path(tempfile.mkdtemp(prefix=f"mdl-serve-{name}-")) if temp_cache else default_cache(name, port)
    )
    try:
        server = ModelServer(
            client, name, opts, emit, loader=loader, sock=sock, address=url_for(opts.host, port), cache=cache
        )
        run(lambda: server)
    finally:
        sock.close()
        if temp_cache:
            shutil.rmtree(cache, ignore_errors=True)
    return server.outcome()


class ModelServer:
    """uvicorn in front, a Watcher behind (started once uvicorn is up): the service :func:`mdl.watch.run`
    runs for ``mdl serve``. SIGTERM/SIGINT: :meth:`stop` (a second one: stop waiting for in-flight
    requests); SIGHUP: :meth:`resync`."""

    def __init__(
        self,
        client: Client,
        name: str,
        opts: ServeOptions,
        emit: Emit,
        *,
        loader: Any,
        sock: socket.socket,
        address: str,
        cache: Path,
    ) -> None:
        from mdl.server.app import ServerApp
        from mdl.server.engine import Engine
        from mdl.server.loaders import LoadPolicy
        from mdl.server.metrics import Metrics
        from mdl.server.model import ModelHolder

        self.client, self.name, self.opts, self.emit = client, name, opts, emit
        self.sock, self.address, self.cache = sock, address, cache
        self.watcher: Watcher | None = None
        self.stopped = False
        self.failed: Exception | None = None  # why the watcher could not start
        self._swap_raised = threading.Event()
        self._hurry = threading.Event()  # a second SIGTERM/SIGINT: no more draining
        self._lock = threading.Lock()  # watcher, stopped
        metrics = Metrics(name)
        policy = LoadPolicy(
            opts.pickle, tuple(opts.skops_trusted), self._verify_signature if opts.pickle == "signed" else None
        )
        if opts.pickle == "signed" or client.signature_required(opts.require_signature):
            from mdl.trust import anchors

            anchors(client.config)  # no trusted key or CA: a configuration error now, not a refusal per version
        self.holder = ModelHolder(
            name,
            loader,
            opts.swap,
            events=self.event,
            metrics=metrics,
            load_policy=policy,
            before_unload=self._before_unload,
        )
        engine = Engine(max_batch=opts.max_batch, on_batch=metrics.batch)
        self.app = ServerApp(
            name,
            self.holder,
            engine,
            metrics,
            max_body=opts.max_body,
            read_timeout=opts.read_timeout,
            status=self.status,
            on_startup=lambda: threading.Thread(
                target=self._start_watcher, name="mdl-serve-start", daemon=True
            ).start(),
        )
        self.server = _uvicorn_server(self.app, opts)

    def event(self, kind: str, **data: Any) -> None:
        try:
            self.emit({"event": kind, "at": now_iso(), "model": self.name, **data})
        except Exception:
            pass

    def status(self) -> dict:
        w = self.watcher
        return (
            {"state": w.state, "error": w.error, "hint": w.hint, "desired": w.desired} if w else {"state": "starting"}
        )

    def _verify_signature(self, version: str, manifest: Any) -> Any:
        from mdl.trust import verify_version

        return verify_version(self.client, self.name, version, manifest)

    def _on_swap(self, version: str, path: Path, previous: str | None) -> None:
        try:
            with self._out_of_rotation(version):
                self.holder.on_swap(version, path, previous)
        except Exception:
            self._swap_raised.set()
            raise

    def _out_of_rotation(self, version: str) -> AbstractContextManager[None]:
        """A ``--swap resource`` swap takes one of ``max_unavailable`` fleet-wide slots for the time its
        server is out (draining, unloading, loading): a promote then never empties a balancer."""
        active = self.holder.active
        if self.opts.swap != "resource" or active is None or active.version == version:
            return nullcontext()  # nothing is unloaded (or it is a revert to what is served): it keeps answering
        return self.client.download_slot(self.name, self.opts.max_unavailable, pool="unavailable")

    def _before_unload(self, version: str) -> None:
        """``--swap resource`` is about to unload ``version``: leave the balancers first (see :meth:`_drain`)."""
        w = self.watcher
        if w is not None:
            self._drain(w.drain, wait=w.registered, version=version, reason="--swap resource")

    def _drain(self, leave: Callable[[], None], *, wait: bool = True, **why: Any) -> None:
        """Leave the registry's list of answering replicas (``leave``), then keep answering for
        ``drain_delay`` seconds: what balancers following the registry (``mdl endpoints --watch``)
        need to drop this replica before it stops answering. A second SIGTERM cuts the wait."""
        try:
            leave()
        except Exception as exc:  # the registry is down: the balancer's health check (/readyz, 503 now) takes over
            self.event("deregister-failed", error=getattr(exc, "message", str(exc)))
        if wait and self.opts.drain_delay > 0:
            self.event("draining", seconds=self.opts.drain_delay, **why)
            self._hurry.wait(self.opts.drain_delay)

    def _make_watcher(self) -> Watcher:
        o = self.opts
        wopts = WatchOptions(
            alias=o.alias,
            version=o.version,
            keep=o.keep,
            address=self.address,
            kind="server",
            require_signature=o.require_signature,
            extra={"swap": o.swap, **o.extra},
        )
        return Watcher(self.client, self.name, self.cache, wopts, emit=self.emit, on_swap=self._on_swap)

    def _start_watcher(self) -> None:
        with self._lock:
            if self.stopped:
                return  # SIGTERM came first: never register
            w = self.watcher = self._make_watcher()
        try:
            w.start()
        except Exception as exc:
            if not self._swap_raised.is_set():
                self.failed = exc
                self.event("failed", error=getattr(exc, "message", str(exc)))
                self._shutdown()
                return
            # the cached copy verified but would not load: forget it and sync afresh
            self.event("discarded", version=w.dir.current, reason=getattr(exc, "message", str(exc)))
            w.dir.revert(None)
            with self._lock:
                if self.stopped:
                    return
                w = self.watcher = self._make_watcher()
            w.start()

    def _shutdown(self) -> None:
        with self._lock:
            if self.stopped:
                return
            self.stopped = True
            w = self.watcher
        self.app.stopping = True  # /readyz: 503 from now on
        self.event("stopping")
        if w is not None:  # deregister first, then answer while balancers drop it (if it was ever routable)
            self._drain(w.stop, wait=w.registered and self.holder.active is not None, reason="stopping")
        self.server.should_exit = True  # stop accepting; in-flight requests get graceful_timeout

    def stop(self) -> None:
        if self.stopped:
            self._hurry.set()
            self.server.force_exit = True  # a second Ctrl-C: do not wait for in-flight requests
            return
        threading.Thread(target=self._shutdown, name="mdl-serve-stop", daemon=True).start()

    def resync(self) -> None:
        w = self.watcher
        if w is not None:
            w.resync()

    def run(self) -> None:
        with _cache_lock(self.cache):
            self.event(
                "listening",
                address=self.address,
                pid=os.getpid(),
                cache=str(self.cache),
                swap=self.opts.swap,
                alias=None if self.opts.version else self.opts.alias,
                version=self.opts.version,
            )
            self.server.run(sockets=[self.sock])
            if not self.stopped:  # uvicorn ended by itself (startup failure)
                self._shutdown()

    def outcome(self) -> int:
        """After :meth:`run`: the exit code, or the MdlError that ended the server."""
        if self.failed is not None:
            if isinstance(self.failed, MdlError):
                raise self.failed
            raise MdlError(f"the watcher could not start: {self.failed}")
        if not self.server.started:
            raise MdlError(f"the HTTP server on {self.address} did not start (see the log above)")
        self.event("stopped")
        return 0
