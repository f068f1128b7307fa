"""An ONNX graph behind the served-model interface: onnxruntime on the CPU, inputs and outputs by name.

The graph is the metadata: each input and output keeps its name, datatype and shape (a symbolic or
unknown dimension is -1). Requests are cast to an input's element type where numpy calls the cast
``same_kind`` (JSON numbers arrive as FP64, an iris graph takes FP32); anything else is refused as
the client's mistake. onnxruntime is imported here only, when a version in this format is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("mdl.server")

# onnxruntime's element types -> (Open Inference Protocol datatype, numpy dtype)
_TYPES: dict[str, tuple[str, Any]] = {
    "tensor(float)": ("FP32", np.float32),
    "tensor(double)": ("FP64", np.float64),
    "tensor(float16)": ("FP16", np.float16),
    "tensor(int8)": ("INT8", np.int8),
    "tensor(int16)": ("INT16", np.int16),
    "tensor(int32)": ("INT32", np.int32),
    "tensor(int64)": ("INT64", np.int64),
    "tensor(uint8)": ("UINT8", np.uint8),
    "tensor(uint16)": ("UINT16", np.uint16),
    "tensor(uint32)": ("UINT32", np.uint32),
    "tensor(uint64)": ("UINT64", np.uint64),
    "tensor(bool)": ("BOOL", np.bool_),
    "tensor(string)": ("BYTES", object),
}

Tensor = tuple[str, str, list[int]]  # name, datatype, shape


def _dims(shape: Any) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in (shape or [])]


class OnnxModel:
    """One inference session and the graph's signature. ``mdl_run`` is what requests call."""

    mdl_platform = "onnxruntime_onnx"  # Triton's name for this platform

    def __init__(self, file: Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # the engine runs one batch at a time on one worker; the event loop needs the other core
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: its warnings are not the operator's business
        self._session = ort.InferenceSession(str(file), sess_options=opts, providers=["CPUExecutionProvider"])
        self._invalid: tuple[type[BaseException], ...] = _invalid_argument_errors()
        self.mdl_inputs: list[Tensor] = []
        self._in_dtypes: dict[str, Any] = {}
        for i in self._session.get_inputs():
            if i.type not in _TYPES:
                raise ValueError(f"graph input {i.name!r} has type {i.type}, which requests cannot carry")
            datatype, dt = _TYPES[i.type]
            self.mdl_inputs.append((i.name, datatype, _dims(i.shape)))
            self._in_dtypes[i.name] = dt
        self.mdl_outputs: dict[str, tuple[str, list[int]]] = {}
        for o in self._session.get_outputs():
            if o.type not in _TYPES:  # a sequence or map (skl2onnx's ZipMap): not a tensor a response can hold
                log.warning("output %r of type %s is not served (only tensors are)", o.name, o.type)
                continue
            self.mdl_outputs[o.name] = (_TYPES[o.type][0], _dims(o.shape))
        if not self.mdl_outputs:
            raise ValueError("the graph has no tensor outputs (convert classifiers with zipmap off)")
        first = self.mdl_inputs[0][2] if len(self.mdl_inputs) == 1 else []
        self.n_features_in_ = first[1] if len(first) == 2 and first[1] > 0 else None
        self.mdl_batchable = all(shape and shape[0] == -1 for _, _, shape in self.mdl_inputs)
        self.mdl_sample = self._sample()

    def _sample(self) -> Any:
        """Zeros of every input's shape (unknown dimensions: 1) for the warm-up run."""
        feeds = {}
        for name, _, shape in self.mdl_inputs:
            dt = self._in_dtypes[name]
            dims = [d if d > 0 else 1 for d in shape]
            feeds[name] = np.full(dims, "", dtype=object) if dt is object else np.zeros(dims, dtype=dt)
        return next(iter(feeds.values())) if len(feeds) == 1 else feeds

    def mdl_run(self, x: Any, names: tuple[str, ...]) -> dict[str, Any]:
        """The outputs ``names`` for ``x`` (an array for a one-input graph, else a mapping by input name)."""
        given = x if isinstance(x, dict) else {self.mdl_inputs[0][0]: x}
        feeds = {name: self._feed(name, datatype, shape, given[name]) for name, datatype, shape in self.mdl_inputs}
        try:
            values = self._session.run(list(names), feeds)
        except self._invalid as exc:
            raise ValueError(str(exc).split("] ", 1)[-1]) from None
        return dict(zip(names, values, strict=True))

    def _feed(self, name: str, datatype: str, shape: list[int], value: Any) -> np.ndarray:
        arr = np.asarray(value)
        target = self._in_dtypes[name]
        if target is object:
            if arr.dtype.kind not in "USO":
                raise ValueError(f"input {name!r} takes BYTES (strings), got {arr.dtype}")
            arr = arr.astype(object)
        elif arr.dtype != target:
            if not np.can_cast(arr.dtype, target, "same_kind"):
                raise ValueError(f"input {name!r} takes {datatype}; values of type {arr.dtype} do not convert")
            arr = arr.astype(target)
        if arr.ndim != len(shape) or any(d >= 0 and d != n for d, n in zip(shape, arr.shape, strict=True)):
            want = ", ".join("rows" if i == 0 and d < 0 else str(d) if d >= 0 else "any" for i, d in enumerate(shape))
            raise ValueError(f"input {name!r} takes shape [{want}]; got {list(arr.shape)}")
        return arr

    def predict(self, x: Any) -> Any:
        """The first output: what the TF Serving API and plain callers get."""
        name = next(iter(self.mdl_outputs))
        return self.mdl_run(x, (name,))[name]


def _invalid_argument_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's exceptions for a feed it refuses (the client's input), where it exposes them."""
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as state
    except ImportError:  # pragma: no cover - every onnxruntime release so far has it
        return ()
    return tuple(e for e in (getattr(state, "InvalidArgument", None),) if isinstance(e, type))
