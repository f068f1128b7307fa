"""Formats that load without running code (ONNX, skops) served over both APIs, and the pickle policy.

The ONNX model is the iris classifier converted by skl2onnx; the skops one is the same model saved
with skops.io. Both are made here, pushed with the real CLI and served by ``mdl serve``.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from mdl.errors import IntegrityError, LoadFailed
from mdl.server.loaders import LoadPolicy
from mdl.server.model import ModelHolder, load_model

from .conftest import push
from .test_engine import X, make_version

tritonclient_http = pytest.importorskip("tritonclient.http")
skops_io = pytest.importorskip("skops.io")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)
LOCK_DOWN = "push skops or ONNX models, or set serve.pickle: signed (trusted signers only) or deny"


class Doubler:
    """A custom type: skops does not trust it unless serve.skops_trusted names it."""

    def predict(self, x: Any) -> Any:
        return np.asarray(x).sum(axis=1) * 2


UNTRUSTED = f"{__name__}.Doubler"


@pytest.fixture(scope="module")
def safe(iris: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The iris v1 model as ONNX (zipmap off: tensors out) and as skops, and a skops file of a custom type."""
    from skl2onnx import to_onnx

    d = tmp_path_factory.mktemp("safe")
    model = iris["models"]["v1"]
    onx = to_onnx(model, ROWS[:1], options={"zipmap": False})
    (d / "onnx").mkdir()
    (d / "onnx" / "iris.onnx").write_bytes(onx.SerializeToString())
    (d / "skops").mkdir()
    skops_io.dump(model, d / "skops" / "iris.skops")
    (d / "custom").mkdir()
    skops_io.dump(Doubler(), d / "custom" / "doubler.skops")
    return {
        "model": model,
        "onnx": d / "onnx" / "iris.onnx",
        "skops": d / "skops" / "iris.skops",
        "custom": d / "custom" / "doubler.skops",
    }


def _infer_both_ways(client: Any, name: str, in_name: str, outputs: tuple[str, str], model: Any) -> None:
    """tritonclient with binary and JSON tensors: the label and the probabilities, by output name."""
    label, proba = outputs
    for binary in (True, False):
        inp = tritonclient_http.InferInput(in_name, list(ROWS.shape), "FP32")
        inp.set_data_from_numpy(ROWS, binary_data=binary)
        requested = [
            tritonclient_http.InferRequestedOutput(proba, binary_data=binary),
            tritonclient_http.InferRequestedOutput(label, binary_data=not binary),
        ]
        result = client.infer(name, [inp], outputs=requested, request_id=f"r-{binary}")
        assert result.as_numpy(label).tolist() == model.predict(ROWS).tolist()
        np.testing.assert_allclose(result.as_numpy(proba), model.predict_proba(ROWS), rtol=1e-4, atol=1e-6)
        assert result.get_response()["id"] == f"r-{binary}"


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_onnx_served_over_both_apis_with_metadata_from_the_graph(serve, mdl, safe):
    push(mdl, "iris", safe["onnx"], "v1", "--promote")
    shown = mdl("show", "iris", "v1", "-o", "json")
    assert shown.returncode == 0 and '"format": "onnx"' in shown.stdout.decode()
    s = serve("iris")
    s.wait_ready("v1")
    assert not [e for e in s.events if e["event"] == "warning"]  # ONNX runs no code from the file
    url = s.url
    meta = httpx.get(url + "/v2/models/iris").json()
    assert {k: meta[k] for k in ("name", "versions", "platform", "inputs", "outputs")} == {
        "name": "iris",
        "versions": ["v1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }
    assert meta["parameters"]["format"] == "onnx"

    client = tritonclient_http.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.get_model_metadata("iris")["inputs"][0]["name"] == "X"
        _infer_both_ways(client, "iris", "X", ("label", "probabilities"), safe["model"])
        # no outputs named: every output of the graph, as Triton answers
        inp = tritonclient_http.InferInput("X", [1, 4], "FP64")  # FP64 in: cast to the graph's FP32
        inp.set_data_from_numpy(ROWS[:1].astype(np.float64))
        result = client.infer("iris", [inp])
        assert [o["name"] for o in result.get_response()["outputs"]] == ["label", "probabilities"]
        bad = tritonclient_http.InferInput("X", [1, 3], "FP32")
        bad.set_data_from_numpy(ROWS[:1, :3])
        with pytest.raises(tritonclient_http.InferenceServerException, match=r"\[rows, 4\]"):
            client.infer("iris", [bad])
    finally:
        client.close()

    expected = safe["model"].predict(ROWS).tolist()
    proba = safe["model"].predict_proba(ROWS)
    rows = httpx.post(url + "/v1/models/iris:predict", json={"instances": ROWS.tolist()}, timeout=30).json()
    assert rows["model_version"] == "v1"
    assert [p["label"] for p in rows["predictions"]] == expected
    np.testing.assert_allclose([p["probabilities"] for p in rows["predictions"]], proba, rtol=1e-4, atol=1e-6)
    cols = httpx.post(url + "/v1/models/iris:predict", json={"inputs": {"X": ROWS.tolist()}}, timeout=30).json()
    assert cols["outputs"]["label"] == expected
    np.testing.assert_allclose(cols["outputs"]["probabilities"], proba, rtol=1e-4, atol=1e-6)
    r = httpx.post(url + "/v1/models/iris:predict", json={"instances": [["a", "b", "c", "d"]]}, timeout=30)
    assert r.status_code == 400 and "takes FP32" in r.json()["error"]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_skops_served_over_both_apis(serve, mdl, safe, tmp_path):
    plain = tmp_path / "iris-model"  # no suffix: recognised by its content (a zip with schema.json)
    plain.write_bytes(safe["skops"].read_bytes())
    push(mdl, "iris", plain, "v1", "--promote")
    shown = mdl("show", "iris", "v1", "-o", "json")
    assert '"format": "skops"' in shown.stdout.decode()
    s = serve("iris")
    s.wait_ready("v1")
    assert not [e for e in s.events if e["event"] == "warning"]
    meta = httpx.get(s.url + "/v2/models/iris").json()
    assert meta["platform"] == "sklearn" and meta["parameters"]["format"] == "skops"
    client = tritonclient_http.InferenceServerClient(url=s.url.removeprefix("http://"))
    try:
        _infer_both_ways(client, "iris", "input-0", ("predict", "predict_proba"), safe["model"])
    finally:
        client.close()
    r = httpx.post(s.url + "/v1/models/iris:predict", json={"instances": ROWS.tolist()}, timeout=30).json()
    assert r == {"predictions": safe["model"].predict(ROWS).tolist(), "model_version": "v1"}


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_skops_file_with_an_untrusted_type_is_refused_and_the_old_version_keeps_serving(serve, mdl, safe):
    push(mdl, "iris", safe["skops"], "v1", "--promote")
    s = serve("iris")
    s.wait_ready("v1")
    push(mdl, "iris", safe["custom"], "v2", "--promote")
    failed = s.wait_event(lambda e: e["event"] == "load-failed")
    assert {k: failed[k] for k in ("version", "error", "serving")} == {
        "version": "v2",
        "error": f"v2 (skops) holds types that are not trusted: {UNTRUSTED}",
        "serving": "v1",
    }
    ready = httpx.get(s.url + "/readyz").json()
    assert ready["hint"] == "if you trust the code of these types, list them in serve.skops_trusted"
    r = httpx.post(s.url + "/v1/models/iris:predict", json={"instances": ROWS.tolist()}, timeout=30)
    assert r.json() == {"predictions": safe["model"].predict(ROWS).tolist(), "model_version": "v1"}


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_pickle_deny_refuses_a_pickle_and_the_old_version_keeps_serving(serve, mdl, safe, iris):
    push(mdl, "iris", safe["onnx"], "v1", "--promote")
    s = serve("iris", env={"MDL_SERVE_PICKLE": "deny"})
    s.wait_ready("v1")
    push(mdl, "iris", iris["v2"], "v2", "--promote")
    failed = s.wait_event(lambda e: e["event"] == "failed")
    assert {k: failed[k] for k in ("version", "error", "hint", "permanent", "serving")} == {
        "version": "v2",
        "error": "v2 is a pickle model and serve.pickle is deny: loading it would run code from its files",
        "hint": "push the model as skops or ONNX (formats that load without running code)",
        "permanent": True,
        "serving": "v1",
    }
    r = httpx.post(s.url + "/v1/models/iris:predict", json={"instances": ROWS.tolist()}, timeout=30)
    assert r.status_code == 200 and r.json()["model_version"] == "v1"
    assert not [e for e in s.events if e["event"] == "warning"]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_pickle_allow_warns_once_per_version_loaded(serve, mdl, iris):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    push(mdl, "iris", iris["v2"], "v2")
    s = serve("iris")
    s.wait_ready("v1")
    assert mdl("promote", "iris", "v2").returncode == 0
    s.wait_ready("v2")
    assert mdl("promote", "iris", "v1").returncode == 0  # back to v1: loaded again, not warned again
    s.wait_ready("v1")
    s.wait_event(lambda e: e["event"] == "loaded" and e["version"] == "v1" and e["previous"] == "v2")
    warnings = [(e["version"], e["message"]) for e in s.events if e["event"] == "warning"]
    assert warnings == [
        (v, f"{v} loaded from a pickle/joblib file, which runs code from the file as it loads; to lock this down, "
            f"{LOCK_DOWN}")
        for v in ("v1", "v2")
    ]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_pickle_warning_is_one_line_on_stderr_for_people(mdl_cmd, mdl, backend_env, iris, tmp_path):
    """Without -o json the warning is one line on stderr, like every event line of mdl serve."""
    import os
    import signal
    import subprocess
    import time

    env = {**os.environ, **backend_env}
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([*mdl_cmd, "serve", "iris", "--port", "0", "--cache", str(tmp_path / "c")], env=env,
                                stdout=subprocess.PIPE, stderr=err)
        try:
            deadline = time.monotonic() + 60
            while " warning " not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
    assert out == b""  # stdout is data only
    lines = [line for line in log.read_text().splitlines() if " warning " in line]
    assert len(lines) == 1, log.read_text()
    assert lines[0].split(" ", 1)[1] == (
        "iris warning version=v1 message=v1 loaded from a pickle/joblib file, which runs code from the file as it "
        f"loads; to lock this down, {LOCK_DOWN}"
    )


# -- in process: the trusted list, the signed policy, the ONNX adapter's refusals ---------------------------


def test_a_trusted_custom_type_loads(tmp_path, safe):
    d = make_version(tmp_path, "v1", {"doubler.skops": safe["custom"].read_bytes()}, "skops")
    with pytest.raises(LoadFailed, match=f"not trusted: {UNTRUSTED}$"):
        load_model("m", "v1", d)
    m = load_model("m", "v1", d, policy=LoadPolicy(skops_trusted=(UNTRUSTED,)))
    assert m.predict(X, ("predict",))["predict"].tolist() == (X.sum(axis=1) * 2).tolist() and not m.runs_code


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict]] = []

    def __call__(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))


def test_pickle_signed_loads_only_what_verifies(tmp_path, iris, safe):
    import pickle

    signed = {"v1"}
    checked: list[str] = []

    def verify(version: str, manifest: Any) -> list[str]:
        checked.append(version)
        if version not in signed:
            raise IntegrityError(f"version iris/{version} is not signed", hint=f"sign it: mdl sign iris {version}")
        return ["ci"]

    rec = Recorder()
    h = ModelHolder("iris", events=rec, load_policy=LoadPolicy("signed", verify=verify))
    h.on_swap("v1", make_version(tmp_path, "v1", {"m.pkl": pickle.dumps(iris["models"]["v1"])}, "pickle"), None)
    with pytest.raises(LoadFailed) as e:
        h.on_swap("v2", make_version(tmp_path, "v2", {"m.pkl": pickle.dumps(iris["models"]["v2"])}, "pickle"), "v1")
    assert e.value.message == "v2 is a pickle model and serve.pickle is signed: version iris/v2 is not signed"
    assert e.value.hint == "sign it: mdl sign iris v2"
    h.on_swap("v3", make_version(tmp_path, "v3", {"iris.onnx": safe["onnx"].read_bytes()}, "onnx"), "v1")
    assert checked == ["v1", "v2"]  # ONNX runs no code: no signature needed by this policy
    assert h.active is not None and h.active.version == "v3"
    assert [e for e, _ in rec.events] == ["loaded", "load-failed", "loaded"]  # signed: no warning


def test_pickle_signed_without_a_verifier_refuses(tmp_path, iris):
    import pickle

    d = make_version(tmp_path, "v1", {"m.pkl": pickle.dumps(iris["models"]["v1"])}, "pickle")
    with pytest.raises(LoadFailed, match="cannot check signatures"):
        load_model("iris", "v1", d, policy=LoadPolicy("signed"))


def test_onnx_refuses_what_the_graph_cannot_take(tmp_path, safe):
    m = load_model("iris", "v1", make_version(tmp_path, "v1", {"iris.onnx": safe["onnx"].read_bytes()}, "onnx"))
    assert m.batchable and m.n_features == 4 and m.default_outputs == ("label", "probabilities")
    with pytest.raises(ValueError, match=r"input 'X' takes shape \[rows, 4\]; got \[4\]"):
        m.predict(X[0], ("label",))
    with pytest.raises(ValueError, match="input 'X' takes FP32; values of type <U1 do not convert"):
        m.predict(np.array([["a", "b", "c", "d"]]), ("label",))
    out = m.predict(X.astype(np.int64), ("label",))  # integers convert to FP32 (same kind for numpy)
    assert list(out) == ["label"] and len(out["label"]) == len(X)


def test_onnx_with_two_named_inputs(tmp_path):
    """A graph with two inputs: the v2 API maps tensors by name; metadata lists both."""
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "add", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = make_version(tmp_path, "v1", {"add.onnx": model.SerializeToString()}, "onnx")
    m = load_model("adder", "v1", path)
    assert m.metadata()["inputs"] == [
        {"name": "a", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "b", "datatype": "FP32", "shape": [-1, 2]},
    ]
    assert m.n_features is None and m.input_names == ["a", "b"]
    out = m.predict({"a": np.ones((3, 2)), "b": np.full((3, 2), 2.0)}, ("sum",))
    assert out["sum"].tolist() == [[3.0, 3.0]] * 3


def test_engine_maps_named_inputs_and_refuses_wrong_names(tmp_path):
    import asyncio
    import json

    from onnx import TensorProto, helper

    from mdl.server.engine import TF, V2, Job, run_batch

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 2])
    y = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "add", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    m = load_model("adder", "v1", make_version(tmp_path, "v1", {"add.onnx": model.SerializeToString()}, "onnx"))

    def tensor(name: str, value: float) -> dict:
        return {"name": name, "datatype": "FP32", "shape": [1, 2], "data": [value, value]}

    async def run(kind: int, body: dict) -> tuple[int, dict]:
        job = Job(m, kind, json.dumps(body).encode(), None, asyncio.get_running_loop().create_future())
        run_batch([job], 8)
        assert job.response is not None
        return job.response[0], json.loads(job.response[2])

    status, doc = asyncio.run(run(V2, {"inputs": [tensor("b", 2.0), tensor("a", 1.0)]}))
    assert status == 200 and doc["outputs"] == [{"name": "sum", "datatype": "FP32", "shape": [1, 2], "data": [3, 3]}]
    status, doc = asyncio.run(run(V2, {"inputs": [tensor("a", 1.0), tensor("c", 1.0)]}))
    assert (status, doc) == (400, {"error": "model adder takes the inputs a, b; got a, c"})
    status, doc = asyncio.run(run(TF, {"instances": [[1.0, 2.0]]}))
    assert (status, doc) == (400, {"error": "model adder takes 2 named inputs: use the v2 API (/v2/models)"})


def test_an_onnx_file_that_is_not_a_graph_fails_to_load(tmp_path):
    with pytest.raises(LoadFailed, match="loading v1 failed"):
        load_model("iris", "v1", make_version(tmp_path, "v1", {"model.onnx": b"not a graph"}, "onnx"))


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_pickle_signed_without_trust_anchors_is_a_configuration_error(mdl_cmd, backend_env, tmp_path):
    import os
    import subprocess

    env = {**os.environ, **backend_env, "MDL_SERVE_PICKLE": "signed", "XDG_CONFIG_HOME": str(tmp_path)}
    env = {k: v for k, v in env.items() if not k.startswith("MDL_TRUST_") and k != "MDL_CONFIG"}
    r = subprocess.run([*mdl_cmd, "serve", "iris", "--port", "0"], env=env, capture_output=True, timeout=60)
    assert r.returncode == 7 and r.stdout == b""
    assert r.stderr.decode().splitlines()[0] == (
        "error: no trust anchors are configured: no signature can be verified"
    )
