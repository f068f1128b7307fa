"""``python -m mdl.devcluster`` — plain argparse front end over :mod:`mdl.devcluster.manager`.

Data (JSON, env lines, FsShell output) goes to stdout; errors are one ``error: ...`` line on
stderr. Exit codes: 0 ok, 1 failed, 2 usage, 5 timed out, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from .manager import NUM_DATANODES, ZK_IDS, DevCluster, DevClusterError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mdl.devcluster",
        description="Local HDFS (MiniDFSCluster) + ZooKeeper ensemble on 127.0.0.1 for mdl development.",
    )
    p.add_argument(
        "--state-dir", help="state directory (default: $MDL_DEV_CLUSTER_DIR or $XDG_CACHE_HOME/mdl/dev-cluster)"
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start the cluster (idempotent) and print its status as JSON")
    up.add_argument("--timeout", type=float, default=180.0, help="readiness timeout in seconds (default 180)")
    up.add_argument(
        "--port-offset", type=int, help="add this to every port (default $MDL_DEV_CLUSTER_PORT_OFFSET or 0)"
    )
    up.add_argument(
        "--ha",
        action="store_true",
        default=None,
        help="two NameNodes (HA nameservice, NameNode 0 active); remembered until `down`",
    )
    up.add_argument(
        "--secure",
        action="store_true",
        default=None,
        help="Kerberos: an in-JVM KDC (realm MDL.TEST), SPNEGO WebHDFS, no ZooKeeper; `env`/`info` give "
        "KRB5_CONFIG, KRB5CCNAME (kinit done by up) and the client keytab; remembered until `down`",
    )
    up.add_argument(
        "--ticket-lifetime",
        type=int,
        metavar="SECONDS",
        help="--secure: the KDC's maximum ticket lifetime (default 3600; short ones let tickets expire in tests)",
    )
    sub.add_parser("down", help="stop the cluster and delete its data")
    sub.add_parser("status", help="print the cluster status as JSON")
    sub.add_parser("env", help="print `export MDL_...=...` lines for a client")
    sub.add_parser("info", help="print client settings as JSON")

    dn = sub.add_parser("datanode", help="stop or (re)start a DataNode (0-based index)")
    dn.add_argument("action", choices=["stop", "start"])
    dn.add_argument("index", type=int, choices=range(NUM_DATANODES), metavar=f"N(0..{NUM_DATANODES - 1})")
    dn.add_argument("--dead", action="store_true", help="stop: have the NameNode mark it dead at once")
    dn.add_argument("--wait-dead", action="store_true", help="stop: wait until the NameNode counts it dead")
    dn.add_argument("--timeout", type=float, default=60.0)

    nn = sub.add_parser("namenode", help="HA cluster: fail over, or stop/start a NameNode (0 or 1)")
    nn.add_argument("action", choices=["failover", "stop", "start", "status"])
    nn.add_argument("index", type=int, nargs="?", choices=range(2), metavar="N(0..1)")
    nn.add_argument("--timeout", type=float, default=120.0)

    zk = sub.add_parser("zk", help="stop or start a ZooKeeper server (id 1..3) or all of them")
    zk.add_argument("action", choices=["stop", "start"])
    zk.add_argument("target", metavar=f"N({ZK_IDS[0]}..{ZK_IDS[-1]})|all")
    zk.add_argument("--timeout", type=float, default=60.0)

    sub.add_parser(
        "fs",
        help="run Hadoop's FsShell against the cluster, e.g. `fs -ls -R /` (everything after `fs` goes to FsShell)",
    )
    return p


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    fs_args: list[str] = []
    if "fs" in argv:  # FsShell's own options (-ls, -cat, ...) must not reach argparse
        i = argv.index("fs")
        if i == 0 or (i == 2 and argv[0] == "--state-dir") or (i == 1 and argv[0].startswith("--state-dir=")):
            argv, fs_args = argv[: i + 1], argv[i + 1 :]
    args = _parser().parse_args(argv)
    cluster = DevCluster(
        args.state_dir,
        port_offset=getattr(args, "port_offset", None),
        ha=getattr(args, "ha", None),
        secure=getattr(args, "secure", None),
        ticket_lifetime=getattr(args, "ticket_lifetime", None),
    )
    try:
        if args.cmd == "up":
            _print_json(cluster.up(timeout=args.timeout))
        elif args.cmd == "down":
            _print_json(cluster.down())
        elif args.cmd == "status":
            st = cluster.status()
            _print_json(st)
        elif args.cmd == "env":
            sys.stdout.write(cluster.env_snippet())
        elif args.cmd == "info":
            _print_json(cluster.info())
        elif args.cmd == "datanode":
            if args.action == "stop":
                _print_json(
                    cluster.stop_datanode(
                        args.index, mark_dead=args.dead, wait_dead=args.wait_dead, timeout=args.timeout
                    )
                )
            else:
                _print_json(cluster.start_datanode(args.index, timeout=args.timeout))
        elif args.cmd == "namenode":
            if args.action in ("stop", "start") and args.index is None:
                print(f"error: namenode {args.action} needs a NameNode index (0 or 1)", file=sys.stderr)
                return 2
            if args.action == "failover":
                _print_json(cluster.failover_namenode(timeout=args.timeout))
            elif args.action == "stop":
                _print_json(cluster.stop_namenode(args.index, timeout=args.timeout))
            elif args.action == "start":
                _print_json(cluster.start_namenode(args.index, timeout=args.timeout))
            else:
                _print_json(cluster.namenodes())
        elif args.cmd == "zk":
            res: dict[str, Any] | list[dict[str, Any]]
            if args.target == "all":
                res = cluster.stop_zk_all() if args.action == "stop" else cluster.start_zk_all(timeout=args.timeout)
            else:
                try:
                    sid = int(args.target)
                except ValueError:
                    print(f"error: ZooKeeper target must be 1..3 or all, got {args.target!r}", file=sys.stderr)
                    return 2
                res = cluster.stop_zk(sid) if args.action == "stop" else cluster.start_zk(sid, timeout=args.timeout)
            _print_json(res)
        elif args.cmd == "fs":
            fs_args = fs_args[1:] if fs_args[:1] == ["--"] else fs_args
            proc = cluster.fs_shell(*fs_args)
            sys.stdout.buffer.write(proc.stdout)
            sys.stderr.buffer.write(proc.stderr)
            return proc.returncode
        return 0
    except DevClusterError as e:
        if os.environ.get("MDL_DEBUG"):
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `... status | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
