"""Bookkeeping of the cluster's processes: detached spawning, pid files and command-line markers.

Processes are started in their own session (they outlive the caller) and are recognised by a
``-Dmdl.devcluster=<role>@<state dir>`` marker on their command line: only processes whose
command line carries this marker are ever signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import DevClusterError
from .files import now_iso, read_json, write_atomic
from .layout import Layout

MARKER_PROP = "-Dmdl.devcluster="


def proc_info(pid: int) -> tuple[str, str, str] | None:
    """(state, start_time, cmdline) of a live process, or None. Zombies count as gone."""
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            return None
        rest = stat[stat.rfind(")") + 2 :].split()
        state, start_time = rest[0], rest[19]
        if state in ("Z", "X"):
            return None
        return state, start_time, cmdline
    try:  # no /proc (macOS): ask ps
        out = subprocess.run(
            ["ps", "-o", "stat=,lstart=,command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out or out.startswith("Z"):
        return None
    parts = out.split(None, 6)
    return parts[0], " ".join(parts[1:6]), parts[6] if len(parts) > 6 else ""


class Processes:
    """The marked processes of one state directory, by role (``hdfs``, ``zk1`` ...)."""

    def __init__(self, layout: Layout):
        self._layout = layout

    def marker(self, role: str) -> str:
        """The JVM system property that tags ``role``'s command line."""
        return f"{MARKER_PROP}{role}@{self._layout.root}"

    def record(self, role: str) -> dict | None:
        """The pid file of ``role`` (pid, start time, marker and what :meth:`spawn` was given)."""
        return read_json(self._layout.pidfile(role))

    def pid(self, role: str) -> int | None:
        """The pid of a live process of ours for ``role`` (verified by its command line)."""
        rec = self.record(role)
        if not rec or not isinstance(rec.get("pid"), int):
            return None
        pid, start_time = rec["pid"], rec.get("start_time")
        info = proc_info(pid)
        if info is None:
            return None
        _state, st, cmdline = info
        if self.marker(role) + " " not in cmdline + " ":
            return None
        if start_time and st and start_time != st:
            return None
        return pid

    def is_ours(self, role: str, pid: int) -> bool:
        """Whether ``pid`` is alive and carries ``role``'s marker."""
        info = proc_info(pid)
        return info is not None and (self.marker(role) + " ") in info[2] + " "

    def scan_marked(self) -> dict[str, list[int]]:
        """All processes whose command line carries this state dir's marker (Linux only)."""
        found: dict[str, list[int]] = {}
        proc = Path("/proc")
        if not proc.is_dir():
            return found
        suffix = f"@{self._layout.root}"
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for a in args:
                s = a.decode("utf-8", "replace")
                if s.startswith(MARKER_PROP) and s.endswith(suffix):
                    role = s[len(MARKER_PROP) : -len(suffix)]
                    if proc_info(int(entry.name)) is not None:
                        found.setdefault(role, []).append(int(entry.name))
                    break
        return found

    def spawn(self, role: str, argv: list[str], env: dict[str, str], cwd: Path, **extra: Any) -> int:
        """Start ``argv`` detached (own session, reparented to init), logging to logs/<role>.log."""
        log = self._layout.log(role)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as f:
            f.write(f"\n===== {now_iso()} mdl.devcluster starting {role}\n$ {shlex.join(argv)}\n".encode())
        # sh backgrounds the JVM and exits at once: the JVM is not our child (no zombies,
        # nothing to reap) and lives in the new session created for sh.
        script = '"$@" </dev/null >>"$MDL_DEVCLUSTER_LOG" 2>&1 & echo $!'
        env = dict(env, MDL_DEVCLUSTER_LOG=str(log))
        out = subprocess.run(
            ["/bin/sh", "-c", script, "sh", *argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            start_new_session=True,
            timeout=30,
        )
        try:
            pid = int(out.stdout.decode().strip())
        except ValueError:
            raise DevClusterError(f"failed to start {role}: {out.stderr.decode().strip()[:200]}") from None
        info = proc_info(pid)
        rec = {
            "pid": pid,
            "start_time": info[1] if info else None,
            "marker": self.marker(role),
            "started_at": now_iso(),
            **extra,
        }
        write_atomic(self._layout.pidfile(role), json.dumps(rec), mode=0o600)
        return pid

    def terminate(self, role: str, pid: int, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; only if the pid is still ours."""
        if not self.is_ours(role, pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not self.is_ours(role, pid):
                return
            time.sleep(0.1)
        if self.is_ours(role, pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.is_ours(role, pid):
                time.sleep(0.1)
            if self.is_ours(role, pid):
                raise DevClusterError(f"{role} (pid {pid}) survived SIGKILL")

    def terminate_all(self, targets: Mapping[str, Iterable[int]]) -> list[tuple[str, int]]:
        """Terminate every (role, pid) of ``targets``: SIGTERM to all first so they stop in
        parallel, then :meth:`terminate` each. Returns them in the order handled (by role)."""
        handled = [(role, pid) for role in sorted(targets) for pid in targets[role]]
        for role, pid in handled:
            with contextlib.suppress(ProcessLookupError):
                if self.is_ours(role, pid):
                    os.kill(pid, signal.SIGTERM)
        for role, pid in handled:
            self.terminate(role, pid)
        return handled
