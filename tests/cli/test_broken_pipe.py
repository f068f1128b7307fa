"""`mdl watch ... -o json | head -1`: when the reader of the events goes away, the process ends
quietly as Unix tools do (no traceback, no further writes), deregistering on the way out.
On every backend: the distributed one's ZooKeeper session and its threads must end as quietly."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ..helpers import BACKENDS, MDL, make_model, until


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_watch_json_events_into_a_closed_pipe_end_the_watch_quietly(client, backend_env, tmp_path):
    for v in ("v1", "v2"):
        client.push("lr", make_model(tmp_path / v, f"weights {v}".encode()), version=v)
    client.promote("lr", "v1")
    err = (tmp_path / "stderr").open("w+b")
    p = subprocess.Popen([MDL, "watch", "lr", "-d", str(tmp_path / "w"), "-o", "json"], stdout=subprocess.PIPE,
                         stderr=err, env={**os.environ, **backend_env})
    assert p.stdout is not None
    try:
        first = json.loads(p.stdout.readline())
        assert first["model"] == "lr"
        current = tmp_path / "w" / "current"
        until(lambda: client.replicas("lr") and current.exists(), 60, what="the watcher to register and serve")
        client.promote("lr", "v2")  # both versions local: the move back to v1 below downloads nothing
        until(lambda: os.path.realpath(current).rsplit("/", 1)[-1] == "v2", 60, what="the watcher to serve v2")
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
    until(lambda: client.replicas("lr") == [], 10, what="the watcher to deregister on the way out")
