"""DevCluster: one dev cluster (by state directory) and its operations, orchestrating the HDFS,
ZooKeeper and Kerberos parts; plus module-level shortcuts on the default cluster."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import artifacts, zookeeper
from .errors import DevClusterError, DevClusterUsageError
from .files import flock
from .fsshell import FsShell
from .hdfs import NAMESERVICE, Hdfs
from .kerberos import CLIENT_PRINCIPAL, Kerberos
from .layout import Layout
from .layout import default_state_dir as default_state_dir  # re-exported: tests and bench import it from here
from .ports import NUM_DATANODES, ZK_IDS, Ports
from .probes import LOOPBACK
from .processes import Processes
from .settings import Settings
from .zookeeper import ZooKeeper


class DevCluster:
    """One dev cluster, identified by its state directory."""

    def __init__(
        self,
        state_dir: str | os.PathLike | None = None,
        port_offset: int | None = None,
        ha: bool | None = None,
        secure: bool | None = None,
        ticket_lifetime: int | None = None,
    ):
        self.dir = Path(state_dir).expanduser().absolute() if state_dir else default_state_dir()
        self._layout = Layout(self.dir)
        self._settings = Settings(self._layout, port_offset, ha, secure, ticket_lifetime)
        self._procs = Processes(self._layout)
        self._hdfs = Hdfs(self._layout, self._settings, self._procs)
        self._zk = ZooKeeper(self._layout, self._procs)
        self._kerberos = Kerberos(self._layout, self._settings)
        self._fsshell = FsShell(self._layout, self._settings, self._hdfs, self._kerberos)
        self._java: str | None = None

    # ---- paths and configuration -----------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self._layout.run_dir

    @property
    def log_dir(self) -> Path:
        return self._layout.log_dir

    @property
    def conf_dir(self) -> Path:
        return self._layout.conf_dir

    @property
    def kdc_dir(self) -> Path:
        """Secure mode: keytabs, krb5 configs and the client's ticket cache (removed by ``down``)."""
        return self._layout.kdc_dir

    @property
    def ports(self) -> Ports:
        """Ports of the running cluster (from run/cluster.json), else the configured ones."""
        return self._settings.ports

    @property
    def ha(self) -> bool:
        """Whether HDFS has two NameNodes (HA): from run/cluster.json, else as requested (``up --ha``)."""
        return self._settings.ha

    @property
    def secure(self) -> bool:
        """Kerberos mode (``up --secure``): from run/cluster.json, else as requested."""
        return self._settings.secure

    @property
    def ticket_lifetime(self) -> int:
        """Secure mode: the KDC's maximum ticket lifetime in seconds (``--ticket-lifetime``)."""
        return self._settings.ticket_lifetime

    @property
    def zk_ids(self) -> tuple[int, ...]:
        """The ZooKeeper server ids this cluster runs: none in secure mode."""
        return self._settings.zk_ids

    def kerberos(self) -> dict[str, Any]:
        """Secure mode: what a Kerberos client needs (paths are valid while the cluster is up)."""
        return self._kerberos.config()

    def kinit(self, ccache: str | None = None, *, principal: str = CLIENT_PRINCIPAL, timeout: float = 30.0) -> None:
        """Secure mode: ``kinit -kt <keytab> <principal>`` (MIT kinit) into ``ccache`` (default: the
        state dir's). ``principal``: the client's, or the superuser's (``hdfs/localhost@MDL.TEST``).
        Raises DevClusterError if kinit is missing or fails."""
        self._kerberos.kinit(ccache, principal=principal, timeout=timeout)

    def superuser(self) -> str:
        """The HDFS superuser: the OS user running the NameNode JVM."""
        return self._hdfs.superuser()

    def java(self) -> str:
        """The java binary to use; checks it exists and is a Java 11..22."""
        if not self._java:
            self._java = artifacts.find_java()
        return self._java

    def classpaths(self, *, allow_resolve: bool = True) -> tuple[dict[str, str], bool, float]:
        """(``{"hdfs": cp, "zk": cp}`` (secure: and ``"kdc"``), whether Maven ran, seconds Maven took)."""
        return artifacts.classpaths(self._layout, self.secure, allow_resolve=allow_resolve)

    # ---- client settings -------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """What a client needs: URLs, the HDFS user and the matching MDL_* environment."""
        if self.secure:
            return self._kerberos.client_info()
        p = self.ports
        ha = self.ha
        zk_hosts = ",".join(f"{LOOPBACK}:{p.zk_client(s)}" for s in ZK_IDS)
        env = {
            "MDL_STORAGE_URL": "webhdfs://" + ",".join(f"{LOOPBACK}:{http}" for _, http in p.namenodes(ha)),
            "MDL_STORAGE_USER": self.superuser(),
            "MDL_REGISTRY_URL": f"zk://{zk_hosts}/mdl",
        }
        out: dict[str, Any] = {
            "storage_url": env["MDL_STORAGE_URL"],
            "storage_user": env["MDL_STORAGE_USER"],
            "registry_url": env["MDL_REGISTRY_URL"],
            "webhdfs_url": f"http://{LOOPBACK}:{p.nn_http}/webhdfs/v1",
            "namenode_http": f"http://{LOOPBACK}:{p.nn_http}",
            "hdfs_url": f"hdfs://{LOOPBACK}:{p.nn_rpc}",
            "zk_hosts": zk_hosts,
            "ports": p.as_dict(),
            "state_dir": str(self.dir),
            "env": env,
        }
        if ha:
            out["ha"] = True
            out["nameservice"] = NAMESERVICE
            out["namenodes"] = [
                {"index": i, "namenode_http": f"http://{LOOPBACK}:{http}", "hdfs_url": f"hdfs://{LOOPBACK}:{rpc}"}
                for i, (rpc, http) in enumerate(p.namenodes(ha))
            ]
            out["ports"]["namenode1_rpc"] = p.nn1_rpc
            out["ports"]["namenode1_http"] = p.nn1_http
            try:  # which one is active right now (None if HDFS is not running)
                states = [n["state"] for n in self._hdfs.control("nnstatus", timeout=5)]
                out["active_namenode"] = states.index("active") if "active" in states else None
            except DevClusterError:
                out["active_namenode"] = None
        return out

    def env_snippet(self) -> str:
        """Shell lines (``export K=V``) a client can eval."""
        info = self.info()
        out = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in info["env"].items())
        if info.get("secure"):  # up kinits into KRB5CCNAME; this renews an expired ticket
            out += f"# {info['kerberos']['kinit']}\n"
        return out

    # ---- lifecycle -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with flock(self._layout.lock_file):
            yield

    def up(self, timeout: float = 180.0) -> dict[str, Any]:
        """Start (or repair) the cluster and wait until it is ready. Idempotent.

        ``timeout`` bounds the readiness wait; a cold Maven download comes on top of it.
        The result is :meth:`status` plus ``seconds``, ``maven_resolved`` (cold start),
        ``maven_seconds``, ``changed`` and ``started`` (the components started by this call).
        Secure mode (``secure=True``: Kerberos, no ZooKeeper) also kinits the client into the
        state dir's ticket cache (``kinit_ok`` in the result, else ``kinit_error``).
        """
        t0 = time.monotonic()
        self._settings.check_request()
        with self._locked():
            java = self.java()
            hdfs_pid = self._hdfs.pid()
            zk_pids = {sid: self._zk.pid(sid) for sid in ZK_IDS}
            started: list[str] = []
            if hdfs_pid is None and not any(zk_pids.values()):
                ports = self._fresh_start()
            else:
                self._settings.check_matches_running()
                ports = self.ports
            # after cluster.json: the mode decides the classpaths (secure: + hadoop-minikdc)
            cps, resolved, maven_seconds = self.classpaths()
            deadline = time.monotonic() + timeout
            self._write_confs()
            for sid in self.zk_ids:
                if zk_pids[sid] is None:
                    zk_pids[sid] = self._zk.start(java, cps["zk"], ports, sid)
                    started.append(zookeeper.role(sid))
            if hdfs_pid is None:
                hdfs_pid = self._hdfs.start(java, cps, ports)
                started.append("hdfs")
            for sid in self.zk_ids:
                self._zk.wait(sid, zk_pids[sid], ports, deadline, quorum=True)
            if "hdfs" not in started:  # launcher already running: restart what a fault test left stopped
                self._hdfs.wait_ready_file(hdfs_pid, deadline)
                started += self._hdfs.restart_stopped()
            self._hdfs.wait_ready(hdfs_pid, ports, deadline)
            kinit: dict[str, Any] = {"kinit_ok": True}
            if self.secure and ("hdfs" in started or not self._kerberos.client_ccache_exists()):
                try:
                    self.kinit()
                except DevClusterError as e:
                    kinit = {"kinit_ok": False, "kinit_error": str(e)}
        result = self.status()
        if self.secure:
            result.update(kinit)
        result.update(
            {
                "changed": bool(started),
                "started": started,
                "seconds": round(time.monotonic() - t0, 2),
                "maven_resolved": resolved,
                "maven_seconds": round(maven_seconds, 2),
            }
        )
        return result

    def _fresh_start(self) -> Ports:
        """Nothing of ours runs: check for strays, then a new run/ with cluster.json and fresh logs."""
        self._settings.configured_offset()  # an invalid $MDL_DEV_CLUSTER_PORT_OFFSET fails first
        stray = self._procs.scan_marked()
        if stray:
            raise DevClusterError(
                f"processes of an earlier dev cluster are still running ({stray}); run `python -m mdl.devcluster down`"
            )
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        ports = self._settings.record()
        for role in ("hdfs", *(zookeeper.role(s) for s in ZK_IDS)):
            self._layout.log(role).unlink(missing_ok=True)
        return ports

    def _write_confs(self) -> None:
        self._hdfs.write_confs()
        self._fsshell.write_confs()

    def down(self) -> dict[str, Any]:
        """Stop this cluster's processes (only ours, by pid file and command-line marker) and
        delete its data (``run/``). Logs and the classpath cache stay. Idempotent."""
        t0 = time.monotonic()
        with self._locked():
            targets: dict[str, set[int]] = {}
            for role in ("hdfs", *(zookeeper.role(s) for s in ZK_IDS)):
                pid = self._procs.pid(role)
                if pid is not None:
                    targets.setdefault(role, set()).add(pid)
            for role, pids in self._procs.scan_marked().items():
                targets.setdefault(role, set()).update(pids)
            stopped = [{"role": role, "pid": pid} for role, pid in self._procs.terminate_all(targets)]
            existed = self.run_dir.exists()
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return {
            "changed": bool(stopped) or existed,
            "stopped": stopped,
            "seconds": round(time.monotonic() - t0, 2),
            "state_dir": str(self.dir),
        }

    def status(self) -> dict[str, Any]:
        """Per-component state: processes, ports, ZooKeeper modes, DataNodes, NameNode view."""
        ports = self.ports
        hdfs = self._hdfs.status(ports)
        zk = self._zk.status(self.zk_ids, ports)
        if self.secure:
            hdfs["secure"] = True
            zk["skipped"] = "secure mode runs no ZooKeeper"
        return {
            "running": hdfs["running"] and zk["running"],
            "healthy": hdfs["healthy"] and zk["healthy"],
            "state_dir": str(self.dir),
            "hdfs": hdfs,
            "zookeeper": zk,
            "info": self.info(),
        }

    # ---- fault controls: DataNodes ---------------------------------------------------------

    def stop_datanode(
        self, i: int, *, mark_dead: bool = False, wait_dead: bool = False, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Stop DataNode ``i`` (0-based); returns once it is shut down inside the launcher.

        ``mark_dead``: tell the NameNode at once (setDataNodeDead) instead of after ~12 s.
        ``wait_dead``: wait until the NameNode counts it dead (implied by ``mark_dead``).
        """
        _check_dn(i)
        with self._locked():
            dn = self._hdfs.control(f"stop {i}")
            if mark_dead:
                self._hdfs.control(f"dead {i}")
            if mark_dead or wait_dead:
                running = self._hdfs.running_datanodes()
                self._hdfs.wait_live(self.ports, running, time.monotonic() + timeout, f"DataNode {i} stop")
        return dn

    def start_datanode(self, i: int, *, timeout: float = 60.0) -> dict[str, Any]:
        """(Re)start DataNode ``i`` on its previous ports; waits until the NameNode counts it live."""
        _check_dn(i)
        with self._locked():
            dn = self._hdfs.control(f"start {i}", timeout=timeout + 10)
            running = self._hdfs.running_datanodes()
            self._hdfs.wait_live(self.ports, running, time.monotonic() + timeout, f"DataNode {i} start")
        return dn

    # ---- fault controls: HA NameNodes (``up --ha``) ----------------------------------------

    def namenodes(self) -> list[dict[str, Any]]:
        """HA: each NameNode's index, running, state (active/standby) and ports."""
        self._check_ha()
        return self._hdfs.control("nnstatus")

    def failover_namenode(self, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """HA: make the active NameNode standby and the (running) standby active."""
        self._check_ha()
        with self._locked():
            nns = self._hdfs.control("failover", timeout=timeout + 10)
            self._hdfs.wait_active(timeout, "failover")
        return nns

    def stop_namenode(self, i: int, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """HA: shut NameNode ``i`` down; the other one is made active if it is not already."""
        self._check_nn(i)
        with self._locked():
            nns = self._hdfs.control(f"nnstop {i}", timeout=timeout + 10)
            if any(n["running"] for n in nns):
                self._hdfs.wait_active(timeout, f"NameNode {i} stop")
        return nns

    def start_namenode(self, i: int, *, timeout: float = 120.0) -> list[dict[str, Any]]:
        """HA: restart NameNode ``i`` on its ports (as standby, or active if no other one runs)."""
        self._check_nn(i)
        with self._locked():
            nns = self._hdfs.control(f"nnstart {i}", timeout=timeout + 10)
            self._hdfs.wait_active(timeout, f"NameNode {i} start")
        return nns

    def _check_ha(self) -> None:
        if not self.ha:
            raise DevClusterUsageError("this dev cluster has one NameNode: start it with `up --ha` (after `down`)")

    def _check_nn(self, i: int) -> None:
        self._check_ha()
        if not 0 <= i < 2:
            raise DevClusterUsageError(f"NameNode indices are 0..1, got {i}")

    # ---- fault controls: ZooKeeper ---------------------------------------------------------

    def stop_zk(self, sid: int) -> dict[str, Any]:
        """Stop ZooKeeper server ``sid`` (1..3) and wait until its process is gone."""
        self._check_zk()
        zookeeper.check_sid(sid)
        with self._locked():
            return self._zk.stop(sid)

    def start_zk(self, sid: int, *, timeout: float = 60.0) -> dict[str, Any]:
        """Start ZooKeeper server ``sid`` (1..3); waits until it answers ``srvr`` as leader or
        follower (or, when too few servers run for a quorum, until it answers at all)."""
        self._check_zk()
        zookeeper.check_sid(sid)
        with self._locked():
            return self._start_zk_locked([sid], timeout)[0]

    def stop_zk_all(self) -> list[dict[str, Any]]:
        """Stop every ZooKeeper server (the ensemble becomes unavailable)."""
        self._check_zk()
        with self._locked():
            return self._zk.stop_all()

    def start_zk_all(self, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Start every stopped ZooKeeper server; waits until all serve as leader/follower."""
        self._check_zk()
        with self._locked():
            return self._start_zk_locked(list(ZK_IDS), timeout)

    def _start_zk_locked(self, sids: list[int], timeout: float) -> list[dict[str, Any]]:
        if not self._layout.cluster_file.exists():
            raise DevClusterError("the dev cluster is not up: run `python -m mdl.devcluster up`")
        java = self.java()
        cps, _, _ = self.classpaths(allow_resolve=False)
        return self._zk.start_servers(java, cps["zk"], self.ports, sids, timeout)

    def _check_zk(self) -> None:
        if self.secure:
            raise DevClusterUsageError("this dev cluster (up --secure) runs no ZooKeeper: use the default cluster's")

    # ---- Hadoop's own shell ----------------------------------------------------------------

    def fs_shell(
        self,
        *args: str,
        user: str | None = None,
        input: bytes | None = None,
        timeout: float = 120.0,
        check: bool = False,
    ) -> subprocess.CompletedProcess:
        """Run ``hadoop fs`` (org.apache.hadoop.fs.FsShell) against the cluster.

        Returns a CompletedProcess with bytes stdout/stderr. ``user`` runs it as another HDFS
        user (HADOOP_USER_NAME); default is the OS user, the HDFS superuser. Secure mode: as
        hdfs/localhost (the superuser ``hdfs``) or, with ``user="client"``, as client@MDL.TEST,
        each kinit-ed into its own ticket cache under run/kdc.
        """
        java = self.java()
        cps, _, _ = self.classpaths(allow_resolve=False)
        return self._fsshell.run(java, cps["hdfs"], *args, user=user, input=input, timeout=timeout, check=check)

    def dfsadmin(self, *args: str, timeout: float = 120.0, check: bool = False) -> subprocess.CompletedProcess:
        """Run ``hdfs dfsadmin`` (org.apache.hadoop.hdfs.tools.DFSAdmin) as the superuser, e.g.
        ``dfsadmin("-setSpaceQuota", "10m", "/path")``; a CompletedProcess like :meth:`fs_shell`'s."""
        java = self.java()
        cps, _, _ = self.classpaths(allow_resolve=False)
        return self._fsshell.dfsadmin(java, cps["hdfs"], *args, timeout=timeout, check=check)


def _check_dn(i: int) -> None:
    if not 0 <= i < NUM_DATANODES:
        raise DevClusterUsageError(f"DataNode indices are 0..{NUM_DATANODES - 1}, got {i}")


# --------------------------------------------------------------------------------------------
# Module-level API on the default cluster (state dir from the environment)


def _default() -> DevCluster:
    return DevCluster()


def up(timeout: float = 180.0) -> dict[str, Any]:
    return _default().up(timeout=timeout)


def down() -> dict[str, Any]:
    return _default().down()


def status() -> dict[str, Any]:
    return _default().status()


def info() -> dict[str, Any]:
    return _default().info()


def env_snippet() -> str:
    return _default().env_snippet()


def stop_datanode(i: int, *, mark_dead: bool = False, wait_dead: bool = False, timeout: float = 60.0) -> dict[str, Any]:
    return _default().stop_datanode(i, mark_dead=mark_dead, wait_dead=wait_dead, timeout=timeout)


def start_datanode(i: int, *, timeout: float = 60.0) -> dict[str, Any]:
    return _default().start_datanode(i, timeout=timeout)


def stop_zk(sid: int) -> dict[str, Any]:
    return _default().stop_zk(sid)


def start_zk(sid: int, *, timeout: float = 60.0) -> dict[str, Any]:
    return _default().start_zk(sid, timeout=timeout)


def stop_zk_all() -> list[dict[str, Any]]:
    return _default().stop_zk_all()


def start_zk_all(*, timeout: float = 60.0) -> list[dict[str, Any]]:
    return _default().start_zk_all(timeout=timeout)


def fs_shell(
    *args: str, user: str | None = None, input: bytes | None = None, timeout: float = 120.0, check: bool = False
) -> subprocess.CompletedProcess:
    return _default().fs_shell(*args, user=user, input=input, timeout=timeout, check=check)
