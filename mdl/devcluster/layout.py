"""Where things live in a state directory (paths only; nothing here touches the disk)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_state_dir() -> Path:
    """``$MDL_DEV_CLUSTER_DIR`` or ``$XDG_CACHE_HOME/mdl/dev-cluster`` (``~/.cache/...``)."""
    explicit = os.environ.get("MDL_DEV_CLUSTER_DIR")
    if explicit:
        return Path(explicit).expanduser().absolute()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser().absolute() / "mdl" / "dev-cluster"


@dataclass(frozen=True)
class Layout:
    """The paths of one state directory (see the package docstring for the tree)."""

    root: Path

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    @property
    def classpath_file(self) -> Path:
        return self.root / "classpath.json"

    @property
    def maven_dir(self) -> Path:
        return self.root / "maven"

    @property
    def webapps_dir(self) -> Path:
        return self.root / "webapps"

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def cluster_file(self) -> Path:
        """run/cluster.json: the mode and ports of the cluster that is up."""
        return self.run_dir / "cluster.json"

    @property
    def hdfs_dir(self) -> Path:
        return self.run_dir / "hdfs"

    @property
    def ready_file(self) -> Path:
        """Written by the MiniHdfs launcher once HDFS is up (pid, control port, superuser)."""
        return self.hdfs_dir / "ready.json"

    @property
    def kdc_dir(self) -> Path:
        """Secure mode: keytabs, krb5 configs and the client's ticket cache."""
        return self.run_dir / "kdc"

    def zk_dir(self, sid: int) -> Path:
        return self.run_dir / f"zk{sid}"

    def log(self, role: str) -> Path:
        return self.log_dir / f"{role}.log"

    def pidfile(self, role: str) -> Path:
        return self.run_dir / f"{role}.pid.json"
