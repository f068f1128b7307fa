"""mdl dev-cluster: a real local HDFS + ZooKeeper cluster on 127.0.0.1 (the library: mdl.devcluster).

Also ``python -m mdl.devcluster``. Data (JSON, env lines, FsShell output) goes to stdout, errors are
``error:``/``hint:`` lines on stderr. mdl.devcluster is imported inside the commands: ``mdl --help``
does not load it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mdl.cli.common import command, help_if_bare

if TYPE_CHECKING:
    from mdl.devcluster import DevCluster, DevClusterError
    from mdl.errors import MdlError

F = TypeVar("F", bound=Callable[..., Any])

NUM_DATANODES = 3  # as in mdl.devcluster.ports (not imported here: see the module docstring)
ZK_IDS = (1, 2, 3)
STATE_DIR = "mdl.dev_cluster.state_dir"  # key of --state-dir in ctx.meta, which every subcommand's context shares
SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def _examples(*lines: str) -> str:
    """An ``Examples:`` block as mdl.cli.examples lays it out (``\\b``: no rewrapping)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def _group(name: str) -> typer.Typer:
    """A command group; its help is its callback's docstring."""
    return typer.Typer(name=name, rich_markup_mode=None, context_settings=SETTINGS)


dev_cluster_app = _group("dev-cluster")
datanode_app = _group("datanode")
namenode_app = _group("namenode")
zk_app = _group("zk")
dev_cluster_app.add_typer(datanode_app, name="datanode")
dev_cluster_app.add_typer(namenode_app, name="namenode")
dev_cluster_app.add_typer(zk_app, name="zk")

TimeoutOpt = Annotated[
    float, typer.Option("--timeout", metavar="SECONDS", help="How long to wait for it to take effect.")
]


# ---- the CLI edge --------------------------------------------------------------------------------


def _as_mdl_error(exc: DevClusterError, state_dir: str | None = None) -> MdlError:
    """A DevClusterError as mdl's error: exit code kept (1, 2 usage, 5 timeout), the advice its message
    ends with (``...: run `...```, ``...; run down first``) as the hint, else the log to read.
    A command in the advice names ``state_dir`` (``--state-dir``) if one was given."""
    import re
    import shlex

    from mdl.devcluster import DevClusterTimeout, DevClusterUsageError
    from mdl.errors import InvalidInput, MdlError, Timeout

    this = "mdl dev-cluster" + (f" --state-dir {shlex.quote(state_dir)}" if state_dir else "")
    message, hint = str(exc), None
    advice = re.fullmatch(r"(.+?)[:;] ((?:run|start it with|use|install) .+)", message)
    if advice:
        message, hint = advice.group(1), advice.group(2).replace("python -m mdl.devcluster", this)
    elif exc.log_path is not None:
        hint = f"see the log: {exc.log_path}"
    elif isinstance(exc, DevClusterUsageError):
        hint = "see: mdl dev-cluster -h"
    else:
        hint = f"see the cluster's state with: {this} status"
    if isinstance(exc, DevClusterUsageError):
        return InvalidInput(message, hint)
    if isinstance(exc, DevClusterTimeout):
        return Timeout(message, hint)
    return MdlError(message, hint)


def _edge(fn: F) -> F:
    """mdl's error edge (``command``), with the dev cluster's errors said in mdl's words."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            from mdl.devcluster import DevClusterError

            if isinstance(exc, DevClusterError):
                ctx = kwargs.get("ctx")
                raise _as_mdl_error(exc, ctx.meta.get(STATE_DIR) if ctx else None) from exc
            raise

    return command(wrapper)  # type: ignore[return-value]


def _cluster(ctx: typer.Context, **request: Any) -> DevCluster:
    """The cluster of ``--state-dir`` (given to ``mdl dev-cluster``), with ``up``'s request."""
    from mdl.devcluster import DevCluster

    return DevCluster(ctx.meta.get(STATE_DIR), **request)


def _print_json(doc: Any) -> None:
    import json  # here: mdl --help does not load it

    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


# ---- commands ----------------------------------------------------------------------------------------


@dev_cluster_app.callback(invoke_without_command=True)
def dev_cluster(
    ctx: typer.Context,
    state_dir: Annotated[
        str | None,
        typer.Option(
            "--state-dir",
            metavar="PATH",
            help="The cluster's state directory (default: $MDL_DEV_CLUSTER_DIR or ~/.cache/mdl/dev-cluster).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start, stop and inspect a local HDFS (3 DataNodes) + ZooKeeper (3 servers) cluster on 127.0.0.1.

    up --ha: two NameNodes (HA); up --secure: Kerberos (in-JVM KDC, realm MDL.TEST, SPNEGO WebHDFS), no
    ZooKeeper; the mode is remembered until down. Needs Java 17 and Maven: the first up downloads the jars
    from Maven Central. More than one cluster: each its own --state-dir and up --port-offset.
    """
    ctx.meta[STATE_DIR] = state_dir
    help_if_bare(ctx)


@dev_cluster_app.command(
    "up",
    epilog=_examples(
        "mdl dev-cluster up                     # HDFS + ZooKeeper; prints the status as JSON",
        "mdl dev-cluster up --ha                # two NameNodes (NameNode 0 active)",
        "mdl dev-cluster up --secure --ticket-lifetime 60",
        "MDL_DEV_CLUSTER_DIR=/tmp/dc mdl dev-cluster up --port-offset 500   # a second cluster",
    ),
)
@_edge
def up(
    ctx: typer.Context,
    ha: Annotated[
        bool | None,
        typer.Option("--ha", help="Two NameNodes (HA nameservice mdlns, NameNode 0 active).", show_default=False),
    ] = None,
    secure: Annotated[
        bool | None,
        typer.Option(
            "--secure",
            help="Kerberos: an in-JVM KDC (realm MDL.TEST), SPNEGO WebHDFS, no ZooKeeper; env and info give "
            "KRB5_CONFIG, KRB5CCNAME (kinit done by up) and the client keytab.",
            show_default=False,
        ),
    ] = None,
    ticket_lifetime: Annotated[
        int | None,
        typer.Option(
            "--ticket-lifetime",
            metavar="SECONDS",
            help="--secure: the KDC's longest ticket lifetime (default 3600; short ones let tickets expire).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="How long to wait for the cluster to be ready.")
    ] = 180.0,
    port_offset: Annotated[
        int | None,
        typer.Option(
            "--port-offset",
            metavar="N",
            help="Added to every port (default: $MDL_DEV_CLUSTER_PORT_OFFSET or 0).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the cluster (idempotent) and print its status as JSON.

    --ha, --secure and --ticket-lifetime are remembered until down.
    """
    cluster = _cluster(ctx, port_offset=port_offset, ha=ha, secure=secure, ticket_lifetime=ticket_lifetime)
    _print_json(cluster.up(timeout=timeout))


@dev_cluster_app.command("down", epilog=_examples("mdl dev-cluster down"))
@_edge
def down(ctx: typer.Context) -> None:
    """Stop the cluster and delete its data.

    The logs stay. Prints what it stopped as JSON.
    """
    _print_json(_cluster(ctx).down())


@dev_cluster_app.command(
    "status",
    epilog=_examples("mdl dev-cluster status", "mdl dev-cluster status | jq .hdfs.live_datanodes"),
)
@_edge
def status(ctx: typer.Context) -> None:
    """Print the cluster's status as JSON.

    Its processes, DataNodes, NameNodes, ZooKeeper servers and their modes, and whether it is healthy.
    """
    _print_json(_cluster(ctx).status())


@dev_cluster_app.command("env", epilog=_examples('eval "$(mdl dev-cluster env)"    # point mdl at the cluster'))
@_edge
def env(ctx: typer.Context) -> None:
    """Print export lines that point mdl at the cluster.

    MDL_STORAGE_URL, MDL_STORAGE_USER, MDL_REGISTRY_URL (secure: MDL_STORAGE_AUTH, KRB5_CONFIG, KRB5CCNAME).
    """
    sys.stdout.write(_cluster(ctx).env_snippet())


@dev_cluster_app.command("info", epilog=_examples("mdl dev-cluster info | jq -r .storage_url"))
@_edge
def info(ctx: typer.Context) -> None:
    """Print the client settings as JSON.

    URLs, user, ports and (secure) the Kerberos files.
    """
    _print_json(_cluster(ctx).info())


# ---- fault controls ------------------------------------------------------------------------------


def _index(limit: int, what: str) -> Any:
    def check(value: int) -> int:
        if not 0 <= value < limit:
            raise typer.BadParameter(f"a {what} index 0..{limit - 1}, not {value}")
        return value

    return typer.Argument(metavar="N", callback=check, help=f"{what} index, 0..{limit - 1}.", show_default=False)


DataNodeArg = Annotated[int, _index(NUM_DATANODES, "DataNode")]
NameNodeArg = Annotated[int, _index(2, "NameNode")]


@datanode_app.callback(invoke_without_command=True)
def datanode(ctx: typer.Context) -> None:
    """Stop or (re)start a DataNode (index 0..2)."""
    help_if_bare(ctx)


@datanode_app.command(
    "stop",
    epilog=_examples(
        "mdl dev-cluster datanode stop 1           # the NameNode notices in ~12 s",
        "mdl dev-cluster datanode stop 1 --dead    # the NameNode counts it dead at once",
    ),
)
@_edge
def datanode_stop(
    ctx: typer.Context,
    index: DataNodeArg,
    dead: Annotated[bool, typer.Option("--dead", help="Have the NameNode mark it dead at once.")] = False,
    wait_dead: Annotated[bool, typer.Option("--wait-dead", help="Wait until the NameNode counts it dead.")] = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """Stop DataNode N.

    Prints it as JSON.
    """
    _print_json(_cluster(ctx).stop_datanode(index, mark_dead=dead, wait_dead=wait_dead, timeout=timeout))


@datanode_app.command("start", epilog=_examples("mdl dev-cluster datanode start 1"))
@_edge
def datanode_start(ctx: typer.Context, index: DataNodeArg, timeout: TimeoutOpt = 60.0) -> None:
    """(Re)start DataNode N and wait until it is live.

    It comes back on its previous ports. Prints it as JSON.
    """
    _print_json(_cluster(ctx).start_datanode(index, timeout=timeout))


@namenode_app.callback(invoke_without_command=True)
def namenode(ctx: typer.Context) -> None:
    """HA cluster: fail over, stop or start a NameNode.

    Only on a cluster started with up --ha. NameNode indices are 0..1.
    """
    help_if_bare(ctx)


@namenode_app.command("failover", epilog=_examples("mdl dev-cluster namenode failover"))
@_edge
def namenode_failover(ctx: typer.Context, timeout: TimeoutOpt = 120.0) -> None:
    """Swap the active and the standby NameNode.

    Prints both NameNodes as JSON.
    """
    _print_json(_cluster(ctx).failover_namenode(timeout=timeout))


@namenode_app.command("status", epilog=_examples("mdl dev-cluster namenode status"))
@_edge
def namenode_status(ctx: typer.Context) -> None:
    """Print the NameNodes as JSON.

    Each one's state (active or standby), whether it runs, and its ports.
    """
    _print_json(_cluster(ctx).namenodes())


@namenode_app.command("stop", epilog=_examples("mdl dev-cluster namenode stop 0   # the standby takes over"))
@_edge
def namenode_stop(ctx: typer.Context, index: NameNodeArg, timeout: TimeoutOpt = 120.0) -> None:
    """Stop NameNode N; prints both NameNodes as JSON."""
    _print_json(_cluster(ctx).stop_namenode(index, timeout=timeout))


@namenode_app.command("start", epilog=_examples("mdl dev-cluster namenode start 0   # back as standby"))
@_edge
def namenode_start(ctx: typer.Context, index: NameNodeArg, timeout: TimeoutOpt = 120.0) -> None:
    """Start NameNode N again, as standby.

    Prints both NameNodes as JSON.
    """
    _print_json(_cluster(ctx).start_namenode(index, timeout=timeout))


def _zk_target(value: str) -> str:
    if value != "all" and value not in {str(i) for i in ZK_IDS}:
        raise typer.BadParameter(f"a server id {ZK_IDS[0]}..{ZK_IDS[-1]} or all, not {value!r}")
    return value


ZkTargetArg = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        callback=_zk_target,
        help=f"A server id, {ZK_IDS[0]}..{ZK_IDS[-1]}, or all.",
        show_default=False,
    ),
]


@zk_app.callback(invoke_without_command=True)
def zk(ctx: typer.Context) -> None:
    """Stop or start a ZooKeeper server (id 1..3) or all of them."""
    help_if_bare(ctx)


@zk_app.command(
    "stop",
    epilog=_examples("mdl dev-cluster zk stop 2       # the other two keep a quorum", "mdl dev-cluster zk stop all"),
)
@_edge
def zk_stop(ctx: typer.Context, target: ZkTargetArg) -> None:
    """Stop ZooKeeper server ID, or all of them.

    Prints what it stopped as JSON.
    """
    cluster = _cluster(ctx)
    _print_json(cluster.stop_zk_all() if target == "all" else cluster.stop_zk(int(target)))


@zk_app.command("start", epilog=_examples("mdl dev-cluster zk start 2", "mdl dev-cluster zk start all"))
@_edge
def zk_start(ctx: typer.Context, target: ZkTargetArg, timeout: TimeoutOpt = 60.0) -> None:
    """Start ZooKeeper server ID, or all of them.

    Waits until each serves (as leader or follower; alone, until it answers). Prints them as JSON.
    """
    cluster = _cluster(ctx)
    started = (
        cluster.start_zk_all(timeout=timeout) if target == "all" else cluster.start_zk(int(target), timeout=timeout)
    )
    _print_json(started)


# FsShell's options (-ls, -cat, -h ...) are its own: none is parsed here
@dev_cluster_app.command(
    "fs",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    epilog=_examples(
        "mdl dev-cluster fs -ls -R /models",
        "mdl dev-cluster fs -du -h /models   # FsShell's own help: mdl dev-cluster fs -help",
    ),
)
@_edge
def fs(
    ctx: typer.Context,
    args: Annotated[
        list[str] | None, typer.Argument(metavar="ARGS...", help="FsShell's arguments, as given.", show_default=False)
    ] = None,
) -> None:
    """Run Hadoop's FsShell (hadoop fs) on the cluster.

    Everything after fs goes to FsShell as it is (fs -help: FsShell's own help); its output and exit
    code are FsShell's.
    """
    if args in (["-h"], ["--help"]):  # FsShell's own help is -help
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    proc = _cluster(ctx).fs_shell(*(args or []))
    sys.stdout.buffer.write(proc.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(proc.stderr)
    raise typer.Exit(proc.returncode)


def register(app: typer.Typer) -> None:
    app.add_typer(dev_cluster_app, name="dev-cluster")
