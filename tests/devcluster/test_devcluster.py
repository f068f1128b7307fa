"""Tests of mdl.devcluster against the real local cluster (no mocks).

They start the cluster if needed and leave it running for other tests; fault tests restore the
DataNode / ZooKeeper server they stop. Deselect with ``-m "not cluster"``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from mdl import devcluster as dc

from ..helpers import MDL, REPO, until
from ..integration.conftest import HA_PORT_OFFSET, HA_STATE_DIR, SECURE_STATE_DIR, kerberos_env, start_secure_cluster

pytestmark = pytest.mark.cluster

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_NO_REDIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


# ---- tiny WebHDFS client (plain urllib) ---------------------------------------------------------


def _url(info: dict, path: str, op: str, **params: str) -> str:
    query = urllib.parse.urlencode({"op": op, "user.name": info["storage_user"], **params})
    return f"{info['webhdfs_url']}{urllib.parse.quote(path)}?{query}"


def webhdfs_create(info: dict, path: str, data: bytes, **params: str) -> str:
    """Two-step CREATE: the NameNode answers 307 with a DataNode location, the data goes there.
    Returns the DataNode location used."""
    req = urllib.request.Request(_url(info, path, "CREATE", overwrite="true", **params), method="PUT")
    with pytest.raises(urllib.error.HTTPError) as exc:
        _NO_REDIRECT.open(req, timeout=30)
    assert exc.value.code == 307, exc.value.read()
    location = exc.value.headers["Location"]
    assert location.startswith("http://127.0.0.1:"), location
    put = urllib.request.Request(location, data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with _OPENER.open(put, timeout=60) as resp:
        assert resp.status == 201
    return location


def webhdfs_read(info: dict, path: str) -> bytes:
    with _OPENER.open(_url(info, path, "OPEN"), timeout=60) as resp:  # urllib follows the 307
        return resp.read()


def webhdfs_json(info: dict, path: str, op: str, method: str = "GET", **params: str) -> dict:
    req = urllib.request.Request(_url(info, path, op, **params), method=method)
    with _OPENER.open(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def srvr(port: int) -> str:
    """Raw ZooKeeper four-letter command over a socket."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"srvr")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out.decode()


def mode_of(port: int) -> str | None:
    try:
        out = srvr(port)
    except OSError:
        return None
    for line in out.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return "not-serving"


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> dict:
    try:
        dc.DevCluster().java()
    except dc.DevClusterError as e:
        pytest.skip(f"no usable Java for the dev cluster: {e}")
    result = dc.up(timeout=240)
    assert result["healthy"], result
    return result


@pytest.fixture(scope="module")
def info(cluster: dict) -> dict:
    return dc.info()


@pytest.fixture(scope="module")
def testdir(info: dict) -> str:
    path = f"/tmp/devcluster-test/{uuid.uuid4().hex[:12]}"
    assert webhdfs_json(info, path, "MKDIRS", method="PUT") == {"boolean": True}
    return path


# ---- tests --------------------------------------------------------------------------------------


def test_up_is_idempotent(cluster: dict) -> None:
    before = dc.status()
    again = dc.up()
    assert again["changed"] is False and again["started"] == []
    assert again["maven_resolved"] is False
    assert again["seconds"] < 15
    assert again["hdfs"]["pid"] == before["hdfs"]["pid"]
    assert [s["pid"] for s in again["zookeeper"]["servers"]] == [s["pid"] for s in before["zookeeper"]["servers"]]


def test_status_reports_everything(cluster: dict) -> None:
    st = dc.status()
    assert st["running"] and st["healthy"]
    hdfs = st["hdfs"]
    assert hdfs["pid"] and hdfs["live_datanodes"] == 3 and hdfs["fs_state"] == "Operational"
    ports = st["info"]["ports"]
    assert hdfs["namenode"] == {"rpc_port": ports["namenode_rpc"], "http_port": ports["namenode_http"]}
    if ports["offset"] == 0:
        assert (ports["namenode_rpc"], ports["namenode_http"], ports["zk_client"]) == (
            19820, 19870, [12181, 12182, 12183])
    assert [d["index"] for d in hdfs["datanodes"]] == [0, 1, 2]
    assert all(d["running"] and d["xfer_port"] and d["http_port"] for d in hdfs["datanodes"])
    servers = st["zookeeper"]["servers"]
    assert [s["id"] for s in servers] == [1, 2, 3]
    assert all(s["pid"] for s in servers)
    assert sorted(s["mode"] for s in servers) == ["follower", "follower", "leader"]

    inf = st["info"]
    assert inf["storage_url"] == f"webhdfs://127.0.0.1:{hdfs['namenode']['http_port']}"
    assert inf["registry_url"] == "zk://" + ",".join(f"127.0.0.1:{s['client_port']}" for s in servers) + "/mdl"
    snippet = dc.env_snippet()
    assert f"export MDL_STORAGE_URL={inf['storage_url']}\n" in snippet
    assert f"export MDL_STORAGE_USER={inf['storage_user']}\n" in snippet
    assert "export MDL_REGISTRY_URL=" in snippet


def test_cli_status_and_env(cluster: dict) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-m", "mdl.devcluster", "status"], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["healthy"] is True
    out = subprocess.run([sys.executable, "-m", "mdl.devcluster", "env"], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [ln.split("=", 1)[0] for ln in out.stdout.splitlines()] == [
        "export MDL_STORAGE_URL", "export MDL_STORAGE_USER", "export MDL_REGISTRY_URL"]
    out = subprocess.run([sys.executable, "-m", "mdl.devcluster", "datanode", "stop", "7"], capture_output=True,
                         text=True, env=env, cwd=REPO, timeout=60)
    assert (out.returncode, out.stdout) == (2, "")  # usage error, nothing stopped
    assert out.stderr == ("error: invalid value for 'N': a DataNode index 0..2, not 7\nhint: usage: mdl dev-cluster "
                          "datanode stop [OPTIONS] {N} (see: mdl dev-cluster datanode stop -h)\n")
    assert dc.status()["hdfs"]["live_datanodes"] == 3
    # mdl dev-cluster is the same front end
    out = subprocess.run([MDL, "dev-cluster", "status"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["healthy"] is True, out.stderr
    out = subprocess.run([MDL, "dev-cluster", "fs", "-ls", "/"], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr


def test_webhdfs_write_read_and_fs_shell(info: dict, testdir: str) -> None:
    data = os.urandom(2 * 1024 * 1024 + 12345)  # 3 blocks at the dev cluster's 1 MiB block size
    path = f"{testdir}/model.bin"
    webhdfs_create(info, path, data)
    assert webhdfs_read(info, path) == data
    st = webhdfs_json(info, path, "GETFILESTATUS")["FileStatus"]
    assert st["length"] == len(data) and st["replication"] == 3 and st["owner"] == info["storage_user"]

    ls = dc.fs_shell("-ls", "-R", testdir)
    assert ls.returncode == 0, ls.stderr
    assert path in ls.stdout.decode()
    cat = dc.fs_shell("-cat", path)
    assert cat.returncode == 0 and cat.stdout == data
    stat = dc.fs_shell("-stat", "%o %r", path)
    assert stat.stdout.decode().split() == ["1048576", "3"]


def test_permissions_are_on(info: dict, testdir: str) -> None:
    denied = dc.fs_shell("-mkdir", f"{testdir}/by-alice", user="alice")
    assert denied.returncode != 0
    assert b"Permission denied" in denied.stderr
    req = urllib.request.Request(_url(dict(info, storage_user="alice"), f"{testdir}/x", "MKDIRS"), method="PUT")
    with pytest.raises(urllib.error.HTTPError) as exc:
        _OPENER.open(req, timeout=30)
    assert exc.value.code == 403
    assert json.loads(exc.value.read())["RemoteException"]["exception"] == "AccessControlException"
    # Without user.name (simple auth) the request runs as the default web user: denied too.
    anonymous = f"{info['webhdfs_url']}{testdir}/y?op=MKDIRS"
    with pytest.raises(urllib.error.HTTPError) as exc:
        _OPENER.open(urllib.request.Request(anonymous, method="PUT"), timeout=30)
    assert exc.value.code == 403 and b"dr.who" in exc.value.read()


def test_stop_datanode_write_still_succeeds_then_restart(info: dict, testdir: str) -> None:
    before = {d["index"]: d for d in dc.status()["hdfs"]["datanodes"]}
    try:
        t0 = time.monotonic()
        stopped = dc.stop_datanode(0, mark_dead=True)
        assert stopped["running"] is False
        assert time.monotonic() - t0 < 30
        st = dc.status()
        assert st["hdfs"]["live_datanodes"] == 2 and st["healthy"] is False
        assert [d["running"] for d in st["hdfs"]["datanodes"]] == [False, True, True]

        dead_http = before[0]["http_port"]
        for n in range(4):  # every write must succeed; the NameNode never redirects to the dead node
            data = os.urandom(300_000 + n)
            loc = webhdfs_create(info, f"{testdir}/during-outage-{n}.bin", data)
            assert f":{dead_http}/" not in loc
            assert webhdfs_read(info, f"{testdir}/during-outage-{n}.bin") == data
    finally:
        restarted = dc.start_datanode(0)
    assert restarted["running"] is True
    assert restarted["xfer_port"] == before[0]["xfer_port"]
    assert restarted["http_port"] == before[0]["http_port"]
    assert restarted["uuid"] == before[0]["uuid"]
    st = dc.status()
    assert st["hdfs"]["live_datanodes"] == 3 and st["healthy"]
    assert webhdfs_read(info, f"{testdir}/during-outage-0.bin")


def test_unnoticed_dead_datanode_needs_excludedatanodes(info: dict, testdir: str) -> None:
    """Without mark_dead the NameNode still counts the DataNode live for ~12 s and may
    redirect a CREATE to it; the client recovers with excludedatanodes=host:xferPort."""
    dn = dc.status()["hdfs"]["datanodes"][1]
    try:
        dc.stop_datanode(1)
        assert dc.status()["hdfs"]["live_datanodes"] == 3  # not noticed yet
        for n in range(6):
            data = b"%d" % n * 1000
            path = f"{testdir}/unnoticed-{n}.bin"
            try:
                webhdfs_create(info, path, data)
            except urllib.error.URLError as e:  # redirected to the stopped DataNode
                assert "Connection refused" in str(e.reason)
                webhdfs_create(info, path, data, excludedatanodes=f"127.0.0.1:{dn['xfer_port']}")
            assert webhdfs_read(info, path) == data
    finally:
        dc.start_datanode(1)
    assert dc.status()["hdfs"]["live_datanodes"] == 3


def test_zookeeper_survives_losing_the_leader(cluster: dict) -> None:
    servers = dc.status()["zookeeper"]["servers"]
    ports = {s["id"]: s["client_port"] for s in servers}
    leader = next(s["id"] for s in servers if s["mode"] == "leader")
    try:
        dc.stop_zk(leader)
        assert mode_of(ports[leader]) is None
        others = [sid for sid in ports if sid != leader]
        until(lambda: sorted(str(mode_of(ports[sid])) for sid in others) == ["follower", "leader"], 15, 0.1,
              what="the other two servers to elect a new leader")
        assert "Zookeeper version: 3.9.5" in srvr(ports[others[0]])
    finally:
        res = dc.start_zk(leader)
    assert res["mode"] in ("leader", "follower")
    assert sorted(str(mode_of(p)) for p in ports.values()) == ["follower", "follower", "leader"]


def test_zk_all_stop_and_start(cluster: dict) -> None:
    ports = [s["client_port"] for s in dc.status()["zookeeper"]["servers"]]
    try:
        res = dc.stop_zk_all()
        assert all(r["changed"] for r in res)
        assert [mode_of(p) for p in ports] == [None, None, None]
        one = dc.start_zk(2)  # alone it cannot form a quorum, but it answers
        assert one["mode"] == "not-serving"
    finally:
        res = dc.start_zk_all()
    assert sorted(r["mode"] for r in res) == ["follower", "follower", "leader"]
    assert dc.status()["healthy"]


# ---- HA (up --ha): its own cluster, as tests/integration's ha_cluster fixture starts it --------------


def _ha_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mdl.devcluster", "--state-dir", str(HA_STATE_DIR), *args],
                          capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def ha_cluster() -> dc.DevCluster:
    """The HA cluster of tests/integration's ``ha_cluster`` fixture (same state dir and ports)."""
    ha = dc.DevCluster(HA_STATE_DIR, port_offset=HA_PORT_OFFSET, ha=True)
    ha.up()
    return ha


def test_ha_cluster_cli(ha_cluster: dc.DevCluster) -> None:
    def states() -> list:
        st = json.loads(_ha_cli("status").stdout)
        return [n["state"] for n in st["hdfs"]["namenodes"]]

    info = json.loads(_ha_cli("info").stdout)
    http = [n["namenode_http"].rsplit(":", 1)[1] for n in info["namenodes"]]
    assert info["storage_url"] == f"webhdfs://127.0.0.1:{http[0]},127.0.0.1:{http[1]}"
    assert info["env"]["MDL_STORAGE_URL"] == info["storage_url"] and info["nameservice"] == "mdlns"
    before = states()
    assert sorted(before) == ["active", "standby"] and info["active_namenode"] == before.index("active")
    r = _ha_cli("namenode", "failover")
    assert r.returncode == 0, r.stderr
    assert states() == before[::-1]
    active = states().index("active")
    r = _ha_cli("namenode", "stop", str(active))
    assert r.returncode == 0, r.stderr
    try:
        assert [n["running"] for n in json.loads(r.stdout)] == [i != active for i in range(2)]
        assert states()[1 - active] == "active"
        r = _ha_cli("fs", "-ls", "/")  # FsShell follows the nameservice to the survivor
        assert r.returncode == 0, r.stderr
    finally:
        r = _ha_cli("namenode", "start", str(active))
    assert r.returncode == 0, r.stderr
    assert states()[active] == "standby"
    st = json.loads(_ha_cli("status").stdout)
    assert st["healthy"] and st["hdfs"]["active_namenode"] == 1 - active
    r = _ha_cli("up")  # remembered in cluster.json: no --ha needed, nothing to do
    assert r.returncode == 0 and json.loads(r.stdout)["changed"] is False, r.stderr


def test_namenode_commands_need_an_ha_cluster(cluster: dict) -> None:
    r = subprocess.run([sys.executable, "-m", "mdl.devcluster", "namenode", "failover"],
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (
        2, "", "error: this dev cluster has one NameNode\nhint: start it with `up --ha` (after `down`)\n")
    assert "namenodes" not in dc.info() and "ha" not in dc.status()["hdfs"]


# ---- secure (up --secure): Kerberos, as tests/integration's secure_cluster fixture starts it -----------


def _secure_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mdl.devcluster", "--state-dir", str(SECURE_STATE_DIR), *args],
                          capture_output=True, text=True, timeout=180, env=env)


def _curl_has_gssapi() -> bool:
    try:
        out = subprocess.run(["curl", "-V"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return False
    return "GSS-API" in out or "SPNEGO" in out


def test_secure_cluster(tmp_path) -> None:
    cluster = start_secure_cluster()
    st = json.loads(_secure_cli("status").stdout)
    assert st["healthy"] and st["hdfs"]["secure"] and st["zookeeper"]["servers"] == [], st
    info = json.loads(_secure_cli("info").stdout)
    port = info["ports"]["namenode_http"]
    assert info["storage_url"] == f"webhdfs://localhost:{port}" and info["superuser"] == "hdfs"
    assert info["client_home"] == "/user/client" and info["kerberos"]["client_principal"] == "client@MDL.TEST"
    assert os.path.exists(info["kerberos"]["client_keytab"]) and os.path.exists(info["kerberos"]["krb5_config"])
    env_lines = _secure_cli("env").stdout
    for key in ("MDL_STORAGE_URL", "MDL_STORAGE_AUTH", "KRB5_CONFIG", "KRB5CCNAME"):
        assert f"export {key}=" in env_lines, env_lines
    assert "export MDL_STORAGE_AUTH=kerberos" in env_lines and "MDL_REGISTRY_URL" not in env_lines

    url = f"http://localhost:{port}/webhdfs/v1/user?op=LISTSTATUS"
    with pytest.raises(urllib.error.HTTPError) as exc:  # no SPNEGO, and user.name does not help
        _OPENER.open(url + "&user.name=hdfs", timeout=30)
    assert exc.value.code == 401 and exc.value.headers["WWW-Authenticate"] == "Negotiate"
    assert dc.probes.webhdfs_challenge(url)

    env = kerberos_env(cluster, tmp_path)
    assert env["MDL_STORAGE_ROOT"].startswith("/user/client/models-") and env["KRB5CCNAME"].startswith("FILE:")
    if _curl_has_gssapi():  # else the 401 above is all we can check without a GSSAPI library
        curl = subprocess.run(["curl", "-sS", "--negotiate", "-u", ":", url], capture_output=True, text=True,
                              timeout=30, env={**os.environ, **env})
        assert curl.returncode == 0 and '"owner":"client","pathSuffix":"client"' in curl.stdout, curl
        no_ticket = {**os.environ, **kerberos_env(cluster, tmp_path, kinit=False)}
        curl = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--negotiate", "-u", ":", url],
                              capture_output=True, text=True, timeout=30, env=no_ticket)
        assert curl.stdout == "401", curl

    # control-port fault commands work in secure mode; FsShell runs Kerberized (as client here)
    r = _secure_cli("datanode", "stop", "2", "--dead")
    assert r.returncode == 0 and json.loads(r.stdout)["running"] is False, r.stderr
    r = _secure_cli("datanode", "start", "2")
    assert r.returncode == 0 and json.loads(r.stdout)["running"] is True, r.stderr
    path = f"/user/client/devcluster-test-{uuid.uuid4().hex[:8]}"
    assert cluster.fs_shell("-put", "-", path, user="client", input=b"secret").returncode == 0
    assert cluster.fs_shell("-cat", path, user="client").stdout == b"secret"
    assert cluster.fs_shell("-mkdir", "/not-the-clients", user="client").returncode != 0
    r = _secure_cli("zk", "stop", "1")
    assert r.returncode == 2 and "runs no ZooKeeper" in r.stderr, r.stderr
    assert json.loads(_secure_cli("up").stdout)["changed"] is False
