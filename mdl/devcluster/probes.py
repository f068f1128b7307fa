"""Network probes of 127.0.0.1 services: free ports, ZooKeeper four-letter words, WebHDFS."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request

LOOPBACK = "127.0.0.1"

_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def port_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def four_letter_word(port: int, cmd: str = "srvr", timeout: float = 2.0) -> str | None:
    """Send a ZooKeeper four-letter command to 127.0.0.1:port; None if it does not answer."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(cmd.encode("ascii"))
            chunks = []
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError:
        return None
    return b"".join(chunks).decode("utf-8", "replace")


def zk_mode(port: int, timeout: float = 2.0) -> str | None:
    """'leader', 'follower', 'standalone', 'not-serving' or None (no answer)."""
    out = four_letter_word(port, "srvr", timeout)
    if out is None:
        return None
    m = re.search(r"^Mode:\s*(\S+)", out, re.M)
    if m:
        return m.group(1)
    if "not currently serving" in out:
        return "not-serving"
    return "unknown"


def webhdfs_challenge(url: str, timeout: float = 3.0) -> bool:
    """Whether an unauthenticated GET of ``url`` is answered 401 with ``WWW-Authenticate: Negotiate``."""
    try:
        with _NO_PROXY_OPENER.open(urllib.request.Request(url), timeout=timeout):
            return False
    except urllib.error.HTTPError as e:
        e.close()
        return e.code == 401 and "negotiate" in (e.headers.get("WWW-Authenticate") or "").lower()


def http_get_json(url: str, timeout: float = 3.0) -> dict:
    """GET ``url`` without proxies and decode its JSON (raises OSError/ValueError)."""
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with _NO_PROXY_OPENER.open(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))
