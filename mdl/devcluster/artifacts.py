"""The JVM side: Java discovery and the jars, resolved by Maven into cached classpaths.

Jars come from Maven Central through ``mvn`` (cached in ``~/.m2``); the computed classpaths are
cached in the state directory (classpath.json, keyed by the generated poms) so warm starts never
run Maven. ``MDL_DEV_CLUSTER_JAVA`` picks the java binary (else ``$JAVA_HOME/bin/java``, else
``java`` on PATH), ``MDL_DEV_CLUSTER_MVN`` the mvn binary and ``MDL_DEV_CLUSTER_MAVEN_REPO`` a
``maven.repo.local`` other than ``~/.m2/repository``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import DevClusterError, DevClusterTimeout
from .files import now_iso, read_json, summary_line, tail, write_atomic
from .layout import Layout

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


def find_java() -> str:
    """The java binary to use; checks it exists and is a Java 11..22."""
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
    return java


def java_env() -> dict[str, str]:
    """The environment for the cluster's JVMs: ours minus what would reconfigure Hadoop/ZooKeeper/the JVM."""
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


def modules(secure: bool) -> list[str]:
    """The classpaths a cluster needs: ``hdfs``, ``zk`` and (secure mode) ``kdc``."""
    return ["hdfs", "zk", *(["kdc"] if secure else [])]


def _pom(artifact: str, deps: list[tuple[str, str, str]], packaging: str = "jar", mods: Sequence[str] = ()) -> str:
    dep_xml = "".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>\n"
        for g, a, v in deps
    )
    mod_xml = "".join(f"    <module>{m}</module>\n" for m in mods)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- generated by mdl.devcluster: only used to resolve classpaths -->\n"
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        f"  <groupId>mdl.devcluster</groupId><artifactId>{artifact}</artifactId>"
        f"<version>0</version><packaging>{packaging}</packaging>\n"
        + (f"  <modules>\n{mod_xml}  </modules>\n" if mods else "")
        + (f"  <dependencies>\n{dep_xml}  </dependencies>\n" if deps else "")
        + "</project>\n"
    )


def poms(secure: bool) -> dict[str, str]:
    """The generated pom.xml files (by path under maven/): a parent and one module per classpath."""
    kdc = {"kdc/pom.xml": _pom("kdc", [("org.apache.hadoop", "hadoop-minikdc", MINIKDC_VERSION)], "pom")}
    return {
        "pom.xml": _pom("devcluster", [], "pom", modules(secure)),
        **(kdc if secure else {}),
        "hdfs/pom.xml": _pom(
            "hdfs",
            [
                ("org.apache.hadoop", "hadoop-client-minicluster", HADOOP_VERSION),
                ("org.junit.jupiter", "junit-jupiter-api", JUNIT_JUPITER_VERSION),
                ("ch.qos.reload4j", "reload4j", RELOAD4J_VERSION),
                ("org.slf4j", "slf4j-reload4j", SLF4J_RELOAD4J_VERSION),
            ],
            "pom",
        ),
        "zk/pom.xml": _pom(
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


def classpaths(layout: Layout, secure: bool, *, allow_resolve: bool = True) -> tuple[dict[str, str], bool, float]:
    """(``{"hdfs": cp, "zk": cp}`` (secure: and ``"kdc"``), whether Maven ran, seconds Maven took)."""
    wanted = poms(secure)
    mods = modules(secure)
    repo = os.environ.get("MDL_DEV_CLUSTER_MAVEN_REPO", "")
    key = hashlib.sha256(json.dumps([wanted, repo, DEPENDENCY_PLUGIN]).encode()).hexdigest()
    cached = read_json(layout.classpath_file)
    if cached and cached.get("key") == key:
        cps = cached.get("classpaths", {})
        if set(cps) == set(mods) and all(
            all(Path(e).exists() for e in cp.split(os.pathsep) if e) for cp in cps.values()
        ):
            return cps, False, 0.0
    if not allow_resolve:
        raise DevClusterError("the classpath is not resolved yet: run `python -m mdl.devcluster up` first")
    cps, seconds = _resolve(layout, wanted, mods, repo)
    write_atomic(
        layout.classpath_file,
        json.dumps(
            {"key": key, "resolved_at": now_iso(), "maven_seconds": round(seconds, 1), "classpaths": cps}, indent=1
        ),
    )
    return cps, True, seconds


def _resolve(layout: Layout, wanted: dict[str, str], mods: list[str], repo: str) -> tuple[dict[str, str], float]:
    """Run Maven's build-classpath over the generated poms: (classpath by module, seconds)."""
    mvn = os.environ.get("MDL_DEV_CLUSTER_MVN") or shutil.which("mvn")
    if not mvn:
        raise DevClusterError("mvn (Maven) not found: install Maven 3.6+ or set MDL_DEV_CLUSTER_MVN")
    maven_dir = layout.maven_dir
    for rel, text in wanted.items():
        write_atomic(maven_dir / rel, text)
    for mod in mods:
        (maven_dir / mod / "classpath.txt").unlink(missing_ok=True)
    layout.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = layout.log("maven")
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
        log_tail = tail(log_path, 40)
        errors = [ln for ln in log_tail if ln.startswith("[ERROR]")]
        line = (errors[0] if errors else summary_line(log_tail)).strip()
        raise DevClusterError(
            f"Maven failed to resolve the cluster jars (exit {rc}): {line[:240]} (log: {log_path})",
            log_path=log_path,
            log_tail=log_tail,
        )
    cps = {}
    for mod in mods:
        try:
            cps[mod] = (maven_dir / mod / "classpath.txt").read_text().strip()
        except OSError:
            raise DevClusterError(f"Maven wrote no classpath for {mod} (log: {log_path})", log_path=log_path) from None
    return cps, seconds
