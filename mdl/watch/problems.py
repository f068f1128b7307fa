"""Why a replica is not on the version it follows: each stuck state as an MdlError (its message is the
reason, its hint the next command to run), and which failures are worth retrying.

The engine keeps the latest of these as its ``problem``: the ``waiting``/``failed`` events, the
replica record's error, ``/readyz`` and ``watch --once``'s ``error:`` line all say the same thing.
"""

from __future__ import annotations

from mdl.errors import IntegrityError, InvalidInput, LoadFailed, MdlError, NotFound
from mdl.names import DEFAULT_ALIAS

# The hints of transient failures that carry none of their own.
RETRYING = "it is retried with backoff (SIGHUP: now)"
UNREACHABLE = "retrying with backoff; mdl config shows the registry and storage in use"

# Failures that the same version gives again on every attempt: its stored bytes or manifest are bad, or
# this replica cannot load its format. Retrying waits for the pointer to move (or SIGHUP) instead.
PERMANENT: tuple[type[MdlError], ...] = (IntegrityError, LoadFailed, InvalidInput)


def is_permanent(exc: MdlError) -> bool:
    """Whether retrying the same version is pointless (by the error's class, never its text)."""
    return isinstance(exc, PERMANENT)


def model_missing(name: str) -> NotFound:
    return NotFound(f"model {name!r} does not exist", hint="see the models with: mdl list")


def alias_unset(name: str, alias: str) -> NotFound:
    flag = "" if alias == DEFAULT_ALIAS else f" --alias {alias}"
    return NotFound(
        f"alias {alias!r} of {name} is not set", hint=f"promote a version: mdl promote {name} VERSION{flag}"
    )


def version_missing(name: str, exc: NotFound) -> NotFound:
    return NotFound(exc.message, hint=f"see the versions of {name} with: mdl list {name}")
