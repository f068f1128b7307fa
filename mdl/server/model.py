"""Loading a verified version into memory, and swapping the served model without dropping requests.

The watcher calls :meth:`ModelHolder.on_swap` on its worker thread after it has verified the new
version and moved the ``current`` link, and before it reports the replica ready. Raising here makes
the watcher revert the link and report ``failed`` with the message, while the old model keeps serving.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mdl.errors import InvalidInput, LoadFailed, MdlError
from mdl.host import now_iso
from mdl.manifest import MANIFEST_NAME, Manifest
from mdl.server import loaders
from mdl.server.loaders import LoadPolicy

log = logging.getLogger("mdl.server")

Loader = Callable[[Path], Any]
SWAP_POLICIES = ("availability", "resource")
# methods a request may ask for as outputs (v2 "outputs": [{"name": ...}]); "predict" is the default
OUTPUT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


@dataclass(eq=False)
class LoadedModel:
    """One version in memory. Requests hold a reference while they run, so an old version finishes
    its in-flight requests after a swap and is freed when the last one lets go."""

    name: str
    version: str
    digest: str | None
    format: str
    path: Path
    obj: Any
    methods: dict[str, Callable[[Any], Any]]
    n_features: int | None
    outputs_meta: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # name -> (datatype, shape)
    input_datatype: str = "FP64"
    # the object's own signature (an ONNX graph's): [(name, datatype, shape)]; empty: one input, "input-0"
    inputs_meta: list[tuple[str, str, list[int]]] = field(default_factory=list)
    default_outputs: tuple[str, ...] = ("predict",)  # what a request that names no output gets
    runs_code: bool = False  # a built-in loader ran code from the version's files (pickle, joblib)
    loaded_at: str = ""
    load_seconds: float = 0.0
    inflight: int = 0  # requests admitted on this version and not yet answered (event-loop thread only)

    @property
    def batchable(self) -> bool:
        return bool(getattr(self.obj, "mdl_batchable", True))

    @property
    def input_names(self) -> list[str]:
        return [name for name, _, _ in self.inputs_meta]

    def predict(self, x: Any, names: tuple[str, ...]) -> dict[str, Any]:
        """The outputs ``names`` for ``x``: one run of the model where it computes several at once."""
        run = getattr(self.obj, "mdl_run", None)
        if run is not None:
            return run(x, names)
        return {name: self.methods[name](x) for name in names}

    def metadata(self) -> dict[str, Any]:
        if self.inputs_meta:
            inputs = [{"name": n, "datatype": d, "shape": s} for n, d, s in self.inputs_meta]
        else:
            shape = [-1, self.n_features] if self.n_features is not None else [-1]
            inputs = [{"name": "input-0", "datatype": self.input_datatype, "shape": shape}]
        outputs = []
        for name in self.methods:
            datatype, oshape = self.outputs_meta.get(name, ("FP64", [-1]))
            outputs.append({"name": name, "datatype": datatype, "shape": oshape})
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": _platform(self),
            "inputs": inputs,
            "outputs": outputs,
            "parameters": {"format": self.format, "digest": self.digest, "loaded_at": self.loaded_at},
        }


def _platform(m: LoadedModel) -> str:
    own = getattr(m.obj, "mdl_platform", None)
    if isinstance(own, str):
        return own
    module = type(m.obj).__module__.split(".")[0]
    return "sklearn" if module == "sklearn" else f"mdl-{m.format}"


# -- loaders ------------------------------------------------------------------------------------


def resolve_loader(spec: str) -> Loader:
    """``module:function`` -> the function (imported now, so a typo fails at start, exit 2)."""
    module_name, sep, func_name = spec.partition(":")
    if not sep or not module_name or not func_name:
        raise InvalidInput(f"--loader {spec!r} is not module:function", hint="e.g. --loader mypkg.serving:load")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like uvicorn: modules next to where you run mdl serve
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise InvalidInput(f"--loader: cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    fn: Any = module
    for part in func_name.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise InvalidInput(f"--loader: {module_name!r} has no callable {func_name!r}")
    return fn


def load_model(
    name: str, version: str, path: Path, loader: Loader | None = None, policy: LoadPolicy | None = None
) -> LoadedModel:
    """Load and warm ``version`` from its verified directory. Raises LoadFailed with the reason."""
    started = time.perf_counter()
    try:
        manifest = Manifest.from_json((path / MANIFEST_NAME).read_bytes(), where=f"{path}/{MANIFEST_NAME}")
    except OSError as exc:
        raise LoadFailed(f"cannot read the manifest of {version}: {exc.strerror or exc}") from None
    except MdlError as exc:
        raise LoadFailed(exc.message) from None
    runs_code = False
    try:
        if loader is not None:
            obj = loader(path)
        else:
            fmt, file = loaders.artifact(path, manifest)
            loaders.check_policy(fmt, version, manifest, policy or LoadPolicy())
            runs_code = fmt in loaders.CODE_FORMATS
            obj = loaders.load(fmt, file, version, policy or LoadPolicy())
    except LoadFailed:
        raise
    except Exception as exc:  # unpickling errors are anything at all
        raise LoadFailed(f"loading {version} failed: {type(exc).__name__}: {exc}") from None
    if obj is None:
        raise LoadFailed(f"the loader returned nothing for {version}")
    model = LoadedModel(name, version, manifest.digest, manifest.format, path, obj, _methods(obj, version), None)
    model.runs_code = runs_code
    own_outputs = getattr(obj, "mdl_outputs", None)
    if isinstance(own_outputs, dict):  # the object declares its signature (ONNX): metadata from it
        model.outputs_meta.update(own_outputs)
        model.inputs_meta = list(getattr(obj, "mdl_inputs", []))
        model.default_outputs = tuple(own_outputs)
    n = getattr(obj, "n_features_in_", None)
    model.n_features = int(n) if isinstance(n, (int, np.integer)) else None
    _warm(model)
    model.loaded_at = now_iso()
    model.load_seconds = time.perf_counter() - started
    return model


def _methods(obj: Any, version: str) -> dict[str, Callable[[Any], Any]]:
    """Output name -> function of the input: the declared outputs (``mdl_outputs`` with ``mdl_run``),
    else the scikit-learn-style methods the object has, else the object itself if callable."""
    own = getattr(obj, "mdl_outputs", None)
    if isinstance(own, dict) and callable(getattr(obj, "mdl_run", None)):
        return {name: _one_output(obj.mdl_run, name) for name in own}
    methods: dict[str, Callable[[Any], Any]] = {}
    for m in OUTPUT_METHODS:
        fn = getattr(obj, m, None)  # getattr: sklearn hides unavailable methods (available_if)
        if callable(fn):
            methods[m] = fn
    if "predict" not in methods:
        if callable(obj) and not isinstance(obj, type):
            methods = {"predict": obj}
        else:
            raise LoadFailed(f"the object loaded from {version} ({type(obj).__name__}) has no predict method")
    return methods


def _one_output(run: Callable[[Any, tuple[str, ...]], dict[str, Any]], name: str) -> Callable[[Any], Any]:
    return lambda x: run(x, (name,))[name]


def _warm(model: LoadedModel) -> None:
    """One prediction before the model takes traffic: first-call costs are paid here, not by a user,
    and a model that cannot predict at all never replaces a working one."""
    sample = getattr(model.obj, "mdl_sample", None)
    explicit = sample is not None
    if sample is None and model.n_features is not None:
        sample = np.zeros((1, model.n_features), dtype=np.float64)
    if sample is None:
        return
    for name, fn in model.methods.items():
        try:
            out = np.asarray(fn(sample))
        except (ValueError, TypeError) as exc:
            if explicit:  # the model's own sample must work; zeros may just be an invalid input
                raise LoadFailed(f"warm-up {name} on the sample failed: {type(exc).__name__}: {exc}") from None
            log.info("warm-up %s on zeros failed (%s); not fatal", name, exc)
            continue
        except Exception as exc:
            raise LoadFailed(f"warm-up {name} failed: {type(exc).__name__}: {exc}") from None
        from mdl.server.codec import v2_datatype

        try:
            model.outputs_meta.setdefault(name, (v2_datatype(out.dtype), [-1, *out.shape[1:]]))
        except TypeError:
            pass
    x = np.asarray(sample) if not isinstance(sample, dict) else np.empty(0, dtype=object)
    if x.dtype.kind in "fiub" and not model.inputs_meta:
        from mdl.server.codec import v2_datatype

        model.input_datatype = v2_datatype(x.dtype)


# -- the served reference ---------------------------------------------------------------------------

Emit = Callable[..., None]


class ModelHolder:
    """Holds the one served model. ``active`` is read without a lock on the event loop: replacing the
    reference is atomic, and each request keeps the model it started with."""

    def __init__(
        self,
        name: str,
        loader: Loader | None = None,
        policy: str = "availability",
        events: Emit | None = None,
        metrics: Any = None,
        drain_timeout: float = 30.0,
        load_policy: LoadPolicy | None = None,
        before_unload: Callable[[str], None] | None = None,
    ) -> None:
        if policy not in SWAP_POLICIES:
            raise InvalidInput(f"--swap {policy!r}: use availability or resource")
        self.name = name
        self.loader = loader
        self.policy = policy
        self.load_policy = load_policy or LoadPolicy()
        self._warned: set[str] = set()  # versions whose code-running format was already reported
        self.active: LoadedModel | None = None
        self.last_error: str | None = None
        self._events = events or (lambda event, **kw: None)
        self._metrics = metrics
        self._drain_timeout = drain_timeout
        self._before_unload = before_unload  # resource swaps: called with the old version before it goes
        self.draining = False  # a resource swap is under way: /readyz says 503 from its first step
        self._frozen = False
        self._lock = threading.Lock()

    def on_swap(self, version: str, path: Path, previous: str | None) -> None:
        """The Watcher's hook: load ``version`` and make it the served model (see the module doc)."""
        try:
            self._swap(version, path)
        finally:
            self.draining = False

    def _swap(self, version: str, path: Path) -> None:
        with self._lock:
            old = self.active
            if old is not None and old.version == version and old.path == path:
                return  # a revert to what is still served (availability) — nothing to do
            if self.policy == "resource" and old is not None:
                self.draining = True  # until this swap ends, loaded or failed (below)
                self._unload(old)
                old = None
                gc.collect()
            started = time.perf_counter()
            try:
                new = load_model(self.name, version, path, self.loader, self.load_policy)
            except LoadFailed as exc:
                self.last_error = exc.message
                if self._metrics:
                    self._metrics.swap_failed(self.name)
                self._events(
                    "load-failed",
                    version=version,
                    error=exc.message,
                    serving=self.active.version if self.active else None,
                )
                raise
            self.active = new  # the switch: one reference
            self.last_error = None
            if not self._frozen:
                # Everything imported so far (the HTTP stack, numpy, the model's library) lives as long
                # as the process: keep it out of the cyclic GC, whose full passes over ~100k objects
                # otherwise stall every request for tens of milliseconds now and then.
                gc.freeze()
                self._frozen = True
            if self._metrics:
                self._metrics.swapped(new, time.perf_counter() - started)
            self._events(
                "loaded",
                version=version,
                previous=old.version if old else None,
                seconds=round(new.load_seconds, 4),
                policy=self.policy,
            )
            if new.runs_code and self.load_policy.pickle == "allow" and version not in self._warned:
                self._warned.add(version)
                self._events(
                    "warning",
                    version=version,
                    message=f"{version} loaded from a pickle/joblib file, which runs code from the file "
                    f"as it loads; to lock this down, {loaders.LOCK_DOWN}",
                )
        # ``old`` goes out of scope here: in-flight requests still hold it; the last one frees it

    def _unload(self, old: LoadedModel) -> None:
        """``--swap resource``: say so first (``before_unload``: the replica leaves the balancers
        following the registry), then stop taking requests, let those in flight finish, drop the model."""
        if self._before_unload is not None:
            self._before_unload(old.version)
        self.active = None  # new requests get 503 until the new version is in
        if self._metrics:
            self._metrics.unloaded()
        self._drain(old)
        self._events("unloaded", version=old.version, reason="--swap resource")

    def _drain(self, old: LoadedModel) -> None:
        deadline = time.monotonic() + self._drain_timeout
        while old.inflight > 0 and time.monotonic() < deadline:
            time.sleep(0.005)
