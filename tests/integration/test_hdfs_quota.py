"""An HDFS quota on a model's directory (set with ``hdfs dfsadmin`` on the dev cluster): a push that
exceeds it fails with one clear error naming the quota and the directory, and publishes nothing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from mdl.devcluster import DevCluster

from ..helpers import make_model

pytestmark = pytest.mark.cluster


@pytest.fixture
def quota(client, backend_env) -> Iterator[tuple[DevCluster, str]]:
    """The dev cluster and the model directory ``lr`` (holding v1), any quota on it cleared afterwards."""
    dc = DevCluster()
    model_dir = f"{backend_env['MDL_STORAGE_ROOT']}/lr"
    yield dc, model_dir
    dc.dfsadmin("-clrSpaceQuota", model_dir, check=True)
    dc.dfsadmin("-clrQuota", model_dir, check=True)


def push(run_mdl, path, version: str):
    return run_mdl("push", "lr", str(path), "--version", version)


def stderr_lines(r) -> list[str]:
    return r.stderr.decode().splitlines()


@pytest.mark.parametrize("backend", ["distributed"], indirect=True)
def test_a_push_over_the_space_quota_fails_clearly_and_publishes_nothing(client, run_mdl, quota, tmp_path):
    dc, model_dir = quota
    assert push(run_mdl, make_model(tmp_path / "small", b"small"), "v1").returncode == 0
    dc.dfsadmin("-setSpaceQuota", "10m", model_dir, check=True)
    big = make_model(tmp_path / "big", os.urandom(12 * 1024 * 1024), "weights.bin")

    r = push(run_mdl, big, "v2")

    assert r.returncode == 1, r.stderr
    assert r.stdout == b""
    error, hint = stderr_lines(r)
    assert re.fullmatch(
        rf"error: the HDFS space quota of {re.escape(model_dir)} is exceeded: cannot write lr/v2/weights\.bin "
        r"\(staged\) \(quota = 10485760 B = 10 MB but diskspace consumed = \d+ B = [\d.]+ MB\)",
        error,
    ), error
    assert hint == "hint: free space with mdl gc, or raise the quota (hdfs dfsadmin -setSpaceQuota)"
    assert client.storage.list_versions("lr") == ["v1"]
    client.clean(older_than=0)  # whatever the failed push left in staging
    assert client.storage.list_staging("lr") == []

    dc.dfsadmin("-clrSpaceQuota", model_dir, check=True)
    assert push(run_mdl, big, "v2").returncode == 0
    assert client.storage.list_versions("lr") == ["v1", "v2"]


@pytest.mark.parametrize("backend", ["distributed"], indirect=True)
def test_a_push_over_the_namespace_quota_names_it(client, run_mdl, quota, tmp_path):
    dc, model_dir = quota
    assert push(run_mdl, make_model(tmp_path / "small", b"small"), "v1").returncode == 0
    # lr, v1, its two files and .mdl-staging (a push's own staging directory is one too many)
    dc.dfsadmin("-setQuota", "5", model_dir, check=True)

    r = push(run_mdl, make_model(tmp_path / "more", b"more"), "v2")

    assert r.returncode == 1, r.stderr
    error, hint = stderr_lines(r)
    assert re.fullmatch(
        rf"error: the HDFS namespace quota \(number of files and directories\) of {re.escape(model_dir)} is "
        r"exceeded: cannot write \S+ \(quota=5 file count=\d+\)",
        error,
    ), error
    assert hint == "hint: free space with mdl gc, or raise the quota (hdfs dfsadmin -setQuota)"
    assert client.storage.list_versions("lr") == ["v1"]
