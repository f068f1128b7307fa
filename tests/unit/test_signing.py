"""mdl.signing: OpenSSF model-signing bundles for mdl versions, bound to name and version (issue 17).

Round trips (keys on three curves, certificates through an intermediate), every refusal with its exact
message, replay to another version or model, and hostile bundles: nothing but IntegrityError escapes."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from mdl.errors import ConfigError, IntegrityError
from mdl.manifest import FileEntry, Manifest, digest_of
from mdl.signing import Signer, bundle, crypto, key_id, sign, statement, verify

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "mdl-hypothesis")
NOW = datetime.now(timezone.utc)
CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING


# --- keys, certificates and manifests (shared with test_signing_interop.py) ---------------------------------


def new_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


def private_pem(key: Any, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def make_cert(
    cn: str,
    key: Any,
    issuer: x509.Certificate | None = None,
    issuer_key: Any = None,
    *,
    ca: bool = False,
    eku: list[x509.ObjectIdentifier] | None = None,
    digital_signature: bool = True,
    not_before: datetime | None = None,
    days: int = 30,
) -> x509.Certificate:
    """A certificate for ``key``, self-signed unless ``issuer`` is given; end-entity certificates get
    codeSigning unless ``eku`` says otherwise (``[]``: no ExtendedKeyUsage extension at all)."""
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    start = not_before or NOW - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature and not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    eku = [CODE_SIGNING] if eku is None and not ca else eku
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


class Pki:
    """A root CA, an intermediate CA, and a code-signing certificate issued by the intermediate."""

    def __init__(self, root_cn: str = "root") -> None:
        self.root_key, self.inter_key, self.key = new_key(ec.SECP384R1()), new_key(), new_key()
        since = NOW - timedelta(days=1000)  # CAs outlive the certificates they issue
        self.root = make_cert(root_cn, self.root_key, ca=True, not_before=since, days=3000)
        self.inter = make_cert(
            "intermediate", self.inter_key, self.root, self.root_key, ca=True, not_before=since, days=3000
        )
        self.leaf = make_cert("release-manager", self.key, self.inter, self.inter_key)

    def issue(self, **kwargs: Any) -> tuple[Any, x509.Certificate]:
        key = new_key()
        return key, make_cert("release-manager", key, self.inter, self.inter_key, **kwargs)

    @property
    def chain(self) -> bytes:
        return cert_pem(self.leaf, self.inter)

    @property
    def ca(self) -> bytes:
        return cert_pem(self.root)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(name: str = "lr", version: str = "v1", files: dict[str, bytes] | None = None) -> Manifest:
    files = files if files is not None else CONTENT
    entries = [FileEntry(p, len(d), sha(d)) for p, d in files.items()]
    return Manifest(
        name, version, entries, digest_of(entries), "2026-12-02T00:00:00.000000Z", "u@h", "0.1.0", "pickle", "directory"
    )


# "a-b" sorts before "a/c" as a string, after it component-wise (the reference's order)
CONTENT = {"model.pkl": b"weights", "a/c": b"nested", "a-b": b"dash", "README.md": b"# lr"}


# --- helpers ------------------------------------------------------------------------------------------------


def refused(data: bytes, m: Manifest, **anchors: Any) -> str:
    anchors.setdefault("keys", [])
    anchors.setdefault("cas", [])
    with pytest.raises(IntegrityError) as exc:
        verify(data, m, **anchors)
    assert exc.value.exit_code == 8
    return exc.value.message


def doc_of(data: bytes) -> dict[str, Any]:
    return json.loads(data)


def payload_of(data: bytes) -> dict[str, Any]:
    return json.loads(base64.b64decode(doc_of(data)["dsseEnvelope"]["payload"]))


def signed_bundle(
    payload: bytes, key: Any, *, hint: str | None = None, certs: tuple[x509.Certificate, ...] = ()
) -> bytes:
    """A bundle over any payload, validly signed (to reach the checks behind the signature)."""
    return bundle.encode(
        payload, crypto.sign_payload(key, payload), key_hint=hint, certificates=[crypto.der(c) for c in certs]
    )


def with_doc(data: bytes, change: Any) -> bytes:
    doc = doc_of(data)
    change(doc)
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return new_key()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="module")
def signed(key: ec.EllipticCurvePrivateKey) -> bytes:
    return sign(manifest(), private_pem(key))


# --- round trips --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()], ids=lambda c: c.name)
def test_key_round_trip(curve: ec.EllipticCurve) -> None:
    k = new_key(curve)
    data = sign(manifest(), private_pem(k))
    kid = key_id(public_pem(k))
    assert verify(data, manifest(), keys=[public_pem(new_key()), public_pem(k)], cas=[]) == Signer("key", kid)
    assert kid == sha(public_pem(k))  # the reference's publicKey.hint: sha256 of the PEM SubjectPublicKeyInfo


def test_bundle_is_the_reference_format(signed: bytes, key: ec.EllipticCurvePrivateKey) -> None:
    doc = doc_of(signed)
    assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert doc["verificationMaterial"] == {"publicKey": {"hint": sha(public_pem(key))}, "tlogEntries": []}
    envelope = doc["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert [set(s) for s in envelope["signatures"]] == [{"sig", "keyid"}]
    order = ["README.md", "a/c", "a-b", "model.pkl"]
    assert payload_of(signed) == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "lr/v1", "digest": {"sha256": sha(b"".join(bytes.fromhex(sha(CONTENT[p])) for p in order))}}
        ],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": [".mdl-manifest.json"],
            },
            "resources": [{"name": p, "algorithm": "sha256", "digest": sha(CONTENT[p])} for p in order],
        },
    }
    # the signature is ECDSA over the DSSE v1 pre-authentication encoding of the payload
    payload = base64.b64decode(envelope["payload"])
    pae = b"DSSEv1 28 application/vnd.in-toto+json %d %s" % (len(payload), payload)
    key.public_key().verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))


def test_signing_reads_the_manifest_not_the_files(key: ec.EllipticCurvePrivateKey) -> None:
    m = manifest(files={"huge.bin": b""})
    m.files[0] = FileEntry("huge.bin", 1 << 40, "ab" * 32)  # a TiB that exists nowhere: only its digest is signed
    assert verify(sign(m, private_pem(key)), m, keys=[public_pem(key)], cas=[]).method == "key"


def test_encrypted_key(key: ec.EllipticCurvePrivateKey) -> None:
    pem = private_pem(key, b"s3cret")
    assert verify(sign(manifest(), pem, b"s3cret"), manifest(), keys=[public_pem(key)], cas=[]).method == "key"
    with pytest.raises(ConfigError, match="^signing key is not a PEM private key, or its password is wrong$"):
        sign(manifest(), pem, b"wrong")


def test_certificate_round_trip(pki: Pki) -> None:
    data = sign(manifest(), private_pem(pki.key), cert_chain_pem=pki.chain)
    material = doc_of(data)["verificationMaterial"]
    assert material["x509CertificateChain"]["certificates"] == [
        {"rawBytes": base64.b64encode(crypto.der(c)).decode()} for c in (pki.leaf, pki.inter)
    ]
    assert "publicKey" not in material
    signer = verify(data, manifest(), keys=[], cas=[cert_pem(Pki("other root").root), pki.ca])
    assert signer == Signer("certificate", key_id(public_pem(pki.key)), "CN=release-manager,O=Example")


def test_expired_certificate_still_verifies(pki: Pki) -> None:
    # validated at the signing certificate's notBefore, as the reference does (no trusted timestamp offline)
    key, leaf = pki.issue(not_before=NOW - timedelta(days=400), days=30)
    data = signed_bundle(statement.encode(manifest()), key, certs=(leaf, pki.inter))
    assert verify(data, manifest(), keys=[], cas=[pki.ca]).method == "certificate"
    # ... but the CAs must have been valid then
    key, leaf = pki.issue(not_before=NOW - timedelta(days=2000), days=30)
    data = signed_bundle(statement.encode(manifest()), key, certs=(leaf, pki.inter))
    assert refused(data, manifest(), cas=[pki.ca]) == (
        "signing certificate CN=release-manager,O=Example does not chain to a trusted CA certificate"
    )


# --- refusals: binding and files ----------------------------------------------------------------------------


def test_replay_to_another_version_or_model(signed: bytes, key: ec.EllipticCurvePrivateKey) -> None:
    keys = [public_pem(key)]
    assert refused(signed, manifest("lr", "v9"), keys=keys) == "signature was signed for lr/v1, not lr/v9"
    assert refused(signed, manifest("other", "v1"), keys=keys) == "signature was signed for lr/v1, not other/v1"


def test_a_bare_directory_subject_binds_nothing(key: ec.EllipticCurvePrivateKey) -> None:
    doc = json.loads(statement.encode(manifest()))
    doc["subject"][0]["name"] = "v1"  # what the reference tool writes: the directory's name
    data = signed_bundle(json.dumps(doc).encode(), key, hint=key_id(public_pem(key)))
    assert refused(data, manifest(), keys=[public_pem(key)]) == (
        "signature is not bound to an mdl version: its subject is v1, a directory name"
    )


def test_files_must_match_the_manifest(signed: bytes, key: ec.EllipticCurvePrivateKey) -> None:
    keys = [public_pem(key)]
    changed = manifest(files={**CONTENT, "model.pkl": b"tampered"})
    assert refused(signed, changed, keys=keys) == (
        f"model.pkl of lr/v1 differs from the signed file (sha256 {sha(b'tampered')[:16]}…, "
        f"signed {sha(b'weights')[:16]}…)"
    )
    assert refused(signed, manifest(files={**CONTENT, "extra.txt": b"x"}), keys=keys) == (
        "signature does not cover extra.txt of lr/v1"
    )
    fewer = {p: d for p, d in CONTENT.items() if p != "a-b"}
    assert refused(signed, manifest(files=fewer), keys=keys) == "signature covers a-b, which lr/v1 does not have"


# --- refusals: signatures, keys, certificates ---------------------------------------------------------------

BAD_SIGNATURE = "signature does not match the signed content or the trusted key (bad signature)"


def test_tampered_payload(signed: bytes, key: ec.EllipticCurvePrivateKey) -> None:
    doc = payload_of(signed)
    doc["subject"][0]["name"] = "lr/v9"
    forged = with_doc(
        signed, lambda d: d["dsseEnvelope"].update(payload=base64.b64encode(json.dumps(doc).encode()).decode())
    )
    assert refused(forged, manifest("lr", "v9"), keys=[public_pem(key)]) == BAD_SIGNATURE


def test_tampered_signature(signed: bytes, key: ec.EllipticCurvePrivateKey) -> None:
    sig = bytearray(base64.b64decode(doc_of(signed)["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    forged = with_doc(signed, lambda d: d["dsseEnvelope"]["signatures"][0].update(sig=base64.b64encode(sig).decode()))
    assert refused(forged, manifest(), keys=[public_pem(key)]) == BAD_SIGNATURE


def test_wrong_key(signed: bytes, key: ec.EllipticCurvePrivateKey) -> None:
    other = new_key()
    assert refused(signed, manifest(), keys=[public_pem(other)]) == (
        f"signature was made with key {key_id(public_pem(key))}, which is not trusted"
    )
    assert refused(signed, manifest()) == f"signature was made with key {key_id(public_pem(key))}, which is not trusted"
    # a hint naming a trusted key does not make another key's signature valid
    lying = with_doc(signed, lambda d: d["verificationMaterial"]["publicKey"].update(hint=key_id(public_pem(other))))
    assert refused(lying, manifest(), keys=[public_pem(other)]) == BAD_SIGNATURE


def test_bundle_without_key_hint(signed: bytes, key: ec.EllipticCurvePrivateKey) -> None:
    # the reference's older bundles name no key: every trusted key is tried
    anonymous = with_doc(signed, lambda d: d["verificationMaterial"]["publicKey"].pop("hint"))
    other = public_pem(new_key())
    assert verify(anonymous, manifest(), keys=[other, public_pem(key)], cas=[]) == Signer(
        "key", key_id(public_pem(key))
    )
    assert refused(anonymous, manifest(), keys=[other]) == BAD_SIGNATURE
    assert refused(anonymous, manifest()) == "signature names no key and no public keys are trusted"


def test_untrusted_ca(pki: Pki) -> None:
    data = sign(manifest(), private_pem(pki.key), cert_chain_pem=pki.chain)
    assert refused(data, manifest(), cas=[cert_pem(Pki().root)]) == (
        "signing certificate CN=release-manager,O=Example does not chain to a trusted CA certificate"
    )
    assert refused(data, manifest(), keys=[public_pem(pki.key)]) == (
        "signing certificate CN=release-manager,O=Example is not trusted: no CA certificates are trusted"
    )
    # a self-signed "CA" carried in the bundle is not an anchor
    rogue_key = new_key()
    rogue = make_cert("rogue", rogue_key, ca=True)
    leaf = make_cert("release-manager", pki.key, rogue, rogue_key)
    forged = signed_bundle(statement.encode(manifest()), pki.key, certs=(leaf, rogue))
    assert refused(forged, manifest(), cas=[pki.ca]) == (
        "signing certificate CN=release-manager,O=Example does not chain to a trusted CA certificate"
    )


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"eku": [ExtendedKeyUsageOID.SERVER_AUTH]}, "is not for code signing (ExtendedKeyUsage)"),
        ({"eku": []}, "has no ExtendedKeyUsage extension"),
        ({"digital_signature": False}, "is not for digital signatures (KeyUsage)"),
    ],
)
def test_certificate_usage(pki: Pki, kwargs: dict[str, Any], problem: str) -> None:
    key, leaf = pki.issue(**kwargs)
    data = signed_bundle(statement.encode(manifest()), key, certs=(leaf, pki.inter))
    assert refused(data, manifest(), cas=[pki.ca]) == f"signing certificate CN=release-manager,O=Example {problem}"
    with pytest.raises(ConfigError, match=f"^signing certificate {problem}".replace("(", r"\(").replace(")", r"\)")):
        sign(manifest(), private_pem(key), cert_chain_pem=cert_pem(leaf, pki.inter))


def test_certificate_not_valid_yet(pki: Pki) -> None:
    start = (NOW + timedelta(days=2)).replace(second=0, microsecond=0)
    key, leaf = pki.issue(not_before=start)
    data = signed_bundle(statement.encode(manifest()), key, certs=(leaf, pki.inter))
    assert refused(data, manifest(), cas=[pki.ca]) == (
        f"signing certificate CN=release-manager,O=Example is not valid yet (from {start:%Y-%m-%d %H:%M} UTC)"
    )


def test_certificate_signature_by_another_key(pki: Pki) -> None:
    data = signed_bundle(statement.encode(manifest()), new_key(), certs=(pki.leaf, pki.inter))
    assert refused(data, manifest(), cas=[pki.ca]) == (
        "signature does not match the signed content or the signing certificate (bad signature)"
    )


def test_signing_refuses_unusable_keys(pki: Pki) -> None:
    rsa_pem = private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(ConfigError, match="^signing key is not an elliptic-curve key on P-256, P-384 or P-521$"):
        sign(manifest(), rsa_pem)
    with pytest.raises(ConfigError, match="^signing key is not a PEM private key, or its password is wrong$"):
        sign(manifest(), b"not a key")
    with pytest.raises(ConfigError, match="^signing certificate does not belong to the signing key$"):
        sign(manifest(), private_pem(new_key()), cert_chain_pem=pki.chain)
    with pytest.raises(ConfigError, match="^trusted key is not a PEM public key$"):
        key_id(b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match="^trusted CA certificate is not PEM certificates$"):
        verify(sign(manifest(), private_pem(pki.key), cert_chain_pem=pki.chain), manifest(), keys=[], cas=[b"x"])


# --- hostile bundles ----------------------------------------------------------------------------------------


def test_size_is_checked_before_parsing(signed: bytes) -> None:
    limit = bundle.size_limit(manifest())
    assert refused(b" " * (limit + 1), manifest()) == f"signature is larger than {limit} bytes"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n", "signature is not valid: its bundle is not JSON"),
        (b"", "signature is not valid: its bundle is not JSON"),
        (b"[" * 200_000, "signature is not valid: its bundle is nested too deeply"),
        (b"9" * 10_000, "signature is not valid: its bundle is not JSON"),
        (b"[]", "signature is not valid: the bundle is not a Sigstore bundle"),
        (
            b'{"mediaType": {"x": 1}}',
            "signature is not valid: the bundle has media type dict, not application/vnd.dev.sigstore.bundle.v0.3+json",
        ),
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.1+json"}',
            "signature is not valid: the bundle has media type application/vnd.dev.sigstore.bundle.v0.1+json, "
            "not application/vnd.dev.sigstore.bundle.v0.3+json",
        ),
    ],
)
def test_not_a_bundle(data: bytes, message: str) -> None:
    assert refused(data, manifest()) == message


def _mutations() -> list[tuple[str, Any, str]]:
    def set_(path: list[Any], value: Any) -> Any:
        def change(doc: dict[str, Any]) -> None:
            for p in path[:-1]:
                doc = doc[p]
            if value is _DELETE:
                del doc[path[-1]]
            else:
                doc[path[-1]] = value

        return change

    vm, env = "verificationMaterial", "dsseEnvelope"
    bad = "signature is not valid: the bundle "
    return [
        ("no material", set_([vm], _DELETE), bad + "has no verificationMaterial object"),
        ("material list", set_([vm], []), bad + "has no verificationMaterial object"),
        (
            "tlog",
            set_([vm, "tlogEntries"], [{}]),
            bad + "has transparency log entries: mdl verifies offline key and certificate signatures only",
        ),
        (
            "keyless",
            set_([vm, "publicKey"], _DELETE),
            bad + "must carry either a public key hint or a certificate chain (keyless signatures are not supported)",
        ),
        (
            "both",
            set_([vm, "x509CertificateChain"], {"certificates": []}),
            bad + "must carry either a public key hint or a certificate chain (keyless signatures are not supported)",
        ),
        ("hint type", set_([vm, "publicKey", "hint"], 7), bad + "has a public key hint that is not a sha256"),
        ("hint text", set_([vm, "publicKey", "hint"], "\x1b[31m"), bad + "has a public key hint that is not a sha256"),
        ("no envelope", set_([env], _DELETE), bad + "has no dsseEnvelope object"),
        (
            "payload type",
            set_([env, "payloadType"], "text/plain"),
            bad + "has payload type text/plain, not application/vnd.in-toto+json",
        ),
        ("no signature", set_([env, "signatures"], []), bad + "must hold exactly one signature"),
        (
            "two signatures",
            lambda d: d[env]["signatures"].append(d[env]["signatures"][0]),
            bad + "must hold exactly one signature",
        ),
        ("signature type", set_([env, "signatures", 0], "sig"), bad + "must hold exactly one signature"),
        ("payload missing", set_([env, "payload"], _DELETE), bad + "has no payload"),
        ("payload number", set_([env, "payload"], 12), bad + "has no payload"),
        ("payload base64", set_([env, "payload"], "not*base64"), bad + "has a payload that is not base64"),
        ("sig base64", set_([env, "signatures", 0, "sig"], "@@@"), bad + "has a signature value that is not base64"),
    ]


_DELETE = object()


@pytest.mark.parametrize(("change", "message"), [m[1:] for m in _mutations()], ids=[m[0] for m in _mutations()])
def test_malformed_bundle(signed: bytes, key: ec.EllipticCurvePrivateKey, change: Any, message: str) -> None:
    assert refused(with_doc(signed, change), manifest(), keys=[public_pem(key)]) == message


def test_malformed_certificate_chain(pki: Pki) -> None:
    data = sign(manifest(), private_pem(pki.key), cert_chain_pem=pki.chain)
    chain = ["verificationMaterial", "x509CertificateChain", "certificates"]

    def certs(value: Any) -> bytes:
        return with_doc(data, lambda d: d[chain[0]][chain[1]].update(certificates=value))

    der = base64.b64encode(crypto.der(pki.leaf)).decode()
    bad = "signature is not valid: "
    assert refused(certs([]), manifest(), cas=[pki.ca]) == bad + "the bundle must carry 1 to 8 certificates"
    assert refused(certs([{"rawBytes": der}] * 9), manifest(), cas=[pki.ca]) == (
        bad + "the bundle must carry 1 to 8 certificates"
    )
    assert refused(certs(["x"]), manifest(), cas=[pki.ca]) == bad + "the bundle has no certificate"
    assert refused(certs([{"rawBytes": base64.b64encode(b"\x30\x03abc").decode()}]), manifest(), cas=[pki.ca]) == (
        bad + "its certificate chain holds a malformed certificate"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d.update(predicateType="https://slsa.dev/provenance/v1"),
            "is not a model signature (predicateType https://slsa.dev/provenance/v1)",
        ),
        (
            lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"),
            "is not an in-toto Statement v1 (_type https://in-toto.io/Statement/v0.1)",
        ),
        (lambda d: d["subject"].append(d["subject"][0]), "must name exactly one subject"),
        (lambda d: d["subject"][0].pop("digest"), "has no subject digest object"),
        (
            lambda d: d["predicate"]["serialization"].update(hash_type="blake3"),
            "uses serialization files/blake3; mdl verifies files/sha256 signatures only",
        ),
        (
            lambda d: d["predicate"]["resources"][0].update(algorithm="md5"),
            "has a resource that is not a name with a sha256 digest (README.md)",
        ),
        (lambda d: d["predicate"]["resources"].append(d["predicate"]["resources"][0]), "lists README.md twice"),
        (
            lambda d: d["subject"][0]["digest"].update(sha256="0" * 64),
            "is inconsistent: its subject digest does not match its resources",
        ),
        (lambda d: d["predicate"].update(resources={}), "must list at most 200000 resources"),
    ],
)
def test_signed_but_malformed_statement(key: ec.EllipticCurvePrivateKey, edit: Any, message: str) -> None:
    doc = json.loads(statement.encode(manifest()))
    edit(doc)
    data = signed_bundle(json.dumps(doc).encode(), key, hint=key_id(public_pem(key)))
    assert (
        refused(data, manifest(), keys=[public_pem(key)]) == f"signature is not valid: its signed statement {message}"
    )


def test_signed_payload_that_is_not_json(key: ec.EllipticCurvePrivateKey) -> None:
    keys = [public_pem(key)]
    hint = key_id(public_pem(key))
    assert refused(signed_bundle(b"\xff{", key, hint=hint), manifest(), keys=keys) == (
        "signature is not valid: its signed statement is not JSON"
    )
    assert refused(signed_bundle(b"[" * 100_000, key, hint=hint), manifest(), keys=keys) == (
        "signature is not valid: its signed statement is nested too deeply"
    )
    assert refused(signed_bundle(b"[1]", key, hint=hint), manifest(), keys=keys) == (
        "signature is not valid: its signed statement has no statement object"
    )


FUZZ = settings(database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(data=st.data())
def test_fuzz_only_integrity_errors(data: st.DataObject) -> None:
    k, p = _FUZZ_STATE["key"], _FUZZ_STATE["pki"]
    m = manifest()
    base = data.draw(st.sampled_from([_FUZZ_STATE["key_bundle"], _FUZZ_STATE["cert_bundle"]]))
    how = data.draw(st.sampled_from(["bytes", "json", "payload"]))
    if how == "bytes":  # flip, cut and splice raw bytes
        raw = bytearray(base)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        mutated = bytes(raw[: data.draw(st.integers(0, len(raw)))]) if data.draw(st.booleans()) else bytes(raw)
    else:  # replace one JSON value anywhere, in the bundle or in the (re-signed) statement
        doc = doc_of(base) if how == "json" else payload_of(base)
        _replace_somewhere(doc, data)
        if how == "json":
            mutated = json.dumps(doc).encode()
        else:
            certs = (p.leaf, p.inter) if base is _FUZZ_STATE["cert_bundle"] else ()
            signer = p.key if certs else k
            mutated = signed_bundle(
                json.dumps(doc).encode(), signer, hint=None if certs else key_id(public_pem(k)), certs=certs
            )
    try:
        verify(mutated, m, keys=[public_pem(k)], cas=[p.ca])
    except IntegrityError as exc:
        assert exc.message and "\n" not in exc.message


def _replace_somewhere(doc: Any, data: st.DataObject) -> None:
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        k = data.draw(st.sampled_from(keys))
        child = node[k]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        node[k] = data.draw(JSON)
        return


_FUZZ_STATE: dict[str, Any] = {}


@pytest.fixture(autouse=True, scope="module")
def _fuzz_state(key: ec.EllipticCurvePrivateKey, pki: Pki, signed: bytes) -> None:
    _FUZZ_STATE.update(
        key=key,
        pki=pki,
        key_bundle=signed,
        cert_bundle=sign(manifest(), private_pem(pki.key), cert_chain_pem=pki.chain),
    )


def test_importing_mdl_signing_does_not_import_cryptography() -> None:
    code = "import sys, mdl.signing; print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == "[]\n"
