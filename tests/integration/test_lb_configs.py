"""The configurations mdl renders, checked by the real programs (Debian's packages, installed by
scripts/test-tools): ``haproxy -c``, ``nginx -t`` and Prometheus (``promtool check config`` on a
file_sd config, then a real Prometheus that discovers and scrapes a server from the rendered file)."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mdl.discovery.render import render
from mdl.discovery.targets import monitored, routable
from mdl.fleet import ReplicaRecord


def program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    assert found, f"{name} is missing: run scripts/test-tools"
    return found


def server(rid: str, address: Any, state: str = "ready", **fields: Any) -> ReplicaRecord:
    values: dict[str, Any] = {"kind": "server", "loaded": "v1", "alias": "latest", "host": "node1", **fields}
    return ReplicaRecord(id=rid, address=address, state=state, **values)


HOSTILE = [
    server("evil-nl", "http://h:80\nserver evil 6.6.6.6:80"),
    server("r\n    server evil 6.6.6.6:80 check", "http://127.0.0.1:9101"),
    server("evil-brace", "http://127.0.0.1:9102", loaded="v1;}"),
    server("evil-alias", "http://127.0.0.1:9103", alias="a{b}"),
    server("evil-user", "http://user@127.0.0.1:9104"),
    server("evil-path", "http://127.0.0.1:9105/x"),
    server("evil-port", "http://127.0.0.1:65536"),
    server("evil-quote", "http://'127.0.0.1':9106"),
    server("evil-type", 9107),
    server("x" * 10_000, "http://127.0.0.1:9108"),
    server("draining", "http://127.0.0.1:9109", state="draining"),
]
ONE = [server("a", "http://127.0.0.1:9001")]
THREE = [*ONE, server("b", "http://[::1]:9002", state="syncing"), server("c", "http://localhost:9003", state="failed")]
CASES = {
    "0": [],
    "0-hostile": HOSTILE,
    "1": ONE,
    "3": THREE,
    "3-hostile": [*HOSTILE, *THREE, server("dup", "http://127.0.0.1:9001")],
}  # dup: after "a", dropped


@pytest.mark.parametrize("case", CASES)
def test_haproxy_accepts_the_backend(case, tmp_path):
    targets = routable(CASES[case])
    assert len(targets) == {"0": 0, "1": 1, "3": 3}[case.split("-")[0]]
    backend = render("haproxy", "lr", targets)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        "global\n    maxconn 64\n"
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
        "frontend api\n    bind 127.0.0.1:18451\n    default_backend mdl_lr\n" + backend
    )
    done = subprocess.run([program("haproxy"), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Configuration file is valid" in done.stdout
    assert "6.6.6.6" not in backend and backend.count("\n    server ") == len(targets)


def test_haproxy_accepts_a_hostname_that_does_not_resolve(tmp_path):
    """``init-addr libc,none``: one replica on a host DNS does not know must not break the whole config."""
    backend = render("haproxy", "lr", routable([*ONE, server("z", "http://no-such-host.invalid:9004")]))
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
        "frontend api\n    bind 127.0.0.1:18451\n    default_backend mdl_lr\n" + backend
    )
    done = subprocess.run([program("haproxy"), "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def nginx_conf(tmp_path: Path, upstream: str) -> Path:
    """A minimal nginx.conf around ``upstream`` that keeps every path nginx -t touches in tmp_path."""
    t = tmp_path
    conf = t / "nginx.conf"
    temps = "".join(
        f"    {kind}_temp_path {t}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf.write_text(
        f"pid {t}/nginx.pid;\nerror_log {t}/error.log;\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temps}{upstream}"
        "    server {\n        listen 127.0.0.1:18452;\n"
        "        location / {\n            proxy_pass http://mdl_lr;\n            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n        }\n    }\n}\n'
    )
    return conf


@pytest.mark.parametrize("case", CASES)
def test_nginx_accepts_the_upstream(case, tmp_path):
    targets = routable(CASES[case])
    upstream = render("nginx", "lr", targets)
    conf = nginx_conf(tmp_path, upstream)
    done = subprocess.run(
        [program("nginx"), "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test is successful" in done.stderr
    assert "6.6.6.6" not in upstream
    assert upstream.count("max_fails=1") == len(targets) and ("down;" in upstream) == (not targets)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_prometheus_config(tmp_path: Path, sd_file: Path) -> Path:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: mdl\n    file_sd_configs:\n"
        f"      - files: ['{sd_file}']\n        refresh_interval: 1s\n"
    )
    return config


@pytest.mark.parametrize("case", CASES)
def test_promtool_accepts_the_file_sd(case, tmp_path):
    sd_file = tmp_path / "mdl-lr.json"
    sd_file.write_text(render("prometheus", "lr", monitored(CASES[case])))
    config = write_prometheus_config(tmp_path, sd_file)
    done = subprocess.run(
        [program("promtool"), "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # promtool does read the file: a broken one fails
    sd_file.write_text('[{"targets": ["h:1"], "labels": {"0bad": "x"}}]')
    done = subprocess.run(
        [program("promtool"), "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "0bad" in done.stdout + done.stderr


class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"# TYPE mdl_test_up gauge\nmdl_test_up 1\n"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_prometheus_discovers_and_scrapes_the_rendered_targets(tmp_path):
    metrics = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=metrics.serve_forever, daemon=True).start()
    port = metrics.server_address[1]
    records = [
        server("r1", f"http://127.0.0.1:{port}", state="draining", host="node-7"),  # monitored whatever its state
        server("bad\nid", f"http://127.0.0.1:{port + 1}"),
    ]
    sd_file = tmp_path / "mdl-lr.json"
    sd_file.write_text(render("prometheus", "lr", monitored(records)))
    config = write_prometheus_config(tmp_path, sd_file)
    web = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            program("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={web}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, active = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://{web}/api/v1/targets", timeout=2) as r:
                    active = json.load(r)["data"]["activeTargets"]
            except OSError:
                active = []
            if active and active[0].get("health") == "up":
                break
            time.sleep(0.25)
        assert len(active) == 1, active
        (target,) = active
        assert target["health"] == "up", target
        assert target["scrapeUrl"] == f"http://127.0.0.1:{port}/metrics"
        labels = target["labels"]
        assert {k: labels.get(k) for k in ("model", "version", "alias", "host", "replica", "job")} == {
            "model": "lr",
            "version": "v1",
            "alias": "latest",
            "host": "node-7",
            "replica": "r1",
            "job": "mdl",
        }
        assert labels["instance"] == f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        metrics.shutdown()
        metrics.server_close()


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "deploy"


def test_the_deploy_examples_are_valid_configurations(tmp_path):
    """examples/deploy/: HAProxy's main file with a rendered backend of model lr, and prometheus.yml."""
    backend = tmp_path / "mdl-lr.cfg"
    backend.write_text(render("haproxy", "lr", routable(THREE)))
    main = EXAMPLES / "haproxy" / "haproxy.cfg"
    r = subprocess.run([program("haproxy"), "-c", "-f", str(main), "-f", str(backend)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([program("promtool"), "check", "config", str(EXAMPLES / "prometheus" / "prometheus.yml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
