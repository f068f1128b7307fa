"""Shared helpers for the mdl benchmarks: backend selection, timed child processes, results.

Standard library only, so the benchmarks run with any Python 3.10+ (they drive the real ``mdl``
binary as a subprocess; they never import mdl).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_MDL = REPO / ".venv" / "bin" / "mdl"

# The local dev cluster (mdl/devcluster) prints these; the env vars win when set.
DISTRIBUTED_DEFAULTS = {
    "MDL_STORAGE_URL": "webhdfs://127.0.0.1:19870",
    "MDL_REGISTRY_URL": "zk://127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183/mdl",
}
# Settings that would leak the user's own setup into an embedded run.
_MDL_ENV_TO_CLEAR = ("MDL_CONFIG", "MDL_CONTEXT", "MDL_STORAGE_URL", "MDL_REGISTRY_URL", "MDL_STORAGE_ROOT",
                     "MDL_OUTPUT", "MDL_PROGRESS", "MDL_DEBUG", "MDL_TRANSFER_JOBS")

MiB = 1024 * 1024


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("embedded", "distributed"), default="embedded",
                   help="embedded: file:// + sqlite:// in a private temp dir; distributed: "
                        "MDL_STORAGE_URL / MDL_REGISTRY_URL (default: the local dev cluster URLs)")
    p.add_argument("--mdl", default=str(DEFAULT_MDL), help="the mdl binary (default: %(default)s)")
    p.add_argument("--workdir", default=None,
                   help="parent of the temp dir holding all bench data (default: the system temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (for debugging)")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/<name>.json")
    p.add_argument("--rss", choices=("auto", "time", "wait4"), default="auto",
                   help="peak RSS via /usr/bin/time -f %%M (exact) or os.wait4 ru_maxrss (never below this "
                        "script's own RSS: exec keeps the replaced image's high-water mark); auto: time if "
                        "present (default: %(default)s)")


TIME_BIN = "/usr/bin/time"
RSS_METHOD = "wait4"


def configure(args: argparse.Namespace) -> str:
    """Apply --rss; return a description of the method for the results."""
    global RSS_METHOD
    has_time = os.access(TIME_BIN, os.X_OK)
    if args.rss == "time" and not has_time:
        raise SystemExit(f"--rss time: {TIME_BIN} is missing")
    RSS_METHOD = "time" if args.rss == "time" or (args.rss == "auto" and has_time) else "wait4"
    if RSS_METHOD == "time":
        return f"{TIME_BIN} -f %M (wall times include its fork+exec, for every contender alike)"
    import resource

    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return f"os.wait4 ru_maxrss (a floor: never below the bench's own {floor / 1024:.1f} MiB)"


def interpreter_of(script: str) -> str:
    """The Python a console script runs with (its shebang), else this one."""
    try:
        with open(script, "rb") as f:
            first = f.readline().decode(errors="replace").strip()
    except OSError:
        return sys.executable
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and Path(parts[0]).name == "env" and len(parts) > 1:
            return shutil.which(parts[-1]) or sys.executable
        if parts and "python" in Path(parts[0]).name:
            return parts[0]
    return sys.executable


@dataclass
class Backend:
    kind: str
    root: Path                # private temp dir: sources, copies, XDG dirs
    env: dict[str, str]       # environment for every mdl child
    storage_dir: Path | None  # local directory of the model tree (embedded only)

    @classmethod
    def create(cls, kind: str, workdir: str | None) -> "Backend":
        root = Path(tempfile.mkdtemp(prefix="mdl-bench-", dir=workdir))
        env = {k: v for k, v in os.environ.items() if k not in _MDL_ENV_TO_CLEAR}
        env.update(XDG_DATA_HOME=str(root / "xdg-data"), XDG_CONFIG_HOME=str(root / "xdg-config"),
                   XDG_CACHE_HOME=str(root / "xdg-cache"), MDL_NO_PROGRESS="1", MDL_PROGRESS="never")
        storage_dir = None
        if kind == "embedded":
            storage_dir = root / "xdg-data" / "mdl" / "models"  # config.py: $XDG_DATA_HOME/mdl/models
        else:
            for k, default in DISTRIBUTED_DEFAULTS.items():
                env[k] = os.environ.get(k) or default
            for k in ("MDL_STORAGE_ROOT", "MDL_STORAGE_USER", "MDL_REGISTRY_DIGEST", "MDL_REGISTRY_DIGEST_FILE"):
                if os.environ.get(k):
                    env[k] = os.environ[k]
        for d in ("xdg-data", "xdg-config", "xdg-cache"):
            (root / d).mkdir()
        return cls(kind, root, env, storage_dir)

    def describe(self) -> dict[str, str]:
        if self.kind == "embedded":
            return {"backend": "embedded", "storage": f"file://{self.storage_dir}",
                    "registry": f"sqlite://{self.root / 'xdg-data' / 'mdl' / 'registry.db'}"}
        return {"backend": "distributed", "storage": self.env["MDL_STORAGE_URL"],
                "registry": self.env["MDL_REGISTRY_URL"]}

    def stored_file(self, name: str, version: str, rel: str) -> Path | None:
        """The local path of a stored file, when the storage is a local directory."""
        return self.storage_dir / name / version / rel if self.storage_dir else None

    def remove_model(self, name: str) -> None:
        """Delete a bench model's versions from storage (the registry keeps no state for unpromoted pushes)."""
        if self.storage_dir is not None:
            shutil.rmtree(self.storage_dir / name, ignore_errors=True)
            return
        url = self.env["MDL_STORAGE_URL"]
        scheme, rest = url.split("://", 1)
        root = self.env.get("MDL_STORAGE_ROOT", "/models").rstrip("/")
        user = self.env.get("MDL_STORAGE_USER") or getpass.getuser()
        http = "https" if scheme == "swebhdfs" else "http"
        path = urllib.parse.quote(f"{root}/{name}")
        for host in rest.split("/", 1)[0].split(","):  # try each NameNode (HA)
            req = urllib.request.Request(
                f"{http}://{host}/webhdfs/v1{path}?op=DELETE&recursive=true&user.name={user}", method="DELETE")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
                return
            except (urllib.error.URLError, OSError):
                continue
        warn(f"could not delete {root}/{name} from {url}; remove it by hand")

    def cleanup(self, keep: bool) -> None:
        if keep:
            warn(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Run:
    wall_s: float
    maxrss_kib: int
    rc: int
    stdout: str
    stderr: str
    cpu_s: float | None = None  # user + system CPU of the child and the descendants it reaped


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 capture: bool = True) -> Run:
    """Run a child; wall time from fork to reap, and its peak RSS from wait4 (KiB on Linux)."""
    out = tempfile.TemporaryFile() if capture else subprocess.DEVNULL
    err = tempfile.TemporaryFile() if capture else subprocess.DEVNULL
    rss_file = None
    cmd = list(cmd)
    if RSS_METHOD == "time":
        fd, rss_file = tempfile.mkstemp(prefix="mdl-bench-rss-")
        os.close(fd)
        cmd = [TIME_BIN, "-f", "%M", "-o", rss_file, *cmd]
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
        maxrss = ru.ru_maxrss
        if rss_file:
            lines = Path(rss_file).read_text().split()
            maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else maxrss
        texts = []
        for f in (out, err):
            if capture:
                f.seek(0)
                texts.append(f.read().decode(errors="replace"))
            else:
                texts.append("")
        return Run(wall, maxrss, p.returncode, texts[0], texts[1], ru.ru_utime + ru.ru_stime)
    finally:
        if rss_file:
            os.unlink(rss_file)
        for f in (out, err):
            if capture:
                f.close()


def check(run: Run, what: str) -> Run:
    if run.rc != 0:
        sys.stderr.write(f"{what} failed (exit {run.rc}):\n{run.stderr}{run.stdout}")
        raise SystemExit(2)
    return run


def read_through(path: Path) -> None:
    """Read a file to the end so its pages are in the page cache (nothing is ever dropped)."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 * MiB)
        while f.readinto(buf):
            pass


def sync() -> None:
    """Flush dirty pages so a contender does not pay for the previous one's writeback."""
    os.sync()


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def warn(msg: str) -> None:
    sys.stderr.write(f"bench: {msg}\n")


def env_info(mdl: str) -> dict[str, object]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    return {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": subprocess.run([interpreter_of(mdl), "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip(),
        "mdl": mdl,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def save(name: str, doc: dict, no_save: bool) -> None:
    if no_save:
        return
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"results: {path}")


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    fmt = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
