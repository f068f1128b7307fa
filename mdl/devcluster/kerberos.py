"""``up --secure``: the Kerberos side a client sees (realm, principals, keytabs, kinit).

The MiniHdfs launcher runs an in-JVM MiniKdc (hadoop-minikdc, on the classpath only in this mode)
for realm ``MDL.TEST`` on localhost:19888 (+offset, TCP), and HDFS runs Kerberized as
``hdfs/localhost`` (superuser ``hdfs``): SPNEGO on WebHDFS (use ``http://localhost:PORT``), block
access tokens, SASL data transfer. ``run/kdc/`` holds the keytabs (``client.keytab`` for
``client@MDL.TEST``, whose home is /user/client), ``krb5-client.conf`` for MIT clients and the
ticket cache ``krb5cc_client`` that ``up`` kinits into. ``--ticket-lifetime SECONDS`` (default
3600) caps every ticket the KDC issues, so tests can let tickets expire.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .errors import DevClusterError, DevClusterUsageError
from .layout import Layout
from .settings import Settings

REALM = "MDL.TEST"
KRB_HOST = "localhost"  # SPNEGO wants HTTP/<host>: URLs use localhost (HTTP/127.0.0.1 works too)
CLIENT_PRINCIPAL = f"client@{REALM}"
HDFS_PRINCIPAL = f"hdfs/{KRB_HOST}@{REALM}"  # the NameNode's (and DataNodes') login
CLIENT_HOME = "/user/client"
SECURE_SUPERUSER = "hdfs"  # the short name of hdfs/localhost


class Kerberos:
    """The secure cluster's KDC files and the client's view of them."""

    def __init__(self, layout: Layout, settings: Settings):
        self._layout = layout
        self._settings = settings

    def config(self) -> dict[str, Any]:
        """What a Kerberos client needs (paths are valid while the cluster is up)."""
        kdc_dir = self._layout.kdc_dir
        keytab = kdc_dir / "client.keytab"
        return {
            "realm": REALM,
            "kdc": f"{KRB_HOST}:{self._settings.ports.kdc}",
            "krb5_config": str(kdc_dir / "krb5-client.conf"),
            "ccache": f"FILE:{kdc_dir / 'krb5cc_client'}",
            "client_principal": CLIENT_PRINCIPAL,
            "client_keytab": str(keytab),
            "kinit": shlex.join(["kinit", "-kt", str(keytab), CLIENT_PRINCIPAL]),
            "hdfs_principal": HDFS_PRINCIPAL,
            "hdfs_keytab": str(kdc_dir / "hdfs.keytab"),
            "ticket_lifetime": self._settings.ticket_lifetime,
        }

    def ccache(self, name: str) -> str:
        """A ticket cache of its own under run/kdc (``FILE:...``)."""
        return f"FILE:{self._layout.kdc_dir / name}"

    def client_ccache_exists(self) -> bool:
        """Whether the state dir's client ticket cache (the one ``up`` kinits into) exists."""
        return Path(self.config()["ccache"].removeprefix("FILE:")).exists()

    def kinit(self, ccache: str | None = None, *, principal: str = CLIENT_PRINCIPAL, timeout: float = 30.0) -> None:
        """``kinit -kt <keytab> <principal>`` (MIT kinit) into ``ccache`` (default: the state dir's).
        ``principal``: the client's, or the superuser's (``hdfs/localhost@MDL.TEST``).
        Raises DevClusterError if kinit is missing or fails."""
        krb = self.config()
        keytab = {CLIENT_PRINCIPAL: krb["client_keytab"], HDFS_PRINCIPAL: krb["hdfs_keytab"]}.get(principal)
        if keytab is None:
            raise DevClusterUsageError(f"no keytab for {principal} (have {CLIENT_PRINCIPAL}, {HDFS_PRINCIPAL})")
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

    def client_info(self) -> dict[str, Any]:
        """The secure cluster's ``info()``: URLs on localhost, the Kerberos files and MDL_* env."""
        p = self._settings.ports
        krb = self.config()
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
            "state_dir": str(self._layout.root),
            "env": env,
        }
