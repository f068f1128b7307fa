"""mdl dev-cluster: a real local HDFS + ZooKeeper cluster on 127.0.0.1 (see mdl.devcluster)."""

import typer


def dev_cluster(ctx: typer.Context) -> None:
    """Start, stop and inspect a local HDFS (3 DataNodes) + ZooKeeper (3 servers) cluster.

    up [--ha | --secure [--ticket-lifetime S]] | down | status | env | info | datanode stop|start N |
    namenode failover|stop|start N (HA) | zk stop|start N|all | fs ARGS.
    --secure: Kerberos (in-JVM KDC, realm MDL.TEST, SPNEGO WebHDFS), no ZooKeeper; `env` gives KRB5_CONFIG etc.
    Needs Java 17 and Maven; the first `up` downloads the jars from Maven Central.
    """
    from mdl.devcluster.cli import main

    raise typer.Exit(main(list(ctx.args) or ["--help"]))


def register(app: typer.Typer) -> None:
    app.command(
        "dev-cluster",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    )(dev_cluster)
