"""A small closed-loop load generator, run as a separate process by the tests.

    python loadgen.py URL OUT --threads 4 --stop-file F --max-seconds 120 [--body JSON] [--fresh]

Each thread keeps one HTTP/1.1 connection (``--fresh``: a new one per request, ``Connection: close``)
and POSTs the body in a loop until the stop file exists (or ``--max-seconds`` pass: it always stops by
itself). Every response becomes one JSON line in OUT: ``[t_send, t_recv, status, header_version,
body_version, served_by]`` (``served_by``: the X-Served-By header a balancer adds, or None), times
from CLOCK_MONOTONIC (the same clock
in every process on the machine, so the test can compare them with when it promoted). Standard
library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse

BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]})


def worker(url: str, body: bytes, stop_file: str, deadline: float, out: list, fresh: bool = False) -> None:
    u = urllib.parse.urlsplit(url)
    conn = None
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        if conn is None:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        t0 = time.monotonic()
        try:
            headers = {"Content-Type": "application/json", **({"Connection": "close"} if fresh else {})}
            conn.request("POST", u.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as exc:
            out.append([t0, time.monotonic(), 0, None, f"error: {type(exc).__name__}: {exc}", None])
            conn.close()
            conn = None
            continue
        t1 = time.monotonic()
        try:
            body_version = json.loads(data).get("model_version")
        except ValueError:
            body_version = None
        out.append([t0, t1, r.status, r.getheader("X-Model-Version"), body_version, r.getheader("X-Served-By")])
        if fresh:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--body", default=BODY)
    ap.add_argument("--fresh", action="store_true", help="a new connection per request")
    args = ap.parse_args()
    deadline = time.monotonic() + args.max_seconds
    results: list[list] = [[] for _ in range(args.threads)]
    threads = [threading.Thread(target=worker, args=(args.url, args.body.encode(), args.stop_file, deadline, r,
                                                     args.fresh)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        for r in results:
            for row in r:
                f.write(json.dumps(row) + "\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
