"""A real local HDFS (MiniDFSCluster, 3 DataNodes) + ZooKeeper (3 servers) for dev and tests;
``up --secure``: a Kerberized HDFS with an in-JVM KDC (realm MDL.TEST) instead, no ZooKeeper.

    from mdl import devcluster
    devcluster.up()            # idempotent; returns status + timings
    devcluster.info()["env"]   # MDL_STORAGE_URL, MDL_STORAGE_USER, MDL_REGISTRY_URL
    devcluster.down()

CLI: ``mdl dev-cluster`` (:mod:`mdl.cli.dev_cluster`; also ``python -m mdl.devcluster``)
``up [--ha|--secure [--ticket-lifetime S]]|down|status|env|info|datanode stop|start N
|namenode failover|status|stop|start N|zk stop|start N|all|fs ARGS...``

Everything binds to 127.0.0.1. HDFS is Hadoop's MiniDFSCluster in one JVM (:mod:`.hdfs`), ZooKeeper
a 3-server ensemble of ``QuorumPeerMain`` JVMs (:mod:`.zookeeper`); ``up --ha`` runs two NameNodes of
the HA nameservice ``mdlns`` (NameNode 0 made active); ``up --secure`` (not with ``--ha``) runs HDFS
Kerberized (:mod:`.kerberos`). The mode (and the ticket lifetime) is remembered in run/cluster.json
until ``down``. :class:`DevCluster` (:mod:`.manager`) orchestrates the parts.

State directory: ``$MDL_DEV_CLUSTER_DIR``, else ``$XDG_CACHE_HOME/mdl/dev-cluster``
(``~/.cache/mdl/dev-cluster``)::

    lock                    flock held by up/down/fault operations
    classpath.json          cached classpaths (keyed by the artifact list)
    maven/                  generated pom.xml files used to resolve the classpaths
    conf/                   generated log4j configs, client/*-site.xml and a copy of MiniHdfs.java
    logs/                   maven.log, hdfs.log, zk1.log .. zk3.log, fsshell.log (kept by down)
    run/                    cluster.json, pid files, ready file, HDFS and ZooKeeper data,
                            kdc/ in secure mode (removed by down)

Ports (offset 0; see :mod:`.ports`): NameNode RPC 19820, HTTP/WebHDFS 19870 (HA: NameNode 1 on
19821/19871), DataNode HTTP 19864-19866, IPC 19867-19869, ZooKeeper client 12181-12183, quorum
12888-12890, election 13888-13890, KDC 19888 (secure).

Environment knobs: ``MDL_DEV_CLUSTER_DIR``, ``MDL_DEV_CLUSTER_PORT_OFFSET`` (added to every port),
``MDL_DEV_CLUSTER_JAVA`` (java binary; else ``$JAVA_HOME/bin/java``, else ``java`` on PATH),
``MDL_DEV_CLUSTER_MVN`` (mvn binary), ``MDL_DEV_CLUSTER_MAVEN_REPO`` (a ``maven.repo.local``
other than ``~/.m2/repository``), ``MDL_DEV_CLUSTER_BLOCKSIZE`` (HDFS ``dfs.blocksize``, default 1 MiB).
"""

from .artifacts import HADOOP_VERSION, ZOOKEEPER_VERSION
from .errors import DevClusterError, DevClusterTimeout, DevClusterUsageError
from .layout import default_state_dir
from .manager import (
    DevCluster,
    down,
    env_snippet,
    fs_shell,
    info,
    start_datanode,
    start_zk,
    start_zk_all,
    status,
    stop_datanode,
    stop_zk,
    stop_zk_all,
    up,
)
from .ports import Ports
from .probes import four_letter_word, zk_mode

__all__ = [
    "HADOOP_VERSION",
    "ZOOKEEPER_VERSION",
    "DevCluster",
    "DevClusterError",
    "DevClusterTimeout",
    "DevClusterUsageError",
    "Ports",
    "default_state_dir",
    "down",
    "env_snippet",
    "four_letter_word",
    "fs_shell",
    "info",
    "start_datanode",
    "start_zk",
    "start_zk_all",
    "status",
    "stop_datanode",
    "stop_zk",
    "stop_zk_all",
    "up",
    "zk_mode",
]
