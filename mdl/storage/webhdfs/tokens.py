"""Kerberos without a SPNEGO handshake on every request: a WebHDFS delegation token, once it pays.

A SPNEGO token is single-use and the NameNode checks each one against the KDC's keys and its replay
cache: on the dev cluster a GETFILESTATUS takes 2.4 ms with SPNEGO and 0.9 ms with a delegation token
(0.8 ms with simple auth). So, as Hadoop's own WebHDFS client does, a session that has made
``SPNEGO_BEFORE_TOKEN`` Kerberos requests asks the NameNode for a delegation token
(``GETDELEGATIONTOKEN``) and sends ``delegation=<token>`` instead from then on. A short command
(``list``, ``promote``) never gets one; a push or pull of many files, or a long-running watcher, does.

The token is the NameNode's answer, so it is checked before use (a bounded URL-safe string). A request
the NameNode refuses with the token (expired, cancelled, a NameNode that does not know it) is sent
again with SPNEGO at once, and a new token is fetched later. Closing the session cancels the token.
Internal to the package: :class:`~mdl.storage.webhdfs.session.WebHdfsSession` uses it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from mdl.storage.http import HttpError, Response, release, text

log = logging.getLogger("mdl.storage.webhdfs")

SPNEGO_BEFORE_TOKEN = 8  # Kerberos requests a session makes before a delegation token is worth its request
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,8192}")  # Hadoop's urlString: URL-safe base64 of the identifier


class DelegationToken:
    """The session's delegation token: when to get one, what to send, when to drop it."""

    def __init__(self, fetch: Callable[[], Response], cancel: Callable[[str], Any]) -> None:
        self._fetch, self._cancel = fetch, cancel  # SPNEGO-authenticated GETDELEGATIONTOKEN / CANCEL...
        self._lock = threading.Lock()
        self._token: str | None = None
        self._spnego = 0
        self._disabled = False

    def current(self) -> str | None:
        """The token to send with the next request, fetching one if it is time; None: use SPNEGO."""
        with self._lock:
            if self._token is None and not self._disabled and self._spnego >= SPNEGO_BEFORE_TOKEN:
                self._spnego = 0  # a failed fetch is tried again only after as many requests more
                self._token = self._get()
            return self._token

    def spnego_used(self) -> None:
        with self._lock:
            self._spnego += 1

    def rejected(self, token: str, resp: Response) -> bool:
        """Whether ``resp`` (to a request sent with ``token``) refuses the token itself; if so it is dropped
        and the caller sends the request again with SPNEGO. A plain permission error is not a refusal."""
        if resp.status not in (401, 403):
            return False
        body = text(resp)
        if resp.status == 403 and "token" not in body.lower():
            return False
        with self._lock:
            if self._token == token:
                self._token = None
        log.debug("the NameNode refused the delegation token (HTTP %s): back to SPNEGO", resp.status)
        return True

    def close(self) -> None:
        """Cancel the token, so the NameNode forgets it now rather than when it expires (best effort)."""
        with self._lock:
            token, self._token, self._disabled = self._token, None, True
        if token is not None:
            try:
                self._cancel(token)
            except Exception as exc:  # a NameNode that is gone: the token expires by itself
                log.debug("cancelling the delegation token failed: %s", exc)

    def _get(self) -> str | None:
        try:
            resp = self._fetch()
        except (HttpError, OSError) as exc:
            log.debug("no delegation token (%s): SPNEGO on every request", exc)
            return None
        try:
            if resp.status != 200:
                log.debug("no delegation token (HTTP %s): SPNEGO on every request", resp.status)
                return None
            doc = json.loads(resp.data or b"null")
            token = doc.get("Token", {}).get("urlString") if isinstance(doc, dict) else None
        except (ValueError, AttributeError, RecursionError):
            token = None
        finally:
            release(resp)
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            log.debug("the NameNode's delegation token answer is not a token: SPNEGO on every request")
            self._disabled = True  # a NameNode that answers nonsense once will again
            return None
        return token
