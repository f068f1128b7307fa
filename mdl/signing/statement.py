"""The in-toto statement mdl signs (the model-signing v1.0 predicate) and its strict check against a manifest."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mdl.errors import IntegrityError
from mdl.manifest import MANIFEST_NAME, MAX_FILES, FileEntry, Manifest, is_sha256

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
# What the reference verifier must skip in a version directory: mdl's manifest is not one of the version's files.
IGNORE_PATHS = (MANIFEST_NAME,)


def binding(manifest: Manifest) -> str:
    """The subject name that binds a signature to one version: ``<name>/<version>``."""
    return f"{manifest.name}/{manifest.version}"


def encode(manifest: Manifest) -> bytes:
    """The statement's JSON bytes, laid out as the reference signer lays them out."""
    files = sorted(manifest.files, key=_order)
    doc = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": binding(manifest), "digest": {"sha256": _root_digest([f.sha256 for f in files])}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": list(IGNORE_PATHS),
            },
            "resources": [{"name": f.path, "algorithm": "sha256", "digest": f.sha256} for f in files],
        },
    }
    return json.dumps(doc, indent=2, ensure_ascii=False).encode()


def check(payload: bytes, manifest: Manifest) -> None:
    """Refuse (IntegrityError) a signed statement that is malformed, bound to another version, or whose files
    differ from the manifest's. The payload's signature has been checked already: its content is the signer's."""
    doc = load_json(payload, "signed statement")
    statement = _obj(doc, "statement")
    if statement.get("_type") != STATEMENT_TYPE:
        raise _bad(f"is not an in-toto Statement v1 (_type {show(statement.get('_type'))})")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise _bad(f"is not a model signature (predicateType {show(statement.get('predicateType'))})")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise _bad("must name exactly one subject")
    subject = _obj(subjects[0], "subject")
    name, digest = subject.get("name"), _obj(subject.get("digest"), "subject digest").get("sha256")
    if not isinstance(name, str) or not isinstance(digest, str):
        raise _bad("has a subject without a name or a sha256 digest")
    predicate = _obj(statement.get("predicate"), "predicate")
    serialization = _obj(predicate.get("serialization"), "serialization")
    if serialization.get("method") != "files" or serialization.get("hash_type") != "sha256":
        raise _bad(
            f"uses serialization {show(serialization.get('method'))}/{show(serialization.get('hash_type'))}; "
            "mdl verifies files/sha256 signatures only"
        )
    signed = _resources(predicate.get("resources"))
    if _root_digest(list(signed.values())) != digest:
        raise _bad("is inconsistent: its subject digest does not match its resources")
    _check_binding(name, manifest)
    _check_files(signed, manifest)


def load_json(data: bytes, what: str) -> Any:
    """Parse untrusted JSON: IntegrityError (never another exception) if it is not JSON or nested too deeply."""
    try:
        return json.loads(data)
    except RecursionError:
        raise IntegrityError(f"signature is not valid: its {what} is nested too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise IntegrityError(f"signature is not valid: its {what} is not JSON") from None


def show(value: object) -> str:
    """A value from untrusted input, safe for one line of a message."""
    if isinstance(value, str) and value.isprintable() and 0 < len(value) <= 160 and value.strip() == value:
        return value
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return text[:80] + ("…" if len(text) > 80 else "")


def _order(entry: FileEntry) -> list[str]:
    # The reference sorts pathlib paths, which compare component by component (not as plain strings).
    return entry.path.split("/")


def _root_digest(hex_digests: list[str]) -> str:
    h = hashlib.sha256()
    for d in hex_digests:
        h.update(bytes.fromhex(d))
    return h.hexdigest()


def _resources(raw: Any) -> dict[str, str]:
    if not isinstance(raw, list) or len(raw) > MAX_FILES:
        raise _bad(f"must list at most {MAX_FILES} resources")
    signed: dict[str, str] = {}
    for item in raw:
        r = _obj(item, "resource")
        name, algorithm, digest = r.get("name"), r.get("algorithm"), r.get("digest")
        if not isinstance(name, str) or algorithm != "sha256" or not isinstance(digest, str) or not is_sha256(digest):
            raise _bad(f"has a resource that is not a name with a sha256 digest ({show(name)})")
        if name in signed:
            raise _bad(f"lists {show(name)} twice")
        signed[name] = digest
    return signed


def _check_binding(name: str, manifest: Manifest) -> None:
    expected = binding(manifest)
    if "/" not in name:
        raise IntegrityError(
            f"signature is not bound to an mdl version: its subject is {show(name)}, a directory name",
            hint="the reference tool signs a directory, not a name and version: sign the version with mdl",
        )
    if name != expected:
        raise IntegrityError(
            f"signature was signed for {show(name)}, not {expected}",
            hint="a signature copied from another version or model is refused",
        )


def _check_files(signed: dict[str, str], manifest: Manifest) -> None:
    where = binding(manifest)
    for f in sorted(manifest.files, key=_order):
        digest = signed.get(f.path)
        if digest is None:
            raise IntegrityError(f"signature does not cover {show(f.path)} of {where}")
        if digest != f.sha256:
            raise IntegrityError(
                f"{show(f.path)} of {where} differs from the signed file "
                f"(sha256 {f.sha256[:16]}…, signed {digest[:16]}…)"
            )
    have = {f.path for f in manifest.files}
    extra = sorted((p for p in signed if p not in have), key=lambda p: p.split("/"))
    if extra:
        raise IntegrityError(f"signature covers {show(extra[0])}, which {where} does not have")


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"has no {what} object")
    return value


def _bad(problem: str) -> IntegrityError:
    return IntegrityError(f"signature is not valid: its signed statement {problem}")
