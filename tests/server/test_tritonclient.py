"""NVIDIA's ``tritonclient.http``, unchanged, against ``mdl serve`` (binary and JSON tensors)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import push

tritonclient_http = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)


@pytest.fixture
def triton(serve, mdl, iris):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    s = serve("iris")
    s.wait_ready("v1")
    client = tritonclient_http.InferenceServerClient(url=s.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_tritonclient_infers_unchanged(triton, iris):
    c = triton
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready("iris") and c.is_model_ready("iris", "v1")
    assert not c.is_model_ready("iris", "v9")
    meta = c.get_model_metadata("iris")
    assert meta["name"] == "iris" and meta["versions"] == ["v1"]
    assert c.get_server_metadata()["name"] == "mdl"
    expected = iris["models"]["v1"]

    for binary in (True, False):  # the client's default is the binary tensor extension
        inp = tritonclient_http.InferInput("input-0", list(ROWS.shape), "FP32")
        inp.set_data_from_numpy(ROWS, binary_data=binary)
        result = c.infer("iris", [inp], request_id=f"r-{binary}")
        assert result.as_numpy("predict").tolist() == expected.predict(ROWS).tolist()
        assert result.get_response()["model_version"] == "v1"
        assert result.get_response()["id"] == f"r-{binary}"

        outputs = [tritonclient_http.InferRequestedOutput("predict_proba", binary_data=binary),
                   tritonclient_http.InferRequestedOutput("predict", binary_data=not binary)]
        result = c.infer("iris", [inp], model_version="v1", outputs=outputs)
        np.testing.assert_allclose(result.as_numpy("predict_proba"), expected.predict_proba(ROWS), rtol=1e-6)
        assert result.as_numpy("predict").tolist() == expected.predict(ROWS).tolist()

    inp = tritonclient_http.InferInput("input-0", [1, 4], "FP64")
    inp.set_data_from_numpy(ROWS[:1].astype(np.float64))
    assert c.infer("iris", [inp], request_compression_algorithm="gzip").as_numpy("predict").shape == (1,)

    bad = tritonclient_http.InferInput("input-0", [1, 3], "FP32")
    bad.set_data_from_numpy(ROWS[:1, :3])
    with pytest.raises(InferenceServerException, match=r"\[rows, 4\]"):
        c.infer("iris", [bad])
    with pytest.raises(InferenceServerException, match="not served here"):
        c.infer("nope", [inp])
