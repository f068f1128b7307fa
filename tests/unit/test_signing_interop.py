"""Interop with the reference tool, PyPI model-signing 1.1.1 (its real CLI, as a subprocess).

- ``model_signing verify key|certificate`` accepts an mdl-signed version directory (mdl's manifest beside the
  files is skipped through the signed ``ignore_paths``), and still refuses it once a file changes.
- A directory signed by ``model_signing sign`` is the same format (same resources, order, root digest, key
  hint, certificate chain) but mdl refuses it: its subject is a bare directory name, which binds no name and
  version (a signature for lr/v1 would otherwise verify for lr/v9)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mdl.errors import IntegrityError
from mdl.manifest import MANIFEST_NAME, Manifest
from mdl.signing import Signer, key_id, sign, statement, verify
from tests.unit.test_signing import CONTENT, Pki, cert_pem, manifest, new_key, payload_of, private_pem, public_pem

REFERENCE = Path(sys.executable).parent / "model_signing"
SUCCEEDED = "Verification succeeded\n"


def reference(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REFERENCE), *map(str, args)], capture_output=True, text=True, timeout=120)


def write_version(root: Path, m: Manifest) -> Path:
    """A version directory as mdl materialises it: the files, and .mdl-manifest.json beside them."""
    d = root / m.name / m.version
    for rel, data in CONTENT.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    (d / MANIFEST_NAME).write_bytes(m.to_json())
    return d


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP521R1()], ids=lambda c: c.name)
def test_reference_verifies_an_mdl_key_signature(tmp_path: Path, curve: ec.EllipticCurve) -> None:
    m, key = manifest(), new_key(curve)
    d = write_version(tmp_path, m)
    (tmp_path / "key.pub").write_bytes(public_pem(key))
    signature = d / "model.sig"  # where the reference looks by default; it skips the signature it is given
    signature.write_bytes(sign(m, private_pem(key)))
    ok = reference("verify", "key", d, "--signature", signature, "--public_key", tmp_path / "key.pub")
    assert (ok.returncode, ok.stdout) == (0, SUCCEEDED), ok.stderr
    beside = tmp_path / "v1.sig"
    beside.write_bytes(signature.read_bytes())
    signature.unlink()
    ok = reference("verify", "key", d, "--signature", beside, "--public_key", tmp_path / "key.pub")
    assert (ok.returncode, ok.stdout) == (0, SUCCEEDED), ok.stderr
    (d / "model.pkl").write_bytes(b"tampered")
    bad = reference("verify", "key", d, "--signature", beside, "--public_key", tmp_path / "key.pub")
    assert bad.returncode != 0 and "Signature mismatch" in bad.stdout + bad.stderr


def test_reference_verifies_an_mdl_certificate_signature(tmp_path: Path) -> None:
    m, pki = manifest(), Pki()
    d = write_version(tmp_path, m)
    (tmp_path / "ca.pem").write_bytes(pki.ca)
    (tmp_path / "v1.sig").write_bytes(sign(m, private_pem(pki.key), cert_chain_pem=pki.chain))
    ok = reference(
        "verify", "certificate", d, "--signature", tmp_path / "v1.sig", "--certificate_chain", tmp_path / "ca.pem"
    )
    assert (ok.returncode, ok.stdout) == (0, SUCCEEDED), ok.stderr
    (tmp_path / "other-ca.pem").write_bytes(cert_pem(Pki().root))
    bad = reference(
        "verify", "certificate", d, "--signature", tmp_path / "v1.sig", "--certificate_chain", tmp_path / "other-ca.pem"
    )
    assert bad.returncode != 0


def test_mdl_refuses_a_reference_key_signature_for_its_missing_binding(tmp_path: Path) -> None:
    m, key = manifest(), new_key()
    d = write_version(tmp_path, m)
    (tmp_path / "key.pem").write_bytes(private_pem(key))
    done = reference(
        "sign",
        "key",
        d,
        "--private_key",
        tmp_path / "key.pem",
        "--signature",
        tmp_path / "v1.sig",
        "--ignore-paths",
        d / MANIFEST_NAME,
    )
    assert done.returncode == 0, done.stderr
    data = (tmp_path / "v1.sig").read_bytes()
    _assert_same_statement_but_the_subject_name(data, m)
    with pytest.raises(IntegrityError) as exc:  # the key hint and the signature check out; the binding does not
        verify(data, m, keys=[public_pem(key)], cas=[])
    assert exc.value.message == "signature is not bound to an mdl version: its subject is v1, a directory name"
    # and mdl's own signature of the same directory verifies with the same key
    assert verify(sign(m, private_pem(key)), m, keys=[public_pem(key)], cas=[]) == Signer(
        "key", key_id(public_pem(key))
    )


def test_mdl_refuses_a_reference_certificate_signature_for_its_missing_binding(tmp_path: Path) -> None:
    m, pki = manifest(), Pki()
    d = write_version(tmp_path, m)
    (tmp_path / "key.pem").write_bytes(private_pem(pki.key))
    (tmp_path / "leaf.pem").write_bytes(cert_pem(pki.leaf))
    (tmp_path / "inter.pem").write_bytes(cert_pem(pki.inter))
    done = reference(
        "sign",
        "certificate",
        d,
        "--private_key",
        tmp_path / "key.pem",
        "--signing_certificate",
        tmp_path / "leaf.pem",
        "--certificate_chain",
        tmp_path / "inter.pem",
        "--signature",
        tmp_path / "v1.sig",
        "--ignore-paths",
        d / MANIFEST_NAME,
    )
    assert done.returncode == 0, done.stderr
    data = (tmp_path / "v1.sig").read_bytes()
    assert data.startswith(b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"')
    _assert_same_statement_but_the_subject_name(data, m)
    with pytest.raises(IntegrityError) as exc:  # the chain and the signature check out; the binding does not
        verify(data, m, keys=[], cas=[pki.ca])
    assert exc.value.message == "signature is not bound to an mdl version: its subject is v1, a directory name"


def _assert_same_statement_but_the_subject_name(data: bytes, m: Manifest) -> None:
    theirs, ours = payload_of(data), json.loads(statement.encode(m))
    assert theirs["subject"][0]["name"] == m.version  # the directory's name
    theirs["subject"][0]["name"] = ours["subject"][0]["name"]
    theirs["predicate"]["serialization"]["ignore_paths"] = ours["predicate"]["serialization"]["ignore_paths"]
    assert theirs == ours  # resources in the same order, the same root digest
