"""Signatures in use (issue 17), on every backend: stored beside their version, verified against local
anchors only, and the policy of pull and watch: an unsigned or badly signed version is refused after
its files are verified and before it is moved into place; a watcher keeps serving the old one."""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import posixpath
from pathlib import Path
from typing import Any

import pytest

from mdl.client import Client
from mdl.config import load
from mdl.errors import ConfigError, Conflict, IntegrityError, InvalidInput
from mdl.manifest import MANIFEST_NAME
from mdl.storage.base import SIGNATURES_DIR
from mdl.watch import Watcher, WatchOptions

from .. import helpers
from ..helpers import WEBHDFS_URL, current, make_model, write_stored
from ..unit.test_signing import Pki, new_key, private_pem, public_pem

until = functools.partial(helpers.until, timeout=30.0, interval=0.05)


class Keys:
    """PEM files: keys a and b, a PKI whose CA is trusted and one whose CA is not."""

    def __init__(self, d: Path) -> None:
        d.mkdir(parents=True, exist_ok=True)
        self.dir = d
        for n in ("a", "b"):
            k = new_key()
            (d / f"{n}.key").write_bytes(private_pem(k))
            (d / f"{n}.pub").write_bytes(public_pem(k))
        for n, pki in (("ok", Pki()), ("rogue", Pki("rogue root"))):
            (d / f"{n}.key").write_bytes(private_pem(pki.key))
            (d / f"{n}.chain").write_bytes(pki.chain)
            (d / f"{n}.ca").write_bytes(pki.ca)

    def path(self, name: str) -> str:
        return str(self.dir / name)


@pytest.fixture
def keys(tmp_path) -> Keys:
    return Keys(tmp_path / "keys")


@pytest.fixture
def with_trust(backend_env, keys):
    """with_trust(signing_key="a", keys="a.pub,...") -> a Client on the test backend with those trust.* settings."""
    made: list[Client] = []

    def make(
        signing: str | None = None, chain: bool = False, trusted: str = "a.pub,b.pub", ca: str = "ok.ca"
    ) -> Client:
        env = dict(backend_env)
        if signing:
            env["MDL_TRUST_SIGNING_KEY"] = keys.path(f"{signing}.key")
            if chain:
                env["MDL_TRUST_SIGNING_CERT_CHAIN"] = keys.path(f"{signing}.chain")
        if trusted:
            env["MDL_TRUST_KEYS"] = ",".join(keys.path(k) for k in trusted.split(","))
        if ca:
            env["MDL_TRUST_CA"] = ",".join(keys.path(k) for k in ca.split(","))
        made.append(Client(load(env=env)))
        return made[-1]

    yield make
    for c in made:
        c.close()


class Tree:
    """The signature tree as anyone with write access sees it (plain files, or WebHDFS as the superuser)."""

    def __init__(self, client: Client) -> None:
        storage: Any = client.storage
        self.local = isinstance(storage.root, Path)
        self.root = str(storage.root)
        if not self.local:
            from hdfs import InsecureClient

            self.hdfs = InsecureClient("http://" + WEBHDFS_URL.split("://", 1)[1], user="root", timeout=60)

    def sigdir(self, name: str, version: str) -> str:
        return posixpath.join(self.root, name, SIGNATURES_DIR, version)

    def write(self, path: str, data: bytes) -> None:
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Path(path).write_bytes(data)
        else:
            self.hdfs.write(path, data=data, overwrite=True)

    def read(self, path: str) -> bytes:
        if self.local:
            return Path(path).read_bytes()
        with self.hdfs.read(path) as f:
            return f.read()

    def mkdir(self, path: str) -> None:
        if self.local:
            os.makedirs(path, exist_ok=True)
        else:
            self.hdfs.makedirs(path)

    def names(self, path: str) -> list[str]:
        if self.local:
            return sorted(os.listdir(path)) if os.path.isdir(path) else []
        return sorted(self.hdfs.list(path)) if self.hdfs.status(path, strict=False) else []


def push(client: Client, tmp_path: Path, version: str, content: bytes | None = None, name: str = "lr") -> None:
    source = make_model(tmp_path / f"{name}-{version}", content or f"{name} {version}".encode())
    client.push(name, source, version=version)


def copy_signature(tree: Tree, src: tuple[str, str], dst: tuple[str, str]) -> None:
    for entry in tree.names(tree.sigdir(*src)):
        tree.write(posixpath.join(tree.sigdir(*dst), entry), tree.read(posixpath.join(tree.sigdir(*src), entry)))


# -- storing and verifying -----------------------------------------------------------------------------


def test_sign_and_verify_round_trip_never_changes_the_version(client, with_trust, keys, tmp_path):
    push(client, tmp_path, "v1")
    before = client.manifest("lr", "v1")
    signer, added = with_trust(signing="a").sign("lr", "v1")
    assert (signer.method, signer.subject, added) == ("key", None, True)
    assert signer.key_id == client.storage.list_signatures("lr", "v1")[0]
    assert with_trust(signing="a").sign("lr", "v1")[1] is False  # the same key again: nothing added
    assert client.storage.list_signatures("lr", "v1") == [signer.key_id]
    assert client.manifest("lr", "v1") == before  # files and digest untouched
    assert client.storage.list_versions("lr") == ["v1"] and client.storage.list_models() == ["lr"]
    assert with_trust().verify("lr", "v1") == [signer]
    out = with_trust().pull("lr", "v1", dest=tmp_path / "out", require_signature=True)
    assert out.changed and sorted(os.listdir(tmp_path / "out")) == [MANIFEST_NAME, "model.pkl"]


def test_several_signatures_each_judged(client, with_trust, tmp_path):
    push(client, tmp_path, "v1")
    ci, _ = with_trust(signing="a").sign("lr", "v1")
    rm, _ = with_trust(signing="ok", chain=True).sign("lr", "v1")
    assert rm.method == "certificate" and rm.subject == "CN=release-manager,O=Example"
    assert sorted(with_trust().verify("lr", "v1"), key=lambda s: s.method) == [rm, ci]
    only_ca = with_trust(trusted="")
    assert only_ca.verify("lr", "v1") == [rm]
    verdicts = {c.sig_id: c for c in only_ca.signatures("lr", "v1")}
    assert verdicts[ci.key_id].reason == f"signature was made with key {ci.key_id}, which is not trusted"
    assert verdicts[rm.key_id].signer == rm


def test_put_signature_is_atomic_and_never_overwrites(client, tmp_path):
    push(client, tmp_path, "v1")
    sid = "ab" * 32
    assert client.storage.put_signature("lr", "v1", sid, b"one") is True
    assert client.storage.put_signature("lr", "v1", sid, b"one") is False
    with pytest.raises(Conflict, match="already carries a different signature"):
        client.storage.put_signature("lr", "v1", sid, b"two")
    assert client.storage.read_signature("lr", "v1", sid, 100) == b"one"
    with pytest.raises(IntegrityError, match="more than the 2 mdl reads"):
        client.storage.read_signature("lr", "v1", sid, 2)
    for bad in ("../x", "AB" * 32, "ab" * 31, ""):
        with pytest.raises(InvalidInput):
            client.storage.put_signature("lr", "v1", bad, b"x")
    tree = Tree(client)
    assert tree.names(tree.sigdir("lr", "v1")) == [f"{sid}.sig"]  # no temporary left


def test_rm_takes_the_signatures_with_the_version(client, with_trust, tmp_path):
    push(client, tmp_path, "v1")
    push(client, tmp_path, "v2")
    with_trust(signing="a").sign("lr", "v1")
    with_trust(signing="a").sign("lr", "v2")
    client.rm("lr", ["v1"], force=True)
    tree = Tree(client)
    assert tree.names(posixpath.join(tree.root, "lr", SIGNATURES_DIR)) == ["v2"]
    assert client.storage.list_signatures("lr", "v1") == []


def test_rm_without_a_trash_refuses_to_trash_signatures(client, with_trust, tmp_path):
    push(client, tmp_path, "v1")
    with_trust(signing="a").sign("lr", "v1")
    if client.storage.has_trash:
        return  # HDFS: the next test
    with pytest.raises(InvalidInput, match="--trash is for HDFS"):
        client.storage.remove_signatures("lr", "v1", trash=True)
    assert len(client.storage.list_signatures("lr", "v1")) == 1  # refused before anything was removed


@pytest.mark.cluster
@pytest.mark.parametrize("backend", ["distributed"], indirect=True)
def test_rm_trash_moves_the_signatures_beside_the_version_and_a_restore_is_still_signed(
    client, with_trust, tmp_path
):
    tree = Tree(client)
    trash = f"/user/{client.storage.user}/.Trash/Current"
    in_trash = f"{trash}{tree.root}/lr"
    try:
        push(client, tmp_path, "v1")
        push(client, tmp_path, "v2")
        signer, _ = with_trust(signing="a").sign("lr", "v1")
        client.rm("lr", ["v1"], force=True, trash=True)
        assert client.storage.list_versions("lr") == ["v2"]
        assert client.storage.list_signatures("lr", "v1") == []
        assert tree.names(posixpath.join(in_trash, SIGNATURES_DIR)) == ["v1"]
        assert tree.names(posixpath.join(in_trash, SIGNATURES_DIR, "v1")) == [f"{signer.key_id}.sig"]
        assert tree.names(posixpath.join(in_trash, "v1")) == [MANIFEST_NAME, "model.pkl"]
        # restored the Hadoop way (both directories moved back): still signed by a
        tree.hdfs.rename(posixpath.join(in_trash, "v1"), posixpath.join(tree.root, "lr", "v1"))
        tree.hdfs.rename(posixpath.join(in_trash, SIGNATURES_DIR, "v1"), tree.sigdir("lr", "v1"))
        assert with_trust().verify("lr", "v1") == [signer]
        client.rm("lr", ["v2"], force=True, trash=True)  # unsigned: nothing of it goes to the signatures
        assert tree.names(posixpath.join(in_trash, SIGNATURES_DIR)) == []
        assert tree.names(posixpath.join(in_trash, "v2")) == [MANIFEST_NAME, "model.pkl"]
    finally:
        tree.hdfs.delete(trash + tree.root.removesuffix("/models"), recursive=True)


def test_without_anchors_or_key_it_is_a_configuration_error(client, with_trust, tmp_path):
    push(client, tmp_path, "v1")
    with pytest.raises(ConfigError, match="no signing key is configured"):
        client.sign("lr", "v1")
    with pytest.raises(ConfigError, match="no signing key is configured"):
        client.push("lr", make_model(tmp_path / "x", b"other"), version="v2", sign=True)
    assert client.storage.list_versions("lr") == ["v1"]  # refused before anything was uploaded
    with pytest.raises(ConfigError, match="no trust anchors are configured"):
        with_trust(trusted="", ca="").pull("lr", "v1", dest=tmp_path / "out", require_signature=True)
    assert not (tmp_path / "out").exists()


def test_push_sign_signs_before_it_promotes(client, with_trust, tmp_path):
    signer = with_trust(signing="a")
    r = signer.push("lr", make_model(tmp_path, b"x"), version="v1", sign=True, promote=True)
    assert r.promoted == "latest" and r.signature is not None and r.signature["added"] is True
    assert with_trust().verify("lr", "v1")[0].key_id == r.signature["key_id"]


# -- the policy: every way a version can be unacceptable ---------------------------------------------

CASES = ["unsigned", "tampered file", "tampered signature", "wrong key", "copied from v1", "copied from another model",
         "untrusted CA"]


def make_bad(case: str, client: Client, with_trust, tree: Tree, tmp_path: Path, version: str) -> str:
    """Push ``version`` of lr, broken as ``case`` says (v1 exists, signed by a); the reason mdl must give."""
    push(client, tmp_path, version)
    if case == "unsigned":
        return f"version lr/{version} is not signed"
    if case == "tampered file":
        with_trust(signing="a").sign("lr", version)
        write_stored(client, "lr", version, "model.pkl", b"evil" + b"!" * (len(f"lr {version}") - 4))
        return "does not match its manifest"
    if case == "tampered signature":
        signer, _ = with_trust(signing="a").sign("lr", version)
        path = posixpath.join(tree.sigdir("lr", version), f"{signer.key_id}.sig")
        doc = json.loads(tree.read(path))
        sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[-1] ^= 1
        doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
        tree.write(path, json.dumps(doc).encode())
        return "bad signature"
    if case == "wrong key":  # the verifier trusts a's key only
        with_trust(signing="b").sign("lr", version)
        return "which is not trusted"
    if case == "copied from v1":
        copy_signature(tree, ("lr", "v1"), ("lr", version))
        return f"signed for lr/v1, not lr/{version}"
    if case == "copied from another model":
        push(client, tmp_path, version, name="other", content=f"lr {version}".encode())
        with_trust(signing="a").sign("other", version)
        copy_signature(tree, ("other", version), ("lr", version))
        return f"signed for other/{version}, not lr/{version}"
    assert case == "untrusted CA"
    with_trust(signing="rogue", chain=True).sign("lr", version)
    return "does not chain to a trusted CA certificate"


@pytest.mark.parametrize("case", CASES)
def test_pull_refuses_with_exit_8_and_leaves_nothing(case, client, with_trust, tmp_path):
    push(client, tmp_path, "v1")
    with_trust(signing="a").sign("lr", "v1")
    reason = make_bad(case, client, with_trust, Tree(client), tmp_path, "v2")
    verifier = with_trust(trusted="a.pub")
    dest = tmp_path / "pulled" / "lr"
    with pytest.raises(IntegrityError, match=reason) as exc:
        verifier.pull("lr", "v2", dest=dest, require_signature=True)
    assert exc.value.exit_code == 8
    assert not dest.exists() and os.listdir(dest.parent) == []  # no temporary either
    # the same pull without the policy (and not the tampered bytes) goes through
    if case != "tampered file":
        assert verifier.pull("lr", "v2", dest=dest).changed


def test_policy_from_config_and_an_existing_copy_is_checked_too(client, backend_env, keys, tmp_path):
    push(client, tmp_path, "v1")
    client.pull("lr", "v1", dest=tmp_path / "out")
    env = {**backend_env, "MDL_TRUST_KEYS": keys.path("a.pub"), "MDL_TRUST_REQUIRE_SIGNATURE": "true"}
    strict = Client(load(env=env))
    try:
        with pytest.raises(IntegrityError, match="version lr/v1 is not signed"):
            strict.pull("lr", "v1", dest=tmp_path / "out")  # already there, verified: still refused
        with pytest.raises(IntegrityError, match="is not signed"):
            strict.pull("lr", "v1", dest=tmp_path / "fresh")
        assert not (tmp_path / "fresh").exists()
    finally:
        strict.close()


def failures(events: list[dict], version: str) -> list[dict] | None:
    return [e for e in events if e["event"] == "failed" and e["version"] == version] or None


def test_watch_keeps_the_old_version_in_every_case(client, with_trust, tmp_path):
    push(client, tmp_path, "v1")
    with_trust(signing="a").sign("lr", "v1")
    client.promote("lr", "v1")
    tree = Tree(client)
    events: list[dict] = []
    d = tmp_path / "dir"
    w = Watcher(with_trust(trusted="a.pub"), "lr", d, WatchOptions(require_signature=True, heartbeat=0.5),
                emit=events.append)
    w.start()
    try:
        until(lambda: current(d) == "v1" and w.state == "ready")
        for i, case in enumerate(CASES, start=2):
            version = f"v{i}"
            reason = make_bad(case, client, with_trust, tree, tmp_path, version)
            client.promote("lr", version)
            failed = until(functools.partial(failures, events, version))
            assert reason in failed[0]["error"] and failed[0]["permanent"] is True, (case, failed)
            assert failed[0]["serving"] == "v1"
            assert w.state == "failed" and reason in (w.error or "")
            assert current(d) == "v1" and (d / "current" / "model.pkl").read_bytes() == b"lr v1"
            assert version not in os.listdir(d / "versions")  # never moved into place
        # a good version is taken as soon as the alias names it
        push(client, tmp_path, "v99")
        with_trust(signing="a").sign("lr", "v99")
        client.promote("lr", "v99")
        until(lambda: current(d) == "v99" and w.state == "ready")
    finally:
        w.stop()


def test_a_copy_resumed_from_disk_is_verified_once_the_policy_is_on(client, with_trust, tmp_path):
    """A watcher (serve's too) restarted with the policy newly on never serves the unsigned copy it finds."""
    push(client, tmp_path, "v1")
    client.promote("lr", "v1")
    d = tmp_path / "dir"
    assert Watcher(client, "lr", d, WatchOptions()).sync_once() and current(d) == "v1"
    events: list[dict] = []
    served: list[str] = []
    opts = WatchOptions(require_signature=True, heartbeat=0.5)
    w = Watcher(with_trust(trusted="a.pub"), "lr", d, opts, emit=events.append,
                on_swap=lambda v, path, before: served.append(v))
    w.start()
    try:
        failed = until(functools.partial(failures, events, "v1"))
        assert (failed[0]["error"], failed[0]["permanent"]) == ("version lr/v1 is not signed", True)
        assert until(lambda: w.state == "failed") and w.error == "v1: version lr/v1 is not signed"
        assert current(d) is None and not w.ready and served == []  # nothing served
        assert not [e for e in events if e["event"] in ("resumed", "swapped")]
        assert w.readiness()["hint"] == "sign it with a trusted key: mdl sign lr v1"
        # the registry's version is then downloaded and verified as usual
        push(client, tmp_path, "v2")
        with_trust(signing="a").sign("lr", "v2")
        client.promote("lr", "v2")
        until(lambda: current(d) == "v2" and w.state == "ready")
        assert served == ["v2"]
    finally:
        w.stop()
    # once / a signed copy: the same check, and a signed copy resumes as before
    d = tmp_path / "once"
    assert Watcher(client, "lr", d, WatchOptions(version="v1")).sync_once() and current(d) == "v1"
    once = Watcher(with_trust(trusted="a.pub"), "lr", d, WatchOptions(require_signature=True, version="v1"))
    assert once.sync_once() is False and once.error == "v1: version lr/v1 is not signed"
    assert current(d) is None
    events.clear()
    again = Watcher(with_trust(trusted="a.pub"), "lr", tmp_path / "dir2", WatchOptions(version="v2"))
    assert again.sync_once()
    w = Watcher(with_trust(trusted="a.pub"), "lr", tmp_path / "dir2", opts, emit=events.append)
    w.start()
    try:
        until(lambda: w.state == "ready")
        assert [e["version"] for e in events if e["event"] == "resumed"] == ["v2"]
        assert not [e for e in events if e["event"] in ("failed", "downloading")]
    finally:
        w.stop()


# -- hostile signature trees ---------------------------------------------------------------------------


def test_hostile_signature_files_never_crash_or_escape(client, with_trust, tmp_path, caplog):
    push(client, tmp_path, "v1")
    push(client, tmp_path, "v2")
    signer, _ = with_trust(signing="a").sign("lr", "v1")
    tree = Tree(client)
    sigs = tree.sigdir("lr", "v2")
    valid_v1 = tree.read(posixpath.join(tree.sigdir("lr", "v1"), f"{signer.key_id}.sig"))
    caplog.set_level(logging.DEBUG, logger="mdl.storage")
    huge = "cd" * 32
    tree.write(posixpath.join(sigs, f"{huge}.sig"), b"{" + b" " * (3 * 1024 * 1024) + b"}")
    for garbage in ("README", "x.sig", "../evil.sig", "AB" * 32 + ".sig", "ef" * 32):
        if "/" not in garbage:
            tree.write(posixpath.join(sigs, garbage), valid_v1)
    tree.mkdir(posixpath.join(sigs, "12" * 32 + ".sig"))  # a directory with a signature's name
    garbled = "34" * 32
    tree.write(posixpath.join(sigs, f"{garbled}.sig"), b"\xff\x00 not json")
    if tree.local:  # a symlink to v1's valid signature is never followed
        os.symlink(os.path.join(tree.sigdir("lr", "v1"), f"{signer.key_id}.sig"),
                   os.path.join(sigs, f"{signer.key_id}.sig"))
    assert client.storage.list_signatures("lr", "v2") == [garbled, huge]
    assert client.storage.list_versions("lr") == ["v1", "v2"] and client.storage.list_models() == ["lr"]
    verdicts = {c.sig_id: c.reason for c in with_trust().signatures("lr", "v2")}
    assert set(verdicts) == {garbled, huge} and all(verdicts.values())
    assert "more than" in verdicts[huge]
    with pytest.raises(IntegrityError, match="has no valid signature"):
        with_trust().pull("lr", "v2", dest=tmp_path / "out", require_signature=True)
    assert any("not a signature file" in r.getMessage() for r in caplog.records)
    if tree.local:  # a symlinked signatures directory is passed over, not followed
        os.rename(sigs, sigs + ".real")
        os.symlink(sigs + ".real", sigs)
        assert client.storage.list_signatures("lr", "v2") == []
        with pytest.raises(IntegrityError, match="symlink"):
            client.storage.put_signature("lr", "v2", "56" * 32, b"x")
        assert sorted(os.listdir(sigs + ".real")) == sorted(os.listdir(sigs))


# -- who promoted --------------------------------------------------------------------------------------


def test_identity_is_the_zookeeper_digest_user(monkeypatch):
    env = {"MDL_REGISTRY_URL": "zk://127.0.0.1:1/mdl"}
    assert "@" in Client(load(env=env)).identity  # no credentials: the self-reported user@host
    monkeypatch.setenv("MDL_REGISTRY_DIGEST", "deploy:secret")
    assert Client(load(env=env)).identity == "deploy (zookeeper digest)"
