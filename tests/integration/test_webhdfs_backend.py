"""The WebHDFS backend against the real local cluster (``python -m mdl.devcluster up``).

Each test works under its own ``/mdl-test/<uuid>`` as the HDFS superuser (the OS user that runs the
cluster), except the permission tests, which act as ``alice``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import struct
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mdl import __version__
from mdl.errors import (DataNodeUnreachable, ExitCode, IntegrityError, InvalidInput, NotFound, PermissionDenied,
                        Unavailable, VersionExists)
from mdl.manifest import MANIFEST_NAME, FileEntry, Manifest, digest_of
from mdl.storage import StagingEntry
from mdl.storage.http import HttpError
from mdl.storage.webhdfs import DataNodeError, FileBody, WebHdfsStorage

from ..helpers import WEBHDFS_URL

pytestmark = pytest.mark.cluster

URL = WEBHDFS_URL
SUPERUSER = "root" if os.getuid() == 0 else None  # the OS user running the cluster is the superuser


@pytest.fixture
def base(cluster) -> str:
    path = f"/mdl-test/{uuid.uuid4().hex[:12]}"
    yield path
    admin = WebHdfsStorage(URL, root="/", user=SUPERUSER)
    try:
        admin.session.delete(path)
    finally:
        admin.close()


def make(base: str, **kw) -> WebHdfsStorage:
    kw.setdefault("user", SUPERUSER)
    kw.setdefault("timeout", 20)
    return WebHdfsStorage(kw.pop("url", URL), root=kw.pop("root", base + "/models"), **kw)


@pytest.fixture
def storage(base):
    s = make(base)
    yield s
    s.close()


def write(tmp_path: Path, rel: str, data: bytes) -> Path:
    p = tmp_path / "src" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def push(storage: WebHdfsStorage, tmp_path: Path, name: str, version: str, files: dict[str, bytes]) -> Manifest:
    """Stage, upload, write the manifest and publish: what ``Client.push`` does."""
    stage = storage.stage(name, version)
    try:
        entries = []
        for rel, data in files.items():
            sha = stage.upload(rel, write(tmp_path / version, rel, data))
            assert sha == hashlib.sha256(data).hexdigest()
            entries.append(FileEntry(rel, len(data), sha))
        m = Manifest(name, version, entries, digest_of(entries), "2026-01-01T00:00:00.000000Z", "t@h",
                     __version__, "directory", "directory")
        stage.write_manifest(m)
        stage.publish()
        return m
    except BaseException:
        stage.abort()
        raise


def pull(storage: WebHdfsStorage, m: Manifest, dest: Path) -> None:
    for e in m.files:
        target = dest / e.path
        target.parent.mkdir(parents=True, exist_ok=True)
        assert storage.download(m.name, m.version, e, target) == e.sha256
        assert target.stat().st_size == e.size


def staged_manifest(storage: WebHdfsStorage, tmp_path: Path, name: str, version: str, content: bytes):
    stage = storage.stage(name, version)
    sha = stage.upload("model.bin", write(tmp_path / secrets_hex(), "model.bin", content))
    e = [FileEntry("model.bin", len(content), sha)]
    m = Manifest(name, version, e, digest_of(e), "2026-01-01T00:00:00.000000Z", "t@h", __version__, "file", "file")
    stage.write_manifest(m)
    return stage, m


def secrets_hex() -> str:
    return uuid.uuid4().hex[:8]


# -- atomic publish ---------------------------------------------------------------------------------


def test_publish_is_rename2_and_refuses_any_existing_destination(storage, tmp_path):
    push(storage, tmp_path, "m", "v1", {"model.bin": b"first"})
    stage, _ = staged_manifest(storage, tmp_path, "m", "v1", b"second")
    with pytest.raises(VersionExists):
        stage.publish()
    # never nested into the existing version, never replaced it
    assert storage.read_bytes("m", "v1", "model.bin") == b"first"
    assert [s["pathSuffix"] for s in storage.session.listing(storage._path("m", "v1"))] == [MANIFEST_NAME, "model.bin"]
    stage.abort()
    # even an empty directory in the way is refused (rename2, not rename)
    storage.session.mkdirs(storage._path("m", "v2"))
    stage, _ = staged_manifest(storage, tmp_path, "m", "v2", b"third")
    with pytest.raises(VersionExists):
        stage.publish()
    stage.abort()
    assert storage.session.listing(storage._path("m", "v2")) == []
    assert storage.list_staging() == []


def test_concurrent_publishes_of_one_version_have_exactly_one_winner(base, tmp_path):
    n = 6
    storages = [make(base) for _ in range(n)]
    stages = [staged_manifest(s, tmp_path, "m", "v1", f"content-{i}".encode()) for i, s in enumerate(storages)]
    barrier = threading.Barrier(n)

    def race(i: int):
        barrier.wait()
        try:
            stages[i][0].publish()
            return i
        except VersionExists:
            stages[i][0].abort()
            return None

    with ThreadPoolExecutor(n) as pool:
        winners = [w for w in pool.map(race, range(n)) if w is not None]
    assert len(winners) == 1
    s = storages[0]
    assert s.list_versions("m") == ["v1"]
    assert s.read_bytes("m", "v1", "model.bin") == f"content-{winners[0]}".encode()
    assert s.read_manifest("m", "v1").digest == stages[winners[0]][1].digest
    assert s.list_staging() == []
    for x in storages:
        x.close()


def _break_rename(storage: WebHdfsStorage, *, perform: bool) -> list[str]:
    """The next RENAME's answer is lost (ReadTimeout); ``perform``: after the NameNode did it."""
    real = storage.session.http.request
    calls: list[str] = []

    def request(method, url, params=None, **kw):
        if params and params.get("op") == "RENAME":
            calls.append("rename")
            if len(calls) == 1:
                if perform:
                    real(method, url, params=params, **kw)
                raise HttpError("no answer in time (simulated)")
        return real(method, url, params=params, **kw)

    storage.session.http.request = request
    return calls


def test_a_lost_answer_to_a_rename_that_happened_is_a_win(storage, tmp_path):
    stage, m = staged_manifest(storage, tmp_path, "m", "v1", b"bytes")
    calls = _break_rename(storage, perform=True)
    stage.publish()  # reads back: staging gone + our manifest bytes at the destination
    assert calls == ["rename"]  # not blindly retried
    assert storage.list_versions("m") == ["v1"] and storage.list_staging() == []
    assert storage.read_manifest("m", "v1").digest == m.digest


def test_a_lost_rename_that_did_not_happen_is_tried_again(storage, tmp_path):
    stage, m = staged_manifest(storage, tmp_path, "m", "v1", b"bytes")
    calls = _break_rename(storage, perform=False)
    stage.publish()
    assert calls == ["rename", "rename"]
    assert storage.read_manifest("m", "v1").digest == m.digest


def test_a_lost_rename_while_another_push_won_is_version_exists(storage, tmp_path):
    push(storage, tmp_path, "m", "v1", {"model.bin": b"winner"})
    stage, _ = staged_manifest(storage, tmp_path, "m", "v1", b"loser")
    _break_rename(storage, perform=False)
    with pytest.raises(VersionExists):
        stage.publish()
    stage.abort()
    assert storage.read_bytes("m", "v1", "model.bin") == b"winner"


def test_retarget_publishes_under_the_new_version(storage, tmp_path):
    push(storage, tmp_path, "m", "v1", {"model.bin": b"a"})
    stage, m = staged_manifest(storage, tmp_path, "m", "v1", b"b")
    with pytest.raises(VersionExists):
        stage.publish()
    stage.retarget("v1-01")
    stage.write_manifest(Manifest("m", "v1-01", m.files, m.digest, m.created, m.creator, m.mdl_version,
                                  m.format, m.kind))
    stage.publish()
    assert storage.list_versions("m") == ["v1", "v1-01"]
    assert storage.read_manifest("m", "v1-01").version == "v1-01"


# -- transfers ----------------------------------------------------------------------------------------


def test_multi_block_file_roundtrip_with_parallel_ranged_download(storage, tmp_path):
    storage.blocksize = 256 * 1024  # small blocks on CREATE: a multi-block file from 1.3 MB
    storage.range_min = 256 * 1024
    storage.max_parts = 4
    big = os.urandom(1_300_001)
    files = {"big.bin": big, "empty": b"", "one": b"x", "dir/exact": os.urandom(4 * 256 * 1024)}
    m = push(storage, tmp_path, "m", "v1", files)
    resp = storage.session.namenode("GET", storage._path("m", "v1", "big.bin"), "GET_BLOCK_LOCATIONS",
                                    offset=0, length=1 << 40)
    blocks = storage.session.json(resp, "", "")["LocatedBlocks"]["locatedBlocks"]
    assert len(blocks) == 5

    spans: list[tuple[str, int, int]] = []
    real = storage.session.reader

    def spy(path, start, end, what=None):
        spans.append((path.rsplit("/", 1)[1], start, end))
        return real(path, start, end, what)

    storage.session.reader = spy
    seen = []
    dest = tmp_path / "out"
    for e in m.files:
        (dest / e.path).parent.mkdir(parents=True, exist_ok=True)
        assert storage.download("m", "v1", e, dest / e.path, seen.append) == e.sha256
        assert (dest / e.path).read_bytes() == files[e.path]
    assert sum(seen) == sum(len(d) for d in files.values())
    big_spans = sorted((s, e) for f, s, e in spans if f == "big.bin")
    assert len(big_spans) == 4
    assert big_spans[0][0] == 0 and big_spans[-1][1] == len(big)
    assert all(a[1] == b[0] for a, b in zip(big_spans, big_spans[1:], strict=False))  # contiguous, no overlap
    assert all(s < len(big) for s, _ in big_spans)  # never an offset at or past the end
    assert len([1 for f, *_ in spans if f == "exact"]) == 4
    assert [(s, e) for f, s, e in spans if f == "empty"] == [(0, 0)]


def test_a_ranged_download_never_truncates_or_follows_its_destination(storage, tmp_path):
    storage.range_min = 256 * 1024
    storage.max_parts = 4
    m = push(storage, tmp_path, "m", "v1", {"big.bin": os.urandom(1_100_000)})
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "link"
    link.symlink_to(victim)
    for dest in (victim, link):
        with pytest.raises(IntegrityError) as err:
            storage.download("m", "v1", m.files[0], dest)
        assert str(dest) in err.value.message
    assert victim.read_bytes() == b"precious" and link.is_symlink()


def test_a_file_that_vanishes_between_upload_attempts_is_not_found(tmp_path):
    p = write(tmp_path, "f.bin", b"abc")
    body = FileBody(p, 3, None)
    assert b"".join(bytes(chunk) for chunk in body) == b"abc" and body.sha256 == hashlib.sha256(b"abc").hexdigest()
    p.unlink()  # before the next attempt sends the file again
    with pytest.raises(NotFound) as err:
        list(body)
    assert "vanished while it was being pushed" in err.value.message
    assert err.value.hint == "push again once the file is complete"


class CuttingProxy:
    """A TCP proxy in front of the DataNodes: the first response body it relays breaks off after ``cut``
    bytes, by a clean close (``eof``) or a reset (``reset``); later connections pass untouched."""

    def __init__(self, cut: int, how: str) -> None:
        self.cut, self.how, self.cuts = cut, how, 0
        self.target: tuple[str, int] | None = None
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def route(self, storage: WebHdfsStorage) -> list[int]:
        """Send every ``OPEN`` of ``storage`` through the proxy; returns the offsets asked for, in order."""
        offsets: list[int] = []
        real_nn, real_location = storage.session.namenode, storage.session.location

        def nn(method, path, op, **kw):
            if op == "OPEN":
                offsets.append(kw["offset"])
            return real_nn(method, path, op, **kw)

        def location(resp, op, path):
            loc = real_location(resp, op, path)
            if op != "OPEN":
                return loc
            scheme, _, rest = loc.partition("://")
            hostport, _, tail = rest.partition("/")
            host, port = hostport.rsplit(":", 1)
            self.target = (host, int(port))
            return f"{scheme}://127.0.0.1:{self.port}/{tail}"

        storage.session.namenode, storage.session.location = nn, location
        return offsets

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        """One GET (the DataNode answers ``connection: close``): the request head up, the answer down."""
        assert self.target is not None
        upstream = socket.create_connection(self.target)
        cut = self.cut if self.cuts == 0 else None
        self.cuts += 1
        head, body = b"", None
        try:
            while b"\r\n\r\n" not in head and (data := client.recv(65536)):
                head += data
            upstream.sendall(head)
            head = b""
            while data := upstream.recv(65536):
                if body is None:  # still in the response head
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    head, _, data = head.partition(b"\r\n\r\n")
                    client.sendall(head + b"\r\n\r\n")
                    body = 0
                if cut is not None and body + len(data) >= cut:
                    client.sendall(data[: cut - body])
                    if self.how == "reset":
                        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                client.sendall(data)
                body += len(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()


@pytest.fixture
def proxy(request):
    p = CuttingProxy(*request.param)
    yield p
    p.close()


CUT = 1024 * 1024 + 12345


@pytest.mark.parametrize("proxy", [(CUT, "eof"), (CUT, "reset")], indirect=True, ids=["eof", "reset"])
def test_a_read_that_breaks_off_resumes_at_its_offset(storage, tmp_path, proxy):
    data = os.urandom(3 * 1024 * 1024 + 17)
    push(storage, tmp_path, "m", "v1", {"f.bin": data})
    offsets = proxy.route(storage)
    with storage.open("m", "v1", "f.bin") as f:
        got = f.read()
    assert got == data
    assert len(offsets) == 2 and offsets[0] == 0
    # resumed where the stream ended (a reset also drops what the client had not read yet)
    assert offsets[1] == CUT if proxy.how == "eof" else offsets[1] <= CUT


@pytest.mark.parametrize("proxy", [(CUT, "eof"), (CUT, "reset")], indirect=True, ids=["eof", "reset"])
def test_a_download_is_one_stream_hashed_as_it_arrives_and_resumes_mid_stream(storage, tmp_path, proxy):
    storage.blocksize = 256 * 1024  # a multi-block file, large enough for ranges if max_parts allowed them
    storage.range_min = 256 * 1024
    data = os.urandom(3 * 1024 * 1024 + 17)
    m = push(storage, tmp_path, "m", "v1", {"f.bin": data})
    offsets = proxy.route(storage)
    seen: list[int] = []
    dest = tmp_path / "out.bin"
    assert storage.max_parts == 1
    assert storage.download("m", "v1", m.files[0], dest, seen.append) == m.files[0].sha256
    assert dest.read_bytes() == data
    assert sum(seen) == len(data)  # every byte reported once, the resumed ones too
    assert len(offsets) == 2 and offsets[0] == 0 and offsets[1] <= CUT  # one stream, resumed once


def test_uploads_send_a_content_length_and_hash_what_was_sent(storage, tmp_path, monkeypatch):
    sizes = {"big.bin": 2 * 1024 * 1024 + 5, "small.bin": 10, "empty": 0}
    sent: list[tuple[str, str | None, str | None]] = []
    # what goes on the wire: the request line and headers of every DataNode PUT
    real_putrequest, real_putheader = http.client.HTTPConnection.putrequest, http.client.HTTPConnection.putheader

    def putrequest(self, method, url, *args, **kw):
        datanode_put = method == "PUT" and "namenoderpcaddress" in url
        self._seen = [url.split("?")[0].rsplit("/", 1)[1], None, None] if datanode_put else None
        if self._seen is not None:
            sent.append(self._seen)
        return real_putrequest(self, method, url, *args, **kw)

    def putheader(self, header, *values):
        seen = getattr(self, "_seen", None)
        if seen is not None and header.lower() in ("content-length", "transfer-encoding"):
            seen[1 if header.lower() == "content-length" else 2] = str(values[0])
        return real_putheader(self, header, *values)

    monkeypatch.setattr(http.client.HTTPConnection, "putrequest", putrequest)
    monkeypatch.setattr(http.client.HTTPConnection, "putheader", putheader)
    files = {rel: os.urandom(n) for rel, n in sizes.items()}
    m = push(storage, tmp_path, "m", "v1", files)  # push() checks every sha256 against the local bytes
    assert sorted(map(tuple, sent)) == sorted([(rel, str(n), None) for rel, n in sizes.items()]
                                  + [(MANIFEST_NAME, str(len(m.to_json())), None)])
    for rel, data in files.items():
        assert storage.read_bytes("m", "v1", rel) == data


def test_a_failed_upload_is_rewritten_whole_and_progress_counts_once(storage, tmp_path):
    data = os.urandom(2 * 1024 * 1024 + 5)
    real = storage.session.datanodes.request
    puts = []

    def dn(method, url, **kw):
        resp = real(method, url, **kw)
        if method == "PUT":
            puts.append(url)
            if len(puts) == 1:  # the DataNode took the bytes but the answer was lost
                raise DataNodeError("127.0.0.1:0", "simulated 500", remote=(500, "IOException", "simulated"))
        return resp

    storage.session.datanodes.request = dn
    stage = storage.stage("m", "v1")
    seen = []
    sha = stage.upload("f.bin", write(tmp_path, "f.bin", data), seen.append)
    assert sha == hashlib.sha256(data).hexdigest()
    assert len(puts) == 2 and sum(seen) == len(data)
    stage.abort()


# -- errors ---------------------------------------------------------------------------------------------


def test_namenode_unreachable_is_unavailable_within_the_timeout(base):
    s = make(base, url="webhdfs://127.0.0.1:1", timeout=3, retries=3)
    t = time.monotonic()
    with pytest.raises(Unavailable) as err:
        s.list_models()
    assert time.monotonic() - t < 3.5
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert "webhdfs://127.0.0.1:1" in err.value.message and "connection refused" in err.value.message
    assert err.value.hint


def test_a_silent_namenode_is_unavailable_within_the_timeout(base):
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)  # accepts connections (backlog) but never answers
    try:
        s = make(base, url=f"webhdfs://127.0.0.1:{srv.getsockname()[1]}", timeout=1.5, retries=5)
        t = time.monotonic()
        with pytest.raises(Unavailable) as err:
            s.stage("m", "v1")
        assert time.monotonic() - t < 1.5 + 1.0
        assert "read timed out" in err.value.message
    finally:
        srv.close()


def test_unresolvable_namenode_is_unavailable(base):
    with pytest.raises(Unavailable) as err:
        make(base, url="webhdfs://namenode.invalid:9870", timeout=3, retries=1).list_versions("m")
    assert "namenode.invalid" in err.value.message and "does not resolve" in err.value.message


def test_ha_skips_a_dead_namenode_and_remembers_the_active_one(base):
    s = make(base, url="webhdfs://127.0.0.1:1,127.0.0.1:19870")
    real = s.session.http.request
    hosts = []
    s.session.http.request = lambda method, url, **kw: hosts.append(url.split("/")[2]) or real(method, url, **kw)
    assert s.list_models() == []
    s.session.mkdirs(s.root)
    assert s.list_models() == []
    assert hosts == ["127.0.0.1:1", "127.0.0.1:19870", "127.0.0.1:19870", "127.0.0.1:19870"]


def test_permission_denied_names_the_path_and_the_user(base, storage, tmp_path):
    push(storage, tmp_path, "m", "v1", {"model.bin": b"root's"})  # <base>/models owned by root, mode 755
    alice = make(base, user="alice")
    with pytest.raises(PermissionDenied) as err:
        alice.stage("m", "v2")
    msg = err.value.message
    assert "'alice'" in msg and f"{base}/models/m" in msg and "\n" not in msg
    assert err.value.hint
    # reading a 755 tree is allowed; a 700 directory is not
    assert alice.read_bytes("m", "v1", "model.bin") == b"root's"
    storage.session.namenode("PUT", storage._path("m"), "SETPERMISSION", permission="700")
    with pytest.raises(PermissionDenied) as err:
        alice.list_versions("m")
    assert "'alice'" in err.value.message and f"{base}/models/m" in err.value.message
    with pytest.raises(PermissionDenied):
        alice.read_bytes("m", "v1", "model.bin")


def test_listing_reading_and_not_found(storage, tmp_path):
    assert storage.list_models() == [] and storage.list_versions("m") == []
    m = push(storage, tmp_path, "m", "v1", {"a.bin": b"a" * 10, "sub/b.txt": b"bee"})
    push(storage, tmp_path, "m", "v2", {"a.bin": b"c"})
    push(storage, tmp_path, "other", "1", {"a.bin": b"d"})
    storage.session.mkdirs(storage._path(".hidden"))
    storage.session.mkdirs(storage._path("m", ".hidden-version"))
    assert storage.list_models() == ["m", "other"]
    assert storage.list_versions("m") == ["v1", "v2"]
    assert storage.read_bytes("m", "v1", "sub/b.txt") == b"bee"
    assert storage.read_manifest("m", "v1").digest == m.digest
    with storage.open("m", "v1", "a.bin") as f:
        assert f.read(3) == b"aaa" and f.read(100) == b"a" * 7 and f.read(5) == b""
    for call in (lambda: storage.read_bytes("m", "v1", "nope"), lambda: storage.open("m", "v9", "a.bin"),
                 lambda: storage.read_bytes("m", "v1", "sub"),
                 lambda: storage.download("m", "v1", FileEntry("nope", 1, "0" * 64), tmp_path / "x")):
        with pytest.raises(NotFound) as err:
            call()
        assert URL in err.value.message and "m/v" in err.value.message
    with pytest.raises(IntegrityError):  # a path read from a manifest is untrusted: never outside the version
        storage.read_bytes("m", "v1", "../v2/a.bin")


def test_many_versions_are_listed_across_pages(storage):
    # the NameNode's LISTSTATUS_BATCH page is 1000 entries (dfs.ls.limit)
    names = [f"v{i:04d}" for i in range(1005)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda v: storage.session.mkdirs(storage._path("m", v)), names))
    assert storage.list_versions("m") == names


def test_staging_is_listed_with_age_and_only_staging_paths_are_removed(storage, tmp_path):
    push(storage, tmp_path, "m", "v1", {"a": b"a"})
    stage = storage.stage("m", "v2")
    stage.upload("x", write(tmp_path, "x", b"partial"))
    found = storage.list_staging()
    assert [(e.name, e.path.rsplit("/", 1)[0]) for e in found] == [("m", storage._path("m", ".mdl-staging"))]
    assert 0 <= found[0].age_seconds < 60
    assert [e.path for e in storage.list_staging("m")] == [e.path for e in found]
    assert storage.list_staging("other") == []
    r = storage.root
    for path in ("/", r, f"{r}/m", f"{r}/m/v1", f"{r}/m/.mdl-staging", f"{r}/m/.mdl-staging/",
                 f"{r}/m/.mdl-staging/x/../../v1", f"{r}/m/.mdl-staging/..", f"{r}/m/.mdl-staging/a/b",
                 f"{r}/.mdl-staging/x", f"{r}/.m/.mdl-staging/x", f"/other{r}/m/.mdl-staging/x",
                 "m/.mdl-staging/x", f"{r}//m/.mdl-staging/x", "lr", "lr/v1"):
        with pytest.raises(InvalidInput):
            storage.remove_staging(StagingEntry("m", path, 1e9))
    assert storage.list_versions("m") == ["v1"] and storage.read_bytes("m", "v1", "a") == b"a"
    storage.remove_staging(found[0])
    assert storage.list_staging() == []
    stage.abort()  # idempotent after removal


# -- DataNodes ------------------------------------------------------------------------------------------


def _redirect_datanodes_to(storage: WebHdfsStorage, hostport: str) -> None:
    """Make every DataNode Location point at ``hostport`` (a DataNode address this host cannot reach)."""
    real = storage.session.location

    def location(resp, op, path):
        loc = real(resp, op, path)
        scheme, _, rest = loc.partition("://")
        return f"{scheme}://{hostport}/{rest.split('/', 1)[1]}"

    storage.session.location = location


@pytest.mark.parametrize("hostport,why", [("127.0.0.1:1", "connection refused"),
                                          ("datanode7.invalid:9864", "does not resolve")])
def test_an_unreachable_datanode_is_named_with_a_hint(storage, tmp_path, hostport, why):
    m = push(storage, tmp_path, "m", "v1", {"a.bin": b"data"})
    storage.retries = 1
    _redirect_datanodes_to(storage, hostport)
    stage = storage.stage("m", "v2")
    with pytest.raises(DataNodeUnreachable) as err:
        stage.upload("a.bin", write(tmp_path, "a.bin", b"data"))
    stage.abort()
    assert hostport in err.value.message and why in err.value.message and err.value.address == hostport
    assert "dfs.datanode.hostname" in err.value.hint and err.value.exit_code == ExitCode.UNAVAILABLE
    with pytest.raises(DataNodeUnreachable) as err:
        storage.download("m", "v1", m.files[0], tmp_path / "out")
    assert hostport in err.value.message
    results = {r.name: r for r in storage.check()}
    assert results["namenode"].ok and not results["write"].ok
    assert hostport in results["write"].detail and "dfs.datanode.hostname" in results["write"].hint


def test_check_passes_and_cleans_up(storage):
    results = storage.check()
    assert [r.name for r in results] == ["namenode", "root", "write", "read", "datanodes", "delete"]
    assert all(r.ok for r in results), results
    assert "3 DataNode" in results[4].detail
    assert storage.session.listing(storage._path(".mdl-staging")) == []
    assert storage.list_models() == []


def test_push_and_pull_survive_a_stopped_datanode(storage, tmp_path):
    from mdl import devcluster

    storage.blocksize = 256 * 1024
    storage.range_min = 256 * 1024
    files = {f"f{i}.bin": os.urandom(300_000 + i) for i in range(6)}
    v1 = push(storage, tmp_path, "m", "v1", files)  # 3 replicas, one on the DataNode about to stop
    failures: list[str] = []
    real = storage.session.datanodes.request

    def dn(method, url, **kw):
        try:
            return real(method, url, **kw)
        except DataNodeError as e:
            failures.append(f"{method} {e}")
            raise

    storage.session.datanodes.request = dn
    port = devcluster.status()["hdfs"]["datanodes"][0]["http_port"]
    devcluster.stop_datanode(0)  # not marked dead: the NameNode still sends clients there
    try:
        pull(storage, v1, tmp_path / "pull1")
        v2 = push(storage, tmp_path, "m", "v2", {f"g{i}.bin": os.urandom(100_000 + i) for i in range(8)})
        pull(storage, v2, tmp_path / "pull2")
    finally:
        devcluster.start_datanode(0)
    # with 1 dead DataNode of 3, some redirects went there and were retried elsewhere
    assert any(f"127.0.0.1:{port}: connection refused" in f for f in failures), failures


def test_excluding_every_replica_falls_back_to_the_namenodes_choice(storage, tmp_path):
    push(storage, tmp_path, "m", "v1", {"a.bin": b"abc" * 1000})
    path = storage._path("m", "v1", "a.bin")
    storage.session.datanodes.learn(path)
    everyone = sorted(set(storage.session.datanodes.known().values()))
    assert len(everyone) == 3
    with storage.session.reader(path, 0, 3000) as r:
        r.exclude = list(everyone)
        assert r.read() == b"abc" * 1000
