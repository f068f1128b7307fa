"""Kerberos for WebHDFS (``storage.auth: kerberos``): SPNEGO tokens, the principal, GSSAPI failures in one line.

python-gssapi, not requests-kerberos: it is the maintained binding that pyspnego and requests-gssapi
build on, imports in ~30 ms instead of ~140 ms (requests-kerberos pulls requests and cryptography), and
it speaks MIT's credential store, so with ``storage.keytab`` + ``storage.principal`` a long-running
watcher needs no kinit: MIT krb5 gets a ticket from the client keytab, and a new one when it expires.
Imported only when ``storage.auth`` is kerberos (CLI start-up never pays for it).
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import Any

from mdl.errors import ConfigError, MdlError, PermissionDenied, Unavailable

KINIT_HINT = "run kinit, or set storage.keytab and storage.principal"


def principal_of(principal: str | None, keytab: str | None) -> str | None:
    """The principal these settings authenticate as (what HDFS knows this client by), or None when there
    are no credentials (the step that needs storage reports that; a registry-only move goes on)."""
    try:
        return Kerberos(principal, keytab).who()
    except MdlError:
        return None


class Kerberos:
    """SPNEGO ``Authorization: Negotiate`` values for NameNode requests, one fresh token per request.

    Credentials come from ``keytab`` as ``principal`` (held in a per-process memory cache) when both
    are given, else from the ticket cache (``KRB5CCNAME`` or the default one, after kinit). Tokens are
    single-use (the NameNode rejects a replay), so every request gets its own security context; a
    context over fresh credentials costs ~0.2 ms and needs no KDC once the service ticket is cached.
    """

    def __init__(self, principal: str | None = None, keytab: str | None = None) -> None:
        if bool(principal) != bool(keytab):
            raise ConfigError(
                "storage.keytab and storage.principal go together",
                hint="set both (log in from the keytab) or neither (use the ticket cache, after kinit)",
            )
        if keytab and not (Path(keytab).expanduser().is_file() and os.access(Path(keytab).expanduser(), os.R_OK)):
            raise ConfigError(f"storage.keytab {keytab!r} is not a readable file")
        try:
            import gssapi
        except ImportError:
            raise ConfigError(
                "storage.auth=kerberos needs the Kerberos extra",
                hint="pip install 'mdl[kerberos]' (python-gssapi; it builds against the system's krb5, "
                "Debian/Ubuntu: apt-get install libkrb5-dev)",
            ) from None
        self.principal = principal or None
        self.keytab = str(Path(keytab).expanduser()) if keytab else None
        self._gssapi = gssapi
        self._spnego = gssapi.Mechanism.from_sasl_name("SPNEGO")
        self._name: str | None = None
        self._lock = threading.Lock()

    def credentials(self) -> Any:
        """The initiator's credentials (a ``gssapi.Credentials``); MdlError if there are none."""
        gssapi = self._gssapi
        try:
            if self.keytab:
                return gssapi.Credentials(
                    name=gssapi.Name(self.principal, gssapi.NameType.kerberos_principal),
                    usage="initiate",
                    store={"client_keytab": self.keytab, "ccache": f"MEMORY:mdl-{os.getpid()}"},
                )
            return gssapi.Credentials(usage="initiate")
        except gssapi.exceptions.GSSError as exc:
            raise self.error(exc, "") from None

    def who(self) -> str:
        """The principal the credentials belong to (``client@MDL.TEST``); MdlError if there are none."""
        with self._lock:
            if self._name is None:
                self._name = str(self.credentials().name)
            return self._name

    def header(self, host: str) -> str:
        """The ``Authorization`` value for one request to the NameNode at ``host`` (its ``HTTP/host`` principal)."""
        gssapi = self._gssapi
        creds = self.credentials()
        try:
            ctx = gssapi.SecurityContext(
                name=gssapi.Name(f"HTTP@{host}", gssapi.NameType.hostbased_service),
                usage="initiate",
                mech=self._spnego,
                creds=creds,
            )
            token = ctx.step()
        except gssapi.exceptions.GSSError as exc:
            raise self.error(exc, host) from None
        return "Negotiate " + base64.b64encode(token or b"").decode("ascii")

    def error(self, exc: Exception, host: str) -> MdlError:
        """The MdlError for a GSSAPI failure: the one place they are told."""
        return gss_error(
            getattr(exc, "maj_code", 0),
            minor_message(exc),
            principal=self.principal,
            keytab=self.keytab,
            host=host,
        )


def minor_message(exc: Exception) -> str:
    """The mechanism's own words (``Ticket expired``), else the GSSAPI major message."""
    text = str(exc)
    gen = getattr(exc, "gen_message", None)
    if callable(gen):
        text = gen()
    text = text.replace("\x00", "").strip()
    if "Minor (" in text:
        minor = text.split("Minor (", 1)[1].split("): ", 1)[-1].strip()
        if minor and minor != "Success":
            return minor
    if text.startswith("Major ("):
        text = text.split("): ", 1)[-1].split(", Minor (", 1)[0]
    return text


#: GSS_S_CREDENTIALS_EXPIRED (a routine error: 11 << 16)
CREDENTIALS_EXPIRED = 11 << 16


def gss_error(major: int, minor: str, *, principal: str | None, keytab: str | None, host: str) -> MdlError:
    """An MdlError for a GSSAPI failure: ``major`` its routine error code, ``minor`` the mechanism's message."""
    low = minor.lower()
    source = f"the keytab {keytab} as {principal}" if keytab else "the ticket cache"
    if "cannot contact any kdc" in low or "cannot resolve network address for kdc" in low:
        return Unavailable(
            f"Kerberos: {minor}",
            hint="check that the KDC is up and reachable, and the realm's kdc in krb5.conf (KRB5_CONFIG)",
        )
    if "clock skew" in low:
        return PermissionDenied(
            f"Kerberos: {minor} (this host's clock and the KDC's differ by more than the allowed skew)",
            hint="synchronise this host's clock (NTP/chrony)",
        )
    if "server not found" in low:
        return ConfigError(
            f"Kerberos: the KDC knows no service principal HTTP/{host} ({minor})",
            hint="name the NameNode in storage.url by the host name of its HTTP/<host> principal",
        )
    if major == CREDENTIALS_EXPIRED or "expired" in low:
        if keytab:
            return PermissionDenied(
                f"Kerberos credentials from {source} have expired ({minor})",
                hint="check the keytab's key is current (klist -kt KEYTAB) and the KDC's ticket policy",
            )
        return PermissionDenied(f"the Kerberos ticket has expired: {minor}", hint=KINIT_HINT)
    if keytab and (
        "no credentials cache found" in low
        or "key table entry not found" in low
        or "no key table entry" in low
        or "cannot find kdc for realm" in low
        or "not found in kerberos database" in low
        or "preauthentication failed" in low
        or "password incorrect" in low
    ):
        if "no credentials cache found" in low:  # MIT's words when the keytab has no key for the principal
            minor = f"no key for {principal} in it"
        return ConfigError(
            f"cannot log in to Kerberos as {principal} with the keytab {keytab}: {minor}",
            hint="storage.principal must be a principal the keytab holds, with its realm (klist -kt KEYTAB)",
        )
    if "no kerberos credentials" in low or "no credentials cache found" in low or "cannot find mechanisms" in low:
        return PermissionDenied(f"no Kerberos ticket: {minor}", hint=KINIT_HINT)
    if keytab:
        return PermissionDenied(f"Kerberos login from {source} failed: {minor}")
    return PermissionDenied(f"Kerberos failed: {minor}", hint=KINIT_HINT)
