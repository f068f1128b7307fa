"""serve.pickle: signed end to end (issue 17): real pickles signed with ``mdl sign``, served by ``mdl serve``.

Only a pickle version signed by a trusted key loads; an unsigned one, or one signed by a key the server
does not trust, is refused and the signed one keeps serving. A cached copy found at start-up by a server
restarted with the policy newly on is checked like a download.
"""

from __future__ import annotations

import httpx
import pytest

from ..contract.test_signatures import Keys
from .conftest import infer, push

SIGNED = "is a pickle model and serve.pickle is signed"


def sign(mdl, monkeypatch, keys: Keys, key: str, version: str) -> str:
    """``mdl sign iris VERSION`` with key ``key``; the key id it prints."""
    monkeypatch.setenv("MDL_TRUST_SIGNING_KEY", keys.path(f"{key}.key"))
    r = mdl("sign", "iris", version)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_only_pickles_signed_by_a_trusted_key_load(serve, mdl, iris, tmp_path, monkeypatch):
    keys = Keys(tmp_path / "keys")
    push(mdl, "iris", iris["v1"], "v1")
    push(mdl, "iris", iris["v2"], "v2")
    push(mdl, "iris", iris["v2"], "v3")
    sign(mdl, monkeypatch, keys, "a", "v1")
    untrusted = sign(mdl, monkeypatch, keys, "b", "v3")
    assert mdl("promote", "iris", "v1").returncode == 0
    s = serve("iris", env={"MDL_SERVE_PICKLE": "signed", "MDL_TRUST_KEYS": keys.path("a.pub")})
    s.wait_ready("v1")
    loaded = s.wait_event(lambda e: e["event"] == "loaded" and e["version"] == "v1")
    assert loaded["version"] == "v1"
    expected = iris["models"]["v1"].predict([[5.1, 3.5, 1.4, 0.2]]).tolist()
    r = infer(s.url)
    assert r.status_code == 200 and r.json()["model_version"] == "v1"
    assert r.json()["outputs"][0]["data"] == expected

    refusals = {
        "v2": f"v2 {SIGNED}: version iris/v2 is not signed",
        "v3": f"v3 {SIGNED}: version iris/v3 has no valid signature: "
        f"signature was made with key {untrusted}, which is not trusted",
    }
    for version, error in refusals.items():
        r = mdl("promote", "iris", version, "--wait", "--timeout", "30")
        assert r.returncode == 1, r.stderr
        failed = s.wait_event(lambda e, v=version: e["event"] == "failed" and e["version"] == v)
        assert (failed["error"], failed["permanent"], failed["serving"]) == (error, True, "v1")
        r = infer(s.url)
        assert r.status_code == 200 and r.json()["model_version"] == "v1"
    assert not [e for e in s.events if e["event"] == "warning"]  # signed pickles load without the warning
    assert [e["version"] for e in s.events if e["event"] == "loaded"] == ["v1"]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_restart_with_the_policy_on_never_serves_the_unsigned_cached_copy(serve, mdl, iris, tmp_path, monkeypatch):
    keys = Keys(tmp_path / "keys")
    cache = str(tmp_path / "cache")
    push(mdl, "iris", iris["v1"], "v1")
    push(mdl, "iris", iris["v2"], "v2", "--promote")
    sign(mdl, monkeypatch, keys, "a", "v1")
    before = serve("iris", "--cache", cache)
    before.wait_ready("v2")
    assert before.stop() == 0
    s = serve("iris", "--cache", cache, "--require-signature", env={"MDL_TRUST_KEYS": keys.path("a.pub")})
    failed = s.wait_event(lambda e: e["event"] == "failed")
    assert (failed["version"], failed["error"], failed["serving"]) == ("v2", "version iris/v2 is not signed", None)
    assert httpx.get(s.url + "/v2/health/ready", timeout=5).status_code == 503
    assert infer(s.url).status_code != 200
    assert not [e for e in s.events if e["event"] in ("resumed", "loaded")]
    # the registry's next version is downloaded, verified and loaded as usual
    r = mdl("promote", "iris", "v1", "--wait", "--timeout", "30")
    assert r.returncode == 0, r.stderr
    s.wait_ready("v1")
    assert [e["version"] for e in s.events if e["event"] == "loaded"] == ["v1"]
