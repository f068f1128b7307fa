"""``mdl`` with the push's sha256 given in advance: an experiment, not a mode of mdl.

    MDL_BENCH_DIGESTS=digests.json <mdl's python> bench/mdl_prehashed.py push NAME SRC ...

The WebHDFS push runs unchanged (same requests, same reused buffer, same bytes sent) except that it
does not hash: each file's digest is looked up in ``MDL_BENCH_DIGESTS`` (a JSON object, real local
path -> sha256, computed by ``hdfs_transfer.py`` outside the timed windows). What a push costs
without hashing is then measured, not estimated; the manifest is still right, and the bench's
ordinary ``mdl pull`` of the version verifies every byte against it.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

from mdl.cli.main import main
from mdl.storage import webhdfs
from mdl.storage.webhdfs import upload as webhdfs_upload

DIGESTS: dict[str, str] = json.loads(Path(os.environ["MDL_BENCH_DIGESTS"]).read_text())


class _NoHash:
    def update(self, data: object) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


_upload = webhdfs.WebHdfsStage.upload


def _prehashed_upload(self: webhdfs.WebHdfsStage, rel: str, local, on_bytes=None) -> str:  # type: ignore[no-untyped-def]
    _upload(self, rel, local, on_bytes)
    return DIGESTS[os.path.realpath(local)]


webhdfs_upload.hashlib = types.SimpleNamespace(sha256=_NoHash)  # type: ignore[assignment]  # this process only pushes
webhdfs.WebHdfsStage.upload = _prehashed_upload  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv[0] = "mdl"
    sys.exit(main())
