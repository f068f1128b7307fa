"""The embedded registry held locked by another process: every step that needs to write ends in
Unavailable (exit 6, "registry ... is locked/busy" and a hint) after the registry timeout, never an
unexpected sqlite3.OperationalError; reads go on (WAL)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from mdl.errors import Unavailable
from mdl.registry.sqlite import SqliteRegistry

HOLD = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def locked(tmp_path):
    """A registry with one pointer, then write-locked by another process (while the fixture lives)."""
    path = tmp_path / "registry.db"
    reg = SqliteRegistry(f"sqlite://{path}", timeout=0.3)
    reg.cas("lr", "latest", "v1", -1, "me", "promote")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline() == "locked\n"
    yield reg
    holder.stdin.close()
    holder.wait(10)
    reg.close()


def _busy(exc: Unavailable, path) -> None:
    assert exc.exit_code == 6
    assert exc.message.startswith(f"registry {str(path)!r} is locked/busy") and exc.hint
    assert "registry.timeout" in exc.hint


def test_a_download_slot_of_a_locked_registry_is_unavailable(locked):
    started = time.monotonic()
    with pytest.raises(Unavailable) as err:
        with locked.download_slot("lr", 1):
            pass
    _busy(err.value, locked.path)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("step", ["cas", "register", "put_manifest"])
def test_writes_to_a_locked_registry_are_unavailable(locked, step):
    with pytest.raises(Unavailable) as err:
        if step == "cas":
            locked.cas("lr", "latest", "v2", 0, "me", "promote")
        elif step == "register":
            locked.register_replica("lr", "r1", {"state": "ready"})
        else:
            locked.put_manifest("lr", "v1", b"{}")
    _busy(err.value, locked.path)
    assert locked.get("lr").aliases == {"latest": "v1"}  # readers are not blocked (WAL)


def test_the_slot_is_free_again_once_the_lock_is_gone(tmp_path):
    path = tmp_path / "registry.db"
    reg = SqliteRegistry(f"sqlite://{path}", timeout=5)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        timer = threading.Timer(0.3, lambda: other.execute("ROLLBACK"))
        timer.start()
        with reg.download_slot("lr", 1):  # waits for the lock (up to the timeout), then takes the slot
            rows = sqlite3.connect(path).execute("SELECT COUNT(*) FROM slots").fetchone()
            assert rows == (1,)
        timer.join()
    finally:
        other.close()
        reg.close()
