"""Who and where and when: the host's name, the user, the time as mdl writes it."""

from __future__ import annotations

import functools
import os
from datetime import datetime, timezone


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.cache
def hostname() -> str:
    import socket  # not at import time: start-up of commands that never need it

    return socket.gethostname()


def creator() -> str:
    """``user@host``: who a push or a move is recorded as (without Kerberos)."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{hostname()}"
