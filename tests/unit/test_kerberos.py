"""Kerberos failures told in one line with a hint and a documented exit code (mdl.storage.kerberos), the
settings that go together, and the 401/403 answers of a Kerberized cluster. The real thing is proven in
tests/integration/test_kerberos.py; these pin the mapping of MIT's messages."""

from __future__ import annotations

import pytest

from mdl.errors import ConfigError, ExitCode, PermissionDenied, Unavailable
from mdl.storage.kerberos import CREDENTIALS_EXPIRED, KINIT_HINT, Kerberos, gss_error, minor_message

KT = {"principal": "svc@MDL.TEST", "keytab": "/etc/svc.keytab", "host": "nn1"}
CACHE = {"principal": None, "keytab": None, "host": "nn1"}
NO_CREDS = 458752  # GSS_S_NO_CRED
FAILURE = 851968  # GSS_S_FAILURE


@pytest.mark.parametrize(
    "major,minor,where,kind,code,message,hint",
    [
        (NO_CREDS, "No Kerberos credentials available (default cache: FILE:/tmp/krb5cc_0)", CACHE,
         PermissionDenied, ExitCode.FAILED,
         "no Kerberos ticket: No Kerberos credentials available (default cache: FILE:/tmp/krb5cc_0)", KINIT_HINT),
        (NO_CREDS, "SPNEGO cannot find mechanisms to negotiate", CACHE, PermissionDenied, ExitCode.FAILED,
         "no Kerberos ticket: SPNEGO cannot find mechanisms to negotiate", KINIT_HINT),
        (CREDENTIALS_EXPIRED, "The referenced credential has expired", CACHE, PermissionDenied, ExitCode.FAILED,
         "the Kerberos ticket has expired: The referenced credential has expired", KINIT_HINT),
        (FAILURE, "Ticket expired", CACHE, PermissionDenied, ExitCode.FAILED,
         "the Kerberos ticket has expired: Ticket expired", KINIT_HINT),
        (NO_CREDS, "No credentials cache found", KT, ConfigError, ExitCode.CONFIG,
         "cannot log in to Kerberos as svc@MDL.TEST with the keytab /etc/svc.keytab: no key for svc@MDL.TEST in it",
         "storage.principal must be"),
        (NO_CREDS, "Client 'svc@MDL.TEST' not found in Kerberos database", KT, ConfigError, ExitCode.CONFIG,
         "cannot log in to Kerberos as svc@MDL.TEST with the keytab /etc/svc.keytab: Client", "storage.principal"),
        (NO_CREDS, "Preauthentication failed", KT, ConfigError, ExitCode.CONFIG,
         "cannot log in to Kerberos as svc@MDL.TEST", "storage.principal"),
        (NO_CREDS, "Cannot contact any KDC for realm 'MDL.TEST'", KT, Unavailable, ExitCode.UNAVAILABLE,
         "Kerberos: Cannot contact any KDC for realm 'MDL.TEST'", "check that the KDC is up"),
        (FAILURE, "Clock skew too great", CACHE, PermissionDenied, ExitCode.FAILED,
         "Kerberos: Clock skew too great", "synchronise this host's clock"),
        (FAILURE, "Server not found in Kerberos database", CACHE, ConfigError, ExitCode.CONFIG,
         "Kerberos: the KDC knows no service principal HTTP/nn1", "name the NameNode in storage.url"),
        (FAILURE, "Ticket expired", KT, PermissionDenied, ExitCode.FAILED,
         "Kerberos credentials from the keytab /etc/svc.keytab as svc@MDL.TEST have expired", "check the keytab"),
        (FAILURE, "Something new", CACHE, PermissionDenied, ExitCode.FAILED, "Kerberos failed: Something new",
         KINIT_HINT),
    ],
)
def test_gss_failures_are_one_line_a_hint_and_an_exit_code(major, minor, where, kind, code, message, hint):
    err = gss_error(major, minor, **where)
    assert type(err) is kind and err.exit_code == code
    assert err.message.startswith(message) and "\n" not in err.message
    assert err.hint and err.hint.startswith(hint)


class FakeGSSError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def gen_message(self) -> str:
        return self.text


def test_the_mechanism_message_is_the_minor_one():
    assert minor_message(FakeGSSError(
        "Major (851968): Unspecified GSS failure.  Minor code may provide more information, "
        "Minor (100002): Ticket expired")) == "Ticket expired"
    assert minor_message(FakeGSSError(
        "Major (720896): The referenced credential has expired, Minor (100001): Success"
    )) == "The referenced credential has expired"
    assert minor_message(FakeGSSError(
        "Major (458752): No credentials were supplied, Minor (100001): SPNEGO cannot find mechanisms to negotiate\x00"
    )) == "SPNEGO cannot find mechanisms to negotiate"


def test_keytab_and_principal_go_together(tmp_path):
    pytest.importorskip("gssapi")
    with pytest.raises(ConfigError, match="go together"):
        Kerberos("svc@MDL.TEST", None)
    with pytest.raises(ConfigError, match="go together"):
        Kerberos(None, str(tmp_path))
    with pytest.raises(ConfigError, match="is not a readable file"):
        Kerberos("svc@MDL.TEST", str(tmp_path / "missing.keytab"))
    with pytest.raises(ConfigError, match="is not a readable file"):
        Kerberos("svc@MDL.TEST", str(tmp_path))


def test_a_kerberized_cluster_refusing_a_token_is_permission_denied():
    pytest.importorskip("gssapi")
    from mdl.storage.webhdfs import WebHdfsStorage

    s = WebHdfsStorage("webhdfs://nn1:9870", auth="kerberos", user="alice")  # acting for alice: no ticket needed
    page = (
        'HTTP 403 X <html> <head> <meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/> '
        "<title>Error 403 GSSException: Failure unspecified at GSS-API level (Mechanism level: Request is a "
        "replay (34))</title> </head>"
    )
    e = s.session.error(403, None, page, "LISTSTATUS", "/m", None)
    assert isinstance(e, PermissionDenied) and e.message == (
        "HDFS refused the Kerberos credentials of alice for LISTSTATUS /m (HTTP 403: Failure unspecified at GSS-API "
        "level (Mechanism level: Request is a replay (34)))"
    )
    dn = (
        "DestHost:destPort localhost:20320 , LocalHost:localPort vm/127.0.0.1:0. Failed on local exception: "
        "java.io.IOException: org.apache.hadoop.security.AccessControlException: Client cannot authenticate "
        "via:[TOKEN, KERBEROS]"
    )
    e = s.session.error(403, "IOException", dn, "OPEN", "/m/v/w.bin", None)
    assert isinstance(e, PermissionDenied) and e.message.endswith(
        "for OPEN /m/v/w.bin (HTTP 403: Client cannot authenticate via:[TOKEN, KERBEROS])"
    )
    e = s.session.error(401, None, "", "OPEN", "/m", None)
    assert isinstance(e, PermissionDenied) and "(HTTP 401)" in e.message and "HTTP/<host>" in (e.hint or "")
    e = s.session.error(403, "AccessControlException", "Permission denied: user=alice", "MKDIRS", "/m", None)
    assert e.message.startswith("permission denied: HDFS user 'alice' may not")
