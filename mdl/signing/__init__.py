"""Signed versions in the OpenSSF model-signing format (PyPI ``model-signing`` 1.x), bound to a name and version.

**Format.** A signature is the reference tool's ``model.sig``: a Sigstore bundle v0.3 (JSON) wrapping a DSSE
envelope (ECDSA over the DSSE v1 pre-authentication encoding) whose payload is an in-toto Statement v1 with
predicate type ``https://model_signing/signature/v1.0``. Its ``resources`` are every file of the version with the
sha256 from mdl's manifest (signing a stored version reads no file), sorted as the reference sorts paths; the
subject digest is the sha256 over those digests in that order; ``serialization`` is ``files``/``sha256``, no
symlinks, and ``ignore_paths`` names ``.mdl-manifest.json`` (mdl's manifest is not one of the version's files).
The reference CLI skips .git, .github, .gitattributes and .gitignore by default: verify a version holding them with
``--no-ignore-git-paths``.

**Binding.** The reference puts the directory's name in the statement's subject and its verifier ignores that
name (only the files and digests are compared), so mdl carries the binding there: the subject name is
``<name>/<version>``. The reference tool still accepts an mdl-signed version directory; mdl refuses a signature
whose subject is another version or model ("signed for lr/v1, not lr/v9"), and one made by the reference
tool, whose subject is a bare directory name that binds nothing.

**Keys and certificates.** Key signatures (EC P-256, P-384 or P-521; hash SHA-256/384/512 by curve) carry the
reference's ``publicKey.hint``: the sha256 of the public key's PEM SubjectPublicKeyInfo, which is also the key
id mdl shows. Certificate signatures carry the signing certificate and its intermediates; the chain must lead
to a CA certificate the caller trusts, and the signing certificate must have KeyUsage digitalSignature and
ExtendedKeyUsage codeSigning. Trust anchors always come from the caller (local configuration), never from the
bundle or storage.

**Time.** An offline bundle has no trusted timestamp, so, as the reference does, the chain is validated at the
signing certificate's notBefore: a version signed while the certificate was valid stays verifiable after it
expires (revoke trust by removing the CA or key from the local anchors). A signing certificate that is not
valid yet (beyond 5 minutes of clock skew) is refused.

**Untrusted input.** The bundle comes from storage: its size is bounded (1 MiB plus each file's entry) before it
is parsed, its types, base64 and certificate count are checked, and every failure is an IntegrityError
(exit 8) with one line naming the problem.
"""

from mdl.signing.api import Signer, key_id, sign, verify

__all__ = ["Signer", "key_id", "sign", "verify"]
