"""A running server meets hostile storage: the version a pointer names has a manifest that leads
outside the server's cache. The server keeps answering with the version it has, reports the
failure, and nothing outside its cache is created, truncated or removed."""

from __future__ import annotations

import hashlib
import json

from mdl.manifest import MANIFEST_NAME, FileEntry, digest_of

from ..helpers import write_stored
from .conftest import infer, push


def test_a_hostile_manifest_never_reaches_outside_and_v1_keeps_serving(serve, mdl, iris, client, tmp_path):
    push(mdl, "iris", iris["v1"], "v1", "--promote")
    push(mdl, "iris", iris["v2"], "v2")
    s = serve("iris")
    s.wait_ready("v1")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    model = iris["v1"].read_bytes()  # the bytes the host's shared store now holds
    doc = json.loads(client.storage.read_bytes("iris", "v2", MANIFEST_NAME))
    files = [FileEntry(str(victim), len(model), hashlib.sha256(model).hexdigest()),
             FileEntry("../../planted.pkl", len(model), hashlib.sha256(model).hexdigest())]
    doc.update(files=[{"path": f.path, "size": f.size, "sha256": f.sha256} for f in files], digest=digest_of(files))
    write_stored(client, "iris", "v2", MANIFEST_NAME, json.dumps(doc).encode())
    client.registry.cas("iris", "latest", "v2", client.pointer("iris").revision, "attacker", "promote")
    failed = s.wait_event(lambda e: e["event"] == "failed" and e.get("version") == "v2")
    assert "not a valid mdl manifest" in failed["error"]
    r = infer(s.url)
    assert r.status_code == 200 and r.headers["x-model-version"] == "v1"
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "planted.pkl").exists() and not (tmp_path.parent / "planted.pkl").exists()
    replica = client.replicas("iris")[0].data
    assert replica["state"] == "failed" and replica["loaded"] == "v1"
    assert replica["digest"] == client.manifest("iris", "v1").digest
