"""The HTTP APIs of one ``mdl serve`` process: Open Inference Protocol v2, TF Serving REST, metrics, and
client mistakes, each a 4xx with ``{"error": ...}`` that leaves the server serving.

Protocol behaviour does not depend on the backend, so this module runs one server on the embedded one.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from .conftest import INFER_BODY, REPO, ServerProc, clean_env

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
MAX_BODY = 256 * 1024


@pytest.fixture(scope="module")
def api(mdl_cmd, iris, tmp_path_factory):
    home = tmp_path_factory.mktemp("api")
    env = clean_env({"MDL_STORAGE_URL": f"file://{home}/models", "MDL_REGISTRY_URL": f"sqlite://{home}/registry.db"},
                    home)
    r = subprocess.run([*mdl_cmd, "push", "iris", str(iris["v1"]), "--version", "v1", "--promote"], env=env,
                       cwd=REPO, capture_output=True)
    assert r.returncode == 0, r.stderr
    s = ServerProc([*mdl_cmd, "serve", "iris", "--port", "0", "-o", "json", "--max-body", "256KiB"], env,
                   home / "serve.log")
    s.wait_ready("v1")
    s.client = httpx.Client(base_url=s.url, timeout=30)
    yield s
    s.client.close()
    assert s.stop() == 0
    assert any(e["event"] == "stopped" for e in s.events)


def test_v2_infer_answers_with_the_version(api, iris):
    body = {"id": "req-1", "inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32", "data": sum(ROWS, [])}]}
    r = api.client.post("/v2/models/iris/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["x-model-version"] == "v1"
    doc = r.json()
    assert doc["model_name"] == "iris" and doc["model_version"] == "v1" and doc["id"] == "req-1"
    [out] = doc["outputs"]
    expected = iris["models"]["v1"].predict(np.asarray(ROWS, dtype=np.float32))
    assert out == {"name": "predict", "datatype": "INT64", "shape": [3], "data": expected.tolist()}


def test_v2_nested_data_versioned_path_and_extra_outputs(api, iris):
    body = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": ROWS}],
            "outputs": [{"name": "predict_proba"}, {"name": "predict"}]}
    r = api.client.post("/v2/models/iris/versions/v1/infer", json=body)
    assert r.status_code == 200, r.text
    proba, pred = r.json()["outputs"]
    m = iris["models"]["v1"]
    assert proba["name"] == "predict_proba" and proba["shape"] == [3, 3] and proba["datatype"] == "FP64"
    np.testing.assert_allclose(np.reshape(proba["data"], (3, 3)), m.predict_proba(np.asarray(ROWS)))
    assert pred["data"] == m.predict(np.asarray(ROWS)).tolist()


def test_v2_binary_tensor_extension_and_gzip(api, iris):
    x = np.asarray(ROWS, dtype=np.float32)
    head = json.dumps({"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}],
                       "outputs": [{"name": "predict", "parameters": {"binary_data": True}}]}).encode()
    r = api.client.post("/v2/models/iris/infer", content=gzip.compress(head + x.tobytes()),
                        headers={"Inference-Header-Content-Length": str(len(head)), "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    doc = json.loads(r.content[:n])
    [out] = doc["outputs"]
    assert out["parameters"]["binary_data_size"] == 3 * 8
    values = np.frombuffer(r.content[n:], dtype="<i8")
    assert values.tolist() == iris["models"]["v1"].predict(x).tolist()


def test_tf_serving_predict_and_status(api, iris):
    m = iris["models"]["v1"]
    r = api.client.post("/v1/models/iris:predict", json={"instances": ROWS})
    assert r.status_code == 200, r.text
    assert r.headers["x-model-version"] == "v1"
    assert r.json() == {"predictions": m.predict(np.asarray(ROWS)).tolist(), "model_version": "v1"}
    r = api.client.post("/v1/models/iris/versions/v1:predict", json={"inputs": {"x": ROWS}})
    assert r.status_code == 200 and r.json()["outputs"] == m.predict(np.asarray(ROWS)).tolist()
    r = api.client.post("/v1/models/iris:predict", json={"signature_name": "serving_default",
                                                         "instances": [{"x": row} for row in ROWS]})
    assert r.status_code == 200 and len(r.json()["predictions"]) == 3
    r = api.client.get("/v1/models/iris")
    assert r.status_code == 200
    assert r.json() == {"model_version_status": [{"version": "v1", "state": "AVAILABLE",
                                                  "status": {"error_code": "OK", "error_message": ""}}]}
    assert api.client.get("/v1/models/iris/versions/v1").status_code == 200


def test_health_and_metadata(api):
    c = api.client
    assert c.get("/v2/health/live").status_code == 200
    assert c.get("/livez").json() == {"live": True}
    r = c.get("/v2/health/ready")
    assert r.status_code == 200 and r.json()["version"] == "v1" and r.json()["state"] == "ready"
    assert c.get("/readyz").status_code == 200
    assert c.get("/v2/models/iris/ready").json() == {"name": "iris", "version": "v1", "ready": True}
    assert c.get("/v2/models/iris/versions/v1/ready").status_code == 200
    meta = c.get("/v2/models/iris").json()
    assert meta["name"] == "iris" and meta["versions"] == ["v1"] and meta["platform"] == "sklearn"
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert {o["name"] for o in meta["outputs"]} >= {"predict", "predict_proba"}
    assert c.get("/v2").json()["name"] == "mdl"


def test_metrics(api):
    api.client.post("/v2/models/iris/infer", json=INFER_BODY)
    text = api.client.get("/metrics").text
    for needle in ('mdl_requests_total{code="200",model="iris",protocol="v2",version="v1"}',
                   'mdl_request_duration_seconds_bucket{le="0.005",model="iris",protocol="v2",version="v1"}',
                   'mdl_model_load_duration_seconds_count{model="iris"} 1.0',
                   'mdl_model_swaps_total{model="iris",result="ok"} 1.0',
                   'mdl_model_info{digest="sha256:', 'version="v1"', 'mdl_model_ready{model="iris"} 1.0',
                   "mdl_predict_batch_size_bucket"):
        assert needle in text, needle
    assert "_created" not in text


def _binary(header: dict, raw: bytes, declared: int | None = None) -> tuple[bytes, dict]:
    head = json.dumps(header).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head) if declared is None else declared)}


def _v2(**tensor) -> dict:
    t = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
    t.update(tensor)
    return {"inputs": [t]}


NAN_ROW = np.array([[np.nan, 1, 2, 3]], dtype=np.float32)
BAD = [
    # (id, method, path, body (dict: JSON; bytes: raw), headers, status, error contains)
    ("malformed-json", "POST", "/v2/models/iris/infer", b'{"inputs": [', {}, 400, "not valid JSON"),
    ("invalid-utf8", "POST", "/v2/models/iris/infer", b"\xff\xfe{}", {}, 400, "not valid JSON"),
    ("empty-body", "POST", "/v2/models/iris/infer", b"", {}, 400, "not valid JSON"),
    ("not-an-object", "POST", "/v2/models/iris/infer", [1, 2], {}, 400, "must be a JSON object"),
    ("no-inputs", "POST", "/v2/models/iris/infer", {}, {}, 400, "inputs must be a non-empty list"),
    ("empty-inputs", "POST", "/v2/models/iris/infer", {"inputs": []}, {}, 400, "non-empty list"),
    ("input-not-object", "POST", "/v2/models/iris/infer", {"inputs": [1]}, {}, 400, "inputs[0] must be"),
    ("no-name", "POST", "/v2/models/iris/infer", _v2(name=None), {}, 400, "name must be"),
    ("unknown-datatype", "POST", "/v2/models/iris/infer", _v2(datatype="FP8"), {}, 400, "unsupported datatype"),
    ("shape-not-list", "POST", "/v2/models/iris/infer", _v2(shape="1x4"), {}, 400, "shape must be"),
    ("negative-dim", "POST", "/v2/models/iris/infer", _v2(shape=[-1, 4]), {}, 400, "shape must be"),
    ("count-mismatch", "POST", "/v2/models/iris/infer", _v2(data=[1.0, 2.0, 3.0]), {}, 400, "needs 4 values"),
    ("wrong-features", "POST", "/v2/models/iris/infer", _v2(shape=[1, 3], data=[1, 2, 3]), {}, 400, "[rows, 4]"),
    ("one-dimensional", "POST", "/v2/models/iris/infer", _v2(shape=[4]), {}, 400, "[rows, 4]"),
    ("zero-rows", "POST", "/v2/models/iris/infer", _v2(shape=[0, 4], data=[]), {}, 400, "has no rows"),
    ("binary-zero-rows", "POST", "/v2/models/iris/infer",
     *_binary({"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP32",
                           "parameters": {"binary_data_size": 0}}]}, b""), 400, "has no rows"),
    ("strings-as-fp32", "POST", "/v2/models/iris/infer", _v2(data=["a", "b", "c", "d"]), {}, 400, "strings"),
    ("float-as-int64", "POST", "/v2/models/iris/infer", _v2(datatype="INT64"), {}, 400, "non-integer"),
    ("uint8-overflow", "POST", "/v2/models/iris/infer", _v2(datatype="UINT8", data=[1, 2, 3, 300]), {}, 400,
     "out of range"),
    ("ragged", "POST", "/v2/models/iris/infer", _v2(shape=[2, 2], data=[[1, 2], [3]]), {}, 400, "regular array"),
    ("null-value", "POST", "/v2/models/iris/infer", _v2(data=[1.0, None, 2.0, 3.0]), {}, 400, "null"),
    ("two-inputs", "POST", "/v2/models/iris/infer", {"inputs": _v2()["inputs"] * 2}, {}, 400, "one input tensor"),
    ("unknown-output", "POST", "/v2/models/iris/infer", {**_v2(), "outputs": [{"name": "embedding"}]}, {}, 400,
     "no output 'embedding'"),
    ("id-not-string", "POST", "/v2/models/iris/infer", {**_v2(), "id": 7}, {}, 400, "id must be a string"),
    ("unknown-model", "POST", "/v2/models/nope/infer", _v2(), {}, 404, "not served here"),
    ("unknown-version", "POST", "/v2/models/iris/versions/v9/infer", _v2(), {}, 404, "not loaded"),
    ("unknown-model-meta", "GET", "/v2/models/nope", None, {}, 404, "not served here"),
    ("unknown-version-ready", "GET", "/v2/models/iris/versions/v9/ready", None, {}, 404, "not loaded"),
    ("get-on-infer", "GET", "/v2/models/iris/infer", None, {}, 405, "not allowed"),
    ("no-such-endpoint", "GET", "/v3/anything", None, {}, 404, "no such endpoint"),
    ("body-too-large", "POST", "/v2/models/iris/infer", b"x" * (MAX_BODY + 1), {}, 413, "larger than the limit"),
    ("gzip-bomb", "POST", "/v2/models/iris/infer", gzip.compress(b" " * (MAX_BODY * 4)),
     {"Content-Encoding": "gzip"}, 413, "decompressed body"),
    ("bad-gzip", "POST", "/v2/models/iris/infer", b"not gzip", {"Content-Encoding": "gzip"}, 400, "gzip"),
    ("unknown-encoding", "POST", "/v2/models/iris/infer", b"{}", {"Content-Encoding": "br"}, 415, "Content-Encoding"),
    ("header-length-not-int", "POST", "/v2/models/iris/infer", b"{}", {"Inference-Header-Content-Length": "x"}, 400,
     "not an integer"),
    ("binary-past-end", "POST", "/v2/models/iris/infer",
     *_binary({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                           "parameters": {"binary_data_size": 16}}]}, b"\0" * 8), 400, "past the end"),
    ("binary-size-mismatch", "POST", "/v2/models/iris/infer",
     *_binary({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                           "parameters": {"binary_data_size": 12}}]}, b"\0" * 12), 400, "needs 16 bytes"),
    ("binary-trailing-bytes", "POST", "/v2/models/iris/infer",
     *_binary({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                           "parameters": {"binary_data_size": 16}}]}, b"\0" * 20), 400, "4 bytes of binary"),
    ("binary-nan", "POST", "/v2/models/iris/infer",
     *_binary({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                           "parameters": {"binary_data_size": 16}}]}, NAN_ROW.tobytes()), 400, "NaN"),
    ("binary-bytes-truncated", "POST", "/v2/models/iris/infer",
     *_binary({"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES",
                           "parameters": {"binary_data_size": 6}}]}, struct.pack("<I", 9) + b"ab"), 400,
     "truncated"),
    ("tf-neither", "POST", "/v1/models/iris:predict", {"signature_name": "x"}, {}, 400, "exactly one of"),
    ("tf-both", "POST", "/v1/models/iris:predict", {"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, {}, 400,
     "exactly one of"),
    ("tf-no-instances", "POST", "/v1/models/iris:predict", {"instances": []}, {}, 400, "non-empty list"),
    ("tf-no-inputs", "POST", "/v1/models/iris:predict", {"inputs": {"x": []}}, {}, 400, "non-empty list"),
    ("tf-ragged", "POST", "/v1/models/iris:predict", {"instances": [[1, 2, 3, 4], [1, 2]]}, {}, 400, "regular array"),
    ("tf-wrong-features", "POST", "/v1/models/iris:predict", {"instances": [[1, 2, 3]]}, {}, 400, "[rows, 4]"),
    ("tf-named-inputs", "POST", "/v1/models/iris:predict", {"instances": [{"a": 1, "b": 2}]}, {}, 400, "named inputs"),
    ("tf-nulls", "POST", "/v1/models/iris:predict", {"instances": [[1, None, 3, 4]]}, {}, 400, "numbers"),
    ("tf-unknown-model", "POST", "/v1/models/nope:predict", {"instances": [[1, 2, 3, 4]]}, {}, 404, "not served"),
    ("tf-classify", "POST", "/v1/models/iris:classify", {"examples": []}, {}, 400, "not supported"),
    ("tf-unknown-version", "GET", "/v1/models/iris/versions/v9", None, {}, 404, "not loaded"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_client_mistakes_get_a_4xx_with_an_error(api, case):
    _, method, path, body, headers, status, needle = case
    if isinstance(body, (bytes, type(None))):
        r = api.client.request(method, path, content=body, headers=headers)
    else:
        r = api.client.request(method, path, json=body, headers=headers)
    assert r.status_code == status, r.text
    doc = r.json()
    assert set(doc) == {"error"} and needle in doc["error"], doc
    assert api.proc.poll() is None


def test_a_zero_row_request_gets_400_alone_and_among_concurrent_ones(api):
    """The engine batches concurrent requests into one predict call, where 0 rows would pass unnoticed: the
    answer must not depend on the company a request keeps."""
    zero = [_v2(shape=[0, 4], data=[]), {"instances": []}]
    normal = _v2()
    for body in zero:  # alone
        r = api.client.post("/v2/models/iris/infer" if "inputs" in body else "/v1/models/iris:predict", json=body)
        assert r.status_code == 400, r.text
    batches = _batched(api)

    def client(i: int) -> list[tuple[bool, int, str]]:
        out = []
        with httpx.Client(base_url=api.url, timeout=30) as c:
            for j in range(40):
                if (i + j) % 4 == 0:
                    body = zero[j % 2]
                    path = "/v2/models/iris/infer" if "inputs" in body else "/v1/models/iris:predict"
                else:
                    body, path = normal, "/v2/models/iris/infer"
                r = c.post(path, json=body)
                out.append(((i + j) % 4 == 0, r.status_code, r.text))
        return out

    with ThreadPoolExecutor(8) as pool:
        results = [x for part in pool.map(client, range(8)) for x in part]
    assert _batched(api) > batches, "no request was batched with another: the test proved nothing"
    for is_zero, status, text in results:
        if is_zero:
            assert status == 400 and ("has no rows" in text or "non-empty list" in text), (status, text)
        else:
            assert status == 200, text


def _batched(api) -> float:
    """Requests answered together with another so far (the batch-size histogram's sum minus its count)."""
    text = api.client.get("/metrics").text
    value = {line.split("{")[0]: float(line.split()[-1]) for line in text.splitlines()
             if line.startswith(("mdl_predict_batch_size_sum", "mdl_predict_batch_size_count"))}
    return value["mdl_predict_batch_size_sum"] - value["mdl_predict_batch_size_count"]


def test_after_the_mistakes_the_server_still_serves_and_never_answered_5xx(api):
    assert len(BAD) >= 20
    for _ in range(3):
        r = api.client.post("/v2/models/iris/infer", json=INFER_BODY)
        assert r.status_code == 200 and r.json()["model_version"] == "v1"
    assert api.client.get("/v2/health/ready").status_code == 200
    text = api.client.get("/metrics").text
    codes = {line.split('code="')[1].split('"')[0] for line in text.splitlines()
             if line.startswith("mdl_requests_total{")}
    assert codes and all(c[0] in "24" for c in codes), codes
    assert api.proc.poll() is None
    assert "Traceback" not in Path(api.log).read_text()
