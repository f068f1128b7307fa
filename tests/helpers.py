"""What tests share besides fixtures (those live in the conftest.py files): where the backends are,
model sources, writing behind mdl's back, waiting for a condition, a fake HTTP server, a fleet of
``mdl watch`` processes."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import pytest

if TYPE_CHECKING:
    from mdl.client import Client

T = TypeVar("T")

BACKENDS = [b for b in os.environ.get("MDL_TEST_BACKENDS", "embedded,distributed").split(",") if b]
WEBHDFS_URL = "webhdfs://127.0.0.1:19870"
ZK_HOSTS = "127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183"
MDL = shutil.which("mdl", path=str(Path(sys.executable).parent)) or "mdl"
REPO = Path(__file__).resolve().parents[1]


def use_backend(request: pytest.FixtureRequest) -> str:
    """The body of a ``backend`` fixture: ``request.param``, with the cluster up and the test marked
    ``cluster`` when it is the distributed one."""
    if request.param == "distributed":
        request.getfixturevalue("cluster")
        request.node.add_marker(pytest.mark.cluster)
    return request.param


def make_model(tmp_path: Path, content: bytes = b"\x80\x04model-bytes", name: str = "model.pkl") -> Path:
    """A one-file model under ``tmp_path/src``."""
    p = tmp_path / "src" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return p


def make_dir(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """A directory model under ``tmp_path/srcdir``: relative path -> content."""
    root = tmp_path / "srcdir"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def write_stored(client: Client, name: str, version: str, rel: str, data: bytes) -> None:
    """Overwrite a stored file behind mdl's back (to simulate corruption), on any backend."""
    storage: Any = client.storage
    if hasattr(storage, "root") and isinstance(storage.root, Path):
        (storage.root / name / version / rel).write_bytes(data)
        return
    from hdfs import InsecureClient

    hdfs = InsecureClient("http://" + WEBHDFS_URL.split("://", 1)[1], user=client.config["storage.user"] or "root")
    path = f"{client.config['storage.root']}/{name}/{version}/{rel}"
    hdfs.write(path, data=data, overwrite=True)


def until(pred: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05,
          what: str | Callable[[], str] | None = None) -> T:
    """Call ``pred`` every ``interval`` seconds until it returns something true, and return that; after
    ``timeout`` seconds fail, naming what was awaited: ``what`` (or what it returns), else ``pred``'s
    name or source."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() >= deadline:
            awaited = what() if callable(what) else what or _describe(pred)
            raise AssertionError(f"gave up after {timeout:g}s waiting for {awaited}")
        time.sleep(interval)


def _describe(pred: Callable[[], Any]) -> str:
    """A lambda's own source text; a function's name."""
    name = getattr(pred, "__name__", repr(pred))
    if name != "<lambda>":
        return name.strip("_").replace("_", " ")
    try:
        src = inspect.getsource(pred)
    except (OSError, TypeError):
        return "a condition"
    src = " ".join(src[src.index("lambda"):].split())
    depth = 0
    for i, ch in enumerate(src):  # the lambda ends where its enclosing call's arguments go on
        depth += (ch in "([{") - (ch in ")]}")
        if depth < 0 or (depth == 0 and ch == ","):
            return src[:i]
    return src


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """A threaded HTTP server on a free loopback port while the block runs. It polls for its shutdown
    every 10 ms: serve_forever's default of 0.5 s would hold every teardown that long."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def current(d: Path) -> str | None:
    """The version a watch directory's ``current`` link points at (None without one)."""
    try:
        return Path(os.readlink(d / "current")).name
    except OSError:
        return None


class Fleet:
    """Separate ``mdl watch`` processes against the test backend, one directory each."""

    def __init__(self, run_mdl: Callable[..., subprocess.CompletedProcess], backend_env: dict[str, str],
                 tmp_path: Path) -> None:
        self.run_mdl, self.env, self.tmp = run_mdl, {**os.environ, **backend_env}, tmp_path
        self.procs: list[subprocess.Popen] = []

    def start(self, n: int, *extra: str, name: str = "lr") -> list[Path]:
        dirs = []
        for i in range(len(self.procs), len(self.procs) + n):
            d = self.tmp / f"replica-{i}"
            self.procs.append(subprocess.Popen([MDL, "watch", name, "-d", str(d), "-o", "json", *extra],
                                               env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            dirs.append(d)
        return dirs

    def replicas(self, name: str = "lr") -> list[dict]:
        r = self.run_mdl("status", name, "-o", "json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["replicas"]

    def wait_registered(self, n: int, name: str = "lr", timeout: float = 60) -> None:
        until(lambda: len(self.replicas(name)) >= n, timeout, 0.2, what=f"{n} watcher(s) of {name} to register")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def drop_zk_tree(path: str) -> None:
    """Delete a test's ZooKeeper chroot from the dev cluster's ensemble, if it can (best effort)."""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=ZK_HOSTS, timeout=5)
    try:
        zk.start(timeout=5)
        zk.delete(path, recursive=True)
    except Exception:
        pass
    finally:
        zk.stop()
        zk.close()
