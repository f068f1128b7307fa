"""mdl serve --require-signature (issue 17): an unsigned version is never loaded; the old one keeps serving."""

from __future__ import annotations

import json

import pytest

from ..contract.test_signatures import Keys
from .conftest import infer, push


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_an_unsigned_version_is_refused_and_the_signed_one_keeps_serving(serve, mdl, iris, tmp_path, monkeypatch):
    keys = Keys(tmp_path / "keys")
    monkeypatch.setenv("MDL_TRUST_SIGNING_KEY", keys.path("a.key"))
    push(mdl, "iris", iris["v1"], "v1", "--sign", "--promote")
    push(mdl, "iris", iris["v2"], "v2")
    s = serve("iris", "--require-signature", env={"MDL_TRUST_KEYS": keys.path("a.pub")})
    s.wait_ready("v1")
    r = mdl("promote", "iris", "v2", "--wait", "--timeout", "30")
    assert r.returncode == 1, r.stderr
    assert b"version iris/v2 is not signed" in r.stderr
    assert infer(s.url).json()["model_version"] == "v1"
    status = json.loads(mdl("status", "iris", "-o", "json").stdout)["replicas"]
    assert [(x["kind"], x["state"], x["loaded"]) for x in status] == [("server", "failed", "v1")]
    assert "version iris/v2 is not signed" in status[0]["error"]
    e = s.wait_event(lambda e: e["event"] == "failed")
    assert (e["version"], e["serving"], e["permanent"]) == ("v2", "v1", True)
    # signed now: SIGHUP-free recovery once the alias moves to a signed version
    assert mdl("sign", "iris", "v2").returncode == 0
    assert mdl("promote", "iris", "v1").returncode == 0
    r = mdl("promote", "iris", "v2", "--wait", "--timeout", "30")
    assert r.returncode == 0, r.stderr
    assert infer(s.url).json()["model_version"] == "v2"
