"""Format detection at push, the serve.* keys, and the load policy's decisions (no model is loaded)."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest

from mdl.config import load
from mdl.errors import ConfigError, IntegrityError, LoadFailed
from mdl.manifest import FORMATS, FileEntry, Manifest, detect_format


def _file(tmp_path: Path, name: str, data: bytes) -> list[tuple[str, Path]]:
    p = tmp_path / name
    p.write_bytes(data)
    return [(name, p)]


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


SKOPS_LIKE = _zip({"schema.json": b'{"__class__": "LogisticRegression"}', "1.npy": b"\x93NUMPY"})


@pytest.mark.parametrize(
    "name,data,fmt",
    [
        ("model.onnx", b"\x08\x0a", "onnx"),
        ("model.ONNX", b"", "onnx"),
        ("model.skops", b"anything", "skops"),
        ("model", SKOPS_LIKE, "skops"),  # by content: a zip archive with schema.json at its top
        ("model.bin", SKOPS_LIKE, "skops"),
        ("model", _zip({"weights.npy": b""}), "file"),  # a zip without schema.json is not skops
        ("model", b"PK\x03\x04 truncated", "file"),
        ("model", pickle.dumps([1, 2]), "pickle"),
        ("model.pkl", b"", "pickle"),
        ("model.joblib", b"", "joblib"),
        ("model", b"", "file"),
    ],
)
def test_detect_format_by_name_and_content(tmp_path, name, data, fmt):
    assert detect_format("file", _file(tmp_path, name, data)) == fmt


def test_skops_and_onnx_are_known_formats():
    assert {"onnx", "skops"} <= set(FORMATS)


def test_serve_keys_from_file_and_env(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("serve:\n  pickle: deny\n  skops_trusted:\n    - mypkg.A\n    - mypkg.B\n")
    c = load(env={}, config_path=cfg)
    assert (c["serve.pickle"], c["serve.skops_trusted"]) == ("deny", ["mypkg.A", "mypkg.B"])
    c = load(env={"MDL_SERVE_PICKLE": "signed", "MDL_SERVE_SKOPS_TRUSTED": "x.Y, z.W"}, config_path=cfg)
    assert (c["serve.pickle"], c["serve.skops_trusted"]) == ("signed", ["x.Y", "z.W"])
    assert c.origin("serve.pickle") == "env MDL_SERVE_PICKLE"
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    d = load(env={}, config_path=empty)
    assert (d["serve.pickle"], d["serve.skops_trusted"]) == ("allow", None)


@pytest.mark.parametrize(
    "text,message",
    [
        ("serve:\n  pickle: sometimes\n", "serve.pickle in {f} must be one of allow, signed, deny, got 'sometimes'"),
        ("serve:\n  skops_trusted: [1]\n", "serve.skops_trusted in {f} must be a list of type names, got a list"),
        ("serve:\n  skops_trusted: {a: b}\n", "serve.skops_trusted in {f} must be a list of type names, got a mapping"),
    ],
)
def test_serve_keys_are_checked(tmp_path, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as e:
        load(env={}, config_path=cfg)
    assert e.value.message == message.format(f=cfg)


# -- the loaders' choices --------------------------------------------------------------------------------


def _manifest(fmt: str, *paths: str) -> Manifest:
    files = [FileEntry(p, 1, "0" * 64) for p in paths]
    return Manifest(
        name="m", version="v1", files=files, digest="sha256:" + "0" * 64, created="2026-01-01T00:00:00Z",
        creator="t", mdl_version="0", format=fmt, kind="directory" if fmt == "directory" else "file",
    )


def test_artifact_picks_the_model_file(tmp_path):
    from mdl.server.loaders import artifact

    assert artifact(tmp_path, _manifest("onnx", "iris.onnx")) == ("onnx", tmp_path / "iris.onnx")
    assert artifact(tmp_path, _manifest("skops", "any-name")) == ("skops", tmp_path / "any-name")
    assert artifact(tmp_path, _manifest("directory", "README.md", "m/iris.skops")) == (
        "skops", tmp_path / "m/iris.skops"
    )
    assert artifact(tmp_path, _manifest("onnx", "a.onnx", "vocab.json")) == ("onnx", tmp_path / "a.onnx")
    with pytest.raises(LoadFailed) as e:
        artifact(tmp_path, _manifest("directory", "a.onnx", "b.pkl"))
    assert e.value.message == "cannot tell which file to load: 2 model files (a.onnx, b.pkl)"
    with pytest.raises(LoadFailed) as e:
        artifact(tmp_path, _manifest("safetensors", "w.safetensors"))
    assert e.value.message == "no built-in loader for format 'safetensors' (built in: pickle, joblib, onnx, skops)"


def test_policy_allow_deny_signed():
    from mdl.server.loaders import LoadPolicy, check_policy

    m = _manifest("pickle", "m.pkl")
    for fmt in ("onnx", "skops"):
        for p in ("allow", "signed", "deny"):
            check_policy(fmt, "v1", m, LoadPolicy(p))  # formats that run no code pass every policy
    check_policy("joblib", "v1", m, LoadPolicy("allow"))
    with pytest.raises(LoadFailed) as e:
        check_policy("joblib", "v1", m, LoadPolicy("deny"))
    assert (e.value.message, e.value.hint) == (
        "v1 is a joblib model and serve.pickle is deny: loading it would run code from its files",
        "push the model as skops or ONNX (formats that load without running code)",
    )
    seen = []

    def verify(version: str, manifest: Manifest) -> list[str]:
        seen.append((version, manifest.digest))
        if version != "v1":
            raise IntegrityError(f"version m/{version} has no valid signature: wrong key")
        return ["ci"]

    check_policy("pickle", "v1", m, LoadPolicy("signed", verify=verify))
    with pytest.raises(LoadFailed) as e:
        check_policy("pickle", "v2", m, LoadPolicy("signed", verify=verify))
    assert e.value.message == (
        "v2 is a pickle model and serve.pickle is signed: version m/v2 has no valid signature: wrong key"
    )
    assert e.value.hint == "sign it with a trusted key (mdl sign), or push it as skops or ONNX"
    assert seen == [("v1", m.digest), ("v2", m.digest)]
    with pytest.raises(ValueError, match="serve.pickle 'maybe'"):
        LoadPolicy("maybe")


def test_tf_answer_with_several_outputs_is_named_per_row():
    import numpy as np

    from mdl.server.codec import encode_tf

    outputs = {"label": np.array([0, 2]), "proba": np.array([[0.5, 0.5], [0.25, 0.75]])}
    assert json.loads(encode_tf("v1", False, outputs)) == {
        "predictions": [{"label": 0, "proba": [0.5, 0.5]}, {"label": 2, "proba": [0.25, 0.75]}],
        "model_version": "v1",
    }
    assert json.loads(encode_tf("v1", True, outputs)) == {
        "outputs": {"label": [0, 2], "proba": [[0.5, 0.5], [0.25, 0.75]]},
        "model_version": "v1",
    }
    assert json.loads(encode_tf("v1", False, {"predict": np.array([1, 2])})) == {
        "predictions": [1, 2],
        "model_version": "v1",
    }
