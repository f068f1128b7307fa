"""What WebHDFS speaks (internal to the package): ``storage.url`` parsing, the error answer
(``RemoteException``) in one line, and the constants and hints the pieces share."""

from __future__ import annotations

import getpass
import os
import re
from typing import Any
from urllib.parse import urlparse

from mdl.errors import ConfigError, MdlError
from mdl.storage.http import Response, text
from mdl.storage.webhdfs import hadoop_conf

WEBHDFS_PREFIX = "/webhdfs/v1"
DEFAULT_PORTS = {"webhdfs": 9870, "swebhdfs": 9871}
DATANODE_HINT = (
    "the NameNode sends clients to DataNodes by the address they registered with: this host "
    "must resolve and reach it (check dfs.datanode.hostname / dfs.datanode.http.address, "
    "DNS or /etc/hosts, firewalls); `curl -sSI http://HOST:PORT/` (https:// for swebhdfs) with "
    "the DataNode address named above shows whether it resolves and answers from this host"
)
NAMENODE_HINT = (
    "check storage.url and that the NameNode runs with WebHDFS enabled and its HTTP port is "
    "reachable from this host (storage.timeout and storage.retries set the patience)"
)
#: RemoteExceptions that say the request was not (and will not be) carried out as asked.
FINAL_EXCEPTIONS = frozenset(
    {
        "AccessControlException",
        "SecurityException",
        "AuthorizationException",
        "FileNotFoundException",
        "FileAlreadyExistsException",
        "ParentNotDirectoryException",
        "NSQuotaExceededException",
        "DSQuotaExceededException",
        "QuotaExceededException",
        "QuotaByStorageTypeExceededException",
        "InvalidPathException",
        "IllegalArgumentException",
        "UnsupportedOperationException",
        "PathIsNotEmptyDirectoryException",
        "UnresolvedPathException",
        "SnapshotAccessControlException",
    }
)
#: RemoteExceptions of a quota the write would exceed (mapped to one clear error naming the quota)
QUOTA_EXCEPTIONS = frozenset(
    {
        "DSQuotaExceededException",
        "NSQuotaExceededException",
        "QuotaByStorageTypeExceededException",
        "QuotaExceededException",
    }
)
#: what an operation does to a path, for "may not <verb> <path>"
VERBS = {
    "MKDIRS": "write",
    "CREATE": "write",
    "RENAME": "write",
    "DELETE": "delete",
    "OPEN": "read",
    "GETFILESTATUS": "read",
    "LISTSTATUS": "list",
    "LISTSTATUS_BATCH": "list",
    "GET_BLOCK_LOCATIONS": "read",
}


def one_line(text: Any, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def remote_error(resp: Response) -> tuple[str | None, str]:
    """(java exception simple name, one-line message) of a WebHDFS error answer."""
    try:
        doc = resp.json()["RemoteException"]
        msg = str(doc.get("message") or "").strip().splitlines()
        return doc.get("exception") or None, one_line(msg[0] if msg else "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, one_line(f"HTTP {resp.status} {resp.reason or ''} {text(resp)}".strip())


def quota_error(exc_name: str, msg: str, what: str) -> MdlError:
    """The error of a write (of ``what``) that a directory's quota refused, naming the quota and the
    directory as the NameNode's message does ("The DiskSpace quota of /models/lr is exceeded: ...")."""
    found = re.search(r"(?:of (?:directory )?|on path : )(/\S*) is exceeded[:.]?\s*(.*)", msg)
    where, detail = (found.group(1), found.group(2)) if found else (None, msg)
    if exc_name == "NSQuotaExceededException":
        kind, raise_it = "namespace quota (number of files and directories)", "hdfs dfsadmin -setQuota"
    else:
        kind, raise_it = "space quota", "hdfs dfsadmin -setSpaceQuota"
    of = f" of {where}" if where else ""
    return MdlError(
        f"the HDFS {kind}{of} is exceeded: cannot write {what}" + (f" ({detail})" if detail else ""),
        hint=f"free space with mdl gc, or raise the quota ({raise_it})",
    )


def hostport(url: str) -> str:
    """``host:port`` of a URL (a DataNode ``Location``), the port defaulted by the scheme."""
    p = urlparse(url)
    return f"{p.hostname}:{p.port or (443 if p.scheme == 'https' else 80)}"


def parse_url(url: str, hadoop_conf_dir: str | None = None) -> tuple[str, list[str]]:
    """``webhdfs://h1:9870,h2:9870`` -> ("http", ["http://h1:9870", "http://h2:9870"]); a single host
    without a port that the Hadoop client config names as a nameservice stands for its NameNodes
    (see :mod:`mdl.storage.webhdfs.hadoop_conf`)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in DEFAULT_PORTS:
        raise ConfigError(f"storage.url {url!r} is not a webhdfs:// or swebhdfs:// URL")
    hosts, slash, path = rest.partition("/")
    if path.strip("/"):
        raise ConfigError(
            f"storage.url {url!r} has a path; the tree's location is storage.root",
            hint="use webhdfs://host:port and set storage.root (default /models)",
        )
    if "@" in hosts or "?" in hosts or "#" in hosts:
        raise ConfigError(f"storage.url {url!r}: give only host:port pairs (the user is storage.user)")
    http = "https" if scheme == "swebhdfs" else "http"
    parts = [p.strip() for p in hosts.split(",") if p.strip()]
    directory = hadoop_conf.conf_dir(hadoop_conf_dir)
    if len(parts) == 1 and ":" not in parts[0] and directory is not None:
        parts = hadoop_conf.nameservice_namenodes(parts[0], http == "https", directory) or parts
    bases = []
    for part in parts:
        probe = urlparse(f"{http}://{part}")
        try:
            port = probe.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise ConfigError(f"storage.url {url!r}: bad port in {part!r}") from None
        if not probe.hostname:
            raise ConfigError(f"storage.url {url!r}: no host name in {part!r}")
        host = f"[{probe.hostname}]" if ":" in probe.hostname else probe.hostname
        bases.append(f"{http}://{host}:{port}")
    if not bases:
        raise ConfigError(f"storage.url {url!r} names no NameNode", hint="use webhdfs://host:port[,host2:port]")
    return http, bases


def os_user() -> str:
    """The HDFS user of simple auth when storage.user is not set: the OS user, as Hadoop takes it."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back like Hadoop does
        return os.environ.get("USER") or os.environ.get("LOGNAME") or str(os.getuid())
