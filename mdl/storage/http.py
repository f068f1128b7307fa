"""HTTP for the WebHDFS storage: urllib3 connection pools, and failures told in a few words.

urllib3 directly, not requests over it (as the hdfs package uses): requests' per-request work
(merging session settings, cookies, hooks, protocol ``isinstance`` checks) doubled the CPU of every
WebHDFS call, about 2 ms instead of 1 ms here, and a watcher switching versions makes two of them,
a fleet of watchers on one host fifty times that at once.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, SSLError

Response = urllib3.BaseHTTPResponse
#: a Kerberos (SPNEGO, :class:`mdl.storage.kerberos.Kerberos`) or other scheme: host name -> the ``Authorization`` value
Authenticator = Callable[[str], "str | None"]


class HttpError(Exception):
    """A request that got no HTTP answer.

    ``unsent``: it certainly never reached the server (refused, unresolvable, connect timeout), so it
    is safe to send again anywhere. ``tls``: the TLS handshake failed.
    """

    def __init__(self, detail: str, *, unsent: bool = False, tls: bool = False) -> None:
        super().__init__(detail)
        self.detail, self.unsent, self.tls = detail, unsent, tls


_PHRASES = (
    ("Connection refused", "connection refused"),
    ("Name or service not known", "host name does not resolve"),
    ("nodename nor servname", "host name does not resolve"),
    ("Temporary failure in name resolution", "host name does not resolve"),
    ("Failed to resolve", "host name does not resolve"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network is unreachable"),
    ("Connection reset", "connection reset"),
    ("Broken pipe", "connection closed while sending"),
    ("RemoteDisconnected", "connection closed by the server"),
    ("IncompleteRead", "connection closed mid-transfer"),
    ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
)


def describe(exc: BaseException) -> str:
    """What a urllib3/http.client/socket failure means, in a few words."""
    text = str(exc)
    if isinstance(exc, ConnectTimeoutError) and "timed out" in text and "refused" not in text:
        return "connection timed out"
    if isinstance(exc, TimeoutError) or "Read timed out" in text or type(exc).__name__ == "ReadTimeoutError":
        return "no answer in time (read timed out)"
    for needle, label in _PHRASES:
        if needle in text or needle in repr(exc):
            return label
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text}"[:200]


class Http:
    """Keep-alive connection pools per host; no retries, no redirects (WebHDFS steps are our own).

    ``params`` are added to every URL built from a path (the NameNode's), never to a ``Location`` a
    NameNode handed out, which carries its own (``user.name``, ``doas``, a delegation token).
    """

    def __init__(
        self,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ca_bundle: str | None = None,
        pool_size: int = 64,
        auth: Authenticator | None = None,
    ) -> None:
        self.params = dict(params or {})
        self.headers = dict(headers or {})
        self.auth = auth
        self.ca_bundle = ca_bundle
        self._pool_kw: dict[str, Any] = {"num_pools": 16, "maxsize": pool_size, "retries": False}
        if ca_bundle:
            self._pool_kw.update(cert_reqs="CERT_REQUIRED", ca_certs=ca_bundle)
        self._direct = urllib3.PoolManager(**self._pool_kw)
        self._proxied: dict[str, urllib3.ProxyManager] = {}
        self._proxies = urllib.request.getproxies()  # HTTP(S)_PROXY and NO_PROXY, as curl and requests honour

    def _manager(self, url: str) -> urllib3.PoolManager:
        if not self._proxies:
            return self._direct
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
            return self._direct
        if proxy not in self._proxied:
            self._proxied[proxy] = urllib3.ProxyManager(proxy, **self._pool_kw)
        return self._proxied[proxy]

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        stream: bool = False,
        timeout: tuple[float, float] = (30.0, 30.0),
        authenticate: bool = False,
    ) -> Response:
        """One request. ``params`` (and the pool's own) make the query; ``stream``: the body is left to
        read (then :func:`release`); ``authenticate``: send the ``auth`` header (NameNode calls)."""
        if params is not None:
            url = f"{url}?{urlencode({**self.params, **params})}"
        headers = self.headers
        if body is not None and not isinstance(body, (bytes, bytearray)):
            headers = {**headers, "Content-Length": str(len(body))}  # sent as is, never chunked
        if authenticate and self.auth is not None:
            value = self.auth(urlsplit(url).hostname or "")
            if value:
                headers = {**headers, "Authorization": value}
        try:
            return self._manager(url).urlopen(
                method,
                url,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
                preload_content=not stream,
                decode_content=False,
            )
        except SSLError as exc:
            raise HttpError(describe(exc), tls=True) from None
        except ConnectTimeoutError as exc:
            raise HttpError(describe(exc), unsent=True) from None
        except (HTTPError, OSError, ValueError) as exc:
            raise HttpError(describe(exc)) from None

    def close(self) -> None:
        self._direct.clear()
        for m in self._proxied.values():
            m.clear()


def body_reader(resp: Response) -> Callable[[memoryview], int]:
    """``readinto`` of a streamed body, straight from the socket into the caller's buffer.

    urllib3's own would read into a new bytes object and copy it; the body is not encoded (we send
    ``Accept-Encoding: identity``), so http.client's is exact.
    """
    fp = getattr(resp, "_fp", None)
    return fp.readinto if fp is not None and hasattr(fp, "readinto") else resp.readinto


def release(resp: Response) -> None:
    """Done with a streamed response: a fully read one keeps its connection for the next request."""
    fp = getattr(resp, "_fp", None)
    if fp is not None and not getattr(fp, "isclosed", lambda: False)():
        resp.close()  # stopped mid-body: that connection cannot be reused
    resp.release_conn()


def text(resp: Response, limit: int = 2000) -> str:
    return (resp.data or b"")[:limit].decode("utf-8", errors="replace")
