"""Fixtures of the integration tests: the HA dev cluster (two NameNodes) and the secure (Kerberos) dev
cluster next to the default one."""

from __future__ import annotations

import uuid
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


#: the secure cluster's own state dir and port offset (NameNode RPC 20220, WebHDFS 20270, DataNodes
#: 20264-20269, KDC 20288; it runs no ZooKeeper: tests use the default cluster's)
SECURE_STATE_DIR = Path.home() / ".cache" / "mdl" / "dev-cluster-secure"
SECURE_PORT_OFFSET = 400
SECURE_TICKET_LIFETIME = 3600
KERBEROS_CLIENT = "client@MDL.TEST"


@pytest.fixture(scope="session")
def secure_cluster():
    """The Kerberized dev cluster (``up --secure``: MiniKdc realm MDL.TEST + secure HDFS, 3 DataNodes;
    started if it is not running, left running like the default one).

    Tests using it must be marked ``cluster``; get a client environment from :func:`kerberos_env`.
    Returns the :class:`mdl.devcluster.DevCluster`.
    """
    return start_secure_cluster()


def start_secure_cluster():
    """``up --secure`` on SECURE_STATE_DIR (restarted if it runs with another ticket lifetime)."""
    from mdl.devcluster import DevCluster

    cluster = DevCluster(SECURE_STATE_DIR, port_offset=SECURE_PORT_OFFSET, secure=True)
    if cluster.secure and cluster.ticket_lifetime != SECURE_TICKET_LIFETIME:
        cluster.down()  # left over with another --ticket-lifetime
    cluster = DevCluster(
        SECURE_STATE_DIR, port_offset=SECURE_PORT_OFFSET, secure=True, ticket_lifetime=SECURE_TICKET_LIFETIME
    )
    cluster.up()
    return cluster


def kerberos_env(secure_cluster, tmp_path: Path, *, kinit: bool = True) -> dict[str, str]:
    """The environment of a Kerberos client of ``secure_cluster``: its own ticket cache under ``tmp_path``
    (``kinit -kt <keytab> client@MDL.TEST`` into it when ``kinit``, else empty) and a fresh storage root
    in the client's home. Merge it into ``os.environ`` for a subprocess, or monkeypatch it in."""
    info = secure_cluster.info()
    krb = info["kerberos"]
    ccache = f"FILE:{tmp_path / f'krb5cc_{uuid.uuid4().hex[:8]}'}"
    env = {
        "KRB5_CONFIG": krb["krb5_config"],
        "KRB5CCNAME": ccache,
        "MDL_STORAGE_URL": info["storage_url"],
        "MDL_STORAGE_AUTH": "kerberos",
        "MDL_STORAGE_ROOT": f"{info['client_home']}/models-{uuid.uuid4().hex[:12]}",
    }
    if kinit:
        secure_cluster.kinit(ccache)  # kinit -kt <client keytab> client@MDL.TEST, KRB5_CONFIG as above
    return env
