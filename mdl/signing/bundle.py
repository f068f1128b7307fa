"""The Sigstore bundle v0.3 (JSON) around a DSSE envelope: written as the reference writes it, read as untrusted
input (bounded size, strict types, strict base64)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mdl.errors import IntegrityError
from mdl.manifest import Manifest
from mdl.signing.statement import load_json, show

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_CERTIFICATES = 8  # the signing certificate and its intermediates
BASE_LIMIT = 1024 * 1024  # everything but the per-file resources
_HINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Bundle:
    """What a bundle carries: the signed payload, one signature, and either a key hint or a certificate chain."""

    payload: bytes
    signature: bytes
    key_hint: str | None  # key mode: sha256 of the signer's public key (PEM SubjectPublicKeyInfo), if given
    certificates: tuple[bytes, ...]  # certificate mode: DER, the signing certificate first


def size_limit(manifest: Manifest) -> int:
    """The largest bundle accepted for this manifest: a fixed budget plus each file's signed entry, base64'd."""
    per_file = sum(6 * len(f.path.encode()) + 160 for f in manifest.files)
    return BASE_LIMIT + per_file * 4 // 3


def encode(payload: bytes, signature: bytes, *, key_hint: str | None, certificates: Sequence[bytes] = ()) -> bytes:
    material: dict[str, Any]
    if certificates:
        material = {"x509CertificateChain": {"certificates": [{"rawBytes": _b64(c)} for c in certificates]}}
    else:
        material = {"publicKey": {"hint": key_hint}}
    material["tlogEntries"] = []
    doc = {
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": _b64(payload),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": _b64(signature), "keyid": ""}],
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(data: bytes, limit: int) -> Bundle:
    """Parse an untrusted bundle; IntegrityError naming the first problem."""
    if len(data) > limit:
        raise IntegrityError(f"signature is larger than {limit} bytes")
    doc = load_json(data, "bundle")
    if not isinstance(doc, dict) or "mediaType" not in doc:
        raise _bad("is not a Sigstore bundle")
    if doc["mediaType"] != MEDIA_TYPE:
        raise _bad(f"has media type {show(doc['mediaType'])}, not {MEDIA_TYPE}")
    material = _obj(doc, "verificationMaterial")
    if material.get("tlogEntries", []) != []:
        raise _bad("has transparency log entries: mdl verifies offline key and certificate signatures only")
    hint, certificates = _material(material)
    envelope = _obj(doc, "dsseEnvelope")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise _bad(f"has payload type {show(envelope.get('payloadType'))}, not {PAYLOAD_TYPE}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise _bad("must hold exactly one signature")
    return Bundle(
        payload=_unb64(envelope.get("payload"), "payload"),
        signature=_unb64(signatures[0].get("sig"), "signature value"),
        key_hint=hint,
        certificates=certificates,
    )


def _material(material: dict[str, Any]) -> tuple[str | None, tuple[bytes, ...]]:
    has_key, has_chain = "publicKey" in material, "x509CertificateChain" in material
    if has_key == has_chain:
        raise _bad("must carry either a public key hint or a certificate chain (keyless signatures are not supported)")
    if has_key:
        hint = _obj(material, "publicKey").get("hint")
        if hint is not None and not (isinstance(hint, str) and _HINT.fullmatch(hint)):
            raise _bad("has a public key hint that is not a sha256")
        return hint, ()
    raw = _obj(material, "x509CertificateChain").get("certificates")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CERTIFICATES:
        raise _bad(f"must carry 1 to {MAX_CERTIFICATES} certificates")
    return None, tuple(_unb64(c.get("rawBytes") if isinstance(c, dict) else None, "certificate") for c in raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise _bad(f"has no {what}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"has a {what} that is not base64") from None


def _obj(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if not isinstance(value, dict):
        raise _bad(f"has no {key} object")
    return value


def _bad(problem: str) -> IntegrityError:
    return IntegrityError(f"signature is not valid: the bundle {problem}")
