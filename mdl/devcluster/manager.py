"""Start, stop and inspect a real local HDFS + ZooKeeper cluster for development and tests.

HDFS is Hadoop's MiniDFSCluster (NameNode + 3 DataNodes in one JVM, run by the single-file
launcher ``MiniHdfs.java`` shipped next to this module); ZooKeeper is a 3-server ensemble of
``QuorumPeerMain`` JVMs. Everything binds to 127.0.0.1. Jars come from Maven Central through
``mvn`` (cached in ``~/.m2``); the computed classpaths are cached in the state directory so warm
starts never run Maven.

State directory: ``$MDL_DEV_CLUSTER_DIR``, else ``$XDG_CACHE_HOME/mdl/dev-cluster``
(``~/.cache/mdl/dev-cluster``)::

    lock                    flock held by up/down/fault operations
    classpath.json          cached classpaths (keyed by the artifact list)
    maven/                  generated pom.xml files used to resolve the classpaths
    conf/                   generated log4j configs and a copy of MiniHdfs.java
    logs/                   maven.log, hdfs.log, zk1.log .. zk3.log, fsshell.log (kept by down)
    run/                    cluster.json, pid files, ready file, HDFS and ZooKeeper data (removed by down)

Processes are started in their own session (they outlive the caller) and are recognised by a
``-Dmdl.devcluster=<role>@<state dir>`` marker on their command line: ``down`` only ever signals
processes whose command line carries this marker.

Ports (offset 0): NameNode RPC 19820, NameNode HTTP/WebHDFS 19870, DataNode HTTP 19864-19866,
DataNode IPC 19867-19869 (DataNode transfer ports are ephemeral, kept across restarts), ZooKeeper
client 12181-12183, quorum 12888-12890, election 13888-13890; with ``up --ha`` (two NameNodes of the
HA nameservice ``mdlns``, NameNode 0 made active) NameNode 1 adds RPC 19821 and HTTP 19871. A second
cluster needs its own state dir and an offset such as 100, 200, 300 (the tests' HA cluster) or 400 (the
tests' secure cluster; not 707, 1000 or 1707: those map ZooKeeper ports onto the default cluster's).

``up --secure`` (Kerberos; not with ``--ha``): the launcher also runs an in-JVM MiniKdc (hadoop-minikdc,
added to the classpath only in this mode) for realm ``MDL.TEST`` on localhost:19888 (+offset, TCP), and
HDFS runs Kerberized as ``hdfs/localhost`` (superuser ``hdfs``): SPNEGO on WebHDFS (use
``http://localhost:PORT``), block access tokens, SASL data transfer. No ZooKeeper ensemble is started.
``run/kdc/`` holds the keytabs (``client.keytab`` for ``client@MDL.TEST``, whose home is /user/client),
``krb5-client.conf`` for MIT clients and the ticket cache ``krb5cc_client`` that ``up`` kinits into;
``info()``/``env`` report them (KRB5_CONFIG, KRB5CCNAME, MDL_STORAGE_AUTH=kerberos). ``--ticket-lifetime
SECONDS`` (default 3600) caps every ticket the KDC issues, so tests can let tickets expire. Both the mode
and the lifetime are remembered in run/cluster.json until ``down``.

Environment knobs: ``MDL_DEV_CLUSTER_DIR``, ``MDL_DEV_CLUSTER_PORT_OFFSET`` (added to every port),
``MDL_DEV_CLUSTER_JAVA`` (java binary; else ``$JAVA_HOME/bin/java``, else ``java`` on PATH),
``MDL_DEV_CLUSTER_MVN`` (mvn binary), ``MDL_DEV_CLUSTER_MAVEN_REPO`` (a ``maven.repo.local``
other than ``~/.m2/repository``), ``MDL_DEV_CLUSTER_BLOCKSIZE`` (HDFS ``dfs.blocksize``, default 1 MiB).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------
# Versions and constants

HADOOP_VERSION = "3.5.0"
JUNIT_JUPITER_VERSION = "5.13.4"  # MiniDFSCluster 3.5.0 needs JUnit 5 at run time (HDFS-17804)
RELOAD4J_VERSION = "1.2.22"  # optional in hadoop-client-runtime; without it Hadoop logs nothing
SLF4J_RELOAD4J_VERSION = "1.7.36"  # matches the slf4j-api 1.7.36 hadoop-client-runtime pulls in
ZOOKEEPER_VERSION = "3.9.5"
SLF4J_SIMPLE_VERSION = "2.0.13"  # matches the slf4j-api 2.0.13 of zookeeper 3.9.5
# "provided" in zookeeper's POM (so a runtime-scope classpath misses them) but QuorumPeerMain
# needs both: DefaultMetricsProvider -> metrics-core, snapshot naming -> snappy-java.
# Versions from zookeeper-parent 3.9.5 (dropwizard.version, snappy.version).
DROPWIZARD_METRICS_VERSION = "4.1.12.1"
SNAPPY_VERSION = "1.1.10.5"
MINIKDC_VERSION = HADOOP_VERSION  # up --secure only: org.apache.hadoop:hadoop-minikdc (Apache Kerby 2.0.3)
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

NUM_DATANODES = 3
ZK_IDS = (1, 2, 3)
DEFAULT_BLOCKSIZE = 1024 * 1024  # small blocks: multi-block files from small test data
MIN_BLOCKSIZE = 1024

# C1 only: startup on 2 cores is ~5 s faster and dev-cluster throughput does not matter.
HDFS_JVM_FLAGS = ["-Xmx1g", "-XX:TieredStopAtLevel=1"]
ZK_JVM_FLAGS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]

# Flags Hadoop's own scripts add on Java 17.
JAVA17_FLAGS = (
    ["-XX:+IgnoreUnrecognizedVMOptions"]
    + [
        f"--add-opens=java.base/{pkg}=ALL-UNNAMED"
        for pkg in (
            "java.io",
            "java.lang",
            "java.lang.reflect",
            "java.math",
            "java.net",
            "java.nio",
            "java.text",
            "java.util",
            "java.util.concurrent",
            "java.util.concurrent.atomic",
            "java.util.regex",
            "java.util.zip",
            "sun.nio.ch",
            "sun.security.util",
            "sun.security.x509",
        )
    ]
    + ["-Djava.net.preferIPv4Stack=true"]
)

LOOPBACK = "127.0.0.1"
NAMESERVICE = "mdlns"  # the HA nameservice id (MiniHdfs.java)
# up --secure (MiniHdfs.java): realm, principals and the Kerberos host name clients must use
REALM = "MDL.TEST"
KRB_HOST = "localhost"  # SPNEGO wants HTTP/<host>: URLs use localhost (HTTP/127.0.0.1 works too)
CLIENT_PRINCIPAL = f"client@{REALM}"
CLIENT_HOME = "/user/client"
SECURE_SUPERUSER = "hdfs"  # the short name of hdfs/localhost, the NameNode's login
DEFAULT_TICKET_LIFETIME = 3600
MARKER_PROP = "-Dmdl.devcluster="

_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------------------------
# Errors


class DevClusterError(Exception):
    """An expected failure of a dev-cluster operation; ``str(e)`` is one line for the user.

    ``log_path`` names the most relevant log file (if any) and ``log_tail`` holds its last lines.
    ``exit_code`` follows the project's exit-code table (1 failed, 5 timed out).
    """

    exit_code = 1

    def __init__(self, message: str, *, log_path: Path | None = None, log_tail: Sequence[str] = ()):
        super().__init__(message)
        self.log_path = log_path
        self.log_tail = list(log_tail)


class DevClusterUsageError(DevClusterError):
    """Invalid input, e.g. a DataNode index or ZooKeeper id out of range."""

    exit_code = 2


class DevClusterTimeout(DevClusterError):
    """A wait for readiness (or for a fault to take effect) ran out of time."""

    exit_code = 5


# --------------------------------------------------------------------------------------------
# Ports


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


def _env_port_offset() -> int:
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


def default_state_dir() -> Path:
    """``$MDL_DEV_CLUSTER_DIR`` or ``$XDG_CACHE_HOME/mdl/dev-cluster`` (``~/.cache/...``)."""
    explicit = os.environ.get("MDL_DEV_CLUSTER_DIR")
    if explicit:
        return Path(explicit).expanduser().absolute()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser().absolute() / "mdl" / "dev-cluster"


# --------------------------------------------------------------------------------------------
# Small helpers


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 20) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln for ln in data.splitlines() if ln.strip()][-lines:]


def _summary_line(tail: Sequence[str]) -> str:
    """The most telling line of a log tail: the last error-ish line, else the last line."""
    pick = ""
    for ln in tail:
        if re.search(r"(Exception|Error|ERROR|FATAL|Caused by)", ln):
            pick = ln
    if not pick and tail:
        pick = tail[-1]
    pick = pick.strip()
    return pick if len(pick) <= 240 else pick[:237] + "..."


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def four_letter_word(port: int, cmd: str = "srvr", timeout: float = 2.0) -> str | None:
    """Send a ZooKeeper four-letter command to 127.0.0.1:port; None if it does not answer."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(cmd.encode("ascii"))
            chunks = []
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError:
        return None
    return b"".join(chunks).decode("utf-8", "replace")


def zk_mode(port: int, timeout: float = 2.0) -> str | None:
    """'leader', 'follower', 'standalone', 'not-serving' or None (no answer)."""
    out = four_letter_word(port, "srvr", timeout)
    if out is None:
        return None
    m = re.search(r"^Mode:\s*(\S+)", out, re.M)
    if m:
        return m.group(1)
    if "not currently serving" in out:
        return "not-serving"
    return "unknown"


def webhdfs_challenge(url: str, timeout: float = 3.0) -> bool:
    """Whether an unauthenticated GET of ``url`` is answered 401 with ``WWW-Authenticate: Negotiate``."""
    try:
        with _NO_PROXY_OPENER.open(urllib.request.Request(url), timeout=timeout):
            return False
    except urllib.error.HTTPError as e:
        e.close()
        return e.code == 401 and "negotiate" in (e.headers.get("WWW-Authenticate") or "").lower()


def _ccache_file(ccache: str) -> Path:
    return Path(ccache.removeprefix("FILE:"))


def _http_get_json(url: str, timeout: float = 3.0) -> dict:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with _NO_PROXY_OPENER.open(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


# --------------------------------------------------------------------------------------------
# Processes


def _proc_info(pid: int) -> tuple[str, str, str] | None:
    """(state, start_time, cmdline) of a live process, or None. Zombies count as gone."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            return None
        rest = stat[stat.rfind(")") + 2 :].split()
        state, start_time = rest[0], rest[19]
        if state in ("Z", "X"):
            return None
        return state, start_time, cmdline
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(
            ["ps", "-o", "stat=,lstart=,command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out or out.startswith("Z"):
        return None
    parts = out.split(None, 6)
    return parts[0], " ".join(parts[1:6]), parts[6] if len(parts) > 6 else ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_info(pid) is not None


# --------------------------------------------------------------------------------------------
# The cluster


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
        self._requested_offset = port_offset
        self._requested_ha = ha
        self._requested_secure = secure
        self._requested_lifetime = ticket_lifetime
        self._java: str | None = None

    # ---- paths -----------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def conf_dir(self) -> Path:
        return self.dir / "conf"

    def _log(self, role: str) -> Path:
        return self.log_dir / f"{role}.log"

    def _pidfile(self, role: str) -> Path:
        return self.run_dir / f"{role}.pid.json"

    def _marker(self, role: str) -> str:
        return f"{MARKER_PROP}{role}@{self.dir}"

    @property
    def _ready_file(self) -> Path:
        return self.run_dir / "hdfs" / "ready.json"

    # ---- configuration ---------------------------------------------------------------------

    @property
    def ports(self) -> Ports:
        """Ports of the running cluster (from run/cluster.json), else the configured ones."""
        meta = _read_json(self.run_dir / "cluster.json")
        if meta and isinstance(meta.get("port_offset"), int):
            return Ports(meta["port_offset"])
        return Ports(self._configured_offset())

    @property
    def ha(self) -> bool:
        """Whether HDFS has two NameNodes (HA): from run/cluster.json, else as requested (``up --ha``)."""
        meta = _read_json(self.run_dir / "cluster.json")
        if meta and isinstance(meta.get("port_offset"), int):
            return bool(meta.get("ha", False))
        return bool(self._requested_ha)

    @property
    def secure(self) -> bool:
        """Kerberos mode (``up --secure``): from run/cluster.json, else as requested."""
        meta = _read_json(self.run_dir / "cluster.json")
        if meta and isinstance(meta.get("port_offset"), int):
            return bool(meta.get("secure", False))
        return bool(self._requested_secure)

    @property
    def ticket_lifetime(self) -> int:
        """Secure mode: the KDC's maximum ticket lifetime in seconds (``--ticket-lifetime``)."""
        meta = _read_json(self.run_dir / "cluster.json")
        if meta and isinstance(meta.get("ticket_lifetime"), int):
            return int(meta["ticket_lifetime"])
        return self._requested_lifetime or DEFAULT_TICKET_LIFETIME

    @property
    def zk_ids(self) -> tuple[int, ...]:
        """The ZooKeeper server ids this cluster runs: none in secure mode."""
        return () if self.secure else ZK_IDS

    @property
    def kdc_dir(self) -> Path:
        """Secure mode: keytabs, krb5 configs and the client's ticket cache (removed by ``down``)."""
        return self.run_dir / "kdc"

    def kerberos(self) -> dict[str, Any]:
        """Secure mode: what a Kerberos client needs (paths are valid while the cluster is up)."""
        keytab = self.kdc_dir / "client.keytab"
        return {
            "realm": REALM,
            "kdc": f"{KRB_HOST}:{self.ports.kdc}",
            "krb5_config": str(self.kdc_dir / "krb5-client.conf"),
            "ccache": f"FILE:{self.kdc_dir / 'krb5cc_client'}",
            "client_principal": CLIENT_PRINCIPAL,
            "client_keytab": str(keytab),
            "kinit": shlex.join(["kinit", "-kt", str(keytab), CLIENT_PRINCIPAL]),
            "hdfs_principal": f"hdfs/{KRB_HOST}@{REALM}",
            "hdfs_keytab": str(self.kdc_dir / "hdfs.keytab"),
            "ticket_lifetime": self.ticket_lifetime,
        }

    def kinit(self, ccache: str | None = None, *, principal: str = CLIENT_PRINCIPAL, timeout: float = 30.0) -> None:
        """Secure mode: ``kinit -kt <keytab> <principal>`` (MIT kinit) into ``ccache`` (default: the
        state dir's). ``principal``: the client's, or the superuser's (``hdfs/localhost@MDL.TEST``).
        Raises DevClusterError if kinit is missing or fails."""
        krb = self.kerberos()
        keytab = {CLIENT_PRINCIPAL: krb["client_keytab"], krb["hdfs_principal"]: krb["hdfs_keytab"]}.get(principal)
        if keytab is None:
            raise DevClusterUsageError(f"no keytab for {principal} (have {CLIENT_PRINCIPAL}, {krb['hdfs_principal']})")
        kinit = shutil.which("kinit")
        if not kinit:
            raise DevClusterError("kinit not found: install MIT Kerberos client tools (krb5-user / krb5)")
        env = dict(os.environ, KRB5_CONFIG=krb["krb5_config"], KRB5CCNAME=ccache or krb["ccache"])
        cmd = [kinit, "-kt", keytab, principal]
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.SubprocessError) as e:
            raise DevClusterError(f"kinit failed: {e}") from None
        if r.returncode != 0:
            raise DevClusterError(f"kinit failed (exit {r.returncode}): {r.stderr.strip()[:240]}")

    def _configured_offset(self) -> int:
        if self._requested_offset is not None:
            return self._requested_offset
        return _env_port_offset()

    def superuser(self) -> str:
        """The HDFS superuser: the OS user running the NameNode JVM."""
        ready = _read_json(self._ready_file)
        if ready and ready.get("superuser"):
            return str(ready["superuser"])
        try:
            return pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            return os.environ.get("USER", "root")

    def info(self) -> dict[str, Any]:
        """What a client needs: URLs, the HDFS user and the matching MDL_* environment."""
        if self.secure:
            return self._secure_info()
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
                states = [n["state"] for n in self._control("nnstatus", timeout=5)]
                out["active_namenode"] = states.index("active") if "active" in states else None
            except DevClusterError:
                out["active_namenode"] = None
        return out

    def _secure_info(self) -> dict[str, Any]:
        p = self.ports
        krb = self.kerberos()
        url = f"webhdfs://{KRB_HOST}:{p.nn_http}"
        env = {
            "MDL_STORAGE_URL": url,
            "MDL_STORAGE_AUTH": "kerberos",
            "MDL_STORAGE_ROOT": f"{CLIENT_HOME}/models",
            "KRB5_CONFIG": krb["krb5_config"],
            "KRB5CCNAME": krb["ccache"],
        }
        ports = {**p.as_dict(), "kdc": p.kdc}
        for k in ("zk_client", "zk_quorum", "zk_election"):
            del ports[k]
        return {
            "secure": True,
            "storage_url": url,
            "storage_auth": "kerberos",
            "webhdfs_url": f"http://{KRB_HOST}:{p.nn_http}/webhdfs/v1",
            "namenode_http": f"http://{KRB_HOST}:{p.nn_http}",
            "hdfs_url": f"hdfs://{KRB_HOST}:{p.nn_rpc}",
            "superuser": SECURE_SUPERUSER,
            "client_home": CLIENT_HOME,
            "kerberos": krb,
            "ports": ports,
            "state_dir": str(self.dir),
            "env": env,
        }

    def env_snippet(self) -> str:
        """Shell lines (``export K=V``) a client can eval."""
        info = self.info()
        out = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in info["env"].items())
        if info.get("secure"):  # up kinits into KRB5CCNAME; this renews an expired ticket
            out += f"# {info['kerberos']['kinit']}\n"
        return out

    # ---- locking ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, timeout: float = 600.0) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise DevClusterTimeout(f"another mdl.devcluster operation holds {self.dir / 'lock'}") from None
                    time.sleep(0.2)
            yield
        finally:
            os.close(fd)  # releases the lock

    # ---- java and maven --------------------------------------------------------------------

    def java(self) -> str:
        """The java binary to use; checks it exists and is a Java 11..22."""
        if self._java:
            return self._java
        candidates = []
        if os.environ.get("MDL_DEV_CLUSTER_JAVA"):
            candidates.append(os.environ["MDL_DEV_CLUSTER_JAVA"])
        elif os.environ.get("JAVA_HOME"):
            candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
        else:
            found = shutil.which("java")
            if found:
                candidates.append(found)
        if not candidates or not (shutil.which(candidates[0]) or os.access(candidates[0], os.X_OK)):
            raise DevClusterError("java not found: install a JDK 17 (or set MDL_DEV_CLUSTER_JAVA / JAVA_HOME)")
        java = candidates[0]
        try:
            out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            raise DevClusterError(f"cannot run {java} -version: {e}") from None
        m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
        if not m:
            raise DevClusterError(f"cannot parse the Java version of {java}: {out.stderr.strip()[:200]}")
        major = int(m.group(1))
        if major == 1 and m.group(2):
            major = int(m.group(2))
        if major < 11 or major >= 23:
            raise DevClusterError(
                f"{java} is Java {major}; Hadoop {HADOOP_VERSION} servers need Java 11..21 (17 recommended): "
                "set MDL_DEV_CLUSTER_JAVA or JAVA_HOME"
            )
        self._java = java
        return java

    def _poms(self) -> dict[str, str]:
        def pom(
            artifact: str, deps: list[tuple[str, str, str]], packaging: str = "jar", modules: Sequence[str] = ()
        ) -> str:
            dep_xml = "".join(
                f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
                f"<version>{v}</version></dependency>\n"
                for g, a, v in deps
            )
            mod_xml = "".join(f"    <module>{m}</module>\n" for m in modules)
            return (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                "<!-- generated by mdl.devcluster: only used to resolve classpaths -->\n"
                '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
                "  <modelVersion>4.0.0</modelVersion>\n"
                f"  <groupId>mdl.devcluster</groupId><artifactId>{artifact}</artifactId>"
                f"<version>0</version><packaging>{packaging}</packaging>\n"
                + (f"  <modules>\n{mod_xml}  </modules>\n" if modules else "")
                + (f"  <dependencies>\n{dep_xml}  </dependencies>\n" if deps else "")
                + "</project>\n"
            )

        kdc = {"kdc/pom.xml": pom("kdc", [("org.apache.hadoop", "hadoop-minikdc", MINIKDC_VERSION)], "pom")}
        return {
            "pom.xml": pom("devcluster", [], "pom", self._modules()),
            **(kdc if self.secure else {}),
            "hdfs/pom.xml": pom(
                "hdfs",
                [
                    ("org.apache.hadoop", "hadoop-client-minicluster", HADOOP_VERSION),
                    ("org.junit.jupiter", "junit-jupiter-api", JUNIT_JUPITER_VERSION),
                    ("ch.qos.reload4j", "reload4j", RELOAD4J_VERSION),
                    ("org.slf4j", "slf4j-reload4j", SLF4J_RELOAD4J_VERSION),
                ],
                "pom",
            ),
            "zk/pom.xml": pom(
                "zk",
                [
                    ("org.apache.zookeeper", "zookeeper", ZOOKEEPER_VERSION),
                    ("org.slf4j", "slf4j-simple", SLF4J_SIMPLE_VERSION),
                    ("io.dropwizard.metrics", "metrics-core", DROPWIZARD_METRICS_VERSION),
                    ("org.xerial.snappy", "snappy-java", SNAPPY_VERSION),
                ],
                "pom",
            ),
        }

    def _modules(self) -> list[str]:
        return ["hdfs", "zk", *(["kdc"] if self.secure else [])]

    def classpaths(self, *, allow_resolve: bool = True) -> tuple[dict[str, str], bool, float]:
        """(``{"hdfs": cp, "zk": cp}`` (secure: and ``"kdc"``), whether Maven ran, seconds Maven took)."""
        poms = self._poms()
        repo = os.environ.get("MDL_DEV_CLUSTER_MAVEN_REPO", "")
        key = hashlib.sha256(json.dumps([poms, repo, DEPENDENCY_PLUGIN]).encode()).hexdigest()
        cache_path = self.dir / "classpath.json"
        cached = _read_json(cache_path)
        if cached and cached.get("key") == key:
            cps = cached.get("classpaths", {})
            if set(cps) == set(self._modules()) and all(
                all(Path(e).exists() for e in cp.split(os.pathsep) if e) for cp in cps.values()
            ):
                return cps, False, 0.0
        if not allow_resolve:
            raise DevClusterError("the classpath is not resolved yet: run `python -m mdl.devcluster up` first")

        mvn = os.environ.get("MDL_DEV_CLUSTER_MVN") or shutil.which("mvn")
        if not mvn:
            raise DevClusterError("mvn (Maven) not found: install Maven 3.6+ or set MDL_DEV_CLUSTER_MVN")
        maven_dir = self.dir / "maven"
        for rel, text in poms.items():
            _write_atomic(maven_dir / rel, text)
        for mod in self._modules():
            (maven_dir / mod / "classpath.txt").unlink(missing_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / "maven.log"
        cmd = [
            mvn,
            "-B",
            "-ntp",
            "-f",
            str(maven_dir / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:build-classpath",
            "-Dmdep.outputFile=classpath.txt",
            "-Dmdep.includeScope=runtime",
        ]
        if repo:
            cmd.append(f"-Dmaven.repo.local={repo}")
        t0 = time.monotonic()
        with open(log_path, "wb") as log:
            log.write(("$ " + shlex.join(cmd) + "\n").encode())
            log.flush()
            try:
                rc = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=maven_dir, timeout=1800
                ).returncode
            except subprocess.TimeoutExpired:
                raise DevClusterTimeout(f"Maven took over 30 min; see {log_path}", log_path=log_path) from None
            except OSError as e:
                raise DevClusterError(f"cannot run {mvn}: {e}") from None
        seconds = time.monotonic() - t0
        if rc != 0:
            tail = _tail(log_path, 40)
            errors = [ln for ln in tail if ln.startswith("[ERROR]")]
            line = (errors[0] if errors else _summary_line(tail)).strip()
            raise DevClusterError(
                f"Maven failed to resolve the cluster jars (exit {rc}): {line[:240]} (log: {log_path})",
                log_path=log_path,
                log_tail=tail,
            )
        cps = {}
        for mod in self._modules():
            try:
                cps[mod] = (maven_dir / mod / "classpath.txt").read_text().strip()
            except OSError:
                raise DevClusterError(
                    f"Maven wrote no classpath for {mod} (log: {log_path})", log_path=log_path
                ) from None
        _write_atomic(
            cache_path,
            json.dumps(
                {"key": key, "resolved_at": _now_iso(), "maven_seconds": round(seconds, 1), "classpaths": cps}, indent=1
            ),
        )
        return cps, True, seconds

    # ---- pid files and process control -----------------------------------------------------

    def _record(self, role: str) -> dict | None:
        return _read_json(self._pidfile(role))

    def _pid(self, role: str) -> int | None:
        """The pid of a live process of ours for ``role`` (verified by its command line)."""
        rec = self._record(role)
        candidates: list[tuple[int, str | None]] = []
        if rec and isinstance(rec.get("pid"), int):
            candidates.append((rec["pid"], rec.get("start_time")))
        for pid, start_time in candidates:
            info = _proc_info(pid)
            if info is None:
                continue
            _state, st, cmdline = info
            if self._marker(role) + " " not in cmdline + " ":
                continue
            if start_time and st and start_time != st:
                continue
            return pid
        return None

    def _scan_marked(self) -> dict[str, list[int]]:
        """All processes whose command line carries this state dir's marker (Linux only)."""
        found: dict[str, list[int]] = {}
        proc = Path("/proc")
        if not proc.is_dir():
            return found
        suffix = f"@{self.dir}"
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for a in args:
                s = a.decode("utf-8", "replace")
                if s.startswith(MARKER_PROP) and s.endswith(suffix):
                    role = s[len(MARKER_PROP) : -len(suffix)]
                    if _proc_info(int(entry.name)) is not None:
                        found.setdefault(role, []).append(int(entry.name))
                    break
        return found

    def _spawn(self, role: str, argv: list[str], env: dict[str, str], cwd: Path, **extra: Any) -> int:
        """Start ``argv`` detached (own session, reparented to init), logging to logs/<role>.log."""
        log = self._log(role)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as f:
            f.write(f"\n===== {_now_iso()} mdl.devcluster starting {role}\n$ {shlex.join(argv)}\n".encode())
        # sh backgrounds the JVM and exits at once: the JVM is not our child (no zombies,
        # nothing to reap) and lives in the new session created for sh.
        script = '"$@" </dev/null >>"$MDL_DEVCLUSTER_LOG" 2>&1 & echo $!'
        env = dict(env, MDL_DEVCLUSTER_LOG=str(log))
        out = subprocess.run(
            ["/bin/sh", "-c", script, "sh", *argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            start_new_session=True,
            timeout=30,
        )
        try:
            pid = int(out.stdout.decode().strip())
        except ValueError:
            raise DevClusterError(f"failed to start {role}: {out.stderr.decode().strip()[:200]}") from None
        info = _proc_info(pid)
        rec = {
            "pid": pid,
            "start_time": info[1] if info else None,
            "marker": self._marker(role),
            "started_at": _now_iso(),
            **extra,
        }
        _write_atomic(self._pidfile(role), json.dumps(rec), mode=0o600)
        return pid

    def _terminate(self, role: str, pid: int, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; only if the pid is still ours."""

        def ours() -> bool:
            info = _proc_info(pid)
            return info is not None and (self._marker(role) + " ") in info[2] + " "

        if not ours():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not ours():
                return
            time.sleep(0.1)
        if ours():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and ours():
                time.sleep(0.1)
            if ours():
                raise DevClusterError(f"{role} (pid {pid}) survived SIGKILL")

    def _java_env(self) -> dict[str, str]:
        env = dict(os.environ)
        for k in (
            "HADOOP_USER_NAME",
            "HADOOP_CONF_DIR",
            "HADOOP_HOME",
            "HADOOP_OPTS",
            "CLASSPATH",
            "JAVA_TOOL_OPTIONS",
            "_JAVA_OPTIONS",
            "JDK_JAVA_OPTIONS",
            "ZOOCFGDIR",
            "SERVER_JVMFLAGS",
        ):
            env.pop(k, None)
        return env

    def _write_confs(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        launcher = resources.files("mdl.devcluster").joinpath("MiniHdfs.java").read_text(encoding="utf-8")
        target = self.conf_dir / "MiniHdfs.java"
        if not target.exists() or target.read_text(encoding="utf-8") != launcher:
            _write_atomic(target, launcher)
        common = (
            "log4j.appender.console=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.console.target=System.err\n"
            "log4j.appender.console.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{2}: %m%n\n"
        )
        _write_atomic(
            self.conf_dir / "log4j-hdfs.properties",
            "log4j.rootLogger=INFO,console\n"
            + common
            + "log4j.logger.BlockStateChange=WARN\n"
            + "log4j.logger.org.apache.hadoop.hdfs.server.datanode.fsdataset.impl.FsDatasetImpl=WARN\n"
            + "log4j.logger.org.apache.hadoop.hdfs.server.datanode.DataNode.clienttrace=WARN\n"
            + "log4j.logger.org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit=WARN\n"
            + "log4j.logger.org.apache.hadoop.metrics2=WARN\n"
            + "log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR\n"
            + "log4j.logger.org.apache.hadoop.hdfs.StateChange=WARN\n",
        )
        _write_atomic(self.conf_dir / "log4j-client.properties", "log4j.rootLogger=ERROR,console\n" + common)
        # FsShell runs with Configuration quiet mode off: a missing core-site.xml or
        # hdfs-site.xml on the classpath is fatal ("core-site.xml not found").
        ports = self.ports

        def site(props: dict[str, str]) -> str:
            body = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n" for k, v in props.items())
            head = '<?xml version="1.0"?>\n<!-- generated by mdl.devcluster -->\n'
            return f"{head}<configuration>\n{body}</configuration>\n"

        hdfs_site = {"dfs.client.block.write.replace-datanode-on-failure.policy": "NEVER"}
        if self.ha:  # FsShell follows the active NameNode through the nameservice
            nns = ports.namenodes(True)
            hdfs_site.update(
                {
                    "dfs.nameservices": NAMESERVICE,
                    f"dfs.ha.namenodes.{NAMESERVICE}": ",".join(f"nn{i}" for i in range(len(nns))),
                    **{
                        f"dfs.namenode.rpc-address.{NAMESERVICE}.nn{i}": f"{LOOPBACK}:{rpc}"
                        for i, (rpc, _) in enumerate(nns)
                    },
                    # what WebHDFS clients resolve webhdfs://<nameservice> with (mdl's storage.hadoop_conf_dir)
                    **{
                        f"dfs.namenode.http-address.{NAMESERVICE}.nn{i}": f"{LOOPBACK}:{http}"
                        for i, (_, http) in enumerate(nns)
                    },
                    f"dfs.client.failover.proxy.provider.{NAMESERVICE}": (
                        "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider"
                    ),
                }
            )
        core_site = {"fs.defaultFS": self._hdfs_uri(ports)}
        if self.secure:
            core_site["hadoop.security.authentication"] = "kerberos"
            hdfs_site["dfs.namenode.kerberos.principal"] = f"hdfs/{KRB_HOST}@{REALM}"
            hdfs_site["dfs.data.transfer.protection"] = "authentication"
        _write_atomic(self.conf_dir / "client" / "core-site.xml", site(core_site))
        _write_atomic(self.conf_dir / "client" / "hdfs-site.xml", site(hdfs_site))

    def _hdfs_uri(self, ports: Ports) -> str:
        if self.secure:
            return f"hdfs://{KRB_HOST}:{ports.nn_rpc}"
        return f"hdfs://{NAMESERVICE}" if self.ha else f"hdfs://{LOOPBACK}:{ports.nn_rpc}"

    # ---- HDFS ------------------------------------------------------------------------------

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
        target = self.dir / "webapps" / key
        if (target / ".complete").exists():
            return target
        shutil.rmtree(self.dir / "webapps", ignore_errors=True)
        tmp = self.dir / "webapps" / f".{key}.{os.getpid()}"
        with zipfile.ZipFile(jar) as zf:
            members = [n for n in zf.namelist() if n.startswith("webapps/") and ".." not in n]
            zf.extractall(tmp, members)
        (tmp / ".complete").write_text(jar + "\n")
        os.replace(tmp, target)
        return target

    def _hdfs_cmd(self, java: str, cp: str, ports: Ports) -> list[str]:
        blocksize = os.environ.get("MDL_DEV_CLUSTER_BLOCKSIZE", "").strip() or str(DEFAULT_BLOCKSIZE)
        if not blocksize.isdigit() or int(blocksize) < MIN_BLOCKSIZE or int(blocksize) % 512:
            raise DevClusterError(f"MDL_DEV_CLUSTER_BLOCKSIZE must be a multiple of 512 >= {MIN_BLOCKSIZE}")
        data = self.run_dir / "hdfs" / "data"
        webapps = self._webapps_dir(cp)
        if webapps is not None:
            cp = f"{webapps}{os.pathsep}{cp}"
        return [
            java,
            *HDFS_JVM_FLAGS,
            *JAVA17_FLAGS,
            self._marker("hdfs"),
            f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j-hdfs.properties'}",
            f"-Dtest.build.data={data}",
            f"-Djava.io.tmpdir={self.run_dir / 'hdfs' / 'tmp'}",
            "-cp",
            cp,
            str(self.conf_dir / "MiniHdfs.java"),
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
            str(self._ready_file),
            "--conf",
            f"dfs.blocksize={blocksize}",
            "--conf",
            f"dfs.namenode.fs-limits.min-block-size={MIN_BLOCKSIZE}",
            *(["--ha", "--nn1-port", str(ports.nn1_rpc), "--nn1-http-port", str(ports.nn1_http)] if self.ha else []),
            *(
                ["--secure", "--kdc-dir", str(self.kdc_dir), "--kdc-port", str(ports.kdc)]
                + ["--ticket-lifetime", str(self.ticket_lifetime)]
                if self.secure
                else []
            ),
        ]

    def _hdfs_classpath(self, cps: dict[str, str]) -> str:
        """The launcher's classpath: secure mode adds hadoop-minikdc and the jars it needs that
        the minicluster's classpath has no version of (by Maven repository directory)."""
        if not self.secure:
            return cps["hdfs"]
        have = {Path(e).parent.parent for e in cps["hdfs"].split(os.pathsep) if e}
        extra = [e for e in cps["kdc"].split(os.pathsep) if e and Path(e).parent.parent not in have]
        return os.pathsep.join([cps["hdfs"], *extra])

    def _start_hdfs(self, java: str, cp: str, ports: Ports) -> int:
        busy = [p for p in [*ports.hdfs_ports(self.ha), *([ports.kdc] if self.secure else [])] if not _port_free(p)]
        if busy:
            raise DevClusterError(
                f"cannot start HDFS: port(s) {', '.join(map(str, busy))} on {LOOPBACK} already in use "
                "(set MDL_DEV_CLUSTER_PORT_OFFSET to move the cluster)"
            )
        hdfs_dir = self.run_dir / "hdfs"
        shutil.rmtree(hdfs_dir, ignore_errors=True)
        shutil.rmtree(self.kdc_dir, ignore_errors=True)  # a new KDC: new keys, old tickets are void
        (hdfs_dir / "tmp").mkdir(parents=True)
        token = secrets.token_hex(16)
        env = dict(self._java_env(), MDL_DEVCLUSTER_TOKEN=token)
        return self._spawn("hdfs", self._hdfs_cmd(java, cp, ports), env, hdfs_dir, token=token)

    def _control(self, command: str, timeout: float = 120.0) -> Any:
        """Send one command to the MiniHdfs launcher; returns its ``result``."""
        ready = _read_json(self._ready_file)
        rec = self._record("hdfs")
        if not ready or not rec or self._pid("hdfs") is None:
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
            raise DevClusterError(f"HDFS launcher: {command}: {reply.get('error')}", log_path=self._log("hdfs"))
        return reply.get("result")

    def _namenode_state(self, ports: Ports, timeout: float = 3.0) -> dict:
        """WebHDFS root status + NameNode JMX FSNamesystemState (raises OSError/ValueError).

        HA: of the active NameNode, plus ``active_namenode``. Both NameNodes share one JVM and so
        one set of JMX beans: the launcher's view of the active namesystem is used instead of JMX.
        """
        user = self.superuser()
        if self.secure:  # WebHDFS and JMX want SPNEGO: the launcher's view, plus WebHDFS's 401 challenge
            try:
                ctl = self._control("status", timeout=timeout + 5)
            except DevClusterError as e:
                raise OSError(str(e)) from None
            return {
                "webhdfs": webhdfs_challenge(f"http://{KRB_HOST}:{ports.nn_http}/webhdfs/v1/?op=LISTSTATUS", timeout),
                "fs_state": "safeMode" if ctl["safemode"] else "Operational",
                "live_datanodes": ctl["live_datanodes"],
                "dead_datanodes": ctl["dead_datanodes"],
            }
        if self.ha:
            try:
                ctl = self._control("status", timeout=timeout + 5)
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
                root = _http_get_json(f"{base}/webhdfs/v1/?op=GETFILESTATUS&user.name={user}", timeout)
                st["webhdfs"] = "FileStatus" in root
            return st
        base = f"http://{LOOPBACK}:{ports.nn_http}"
        root = _http_get_json(f"{base}/webhdfs/v1/?op=GETFILESTATUS&user.name={user}", timeout)
        jmx = _http_get_json(f"{base}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState", timeout)
        bean = (jmx.get("beans") or [{}])[0]
        return {
            "webhdfs": "FileStatus" in root,
            "fs_state": bean.get("FSState"),
            "live_datanodes": bean.get("NumLiveDataNodes"),
            "dead_datanodes": bean.get("NumDeadDataNodes"),
        }

    def _wait_hdfs(self, pid: int, ports: Ports, deadline: float, live: int = NUM_DATANODES) -> dict:
        log = self._log("hdfs")
        last: Any = "the launcher has not reported ready"
        while True:
            if self._pid("hdfs") != pid:
                tail = _tail(log, 40)
                raise DevClusterError(
                    f"HDFS launcher exited during startup: {_summary_line(tail)} (log: {log})",
                    log_path=log,
                    log_tail=tail,
                )
            ready = _read_json(self._ready_file)
            if ready and ready.get("pid") == pid:
                try:
                    st = self._namenode_state(ports)
                    if st["webhdfs"] and st["fs_state"] == "Operational" and st["live_datanodes"] == live:
                        return st
                    last = f"WebHDFS up, {st['live_datanodes']}/{live} live DataNodes, state {st['fs_state']}"
                except (OSError, ValueError) as e:
                    last = f"WebHDFS not answering: {e}"
            if time.monotonic() > deadline:
                tail = _tail(log, 40)
                raise DevClusterTimeout(f"HDFS not ready in time ({last}); see {log}", log_path=log, log_tail=tail)
            time.sleep(0.3)

    def _wait_live(self, ports: Ports, want: int, deadline: float, what: str) -> dict:
        last: Any = None
        while True:
            try:
                st = self._namenode_state(ports)
                if st["live_datanodes"] == want:
                    return st
                last = f"{st['live_datanodes']} live DataNodes"
            except (OSError, ValueError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise DevClusterTimeout(
                    f"{what}: NameNode still reports {last}, want {want}",
                    log_path=self._log("hdfs"),
                    log_tail=_tail(self._log("hdfs")),
                )
            time.sleep(0.2)

    # ---- ZooKeeper -------------------------------------------------------------------------

    def _zk_cfg(self, sid: int, ports: Ports) -> str:
        servers = "".join(f"server.{s}={LOOPBACK}:{ports.zk_quorum(s)}:{ports.zk_election(s)}\n" for s in ZK_IDS)
        return (
            "# generated by mdl.devcluster\n"
            "tickTime=500\n"
            "initLimit=20\n"
            "syncLimit=5\n"
            f"dataDir={self.run_dir / f'zk{sid}' / 'data'}\n"
            f"clientPort={ports.zk_client(sid)}\n"
            f"clientPortAddress={LOOPBACK}\n"
            "maxClientCnxns=0\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=ruok,srvr,stat,mntr,conf,isro\n"
            "standaloneEnabled=false\n"
            "preAllocSize=4096\n" + servers
        )

    def _zk_cmd(self, java: str, cp: str, sid: int) -> list[str]:
        return [
            java,
            *ZK_JVM_FLAGS,
            "-Djava.net.preferIPv4Stack=true",
            self._marker(f"zk{sid}"),
            "-Dzookeeper.admin.enableServer=false",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
            "-cp",
            cp,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(self.run_dir / f"zk{sid}" / "zoo.cfg"),
        ]

    def _start_zk(self, java: str, cp: str, ports: Ports, sid: int) -> int:
        busy = [p for p in ports.zk_ports(sid) if not _port_free(p)]
        if busy:
            raise DevClusterError(
                f"cannot start ZooKeeper {sid}: port(s) {', '.join(map(str, busy))} on {LOOPBACK} already "
                "in use (set MDL_DEV_CLUSTER_PORT_OFFSET to move the cluster)"
            )
        zdir = self.run_dir / f"zk{sid}"
        (zdir / "data").mkdir(parents=True, exist_ok=True)
        (zdir / "data" / "myid").write_text(f"{sid}\n")
        _write_atomic(zdir / "zoo.cfg", self._zk_cfg(sid, ports))
        return self._spawn(f"zk{sid}", self._zk_cmd(java, cp, sid), self._java_env(), zdir)

    def _wait_zk(self, sid: int, pid: int | None, ports: Ports, deadline: float, quorum: bool) -> str:
        log = self._log(f"zk{sid}")
        mode = None
        while True:
            if self._pid(f"zk{sid}") != pid:
                tail = _tail(log, 40)
                raise DevClusterError(
                    f"ZooKeeper {sid} exited during startup: {_summary_line(tail)} (log: {log})",
                    log_path=log,
                    log_tail=tail,
                )
            mode = zk_mode(ports.zk_client(sid), timeout=1.0)
            if mode in ("leader", "follower") or (not quorum and mode is not None):
                return mode
            if time.monotonic() > deadline:
                raise DevClusterTimeout(
                    f"ZooKeeper {sid} not serving in time (srvr: {mode or 'no answer'}); see {log}",
                    log_path=log,
                    log_tail=_tail(log, 40),
                )
            time.sleep(0.2)

    def _check_sid(self, sid: int) -> int:
        self._check_zk()
        if sid not in ZK_IDS:
            raise DevClusterUsageError(f"ZooKeeper server ids are {ZK_IDS[0]}..{ZK_IDS[-1]} (myid), got {sid}")
        return sid

    def _check_zk(self) -> None:
        if self.secure:
            raise DevClusterUsageError("this dev cluster (up --secure) runs no ZooKeeper: use the default cluster's")

    def _check_dn(self, i: int) -> int:
        if not 0 <= i < NUM_DATANODES:
            raise DevClusterUsageError(f"DataNode indices are 0..{NUM_DATANODES - 1}, got {i}")
        return i

    # ---- public operations -----------------------------------------------------------------

    def up(self, timeout: float = 180.0) -> dict[str, Any]:
        """Start (or repair) the cluster and wait until it is ready. Idempotent.

        ``timeout`` bounds the readiness wait; a cold Maven download comes on top of it.
        The result is :meth:`status` plus ``seconds``, ``maven_resolved`` (cold start),
        ``maven_seconds``, ``changed`` and ``started`` (the components started by this call).
        Secure mode (``secure=True``: Kerberos, no ZooKeeper) also kinits the client into the
        state dir's ticket cache (``kinit_ok`` in the result, else ``kinit_error``).
        """
        t0 = time.monotonic()
        if self._requested_secure and self._requested_ha:
            raise DevClusterUsageError("--secure and --ha cannot be combined")
        if self._requested_lifetime is not None and self._requested_lifetime < 1:
            raise DevClusterUsageError(f"--ticket-lifetime must be >= 1 second, got {self._requested_lifetime}")
        with self._locked():
            java = self.java()
            hdfs_pid = self._pid("hdfs")
            zk_pids = {sid: self._pid(f"zk{sid}") for sid in ZK_IDS}
            fresh = hdfs_pid is None and not any(zk_pids.values())
            started: list[str] = []
            if fresh:
                requested = self._configured_offset()
                stray = self._scan_marked()
                if stray:
                    raise DevClusterError(
                        f"processes of an earlier dev cluster are still running ({stray}); "
                        "run `python -m mdl.devcluster down`"
                    )
                shutil.rmtree(self.run_dir, ignore_errors=True)
                self.run_dir.mkdir(parents=True)
                ports = Ports(requested)
                _write_atomic(
                    self.run_dir / "cluster.json",
                    json.dumps(
                        {
                            "port_offset": ports.offset,
                            "ha": bool(self._requested_ha),
                            "secure": bool(self._requested_secure),
                            **({"ticket_lifetime": self.ticket_lifetime} if self._requested_secure else {}),
                            "ports": ports.as_dict(),
                            "state_dir": str(self.dir),
                            "started_at": _now_iso(),
                        },
                        indent=1,
                    ),
                )
                for role in ("hdfs", *(f"zk{s}" for s in ZK_IDS)):
                    self._log(role).unlink(missing_ok=True)
            else:
                ports = self.ports
                if self._requested_offset is not None and self._requested_offset != ports.offset:
                    raise DevClusterError(
                        f"the dev cluster already runs with port offset {ports.offset}; run down first"
                    )
                if self._requested_ha is not None and self._requested_ha != self.ha:
                    mode = "HA (two NameNodes)" if self.ha else "without HA (one NameNode)"
                    raise DevClusterError(f"the dev cluster already runs {mode}; run down first")
                if self._requested_secure is not None and self._requested_secure != self.secure:
                    mode = "secure (Kerberos)" if self.secure else "without Kerberos"
                    raise DevClusterError(f"the dev cluster already runs {mode}; run down first")
                if self._requested_lifetime is not None and self._requested_lifetime != self.ticket_lifetime:
                    raise DevClusterError(
                        f"the dev cluster already runs with ticket lifetime {self.ticket_lifetime} s; run down first"
                    )
            # after cluster.json: the mode decides the classpaths (secure: + hadoop-minikdc)
            cps, resolved, maven_seconds = self.classpaths()
            deadline = time.monotonic() + timeout
            self._write_confs()
            for sid in self.zk_ids:
                if zk_pids[sid] is None:
                    zk_pids[sid] = self._start_zk(java, cps["zk"], ports, sid)
                    started.append(f"zk{sid}")
            if hdfs_pid is None:
                hdfs_pid = self._start_hdfs(java, self._hdfs_classpath(cps), ports)
                started.append("hdfs")
            for sid in self.zk_ids:
                self._wait_zk(sid, zk_pids[sid], ports, deadline, quorum=True)
            if "hdfs" not in started:
                # Launcher already running: restart DataNodes a fault test left stopped.
                self._wait_hdfs_ready_file(hdfs_pid, deadline)
                ctl = self._control("status")
                for nn in ctl.get("namenodes", []) if self.ha else []:
                    if not nn["running"]:
                        self._control(f"nnstart {nn['index']}")
                        started.append(f"namenode{nn['index']}")
                for dn in ctl["datanodes"]:
                    if not dn["running"]:
                        self._control(f"start {dn['index']}")
                        started.append(f"datanode{dn['index']}")
            self._wait_hdfs(hdfs_pid, ports, deadline)
            kinit: dict[str, Any] = {"kinit_ok": True}
            if self.secure and ("hdfs" in started or not _ccache_file(self.kerberos()["ccache"]).exists()):
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

    def _wait_hdfs_ready_file(self, pid: int, deadline: float) -> None:
        while True:
            ready = _read_json(self._ready_file)
            if ready and ready.get("pid") == pid:
                return
            if self._pid("hdfs") != pid:
                raise DevClusterError(
                    f"HDFS launcher exited (log: {self._log('hdfs')})",
                    log_path=self._log("hdfs"),
                    log_tail=_tail(self._log("hdfs")),
                )
            if time.monotonic() > deadline:
                raise DevClusterTimeout(
                    f"HDFS launcher not ready in time; see {self._log('hdfs')}",
                    log_path=self._log("hdfs"),
                    log_tail=_tail(self._log("hdfs")),
                )
            time.sleep(0.3)

    def down(self) -> dict[str, Any]:
        """Stop this cluster's processes (only ours, by pid file and command-line marker) and
        delete its data (``run/``). Logs and the classpath cache stay. Idempotent."""
        t0 = time.monotonic()
        with self._locked():
            targets: dict[str, set[int]] = {}
            for role in ("hdfs", *(f"zk{s}" for s in ZK_IDS)):
                pid = self._pid(role)
                if pid is not None:
                    targets.setdefault(role, set()).add(pid)
            for role, pids in self._scan_marked().items():
                targets.setdefault(role, set()).update(pids)
            stopped = []
            for role in sorted(targets):  # send SIGTERM to all first, then wait for each
                for pid in targets[role]:
                    with contextlib.suppress(ProcessLookupError):
                        info = _proc_info(pid)
                        if info and (self._marker(role) + " ") in info[2] + " ":
                            os.kill(pid, signal.SIGTERM)
            for role in sorted(targets):
                for pid in targets[role]:
                    self._terminate(role, pid)
                    stopped.append({"role": role, "pid": pid})
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
        hdfs_pid = self._pid("hdfs")
        hdfs: dict[str, Any] = {
            "running": hdfs_pid is not None,
            "healthy": False,
            "pid": hdfs_pid,
            "namenode": {"rpc_port": ports.nn_rpc, "http_port": ports.nn_http},
            "log": str(self._log("hdfs")),
        }
        if self.ha:
            hdfs["ha"] = True
            hdfs["namenodes"] = [
                {"index": i, "rpc_port": rpc, "http_port": http} for i, (rpc, http) in enumerate(ports.namenodes(True))
            ]
        if hdfs_pid is not None:
            ready = _read_json(self._ready_file)
            if ready and ready.get("pid") == hdfs_pid:
                try:
                    ctl = self._control("status", timeout=10)
                    hdfs["datanodes"] = ctl["datanodes"]
                    hdfs["safemode"] = ctl["safemode"]
                    if self.ha:
                        hdfs["namenodes"] = ctl["namenodes"]
                except DevClusterError as e:
                    hdfs["control_error"] = str(e)
                    hdfs["datanodes"] = ready.get("datanodes")
                try:
                    nn = self._namenode_state(ports)
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
            else:
                hdfs["starting"] = True
        servers = []
        for sid in self.zk_ids:
            pid = self._pid(f"zk{sid}")
            mode = zk_mode(ports.zk_client(sid), timeout=1.0) if pid is not None else None
            servers.append(
                {
                    "id": sid,
                    "running": pid is not None,
                    "pid": pid,
                    "mode": mode,
                    "client_port": ports.zk_client(sid),
                    "quorum_port": ports.zk_quorum(sid),
                    "election_port": ports.zk_election(sid),
                    "log": str(self._log(f"zk{sid}")),
                }
            )
        zk: dict[str, Any] = {
            "running": all(s["running"] for s in servers),
            "healthy": all(s["mode"] in ("leader", "follower") for s in servers),
            "servers": servers,
        }
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

    # ---- fault controls --------------------------------------------------------------------

    def stop_datanode(
        self, i: int, *, mark_dead: bool = False, wait_dead: bool = False, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Stop DataNode ``i`` (0-based); returns once it is shut down inside the launcher.

        ``mark_dead``: tell the NameNode at once (setDataNodeDead) instead of after ~12 s.
        ``wait_dead``: wait until the NameNode counts it dead (implied by ``mark_dead``).
        """
        self._check_dn(i)
        with self._locked():
            dn = self._control(f"stop {i}")
            if mark_dead:
                self._control(f"dead {i}")
            if mark_dead or wait_dead:
                running = sum(1 for d in self._control("status")["datanodes"] if d["running"])
                self._wait_live(self.ports, running, time.monotonic() + timeout, f"DataNode {i} stop")
        return dn

    def start_datanode(self, i: int, *, timeout: float = 60.0) -> dict[str, Any]:
        """(Re)start DataNode ``i`` on its previous ports; waits until the NameNode counts it live."""
        self._check_dn(i)
        with self._locked():
            dn = self._control(f"start {i}", timeout=timeout + 10)
            running = sum(1 for d in self._control("status")["datanodes"] if d["running"])
            self._wait_live(self.ports, running, time.monotonic() + timeout, f"DataNode {i} start")
        return dn

    # HA NameNodes (``up --ha``)

    def namenodes(self) -> list[dict[str, Any]]:
        """HA: each NameNode's index, running, state (active/standby) and ports."""
        self._check_ha()
        return self._control("nnstatus")

    def failover_namenode(self, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """HA: make the active NameNode standby and the (running) standby active."""
        self._check_ha()
        with self._locked():
            nns = self._control("failover", timeout=timeout + 10)
            self._wait_active(timeout, "failover")
        return nns

    def stop_namenode(self, i: int, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """HA: shut NameNode ``i`` down; the other one is made active if it is not already."""
        self._check_nn(i)
        with self._locked():
            nns = self._control(f"nnstop {i}", timeout=timeout + 10)
            if any(n["running"] for n in nns):
                self._wait_active(timeout, f"NameNode {i} stop")
        return nns

    def start_namenode(self, i: int, *, timeout: float = 120.0) -> list[dict[str, Any]]:
        """HA: restart NameNode ``i`` on its ports (as standby, or active if no other one runs)."""
        self._check_nn(i)
        with self._locked():
            nns = self._control(f"nnstart {i}", timeout=timeout + 10)
            self._wait_active(timeout, f"NameNode {i} start")
        return nns

    def _wait_active(self, timeout: float, what: str) -> dict:
        """Wait until an active NameNode serves WebHDFS with every running DataNode live."""
        running = sum(1 for d in self._control("status")["datanodes"] if d["running"])
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                st = self._namenode_state(self.ports)
                if st["webhdfs"] and st["fs_state"] == "Operational" and st["live_datanodes"] == running:
                    return st
                last = f"active NameNode {st.get('active_namenode')}, {st['live_datanodes']} live DataNodes"
            except (OSError, ValueError) as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise DevClusterTimeout(
                    f"{what}: no active NameNode ready in time ({last})",
                    log_path=self._log("hdfs"),
                    log_tail=_tail(self._log("hdfs")),
                )
            time.sleep(0.2)

    def _check_ha(self) -> None:
        if not self.ha:
            raise DevClusterUsageError("this dev cluster has one NameNode: start it with `up --ha` (after `down`)")

    def _check_nn(self, i: int) -> int:
        self._check_ha()
        if not 0 <= i < 2:
            raise DevClusterUsageError(f"NameNode indices are 0..1, got {i}")
        return i

    def stop_zk(self, sid: int) -> dict[str, Any]:
        """Stop ZooKeeper server ``sid`` (1..3) and wait until its process is gone."""
        self._check_sid(sid)
        with self._locked():
            return self._stop_zk_locked(sid)

    def _stop_zk_locked(self, sid: int) -> dict[str, Any]:
        pid = self._pid(f"zk{sid}")
        if pid is not None:
            self._terminate(f"zk{sid}", pid)
        return {"id": sid, "changed": pid is not None, "pid": pid}

    def start_zk(self, sid: int, *, timeout: float = 60.0) -> dict[str, Any]:
        """Start ZooKeeper server ``sid`` (1..3); waits until it answers ``srvr`` as leader or
        follower (or, when too few servers run for a quorum, until it answers at all)."""
        self._check_sid(sid)
        with self._locked():
            return self._start_zk_locked([sid], timeout)[0]

    def _start_zk_locked(self, sids: Sequence[int], timeout: float) -> list[dict[str, Any]]:
        if not (self.run_dir / "cluster.json").exists():
            raise DevClusterError("the dev cluster is not up: run `python -m mdl.devcluster up`")
        java = self.java()
        cps, _, _ = self.classpaths(allow_resolve=False)
        ports = self.ports
        pids, changed = {}, {}
        for sid in sids:
            pid = self._pid(f"zk{sid}")
            changed[sid] = pid is None
            pids[sid] = pid if pid is not None else self._start_zk(java, cps["zk"], ports, sid)
        quorum = sum(1 for s in ZK_IDS if self._pid(f"zk{s}") is not None) > len(ZK_IDS) // 2
        deadline = time.monotonic() + timeout
        return [
            {
                "id": sid,
                "changed": changed[sid],
                "pid": pids[sid],
                "mode": self._wait_zk(sid, pids[sid], ports, deadline, quorum),
            }
            for sid in sids
        ]

    def stop_zk_all(self) -> list[dict[str, Any]]:
        """Stop every ZooKeeper server (the ensemble becomes unavailable)."""
        self._check_zk()
        with self._locked():
            pids = {sid: self._pid(f"zk{sid}") for sid in ZK_IDS}
            for pid in pids.values():  # signal all first so they stop in parallel
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            out = []
            for sid, pid in pids.items():
                if pid is not None:
                    self._terminate(f"zk{sid}", pid)
                out.append({"id": sid, "changed": pid is not None, "pid": pid})
            return out

    def start_zk_all(self, *, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Start every stopped ZooKeeper server; waits until all serve as leader/follower."""
        self._check_zk()
        with self._locked():
            return self._start_zk_locked(list(ZK_IDS), timeout)

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
        self._write_confs()
        ports = self.ports
        env = self._java_env()
        krb_flags = []
        if self.secure:
            if user not in (None, SECURE_SUPERUSER, "client"):
                raise DevClusterUsageError(f"secure mode: FsShell runs as {SECURE_SUPERUSER} or client, not {user}")
            principal = CLIENT_PRINCIPAL if user == "client" else self.kerberos()["hdfs_principal"]
            env["KRB5CCNAME"] = f"FILE:{self.kdc_dir / ('krb5cc_fs_' + (user or SECURE_SUPERUSER))}"
            self.kinit(env["KRB5CCNAME"], principal=principal)
            krb_flags = [f"-Djava.security.krb5.conf={self.kerberos()['krb5_config']}"]
            user = None
        cmd = [
            java,
            "-Xmx512m",
            "-XX:TieredStopAtLevel=1",
            *JAVA17_FLAGS,
            *krb_flags,
            f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j-client.properties'}",
            "-cp",
            f"{self.conf_dir / 'client'}{os.pathsep}{cps['hdfs']}",
            "org.apache.hadoop.fs.FsShell",
            "-fs",
            self._hdfs_uri(ports),
            *args,
        ]
        if user:
            env["HADOOP_USER_NAME"] = user
        try:
            return subprocess.run(
                cmd, input=input, capture_output=True, env=env, timeout=timeout, check=check, cwd=self.dir
            )
        except subprocess.TimeoutExpired:
            raise DevClusterTimeout(f"FsShell {' '.join(args)} took over {timeout} s") from None


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
