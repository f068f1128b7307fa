"""Wire formats: the Open Inference Protocol v2 (JSON and the binary tensor extension) and TF Serving's
REST ``:predict`` body. Pure functions over bytes and numpy arrays; every client mistake is a
:class:`ClientError` carrying the 4xx status and the message for ``{"error": ...}``.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

JSON_CT = b"application/json"
OCTET_CT = b"application/octet-stream"
MAX_DIMS = 8


class ClientError(Exception):
    """A request the server refuses: ``status`` is a 4xx (or 503 while nothing is loaded)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- datatypes --------------------------------------------------------------------------------------

V2_TO_NP: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_NP_TO_V2 = {(dt.kind, dt.itemsize): name for name, dt in V2_TO_NP.items() if name != "BYTES"}
# the JSON value kinds each datatype accepts (numpy kinds of np.asarray(data)): no silent float->int
_ACCEPTS = {"BOOL": "b", "FP16": "iuf", "FP32": "iuf", "FP64": "iuf"}
for _n in V2_TO_NP:
    if _n.startswith(("INT", "UINT")):
        _ACCEPTS[_n] = "iu"


def v2_datatype(dt: np.dtype) -> str:
    if dt.kind in "USOa":
        return "BYTES"
    name = _NP_TO_V2.get((dt.kind, dt.itemsize))
    if name is None:
        raise TypeError(f"the model returned values of type {dt}, which has no v2 datatype")
    return name


# -- request bodies ---------------------------------------------------------------------------------


def decode_body(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo a ``Content-Encoding`` (gzip, deflate) without letting a small body inflate past ``limit``."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise ClientError(415, f"unsupported Content-Encoding {encoding!r} (use gzip, deflate or none)")
    d = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ClientError(400, f"body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise ClientError(413, f"decompressed body is larger than the limit of {limit} bytes")
    return out


def load_json(data: bytes | memoryview) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ClientError(400, f"body is not valid JSON: {exc}") from None


def _object(doc: Any, what: str) -> dict:
    if not isinstance(doc, dict):
        raise ClientError(400, f"{what} must be a JSON object, not {type(doc).__name__ if doc is not None else 'null'}")
    return doc


def _check_shape(name: str, shape: Any) -> tuple[int, ...]:
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ClientError(400, f"input {name!r}: shape must be a list of at most {MAX_DIMS} non-negative integers")
    return tuple(shape)


def _check_kind(name: str, datatype: str, arr: np.ndarray) -> None:
    kind = arr.dtype.kind
    if arr.size and kind not in _ACCEPTS[datatype]:
        what = {"U": "strings", "O": "mixed or null values", "f": "non-integer numbers", "b": "booleans"}.get(
            kind, f"values of kind {kind!r}"
        )
        raise ClientError(400, f"input {name!r}: {datatype} data holds {what}")


def json_tensor(name: str, datatype: str, shape: tuple[int, ...], data: Any) -> np.ndarray:
    """A v2 JSON tensor (``data`` flat or nested, row-major) as an array of ``shape``."""
    count = math.prod(shape)
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        flat = _flatten(data)
        if not all(isinstance(x, str) for x in flat):
            raise ClientError(400, f"input {name!r}: BYTES data must be strings")
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError, OverflowError):
            raise ClientError(400, f"input {name!r}: data is not a regular array of {datatype} values") from None
        _check_kind(name, datatype, arr)
        dt = V2_TO_NP[datatype]
        if arr.dtype.kind in "iu" and dt.kind in "iu" and arr.size:
            info = np.iinfo(dt)
            if arr.min() < info.min or arr.max() > info.max:
                raise ClientError(400, f"input {name!r}: a value is out of range for {datatype}")
        with np.errstate(over="ignore"):
            arr = arr.astype(dt, copy=False)
    if arr.size != count:
        raise ClientError(400, f"input {name!r}: shape {list(shape)} needs {count} values, got {arr.size}")
    return arr.reshape(shape)


def _flatten(data: list) -> list:
    out: list = []
    stack = [iter(data)]
    while stack:
        for x in stack[-1]:
            if isinstance(x, list):
                stack.append(iter(x))
                break
            out.append(x)
        else:
            stack.pop()
    return out


def binary_tensor(name: str, datatype: str, shape: tuple[int, ...], raw: bytes | memoryview) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        items, off, raw = [], 0, bytes(raw)
        while off < len(raw):
            if off + 4 > len(raw):
                raise ClientError(400, f"input {name!r}: truncated BYTES element length")
            (n,) = struct.unpack_from("<I", raw, off)
            off += 4
            if off + n > len(raw):
                raise ClientError(400, f"input {name!r}: truncated BYTES element")
            items.append(raw[off : off + n])
            off += n
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        if arr.size != count:
            raise ClientError(400, f"input {name!r}: shape {list(shape)} needs {count} values, got {arr.size}")
        return arr.reshape(shape)
    dt = V2_TO_NP[datatype]
    if len(raw) != count * dt.itemsize:
        raise ClientError(
            400,
            f"input {name!r}: shape {list(shape)} of {datatype} needs {count * dt.itemsize} "
            f"bytes, got binary_data_size {len(raw)}",
        )
    return np.frombuffer(raw, dtype=dt).reshape(shape)


@dataclass
class V2Request:
    id: str | None
    inputs: list[tuple[str, np.ndarray]]
    outputs: list[tuple[str, bool]]  # (name, binary); empty: the model's default output
    binary_output: bool = False
    parameters: dict = field(default_factory=dict)


def parse_v2(body: bytes, header_length: str | None) -> V2Request:
    """Parse an infer request; ``header_length`` is the Inference-Header-Content-Length header."""
    binary: bytes | memoryview = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise ClientError(400, "Inference-Header-Content-Length is not an integer") from None
        if not 0 <= n <= len(body):
            raise ClientError(400, f"Inference-Header-Content-Length {n} is outside the body of {len(body)} bytes")
        view = memoryview(body)
        doc, binary = load_json(view[:n]), view[n:]
    else:
        doc = load_json(body)
    doc = _object(doc, "the request")
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise ClientError(400, "id must be a string")
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise ClientError(400, "parameters must be an object")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ClientError(400, "inputs must be a non-empty list of tensors")
    inputs = []
    offset = 0
    for i, t in enumerate(raw_inputs):
        t = _object(t, f"inputs[{i}]")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise ClientError(400, f"inputs[{i}]: name must be a non-empty string")
        datatype = t.get("datatype")
        if datatype not in V2_TO_NP:
            raise ClientError(
                400, f"input {name!r}: unsupported datatype {datatype!r} (use one of {', '.join(V2_TO_NP)})"
            )
        shape = _check_shape(name, t.get("shape"))
        if shape and shape[0] == 0:  # refused here: batched with other requests, a model would accept it
            raise ClientError(400, f"input {name!r}: shape {list(shape)} has no rows; send at least one")
        tparams = t.get("parameters") or {}
        if not isinstance(tparams, dict):
            raise ClientError(400, f"input {name!r}: parameters must be an object")
        size = tparams.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ClientError(400, f"input {name!r}: binary_data_size must be a non-negative integer")
            if "data" in t:
                raise ClientError(400, f"input {name!r}: has both data and binary_data_size")
            if offset + size > len(binary):
                raise ClientError(400, f"input {name!r}: binary_data_size {size} runs past the end of the body")
            inputs.append((name, binary_tensor(name, datatype, shape, binary[offset : offset + size])))
            offset += size
        else:
            if "data" not in t:
                raise ClientError(400, f"input {name!r}: has no data")
            inputs.append((name, json_tensor(name, datatype, shape, t["data"])))
    if offset != len(binary):
        raise ClientError(400, f"{len(binary) - offset} bytes of binary data follow the tensors they belong to")
    outputs = []
    raw_outputs = doc.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise ClientError(400, "outputs must be a list")
        for i, o in enumerate(raw_outputs):
            o = _object(o, f"outputs[{i}]")
            oname = o.get("name")
            if not isinstance(oname, str) or not oname:
                raise ClientError(400, f"outputs[{i}]: name must be a non-empty string")
            oparams = o.get("parameters") or {}
            if not isinstance(oparams, dict):
                raise ClientError(400, f"output {oname!r}: parameters must be an object")
            outputs.append((oname, bool(oparams.get("binary_data", False))))
    return V2Request(rid, inputs, outputs, bool(params.get("binary_data_output", False)), params)


def encode_v2(
    model_name: str, version: str, rid: str | None, outputs: list[tuple[str, bool, Any]]
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The response body and its extra headers (content type; the binary header length if any)."""
    out_docs = []
    parts: list[bytes] = []
    for name, binary, value in outputs:
        arr = np.asarray(value)
        datatype = v2_datatype(arr.dtype)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if binary:
            raw = (
                _bytes_tensor(arr)
                if datatype == "BYTES"
                else np.ascontiguousarray(arr, dtype=V2_TO_NP[datatype]).tobytes()
            )
            entry["parameters"] = {"binary_data_size": len(raw)}
            parts.append(raw)
        elif datatype == "BYTES":
            entry["data"] = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in arr.ravel()]
        elif datatype == "FP16":
            entry["data"] = arr.ravel().tolist()
        else:
            entry["data"] = np.ascontiguousarray(arr).ravel()
        out_docs.append(entry)
    doc: dict[str, Any] = {"model_name": model_name, "model_version": version, "outputs": out_docs}
    if rid is not None:
        doc["id"] = rid
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not parts:
        return head, [(b"content-type", JSON_CT)]
    return head + b"".join(parts), [
        (b"content-type", OCTET_CT),
        (b"inference-header-content-length", str(len(head)).encode()),
    ]


def _bytes_tensor(arr: np.ndarray) -> bytes:
    chunks = []
    for x in arr.ravel():
        b = x if isinstance(x, bytes) else str(x).encode()
        chunks.append(struct.pack("<I", len(b)) + b)
    return b"".join(chunks)


# -- TF Serving REST --------------------------------------------------------------------------------


@dataclass
class TFRequest:
    x: np.ndarray
    columnar: bool  # "inputs" (answer "outputs") rather than "instances" (answer "predictions")


def _single_named(value: Any, what: str) -> Any:
    if isinstance(value, dict):
        if len(value) != 1:
            raise ClientError(400, f"{what}: named inputs are not supported; this model takes one input")
        return next(iter(value.values()))
    return value


def parse_tf(body: bytes) -> TFRequest:
    doc = _object(load_json(body), "the request")
    if ("instances" in doc) == ("inputs" in doc):
        raise ClientError(400, 'the request needs exactly one of "instances" or "inputs"')
    columnar = "inputs" in doc
    value = doc["inputs"] if columnar else doc["instances"]
    if columnar:
        value = _single_named(value, "inputs")
    elif isinstance(value, list):
        value = [_single_named(v, "instances") for v in value]
    if not isinstance(value, list) or not value:
        raise ClientError(400, f'"{"inputs" if columnar else "instances"}" must be a non-empty list')
    try:
        x = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise ClientError(400, "instances are not a regular array (rows of different lengths?)") from None
    if x.dtype.kind not in "biufU":
        raise ClientError(400, "instances must hold numbers (or strings), not null or nested mixtures")
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    return TFRequest(x, columnar)


def encode_tf(version: str, columnar: bool, outputs: dict[str, Any]) -> bytes:
    """TF Serving's answer: one output as is; several by name (per row for ``instances``, as TF Serving does)."""
    values = {name: _tf_value(np.asarray(v)) for name, v in outputs.items()}
    data: Any
    if len(values) == 1:
        data = next(iter(values.values()))
    elif columnar:
        data = values
    else:
        arrays = {name: np.asarray(v) for name, v in outputs.items()}
        rows = min(len(a) for a in arrays.values()) if arrays else 0
        data = [{name: _tf_value(a[i]) for name, a in arrays.items()} for i in range(rows)]
    return orjson.dumps(
        {"outputs" if columnar else "predictions": data, "model_version": version}, option=orjson.OPT_SERIALIZE_NUMPY
    )


def _tf_value(arr: Any) -> Any:
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return arr.item() if arr.dtype.kind not in "SOa" else str(arr.item())
    return arr.tolist() if arr.dtype.kind in "USOa" or arr.dtype == np.float16 else np.ascontiguousarray(arr)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
