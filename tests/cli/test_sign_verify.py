"""mdl sign, mdl verify, push --sign and --require-signature (issue 17): exact output and exit codes."""

from __future__ import annotations

import json
import os

import pytest

from mdl.client import Client
from mdl.config import load
from mdl.watch import Watcher, WatchOptions

from ..contract.test_signatures import Keys
from ..helpers import until

CONFIG, INTEGRITY, FAILED = 7, 8, 1


@pytest.fixture
def keys(tmp_path) -> Keys:
    return Keys(tmp_path / "keys")


@pytest.fixture
def lr(cli, tmp_path):
    """lr/v1 (latest) and lr/v2, unsigned."""
    for v in ("v1", "v2"):
        p = tmp_path / v / "model.pkl"
        p.parent.mkdir()
        p.write_bytes(f"weights {v}".encode())
        assert cli("push", "lr", str(p), "--version", v, *(["--promote"] if v == "v1" else [])).exit_code == 0


def kid(keys: Keys, name: str) -> str:
    from mdl.signing import key_id

    return key_id((keys.dir / f"{name}.pub").read_bytes())


@pytest.fixture
def trust(keys, monkeypatch):
    """trust(signing=..., trusted=..., ca=...): set the trust.* environment for the next commands."""

    def set_env(signing: str | None = None, chain: bool = False, trusted: str | None = None, ca: str | None = None):
        for var in ("SIGNING_KEY", "SIGNING_CERT_CHAIN", "KEYS", "CA"):
            monkeypatch.delenv(f"MDL_TRUST_{var}", raising=False)
        if signing:
            monkeypatch.setenv("MDL_TRUST_SIGNING_KEY", keys.path(f"{signing}.key"))
            if chain:
                monkeypatch.setenv("MDL_TRUST_SIGNING_CERT_CHAIN", keys.path(f"{signing}.chain"))
        if trusted:
            monkeypatch.setenv("MDL_TRUST_KEYS", ",".join(keys.path(k) for k in trusted.split(",")))
        if ca:
            monkeypatch.setenv("MDL_TRUST_CA", keys.path(ca))

    return set_env


def test_sign_prints_the_key_id_and_is_idempotent(cli, lr, keys, trust):
    a = kid(keys, "a")
    trust(signing="a")
    r = cli("sign", "lr", "v1")
    assert (r.exit_code, r.stdout, r.stderr) == (0, a + "\n", f"signed lr/v1 with key {a}\n")
    r = cli("sign", "lr", "v1")
    assert (r.exit_code, r.stdout, r.stderr) == (0, a + "\n", "unchanged: lr/v1 is already signed by this key\n")
    r = cli("sign", "lr", "v1", "-o", "json")
    assert json.loads(r.stdout) == {
        "name": "lr", "version": "v1", "method": "key", "key_id": a, "subject": None, "added": False,
    }


def test_sign_without_a_key_exits_7_with_a_hint(cli, lr, trust):
    trust()
    r = cli("sign", "lr", "v1")
    assert (r.exit_code, r.stdout) == (CONFIG, "")
    assert r.stderr == (
        "error: no signing key is configured\n"
        "hint: set trust.signing_key (or MDL_TRUST_SIGNING_KEY) to a PEM private key file\n"
    )


def test_sign_a_missing_version_exits_3(cli, lr, trust):
    trust(signing="a")
    r = cli("sign", "lr", "v9")
    assert r.exit_code == 3 and r.stderr.startswith("error: version lr/v9 does not exist\n")


def test_verify_lists_valid_and_invalid_signatures(cli, lr, keys, trust):
    a, b = kid(keys, "a"), kid(keys, "b")
    trust(signing="a")
    cli("sign", "lr", "v1")
    trust(signing="b")
    cli("sign", "lr", "v1")
    trust(signing="ok", chain=True)
    cli("sign", "lr", "v1")
    ok = kid_of_cert(keys)
    trust(trusted="a.pub", ca="ok.ca")
    r = cli("verify", "lr", "v1")
    assert r.exit_code == 0, r.stderr
    rows = sorted(r.stdout.splitlines()[1:])
    assert r.stdout.splitlines()[0] == "STATUS\tMETHOD\tKEY ID\tSUBJECT / REASON"
    assert rows == sorted([
        f"valid\tkey\t{a}\t-",
        f"invalid\t-\t{b}\tsignature was made with key {b}, which is not trusted",
        f"valid\tcertificate\t{ok}\tCN=release-manager,O=Example",
    ])
    assert r.stderr == "verified lr/v1: 2 valid signatures, 1 invalid\n"
    doc = json.loads(cli("verify", "lr", "--alias", "latest", "-o", "json").stdout)
    assert (doc["name"], doc["version"], doc["valid"]) == ("lr", "v1", True)
    by_id = {s["signature"]: s for s in doc["signatures"]}
    assert by_id[a] == {"signature": a, "valid": True, "method": "key", "key_id": a, "subject": None, "reason": None}
    assert by_id[b]["valid"] is False and by_id[b]["reason"].endswith("which is not trusted")


def kid_of_cert(keys: Keys) -> str:
    from cryptography.hazmat.primitives import serialization

    from mdl.signing import key_id

    private = serialization.load_pem_private_key((keys.dir / "ok.key").read_bytes(), None)
    return key_id(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def test_verify_an_unsigned_or_untrusted_version_exits_8(cli, lr, trust):
    trust(trusted="a.pub")
    r = cli("verify", "lr", "v2")
    assert (r.exit_code, r.stdout) == (INTEGRITY, "")
    assert r.stderr == "error: version lr/v2 is not signed\nhint: sign it with a trusted key: mdl sign lr v2\n"
    trust(signing="b")
    cli("sign", "lr", "v2")
    trust(trusted="a.pub")
    r = cli("verify", "lr", "v2", "-o", "json")
    assert r.exit_code == INTEGRITY and json.loads(r.stdout)["valid"] is False
    assert r.stderr.splitlines()[1] == "hint: see its signatures with: mdl verify lr v2"
    trust()
    r = cli("verify", "lr", "v2")
    assert r.exit_code == CONFIG and r.stderr.startswith("error: no trust anchors are configured")


def test_push_sign_says_who_signed(cli, keys, trust, tmp_path):
    a = kid(keys, "a")
    p = tmp_path / "m.pkl"
    p.write_bytes(b"weights")
    trust(signing="a")
    r = cli("push", "lr", str(p), "--version", "v1", "--sign", "--promote")
    assert r.exit_code == 0 and r.stdout == "v1\n"
    lines = r.stderr.splitlines()
    assert lines[1:] == [f"signed lr/v1 with key {a}", "lr:latest -> v1"]
    doc = json.loads(cli("push", "lr", str(p), "--version", "v1", "--sign", "-o", "json").stdout)
    assert doc["signature"] == {"method": "key", "key_id": a, "subject": None, "added": False}
    assert "signature" not in json.loads(cli("push", "lr", str(p), "--version", "v1", "-o", "json").stdout)


def test_pull_require_signature_exits_8_leaving_nothing(cli, lr, trust, tmp_path):
    trust(trusted="a.pub")
    dest = tmp_path / "out" / "lr"
    r = cli("pull", "lr", "v2", "-d", str(dest), "--require-signature")
    assert (r.exit_code, r.stdout) == (INTEGRITY, "")
    assert r.stderr == "error: version lr/v2 is not signed\nhint: sign it with a trusted key: mdl sign lr v2\n"
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []
    trust(signing="a", trusted="a.pub")
    cli("sign", "lr", "v2")
    r = cli("pull", "lr", "v2", "-d", str(dest), "--require-signature")
    assert r.exit_code == 0 and r.stdout == f"{dest}\n"


def test_require_signature_is_offered_by_watch_and_serve(cli):
    for command in ("pull", "watch", "serve"):
        assert "--require-signature" in cli(command, "-h").stdout


def test_promote_wait_exits_1_when_a_replica_refuses_an_unsigned_version(cli, lr, keys, trust, backend_env, tmp_path):
    trust(signing="a")
    cli("sign", "lr", "v1")
    env = {**backend_env, "MDL_TRUST_KEYS": keys.path("a.pub"), "MDL_TRUST_REQUIRE_SIGNATURE": "1"}
    w = Watcher(Client(load(env=env)), "lr", tmp_path / "dir", WatchOptions(heartbeat=0.5))
    w.start()
    try:
        until(lambda: w.state == "ready", timeout=20)
        r = cli("promote", "lr", "v2", "--wait", "--timeout", "20")
        assert r.exit_code == FAILED, r.stderr
        assert "version lr/v2 is not signed" in r.stderr
        assert w.dir.current == "v1" and w.state == "failed"
    finally:
        w.stop()
        w.client.close()


def test_an_encrypted_key_takes_its_password_from_the_environment(cli, lr, keys, monkeypatch, tmp_path):
    from ..unit.test_signing import new_key, private_pem, public_pem

    key = new_key()
    (tmp_path / "enc.key").write_bytes(private_pem(key, b"s3cret"))
    (tmp_path / "enc.pub").write_bytes(public_pem(key))
    monkeypatch.setenv("MDL_TRUST_SIGNING_KEY", str(tmp_path / "enc.key"))
    r = cli("sign", "lr", "v1")
    assert (r.exit_code, r.stdout) == (CONFIG, "")
    assert r.stderr == (
        f"error: trust.signing_key {str(tmp_path / 'enc.key')!r}: Password was not given but private key is encrypted\n"
        "hint: an encrypted key's password is read from env MDL_TRUST_SIGNING_KEY_PASSWORD\n"
    )
    monkeypatch.setenv("MDL_TRUST_SIGNING_KEY_PASSWORD", "s3cret")
    r = cli("sign", "lr", "v1")
    assert r.exit_code == 0, r.stderr
    monkeypatch.setenv("MDL_TRUST_KEYS", str(tmp_path / "enc.pub"))
    assert cli("verify", "lr", "v1").exit_code == 0
