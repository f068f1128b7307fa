"""Metric gates: what the candidate's servers answered during a step, read from their ``/metrics``.

Why scrape rather than have replicas report into the registry: every ``mdl serve`` already counts
requests by version and status code and times them in a histogram; reading them costs one HTTP request
per server per step, where reporting would cost every replica a registry write every few seconds (at
1,000 replicas, hundreds of ZooKeeper writes a second) for numbers only a rollout reads.

A step's window: the driver reads every server's counters when the step's replicas are ready and
again when its interval ends; the difference, summed over the servers, is what the step measured.
Server addresses come from replica records (untrusted): only ``http://HOST:PORT`` addresses are read
(``/metrics``, 2 s, at most 8 MiB), and a text that is not the Prometheus format reads as no data.
"""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mdl.discovery.targets import parse_address

SCRAPE_TIMEOUT = 2.0
SCRAPE_LIMIT = 8 * 1024 * 1024
_SAMPLE = re.compile(r"^(mdl_requests_total|mdl_request_duration_seconds_bucket)\{([^{}]*)\}\s+(\S+)\s*$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Counts:
    """One version's requests as counted by one or more servers: total, 5xx, latency buckets."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound (s) -> cumulative count

    def minus(self, before: Counts) -> Counts:
        """What was counted since ``before`` (a server that restarted meanwhile counts from zero)."""
        if self.requests < before.requests:
            return self
        return Counts(
            self.requests - before.requests,
            self.errors - before.errors,
            {le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
        )

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for le, n in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + n

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    def quantile(self, q: float) -> float | None:
        """The upper bound of the histogram bucket holding quantile ``q`` (seconds; inf past the last)."""
        total = self.buckets.get(float("inf"))
        if not total or total <= 0:
            return None
        for le in sorted(self.buckets):
            if self.buckets[le] >= q * total:
                return le
        return float("inf")


def parse_metrics(text: str, model: str) -> dict[str, Counts]:
    """version -> Counts of ``model`` from a Prometheus text exposition (other lines are ignored)."""
    found: dict[str, Counts] = defaultdict(Counts)
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        version = labels.get("version")
        if labels.get("model") != model or not version:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if value != value or value < 0:  # NaN or negative: not a counter
            continue
        c = found[version]
        if m.group(1) == "mdl_requests_total":
            c.requests += value
            if labels.get("code", "").startswith("5"):
                c.errors += value
        else:
            try:
                le = float(labels.get("le", ""))
            except ValueError:
                continue
            c.buckets[le] = c.buckets.get(le, 0.0) + value
    return dict(found)


def scrape(address: str, model: str) -> dict[str, Counts] | None:
    """A server's counts by version, or None if it cannot be read (not http://HOST:PORT, down, slow)."""
    hostport = parse_address(address)
    if hostport is None:
        return None
    host, port = hostport
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as resp:  # http://HOST:PORT only (checked)
            body = resp.read(SCRAPE_LIMIT + 1)
    except (OSError, ValueError):
        return None
    if len(body) > SCRAPE_LIMIT:
        return None
    return parse_metrics(body.decode("utf-8", "replace"), model)


Snapshot = dict[str, dict[str, Counts]]  # server address -> version -> what it counted


def snapshot(addresses: Iterable[str], model: str) -> Snapshot:
    """address -> version -> Counts, for the servers that answered."""
    out = {}
    for a in addresses:
        got = scrape(a, model)
        if got is not None:
            out[a] = got
    return out


def window(before: Snapshot, after: Snapshot, version: str) -> Counts:
    """What ``version`` answered between two snapshots, summed over the servers read both times."""
    total = Counts()
    for address, versions in after.items():
        now = versions.get(version)
        if now is None:
            continue
        total.add(now.minus(before.get(address, {}).get(version, Counts())))
    return total


@dataclass(frozen=True)
class Thresholds:
    max_error_rate: float | None = None  # a fraction (0.01 = 1%)
    max_p99: float | None = None  # seconds
    min_requests: int = 0
    on_no_data: str = "pause"  # pause | pass | fail

    @property
    def any(self) -> bool:
        return self.max_error_rate is not None or self.max_p99 is not None

    def to_doc(self) -> dict[str, Any]:
        return {
            "max_error_rate": self.max_error_rate,
            "max_p99": self.max_p99,
            "min_requests": self.min_requests,
            "on_no_data": self.on_no_data,
        }

    @classmethod
    def from_doc(cls, o: dict[str, Any]) -> Thresholds:
        def num(key: str) -> float | None:
            v = o.get(key)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else None

        mode = o.get("on_no_data")
        return cls(
            num("max_error_rate"),
            num("max_p99"),
            int(num("min_requests") or 0),
            mode if mode in ("pause", "pass", "fail") else "pause",
        )


def judge(counts: Counts, t: Thresholds) -> tuple[str, str]:
    """("pass" | "fail" | "no-data", why) for what the candidate answered in a step."""
    reading = f"{counts.requests:g} requests, {counts.errors:g} errors"
    if not t.any:
        return "pass", reading
    if counts.requests < max(1, t.min_requests):
        return "no-data", f"{reading}: fewer than the {max(1, t.min_requests)} needed to judge"
    rate, p99 = counts.error_rate, counts.quantile(0.99)
    reading += f" ({(rate or 0) * 100:.2f}%), p99 <= {_ms(p99)}"
    if t.max_error_rate is not None and rate is not None and rate > t.max_error_rate:
        return "fail", f"error rate {rate * 100:.2f}% > {t.max_error_rate * 100:g}% ({reading})"
    if t.max_p99 is not None and p99 is not None and p99 > t.max_p99:
        return "fail", f"p99 {_ms(p99)} > {_ms(t.max_p99)} ({reading})"
    return "pass", reading


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "inf" if seconds == float("inf") else f"{seconds * 1000:g}ms"
