"""Pulling: verified copies, idempotence, and failures that leave nothing behind, on every backend."""

from __future__ import annotations

import pytest

from mdl.errors import Conflict, IntegrityError, NotFound
from mdl.manifest import MANIFEST_NAME

from ..helpers import MDL, make_dir, make_model, until, write_stored


def test_pull_gives_a_verified_copy_of_the_alias(client, tmp_path):
    src = make_dir(tmp_path, {"a.bin": b"a" * 3000, "sub/b.txt": b"bee"})
    r = client.push("bert", src, promote=True)
    dest = tmp_path / "out"
    p = client.pull("bert", dest=dest)
    assert (p.version, p.changed, p.files, p.bytes) == (r.version, True, 2, 3003)
    assert (dest / "a.bin").read_bytes() == b"a" * 3000 and (dest / "sub/b.txt").read_bytes() == b"bee"
    assert (dest / MANIFEST_NAME).exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out", "srcdir"]  # no temporary debris


def test_pulling_a_present_verified_copy_is_a_no_op(client, tmp_path):
    client.push("lr", make_model(tmp_path), version="v1")
    dest = tmp_path / "out"
    assert client.pull("lr", "v1", dest=dest).changed
    mtime = (dest / "model.pkl").stat().st_mtime_ns
    assert not client.pull("lr", "v1", dest=dest).changed
    assert (dest / "model.pkl").stat().st_mtime_ns == mtime


def test_pull_repairs_a_damaged_local_copy_and_switches_versions(client, tmp_path):
    client.push("lr", make_model(tmp_path, b"one"), version="v1")
    client.push("lr", make_model(tmp_path, b"two"), version="v2")
    dest = tmp_path / "out"
    client.pull("lr", "v1", dest=dest)
    (dest / "model.pkl").write_bytes(b"tampered")
    assert client.pull("lr", "v1", dest=dest).changed
    assert (dest / "model.pkl").read_bytes() == b"one"
    client.pull("lr", "v2", dest=dest)
    assert (dest / "model.pkl").read_bytes() == b"two"


def test_a_corrupted_stored_file_fails_closed(client, tmp_path):
    client.push("lr", make_model(tmp_path, b"good bytes"), version="v1")
    write_stored(client, "lr", "v1", "model.pkl", b"evil bytes")
    dest = tmp_path / "out"
    with pytest.raises(IntegrityError) as err:
        client.pull("lr", "v1", dest=dest)
    assert err.value.exit_code == 8
    assert not dest.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["src"]


def test_a_failed_pull_keeps_the_previous_copy(client, tmp_path):
    client.push("lr", make_model(tmp_path, b"good"), version="v1")
    client.push("lr", make_model(tmp_path, b"also good"), version="v2")
    dest = tmp_path / "out"
    client.pull("lr", "v1", dest=dest)
    write_stored(client, "lr", "v2", "model.pkl", b"corrupt!!")
    with pytest.raises(IntegrityError):
        client.pull("lr", "v2", dest=dest)
    assert (dest / "model.pkl").read_bytes() == b"good"


def test_pull_refuses_to_replace_a_foreign_directory(client, tmp_path):
    client.push("lr", make_model(tmp_path), version="v1")
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me")
    with pytest.raises(Conflict):
        client.pull("lr", "v1", dest=dest)
    assert (dest / "notes.txt").read_text() == "keep me"
    assert client.pull("lr", "v1", dest=dest, force=True).changed
    assert not (dest / "notes.txt").exists()


def test_pull_of_unknown_things_is_not_found(client, tmp_path):
    client.push("lr", make_model(tmp_path), version="v1")
    for args, kw in ((("nope",), {}), (("lr", "v9"), {}), (("lr",), {}), (("lr",), {"alias": "prod"})):
        with pytest.raises(NotFound):
            client.pull(*args, dest=tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()


def test_large_multi_file_version_roundtrip(client, tmp_path):
    import os

    files = {f"shard-{i:02d}.bin": os.urandom(256 * 1024 + i) for i in range(12)}
    client.push("big", make_dir(tmp_path, files), version="v1", jobs=4)
    dest = tmp_path / "out"
    client.pull("big", "v1", dest=dest, jobs=4)
    for rel, data in files.items():
        assert (dest / rel).read_bytes() == data


def test_a_pull_sweeps_what_killed_pulls_left_and_nothing_else(client, tmp_path):
    import fcntl
    import os

    client.push("lr", make_model(tmp_path, b"good"), version="v1", promote=True)
    dead = tmp_path / ".out.mdl-tmp-0dead"  # a pull that was SIGKILLed: no lock held
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "model.pkl").write_bytes(b"partial")
    live = tmp_path / ".out.mdl-tmp-11fe"  # a pull still running: its lock is held
    live.mkdir()
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    other = tmp_path / ".other.mdl-tmp-0dead"  # another destination's: not this pull's to judge
    other.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_bytes(b"mine")
    os.symlink(victim, tmp_path / ".out.mdl-tmp-link")  # a link with our name: never followed
    try:
        client.pull("lr", dest=tmp_path / "out")
        assert not dead.exists() and live.exists() and other.exists()
        assert (victim / "keep").read_bytes() == b"mine" and os.path.islink(tmp_path / ".out.mdl-tmp-link")
    finally:
        os.close(fd)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_a_killed_pull_leaves_nothing_for_long(client, backend, backend_env, tmp_path, sig):
    """SIGTERM cleans up like Ctrl-C; after SIGKILL the next pull into the same place sweeps."""
    import os
    import signal
    import subprocess

    big = tmp_path / "src" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate((256 if backend == "embedded" else 64) * 1024 * 1024)
    client.push("big", big, version="v1", promote=True)
    out = tmp_path / "pulled" / "out"
    proc = subprocess.Popen([MDL, "pull", "big", "-d", str(out)], env={**os.environ, **backend_env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def download_begun() -> bool:
        if any(".mdl-tmp-" in n for n in _names(out.parent)):
            return True
        assert proc.poll() is None, proc.communicate()  # it ended before its download began
        return False

    until(download_begun, 60, 0.002)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    if sig == "SIGTERM":
        assert proc.returncode == 130, err
        assert err.decode().splitlines() == ["error: interrupted"]
        assert _names(out.parent) == []
    else:
        assert proc.returncode == -9 and any(".mdl-tmp-" in n for n in _names(out.parent))
        assert client.pull("big", dest=out).changed
        assert _names(out.parent) == ["out"]


def _names(d):
    import os

    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []
