"""The distributed storage: the model tree on HDFS, spoken to over WebHDFS (``webhdfs://``, ``swebhdfs://``).

Layout (``storage.root``, default ``/models``)::

    <root>/<name>/<version>/<files>                    published, immutable
    <root>/<name>/<version>/.mdl-manifest.json         written last, before the claim
    <root>/<name>/.mdl-staging/<version>.<pid>.<token>/ a push in progress (private to that push)
    <root>/<name>/.mdl-deleting/<version>.<token>/      a version being deleted (hidden by one rename)

How a version is claimed atomically
-----------------------------------
Every file of a push, and last its manifest, is written into the push's own staging directory, which
no reader ever lists. The version then becomes visible in **one NameNode operation**: WebHDFS
``RENAME`` with ``renameoptions=NONE`` (HDFS ``rename2``) of the staging directory to
``<root>/<name>/<version>``. The NameNode performs a rename under its namespace write lock and logs
it as one edit, so readers see either no version directory or the complete one, manifest included.
``rename2`` fails with ``FileAlreadyExistsException`` if the destination exists in any form (empty
directory, file, complete version) and never moves the source *into* an existing directory (plain
``RENAME`` would, which is why it is never used for publishing). Of N concurrent pushes of the same
version exactly one rename succeeds; the others get ``VersionExists`` and leave the winner untouched.

The rename is not retried blindly (it is not idempotent): if the connection breaks after the request
was sent, the outcome is read back instead. Our staging directory gone and the destination holding
the exact manifest bytes we wrote means we won; the staging directory still there means the rename
did not happen (retried if the destination is still free, ``VersionExists`` if it is taken).
Failures before the request left (connection refused, connect timeout, a standby NameNode, a
``RetriableException``) are safe to retry on another or the same NameNode.

Transfers and failures
----------------------
Data never passes through the NameNode: ``CREATE``/``OPEN`` are asked with ``noredirect=true`` and
the data goes to the DataNode ``Location``, so a DataNode this client cannot reach is named in the
error (its ``host:port``) with a hint about ``dfs.datanode.hostname`` and the network. Uploads send
the local file with its ``Content-Length`` (not chunked) from one reused 1 MiB buffer, hashing each
chunk before it is sent, so the digest is that of the bytes sent; a failed upload rewrites the whole
private staging file (``overwrite=true``), idempotent by construction. Reads are ranged ``OPEN``
requests (``offset``/``length``, never at or past the end) that resume where they broke; a file is
downloaded in one stream, received straight into a reused buffer, hashed and written as it arrives
(``max_parts`` > 1: parallel ranges, hashed afterwards). No hashing thread: on a busy machine it
only adds hand-offs; parallelism comes from transferring files concurrently (``-j``). After a
DataNode fails to answer, the next attempt passes ``excludedatanodes=<ip>:<xferPort>`` (the NameNode
wants the transfer address, learnt from the NameNode's JMX ``LiveNodes`` or ``GET_BLOCK_LOCATIONS``).

A delete hides the version with one ``rename2`` into ``.mdl-deleting`` (readers see it vanish at once;
a read that reaches the NameNode afterwards gets ``NotFound``), then deletes it recursively (``DELETE``) or,
with the trash, renames it to ``<trash root>/Current/<its original path>`` (``GETTRASHROOT``:
``/user/<user>/.Trash``), a millisecond timestamp appended if that is taken, as Hadoop's shell does.
The version's signatures (``<name>/.mdl-signatures/<version>``) follow it into the trash the same way,
so that a version restored from the trash (both directories moved back) is still signed.
A quota a write would exceed (``DSQuotaExceededException``, ``NSQuotaExceededException``), whether the
NameNode or the DataNode reports it, is one error naming the quota and the directory.

Only idempotent steps (status, listing, reads, staging-file rewrites, ``MKDIRS``, ``DELETE`` of staging)
are retried, with exponential backoff and jitter, at most ``storage.retries`` times and within
``storage.timeout``. Several NameNodes (``webhdfs://nn1:9870,nn2:9870``) are tried in turn; the one
that answered last is tried first. Every error leaves this package as an :class:`mdl.errors.MdlError`.

The pieces
----------
``storage``   :class:`WebHdfsStorage`, the :class:`~mdl.storage.base.Storage` contract: wires the rest
``session``   :class:`WebHdfsSession`: settings, connection pools, the one NameNode request path
              (HA failover, retries, WebHDFS error answers as MdlErrors) and NameNode operations
``datanodes`` requests to DataNodes, their transfer addresses, a failed DataNode step as an MdlError
``download``  :class:`WebHdfsReader` (ranged, resuming reads) and a file's download to a local path
``upload``    the upload body of a local file and a file's two-step ``CREATE``, retried as a whole
``stage``     :class:`WebHdfsStage`: a push in progress and its publishing ``rename2``
``check``     the connectivity diagnosis (:meth:`WebHdfsStorage.check`)
``protocol``  ``storage.url`` parsing, the ``RemoteException`` answer, shared constants and hints
The modules share what they need through the session and the names each documents as internal to the
package, never through another object's private members. Outside code uses the names re-exported here.
"""

from __future__ import annotations

from mdl.errors import ConfigError

try:  # urllib3 comes with the "distributed" extra; open_storage reports its absence as a ConfigError
    import urllib3  # noqa: F401
except ImportError:  # pragma: no cover - depends on the installed extras
    raise ConfigError(
        "the webhdfs:// backend needs the 'distributed' extra", hint="pip install 'mdl[distributed]'"
    ) from None

from mdl.storage.webhdfs.check import CheckResult
from mdl.storage.webhdfs.datanodes import DataNodeError
from mdl.storage.webhdfs.download import WebHdfsReader, write_pieces
from mdl.storage.webhdfs.protocol import parse_url, remote_error
from mdl.storage.webhdfs.session import WebHdfsSession
from mdl.storage.webhdfs.stage import WebHdfsStage
from mdl.storage.webhdfs.storage import WebHdfsStorage
from mdl.storage.webhdfs.upload import FileBody

__all__ = [
    "CheckResult",
    "DataNodeError",
    "FileBody",
    "WebHdfsReader",
    "WebHdfsSession",
    "WebHdfsStage",
    "WebHdfsStorage",
    "parse_url",
    "remote_error",
    "write_pieces",
]
