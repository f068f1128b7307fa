"""The cluster's mode (HA, secure, ticket lifetime) and port offset: as requested by the caller,
and as recorded in run/cluster.json by ``up`` (which wins while the cluster is up, until ``down``)."""

from __future__ import annotations

import json

from .errors import DevClusterError, DevClusterUsageError
from .files import now_iso, read_json, write_atomic
from .layout import Layout
from .ports import ZK_IDS, Ports, env_port_offset

DEFAULT_TICKET_LIFETIME = 3600


class Settings:
    """What one DevCluster was asked for, resolved against what is running."""

    def __init__(
        self,
        layout: Layout,
        port_offset: int | None = None,
        ha: bool | None = None,
        secure: bool | None = None,
        ticket_lifetime: int | None = None,
    ):
        self._layout = layout
        self._offset = port_offset
        self._ha = ha
        self._secure = secure
        self._lifetime = ticket_lifetime

    def _recorded(self) -> dict | None:
        """run/cluster.json if it holds a cluster's record."""
        meta = read_json(self._layout.cluster_file)
        return meta if meta and isinstance(meta.get("port_offset"), int) else None

    @property
    def ports(self) -> Ports:
        """Ports of the running cluster (from run/cluster.json), else the configured ones."""
        meta = self._recorded()
        return Ports(meta["port_offset"]) if meta else Ports(self.configured_offset())

    @property
    def ha(self) -> bool:
        """Whether HDFS has two NameNodes (HA): from run/cluster.json, else as requested (``up --ha``)."""
        meta = self._recorded()
        return bool(meta.get("ha", False)) if meta else bool(self._ha)

    @property
    def secure(self) -> bool:
        """Kerberos mode (``up --secure``): from run/cluster.json, else as requested."""
        meta = self._recorded()
        return bool(meta.get("secure", False)) if meta else bool(self._secure)

    @property
    def ticket_lifetime(self) -> int:
        """Secure mode: the KDC's maximum ticket lifetime in seconds (``--ticket-lifetime``)."""
        meta = read_json(self._layout.cluster_file)
        if meta and isinstance(meta.get("ticket_lifetime"), int):
            return int(meta["ticket_lifetime"])
        return self._lifetime or DEFAULT_TICKET_LIFETIME

    @property
    def zk_ids(self) -> tuple[int, ...]:
        """The ZooKeeper server ids this cluster runs: none in secure mode."""
        return () if self.secure else ZK_IDS

    def configured_offset(self) -> int:
        """The requested port offset, else ``$MDL_DEV_CLUSTER_PORT_OFFSET``."""
        return self._offset if self._offset is not None else env_port_offset()

    def check_request(self) -> None:
        """Reject requests that make no sense whatever runs (DevClusterUsageError)."""
        if self._secure and self._ha:
            raise DevClusterUsageError("--secure and --ha cannot be combined")
        if self._lifetime is not None and self._lifetime < 1:
            raise DevClusterUsageError(f"--ticket-lifetime must be >= 1 second, got {self._lifetime}")

    def record(self) -> Ports:
        """Write run/cluster.json for a fresh start with the requested mode; returns its ports."""
        ports = Ports(self.configured_offset())
        write_atomic(
            self._layout.cluster_file,
            json.dumps(
                {
                    "port_offset": ports.offset,
                    "ha": bool(self._ha),
                    "secure": bool(self._secure),
                    **({"ticket_lifetime": self.ticket_lifetime} if self._secure else {}),
                    "ports": ports.as_dict(),
                    "state_dir": str(self._layout.root),
                    "started_at": now_iso(),
                },
                indent=1,
            ),
        )
        return ports

    def check_matches_running(self) -> None:
        """Reject a request for another offset or mode than the running cluster's (DevClusterError)."""
        ports = self.ports
        if self._offset is not None and self._offset != ports.offset:
            raise DevClusterError(f"the dev cluster already runs with port offset {ports.offset}; run down first")
        if self._ha is not None and self._ha != self.ha:
            mode = "HA (two NameNodes)" if self.ha else "without HA (one NameNode)"
            raise DevClusterError(f"the dev cluster already runs {mode}; run down first")
        if self._secure is not None and self._secure != self.secure:
            mode = "secure (Kerberos)" if self.secure else "without Kerberos"
            raise DevClusterError(f"the dev cluster already runs {mode}; run down first")
        if self._lifetime is not None and self._lifetime != self.ticket_lifetime:
            raise DevClusterError(
                f"the dev cluster already runs with ticket lifetime {self.ticket_lifetime} s; run down first"
            )
