"""The prediction engine: requests are parsed, predicted and encoded on a worker thread, off the
event loop, with dynamic batching.

The event loop only reads a body, captures the served model and queues a :class:`Job`. The worker
takes every job waiting (up to ``max_batch``) — it never waits for more to arrive, so an idle server
adds no latency — parses them, concatenates the rows of compatible ones (same model object, outputs,
row shape and dtype) into one ``predict`` call, splits the result, encodes each answer, and hands the
whole batch back to the loop with one ``call_soon_threadsafe``. A scikit-learn ``predict`` costs about
the same for 1 row as for 64 (its per-call validation dominates), so under load this multiplies
throughput; a request whose rows the model rejects is retried alone so it fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from mdl.server.codec import JSON_CT, ClientError, decode_body, encode_tf, encode_v2, error_body, parse_tf, parse_v2
from mdl.server.model import LoadedModel

log = logging.getLogger("mdl.server")

V2, TF = 2, 1
Response = tuple[int, list[tuple[bytes, bytes]], bytes]
_JSON_HEADERS = [(b"content-type", JSON_CT)]


def error_response(status: int, message: str) -> Response:
    return status, _JSON_HEADERS, error_body(message)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


class Job:
    __slots__ = (
        "model",
        "kind",
        "body",
        "header_length",
        "fut",
        "encoding",
        "limit",
        "x",
        "methods",
        "binary",
        "rid",
        "columnar",
        "outputs",
        "response",
    )

    def __init__(
        self,
        model: LoadedModel,
        kind: int,
        body: bytes,
        header_length: str | None,
        fut: asyncio.Future,
        encoding: str | None = None,
        limit: int = 0,
    ) -> None:
        self.model, self.kind, self.body, self.header_length, self.fut = model, kind, body, header_length, fut
        self.encoding, self.limit = encoding, limit
        self.x: Any = None
        self.methods: tuple[str, ...] = ("predict",)
        self.binary: tuple[bool, ...] = (False,)
        self.rid: str | None = None
        self.columnar = False
        self.outputs: dict[str, Any] | None = None
        self.response: Response | None = None

    # -- worker-side steps ------------------------------------------------------------------------

    def parse(self) -> bool:
        m = self.model
        try:
            if self.encoding:
                self.body = decode_body(self.body, self.encoding, self.limit)
            if self.kind == V2:
                req = parse_v2(self.body, self.header_length)
                x = _inputs(m, req.inputs)
                wanted = req.outputs or [(name, req.binary_output) for name in m.default_outputs]
                for name, _ in wanted:
                    if name not in m.methods:
                        raise ClientError(
                            400, f"model {m.name} has no output {name!r} (it has: {', '.join(m.methods)})"
                        )
                self.methods = tuple(n for n, _ in wanted)
                self.binary = tuple(b or req.binary_output for _, b in wanted)
                self.rid = req.id
            else:
                if len(m.input_names) > 1:
                    raise ClientError(
                        400, f"model {m.name} takes {len(m.input_names)} named inputs: use the v2 API (/v2/models)"
                    )
                req_tf = parse_tf(self.body)
                x, self.columnar = req_tf.x, req_tf.columnar
                self.methods = m.default_outputs
            if m.n_features is not None and (x.ndim != 2 or x.shape[1] != m.n_features):
                raise ClientError(
                    400,
                    f"model {m.name} version {m.version} takes input of shape "
                    f"[rows, {m.n_features}]; got {list(x.shape)}",
                )
            self.x = x
            self.body = b""  # the parsed array is all that is needed now
            return True
        except ClientError as exc:
            self.response = error_response(exc.status, exc.message)
        except Exception as exc:  # a parser bug must not take the batch down
            log.exception("parsing a request failed")
            self.response = error_response(500, f"internal error parsing the request: {_short(exc)}")
        return False

    def predict_alone(self) -> None:
        try:
            self.outputs = self.model.predict(self.x, self.methods)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            # the model's own validation (NaN, strings for numbers, unseen categories...): the input
            self.response = error_response(
                400, f"model {self.model.name} version {self.model.version} rejected the input: {_short(exc)}"
            )
        except Exception as exc:
            log.exception("predict failed")
            self.response = error_response(500, f"prediction failed: {_short(exc)}")

    def encode(self) -> None:
        if self.response is not None:
            return
        m = self.model
        try:
            assert self.outputs is not None
            if self.kind == V2:
                body, headers = encode_v2(
                    m.name,
                    m.version,
                    self.rid,
                    [(n, b, self.outputs[n]) for n, b in zip(self.methods, self.binary, strict=True)],
                )
            else:
                body, headers = encode_tf(m.version, self.columnar, self.outputs), _JSON_HEADERS
            self.response = (200, headers, body)
        except Exception as exc:
            log.exception("encoding a response failed")
            self.response = error_response(500, f"cannot encode the model's output: {_short(exc)}")


def _inputs(m: LoadedModel, tensors: list[tuple[str, Any]]) -> Any:
    """The model's input: the one tensor, or for a model with several named inputs, a mapping by name."""
    names = m.input_names
    if len(names) <= 1:
        if len(tensors) != 1:
            raise ClientError(400, f"model {m.name} takes one input tensor, got {len(tensors)}")
        return tensors[0][1]
    given = dict(tensors)
    if len(given) != len(tensors) or set(given) != set(names):
        raise ClientError(
            400, f"model {m.name} takes the inputs {', '.join(names)}; got {', '.join(n for n, _ in tensors)}"
        )
    rows = {len(v) if np.ndim(v) else -1 for v in given.values()}
    if len(rows) != 1:
        raise ClientError(400, f"model {m.name}: its inputs must have the same number of rows")
    return given


def _batch_key(job: Job) -> Any:
    x = job.x
    if not isinstance(x, np.ndarray) or x.ndim < 1 or not job.model.batchable or x.dtype == object:
        return job  # alone
    return (id(job.model), job.methods, x.shape[1:], x.dtype.str)


def run_batch(jobs: list[Job], max_batch: int, on_batch: Callable[[int], None] | None = None) -> None:
    """Parse, predict (batched where possible) and encode ``jobs``; each ends with a ``response``."""
    groups: dict[Any, list[Job]] = {}
    for job in jobs:
        if job.parse():
            groups.setdefault(_batch_key(job) if max_batch > 1 else job, []).append(job)
    for group in groups.values():
        if on_batch is not None:
            on_batch(len(group))
        if len(group) == 1:
            group[0].predict_alone()
            continue
        try:
            _predict_together(group)
        except Exception:
            for job in group:  # someone's rows broke the batch: each alone, so only they fail
                job.outputs = None
                job.predict_alone()
    for job in jobs:
        job.encode()


def _predict_together(group: list[Job]) -> None:
    model = group[0].model
    x = np.concatenate([j.x for j in group])
    bounds = np.cumsum([len(j.x) for j in group])[:-1]
    results = {}
    for name, value in model.predict(x, group[0].methods).items():
        out = np.asarray(value)
        if out.ndim == 0 or out.shape[0] != x.shape[0]:
            raise ValueError("output rows do not match input rows")
        results[name] = np.split(out, bounds)
    for i, job in enumerate(group):
        job.outputs = {name: parts[i] for name, parts in results.items()}


def _deliver(jobs: list[Job]) -> None:
    for job in jobs:
        if not job.fut.done():
            job.fut.set_result(job.response)


class Engine:
    """One worker thread (the GIL makes more of them pointless for Python-bound models)."""

    def __init__(
        self, max_batch: int = 64, max_queue: int = 4096, on_batch: Callable[[int], None] | None = None
    ) -> None:
        self.max_batch = max(1, max_batch)
        self.on_batch = on_batch
        self.max_queue = max_queue
        self._q: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mdl-predict", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(5)
            self._thread = None

    @property
    def pending(self) -> int:
        return self._q.qsize()

    def submit(self, job: Job) -> None:
        self._q.put(job)

    def _run(self) -> None:
        q, max_batch = self._q, self.max_batch
        while True:
            job = q.get()
            if job is None:
                return
            jobs = [job]
            stop = False
            while len(jobs) < max_batch:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
            try:
                run_batch(jobs, max_batch, self.on_batch)
            except Exception as exc:  # never let the worker die
                log.exception("batch failed")
                for j in jobs:
                    if j.response is None:
                        j.response = error_response(500, f"internal error: {_short(exc)}")
            by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
            for j in jobs:
                by_loop.setdefault(j.fut.get_loop(), []).append(j)
            for loop, js in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_deliver, js)
                except RuntimeError:  # the loop closed (shutdown): nobody is waiting
                    pass
            if stop:
                return
