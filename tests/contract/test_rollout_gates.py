"""Metric gates on every backend, with fake servers: replicas whose /metrics say what the test wants
and which switch versions as the rollout assigns them (as a real server's watcher would)."""

from __future__ import annotations

import functools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mdl.errors import RolloutFailed
from mdl.rollout.driver import RolloutDriver, RolloutOptions
from mdl.rollout.gates import Thresholds
from mdl.rollout.state import desired_version

from .. import helpers
from ..helpers import make_model

until = functools.partial(helpers.until, timeout=30.0, interval=0.02)


class FakeServer:
    """A replica of lr:latest (kind server) that serves ``/metrics``: every scrape counts ``per_scrape``
    more requests for the version it runs, ``errors[version]`` of them 5xx."""

    def __init__(self, client, rid: str, errors: dict[str, int], per_scrape: int = 100) -> None:
        self.client, self.rid, self.errors, self.per_scrape = client, rid, errors, per_scrape
        self.version = "v1"
        self.counts: dict[tuple[str, str], int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = fake.metrics().encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.address = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.handle = client.register_replica("lr", rid, self.record())
        self.watch = client.watch_pointer("lr", self.follow)

    def record(self) -> dict:
        return {"kind": "server", "alias": "latest", "loaded": self.version, "desired": self.version,
                "state": "ready", "address": self.address}

    def follow(self, pointer) -> None:
        doc = pointer.rollout.doc if pointer.rollout is not None else None
        want = desired_version(doc, "latest", self.rid, pointer.aliases.get("latest"))
        if want and want != self.version:
            self.version = want
            self.handle.update(**self.record())

    def metrics(self) -> str:
        v = self.version
        bad = min(self.errors.get(v, 0), self.per_scrape)
        self.counts[(v, "500")] = self.counts.get((v, "500"), 0) + bad
        self.counts[(v, "200")] = self.counts.get((v, "200"), 0) + self.per_scrape - bad
        return "".join(f'mdl_requests_total{{model="lr",version="{ver}",protocol="v2",code="{code}"}} {n}\n'
                       for (ver, code), n in self.counts.items())

    def stop(self) -> None:
        self.watch.stop()
        self.handle.close()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def lr(client, tmp_path):
    for i in (1, 2):
        client.push("lr", make_model(tmp_path / f"s{i}", f"model {i}".encode()), version=f"v{i}")
    client.promote("lr", "v1")
    return client


@pytest.fixture
def servers(lr, make_client):
    made: list[FakeServer] = []

    def start(n: int, errors: dict[str, int] | None = None, per_scrape: int = 100) -> list[FakeServer]:
        made.extend(FakeServer(make_client(), f"s{len(made) + i}", errors or {}, per_scrape) for i in range(n))
        until(lambda: len(lr.replicas("lr")) == len(made))
        return made

    yield start
    for s in made:
        s.stop()


def rollout(make_client, **thresholds) -> RolloutDriver:
    limit = thresholds.pop("failure_limit", 0)
    driver = RolloutDriver(make_client(), "lr")
    driver.start("v2", "latest", RolloutOptions(steps=(50, 100), interval=0, thresholds=Thresholds(**thresholds),
                                                failure_limit=limit))
    return driver


def test_an_error_rate_over_the_threshold_aborts(lr, servers, make_client):
    fleet = servers(2, errors={"v2": 5})  # 5% of the candidate's answers fail
    driver = rollout(make_client, max_error_rate=0.01)
    with pytest.raises(RolloutFailed, match=r"error rate 5\.00% > 1%"):
        driver.run()
    until(lambda: all(s.version == "v1" for s in fleet))
    assert lr.pointer("lr").aliases["latest"] == "v1"


def test_an_error_rate_under_the_threshold_passes_every_step(lr, servers, make_client):
    fleet = servers(2, errors={"v2": 1})  # 1% <= 2%
    assert rollout(make_client, max_error_rate=0.02).run().state == "succeeded"
    until(lambda: all(s.version == "v2" for s in fleet))


@pytest.mark.parametrize("mode,end", [("pause", "paused"), ("pass", "succeeded"), ("fail", "aborted")])
def test_too_little_traffic_does_what_on_no_data_says(lr, servers, make_client, mode, end):
    servers(2, per_scrape=3)  # 3 requests a window, 10 needed to judge
    driver = rollout(make_client, max_error_rate=0.01, min_requests=10, on_no_data=mode)
    if end == "aborted":
        with pytest.raises(RolloutFailed, match="no data"):
            driver.run()
    else:
        assert driver.run().state == end
    state = driver.current()
    assert state.state == end
    if end != "succeeded":
        assert "fewer than the 10 needed to judge" in (state.reason or "")


def test_a_failure_limit_gives_a_failed_check_another_interval(lr, servers, make_client):
    fleet = servers(2, errors={"v2": 50})
    driver = RolloutDriver(make_client(), "lr", emit=(events := []).append)
    driver.start("v2", "latest", RolloutOptions(steps=(50, 100), interval=0.2,
                                                thresholds=Thresholds(max_error_rate=0.1), failure_limit=1))
    t = threading.Thread(target=lambda: events.append(_result(driver)), daemon=True)
    t.start()
    until(lambda: any(e.get("event") == "gate-failed" for e in events if isinstance(e, dict)))
    for s in fleet:
        s.errors["v2"] = 0  # fixed before the second check
    t.join(30)
    assert events[-1] == "succeeded"


def _result(driver: RolloutDriver) -> str:
    try:
        return driver.run().state
    except RolloutFailed:
        return "aborted"
