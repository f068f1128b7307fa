"""sha256 on a second thread, so hashing overlaps reading and writing (hashlib releases the GIL)."""

from __future__ import annotations

import hashlib
import queue
import threading

_DEPTH = 8  # chunks in flight: bounded memory (8 x 1 MiB)


class BackgroundSha256:
    """``update`` hands chunks to a hashing thread; ``hexdigest`` waits for it to finish."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._q: queue.Queue[bytes | None] = queue.Queue(_DEPTH)
        self._t = threading.Thread(target=self._run, name="mdl-sha256", daemon=True)
        self._t.start()
        self._digest: str | None = None

    def _run(self) -> None:
        while (chunk := self._q.get()) is not None:
            self._h.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._q.put(bytes(chunk))

    def hexdigest(self) -> str:
        if self._digest is None:
            self._q.put(None)
            self._t.join()
            self._digest = self._h.hexdigest()
        return self._digest
