"""The ASGI application: Open Inference Protocol v2, TF Serving REST, health and /metrics.

Routing is Starlette's. The two hot paths (``POST /v2/models/<name>/infer`` and
``POST /v1/models/<name>:predict``) are matched by one dict lookup before Starlette, and handled as
raw ASGI: read the body (bounded in size, and in time: ``read_timeout``, else 408), capture the served
model, queue a job for the engine's worker thread, send its answer. Every answer from a model names
the version (``model_version`` in the body, ``X-Model-Version`` header); every refusal is
``{"error": ...}`` with a 4xx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mdl import __version__
from mdl.server.codec import ClientError
from mdl.server.engine import TF, V2, Engine, Job, error_response
from mdl.server.metrics import Metrics
from mdl.server.model import LoadedModel, ModelHolder

VERSION_HEADER = b"x-model-version"
_PROTOCOL = {V2: "v2", TF: "tfserving"}
_OTHER = "_other"  # the metrics label of requests naming a model this server does not serve


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(status: int, message: str, version: str | None = None, **headers: str) -> JSON:
    h = dict(headers)
    if version:
        h["X-Model-Version"] = version
    return JSON({"error": message}, status_code=status, headers=h)


class ServerApp:
    """Serves one model ``name``; ``status`` returns the watcher's view ({state, error, desired})."""

    def __init__(
        self,
        name: str,
        holder: ModelHolder,
        engine: Engine,
        metrics: Metrics,
        *,
        max_body: int = 16 * 1024 * 1024,
        read_timeout: float = 30.0,
        status: Callable[[], dict] | None = None,
        on_startup: Callable[[], None] | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.name, self.holder, self.engine, self.metrics = name, holder, engine, metrics
        self.max_body = max_body
        self.deadlines = _ReadDeadlines(read_timeout)
        self.status = status or (lambda: {})
        self.stopping = False
        self._on_startup, self._on_shutdown = on_startup, on_shutdown
        self._fast = {f"/v2/models/{name}/infer": V2, f"/v1/models/{name}:predict": TF}
        self.starlette = Starlette(
            routes=[
                Route("/v2", self.server_metadata),
                Route("/v2/health/live", self.live),
                Route("/v2/health/ready", self.ready),
                Route("/livez", self.live),
                Route("/readyz", self.ready),
                Route("/metrics", self.prometheus),
                Route("/v2/models/{model}", self.model_metadata),
                Route("/v2/models/{model}/ready", self.model_ready),
                Route("/v2/models/{model}/versions/{version}", self.model_metadata),
                Route("/v2/models/{model}/versions/{version}/ready", self.model_ready),
                Route("/v2/models/{model}/infer", _Asgi(self._v2_infer), methods=["POST"]),
                Route("/v2/models/{model}/versions/{version}/infer", _Asgi(self._v2_infer), methods=["POST"]),
                Route("/v1/models/{target}", _Asgi(self._v1), methods=["GET", "POST"]),
                Route("/v1/models/{model}/versions/{target}", _Asgi(self._v1), methods=["GET", "POST"]),
            ],
            exception_handlers={HTTPException: self._http_exception, Exception: self._internal_error},
            lifespan=self._lifespan,
        )

    # -- ASGI -------------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            kind = self._fast.get(scope["path"])
            if kind is not None:
                await self.infer(scope, receive, send, kind, self.name, None)
                return
        await self.starlette(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.engine.start()
        if self._on_startup:
            self._on_startup()
        try:
            yield
        finally:
            if self._on_shutdown:
                self._on_shutdown()
            self.deadlines.stop()
            self.engine.stop()

    # -- inference --------------------------------------------------------------------------------

    async def infer(
        self, scope: dict, receive: Callable, send: Callable, kind: int, model_name: str, version: str | None
    ) -> None:
        started = time.perf_counter()
        model: LoadedModel | None = self.holder.active
        label_model, label_version = self.name, ""
        extra: list[tuple[bytes, bytes]] = []
        if model_name != self.name:
            label_model = _OTHER
            resp = error_response(404, f"model {model_name!r} is not served here (this server serves {self.name!r})")
        elif model is None:
            resp = error_response(503, self._not_loaded())
            extra.append((b"retry-after", b"1"))
        elif version is not None and version != model.version:
            resp = error_response(
                404, f"version {version!r} of {self.name} is not loaded (this server serves {model.version})"
            )
            label_version = model.version
        elif self.engine.pending >= self.engine.max_queue:
            resp = error_response(503, "overloaded: too many requests queued")
            extra.append((b"retry-after", b"1"))
            label_version = model.version
        else:
            label_version = model.version
            model.inflight += 1
            self.metrics.inflight += 1
            try:
                resp = await self._predict(scope, receive, kind, model, extra)
            except Exception as exc:  # a bug, not the client: still one JSON answer, never a dropped connection
                resp = error_response(500, f"internal error: {type(exc).__name__}: {exc}")
            finally:
                model.inflight -= 1
                self.metrics.inflight -= 1
        status, headers, body = resp
        headers = [*headers, *extra, (b"content-length", str(len(body)).encode())]
        if label_version:
            headers.append((VERSION_HEADER, label_version.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.observe(label_model, label_version, _PROTOCOL[kind], status, time.perf_counter() - started)

    async def _predict(
        self, scope: dict, receive: Callable, kind: int, model: LoadedModel, extra: list
    ) -> tuple[int, list, bytes]:
        length = header_length = encoding = None
        for k, v in scope["headers"]:
            if k == b"content-length":
                length = v
            elif k == b"inference-header-content-length":
                header_length = v.decode("latin-1")
            elif k == b"content-encoding":
                encoding = v.decode("latin-1").strip().lower()
        try:
            body = await self._read_body(receive, length, extra)
        except ClientError as exc:
            return error_response(exc.status, exc.message)
        except _Disconnected:
            return error_response(499, "client disconnected")
        fut = asyncio.get_running_loop().create_future()
        self.engine.submit(Job(model, kind, body, header_length, fut, encoding, self.max_body))
        return await fut

    async def _read_body(self, receive: Callable, length: bytes | None, extra: list) -> bytes:
        limit = self.max_body
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                raise ClientError(400, "Content-Length is not an integer") from None
            if n > limit:
                extra.append((b"connection", b"close"))
                raise ClientError(413, f"body of {n} bytes is larger than the limit of {limit} bytes")
        task = self.deadlines.begin()
        try:
            msg = await receive()
            if msg["type"] != "http.request":
                raise _Disconnected()
            body = msg.get("body", b"")
            if not msg.get("more_body"):
                return body
            chunks, size = [body], len(body)
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    raise _Disconnected()
                chunk = msg.get("body", b"")
                size += len(chunk)
                if size > limit:
                    extra.append((b"connection", b"close"))
                    raise ClientError(413, f"body is larger than the limit of {limit} bytes")
                chunks.append(chunk)
                if not msg.get("more_body"):
                    return b"".join(chunks)
        except asyncio.CancelledError:
            if not self.deadlines.claim(task):
                raise
            extra.append((b"connection", b"close"))
            raise ClientError(408, f"request body not received within {self.deadlines.timeout:g} s") from None
        finally:
            self.deadlines.end(task)

    def _not_loaded(self) -> str:
        st = self.status()
        why = st.get("error") or (f"state {st['state']}" if st.get("state") else "starting")
        return f"model {self.name} has no version loaded yet ({why})"

    async def _v2_infer(self, scope: dict, receive: Callable, send: Callable) -> None:
        p = scope["path_params"]
        await self.infer(scope, receive, send, V2, p["model"], p.get("version"))

    async def _v1(self, scope: dict, receive: Callable, send: Callable) -> None:
        """/v1/models/{m}, /v1/models/{m}:predict and their /versions/{v} forms."""
        p = scope["path_params"]
        target = p["target"]
        name, version = (p["model"], target) if "model" in p else (target, None)
        if version is not None:
            version, _, verb = version.partition(":")
        else:
            name, _, verb = name.partition(":")
        if scope["method"] == "GET":
            response = self.tf_status(name, version) if not verb else _error(404, f"no GET for :{verb}")
        elif verb == "predict":
            await self.infer(scope, receive, send, TF, name, version)
            return
        elif verb in ("classify", "regress"):
            response = _error(400, f":{verb} is not supported; use :predict")
        else:
            response = _error(405, "POST needs /v1/models/<model>:predict")
        await response(scope, receive, send)

    # -- status and metadata ----------------------------------------------------------------------

    async def server_metadata(self, request: Request) -> JSON:
        return JSON({"name": "mdl", "version": __version__, "extensions": ["binary_tensor_data", "model_version"]})

    async def live(self, request: Request) -> JSON:
        return JSON({"live": True})

    async def ready(self, request: Request) -> JSON:
        m = self.holder.active
        st = self.status()
        ok = m is not None and not self.stopping and not self.holder.draining
        body = {
            "ready": ok,
            "model": self.name,
            "version": m.version if m else None,
            "state": st.get("state"),
            "error": st.get("error"),
            "hint": st.get("hint"),
        }
        return JSON(body, status_code=200 if ok else 503, headers={"X-Model-Version": m.version} if m else None)

    def _resolve(self, model: str, version: str | None) -> LoadedModel | JSON:
        if model != self.name:
            return _error(404, f"model {model!r} is not served here (this server serves {self.name!r})")
        m = self.holder.active
        if m is None:
            return _error(503, self._not_loaded(), **{"Retry-After": "1"})
        if version is not None and version != m.version:
            return _error(
                404, f"version {version!r} of {self.name} is not loaded (this server serves {m.version})", m.version
            )
        return m

    async def model_metadata(self, request: Request) -> JSON:
        m = self._resolve(request.path_params["model"], request.path_params.get("version"))
        if isinstance(m, JSON):
            return m
        return JSON(m.metadata(), headers={"X-Model-Version": m.version})

    async def model_ready(self, request: Request) -> JSON:
        m = self._resolve(request.path_params["model"], request.path_params.get("version"))
        if isinstance(m, JSON):
            return m
        return JSON(
            {"name": self.name, "version": m.version, "ready": not self.stopping},
            headers={"X-Model-Version": m.version},
            status_code=503 if self.stopping else 200,
        )

    def tf_status(self, name: str, version: str | None) -> JSON:
        """TF Serving's GET /v1/models/<m>[/versions/<v>] (version status)."""
        if name != self.name:
            return _error(404, f"model {name!r} is not served here (this server serves {self.name!r})")
        m = self.holder.active
        st = self.status()
        if version is not None and (m is None or version != m.version):
            return _error(
                404,
                f"version {version!r} of {self.name} is not loaded"
                + (f" (this server serves {m.version})" if m else ""),
                m.version if m else None,
            )
        if m is None:
            entry = {
                "version": st.get("desired") or "",
                "state": "LOADING" if not st.get("error") else "END",
                "status": {
                    "error_code": "UNAVAILABLE" if st.get("error") else "OK",
                    "error_message": st.get("error") or "",
                },
            }
            return JSON({"model_version_status": [entry]})
        err = st.get("error") or ""
        entry = {"version": m.version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        doc: dict[str, Any] = {"model_version_status": [entry]}
        if err:
            doc["last_error"] = err  # a newer version failed to load; this one keeps serving
        return JSON(doc, headers={"X-Model-Version": m.version})

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    # -- errors -----------------------------------------------------------------------------------

    async def _http_exception(self, request: Request, exc: Exception) -> JSON:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return JSON({"error": message}, status_code=exc.status_code, headers=exc.headers)

    async def _internal_error(self, request: Request, exc: Exception) -> JSON:
        return JSON({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


class _Disconnected(Exception):
    pass


class _ReadDeadlines:
    """Bounds body reads in time with no timer per request (a timer handle per request costs a few µs
    on the hot path): a sweep every quarter of ``timeout`` cancels the tasks whose read began more than
    ``timeout`` ago, so a stalled read ends between 1× and 1.25× ``timeout``."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = 0
        self.reading: dict[asyncio.Task, int] = {}  # task -> the tick its read began
        self.expired: set[asyncio.Task] = set()
        self._timer: asyncio.TimerHandle | None = None

    def begin(self) -> asyncio.Task:
        task = asyncio.current_task()
        assert task is not None
        self.reading[task] = self.tick
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.timeout / 4, self._sweep)
        return task

    def end(self, task: asyncio.Task) -> None:
        self.reading.pop(task, None)

    def claim(self, task: asyncio.Task) -> bool:
        """After a ``CancelledError`` in ``task``: whether the deadline caused it (then it is taken back)."""
        if task not in self.expired:
            return False
        self.expired.discard(task)
        if hasattr(task, "uncancel"):  # Python >= 3.11: the task is not left "cancelling"
            task.uncancel()
        return True

    def _sweep(self) -> None:
        self.tick += 1
        late = self.tick - 5  # a read begun between sweeps t and t + 1 has waited over 4 quarters by sweep t + 5
        for task, began in list(self.reading.items()):
            if began <= late:
                del self.reading[task]
                self.expired.add(task)
                task.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.timeout / 4, self._sweep)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Asgi:
    """Marks a coroutine method as a raw ASGI endpoint for Starlette's Route (which wraps plain
    functions and methods in a Request/Response adapter)."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        await self.fn(scope, receive, send)
