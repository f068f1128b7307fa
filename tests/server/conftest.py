"""Fixtures for ``mdl serve``: trained iris models, server processes, the CLI."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from ..helpers import MDL, REPO, until

INFER_BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


@pytest.fixture(scope="session")
def mdl_cmd() -> list[str]:
    """The real ``mdl`` binary."""
    return [MDL]


def _train(c: float) -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return LogisticRegression(C=c, max_iter=500).fit(x, y)


@pytest.fixture(scope="session")
def iris(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two real scikit-learn models (pickled) and the same first one as joblib."""
    import joblib

    d = tmp_path_factory.mktemp("iris")
    out: dict[str, Any] = {"models": {}}
    for key, c in (("v1", 1.0), ("v2", 0.01)):
        model = _train(c)
        (d / key).mkdir()
        (d / key / "model.pkl").write_bytes(pickle.dumps(model))
        out[key] = d / key / "model.pkl"
        out["models"][key] = model
    (d / "jl").mkdir()
    joblib.dump(out["models"]["v1"], d / "jl" / "model.joblib")
    out["joblib"] = d / "jl" / "model.joblib"
    return out


def clean_env(extra: dict[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDL_") or k == "MDL_TEST_BACKENDS"}
    env.update(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_CACHE_HOME=str(home / "cache"), MDL_NO_PROGRESS="1",
               MDL_SERVE_DRAIN_DELAY="0")  # tests of draining pass their own
    env.update(extra)
    return env


class ServerProc:
    """One ``mdl serve ... -o json`` process; its JSON event lines are collected as they come."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> None:
        self.cmd = cmd
        self.stderr = open(log, "wb")
        self.log = log
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=self.stderr)
        self.events: list[dict] = []
        self._eof = False
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                self.events.append(doc)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_event(self, pred: Callable[[dict], bool], timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    raise AssertionError(f"no such event from {self.cmd} (exit {self.proc.poll()}); "
                                         f"events: {self.events}\nstderr: {self.log.read_text()[-3000:]}")
                self._cond.wait(min(left, 0.2))

    @property
    def url(self) -> str:
        return self.wait_event(lambda e: e["event"] == "listening")["address"]

    def wait_ready(self, version: str | None = None, timeout: float = 60) -> str:
        """Wait until the server answers ready (with ``version`` if given); returns the version."""
        started = time.monotonic()
        url = self.url
        last: list[Any] = [None]

        def ready() -> str | None:
            assert self.proc.poll() is None, f"server exited {self.proc.returncode}: {self.log.read_text()[-3000:]}"
            try:
                r = httpx.get(url + "/v2/health/ready", timeout=5)
                last[0] = r.json()
                if r.status_code == 200 and (version is None or last[0]["version"] == version):
                    return last[0]["version"]
            except httpx.HTTPError as exc:
                last[0] = exc
            return None

        return until(ready, timeout - (time.monotonic() - started),
                     what=lambda: f"the server to be ready on {version} (last answer: {last[0]})")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.stderr.close()
        return rc


@pytest.fixture
def serve(mdl_cmd: list[str], backend_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., ServerProc]]:
    """serve("iris", "--swap", "resource") -> a running ServerProc on a free port (``--port 0``)."""
    started: list[ServerProc] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> ServerProc:
        i = len(started)
        e = {**os.environ, **backend_env, **(env or {})}
        s = ServerProc([*mdl_cmd, "serve", name, "--port", "0", "-o", "json", "--cache", str(tmp_path / f"cache-{i}"),
                        *args], e, tmp_path / f"serve-{i}.log", cwd)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def mdl(mdl_cmd: list[str], backend_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess]:
    """Run the CLI (with serve and endpoints) against the test backend."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*mdl_cmd, *args], env={**os.environ, **backend_env}, cwd=REPO, capture_output=True,
                              timeout=timeout)

    return run


def push(mdl: Callable, name: str, path: Path, version: str, *extra: str) -> None:
    r = mdl("push", name, str(path), "--version", version, *extra)
    assert r.returncode == 0, r.stderr


def infer(url: str, name: str = "iris", body: Any = None, client: httpx.Client | None = None,
          path: str | None = None) -> httpx.Response:
    c = client or httpx
    return c.post(url + (path or f"/v2/models/{name}/infer"), json=body or INFER_BODY, timeout=30)
