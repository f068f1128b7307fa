"""Concurrent pushes with default (timestamp) version ids, on every backend: each gets its own id,
``BASE``, ``BASE-01``, ``BASE-02``... and never a suffix stacked on a suffix."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import mdl.client

from ..helpers import make_model

BASE = "20261202T022902Z"


def test_concurrent_default_ids_take_the_next_free_suffix(make_client, tmp_path, monkeypatch):
    monkeypatch.setattr(mdl.client, "timestamp_version", lambda: BASE)  # every push in the same second
    sources = [make_model(tmp_path / str(i), f"model {i}".encode()) for i in range(6)]
    clients = [make_client() for _ in sources]
    with ThreadPoolExecutor(len(sources)) as pool:
        results = list(pool.map(lambda cs: cs[0].push("lr", cs[1]), zip(clients, sources, strict=True)))
    versions = sorted(r.version for r in results)
    assert len(set(versions)) == len(sources)
    assert all(re.fullmatch(rf"{BASE}(-\d\d)?", v) for v in versions), versions
    assert versions == [BASE] + [f"{BASE}-{i:02d}" for i in range(1, len(sources))]
    assert sorted(clients[0].storage.list_versions("lr")) == versions
