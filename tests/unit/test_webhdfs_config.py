"""The WebHDFS backend without a cluster: configuration, URL parsing, error translation, NameNode failover.

Fake NameNodes are tiny HTTP servers on loopback; nothing here needs ``mdl.devcluster``.
"""

from __future__ import annotations

import getpass
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from mdl.config import load
from mdl.errors import ConfigError, ExitCode, MdlError, NotFound, PermissionDenied, Unavailable
from mdl.storage import open_storage
from mdl.storage.webhdfs import WebHdfsStorage, parse_url, remote_error


@pytest.mark.parametrize("url,bases", [
    ("webhdfs://nn1:9870", ["http://nn1:9870"]),
    ("webhdfs://nn1", ["http://nn1:9870"]),
    ("webhdfs://nn1:50070,nn2:50070/", ["http://nn1:50070", "http://nn2:50070"]),
    ("swebhdfs://nn1,nn2:9999", ["https://nn1:9871", "https://nn2:9999"]),
    ("webhdfs://[::1]:9870", ["http://[::1]:9870"]),
])
def test_urls_name_one_or_more_namenodes(url, bases):
    assert parse_url(url)[1] == bases


@pytest.mark.parametrize("url", ["webhdfs://", "webhdfs://nn1:9870/models", "hdfs://nn1:8020", "webhdfs://u@nn1",
                                 "webhdfs://nn1:port"])
def test_bad_urls_are_config_errors(url):
    with pytest.raises(ConfigError) as err:
        parse_url(url)
    assert err.value.exit_code == ExitCode.CONFIG


def test_from_config_reads_every_storage_key(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until TLS")
    cfg = load(env={"MDL_STORAGE_URL": "swebhdfs://nn1:9871,nn2:9871", "MDL_STORAGE_ROOT": "/data/models/",
                    "MDL_STORAGE_USER": "svc", "MDL_STORAGE_CA_BUNDLE": str(ca), "MDL_STORAGE_TIMEOUT": "7.5",
                    "MDL_STORAGE_RETRIES": "5"})
    s = open_storage(cfg)
    assert isinstance(s, WebHdfsStorage)
    assert (s.url, s.namenodes, s.root, s.user, s.timeout, s.retries) == (
        "swebhdfs://nn1:9871,nn2:9871", ["https://nn1:9871", "https://nn2:9871"], "/data/models", "svc", 7.5, 5)
    assert s.session.http.ca_bundle == str(ca)
    assert s.session.http.params == {"user.name": "svc"}
    assert s.session.http._pool_kw["maxsize"] >= 32  # room for parallel transfers
    s.close()


def test_defaults_are_the_os_user_and_models_root():
    s = open_storage(load(env={"MDL_STORAGE_URL": "webhdfs://nn1:9870"}))
    assert s.user == getpass.getuser() and s.root == "/models" and s.timeout == 30.0 and s.retries == 3


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError):
        WebHdfsStorage("webhdfs://nn1:9870", root="models")
    with pytest.raises(ConfigError):
        WebHdfsStorage("swebhdfs://nn1:9871", ca_bundle=str(tmp_path / "missing.pem"))


def test_kerberos_without_the_extra_is_a_clear_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gssapi", None)  # as if python-gssapi were not installed
    with pytest.raises(ConfigError) as err:
        WebHdfsStorage("webhdfs://nn1:9870", auth="kerberos")
    assert "kerberos" in err.value.message.lower() and "mdl[kerberos]" in err.value.hint


def _Resp(status, body):
    return urllib3.HTTPResponse(body=body.encode(), status=status, reason="X", preload_content=True)


def test_remote_exceptions_become_one_line():
    body = json.dumps({"RemoteException": {"exception": "IOException", "javaClassName": "java.io.IOException",
                                           "message": "first line\n\tat org.apache.Foo(Foo.java:1)\n"}})
    assert remote_error(_Resp(403, body)) == ("IOException", "first line")
    assert remote_error(_Resp(502, "<html>\n<b>Bad gateway</b>\n</html>")) == (
        None, "HTTP 502 X <html> <b>Bad gateway</b> </html>")


def test_error_mapping():
    s = WebHdfsStorage("webhdfs://nn1:9870", user="alice")
    e = s.session.error(403, "AccessControlException", "Permission denied: user=alice, access=WRITE, inode=\"/m\"",
                 "MKDIRS", "/m/x", None)
    assert isinstance(e, PermissionDenied) and "'alice'" in e.message and "/m/x" in e.message
    assert isinstance(s.session.error(404, "FileNotFoundException", "File does not exist", "OPEN", "/m/x", "m/v/x"),
                      NotFound)
    e = s.session.error(500, "IOException", "boom", "DELETE", "/m/x", None)
    assert type(e) is MdlError and e.message == "HDFS DELETE /m/x failed: IOException: boom"
    assert isinstance(s.session.error(401, None, "", "OPEN", "/m", None), PermissionDenied)


# -- fake NameNodes: failover ------------------------------------------------------------------


def _fake_namenode(answer):
    """A loopback HTTP server answering every request with ``answer(handler) -> (status, dict)``."""
    calls: list[str] = []

    class H(BaseHTTPRequestHandler):
        def _any(self):
            calls.append(self.path)
            status, doc = answer(self)
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_DELETE = _any

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    # poll for shutdown every 10 ms: serve_forever's default 0.5 s would hold each teardown that long
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return srv, calls


STANDBY = (403, {"RemoteException": {"exception": "StandbyException", "javaClassName":
                                     "org.apache.hadoop.ipc.StandbyException",
                                     "message": "Operation category READ is not supported in state standby"}})
LISTING = (200, {"DirectoryListing": {"partialListing": {"FileStatuses": {"FileStatus": [
    {"pathSuffix": "m", "type": "DIRECTORY", "modificationTime": 0},
    {"pathSuffix": ".hidden", "type": "DIRECTORY", "modificationTime": 0},
    {"pathSuffix": "file", "type": "FILE", "modificationTime": 0}]}}, "remainingEntries": 0}})


@pytest.fixture
def servers():
    made = []

    def make(answer):
        srv, calls = _fake_namenode(answer)
        made.append(srv)
        return srv.server_address[1], calls

    yield make
    for s in made:
        s.shutdown()
        s.server_close()


def test_a_standby_namenode_is_skipped_and_the_active_one_remembered(servers):
    standby, standby_calls = servers(lambda h: STANDBY)
    active, active_calls = servers(lambda h: LISTING)
    s = WebHdfsStorage(f"webhdfs://127.0.0.1:{standby},127.0.0.1:{active}", user="u", timeout=5)
    assert s.list_models() == ["m"]
    assert s.list_models() == ["m"]
    assert len(standby_calls) == 1 and len(active_calls) == 2
    assert "user.name=u" in active_calls[0] and "op=LISTSTATUS_BATCH" in active_calls[0]


def test_only_standby_namenodes_is_unavailable(servers):
    a, _ = servers(lambda h: STANDBY)
    b, _ = servers(lambda h: STANDBY)
    s = WebHdfsStorage(f"webhdfs://127.0.0.1:{a},127.0.0.1:{b}", user="u", timeout=3, retries=2)
    with pytest.raises(Unavailable) as err:
        s.list_models()
    assert "standby" in err.value.message and f"127.0.0.1:{a}" in err.value.message


def test_safe_mode_is_retried_then_answered(servers):
    state = {"n": 0}

    def answer(h):
        state["n"] += 1
        if state["n"] <= 2:
            return 403, {"RemoteException": {"exception": "RetriableException", "javaClassName": "x",
                                             "message": "NameNode still not started"}}
        return LISTING

    port, calls = servers(answer)
    s = WebHdfsStorage(f"webhdfs://127.0.0.1:{port}", user="u", timeout=10, retries=3)
    s.backoff_base = 0.01
    assert s.list_models() == ["m"] and len(calls) == 3
    state["n"] = -100
    t = time.monotonic()
    with pytest.raises(Unavailable) as err:
        s.list_models()
    assert "not ready" in err.value.message and time.monotonic() - t < 5


def test_a_rename_is_not_retried_after_a_server_error(servers):
    port, calls = servers(lambda h: (500, {"RemoteException": {"exception": "IOException", "javaClassName": "x",
                                                                "message": "disk trouble"}}))
    s = WebHdfsStorage(f"webhdfs://127.0.0.1:{port}", user="u", timeout=5, retries=3)
    s.backoff_base = 0.01
    with pytest.raises(MdlError) as err:
        s.session.namenode("PUT", "/a", "RENAME", idempotent=False, destination="/b", renameoptions="NONE")
    assert len(calls) == 1 and "disk trouble" in err.value.message
    calls.clear()
    with pytest.raises(MdlError):
        s.session.namenode("GET", "/a", "GETFILESTATUS")  # idempotent: retried
    assert len(calls) == 4
