"""Default (timestamp) version ids of pushes that lose the race for an id: the next free suffix of
the same base (README: ``-01``, ``-02``...), never a suffix on a suffix (``-04-01``)."""

from __future__ import annotations


import mdl.client
from mdl.client import Client
from mdl.config import load

BASE = "20261202T022902Z"


def test_a_push_that_loses_the_race_for_base_04_takes_base_05(tmp_path, monkeypatch):
    c = Client(load(env={"MDL_STORAGE_URL": f"file://{tmp_path}/models",
                         "MDL_REGISTRY_URL": f"sqlite://{tmp_path}/registry.db"}))
    monkeypatch.setattr(mdl.client, "timestamp_version", lambda: BASE)
    ids = [BASE] + [f"{BASE}-{i:02d}" for i in range(1, 5)]
    for i, v in enumerate(ids):
        src = tmp_path / f"m{i}.pkl"
        src.write_bytes(f"model {i}".encode())
        assert c.push("lr", src, version=v).version == v
    # The push lists the versions before base-04 is published by someone else (a stale listing),
    # so it picks base-04, loses the publish, lists again and retries.
    real = c.storage.list_versions
    calls = []

    def listing(name):
        calls.append(name)
        found = real(name)
        return [v for v in found if v != ids[-1]] if len(calls) == 1 else found

    monkeypatch.setattr(c.storage, "list_versions", listing)
    src = tmp_path / "new.pkl"
    src.write_bytes(b"new model")
    result = c.push("lr", src)
    assert result.version == f"{BASE}-05" and result.uploaded
    assert len(calls) >= 2  # it did lose the race once
    assert sorted(real("lr")) == ids + [f"{BASE}-05"]
    c.close()
