"""The dev cluster's exceptions; each carries its CLI exit code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class DevClusterError(Exception):
    """An expected failure of a dev-cluster operation; ``str(e)`` is one line for the user.

    ``log_path`` names the most relevant log file (if any) and ``log_tail`` holds its last lines.
    ``exit_code`` follows the project's exit-code table (1 failed, 5 timed out).
    """

    exit_code = 1

    def __init__(self, message: str, *, log_path: Path | None = None, log_tail: Sequence[str] = ()):
        super().__init__(message)
        self.log_path = log_path
        self.log_tail = list(log_tail)


class DevClusterUsageError(DevClusterError):
    """Invalid input, e.g. a DataNode index or ZooKeeper id out of range."""

    exit_code = 2


class DevClusterTimeout(DevClusterError):
    """A wait for readiness (or for a fault to take effect) ran out of time."""

    exit_code = 5
