"""HDFS: Hadoop's MiniDFSCluster (NameNode(s) + 3 DataNodes in one JVM), run by the single-file
launcher ``MiniHdfs.java`` shipped next to this module, and controlled through its control port
(DataNode and NameNode stop/start, HA failover, status).

``up --ha``: two NameNodes of the HA nameservice ``mdlns``, NameNode 0 made active.
``MDL_DEV_CLUSTER_BLOCKSIZE`` sets HDFS ``dfs.blocksize`` (default 1 MiB).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import time
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

from .artifacts import JAVA17_FLAGS, java_env
from .errors import DevClusterError, DevClusterTimeout
from .files import read_json, summary_line, tail, write_atomic
from .kerberos import KRB_HOST
from .layout import Layout
from .ports import NUM_DATANODES, Ports
from .probes import LOOPBACK, http_get_json, port_free, webhdfs_challenge
from .processes import Processes
from .settings import Settings

NAMESERVICE = "mdlns"  # the HA nameservice id (MiniHdfs.java)
DEFAULT_BLOCKSIZE = 1024 * 1024  # small blocks: multi-block files from small test data
MIN_BLOCKSIZE = 1024
# C1 only: startup on 2 cores is ~5 s faster and dev-cluster throughput does not matter.
HDFS_JVM_FLAGS = ["-Xmx1g", "-XX:TieredStopAtLevel=1"]
LOG4J_CONSOLE = (
    "log4j.appender.console=org.apache.log4j.ConsoleAppender\n"
    "log4j.appender.console.target=System.err\n"
    "log4j.appender.console.layout=org.apache.log4j.PatternLayout\n"
    "log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{2}: %m%n\n"
)
ROLE = "hdfs"


class Hdfs:
    """The MiniHdfs launcher process of one state directory."""

    def __init__(self, layout: Layout, settings: Settings, processes: Processes):
        self._layout = layout
        self._settings = settings
        self._procs = processes

    def pid(self) -> int | None:
        return self._procs.pid(ROLE)

    @property
    def log(self) -> Path:
        return self._layout.log(ROLE)

    def client_uri(self, ports: Ports) -> str:
        """``fs.defaultFS`` for Hadoop clients (the nameservice in HA mode)."""
        if self._settings.secure:
            return f"hdfs://{KRB_HOST}:{ports.nn_rpc}"
        return f"hdfs://{NAMESERVICE}" if self._settings.ha else f"hdfs://{LOOPBACK}:{ports.nn_rpc}"

    def superuser(self) -> str:
        """The HDFS superuser: the OS user running the NameNode JVM."""
        ready = read_json(self._layout.ready_file)
        if ready and ready.get("superuser"):
            return str(ready["superuser"])
        try:
            return pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            return os.environ.get("USER", "root")

    # ---- starting --------------------------------------------------------------------------

    def write_confs(self) -> None:
        """conf/: a copy of MiniHdfs.java and the launcher's log4j config."""
        conf = self._layout.conf_dir
        conf.mkdir(parents=True, exist_ok=True)
        launcher = resources.files("mdl.devcluster").joinpath("MiniHdfs.java").read_text(encoding="utf-8")
        target = conf / "MiniHdfs.java"
        if not target.exists() or target.read_text(encoding="utf-8") != launcher:
            write_atomic(target, launcher)
        write_atomic(
            conf / "log4j-hdfs.properties",
            "log4j.rootLogger=INFO,console\n"
            + LOG4J_CONSOLE
            + "log4j.logger.BlockStateChange=WARN\n"
            + "log4j.logger.org.apache.hadoop.hdfs.server.datanode.fsdataset.impl.FsDatasetImpl=WARN\n"
            + "log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode.clienttrace=WARN\n"
            + "log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN\n"
            + "log4j.logger.org.apache.hadoop.metrics2=WARN\n"
            + "log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR\n"
            + "log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN\n",
        )

    def _webapps_dir(self, cp: str) -> Path | None:
        """Hadoop's ``webapps/`` extracted from the minicluster jar into the state dir.

        Put first on the classpath, Jetty serves it from the directory instead of unpacking it
        from the 54 MB shaded jar (which it does by inflating every entry of the jar, for the
        NameNode and every DataNode: seconds of startup on 2 cores).
        """
        jar = next((e for e in cp.split(os.pathsep) if "hadoop-client-minicluster" in Path(e).name), None)
        if not jar:
            return None
        st = os.stat(jar)
        key = hashlib.sha256(f"{jar}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
        webapps = self._layout.webapps_dir
        target = webapps / key
        if (target / ".complete").exists():
            return target
        shutil.rmtree(webapps, ignore_errors=True)
        tmp = webapps / f".{key}.{os.getpid()}"
        with zipfile.ZipFile(jar) as zf:
            members = [n for n in zf.namelist() if n.startswith("webapps/") and ".." not in n]
            zf.extractall(tmp, members)
        (tmp / ".complete").write_text(jar + "\n")
        os.replace(tmp, target)
        return target

    def classpath(self, cps: dict[str, str]) -> str:
        """The launcher's classpath: secure mode adds hadoop-minikdc and the jars it needs that
        the minicluster's classpath has no version of (by Maven repository directory)."""
        if not self._settings.secure:
            return cps["hdfs"]
        have = {Path(e).parent.parent for e in cps["hdfs"].split(os.pathsep) if e}
        extra = [e for e in cps["kdc"].split(os.pathsep) if e and Path(e).parent.parent not in have]
        return os.pathsep.join([cps["hdfs"], *extra])

    def command(self, java: str, cp: str, ports: Ports) -> list[str]:
        blocksize = os.environ.get("MDL_DEV_CLUSTER_BLOCKSIZE", "").strip() or str(DEFAULT_BLOCKSIZE)
        if not blocksize.isdigit() or int(blocksize) < MIN_BLOCKSIZE or int(blocksize) % 512:
            raise DevClusterError(f"MDL_DEV_CLUSTER_BLOCKSIZE must be a multiple of 512 >= {MIN_BLOCKSIZE}")
        data = self._layout.hdfs_dir / "data"
        webapps = self._webapps_dir(cp)
        if webapps is not None:
            cp = f"{webapps}{os.pathsep}{cp}"
        conf = self._layout.conf_dir
        ha, secure = self._settings.ha, self._settings.secure
        return [
            java,
            *HDFS_JVM_FLAGS,
            *JAVA17_FLAGS,
            self._procs.marker(ROLE),
            f"-Dlog4j.configuration=file:{conf / 'log4j-hdfs.properties'}",
            f"-Dtest.build.data={data}",
            f"-Djava.io.tmpdir={self._layout.hdfs_dir / 'tmp'}",
            "-cp",
            cp,
            str(conf / "MiniHdfs.java"),
            "--base-dir",
            str(data),
            "--nn-port",
            str(ports.nn_rpc),
            "--http-port",
            str(ports.nn_http),
            "--datanodes",
            str(NUM_DATANODES),
            "--dn-http-ports",
            ",".join(map(str, ports.dn_http)),
            "--dn-ipc-ports",
            ",".join(map(str, ports.dn_ipc)),
            "--ready-file",
            str(self._layout.ready_file),
            "--conf",
            f"dfs.blocksize={blocksize}",
            "--conf",
            f"dfs.namenode.fs-limits.min-block-size={MIN_BLOCKSIZE}",
            *(["--ha", "--nn1-port", str(ports.nn1_rpc), "--nn1-http-port", str(ports.nn1_http)] if ha else []),
            *(
                ["--secure", "--kdc-dir", str(self._layout.kdc_dir), "--kdc-port", str(ports.kdc)]
                + ["--ticket-lifetime", str(self._settings.ticket_lifetime)]
                if secure
                else []
            ),
        ]

    def start(self, java: str, cps: dict[str, str], ports: Ports) -> int:
        """Spawn the launcher on fresh data (and, secure mode, a fresh KDC); returns its pid."""
        secure = self._settings.secure
        busy = [p for p in [*ports.hdfs_ports(self._settings.ha), *([ports.kdc] if secure else [])] if not port_free(p)]
        if busy:
            raise DevClusterError(
                f"cannot start HDFS: port(s) {', '.join(map(str, busy))} on {LOOPBACK} already in use "
                "(set MDL_DEV_CLUSTER_PORT_OFFSET to move the cluster)"
            )
        hdfs_dir = self._layout.hdfs_dir
        shutil.rmtree(hdfs_dir, ignore_errors=True)
        shutil.rmtree(self._layout.kdc_dir, ignore_errors=True)  # a new KDC: new keys, old tickets are void
        (hdfs_dir / "tmp").mkdir(parents=True)
        token = secrets.token_hex(16)
        env = dict(java_env(), MDL_DEVCLUSTER_TOKEN=token)
        return self._procs.spawn(ROLE, self.command(java, self.classpath(cps), ports), env, hdfs_dir, token=token)

    # ---- the launcher's control port -------------------------------------------------------

    def control(self, command: str, timeout: float = 120.0) -> Any:
        """Send one command to the MiniHdfs launcher; returns its ``result``."""
        ready = read_json(self._layout.ready_file)
        rec = self._procs.record(ROLE)
        if not ready or not rec or self.pid() is None:
            raise DevClusterError("HDFS is not running: run `python -m mdl.devcluster up`")
        line = f"{rec.get('token', '')} {command}\n".lstrip()
        try:
            with socket.create_connection((LOOPBACK, int(ready["control_port"])), timeout=5) as s:
                s.settimeout(timeout)
                s.sendall(line.encode())
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
        except OSError as e:
            raise DevClusterError(f"HDFS launcher control port did not answer {command!r}: {e}") from None
        try:
            reply = json.loads(buf.decode())
        except ValueError:
            raise DevClusterError(f"HDFS launcher sent a bad reply to {command!r}: {buf[:200]!r}") from None
        if not reply.get("ok"):
            raise DevClusterError(f"HDFS launcher: {command}: {reply.get('error')}", log_path=self.log)
        return reply.get("result")

    def running_datanodes(self) -> int:
        return sum(1 for d in self.control("status")["datanodes"] if d["running"])

    def restart_stopped(self) -> list[str]:
        """Restart the NameNodes and DataNodes a fault test left stopped; the roles restarted."""
        started = []
        ctl = self.control("status")
        for nn in ctl.get("namenodes", []) if self._settings.ha else []:
            if not nn["running"]:
                self.control(f"nnstart {nn['index']}")
                started.append(f"namenode{nn['index']}")
        for dn in ctl["datanodes"]:
            if not dn["running"]:
                self.control(f"start {dn['index']}")
                started.append(f"datanode{dn['index']}")
        return started

    # ---- state and waits -------------------------------------------------------------------

    def namenode_state(self, ports: Ports, timeout: float = 3.0) -> dict:
        """WebHDFS root status + NameNode JMX FSNamesystemState (raises OSError/ValueError).

        HA: of the active NameNode, plus ``active_namenode``. Both NameNodes share one JVM and so
        one set of JMX beans: the launcher's view of the active namesystem is used instead of JMX.
        """
        user = self.superuser()
        if self._settings.secure:  # WebHDFS and JMX want SPNEGO: the launcher's view, plus WebHDFS's 401 challenge
            try:
                ctl = self.control("status", timeout=timeout + 5)
            except DevClusterError as e:
                raise OSError(str(e)) from None
            return {
                "webhdfs": webhdfs_challenge(f"http://{KRB_HOST}:{ports.nn_http}/webhdfs/v1/?op=LISTSTATUS", timeout),
                "fs_state": "safeMode" if ctl["safemode"] else "Operational",
                "live_datanodes": ctl["live_datanodes"],
                "dead_datanodes": ctl["dead_datanodes"],
            }
        if self._settings.ha:
            try:
                ctl = self.control("status", timeout=timeout + 5)
            except DevClusterError as e:
                raise OSError(str(e)) from None
            active = next((n["index"] for n in ctl["namenodes"] if n["state"] == "active"), None)
            st: dict[str, Any] = {
                "webhdfs": False,
                "fs_state": None if active is None else "Operational",
                "live_datanodes": ctl["live_datanodes"],
                "dead_datanodes": ctl["dead_datanodes"],
                "active_namenode": active,
            }
            if active is not None:
                base = f"http://{LOOPBACK}:{ports.namenodes(True)[active][1]}"
                root = http_get_json(f"{base}/webhdfs/v1/?op=GETFILESTATUS&user.name={user}", timeout)
                st["webhdfs"] = "FileStatus" in root
            return st
        base = f"http://{LOOPBACK}:{ports.nn_http}"
        root = http_get_json(f"{base}/webhdfs/v1/?op=GETFILESTATUS&user.name={user}", timeout)
        jmx = http_get_json(f"{base}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState", timeout)
        bean = (jmx.get("beans") or [{}])[0]
        return {
            "webhdfs": "FileStatus" in root,
            "fs_state": bean.get("FSState"),
            "live_datanodes": bean.get("NumLiveDataNodes"),
            "dead_datanodes": bean.get("NumDeadDataNodes"),
        }

    def wait_ready(self, pid: int, ports: Ports, deadline: float, live: int = NUM_DATANODES) -> dict:
        """Wait until WebHDFS answers, the namesystem is operational and ``live`` DataNodes are live."""
        last: Any = "the launcher has not reported ready"
        while True:
            if self.pid() != pid:
                log_tail = tail(self.log, 40)
                raise DevClusterError(
                    f"HDFS launcher exited during startup: {summary_line(log_tail)} (log: {self.log})",
                    log_path=self.log,
                    log_tail=log_tail,
                )
            ready = read_json(self._layout.ready_file)
            if ready and ready.get("pid") == pid:
                try:
                    st = self.namenode_state(ports)
                    if st["webhdfs"] and st["fs_state"] == "Operational" and st["live_datanodes"] == live:
                        return st
                    last = f"WebHDFS up, {st['live_datanodes']}/{live} live DataNodes, state {st['fs_state']}"
                except (OSError, ValueError) as e:
                    last = f"WebHDFS not answering: {e}"
            if time.monotonic() > deadline:
                raise DevClusterTimeout(
                    f"HDFS not ready in time ({last}); see {self.log}", log_path=self.log, log_tail=tail(self.log, 40)
                )
            time.sleep(0.3)

    def wait_ready_file(self, pid: int, deadline: float) -> None:
        """Wait until launcher ``pid`` has written its ready file (its control port is open)."""
        while True:
            ready = read_json(self._layout.ready_file)
            if ready and ready.get("pid") == pid:
                return
            if self.pid() != pid:
                raise DevClusterError(
                    f"HDFS launcher exited (log: {self.log})", log_path=self.log, log_tail=tail(self.log)
                )
            if time.monotonic() > deadline:
                raise DevClusterTimeout(
                    f"HDFS launcher not ready in time; see {self.log}", log_path=self.log, log_tail=tail(self.log)
                )
            time.sleep(0.3)

    def wait_live(self, ports: Ports, want: int, deadline: float, what: str) -> dict:
        """Wait until the NameNode counts ``want`` live DataNodes (``what`` names the operation)."""
        last: Any = None
        while True:
            try:
                st = self.namenode_state(ports)
                if st["live_datanodes"] == want:
                    return st
                last = f"{st['live_datanodes']} live DataNodes"
            except (OSError, ValueError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise DevClusterTimeout(
                    f"{what}: NameNode still reports {last}, want {want}", log_path=self.log, log_tail=tail(self.log)
                )
            time.sleep(0.2)

    def wait_active(self, timeout: float, what: str) -> dict:
        """HA: wait until an active NameNode serves WebHDFS with every running DataNode live."""
        running = self.running_datanodes()
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                st = self.namenode_state(self._settings.ports)
                if st["webhdfs"] and st["fs_state"] == "Operational" and st["live_datanodes"] == running:
                    return st
                last = f"active NameNode {st.get('active_namenode')}, {st['live_datanodes']} live DataNodes"
            except (OSError, ValueError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise DevClusterTimeout(
                    f"{what}: no active NameNode ready in time ({last})", log_path=self.log, log_tail=tail(self.log)
                )
            time.sleep(0.2)

    def status(self, ports: Ports) -> dict[str, Any]:
        """The ``hdfs`` part of the cluster status: process, NameNode(s), DataNodes, health."""
        pid = self.pid()
        ha = self._settings.ha
        hdfs: dict[str, Any] = {
            "running": pid is not None,
            "healthy": False,
            "pid": pid,
            "namenode": {"rpc_port": ports.nn_rpc, "http_port": ports.nn_http},
            "log": str(self.log),
        }
        if ha:
            hdfs["ha"] = True
            hdfs["namenodes"] = [
                {"index": i, "rpc_port": rpc, "http_port": http} for i, (rpc, http) in enumerate(ports.namenodes(True))
            ]
        if pid is None:
            return hdfs
        ready = read_json(self._layout.ready_file)
        if not ready or ready.get("pid") != pid:
            hdfs["starting"] = True
            return hdfs
        try:
            ctl = self.control("status", timeout=10)
            hdfs["datanodes"] = ctl["datanodes"]
            hdfs["safemode"] = ctl["safemode"]
            if ha:
                hdfs["namenodes"] = ctl["namenodes"]
        except DevClusterError as e:
            hdfs["control_error"] = str(e)
            hdfs["datanodes"] = ready.get("datanodes")
        try:
            nn = self.namenode_state(ports)
            hdfs.update(nn)
            running_dns = sum(1 for d in hdfs.get("datanodes") or [] if d.get("running"))
            hdfs["healthy"] = bool(
                nn["webhdfs"]
                and nn["fs_state"] == "Operational"
                and nn["live_datanodes"] == NUM_DATANODES == running_dns
                and all(n.get("running", True) for n in hdfs.get("namenodes") or [])
            )
        except (OSError, ValueError) as e:
            hdfs["namenode_error"] = str(e)
        return hdfs
