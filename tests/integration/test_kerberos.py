"""mdl against a real Kerberized HDFS (``python -m mdl.devcluster up --secure``: MiniKdc + a secure
MiniDFSCluster). The real ``mdl`` binary with a kinit'ed ticket cache and with a keytab and no ticket
cache at all, the principal recorded as the creator, the errors without a ticket or with a wrong
principal, and watchers that outlive their tickets. No mocks."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from functools import partial
from pathlib import Path

import pytest

from mdl.manifest import MANIFEST_NAME
from mdl.storage.kerberos import Kerberos

from ..helpers import MDL, ZK_HOSTS, current, drop_zk_tree, make_dir, until
from .conftest import kerberos_env

pytestmark = pytest.mark.cluster

FILES = {
    "weights.bin": os.urandom(3 * 1024 * 1024 + 17),
    "config.json": b'{"lr": 0.1}',
    **{f"shard-{i:02d}.bin": os.urandom(1000 + i) for i in range(24)},  # 8 transfer threads asking for tokens
}
#: the ticket lifetime a watcher asks for in the expiry test (krb5.conf ``ticket_lifetime``)
SHORT_LIFETIME = 8


@pytest.fixture
def env(secure_cluster, cluster, tmp_path):
    """A kinit'ed private ticket cache, a fresh tree on the secure cluster, a fresh ZooKeeper chroot."""
    e = kerberos_env(secure_cluster, tmp_path, kinit=True)
    chroot = f"/mdl-test-krb-{uuid.uuid4().hex[:10]}"
    e["MDL_REGISTRY_URL"] = f"zk://{ZK_HOSTS}{chroot}"
    e["MDL_REGISTRY_TIMEOUT"] = "5"
    e["MDL_TRANSFER_JOBS"] = "8"
    e["MDL_CONFIG"] = str(tmp_path / "no-config.yaml")
    (tmp_path / "no-config.yaml").write_text("{}\n")
    yield e
    drop_zk_tree(chroot)


@pytest.fixture
def keytab_env(secure_cluster, env, tmp_path):
    """The same tree and registry, credentials from the client keytab, no ticket cache."""
    krb = secure_cluster.kerberos()
    return {
        **env,
        "KRB5CCNAME": f"FILE:{tmp_path / 'no-such-ccache'}",
        "MDL_STORAGE_KEYTAB": krb["client_keytab"],
        "MDL_STORAGE_PRINCIPAL": krb["client_principal"],
    }


def mdl(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([MDL, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


def ok(env: dict[str, str], *args: str) -> str:
    r = mdl(env, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def round_trip(env: dict[str, str], tmp_path: Path, principal: str) -> None:
    src = make_dir(tmp_path / "src", FILES)
    pushed = json.loads(ok(env, "push", "lr", str(src), "--promote", "-o", "json"))
    version = pushed["version"]
    listing = json.loads(ok(env, "list", "lr", "-o", "json"))
    assert listing["aliases"] == {"latest": version}
    assert [(v["version"], v["creator"]) for v in listing["versions"]] == [(version, principal)]
    out = tmp_path / "out"
    ok(env, "pull", "lr", "-d", str(out))
    assert {name: (out / name).read_bytes() for name in FILES} == FILES
    assert json.loads((out / MANIFEST_NAME).read_text())["creator"] == principal
    ok(env, "promote", "lr", version, "--alias", "prod")
    history = sorted(json.loads(ok(env, "history", "lr", "-o", "json"))["history"], key=lambda h: h["seq"])
    assert [(h["alias"], h["to"], h["who"]) for h in history] == [
        ("latest", version, principal),
        ("prod", version, principal),
    ]


def test_push_list_pull_promote_with_a_kinit_ticket_cache(secure_cluster, env, tmp_path):
    round_trip(env, tmp_path, secure_cluster.kerberos()["client_principal"])


def test_a_keytab_and_principal_need_no_ticket_cache(secure_cluster, keytab_env, tmp_path):
    assert not Path(keytab_env["KRB5CCNAME"].removeprefix("FILE:")).exists()
    round_trip(keytab_env, tmp_path, secure_cluster.kerberos()["client_principal"])
    assert not Path(keytab_env["KRB5CCNAME"].removeprefix("FILE:")).exists()  # the ticket stayed in memory


def stderr_lines(r: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in r.stderr
    return r.stderr.strip().splitlines()


def test_without_a_ticket_one_error_line_and_a_hint(secure_cluster, env, tmp_path):
    bare = {**kerberos_env(secure_cluster, tmp_path / "bare", kinit=False), "MDL_REGISTRY_URL": env["MDL_REGISTRY_URL"]}
    bare["MDL_CONFIG"] = env["MDL_CONFIG"]
    r = mdl(bare, "list")
    assert r.returncode == 1
    error, hint = stderr_lines(r)
    assert error.startswith("error: no Kerberos ticket: No Kerberos credentials available")
    assert hint == "hint: run kinit, or set storage.keytab and storage.principal"


def test_an_expired_ticket_without_a_keytab_says_so(secure_cluster, env, tmp_path):
    krb = secure_cluster.kerberos()
    subprocess.run(
        ["kinit", "-l", f"{SHORT_LIFETIME}s", "-kt", krb["client_keytab"], krb["client_principal"]],
        env={**os.environ, **env},
        check=True,
        timeout=30,
    )
    time.sleep(SHORT_LIFETIME + 1)
    r = mdl(env, "list")
    assert r.returncode == 1
    error, hint = stderr_lines(r)
    assert error.startswith("error: the Kerberos ticket has expired")
    assert hint == "hint: run kinit, or set storage.keytab and storage.principal"


def test_a_clock_far_from_the_kdcs_is_one_error_line(env, keytab_env):
    """A ticket cache from a host whose clock then runs 15 minutes ahead (faketime): the NameNode's
    service ticket request is refused for the skew. With a keytab MIT krb5 corrects its offset from
    the KDC's answer, so that works."""
    r = subprocess.run(["faketime", "-f", "+15m", MDL, "list"], env={**os.environ, **env}, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    error, hint = stderr_lines(r)
    assert error.startswith("error: Kerberos: Clock skew too great"), error
    assert hint == "hint: synchronise this host's clock (NTP/chrony)"
    r = subprocess.run(["faketime", "-f", "+15m", MDL, "list"], env={**os.environ, **keytab_env}, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("principal", ["nobody@MDL.TEST", "client@OTHER.TEST"])
def test_a_principal_the_keytab_does_not_hold_is_a_config_error(keytab_env, principal):
    r = mdl({**keytab_env, "MDL_STORAGE_PRINCIPAL": principal}, "list")
    assert r.returncode == 7
    error, hint = stderr_lines(r)
    assert error == (
        f"error: cannot log in to Kerberos as {principal} with the keytab {keytab_env['MDL_STORAGE_KEYTAB']}: "
        f"no key for {principal} in it"
    )
    assert hint.startswith("hint: storage.principal must be a principal the keytab holds")


def test_an_unreachable_kdc_is_unavailable(keytab_env, tmp_path):
    conf = Path(keytab_env["KRB5_CONFIG"]).read_text()
    kdc = next(line.split("=", 1)[1].strip() for line in conf.splitlines() if line.strip().startswith("kdc ="))
    closed = tmp_path / "closed-kdc.conf"
    closed.write_text(conf.replace(kdc, "127.0.0.1:1"))
    r = mdl({**keytab_env, "KRB5_CONFIG": str(closed)}, "list")
    assert r.returncode == 6
    error, hint = stderr_lines(r)
    assert error.startswith("error: Kerberos: Cannot contact any KDC for realm")
    assert hint.startswith("hint: check that the KDC is up")


def test_a_keytab_watcher_follows_promotions_past_its_ticket_lifetime(
    secure_cluster, env, keytab_env, tmp_path, monkeypatch
):
    """``mdl watch`` with a keytab and tickets of a few seconds: MIT krb5 gets new ones from the keytab."""
    conf = Path(env["KRB5_CONFIG"]).read_text()
    short = tmp_path / "short-tickets.conf"
    short.write_text(conf.replace("[libdefaults]", f"[libdefaults]\n  ticket_lifetime = {SHORT_LIFETIME}s", 1))
    monkeypatch.setenv("KRB5_CONFIG", str(short))  # the KDC grants tickets that short (the watcher's are the same)
    krb = Kerberos(keytab_env["MDL_STORAGE_PRINCIPAL"], keytab_env["MDL_STORAGE_KEYTAB"])
    krb.header("localhost")
    # Kerberos times are whole seconds and the KDC stamps them a moment before we read them: allow one.
    assert 0 < krb.credentials().lifetime <= SHORT_LIFETIME + 1
    watch_env = {**os.environ, **keytab_env, "KRB5_CONFIG": str(short)}
    v1 = json.loads(ok(env, "push", "lr", str(make_dir(tmp_path / "a", {"w.bin": b"one"})), "--promote", "-o", "json"))
    d = tmp_path / "replica"
    proc = subprocess.Popen(
        [MDL, "watch", "lr", "-d", str(d), "-o", "json"], env=watch_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    def serves(version: str) -> bool:
        return current(d) == version

    try:
        until(lambda: serves(v1["version"]), 60, what="the watcher to load the first version")
        for n, content in enumerate((b"two", b"three"), 2):
            time.sleep(SHORT_LIFETIME + 1)  # the watcher's ticket has expired by now
            src = make_dir(tmp_path / f"v{n}", {"w.bin": content})
            version = json.loads(ok(env, "push", "lr", str(src), "--promote", "-o", "json"))["version"]
            until(partial(serves, version), 60, what=f"the watcher to follow promotion {n}")
            assert (d / "current" / "w.bin").read_bytes() == content
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Kerberos" not in err.decode()


def test_a_busy_session_swaps_spnego_for_a_delegation_token_and_survives_its_cancellation(env, tmp_path, monkeypatch):
    """Past SPNEGO_BEFORE_TOKEN requests a session sends ``delegation=`` instead of a SPNEGO header;
    a token the NameNode no longer knows is dropped and the request sent again with SPNEGO; closing
    cancels the token."""
    from mdl.client import Client
    from mdl.config import load
    from mdl.storage.webhdfs.tokens import SPNEGO_BEFORE_TOKEN

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    client = Client(load(env=env))
    session = client.storage.session  # type: ignore[attr-defined]
    sent: list[tuple[bool, bool]] = []  # (SPNEGO header, delegation param) per NameNode request
    request = session.http.request

    def counted(method, url, *, params=None, authenticate=False, **kw):
        if url.startswith(tuple(session.namenodes)):
            sent.append((authenticate, "delegation" in (params or {})))
        return request(method, url, params=params, authenticate=authenticate, **kw)

    session.http.request = counted
    try:
        for _ in range(SPNEGO_BEFORE_TOKEN + 5):
            assert client.stored_versions("lr") == []
        spnego = [s for s, _ in sent]
        assert sum(spnego) == SPNEGO_BEFORE_TOKEN + 1  # + the GETDELEGATIONTOKEN itself
        assert all(d for _, d in sent[SPNEGO_BEFORE_TOKEN + 1 :]), sent
        token = session.tokens.current()
        assert token
        r = request("PUT", session.active_namenode + "/webhdfs/v1/", params={"op": "CANCELDELEGATIONTOKEN",
                    "token": token}, authenticate=True)
        assert r.status == 200, r.data  # cancelled behind the client's back
        del sent[:]
        assert client.stored_versions("lr") == []
        assert sent == [(False, True), (True, False)]  # refused with the token, then SPNEGO at once
        client.push("lr", make_dir(tmp_path / "m", {"a.bin": b"x" * 1000}), version="v1")
        assert client.stored_versions("lr") == ["v1"]
    finally:
        client.close()


def test_serve_with_a_keytab_loads_and_swaps_versions(keytab_env, tmp_path):
    """``mdl serve`` (its Watcher, downloads and registration) authenticated by a keytab alone."""
    import pickle
    import socket

    import httpx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    for v, c in (("v1", 1.0), ("v2", 0.01)):
        (tmp_path / v).mkdir()
        (tmp_path / v / "model.pkl").write_bytes(pickle.dumps(LogisticRegression(C=c, max_iter=500).fit(x, y)))
        r = mdl(keytab_env, "push", "iris", str(tmp_path / v / "model.pkl"), "--version", v)
        assert r.returncode == 0, r.stderr
    assert mdl(keytab_env, "promote", "iris", "v1").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([MDL, "serve", "iris", "--port", str(port), "--cache", str(tmp_path / "cache")],
                                env={**os.environ, **keytab_env}, stdout=subprocess.DEVNULL, stderr=log)
    try:

        def served() -> str | None:
            try:
                r = httpx.post(f"{url}/v2/models/iris/infer", json=body, timeout=5)
            except httpx.HTTPError:
                return None
            return r.json().get("model_version") if r.status_code == 200 else None

        until(lambda: served() == "v1", timeout=60, what=lambda: (tmp_path / "serve.log").read_text()[-2000:])
        assert mdl(keytab_env, "promote", "iris", "v2").returncode == 0
        until(lambda: served() == "v2", timeout=60, what=lambda: (tmp_path / "serve.log").read_text()[-2000:])
        r = mdl(keytab_env, "status", "iris", "-o", "json")
        [replica] = json.loads(r.stdout)["replicas"]
        assert replica["kind"] == "server" and replica["loaded"] == "v2" and replica["matches"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_datanode_refusing_the_delegation_token_is_one_error(env, tmp_path, monkeypatch):
    """Every delegation token the NameNode puts in a redirect is cancelled before the DataNode sees it:
    the DataNode refuses it (a real 403), mdl retries through the NameNode (a fresh token each time)
    and then gives up with one PermissionDenied naming the principal. Nothing is published."""
    from urllib.parse import parse_qs, urlsplit

    from mdl.client import Client
    from mdl.config import load
    from mdl.errors import PermissionDenied

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    client = Client(load(env={**env, "MDL_STORAGE_RETRIES": "1"}))
    session = client.storage.session  # type: ignore[attr-defined]
    request = session.http.request
    cancelled: list[str] = []

    def cancel_first(method, url, **kw):
        if not url.startswith(tuple(session.namenodes)):  # a DataNode: its token is revoked just before
            token = parse_qs(urlsplit(url).query).get("delegation", [None])[0]
            if token:
                r = request("PUT", session.active_namenode + "/webhdfs/v1/",
                            params={"op": "CANCELDELEGATIONTOKEN", "token": token}, authenticate=True)
                assert r.status == 200, r.data
                cancelled.append(token)
        return request(method, url, **kw)

    session.http.request = cancel_first
    try:
        with pytest.raises(PermissionDenied) as e:
            client.push("lr", make_dir(tmp_path / "m", {"a.bin": b"x" * 1000}), version="v1")
        assert e.value.message.startswith("HDFS refused the Kerberos credentials of client@MDL.TEST"), e.value.message
        assert "\n" not in e.value.message and len(set(cancelled)) >= 2  # retried with a fresh token
        session.http.request = request
        assert client.stored_versions("lr") == []
    finally:
        client.close()
