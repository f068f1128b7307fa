"""mdl dev-cluster in mdl's voice: its help, usage errors and the dev cluster's own errors, exactly as
printed. The real binary (and ``python -m mdl.devcluster``); no cluster is started."""

import os
import re
import subprocess
import sys

import pytest

from mdl.cli.common import report_error
from mdl.cli.dev_cluster import _as_mdl_error
from mdl.devcluster import DevClusterError, DevClusterTimeout, DevClusterUsageError

from ..helpers import MDL, REPO

HELP = """\
Usage: mdl dev-cluster [OPTIONS] COMMAND [ARGS]...

  Start, stop and inspect a local HDFS (3 DataNodes) + ZooKeeper (3 servers)
  cluster on 127.0.0.1.

  up --ha: two NameNodes (HA); up --secure: Kerberos (in-JVM KDC, realm
  MDL.TEST, SPNEGO WebHDFS), no ZooKeeper; the mode is remembered until down.
  Needs Java 17 and Maven: the first up downloads the jars from Maven Central.
  More than one cluster: each its own --state-dir and up --port-offset.

Options:
  --state-dir PATH  The cluster's state directory (default:
                    $MDL_DEV_CLUSTER_DIR or ~/.cache/mdl/dev-cluster).
  -h, --help        Show this message and exit.

Commands:
  up        Start the cluster (idempotent) and print its status as JSON.
  down      Stop the cluster and delete its data.
  status    Print the cluster's status as JSON.
  env       Print export lines that point mdl at the cluster.
  info      Print the client settings as JSON.
  fs        Run Hadoop's FsShell (hadoop fs) on the cluster.
  datanode  Stop or (re)start a DataNode (index 0..2).
  namenode  HA cluster: fail over, stop or start a NameNode.
  zk        Stop or start a ZooKeeper server (id 1..3) or all of them.

  Examples:

    mdl dev-cluster up               # HDFS + ZooKeeper on 127.0.0.1
    eval "$(mdl dev-cluster env)"    # point mdl at it
    mdl dev-cluster up --ha          # two NameNodes; mdl dev-cluster namenode failover
    mdl dev-cluster down
"""

SUBCOMMANDS = [
    "up", "down", "status", "env", "info", "fs", "datanode stop", "datanode start", "namenode failover",
    "namenode status", "namenode stop", "namenode start", "zk stop", "zk start",
]


@pytest.fixture
def dev_cluster(tmp_path):
    """Run ``mdl dev-cluster ARGS`` (or ``python -m mdl.devcluster ARGS``) with an empty state dir of its own:
    -> (exit code, stdout, stderr)."""
    env = {**os.environ, "COLUMNS": "80", "MDL_DEV_CLUSTER_DIR": str(tmp_path / "dc"),
           "MDL_DEV_CLUSTER_PORT_OFFSET": "600"}
    env.pop("MDL_DEBUG", None)

    def run(*args: str, module: bool = False) -> tuple[int, str, str]:
        argv = [sys.executable, "-m", "mdl.devcluster", *args] if module else [MDL, "dev-cluster", *args]
        r = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    return run


def test_the_clusters_shape_is_the_librarys():
    from mdl.cli import dev_cluster
    from mdl.devcluster import ports

    assert (dev_cluster.NUM_DATANODES, dev_cluster.ZK_IDS) == (ports.NUM_DATANODES, ports.ZK_IDS)


def test_help(dev_cluster):
    assert dev_cluster("-h") == (0, HELP, "")
    assert dev_cluster("--help") == (0, HELP, "")
    assert dev_cluster() == (0, HELP, "")  # bare, as bare `mdl`: the help, exit 0


def test_python_m_mdl_devcluster_is_the_same_front_end(dev_cluster):
    assert dev_cluster("-h", module=True) == (0, HELP, "")
    assert dev_cluster("datanode", "stop", "9", module=True) == dev_cluster("datanode", "stop", "9")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_has_examples_and_upper_case_metavars(dev_cluster, command):
    code, out, err = dev_cluster(*command.split(), "-h")
    assert (code, err) == (0, "")
    assert out.startswith(f"Usage: mdl dev-cluster {command} [OPTIONS]"), out
    examples = out.split("\n  Examples:\n\n")[1]
    assert all(line.startswith(("    mdl dev-cluster ", "    MDL_DEV_CLUSTER_DIR=", "    eval "))
               for line in examples.splitlines()), examples
    assert not re.search(r"<[a-z ]+>|\b(INTEGER|FLOAT|TEXT)\b", out), out


def test_group_help(dev_cluster):
    code, out, err = dev_cluster("datanode")
    assert (code, err) == (0, "")
    assert out == dev_cluster("datanode", "-h")[1]
    assert out.startswith("Usage: mdl dev-cluster datanode [OPTIONS] COMMAND [ARGS]...\n\n"
                          "  Stop or (re)start a DataNode (index 0..2).\n")
    assert "\nCommands:\n  stop   Stop DataNode N.\n  start  (Re)start DataNode N and wait until it is live.\n" in out


def test_fs_help_is_mdls_and_fs_help_flag_goes_to_fsshell(dev_cluster):
    code, out, err = dev_cluster("fs", "-h")
    assert (code, err) == (0, "")
    assert out.startswith("Usage: mdl dev-cluster fs [OPTIONS] [ARGS...]\n\n"
                          "  Run Hadoop's FsShell (hadoop fs) on the cluster.\n\n"
                          "  Everything after fs goes to FsShell as it is (fs -help: FsShell's own help);\n")
    # anything else is FsShell's: here the cluster was never set up, which the error says
    assert dev_cluster("fs", "-ls", "-R", "/") == (
        1, "", "error: the classpath is not resolved yet\nhint: run `mdl dev-cluster up` first\n")


@pytest.mark.parametrize("argv, stderr", [
    (["datanode", "stop"], "error: missing argument 'N'\n"
                           "hint: usage: mdl dev-cluster datanode stop [OPTIONS] {N} "
                           "(see: mdl dev-cluster datanode stop -h)\n"),
    (["datanode", "stop", "9"], "error: invalid value for 'N': a DataNode index 0..2, not 9\n"
                                "hint: usage: mdl dev-cluster datanode stop [OPTIONS] {N} "
                                "(see: mdl dev-cluster datanode stop -h)\n"),
    (["datanode", "start", "x"], "error: invalid value for 'N': 'x' is not a valid int\n"
                                 "hint: usage: mdl dev-cluster datanode start [OPTIONS] {N} "
                                 "(see: mdl dev-cluster datanode start -h)\n"),
    (["namenode", "stop", "2"], "error: invalid value for 'N': a NameNode index 0..1, not 2\n"
                                "hint: usage: mdl dev-cluster namenode stop [OPTIONS] {N} "
                                "(see: mdl dev-cluster namenode stop -h)\n"),
    (["zk", "stop", "4"], "error: invalid value for 'ID': a server id 1..3 or all, not '4'\n"
                          "hint: usage: mdl dev-cluster zk stop [OPTIONS] {ID} (see: mdl dev-cluster zk stop -h)\n"),
    (["frob"], "error: no such command 'frob'\n"
               "hint: usage: mdl dev-cluster [OPTIONS] COMMAND [ARGS]... (see: mdl dev-cluster -h)\n"),
    (["up", "--bogus"], "error: no such option: --bogus\n"
                        "hint: usage: mdl dev-cluster up [OPTIONS] (see: mdl dev-cluster up -h)\n"),
    (["up", "--ticket-lifetime", "soon"], "error: invalid value for '--ticket-lifetime': 'soon' is not a valid int"
                                          "\nhint: usage: mdl dev-cluster up [OPTIONS] "
                                          "(see: mdl dev-cluster up -h)\n"),
])
def test_usage_errors(dev_cluster, argv, stderr):
    assert dev_cluster(*argv) == (2, "", stderr)


def test_the_dev_clusters_errors_in_mdls_voice(dev_cluster, tmp_path):
    # nothing runs in this state dir: what the library refuses, with the advice as the hint
    assert dev_cluster("namenode", "failover") == (
        2, "", "error: this dev cluster has one NameNode\nhint: start it with `up --ha` (after `down`)\n")
    assert dev_cluster("zk", "start", "2") == (
        1, "", "error: the dev cluster is not up\nhint: run `mdl dev-cluster up`\n")
    other = tmp_path / "other dc"
    assert dev_cluster("--state-dir", str(other), "zk", "start", "all") == (
        1, "", f"error: the dev cluster is not up\nhint: run `mdl dev-cluster --state-dir '{other}' up`\n")
    assert dev_cluster("up", "--secure", "--ha") == (
        2, "", "error: --secure and --ha cannot be combined\nhint: see: mdl dev-cluster -h\n")


@pytest.mark.parametrize("exc, code, lines", [
    (DevClusterTimeout("another mdl.devcluster operation holds /x/lock"), 5,
     ["error: another mdl.devcluster operation holds /x/lock",
      "hint: see the cluster's state with: mdl dev-cluster status"]),
    (DevClusterError("HDFS did not start", log_path=REPO / "hdfs.log"), 1,
     ["error: HDFS did not start", f"hint: see the log: {REPO / 'hdfs.log'}"]),
    (DevClusterError("java not found: install a JDK 17 (or set MDL_DEV_CLUSTER_JAVA / JAVA_HOME)"), 1,
     ["error: java not found", "hint: install a JDK 17 (or set MDL_DEV_CLUSTER_JAVA / JAVA_HOME)"]),
    (DevClusterError("the dev cluster already runs with port offset 0; run down first"), 1,
     ["error: the dev cluster already runs with port offset 0", "hint: run down first"]),
    (DevClusterUsageError("DataNode indices are 0..2, got 7"), 2,
     ["error: DataNode indices are 0..2, got 7", "hint: see: mdl dev-cluster -h"]),
])
def test_exit_codes_and_hints_of_the_dev_clusters_errors(capsys, exc, code, lines):
    assert report_error(_as_mdl_error(exc)) == code
    assert capsys.readouterr() == ("", "".join(f"{line}\n" for line in lines))
