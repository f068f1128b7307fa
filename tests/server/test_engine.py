"""In-process pieces of the server: loaders, the swap policies, and the batching engine."""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from mdl.manifest import MANIFEST_NAME, FileEntry, Manifest, digest_of, hash_file
from mdl.server.engine import TF, V2, Engine, Job, run_batch
from mdl.server.model import LoadedModel, ModelHolder, load_model, resolve_loader
from mdl.errors import InvalidInput, LoadFailed

X = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [6.3, 2.9, 5.6, 1.8]])


def make_version(root: Path, version: str, files: dict[str, bytes], fmt: str, kind: str = "file") -> Path:
    d = root / version
    d.mkdir(parents=True)
    entries = []
    for rel, data in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
        size, sha = hash_file(d / rel)
        entries.append(FileEntry(rel, size, sha))
    m = Manifest(name="iris", version=version, files=entries, digest=digest_of(entries), created="2026-01-01T00:00:00Z",
                 creator="test", mdl_version="0", format=fmt, kind=kind)
    (d / MANIFEST_NAME).write_bytes(m.to_json())
    return d


class Sampled:
    """A custom model with its own warm-up sample."""

    mdl_sample = np.zeros((1, 2))

    def predict(self, x):
        if x.shape[1] != 3:
            raise ValueError("needs 3 columns")
        return x.sum(axis=1)


def test_builtin_loaders_pick_by_format(tmp_path, iris):
    m = iris["models"]["v1"]
    data = pickle.dumps(m)
    a = load_model("iris", "a", make_version(tmp_path, "a", {"model.pkl": data}, "pickle"))
    assert a.n_features == 4 and set(a.methods) >= {"predict", "predict_proba"}
    assert a.outputs_meta["predict"] == ("INT64", [-1]) and a.load_seconds > 0
    b = load_model("iris", "b", make_version(tmp_path, "b", {"model.joblib": iris["joblib"].read_bytes()}, "joblib"))
    assert b.methods["predict"](X).tolist() == m.predict(X).tolist()
    c = load_model("iris", "c", make_version(tmp_path, "c", {"README": b"hi", "sub/model.pkl": data}, "directory",
                                             "directory"))
    assert c.methods["predict"](X).tolist() == m.predict(X).tolist()
    with pytest.raises(LoadFailed, match="2 model files"):
        load_model("iris", "d", make_version(tmp_path, "d", {"a.pkl": data, "b.pkl": data}, "directory", "directory"))
    with pytest.raises(LoadFailed, match="no built-in loader for format 'pytorch'") as e:
        load_model("iris", "e", make_version(tmp_path, "e", {"model.pt": b"x"}, "pytorch"))
    assert "--loader" in (e.value.hint or "")
    with pytest.raises(LoadFailed, match="UnpicklingError|loading f failed"):
        load_model("iris", "f", make_version(tmp_path, "f", {"model.pkl": b"\x80\x04garbage"}, "pickle"))
    with pytest.raises(LoadFailed, match="has no predict method"):
        load_model("iris", "g", make_version(tmp_path, "g", {"model.pkl": pickle.dumps([1, 2])}, "pickle"))
    with pytest.raises(LoadFailed, match="warm-up predict on the sample failed"):
        load_model("iris", "h", make_version(tmp_path, "h", {"model.pkl": pickle.dumps(Sampled())}, "pickle"))
    with pytest.raises(LoadFailed, match="manifest"):
        load_model("iris", "i", tmp_path / "missing")


def test_custom_loader_resolution(tmp_path, monkeypatch):
    (tmp_path / "plug_mod.py").write_text("def load(path):\n    return lambda x: [len(str(path))] * len(x)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = resolve_loader("plug_mod:load")
    d = make_version(tmp_path, "v", {"weights.bin": b"123"}, "file")
    m = load_model("iris", "v", d, fn)
    assert m.methods["predict"]([1, 2]) == [len(str(d))] * 2 and m.n_features is None
    for spec, msg in (("nocolon", "not module:function"), ("plug_mod:nothing", "no callable"),
                      ("no_such_mod_xyz:f", "cannot import")):
        with pytest.raises(InvalidInput, match=msg):
            resolve_loader(spec)


def _v2_body(rows) -> bytes:
    rows = np.asarray(rows)
    return json.dumps({"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64",
                                   "data": rows.ravel().tolist()}]}).encode()


def _jobs(model: LoadedModel, bodies: list[tuple[int, bytes, str | None]]) -> list[Job]:
    loop = asyncio.new_event_loop()
    try:
        return [Job(model, kind, body, hl, loop.create_future()) for kind, body, hl in bodies]
    finally:
        loop.close()


def test_batching_gives_each_request_its_own_rows_and_isolates_a_bad_one(tmp_path, iris):
    m = iris["models"]["v1"]
    model = load_model("iris", "v1", make_version(tmp_path, "v1", {"model.pkl": pickle.dumps(m)}, "pickle"))
    calls = []
    real = model.methods["predict"]
    model.methods["predict"] = lambda x: calls.append(len(x)) or real(x)
    nan = X[:1].copy()
    nan[0, 0] = np.nan
    head = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                   "parameters": {"binary_data_size": 32}}]}).encode()
    jobs = _jobs(model, [(V2, _v2_body(X[:1]), None), (V2, _v2_body(X[1:3]), None),
                         (TF, json.dumps({"instances": X[3:].tolist()}).encode(), None),
                         (V2, head + nan.tobytes(), str(len(head))),
                         (V2, b"{broken", None), (V2, _v2_body(X), None)])
    run_batch(jobs, max_batch=64)
    status = [j.response[0] for j in jobs]
    assert status == [200, 200, 200, 400, 400, 200]
    out = [json.loads(j.response[2]) for j in jobs]
    assert out[0]["outputs"][0]["data"] == m.predict(X[:1]).tolist()
    assert out[1]["outputs"][0]["data"] == m.predict(X[1:3]).tolist()
    assert out[2] == {"predictions": m.predict(X[3:]).tolist(), "model_version": "v1"}
    assert "NaN" in out[3]["error"] and "not valid JSON" in out[4]["error"]
    assert out[5]["outputs"][0]["data"] == m.predict(X).tolist()
    # one batched call (8 rows + NaN row) failed, then each alone: 5 good ones answered together first
    assert calls[0] == 1 + 2 + 1 + 4 + 1 and sorted(calls[1:]) == [1, 1, 1, 2, 4]
    calls.clear()
    jobs = _jobs(model, [(V2, _v2_body(X[:1]), None)] * 3)
    run_batch(jobs, max_batch=1)
    assert calls == [1, 1, 1]


def test_a_zero_row_request_fails_alone_even_in_a_batch(tmp_path, iris):
    model = load_model("iris", "v1", make_version(tmp_path, "v1", {"model.pkl": pickle.dumps(iris["models"]["v1"])},
                                                  "pickle"))
    empty = json.dumps({"inputs": [{"name": "x", "shape": [0, 4], "datatype": "FP64", "data": []}]}).encode()
    for bodies in ([empty], [_v2_body(X[:1]), empty, _v2_body(X[1:3])]):
        jobs = _jobs(model, [(V2, b, None) for b in bodies])
        run_batch(jobs, max_batch=64)
        assert [j.response[0] for j in jobs] == [400 if b is empty else 200 for b in bodies]
        [error] = [json.loads(j.response[2])["error"] for j in jobs if j.response[0] == 400]
        assert error == "input 'x': shape [0, 4] has no rows; send at least one"


def test_engine_thread_answers_on_the_loop(tmp_path, iris):
    m = load_model("iris", "v1", make_version(tmp_path, "v1", {"model.pkl": pickle.dumps(iris["models"]["v1"])},
                                              "pickle"))
    sizes = []
    engine = Engine(max_batch=8, on_batch=sizes.append)
    engine.start()

    async def main():
        loop = asyncio.get_running_loop()
        futs = []
        for i in range(40):
            f = loop.create_future()
            engine.submit(Job(m, V2, _v2_body(X[i % 4:i % 4 + 1]), None, f))
            futs.append(f)
        return await asyncio.gather(*futs)

    try:
        results = asyncio.run(main())
    finally:
        engine.stop()
    assert all(r[0] == 200 for r in results) and sum(sizes) == 40 and max(sizes) <= 8
    assert threading.current_thread() is threading.main_thread()


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, event, **kw):
        self.events.append((event, kw))


def test_availability_swap_keeps_old_for_in_flight_and_survives_a_failed_load(tmp_path, iris):
    v1 = make_version(tmp_path, "v1", {"model.pkl": pickle.dumps(iris["models"]["v1"])}, "pickle")
    v2 = make_version(tmp_path, "v2", {"model.pkl": pickle.dumps(iris["models"]["v2"])}, "pickle")
    bad = make_version(tmp_path, "v3", {"model.pkl": b"junk"}, "pickle")
    rec = Recorder()
    h = ModelHolder("iris", events=rec)
    h.on_swap("v1", v1, None)
    in_flight = h.active
    h.on_swap("v2", v2, "v1")
    assert h.active.version == "v2" and in_flight.version == "v1"
    assert in_flight.methods["predict"](X).tolist() == iris["models"]["v1"].predict(X).tolist()
    with pytest.raises(LoadFailed):
        h.on_swap("v3", bad, "v2")
    assert h.active.version == "v2" and "loading v3 failed" in h.last_error
    h.on_swap("v2", v2, "v3")  # the watcher's revert: nothing to reload
    assert [e for e, _ in rec.events] == ["loaded", "warning", "loaded", "warning", "load-failed"]


def test_resource_swap_unloads_before_loading(tmp_path, iris):
    v1 = make_version(tmp_path, "v1", {"model.pkl": pickle.dumps(iris["models"]["v1"])}, "pickle")
    v2 = make_version(tmp_path, "v2", {"model.pkl": pickle.dumps(iris["models"]["v2"])}, "pickle")
    seen = []
    holder: ModelHolder

    def loader(path):
        seen.append(holder.active.version if holder.active else None)
        with open(path / "model.pkl", "rb") as f:
            return pickle.load(f)

    holder = ModelHolder("iris", loader=loader, policy="resource")
    holder.on_swap("v1", v1, None)
    holder.on_swap("v2", v2, "v1")
    assert seen == [None, None] and holder.active.version == "v2"
    with pytest.raises(InvalidInput):
        ModelHolder("iris", policy="sometimes")
