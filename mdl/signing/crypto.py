"""Keys, DSSE signatures and certificate chains. ``cryptography`` is imported inside the functions only: the
CLI's start-up must not pay for it."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mdl.errors import ConfigError, IntegrityError
from mdl.signing.bundle import PAYLOAD_TYPE
from mdl.signing.statement import show

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey
    from cryptography.hazmat.primitives.hashes import HashAlgorithm
    from cryptography.x509 import Certificate

CURVES = ("secp256r1", "secp384r1", "secp521r1")
MAX_CHAIN_DEPTH = 8
CLOCK_SKEW = datetime.timedelta(minutes=5)


def load_private_key(pem: bytes, password: bytes | None) -> EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password)
    except TypeError as exc:  # a password for an unencrypted key, or none for an encrypted one
        raise ConfigError(f"signing key: {exc}") from None
    except ValueError:
        raise ConfigError("signing key is not a PEM private key, or its password is wrong") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in CURVES:
        raise ConfigError("signing key is not an elliptic-curve key on P-256, P-384 or P-521")
    return key


def load_public_key(pem: bytes) -> EllipticCurvePublicKey:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except ValueError:
        raise ConfigError("trusted key is not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in CURVES:
        raise ConfigError("trusted key is not an elliptic-curve key on P-256, P-384 or P-521")
    return key


def key_id(key: EllipticCurvePublicKey) -> str:
    """sha256 of the PEM SubjectPublicKeyInfo, hex: the reference's ``publicKey.hint``."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return hashlib.sha256(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def pae(payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of an in-toto payload."""
    return b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)


def sign_payload(key: EllipticCurvePrivateKey, payload: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec

    return key.sign(pae(payload), ec.ECDSA(_hash_for(key.curve.key_size)))


def signature_valid(key: EllipticCurvePublicKey, payload: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(signature, pae(payload), ec.ECDSA(_hash_for(key.curve.key_size)))
    except (InvalidSignature, ValueError):
        return False
    return True


def load_chain(pem: bytes) -> list[Certificate]:
    """The signer's certificate chain from config: the signing certificate first, then intermediates."""
    from cryptography import x509

    try:
        chain = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ConfigError("certificate chain is not PEM certificates") from None
    if len(chain) > MAX_CHAIN_DEPTH:
        raise ConfigError(f"certificate chain has more than {MAX_CHAIN_DEPTH} certificates")
    return chain


def load_anchors(cas: Sequence[bytes]) -> list[Certificate]:
    from cryptography import x509

    anchors = []
    for pem in cas:
        try:
            anchors.extend(x509.load_pem_x509_certificates(pem))
        except ValueError:
            raise ConfigError("trusted CA certificate is not PEM certificates") from None
    return anchors


def check_signing_certificate(cert: Certificate, key: EllipticCurvePrivateKey) -> None:
    """Before signing: the certificate must be the key's and allowed to sign code."""
    if cert.public_key() != key.public_key():
        raise ConfigError("signing certificate does not belong to the signing key")
    problem = usage_problem(cert)
    if problem:
        raise ConfigError(f"signing certificate {problem}")


def usage_problem(cert: Certificate) -> str | None:
    """Why the certificate may not sign models (KeyUsage digitalSignature and EKU codeSigning), or None."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            return "is not for digital signatures (KeyUsage)"
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        return f"has no {'KeyUsage' if exc.oid == x509.KeyUsage.oid else 'ExtendedKeyUsage'} extension"
    except ValueError:  # a malformed extension
        return "has malformed extensions"
    if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        return "is not for code signing (ExtendedKeyUsage)"
    return None


def verify_chain(ders: Sequence[bytes], cas: Sequence[bytes]) -> Certificate:
    """The signing certificate of a bundle's chain, once it chains to one of ``cas`` (validated at the signing
    certificate's notBefore, as the reference does) and may sign code. IntegrityError otherwise."""
    from cryptography import x509
    from cryptography.x509 import verification

    anchors = load_anchors(cas)
    try:
        chain = [x509.load_der_x509_certificate(d) for d in ders]
    except ValueError:
        raise IntegrityError("signature is not valid: its certificate chain holds a malformed certificate") from None
    leaf = chain[0]
    who = _subject(leaf)
    try:
        issued = leaf.not_valid_before_utc
    except ValueError:
        raise IntegrityError("signature is not valid: its signing certificate has a malformed validity") from None
    if issued > datetime.datetime.now(datetime.timezone.utc) + CLOCK_SKEW:
        raise IntegrityError(f"signing certificate {who} is not valid yet (from {issued:%Y-%m-%d %H:%M} UTC)")
    if not anchors:
        raise IntegrityError(f"signing certificate {who} is not trusted: no CA certificates are trusted")
    try:
        builder = (
            verification.PolicyBuilder()
            .store(verification.Store(anchors))
            .time(issued)
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=verification.ExtensionPolicy.permit_all(),  # usage_problem checks what signing needs
            )
        )
        builder.build_client_verifier().verify(leaf, chain[1:])
    except (verification.VerificationError, ValueError, TypeError) as exc:
        raise IntegrityError(
            f"signing certificate {who} does not chain to a trusted CA certificate",
            hint=show(str(exc)[:200]),
        ) from None
    problem = usage_problem(leaf)
    if problem:
        raise IntegrityError(f"signing certificate {who} {problem}")
    return leaf


def der(cert: Certificate) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)


def subject_of(cert: Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        raise IntegrityError("signature is not valid: its signing certificate has a malformed subject") from None


def _subject(cert: Certificate) -> str:
    return show(subject_of(cert))


def _hash_for(key_size: int) -> HashAlgorithm:
    from cryptography.hazmat.primitives import hashes

    return {256: hashes.SHA256(), 384: hashes.SHA384()}.get(key_size, hashes.SHA512())
