"""sign() and verify(): a version's manifest to an OpenSSF model-signing bundle and back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mdl.errors import IntegrityError
from mdl.manifest import Manifest
from mdl.signing import bundle, crypto, statement


@dataclass(frozen=True)
class Signer:
    """Who signed a verified version: a trusted key, or a certificate that chains to a trusted CA."""

    method: Literal["key", "certificate"]
    key_id: str  # sha256 of the signing public key's PEM SubjectPublicKeyInfo, hex
    subject: str | None = None  # the signing certificate's subject (RFC 4514), certificate mode only


def sign(
    manifest: Manifest, private_key_pem: bytes, password: bytes | None = None, cert_chain_pem: bytes | None = None
) -> bytes:
    """The bundle (JSON bytes) signing ``manifest``'s files and digests, bound to its name and version.
    With ``cert_chain_pem`` (the signing certificate, then intermediates) it is a certificate signature.
    ConfigError if the key or the chain cannot be used."""
    key = crypto.load_private_key(private_key_pem, password)
    chain = crypto.load_chain(cert_chain_pem) if cert_chain_pem is not None else []
    if chain:
        crypto.check_signing_certificate(chain[0], key)
    payload = statement.encode(manifest)
    signature = crypto.sign_payload(key, payload)
    hint = None if chain else crypto.key_id(key.public_key())
    return bundle.encode(payload, signature, key_hint=hint, certificates=[crypto.der(c) for c in chain])


def verify(data: bytes, manifest: Manifest, *, keys: Sequence[bytes], cas: Sequence[bytes]) -> Signer:
    """Check an untrusted bundle against ``manifest`` with local trust anchors: ``keys`` (PEM public keys) for
    key signatures, ``cas`` (PEM CA certificates) for certificate signatures. Returns who signed; raises
    IntegrityError naming the first problem (ConfigError if an anchor itself is unusable)."""
    parsed = bundle.decode(data, bundle.size_limit(manifest))
    signer = _certificate_signer(parsed, cas) if parsed.certificates else _key_signer(parsed, keys)
    statement.check(parsed.payload, manifest)
    return signer


def key_id(public_key_pem: bytes) -> str:
    """The id mdl shows for a public key: the reference's ``publicKey.hint`` (sha256 of its PEM SPKI)."""
    return crypto.key_id(crypto.load_public_key(public_key_pem))


def _key_signer(parsed: bundle.Bundle, keys: Sequence[bytes]) -> Signer:
    trusted = {crypto.key_id(k): k for k in map(crypto.load_public_key, keys)}
    if parsed.key_hint is not None:
        if parsed.key_hint not in trusted:
            raise IntegrityError(
                f"signature was made with key {parsed.key_hint}, which is not trusted",
                hint="trust a public key only from your own configuration, never from where the model is stored",
            )
        candidates = {parsed.key_hint: trusted[parsed.key_hint]}
    else:  # the reference's older bundles name no key
        candidates = trusted
    for kid, key in candidates.items():
        if crypto.signature_valid(key, parsed.payload, parsed.signature):
            return Signer("key", kid)
    if not candidates:
        raise IntegrityError("signature names no key and no public keys are trusted")
    raise IntegrityError("signature does not match the signed content or the trusted key (bad signature)")


def _certificate_signer(parsed: bundle.Bundle, cas: Sequence[bytes]) -> Signer:
    from cryptography.hazmat.primitives.asymmetric import ec

    leaf = crypto.verify_chain(parsed.certificates, cas)
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in crypto.CURVES:
        raise IntegrityError("signing certificate's key is not an elliptic-curve key on P-256, P-384 or P-521")
    if not crypto.signature_valid(key, parsed.payload, parsed.signature):
        raise IntegrityError("signature does not match the signed content or the signing certificate (bad signature)")
    return Signer("certificate", crypto.key_id(key), crypto.subject_of(leaf))
