"""`mdl watch ... -o json | head -1`: when the reader of the events goes away, the process ends
quietly as Unix tools do (no traceback, no further writes), deregistering on the way out."""

from __future__ import annotations

import json
import os
import subprocess
import time

from ..conftest import MDL
from ..contract.test_storage_contract import make_model


def test_watch_json_events_into_a_closed_pipe_end_the_watch_quietly(client, backend_env, tmp_path):
    for v in ("v1", "v2"):
        client.push("lr", make_model(tmp_path / v, f"weights {v}".encode()), version=v)
    client.promote("lr", "v1")
    err = (tmp_path / "stderr").open("w+b")
    p = subprocess.Popen([MDL, "watch", "lr", "-d", str(tmp_path / "w"), "-o", "json"], stdout=subprocess.PIPE,
                         stderr=err, env={**os.environ, **backend_env})
    try:
        first = json.loads(p.stdout.readline())
        assert first["model"] == "lr"
        current = tmp_path / "w" / "current"
        deadline = time.monotonic() + 60
        while not (client.replicas("lr") and current.exists()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.replicas("lr"), "the watcher never registered"
        client.promote("lr", "v2")  # both versions local: the move back to v1 below downloads nothing
        while os.path.realpath(current).rsplit("/", 1)[-1] != "v2" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.realpath(current).endswith("/v2")
        p.stdout.close()  # `head -1` exits (every event so far sits in the pipe)
        client.promote("lr", "v1")  # the next event ("swapped") meets the closed pipe
        rc = p.wait(60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err.seek(0)
    stderr = err.read().decode()
    assert rc == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Broken pipe" not in stderr, stderr
    assert stderr == "", stderr
    deadline = time.monotonic() + 10
    while client.replicas("lr") and time.monotonic() < deadline:  # deregistered on the way out
        time.sleep(0.05)
    assert client.replicas("lr") == []
