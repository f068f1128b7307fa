"""The one error hierarchy of mdl. Each class carries its process exit code.

The library raises these; only the CLI edge turns them into ``error:``/``hint:`` lines.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mdl.registry.base import Replica


class ExitCode(IntEnum):
    """Documented exit codes (README, ``mdl --help``)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    TIMEOUT = 5
    UNAVAILABLE = 6
    CONFIG = 7
    INTEGRITY = 8
    INTERRUPTED = 130


EXIT_CODE_MEANINGS: dict[int, str] = {
    ExitCode.OK: "success, including an idempotent no-op",
    ExitCode.FAILED: "operation failed",
    ExitCode.USAGE: "usage error / invalid input",
    ExitCode.NOT_FOUND: "not found (model, version, alias, path)",
    ExitCode.CONFLICT: "conflict (version exists with other content, lost a compare-and-set)",
    ExitCode.TIMEOUT: "timed out",
    ExitCode.UNAVAILABLE: "backend unavailable (storage or registry unreachable after retries)",
    ExitCode.CONFIG: "configuration invalid",
    ExitCode.INTEGRITY: "integrity failure (checksum or manifest mismatch)",
    ExitCode.INTERRUPTED: "interrupted",
}


class MdlError(Exception):
    """Base of every expected mdl failure: a message, an optional hint, an exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidInput(MdlError):
    exit_code = ExitCode.USAGE


class NotFound(MdlError):
    exit_code = ExitCode.NOT_FOUND


class Conflict(MdlError):
    exit_code = ExitCode.CONFLICT


class Timeout(MdlError):
    exit_code = ExitCode.TIMEOUT


class Unavailable(MdlError):
    exit_code = ExitCode.UNAVAILABLE


class ConfigError(MdlError):
    exit_code = ExitCode.CONFIG


class IntegrityError(MdlError):
    exit_code = ExitCode.INTEGRITY


class PermissionDenied(MdlError):
    exit_code = ExitCode.FAILED


class VersionExists(Conflict):
    """A version id is taken (publish lost the race or the version was pushed before)."""


class CasConflict(Conflict):
    """A compare-and-set lost: someone else moved the pointer first."""


class Escape(IntegrityError):
    """A name led through a symlink, or to something that is not a regular file or directory."""


class DataNodeUnreachable(Unavailable):
    """This client cannot reach a DataNode the NameNode sent it to (exit 6)."""

    def __init__(self, message: str, address: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.address = address


class RolloutFailed(MdlError):
    """A replica reported that it could not load the promoted version (exit 1)."""

    def __init__(self, message: str, hint: str | None = None, replicas: list[Replica] | None = None) -> None:
        super().__init__(message, hint)
        self.replicas = replicas or []


class HookFailed(MdlError):
    """A watcher's --exec, --signal or --webhook failed after a swap (the swap is reverted)."""


class LoadFailed(MdlError):
    """A version could not be loaded (or warmed); the watcher reports it and keeps the old one."""
