"""Fixtures of the integration tests: the HA dev cluster (two NameNodes) next to the default one."""

from __future__ import annotations

from pathlib import Path

import pytest

#: the HA cluster's own state dir and port offset (NameNodes on 20170/20171, ZooKeeper on 12481-12483)
HA_STATE_DIR = Path.home() / ".cache" / "mdl" / "dev-cluster-ha"
HA_PORT_OFFSET = 300


@pytest.fixture(scope="session")
def ha_cluster():
    """The HA dev cluster (``up --ha``; started if it is not running, left running like the default one).

    Tests using it must be marked ``cluster``. Returns the :class:`mdl.devcluster.DevCluster`.
    """
    from mdl.devcluster import DevCluster

    ha = DevCluster(HA_STATE_DIR, port_offset=HA_PORT_OFFSET, ha=True)
    ha.up()
    return ha
