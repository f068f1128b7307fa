"""Shared fixtures: every backend the contract suite runs against, and isolation from the user's setup.

``MDL_TEST_BACKENDS`` (default ``embedded,distributed``) picks the backends; ``distributed`` needs the
local cluster, which the ``cluster`` fixture starts (idempotently) through ``mdl.devcluster``.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from mdl.client import Client
from mdl.config import Config, load

from .helpers import BACKENDS, MDL, WEBHDFS_URL, ZK_HOSTS, Fleet, drop_zk_tree, use_backend


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without the distributed backend, tests that need the cluster are deselected (not skipped)."""
    if "distributed" in BACKENDS:
        return
    keep = [i for i in items if i.get_closest_marker("cluster") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("cluster") is not None])
        items[:] = keep


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's config or data, and no MDL_* setting leaks in from the shell."""
    home = tmp_path_factory.mktemp("home")
    for k in list(os.environ):
        if k.startswith("MDL_") and k not in ("MDL_TEST_BACKENDS", "MDL_DEV_CLUSTER_DIR"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    from mdl.devcluster.manager import default_state_dir

    monkeypatch.setenv("MDL_DEV_CLUSTER_DIR", str(default_state_dir()))  # the cluster stays where it is...
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))  # ...and the host's shared file store is per test
    monkeypatch.setenv("MDL_NO_PROGRESS", "1")
    # Servers stop at once: the tests of draining (tests/e2e/test_load_balancer.py) set their own delay.
    monkeypatch.setenv("MDL_SERVE_DRAIN_DELAY", "0")


@pytest.fixture(scope="session")
def cluster() -> dict:
    """The local HDFS + ZooKeeper cluster (started if it is not running; left running)."""
    from mdl import devcluster

    return devcluster.up()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return use_backend(request)


@pytest.fixture
def backend_env(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The MDL_* variables that point mdl at a fresh, empty tree and registry on ``backend``."""
    if backend == "embedded":
        d = tmp_path_factory.mktemp("backend")
        yield {"MDL_STORAGE_URL": f"file://{d}/models", "MDL_REGISTRY_URL": f"sqlite://{d}/registry.db"}
        return
    run = uuid.uuid4().hex[:10]
    yield {
        "MDL_STORAGE_URL": WEBHDFS_URL,
        "MDL_STORAGE_ROOT": f"/mdl-test/{run}/models",
        "MDL_STORAGE_TIMEOUT": "20",
        "MDL_REGISTRY_URL": f"zk://{ZK_HOSTS}/mdl-test-{run}",
        "MDL_REGISTRY_TIMEOUT": "5",
    }
    _remove_distributed_run(run)


def _remove_distributed_run(run: str) -> None:
    """Delete a test's HDFS tree and ZooKeeper chroot (best effort: a fault test may have left a node down)."""
    from hdfs import InsecureClient

    try:
        InsecureClient("http://" + WEBHDFS_URL.split("://", 1)[1], user="root", timeout=10).delete(
            f"/mdl-test/{run}", recursive=True)
    except Exception:
        pass
    drop_zk_tree(f"/mdl-test-{run}")


@pytest.fixture
def config(backend_env: dict[str, str]) -> Config:
    return load(env=backend_env)


@pytest.fixture
def client(config: Config) -> Iterator[Client]:
    c = Client(config)
    yield c
    c.close()


@pytest.fixture
def make_client(config: Config) -> Iterator:
    """A factory of independent clients (their own connections), closed at teardown."""
    made: list[Client] = []

    def make() -> Client:
        made.append(Client(config))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture
def run_mdl(backend_env: dict[str, str]):
    """Run the real ``mdl`` binary against the test backend; returns CompletedProcess (bytes)."""

    def run(*args: str, check: bool = False, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        env = {**os.environ, **backend_env, **kw.pop("env", {})}
        return subprocess.run([MDL, *args], env=env, capture_output=True, timeout=timeout, check=check, **kw)

    return run


@pytest.fixture
def fleet(run_mdl, backend_env: dict[str, str], tmp_path: Path) -> Iterator[Fleet]:
    """``mdl watch`` processes on the test backend (see helpers.Fleet), stopped at teardown."""
    f = Fleet(run_mdl, backend_env, tmp_path)
    yield f
    f.stop()
