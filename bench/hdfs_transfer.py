#!/usr/bin/env python3
"""Push and pull over WebHDFS: mdl against curl (the practical limit) and HdfsCLI, on a private dev cluster.

    python bench/hdfs_transfer.py [--file-mib 1024] [--dir-files 64] [--dir-file-mib 16] [--repeat 2]
                                  [--jobs 4] [--warmup 1] [--use-running] [--keep] [--no-save]

Shapes: (a) one ``--file-mib`` file, (b) a directory of ``--dir-files`` x ``--dir-file-mib`` files
(random bytes, written once). Contenders, each a child process timed fork-to-reap under
``/usr/bin/time -f %M`` (peak RSS; with several processes, the largest single one):

* ``mdl``: ``mdl push NAME SRC --version vK -j J`` / ``mdl pull NAME vK -d DEST -j J`` with
  ``MDL_STORAGE_ROOT=/bench/mdl`` and a throwaway sqlite registry (push/pull never touch it);
* ``curl``: upload = ``PUT ?op=CREATE&noredirect=true`` then ``curl -T FILE -X PUT <Location>``;
  download = ``curl -L ?op=OPEN -o OUT`` (one stream per file); a directory through ``xargs -P J``
  (file names known in advance: no listing, no hashing: the practical limit);
* ``hdfscli``: HdfsCLI's own ``hdfscli upload|download -t J`` (``HDFSCLI_CONFIG`` = a private config
  with the alias ``bench``);
* ``mdl-prehashed`` (only with ``--contenders``): the same mdl push, told each file's sha256 in
  advance (``bench/mdl_prehashed.py``), so it sends without hashing; then the ordinary ``mdl pull``,
  which verifies every byte. It measures what mdl's hashing costs the push.

The cluster: unless ``--use-running``, the bench starts its OWN dev cluster
(``python -m mdl.devcluster up`` with ``MDL_DEV_CLUSTER_DIR`` = a temp dir,
``MDL_DEV_CLUSTER_PORT_OFFSET`` = ``--port-offset`` (200: WebHDFS on 127.0.0.1:20070) and
``MDL_DEV_CLUSTER_BLOCKSIZE`` = ``--blocksize`` (128 MiB)) and stops it at the end whatever happens.
It never touches the default cluster (offset 0). ``--use-running`` reuses the cluster named by
``MDL_STORAGE_URL`` (and ``MDL_STORAGE_USER``) instead and deletes only the paths this run wrote.

Fairness: each round runs the contenders in a rotated order; per contender a push, then a pull of
what it pushed; before every timed child the local sources are read through (page cache warm) and
``sync`` flushes earlier writeback; the HDFS target (WebHDFS ``DELETE`` recursive) and the local
copy are deleted between runs, outside the timed windows, then the bench waits ``--settle``
seconds (the DataNodes delete block files asynchronously). ``--warmup`` untimed rounds come first
(the cluster's JVM compiles its hot paths; new page-cache pages are costly the first time).
The machine may be shared: before each timed child the bench waits (``--quiet-wait``, at most 60 s)
for a second with < ``--quiet-cores`` CPUs busy, and reports per run the CPU time burnt by anything
other than the contender's processes and the HDFS JVM ("other CPU": large values mean a noisy run).

Targets: single-file pull mdl/curl >= 0.9; mdl/hdfscli >= 1.0 for push and pull of both shapes;
peak RSS of every mdl process < 100 MiB. Exit code 0 whether or not a target is met.

CPU: per run, the contender's CPU (its process tree), the HDFS JVM's, and "busy": the whole machine's
CPU over wall time x CPUs. Before the rounds the bench times sha256 over each source in-process (the
OpenSSL code mdl uses): the CPU mdl spends on every push and pull that curl and hdfscli do not. When
busy is near 100% the wall time follows the total CPU, and that difference shows in the ratios.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import _benchlib as bl

CONTENDERS = ("mdl", "curl", "hdfscli")
# Not run unless named: mdl whose push is told each sha256 in advance (bench/mdl_prehashed.py).
EXPERIMENTS = ("mdl-prehashed",)
SHAPES = ("file", "dir")
OPS = ("push", "pull")
PULL_VS_CURL_TARGET = 0.9
VS_HDFSCLI_TARGET = 1.0
RSS_TARGET_MIB = 100
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------------------------
# WebHDFS (standard library, outside the timed windows)


class WebHdfs:
    def __init__(self, base: str, user: str) -> None:
        self.base, self.user = base.rstrip("/"), user  # http://host:port

    def call(self, method: str, path: str, op: str, **params: str) -> dict:
        q = urllib.parse.urlencode({"op": op, "user.name": self.user, **params})
        req = urllib.request.Request(f"{self.base}/webhdfs/v1{urllib.parse.quote(path)}?{q}", method=method)
        with _NO_PROXY.open(req, timeout=60) as r:
            body = r.read()
        return json.loads(body) if body else {}

    def delete(self, path: str) -> None:
        try:
            self.call("DELETE", path, "DELETE", recursive="true")
        except (urllib.error.URLError, OSError) as exc:
            bl.warn(f"could not delete {path}: {exc}")

    def server_defaults(self) -> dict:
        try:
            return self.call("GET", "/", "GETSERVERDEFAULTS").get("FsServerDefaults", {})
        except (urllib.error.URLError, OSError, ValueError):
            return {}

    def files_under(self, path: str) -> dict[str, int]:
        """Path -> length of every file at or under ``path`` (recursive listing)."""
        st = self.call("GET", path, "GETFILESTATUS")["FileStatus"]
        if st["type"] == "FILE":
            return {path: st["length"]}
        out: dict[str, int] = {}
        for child in self.call("GET", path, "LISTSTATUS")["FileStatuses"]["FileStatus"]:
            out.update(self.files_under(f"{path.rstrip('/')}/{child['pathSuffix']}"))
        return out


# --------------------------------------------------------------------------------------------
# The cluster


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Cluster:
    """Our own dev cluster (started and stopped by the bench), or one given by the environment."""

    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.own = not args.use_running
        self.py = bl.interpreter_of(args.mdl)
        self.state_dir = root / "dev-cluster"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MDL_")}
        self.env.update(MDL_DEV_CLUSTER_DIR=str(self.state_dir), MDL_DEV_CLUSTER_PORT_OFFSET=str(args.port_offset),
                        MDL_DEV_CLUSTER_BLOCKSIZE=str(args.blocksize))
        self.port_offset = args.port_offset
        self.started = False
        self.up_s: float | None = None
        self.url = self.user = ""

    def _cli(self, *argv: str, timeout: float = 600) -> str:
        r = subprocess.run([self.py, "-m", "mdl.devcluster", *argv], env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise SystemExit(f"bench: `python -m mdl.devcluster {' '.join(argv)}` failed (exit {r.returncode}):\n"
                             f"{r.stderr.strip()}\n{r.stdout.strip()}")
        return r.stdout

    def start(self) -> None:
        if not self.own:
            self.url = os.environ.get("MDL_STORAGE_URL", "")
            if not self.url.startswith("webhdfs://"):
                raise SystemExit("bench: --use-running needs MDL_STORAGE_URL=webhdfs://host:port")
            self.user = os.environ.get("MDL_STORAGE_USER") or getpass.getuser()
            return
        nn_port = 19870 + self.port_offset
        if self.port_offset == 0:
            raise SystemExit("bench: --port-offset 0 is the default cluster's; pick another (e.g. 200)")
        if _listening(nn_port):
            raise SystemExit(f"bench: 127.0.0.1:{nn_port} is already in use; a cluster at --port-offset "
                             f"{self.port_offset} is running? use --use-running or another --port-offset")
        print(f"starting a private dev cluster: state {self.state_dir}, port offset {self.port_offset}, "
              f"blocksize {self.env['MDL_DEV_CLUSTER_BLOCKSIZE']}", flush=True)
        t0 = time.perf_counter()
        self.started = True  # from here on, `down` in the finally
        self._cli("up")
        self.up_s = time.perf_counter() - t0
        env = {}
        for line in self._cli("env").splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                env[k] = shlex.split(v)[0] if v else ""
        self.url, self.user = env.get("MDL_STORAGE_URL", ""), env.get("MDL_STORAGE_USER", "")
        want = f"webhdfs://127.0.0.1:{nn_port}"
        if self.url != want:
            raise SystemExit(f"bench: the private cluster says MDL_STORAGE_URL={self.url!r}, expected {want!r}")
        print(f"  up in {self.up_s:.1f}s: {self.url} (user {self.user})", flush=True)

    def stop(self) -> None:
        if self.own and self.started:
            try:
                self._cli("down", timeout=180)
                print("private dev cluster stopped", flush=True)
            except (SystemExit, subprocess.TimeoutExpired) as exc:
                bl.warn(f"stopping the private cluster failed: {exc}; run: MDL_DEV_CLUSTER_DIR={self.state_dir} "
                        f"MDL_DEV_CLUSTER_PORT_OFFSET={self.port_offset} {self.py} -m mdl.devcluster down")

    @property
    def http(self) -> str:
        hostport = self.url.split("://", 1)[1].split("/", 1)[0].split(",")[0]
        return ("https://" if self.url.startswith("swebhdfs") else "http://") + hostport

    def jvm_pid(self) -> int | None:
        """The HDFS JVM of our own cluster (for its CPU time), else None."""
        if not self.own:
            return None
        try:
            return int(json.loads((self.state_dir / "run" / "hdfs.pid.json").read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def system_busy_s() -> float:
    """CPU seconds spent busy by the whole machine since boot (all CPUs; /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, busy_cores: float) -> float:
    """Wait (at most ``max_wait`` s) for a 1 s window in which the machine uses < ``busy_cores`` CPUs.

    Returns the busy cores of the last window: other sessions may share this machine.
    """
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = system_busy_s(), time.monotonic()
        time.sleep(1.0)
        busy = (system_busy_s() - b0) / (time.monotonic() - t0)
        if busy < busy_cores or time.monotonic() >= deadline:
            return busy


def proc_cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Data


def make_file(path: Path, size_mib: int) -> None:
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(bl.MiB))


def files_of(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]


def tree_size(path: Path) -> tuple[int, int]:
    fs = files_of(path) if path.exists() else []
    return len(fs), sum(p.stat().st_size for p in fs)


def sha256_of(srcs: dict[str, Path]) -> tuple[dict[str, str], dict[str, float]]:
    """Each source file's sha256 (by real path), and the CPU seconds hashing each shape took."""
    digests, cpu = {}, {}
    for shape, src in srcs.items():
        t0 = time.thread_time()
        for p in files_of(src):
            h = hashlib.sha256()
            with open(p, "rb", buffering=0) as f:
                while chunk := f.read(bl.MiB):
                    h.update(chunk)
            digests[os.path.realpath(p)] = h.hexdigest()
        cpu[shape] = time.thread_time() - t0
    return digests, cpu


def client_cpu_diff(results: dict[str, dict], shape: str, op: str) -> float | None:
    cpus = [[c for c in results.get(f"{shape}/{op}/{who}", {}).get("client_cpu_s", []) if c is not None]
            for who in ("mdl", "hdfscli")]
    return bl.median(cpus[0]) - bl.median(cpus[1]) if all(cpus) else None


# --------------------------------------------------------------------------------------------
# Contenders: each returns the argv of one timed child


CURL_UP = r"""# $1 local file, $2 HDFS path: CREATE on the NameNode (noredirect), then PUT the bytes to the DataNode.
loc=$(curl -sS -f -X PUT "$NN/webhdfs/v1$2?op=CREATE&user.name=$HU&overwrite=true&noredirect=true" \
      | sed -n 's/.*"Location" *: *"\([^"]*\)".*/\1/p')
[ -n "$loc" ] || { echo "no DataNode Location for $2" >&2; exit 1; }
exec curl -sS -f -H 'Expect:' -T "$1" -X PUT "$loc" -o /dev/null
"""
CURL_DOWN = r"""# $1 HDFS path, $2 local file: OPEN, following the redirect to a DataNode.
exec curl -sS -f -L "$NN/webhdfs/v1$1?op=OPEN&user.name=$HU" -o "$2"
"""


def curl_cmd(script: Path, pairs: list[tuple[str, str]], jobs: int) -> list[str]:
    """One ``sh script A B`` for a single pair, else ``xargs -P jobs`` over all pairs."""
    if len(pairs) == 1:
        return ["sh", str(script), *pairs[0]]
    lines = "\n".join(f"{a}\n{b}" for a, b in pairs)  # bench paths hold no whitespace
    return ["sh", "-c", f'printf "%s\\n" "$1" | xargs -P {jobs} -n 2 sh "$0"', str(script), lines]


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file-mib", type=int, default=1024, help="shape (a): one file of this size (default: %(default)s)")
    ap.add_argument("--dir-files", type=int, default=64, help="shape (b): number of files (default: %(default)s)")
    ap.add_argument("--dir-file-mib", type=int, default=16, help="shape (b): MiB per file (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per measurement; median (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed full rounds first (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=4,
                    help="parallelism: mdl -j, parallel curls, hdfscli -t (default: %(default)s)")
    ap.add_argument("--shapes", default="file,dir", help="comma-separated subset of file,dir (default: %(default)s)")
    ap.add_argument("--contenders", default=",".join(CONTENDERS),
                    help=f"comma-separated subset of {','.join(CONTENDERS + EXPERIMENTS)} (default: %(default)s)")
    ap.add_argument("--use-running", action="store_true",
                    help="use the cluster in MDL_STORAGE_URL / MDL_STORAGE_USER instead of starting one")
    ap.add_argument("--port-offset", type=int, default=200,
                    help="MDL_DEV_CLUSTER_PORT_OFFSET of the private cluster (default: %(default)s)")
    ap.add_argument("--blocksize", type=int, default=128 * bl.MiB,
                    help="MDL_DEV_CLUSTER_BLOCKSIZE of the private cluster (default: %(default)s)")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds to wait after each cleanup (block deletion on the DataNodes) (default: %(default)s)")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="before each timed child, wait up to this many seconds for the machine to be quiet "
                         "(other sessions may share it); 0: never wait (default: %(default)s)")
    ap.add_argument("--quiet-cores", type=float, default=0.3,
                    help="'quiet': less than this many CPUs busy over 1 s (default: %(default)s)")
    ap.add_argument("--hdfscli", default=str(bl.DEFAULT_MDL.parent / "hdfscli"), help="(default: %(default)s)")
    ap.add_argument("--mdl", default=str(bl.DEFAULT_MDL), help="the mdl binary (default: %(default)s)")
    ap.add_argument("--workdir", default=None, help="parent of the temp dir (sources, copies, the private cluster)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (the cluster is stopped regardless)")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/hdfs_transfer.json")
    ap.add_argument("--rss", choices=("auto", "time", "wait4"), default="auto",
                    help="peak RSS via /usr/bin/time -f %%M or os.wait4 (default: %(default)s)")
    args = ap.parse_args()
    args.rss_method = bl.configure(args)
    args.shape_list = [s for s in args.shapes.split(",") if s]
    args.contender_list = [c for c in args.contenders.split(",") if c]
    if not set(args.shape_list) <= set(SHAPES) or not set(args.contender_list) <= set(CONTENDERS + EXPERIMENTS):
        ap.error(f"--shapes takes {','.join(SHAPES)}; --contenders takes {','.join(CONTENDERS + EXPERIMENTS)}")
    if min(args.file_mib, args.dir_files, args.dir_file_mib, args.repeat, args.jobs) < 1 or args.warmup < 0:
        ap.error("sizes, --repeat and --jobs must be >= 1, --warmup >= 0")
    for tool in (args.mdl, args.hdfscli, "/usr/bin/curl"):
        if not (os.access(tool, os.X_OK) or shutil.which(tool)):
            ap.error(f"{tool} is not executable")

    be = bl.Backend.create("distributed", args.workdir)
    cluster = Cluster(args, be.root)
    try:
        cluster.start()
        return bench(args, be, cluster)
    finally:
        cluster.stop()
        be.cleanup(args.keep)


def bench(args: argparse.Namespace, be: bl.Backend, cluster: Cluster) -> int:
    tag = f"hb{os.getpid()}"
    nn, user, jobs = cluster.http, cluster.user, args.jobs
    hdfs = WebHdfs(nn, user)
    defaults = hdfs.server_defaults()
    load_start = os.getloadavg()

    env = be.env
    env.update(MDL_STORAGE_URL=cluster.url, MDL_STORAGE_USER=user, MDL_STORAGE_ROOT="/bench/mdl",
               MDL_REGISTRY_URL=f"sqlite:///{be.root / 'r.db'}")
    cfg = be.root / "hdfscli.cfg"
    cfg.write_text(f"[global]\ndefault.alias = bench\n\n[bench.alias]\nurl = {nn}\nuser = {user}\n\n"
                   f"[hdfscli.command]\nlog.path = {be.root / 'hdfscli.log'}\n")
    plain_env = {k: v for k, v in env.items() if not k.startswith("MDL_")}
    plain_env.update(NN=nn, HU=user, HDFSCLI_CONFIG=str(cfg))
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        plain_env.pop(k, None)
        env.pop(k, None)

    sizes = {"file": args.file_mib, "dir": args.dir_files * args.dir_file_mib}
    srcs: dict[str, Path] = {}
    if "file" in args.shape_list:
        srcs["file"] = be.root / "src" / "model.bin"
        srcs["file"].parent.mkdir(parents=True)
        make_file(srcs["file"], args.file_mib)
    if "dir" in args.shape_list:
        srcs["dir"] = be.root / "srcdir" / "model"
        srcs["dir"].mkdir(parents=True)
        for i in range(args.dir_files):
            make_file(srcs["dir"] / f"part-{i:03d}.bin", args.dir_file_mib)
    bl.sync()
    digests, sha_cpu = sha256_of(srcs)
    digests_file = be.root / "digests.json"
    digests_file.write_text(json.dumps(digests))
    pre_cmd = [bl.interpreter_of(args.mdl), str(Path(__file__).resolve().parent / "mdl_prehashed.py")]
    pre_env = {**env, "MDL_BENCH_DIGESTS": str(digests_file)}
    rels = {s: [p.relative_to(srcs[s]).as_posix() for p in files_of(srcs[s])] if s == "dir" else [srcs[s].name]
            for s in srcs}
    print(f"hdfs transfer bench: {cluster.url} (user {user}, blocksize {defaults.get('blockSize', '?')}, "
          f"replication {defaults.get('replication', '?')}), -j {jobs}, {args.repeat} timed + {args.warmup} warm-up "
          f"round(s), shapes: " + ", ".join(f"{s} {sizes[s]} MiB" + (f" ({args.dir_files} x {args.dir_file_mib} MiB)"
                                                                   if s == "dir" else "") for s in srcs)
          + f"; load average {load_start[0]:.1f}", flush=True)
    if load_start[0] > (os.cpu_count() or 1):
        bl.warn(f"load average {load_start[0]:.1f} > {os.cpu_count()} CPUs: other work is running, expect noise")

    pull_root = be.root / "pull"
    pull_root.mkdir()
    curl_up, curl_down = be.root / "curl-up.sh", be.root / "curl-down.sh"
    curl_up.write_text(CURL_UP)
    curl_down.write_text(CURL_DOWN)
    jvm = cluster.jvm_pid()

    def warm(shape: str) -> None:
        bl.sync()
        for p in files_of(srcs[shape]):
            bl.read_through(p)

    def timed(cmd: list[str], cenv: dict[str, str], what: str) -> tuple[bl.Run, dict]:
        before = wait_quiet(args.quiet_wait, args.quiet_cores) if args.quiet_wait > 0 else None
        c0, s0 = proc_cpu_s(jvm), system_busy_s()
        r = bl.check(bl.run_measured(cmd, cenv), what)
        c1, s1 = proc_cpu_s(jvm), system_busy_s()
        jvm_cpu = c1 - c0 if c0 is not None and c1 is not None else None
        # CPU burnt by anything else during the run (other sessions, ZooKeeper, the kernel's writeback...).
        other = (s1 - s0) - (r.cpu_s or 0) - (jvm_cpu or 0)
        busy = (s1 - s0) / (r.wall_s * (os.cpu_count() or 1))
        return r, {"jvm_cpu_s": jvm_cpu, "other_cpu_s": other, "busy": busy, "busy_cores_before": before}

    def one(who: str, shape: str, run_id: str) -> dict[str, tuple[bl.Run, float | None]]:
        src, name, out = srcs[shape], f"{tag}-{shape}-{run_id}", {}
        dest = pull_root / f"{who}-{name}"
        single = shape == "file"
        if who.startswith("mdl"):  # mdl or mdl-prehashed
            pre = who == "mdl-prehashed"
            name += "-pre" if pre else ""
            version = f"v{run_id}"
            remote = f"/bench/mdl/{name}"
            warm(shape)
            out["push"] = timed([*(pre_cmd if pre else [args.mdl]), "push", name, str(src), "--version", version,
                                 "-j", str(jobs), "--no-progress", "-o", "json"], pre_env if pre else env, f"{who} push")
            bl.sync()
            out["pull"] = timed([args.mdl, "pull", name, version, "-d", str(dest), "-j", str(jobs),
                                 "--no-progress", "-o", "json"], env, "mdl pull")
            got = dest
        elif who == "curl":
            remote = f"/bench/curl/{name}"
            target = f"{remote}/{src.name}"
            pairs = [(str(p), f"{target}/{r}" if not single else target) for p, r in zip(files_of(src), rels[shape])]
            warm(shape)
            out["push"] = timed(curl_cmd(curl_up, pairs, jobs), plain_env, "curl push")
            bl.sync()
            local = dest / src.name  # as mdl and hdfscli lay it out: DEST/model.bin, DEST/model/part-*
            (dest if single else local).mkdir(parents=True)
            pairs = [(target, str(local))] if single else [(f"{target}/{r}", str(local / r)) for r in rels[shape]]
            out["pull"] = timed(curl_cmd(curl_down, pairs, jobs), plain_env, "curl pull")
            got = dest
        else:
            remote = f"/bench/hdfscli/{name}"
            target = f"{remote}/{src.name}"
            warm(shape)
            out["push"] = timed([args.hdfscli, "upload", "-s", "-a", "bench", "-t", str(jobs), "-f", str(src), target],
                                plain_env, "hdfscli upload")
            bl.sync()
            dest.mkdir()
            out["pull"] = timed([args.hdfscli, "download", "-s", "-a", "bench", "-t", str(jobs), "-f", target,
                                 str(dest / src.name)], plain_env, "hdfscli download")
            got = dest
        # Checks and cleanup, outside the timed windows.
        n, total = tree_size(got)
        want_n = len(rels[shape]) + (1 if who.startswith("mdl") else 0)  # mdl also writes .mdl-manifest.json
        stored = sum(n for p, n in hdfs.files_under(remote).items() if not p.rsplit("/", 1)[1].startswith(".mdl-"))
        if n != want_n or total < sizes[shape] * bl.MiB or stored != sizes[shape] * bl.MiB:
            raise SystemExit(f"bench: {who} {shape}: pulled {n} file(s) / {total} bytes, stored {stored} bytes; "
                             f"expected {want_n} file(s), {sizes[shape] * bl.MiB} bytes")
        shutil.rmtree(dest, ignore_errors=True)
        hdfs.delete(remote)
        bl.sync()
        time.sleep(args.settle)
        return out

    runs: dict[str, list[tuple[bl.Run, dict]]] = {}
    for i in range(-args.warmup, args.repeat):
        for shape in args.shape_list:
            k = i % len(args.contender_list)
            order = args.contender_list[k:] + args.contender_list[:k]
            times = []
            for who in order:
                res = one(who, shape, f"{i + args.warmup}")
                for op in OPS:
                    if i >= 0:
                        runs.setdefault(f"{shape}/{op}/{who}", []).append(res[op])
                    times.append(f"{op}/{who} {res[op][0].wall_s:.2f}s")
            label = f"warm-up {i + args.warmup + 1}/{args.warmup}" if i < 0 else f"repeat {i + 1}/{args.repeat}"
            print(f"  {label} {shape}: " + ", ".join(times), flush=True)

    results: dict[str, dict] = {}
    for shape in args.shape_list:
        for op in OPS:
            for who in args.contender_list:
                key = f"{shape}/{op}/{who}"
                rs = runs[key]
                walls = [r.wall_s for r, _ in rs]
                med = bl.median(walls)
                jvm_cpu = [m["jvm_cpu_s"] for _, m in rs if m["jvm_cpu_s"] is not None]
                results[key] = {
                    "wall_s": walls, "median_s": med, "min_s": min(walls), "mib": sizes[shape],
                    "mib_per_s": sizes[shape] / med, "maxrss_kib": [r.maxrss_kib for r, _ in rs],
                    "peak_rss_mib": max(r.maxrss_kib for r, _ in rs) / 1024,
                    "client_cpu_s": [r.cpu_s for r, _ in rs], "cluster_jvm_cpu_s": jvm_cpu or None,
                    "other_cpu_s": [m["other_cpu_s"] for _, m in rs], "busy": [m["busy"] for _, m in rs],
                    "busy_cores_before": [m["busy_cores_before"] for _, m in rs],
                }
    for key, r in results.items():
        shape, op, who = key.split("/")
        for base in ("curl", "hdfscli"):
            b = results.get(f"{shape}/{op}/{base}")
            if b and who != base:
                r[f"x_{base}"] = r["mib_per_s"] / b["mib_per_s"]

    load_end = os.getloadavg()
    rows = []
    for key, r in results.items():
        cpu = bl.median([c for c in r["client_cpu_s"] if c is not None]) if any(r["client_cpu_s"]) else None
        jcpu = bl.median(r["cluster_jvm_cpu_s"]) if r["cluster_jvm_cpu_s"] else None
        rows.append([key, f"{r['median_s']:.2f}", f"{r['min_s']:.2f}", f"{r['mib_per_s']:.0f}",
                     f"{cpu:.2f}" if cpu is not None else "-", f"{jcpu:.2f}" if jcpu is not None else "-",
                     f"{max(r['other_cpu_s']):.1f}", f"{bl.median(r['busy']):.0%}",
                     f"{r['peak_rss_mib']:.1f}", f"{r['x_curl']:.2f}" if "x_curl" in r else "",
                     f"{r['x_hdfscli']:.2f}" if "x_hdfscli" in r else ""])
    print(f"\npeak RSS via {args.rss_method}; client CPU = user+sys of the child tree; "
          f"cluster CPU = the HDFS JVM's (NameNode + 3 DataNodes) during the run; "
          f"other CPU = everything else on the machine during the run (other sessions: noise)")
    print(bl.table(["shape/op/contender", "median s", "best s", "MiB/s", "client CPU s", "cluster CPU s",
                    "other CPU s (max)", "busy", "peak RSS MiB", "x curl", "x hdfscli"], rows))
    print(f"(load average {load_start[0]:.1f} at start, {load_end[0]:.1f} at end, {os.cpu_count()} CPUs)")
    for shape in args.shape_list:
        print(f"sha256 of the {shape} source here: {sha_cpu[shape]:.2f} s CPU (mdl hashes every byte it pushes "
              f"or pulls; curl and hdfscli do not)" + "".join(
                  f"; mdl {op} client CPU - hdfscli's: {cpu_diff:+.2f} s" for op in OPS
                  if (cpu_diff := client_cpu_diff(results, shape, op)) is not None))

    targets = []

    def target(text: str, ok: bool, **value: float) -> None:
        targets.append({"target": text, **{k: round(v, 3) for k, v in value.items()}, "pass": ok})
        print(f"{bl.verdict(ok)}  {text}  (measured {', '.join(f'{v:.2f}' for v in value.values())})")

    print()
    if "file" in args.shape_list and {"mdl", "curl"} <= set(args.contender_list):
        x = results["file/pull/mdl"]["x_curl"]
        target(f"single-file pull: mdl / curl throughput >= {PULL_VS_CURL_TARGET}", x >= PULL_VS_CURL_TARGET, ratio=x)
    if {"mdl", "hdfscli"} <= set(args.contender_list):
        for shape in args.shape_list:
            for op in OPS:
                x = results[f"{shape}/{op}/mdl"]["x_hdfscli"]
                target(f"{shape} {op}: mdl / hdfscli throughput >= {VS_HDFSCLI_TARGET}", x >= VS_HDFSCLI_TARGET,
                       ratio=x)
    if "mdl" in args.contender_list:
        peak = max(r["peak_rss_mib"] for k, r in results.items() if k.endswith("/mdl"))
        target(f"mdl peak RSS < {RSS_TARGET_MIB} MiB (every push and pull)", peak < RSS_TARGET_MIB, value_mib=peak)

    bl.save("hdfs_transfer", {
        "bench": "hdfs_transfer", "env": bl.env_info(args.mdl),
        "cluster": {"storage_url": cluster.url, "user": user, "started_by_bench": cluster.own,
                    "port_offset": args.port_offset if cluster.own else None, "up_s": cluster.up_s,
                    "server_defaults": defaults},
        "rss_method": args.rss_method,
        "params": {"file_mib": args.file_mib, "dir_files": args.dir_files, "dir_file_mib": args.dir_file_mib,
                   "repeat": args.repeat, "warmup_rounds": args.warmup, "jobs": jobs, "settle_s": args.settle,
                   "quiet_wait_s": args.quiet_wait, "quiet_cores": args.quiet_cores,
                   "shapes": args.shape_list, "contenders": args.contender_list,
                   "mdl": f"mdl push NAME SRC --version vK -j {jobs} / mdl pull NAME vK -d DEST -j {jobs}",
                   "curl": f"CREATE noredirect + curl -T, curl -L OPEN; directories via xargs -P {jobs}",
                   "hdfscli": f"hdfscli upload|download -t {jobs} -f",
                   "cache": "not dropped; sources read through and sync before each timed push"},
        "load_average": {"start": load_start, "end": load_end}, "sha256_cpu_s": sha_cpu,
        "results": results, "targets": targets,
    }, args.no_save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
