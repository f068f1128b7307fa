"""Small file helpers: atomic writes, tolerant JSON reads, log tails, the state-dir lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from .errors import DevClusterTimeout


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None if it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last non-blank lines of a log file (from its last 64 KiB)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [ln for ln in data.splitlines() if ln.strip()][-lines:]


def summary_line(log_tail: Sequence[str]) -> str:
    """The most telling line of a log tail: the last error-ish line, else the last line."""
    pick = ""
    for ln in log_tail:
        if re.search(r"(Exception|Error|ERROR|FATAL|Caused by)", ln):
            pick = ln
    if not pick and log_tail:
        pick = log_tail[-1]
    pick = pick.strip()
    return pick if len(pick) <= 240 else pick[:237] + "..."


@contextlib.contextmanager
def flock(path: Path, timeout: float = 600.0) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if missing); DevClusterTimeout after ``timeout``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DevClusterTimeout(f"another mdl.devcluster operation holds {path}") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock
