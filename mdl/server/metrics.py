"""Prometheus metrics of one server: ``mdl_`` names, base units (seconds), ``_total`` counters."""

from __future__ import annotations

from typing import Any

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

if hasattr(prometheus_client, "disable_created_metrics"):
    prometheus_client.disable_created_metrics()  # no *_created series: they double the output for nothing

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str) -> None:
        self.model = model
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "mdl_requests",
            "Requests answered, by model, version that answered, protocol (v2, tfserving) and HTTP status code.",
            ["model", "version", "protocol", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "mdl_request_duration_seconds",
            "Time from the request's arrival to its answer, by model, version and protocol.",
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("mdl_requests_in_flight", "Inference requests being handled.", ["model"], registry=r)
        self.batch_size = Histogram(
            "mdl_predict_batch_size",
            "Requests answered by one predict call.",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.load = Histogram(
            "mdl_model_load_duration_seconds",
            "Time to load and warm a version.",
            ["model"],
            buckets=LOAD_BUCKETS,
            registry=r,
        )
        self.swaps = Counter(
            "mdl_model_swaps",
            "Attempts to swap the served version, by result (ok, failed).",
            ["model", "result"],
            registry=r,
        )
        self.loaded = Info("mdl_model", "The version being served (its digest and format).", ["model"], registry=r)
        self.ready = Gauge("mdl_model_ready", "1 when a version is loaded and serving.", ["model"], registry=r)
        self.loaded_at = Gauge(
            "mdl_model_loaded_timestamp_seconds", "When the served version was loaded.", ["model"], registry=r
        )
        self._children: dict[tuple, Any] = {}
        self.inflight = 0  # kept by the event loop; read at scrape time (no lock on the request path)
        self.in_flight.labels(model).set_function(lambda: self.inflight)
        self.ready.labels(model).set(0)
        self.swaps.labels(model, "ok")
        self.swaps.labels(model, "failed")

    def observe(self, model: str, version: str, protocol: str, code: int, seconds: float) -> None:
        key = (model, version, protocol, code)
        pair = self._children.get(key)
        if pair is None:
            pair = (
                self.requests.labels(model, version, protocol, str(code)),
                self.latency.labels(model, version, protocol),
            )
            if len(self._children) < 10000:
                self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def batch(self, n: int) -> None:
        self.batch_size.labels(self.model).observe(n)

    def swapped(self, loaded: Any, seconds: float) -> None:
        self.load.labels(self.model).observe(seconds)
        self.swaps.labels(self.model, "ok").inc()
        self.loaded.labels(self.model).info(
            {"version": loaded.version, "digest": loaded.digest or "", "format": loaded.format}
        )
        self.ready.labels(self.model).set(1)
        self.loaded_at.labels(self.model).set_to_current_time()

    def swap_failed(self, model: str) -> None:
        self.swaps.labels(self.model, "failed").inc()

    def unloaded(self) -> None:
        self.ready.labels(self.model).set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
