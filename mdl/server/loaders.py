"""The built-in loaders, by the manifest's format, and the policy on formats that run code when loaded.

pickle and joblib run whatever code their bytes name: ``serve.pickle`` allows them (with a warning
per version), allows only versions signed by a trusted key, or denies them. ONNX and skops load
without running code from the file: an ONNX graph is data for onnxruntime, and skops builds only
the types it trusts (its own safe defaults plus ``serve.skops_trusted``).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mdl.errors import LoadFailed, MdlError
from mdl.manifest import Manifest

BUILTIN = ("pickle", "joblib", "onnx", "skops")
CODE_FORMATS = frozenset(("pickle", "joblib"))  # loading them runs code from the file
SAFE_FORMATS = "skops or ONNX"
PICKLE_POLICIES = ("allow", "signed", "deny")
SUFFIXES = {".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib", ".onnx": "onnx", ".skops": "skops"}
LOCK_DOWN = f"push {SAFE_FORMATS} models, or set serve.pickle: signed (trusted signers only) or deny"

Verify = Callable[[str, Manifest], Any]  # (version, manifest) -> signers; raises IntegrityError if none valid


@dataclass(frozen=True)
class LoadPolicy:
    """What the built-in loaders may load: ``pickle`` is allow, signed or deny; ``verify`` checks a
    version's signatures (needed by ``signed``)."""

    pickle: str = "allow"
    skops_trusted: tuple[str, ...] = ()
    verify: Verify | None = None

    def __post_init__(self) -> None:
        if self.pickle not in PICKLE_POLICIES:
            raise ValueError(f"serve.pickle {self.pickle!r}: use {', '.join(PICKLE_POLICIES)}")


def artifact(path: Path, manifest: Manifest) -> tuple[str, Path]:
    """The file a built-in loader reads, and its format."""
    fmt = manifest.format
    names = [f.path for f in manifest.files]
    if fmt in BUILTIN:
        if len(names) == 1:
            return fmt, path / names[0]
        candidates = [n for n in names if SUFFIXES.get(PurePosixPath(n).suffix.lower()) == fmt]
    elif fmt == "directory":
        candidates = [n for n in names if PurePosixPath(n).suffix.lower() in SUFFIXES]
    else:
        raise LoadFailed(
            f"no built-in loader for format {fmt!r} (built in: {', '.join(BUILTIN)})",
            hint="serve it with --loader module:function",
        )
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise LoadFailed(
            f"cannot tell which file to load: {len(candidates)} model files ({found})",
            hint="push one model file, or serve with --loader module:function",
        )
    rel = candidates[0]
    return SUFFIXES[PurePosixPath(rel).suffix.lower()], path / rel


def check_policy(fmt: str, version: str, manifest: Manifest, policy: LoadPolicy) -> None:
    """Refuse a code-running format the policy does not allow (LoadFailed: the old version keeps serving)."""
    if fmt not in CODE_FORMATS or policy.pickle == "allow":
        return
    if policy.pickle == "deny":
        raise LoadFailed(
            f"{version} is a {fmt} model and serve.pickle is deny: loading it would run code from its files",
            hint=f"push the model as {SAFE_FORMATS} (formats that load without running code)",
        )
    if policy.verify is None:
        raise LoadFailed(f"serve.pickle is signed but this server cannot check signatures, so {version} is refused")
    try:
        policy.verify(version, manifest)
    except MdlError as exc:
        raise LoadFailed(
            f"{version} is a {fmt} model and serve.pickle is signed: {exc.message}",
            hint=exc.hint or f"sign it with a trusted key (mdl sign), or push it as {SAFE_FORMATS}",
        ) from None


def load(fmt: str, file: Path, version: str, policy: LoadPolicy) -> Any:
    """The object in ``file`` (format ``fmt``). Raises LoadFailed for what the policy refuses."""
    if fmt == "onnx":
        _need("onnxruntime", "onnx", "pip install 'mdl[serve]'")
        from mdl.server.onnx import OnnxModel

        return OnnxModel(file)
    if fmt == "skops":
        return _load_skops(file, version, policy.skops_trusted)
    if fmt == "joblib":
        _need("joblib", "joblib", "pip install joblib")
        import joblib

        return joblib.load(file)
    with open(file, "rb") as f:
        return pickle.load(f)  # verified bytes only: the watcher swaps nothing it has not checked


def _need(module: str, fmt: str, install: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise LoadFailed(f"format {fmt} needs the {module} package", hint=install)


def _load_skops(file: Path, version: str, trusted: tuple[str, ...]) -> Any:
    _need("skops", "skops", "pip install 'mdl[serve]'")
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=file)
    refused = [t for t in untrusted if t not in trusted]
    if refused:
        raise LoadFailed(
            f"{version} (skops) holds types that are not trusted: {', '.join(refused)}",
            hint="if you trust the code of these types, list them in serve.skops_trusted",
        )
    return sio.load(file, trusted=list(untrusted) or None)
