"""The cluster's shape (DataNodes, ZooKeeper ids) and its fixed ports.

Ports (offset 0): NameNode RPC 19820, NameNode HTTP/WebHDFS 19870, DataNode HTTP 19864-19866,
DataNode IPC 19867-19869 (DataNode transfer ports are ephemeral, kept across restarts), ZooKeeper
client 12181-12183, quorum 12888-12890, election 13888-13890; with ``up --ha`` NameNode 1 adds RPC
19821 and HTTP 19871; ``up --secure`` adds the KDC on 19888. A second cluster needs its own state
dir and an offset such as 100, 200, 300 (the tests' HA cluster) or 400 (the tests' secure cluster;
not 707, 1000 or 1707: those map ZooKeeper ports onto the default cluster's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .errors import DevClusterError

NUM_DATANODES = 3
ZK_IDS = (1, 2, 3)


@dataclass(frozen=True)
class Ports:
    """The cluster's fixed ports; ``offset`` shifts all of them (MDL_DEV_CLUSTER_PORT_OFFSET)."""

    offset: int = 0

    @property
    def nn_rpc(self) -> int:
        return 19820 + self.offset

    @property
    def nn_http(self) -> int:
        return 19870 + self.offset

    @property
    def dn_http(self) -> list[int]:
        return [19864 + self.offset + i for i in range(NUM_DATANODES)]

    @property
    def dn_ipc(self) -> list[int]:
        return [19867 + self.offset + i for i in range(NUM_DATANODES)]

    @property
    def kdc(self) -> int:
        """Secure mode only: the MiniKdc (TCP)."""
        return 19888 + self.offset

    def zk_client(self, sid: int) -> int:
        return 12180 + sid + self.offset

    def zk_quorum(self, sid: int) -> int:
        return 12887 + sid + self.offset

    def zk_election(self, sid: int) -> int:
        return 13887 + sid + self.offset

    @property
    def nn1_rpc(self) -> int:
        """HA only: the second NameNode's RPC port."""
        return 19821 + self.offset

    @property
    def nn1_http(self) -> int:
        """HA only: the second NameNode's HTTP/WebHDFS port."""
        return 19871 + self.offset

    def namenodes(self, ha: bool) -> list[tuple[int, int]]:
        """(rpc, http) port of each NameNode."""
        return [(self.nn_rpc, self.nn_http), *([(self.nn1_rpc, self.nn1_http)] if ha else [])]

    def hdfs_ports(self, ha: bool = False) -> list[int]:
        return [p for nn in self.namenodes(ha) for p in nn] + [*self.dn_http, *self.dn_ipc]

    def zk_ports(self, sid: int) -> list[int]:
        return [self.zk_client(sid), self.zk_quorum(sid), self.zk_election(sid)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "namenode_rpc": self.nn_rpc,
            "namenode_http": self.nn_http,
            "datanode_http": self.dn_http,
            "datanode_ipc": self.dn_ipc,
            "zk_client": [self.zk_client(s) for s in ZK_IDS],
            "zk_quorum": [self.zk_quorum(s) for s in ZK_IDS],
            "zk_election": [self.zk_election(s) for s in ZK_IDS],
        }


def env_port_offset() -> int:
    """``$MDL_DEV_CLUSTER_PORT_OFFSET`` (default 0), validated."""
    raw = os.environ.get("MDL_DEV_CLUSTER_PORT_OFFSET", "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise DevClusterError(f"MDL_DEV_CLUSTER_PORT_OFFSET must be an integer, got {raw!r}") from None
    if not -10000 <= value <= 40000:
        raise DevClusterError(f"MDL_DEV_CLUSTER_PORT_OFFSET out of range (-10000..40000): {value}")
    return value
