"""Signed versions in use: sign a stored version, verify its stored signatures against the local trust
anchors (``trust.keys``, ``trust.ca``: the verifier's own configuration, never storage or the registry),
and the policy that pull, watch and serve apply (``trust.require_signature`` or ``--require-signature``).

A signature is stored beside its version (``<name>/.mdl-signatures/<version>/<key id>.sig``), so adding
one never changes the version's files or digest; the format is :mod:`mdl.signing`'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from mdl.config import Config
from mdl.errors import ConfigError, IntegrityError, NotFound

if TYPE_CHECKING:
    from mdl.client import Client
    from mdl.manifest import Manifest
    from mdl.signing import Signer

PASSWORD_ENV = "MDL_TRUST_SIGNING_KEY_PASSWORD"
KEY_HINT = "set trust.signing_key (or MDL_TRUST_SIGNING_KEY) to a PEM private key file"
ANCHOR_HINT = "trust public keys (trust.keys) or CA certificates (trust.ca) in your own configuration"


@dataclass(frozen=True)
class Checked:
    """One stored signature of a version and its verdict: who signed it, or why it is refused."""

    sig_id: str
    signer: Signer | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        who = describe(self.signer) if self.signer else {"method": None, "key_id": None, "subject": None}
        return {"signature": self.sig_id, "valid": self.signer is not None, **who, "reason": self.reason}


def required(config: Config, flag: bool = False) -> bool:
    """Whether pull, watch and serve must refuse a version without a valid signature."""
    return bool(flag or config["trust.require_signature"])


class Material(NamedTuple):
    """What signing needs from the configuration: the private key (PEM), its password, the certificate chain."""

    key_pem: bytes
    password: bytes | None
    chain_pem: bytes | None


def signing_material(config: Config) -> Material:
    """The configured signing key (checked to load) and chain; ConfigError without ``trust.signing_key``."""
    from mdl.signing import crypto

    path = config["trust.signing_key"]
    if not path:
        raise ConfigError("no signing key is configured", hint=KEY_HINT)
    secret = os.environ.get(PASSWORD_ENV)
    material = Material(
        _read(path, "trust.signing_key"),
        secret.encode() if secret else None,
        _read(config["trust.signing_cert_chain"], "trust.signing_cert_chain")
        if config["trust.signing_cert_chain"]
        else None,
    )
    try:
        crypto.load_private_key(material.key_pem, material.password)
    except ConfigError as exc:
        raise ConfigError(
            f"trust.signing_key {path!r}: {exc.message.removeprefix('signing key: ')}",
            hint=exc.hint or f"an encrypted key's password is read from env {PASSWORD_ENV}",
        ) from None
    return material


def describe(signer: Signer) -> dict[str, Any]:
    """A signer as ``-o json`` shows it."""
    return {"method": signer.method, "key_id": signer.key_id, "subject": signer.subject}


def sign_version(client: Client, name: str, version: str) -> tuple[Signer, bool]:
    """Sign ``name/version`` (its manifest read from storage) with the configured key and store the
    signature. Returns the signer and whether a signature was added (False: this key had signed it
    already). ConfigError without ``trust.signing_key``."""
    from mdl import signing
    from mdl.signing import crypto

    m = signing_material(client.config)
    manifest = client.manifest(name, version)
    data = signing.sign(manifest, m.key_pem, m.password, m.chain_pem)
    kid = crypto.key_id(crypto.load_private_key(m.key_pem, m.password).public_key())
    if m.chain_pem:
        signer = signing.Signer("certificate", kid, crypto.subject_of(crypto.load_chain(m.chain_pem)[0]))
    else:
        signer = signing.Signer("key", kid)
    if kid in client.storage.list_signatures(name, version) and _signed_by(client, manifest, kid, m):
        return signer, False  # ECDSA signs differently each time: the earlier signature stands
    return signer, client.storage.put_signature(name, version, kid, data)


def check_version(client: Client, name: str, version: str, manifest: Manifest) -> list[Checked]:
    """Every stored signature of ``name/version`` checked against ``manifest`` with the local anchors."""
    keys, cas = anchors(client.config)
    return [_check(client, manifest, sig_id, keys, cas) for sig_id in client.storage.list_signatures(name, version)]


def verify_version(client: Client, name: str, version: str, manifest: Manifest) -> list[Signer]:
    """The trusted signers of ``name/version`` (at least one); IntegrityError naming why each stored
    signature was refused, or that there is none. ``manifest`` is the one the caller verified the files
    against. ConfigError if no trust anchor is configured."""
    checked = check_version(client, name, version, manifest)
    valid = [c.signer for c in checked if c.signer is not None]
    if valid:
        return valid
    raise refusal(name, version, checked)


def refusal(name: str, version: str, checked: list[Checked]) -> IntegrityError:
    """Why ``name/version`` has no valid signature."""
    if not checked:
        return IntegrityError(
            f"version {name}/{version} is not signed", hint=f"sign it with a trusted key: mdl sign {name} {version}"
        )
    reasons = "; ".join(dict.fromkeys(c.reason or "" for c in checked))
    return IntegrityError(
        f"version {name}/{version} has no valid signature: {reasons}",
        hint=f"see its signatures with: mdl verify {name} {version}",
    )


def anchors(config: Config) -> tuple[list[bytes], list[bytes]]:
    """The PEM public keys and CA certificates trusted here; ConfigError if there are none or one is unreadable."""
    keys = [_read(p, "trust.keys") for p in config["trust.keys"] or []]
    cas = [_read(p, "trust.ca") for p in config["trust.ca"] or []]
    if not keys and not cas:
        raise ConfigError("no trust anchors are configured: no signature can be verified", hint=ANCHOR_HINT)
    return keys, cas


def _check(client: Client, manifest: Manifest, sig_id: str, keys: list[bytes], cas: list[bytes]) -> Checked:
    from mdl import signing
    from mdl.signing.bundle import size_limit

    try:
        data = client.storage.read_signature(manifest.name, manifest.version, sig_id, size_limit(manifest))
        return Checked(sig_id, signing.verify(data, manifest, keys=keys, cas=cas))
    except (IntegrityError, NotFound) as exc:  # NotFound: removed meanwhile (with the version?)
        return Checked(sig_id, None, exc.message)


def _signed_by(client: Client, manifest: Manifest, kid: str, m: Material) -> bool:
    """Whether the stored signature ``kid`` of ``manifest``'s version is a valid one by this very key."""
    from mdl.signing import bundle, crypto, statement

    public = crypto.load_private_key(m.key_pem, m.password).public_key()
    limit = bundle.size_limit(manifest)
    try:
        parsed = bundle.decode(client.storage.read_signature(manifest.name, manifest.version, kid, limit), limit)
        statement.check(parsed.payload, manifest)
    except (IntegrityError, NotFound):
        return False
    return crypto.signature_valid(public, parsed.payload, parsed.signature)


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {key} file {path!r}: {exc.strerror or exc}", hint="mdl config shows where it is set"
        ) from None
