"""A real local HDFS (MiniDFSCluster, 3 DataNodes) + ZooKeeper (3 servers) for dev and tests;
``up --secure``: a Kerberized HDFS with an in-JVM KDC (realm MDL.TEST) instead, no ZooKeeper.

    from mdl import devcluster
    devcluster.up()            # idempotent; returns status + timings
    devcluster.info()["env"]   # MDL_STORAGE_URL, MDL_STORAGE_USER, MDL_REGISTRY_URL
    devcluster.down()

CLI: ``python -m mdl.devcluster up [--ha|--secure [--ticket-lifetime S]]|down|status|env|info
|datanode stop|start N|namenode failover|stop|start N|zk stop|start N|all|fs ...``
"""

from .manager import (
    HADOOP_VERSION,
    ZOOKEEPER_VERSION,
    DevCluster,
    DevClusterError,
    DevClusterTimeout,
    DevClusterUsageError,
    Ports,
    default_state_dir,
    down,
    env_snippet,
    four_letter_word,
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
    zk_mode,
)

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
