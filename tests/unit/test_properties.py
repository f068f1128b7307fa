"""Property-based tests for issue 12, "hostile input".

Storage and registry contents and configuration values are untrusted input. Whatever hypothesis
generates, a reader never touches a path outside its destination and raises nothing but an
``MdlError`` (with the exit code of its subclass).

1. ``Manifest.from_json``: arbitrary bytes, arbitrary JSON, nearly valid manifests (hostile paths,
   sizes, hashes; the digest recomputed so only the field checks can refuse them).
2. ``check_entry_path`` / ``check_relpath`` / ``safefs.inside`` on any text.
3. End to end on the embedded backend: hostile manifests (and hostile storage entries: symlinks,
   directories, files that do not match) planted under a real version, then ``Client.pull``.
4. ``validate_name`` / ``validate_version`` / ``validate_alias`` and ``unique_version``.
5. ``config.load`` with arbitrary ``MDL_*`` values and arbitrary config files.
6. ``registry.base.parse_pointer`` on arbitrary pointer documents.

Nothing is written into the work tree: no example database, Hypothesis's caches in the temp directory.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import posixpath
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, example, find, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from mdl.config import BY_KEY, SETTINGS, Config, load
from mdl.errors import ConfigError, ExitCode, IntegrityError, InvalidInput, MdlError
from mdl.manifest import (MANIFEST_NAME, MAX_DEPTH, FileEntry, Manifest, check_entry_path, check_relpath,
                          digest_of)
from mdl.names import MAX_LENGTH, unique_version, validate_alias, validate_name, validate_version
from mdl.registry.base import parse_pointer
from mdl.safefs import inside

# Hypothesis caches (constants, unicode data) go to the temporary directory, not ./.hypothesis in the
# work tree; and it keeps no example database (database=None below).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "mdl-hypothesis")

BASE = settings(
    database=None,
    deadline=None,
    report_multiple_bugs=False,  # one bug, shrunk, per test: a failing run stays quick
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FIND = settings(database=None, deadline=None, max_examples=2000, phases=[Phase.generate])

# ------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------

SHA_OK = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
_NASTY_COMPONENTS = [
    "..", ".", "", "a", "b", "a b", " ", "~", "$HOME", "...", MANIFEST_NAME, ".mdl-tmp-0", ".mdl-staging",
    "\\", "..\\..", "a\\b", "\x00", "a\x00b", "\n", "\x7f", "c:", "C:\\x", "\u00fc", "u\u0308", "\u00e9" * 128,
    "\ud800", "a\udcff", "\u202e", "\uff0e\uff0e", "\u2024\u2024", "\u2215", "\u0000..", "x" * 255, "x" * 256,
    "\U0001f600" * 64,
]
COMPONENT = st.one_of(
    st.sampled_from(_NASTY_COMPONENTS),
    st.text(max_size=8),
    st.text(alphabet="./\\\x00a:", max_size=6),
    st.from_regex(r"[a-z]{1,3}", fullmatch=True),
)


def _long_path(total: int, comp: int) -> str:
    """A plain relative path of exactly ``total`` characters made of ``comp``-character components."""
    parts, left = [], total
    while left > 0:
        n = min(comp, left)
        parts.append("x" * n)
        left -= n + 1
    return "/".join(parts)[:total].rstrip("/") or "x"


HOSTILE_PATH = st.one_of(
    st.builds(lambda lead, parts, trail: lead + "/".join(parts) + trail,
              st.sampled_from(["", "", "", "/", "//", "./", "../", "a/../", "\\"]),
              st.lists(COMPONENT, min_size=1, max_size=5),
              st.sampled_from(["", "", "", "/", "/.", "/..", "\\"])),
    st.text(max_size=20),
    st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2).map(lambda n: "/".join(["d"] * n)),  # deeply nested
    st.builds(_long_path, st.integers(3900, 4100), st.sampled_from([1, 100, 250, 255, 256])),  # very long
)
SIZE = st.one_of(
    st.integers(0, 64), st.integers(0, 64), st.integers(-2 ** 70, -1), st.integers(2 ** 62, 2 ** 80),
    st.booleans(), st.floats(), st.text(max_size=4), st.none(),
)
SHA = st.one_of(
    SHA_OK,
    SHA_OK.map(str.upper),
    st.text(alphabet="0123456789abcdef", max_size=70).filter(lambda s: len(s) != 64),
    st.text(max_size=64),
    st.integers(),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
NAME_LIKE = st.one_of(
    st.just("lr"), st.just("v1"), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,10}", fullmatch=True),
    st.text(max_size=10), st.sampled_from(["", ".", "..", "a..b", "a/b", "/etc", "x" * 128, "x" * 129, "a\x00",
                                           "-x", ".hidden", "a:b", "\u00e9"]),
)
NAME_VALUE = st.one_of(NAME_LIKE, JSON)


def _raw_digest(files: Any) -> str:
    """The digest ``digest_of`` gives the entries as written, where they can be read as entries at all."""
    try:
        return digest_of([FileEntry(f["path"], f["size"], f["sha256"]) for f in files])
    except Exception:  # not a list of entries, mixed path types, a lone surrogate...: any digest
        return "sha256:" + "0" * 64


GOOD_COMPONENT = st.one_of(
    st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._ -]{0,11}", fullmatch=True),
    st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="/\\:"), min_size=1, max_size=6),
).filter(lambda c: c not in (".", "..") and len(c.encode()) <= 255)
GOOD_PATH = st.lists(GOOD_COMPONENT, min_size=1, max_size=4).map("/".join).filter(lambda p: p != MANIFEST_NAME)

# How hostile a generated manifest is. CLEAN: plausible fields, sizes and hashes those of the content
# planted; PLAUSIBLE: plausible fields, sizes and hashes mostly not the content's; ONE_OFF: one
# hostile entry, field or duplicate in a clean document; HOSTILE: anything goes.
CLEAN, PLAUSIBLE, ONE_OFF, HOSTILE = range(4)


@st.composite
def entries(draw: st.DrawFn, contents: bool = False, level: int = HOSTILE) -> Any:
    """One item of ``files``: an object with path, size and sha256, each maybe hostile, or worse.
    With ``contents``, a ``_content`` to plant in storage, which an honest entry describes."""
    content = draw(st.binary(max_size=64)) if contents else b""
    honest = level == CLEAN or draw(st.integers(0, 3)) == 0
    if level == HOSTILE:
        path = draw(st.one_of(HOSTILE_PATH, GOOD_PATH))
        size, sha = draw(SIZE), draw(SHA)
    else:
        path = draw(GOOD_PATH)
        size, sha = draw(st.integers(0, 2 ** 40)), draw(SHA_OK)
    if honest:
        size, sha = len(content), hashlib.sha256(content).hexdigest()
    entry: dict[str, Any] = {"path": path, "size": size, "sha256": sha}
    if level == HOSTILE:
        shape = draw(st.integers(0, 19))
        if shape == 0:
            del entry[draw(st.sampled_from(sorted(entry)))]
        elif shape == 1:
            entry[draw(st.sampled_from(sorted(entry)))] = draw(JSON)
        elif shape == 2:
            entry[draw(st.text(max_size=5))] = draw(JSON)
        elif shape == 3:
            return draw(JSON)  # not an object at all
    if contents:
        entry["_content"] = content
    return entry


@st.composite
def file_lists(draw: st.DrawFn, contents: bool = False, level: int = HOSTILE, twin: bool = False) -> list[Any]:
    files = draw(st.lists(entries(contents, level), min_size=0 if level == HOSTILE else 1, max_size=4))
    paths = [f["path"] for f in files if isinstance(f, dict) and isinstance(f.get("path"), str)]
    if paths and twin:
        p = draw(st.sampled_from(paths))
        other = draw(entries(contents, level))
        if isinstance(other, dict):
            # the same path twice, or a path that is also another's directory ("a" and "a/b")
            other["path"] = draw(st.sampled_from([p, p + "/" + draw(COMPONENT), p.rsplit("/", 1)[0]]))
            files.insert(draw(st.integers(0, len(files))), other)
    return files


def _mutate(draw: st.DrawFn, doc: dict) -> None:
    key = draw(st.sampled_from(["name", "version", "files", "digest", "created", "creator", "mdl_version",
                                "format", "kind", "schema", "extra", "bytes", "?"]))
    how = draw(st.integers(0, 3))
    if how == 0:
        doc.pop(key, None)
    elif how == 1 or key in ("name", "version"):
        doc[key] = draw(NAME_VALUE)
    elif how == 2:
        doc[key] = draw(JSON)
    else:
        doc[key] = draw(st.text(max_size=8)) * draw(st.sampled_from([1, 200]))  # maybe over 1024 characters


@st.composite
def leveled_docs(draw: st.DrawFn, name: str = "lr", version: str = "v1",
                 contents: bool = False) -> tuple[int, dict]:
    """A manifest document with a valid structure and (maybe) hostile fields, and how hostile it
    is; ``digest`` recomputed from the entries as written, so that only the field checks stand
    between it and a reader."""
    level = draw(st.sampled_from([CLEAN, CLEAN, PLAUSIBLE, ONE_OFF, ONE_OFF, HOSTILE, HOSTILE]))
    what = draw(st.sampled_from(["entry", "doc", "twin"])) if level == ONE_OFF else None
    files = draw(file_lists(contents, CLEAN if level == ONE_OFF else level,
                            twin=what == "twin" or level == HOSTILE and draw(st.booleans())))
    if what == "entry":
        files.insert(draw(st.integers(0, len(files))), draw(entries(contents, HOSTILE)))
    doc: dict[str, Any] = {
        "name": name, "version": version, "files": files,
        "digest": _raw_digest(files),
        "created": "2026-11-27T00:00:00.000000Z", "creator": "u@h", "mdl_version": "0.1.0",
        "format": "file", "kind": draw(st.sampled_from(["file", "directory"])), "schema": 1,
        "extra": draw(st.dictionaries(st.text(max_size=4), JSON, max_size=2)),
    }
    for _ in range(1 if what == "doc" else draw(st.integers(0, 2)) if level == HOSTILE else 0):
        _mutate(draw, doc)
    return level, doc


def manifest_docs(name: str = "lr", version: str = "v1") -> st.SearchStrategy[dict]:
    return leveled_docs(name, version).map(lambda t: t[1])


def encode(doc: Any, ascii_only: bool) -> bytes:
    """JSON as a writer could store it. Non-ASCII output keeps lone surrogates as raw (invalid UTF-8) bytes."""
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# ------------------------------------------------------------------------------------------------
# 1. manifest parsing
# ------------------------------------------------------------------------------------------------

def check_manifest(m: Manifest, base: Path, expect: tuple[str | None, str] | None) -> None:
    """Everything a reader may rely on in a manifest ``from_json`` returned."""
    assert isinstance(m, Manifest)
    assert validate_name(m.name) == m.name and validate_version(m.version) == m.version
    if expect is not None:
        assert (expect[0] is None or m.name == expect[0]) and m.version == expect[1]
    assert m.files, "a manifest lists at least one file"
    paths = [e.path for e in m.files]
    assert len(set(paths)) == len(paths), "no path twice"
    for e in m.files:
        assert isinstance(e.path, str) and check_entry_path(e.path) == e.path
        assert type(e.size) is int and e.size >= 0
        assert isinstance(e.sha256, str) and len(e.sha256) == 64 and set(e.sha256) <= set("0123456789abcdef")
        assert (base / e.path).resolve().is_relative_to(base.resolve())
        assert (base / e.path).resolve() != base.resolve()
        for depth in range(1, e.path.count("/") + 1):  # no file is also the directory of another
            assert "/".join(e.path.split("/")[:depth]) not in paths
    assert m.digest == digest_of(m.files)
    assert m.kind in ("file", "directory")
    again = Manifest.from_json(m.to_json(), expect=expect)  # what mdl writes, it reads back unchanged
    assert again.to_json() == m.to_json()


def parse_or_refuse(data: bytes, base: Path, expect: tuple[str | None, str] | None = None) -> Manifest | None:
    try:
        m = Manifest.from_json(data, where="generated manifest", expect=expect)
    except IntegrityError as exc:
        assert exc.exit_code == ExitCode.INTEGRITY == 8
        assert exc.message
        return None
    check_manifest(m, base, expect)
    return m


EXPECT = st.sampled_from([None, ("lr", "v1"), (None, "v1"), ("other", "v1")])


@settings(BASE, max_examples=300)
@given(data=st.binary(max_size=300), expect=EXPECT)
@example(data=b"", expect=None)
@example(data=b"[" * 100_000 + b"]" * 100_000, expect=None)  # nested too deeply for the parser
@example(data=b'{"files": ' + b"[" * 5000 + b"]" * 5000 + b"}", expect=None)
@example(data=b'{"size": 1' + b"0" * 5000 + b"}", expect=None)  # an integer Python will not parse
@example(data=b'{"name": NaN, "files": [Infinity]}', expect=None)
@example(data=b"\xff\xfe{\x00}\x00", expect=None)  # UTF-16 with a byte-order mark
@example(data=b'{"name": "\xc3\x28"}', expect=None)  # invalid UTF-8
@example(data=b'{"name": "\\ud800"}', expect=None)  # a lone surrogate, escaped
def test_arbitrary_bytes_are_a_manifest_or_an_integrity_error(data: bytes, expect: Any, tmp_path: Path) -> None:
    parse_or_refuse(data, tmp_path, expect)


@settings(BASE, max_examples=200)
@given(doc=JSON, ascii_only=st.booleans())
def test_arbitrary_json_is_a_manifest_or_an_integrity_error(doc: Any, ascii_only: bool, tmp_path: Path) -> None:
    assert parse_or_refuse(encode(doc, ascii_only), tmp_path) is None  # no random JSON value is a manifest


@settings(BASE, max_examples=300)
@given(doc=manifest_docs(), ascii_only=st.booleans(), expect=EXPECT)
def test_nearly_valid_manifests_are_checked(doc: dict, ascii_only: bool, expect: Any, tmp_path: Path) -> None:
    m = parse_or_refuse(encode(doc, ascii_only), tmp_path, expect)
    if m is not None:  # what was accepted is what was written
        assert [e.path for e in m.files] == [f["path"] for f in doc["files"]]
        assert [(e.size, e.sha256) for e in m.files] == [(f["size"], f["sha256"]) for f in doc["files"]]


def test_the_strategies_reach_accepted_manifests(tmp_path: Path) -> None:
    """Not a property but a guard on the generators: valid documents parse, so the properties above
    are not vacuous, and the classic escapes are refused."""
    good = {"path": "a/b.bin", "size": 3, "sha256": "ab" * 32}
    doc = {"name": "lr", "version": "v1", "files": [good], "digest": _raw_digest([good]), "created": "",
           "creator": "", "mdl_version": "", "format": "file"}
    m = parse_or_refuse(encode(doc, True), tmp_path, ("lr", "v1"))
    assert m is not None and m.files == [FileEntry("a/b.bin", 3, "ab" * 32)]
    for bad in ["../x", "/etc/passwd", "a/../../x", "a//b", "./a", "a\\..\\x", "a\x00", "", "a/", MANIFEST_NAME,
                "/".join(["d"] * (MAX_DEPTH + 1)), "x" * 256, "\ud800"]:
        files = [dict(good, path=bad)]
        assert parse_or_refuse(encode(dict(doc, files=files, digest=_raw_digest(files)), True), tmp_path) is None
    files = [good, dict(good, path="a")]
    assert parse_or_refuse(encode(dict(doc, files=files, digest=_raw_digest(files)), True), tmp_path) is None
    # the generators reach both outcomes, with non-ASCII paths among the accepted
    for want in (True, False):
        find(manifest_docs(), lambda d: (parse_or_refuse(encode(d, False), tmp_path) is not None) == want
             and (not want or any(not f["path"].isascii() for f in d["files"])), settings=FIND)


# ------------------------------------------------------------------------------------------------
# 2. relative paths
# ------------------------------------------------------------------------------------------------

def accepted_path(rel: str) -> bool:
    try:
        out = check_entry_path(rel)
    except ValueError as exc:
        assert str(exc)
        with pytest.raises(InvalidInput):
            check_relpath(rel)
        return False
    assert out == rel
    assert check_relpath(rel) == rel
    return True


def assert_stays_inside(rel: str, directory: str) -> None:
    assert posixpath.normpath(rel) == rel
    assert not posixpath.isabs(rel) and not rel.startswith("/")
    assert ".." not in rel.split("/") and "." not in rel.split("/") and "" not in rel.split("/")
    assert "\x00" not in rel and "\\" not in rel
    joined = os.path.normpath(os.path.join(directory, rel))
    assert os.path.commonpath([joined, directory]) == directory and joined != directory


@settings(BASE, max_examples=500)
@given(rel=st.one_of(st.text(), HOSTILE_PATH))
def test_an_accepted_relative_path_stays_inside(rel: str) -> None:
    if accepted_path(rel):
        assert_stays_inside(rel, "/srv/dest")


def _tree(root: Path, skip: Callable[[str], bool] = lambda rel: False) -> dict[str, Any]:
    """Everything below ``root`` (not following symlinks): type, and bytes or link target."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        keep = []
        for d in dirnames:
            rel = os.path.normpath(os.path.join(rel_dir, d))
            if skip(rel):
                continue
            p = os.path.join(dirpath, d)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            else:
                out[rel] = ("dir", stat.S_IMODE(os.lstat(p).st_mode))
                keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if skip(rel):
                continue
            p = os.path.join(dirpath, f)
            st_ = os.lstat(p)
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st_.st_mode):
                with open(p, "rb") as fh:
                    out[rel] = ("file", hashlib.sha256(fh.read()).hexdigest())
            else:
                out[rel] = ("other", stat.S_IFMT(st_.st_mode))
    return out


@settings(BASE, max_examples=150)
@given(rel=st.one_of(GOOD_PATH, HOSTILE_PATH, st.text(max_size=30)))
@example(rel=_long_path(4095, 250))  # the longest path check_entry_path accepts: its directories do not fit
@example(rel=_long_path(4095, 255))  # ...they do
@example(rel="/".join(["d"] * MAX_DEPTH))  # the deepest
def test_safefs_inside_creates_only_inside(rel: str, tmp_path: Path) -> None:
    assume(accepted_path(rel))
    (tmp_path / "victim").write_bytes(b"victim")
    before = _tree(tmp_path, skip=lambda r: r.startswith("per-example"))
    parent = tmp_path / "per-example"
    parent.mkdir(exist_ok=True)
    d = Path(tempfile.mkdtemp(dir=parent))
    try:
        try:
            target = inside(d, rel)
        except MdlError:
            pass  # a refusal is fine; nothing else is
        else:
            assert target == d / rel
            assert str(target).startswith(str(d) + os.sep)
            assert target.parent.is_dir() and target.name not in os.listdir(target.parent)
            assert os.path.realpath(target.parent).startswith(os.path.realpath(d))
        assert _tree(tmp_path, skip=lambda r: r.startswith("per-example")) == before
        assert os.listdir(parent) == [d.name]
    finally:
        shutil.rmtree(d)


# ------------------------------------------------------------------------------------------------
# 3. end to end: hostile manifests and storage entries under a real version, pulled
# ------------------------------------------------------------------------------------------------

VICTIM = b"VICTIM: mdl must neither change nor serve this file\n"
PLANT = st.sampled_from(["file", "file", "file", "missing", "link-victim", "link-dir", "dir", "parent-link"])


class World:
    """A real embedded tree with one pushed version, ``lr/v1``, and victims around it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.models = tmp / "models"
        self.pulls = tmp / "pulls"
        self.pulls.mkdir()
        src = tmp / "src"
        src.mkdir()
        (src / "model.pkl").write_bytes(b"\x80\x04real model")
        (tmp / "victim.txt").write_bytes(VICTIM)
        (self.pulls / "victim.txt").write_bytes(VICTIM)  # a sibling of every destination
        outside = tmp / "outside"
        outside.mkdir()
        for n in ("a", "b", "x", "model.pkl", "d"):
            (outside / n).write_bytes(VICTIM)
        self.outside = outside
        from mdl.client import Client

        self.client = Client(load(env={"MDL_STORAGE_URL": f"file://{self.models}",
                                       "MDL_REGISTRY_URL": f"sqlite://{tmp}/r.db"}))
        self.client.push("lr", src, version="v1")
        self.version_dir = self.models / "lr" / "v1"
        self.original = (self.version_dir / MANIFEST_NAME).read_bytes()
        self.counter = itertools.count()

    def snapshot(self, dest: Path) -> dict[str, Any]:
        models = os.path.relpath(self.models, self.tmp)
        prefix = os.path.relpath(dest, self.tmp)
        temp = os.path.join(os.path.dirname(prefix), "." + dest.name + ".mdl-")
        return _tree(self.tmp, skip=lambda r: r == models or r.startswith(models + "/")
                     or r == prefix or r.startswith(prefix + "/") or r.startswith(temp))


def _plant(root: Path, rel: str, how: str, content: bytes, outside: Path) -> None:
    """Put ``how`` at ``root/rel``, walking with directory descriptors (no path length limit, no
    symlink followed). A collision with something planted before leaves things as they are."""
    parts = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i, part in enumerate(parts[:-1]):
            if how == "parent-link" and i == 0:
                try:
                    os.symlink(str(outside), part, dir_fd=fd)
                except FileExistsError:
                    pass
                return
            try:
                os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        last = parts[-1]
        if how in ("file", "parent-link"):
            out = os.open(last, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
            with os.fdopen(out, "wb") as f:
                f.write(content)
        elif how == "link-victim":
            os.symlink(str(outside / "a"), last, dir_fd=fd)
        elif how == "link-dir":
            os.symlink(str(outside), last, dir_fd=fd)
        elif how == "dir":
            os.mkdir(last, dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@st.composite
def hostile_versions(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str, bytes]]]:
    """A manifest for lr/v1 (rarely for another version) and what to plant beside it in storage:
    for a CLEAN manifest mostly its very files, otherwise also symlinks, directories, nothing."""
    name = draw(st.sampled_from(["lr"] * 19 + ["other"]))
    version = draw(st.sampled_from(["v1"] * 19 + ["v2"]))
    level, doc = draw(leveled_docs(name, version, contents=True))
    plants = []
    files = doc.get("files")
    if isinstance(files, list):
        consistent = doc.get("digest") == _raw_digest(files)
        for f in files:
            if not isinstance(f, dict):
                continue
            content = f.pop("_content", b"")
            how = draw(st.sampled_from(["file"] * 12 + ["link-victim"])) if level == CLEAN else draw(PLANT)
            if how in ("link-victim", "link-dir", "parent-link") and draw(st.booleans()):
                f["size"], f["sha256"] = len(VICTIM), hashlib.sha256(VICTIM).hexdigest()  # as if it were served
            if isinstance(f.get("path"), str):
                plants.append((f["path"], how, content))
        if consistent:  # still consistent after the changes above
            doc["digest"] = _raw_digest(files)
    return encode(doc, draw(st.booleans())), plants


def planted(*files: tuple[str, bytes, str]) -> tuple[bytes, list[tuple[str, str, bytes]]]:
    """An explicit example for the pull property: honest entries of (path, content, how planted)."""
    entries_ = [{"path": p, "size": len(c), "sha256": hashlib.sha256(c).hexdigest()} for p, c, _ in files]
    doc = {"name": "lr", "version": "v1", "files": entries_, "digest": _raw_digest(entries_), "created": "",
           "creator": "", "mdl_version": "", "format": "file", "kind": "directory"}
    return encode(doc, True), [(p, how, c) for p, c, how in files]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.client.close()


@settings(BASE, max_examples=150)
@given(version=hostile_versions())
@example(version=planted(("a/b", b"ok", "file"), ("c", b"", "file")))  # a plain version pulls
@example(version=planted(("a/x", VICTIM, "parent-link")))  # a directory symlink in storage
@example(version=planted(("a", VICTIM, "link-victim")))  # a file symlink in storage
def test_pull_of_a_hostile_version_writes_only_inside_its_destination(version: Any, world: World) -> None:
    pull_checked(world, *version)


@pytest.mark.parametrize("comp", [250, 255])
def test_pull_of_the_longest_accepted_path_fails_cleanly(comp: int, world: World) -> None:
    """check_entry_path accepts 4095 characters; no destination can hold them (PATH_MAX is 4096 with
    the NUL). With 255-character components the directories fit and only the file's open fails."""
    pull_checked(world, *planted((_long_path(4095, comp), b"x", "file")))


def pull_checked(world: World, data: bytes, plants: list[tuple[str, str, bytes]]) -> None:
    """Plant a version, pull it; check the outcome, the destination and everything around it."""
    vdir = world.version_dir
    shutil.rmtree(vdir)
    vdir.mkdir()
    (vdir / MANIFEST_NAME).write_bytes(data)
    for rel, how, content in plants:
        try:
            check_entry_path(rel)
        except ValueError:
            continue  # only plain relative paths are planted (planting must not escape either)
        _plant(vdir, rel, how, content, world.outside)
    n = next(world.counter)
    dest = world.pulls / f"out-{n}"
    if n % 3 == 1:  # every third pull replaces an earlier copy (another version) in place
        dest.mkdir()
        (dest / MANIFEST_NAME).write_bytes(world.original)
        (dest / "model.pkl").write_bytes(b"\x80\x04real model")
    kept = _tree(dest) if dest.exists() else None
    before = world.snapshot(dest)
    try:
        result = world.client.pull("lr", "v1", dest=dest)
    except MdlError as exc:
        assert isinstance(exc.exit_code, ExitCode) and exc.message
        if kept is None:
            assert not os.path.lexists(dest), "a failed pull leaves its destination as it was (absent)"
        else:
            assert _tree(dest) == kept, "a failed pull leaves its destination as it was"
            shutil.rmtree(dest)
    else:
        m = Manifest.from_json(data)
        assert result.path == str(dest) and result.digest == m.digest
        found = _tree(dest)
        want = {e.path: e for e in m.files}
        files = {rel: kind for rel, kind in found.items() if kind[0] != "dir"}
        assert set(files) == set(want) | {MANIFEST_NAME}, "exactly the manifest's files"
        for rel, (kind, sha) in files.items():
            assert kind == "file", f"{rel} in the destination is a {kind}"
            if rel != MANIFEST_NAME:
                assert sha == want[rel].sha256
                assert os.path.getsize(dest / rel) == want[rel].size
                assert sha != hashlib.sha256(VICTIM).hexdigest(), f"{rel} was served from outside the tree"
        real = os.path.realpath(dest)
        for rel in found:
            assert os.path.realpath(dest / rel).startswith(real + os.sep)
        shutil.rmtree(dest)
    debris = [n for n in os.listdir(world.pulls) if n.startswith("." + dest.name + ".mdl-")]
    assert not debris, f"temporaries left behind: {debris}"
    assert world.snapshot(dest) == before, "something outside the destination changed"
    assert (world.tmp / "victim.txt").read_bytes() == VICTIM
    assert (world.pulls / "victim.txt").read_bytes() == VICTIM


def test_the_pull_property_is_not_vacuous(world: World) -> None:
    """The untouched version pulls, a generated version can, and a planted symlink is refused, not followed."""
    dest = world.pulls / "plain"
    r = world.client.pull("lr", "v1", dest=dest)
    assert r.changed and (dest / "model.pkl").read_bytes() == b"\x80\x04real model"

    def pullable(v: tuple[bytes, list[tuple[str, str, bytes]]]) -> bool:
        m = parse_or_refuse(v[0], world.tmp, ("lr", "v1"))
        return m is not None and len(v[1]) >= 2 and all(h == "file" for _, h, _ in v[1]) and (
            {e.path: (e.size, e.sha256) for e in m.files}
            == {rel: (len(c), hashlib.sha256(c).hexdigest()) for rel, _, c in v[1]})

    data, plants = find(hostile_versions(), pullable, settings=FIND)
    (world.version_dir / MANIFEST_NAME).write_bytes(data)
    for rel, how, content in plants:
        _plant(world.version_dir, rel, how, content, world.outside)
    assert world.client.pull("lr", "v1", dest=world.pulls / "generated").files == len(plants)
    (world.version_dir / MANIFEST_NAME).write_bytes(world.original)
    (world.version_dir / "model.pkl").unlink()
    os.symlink(world.tmp / "victim.txt", world.version_dir / "model.pkl")
    with pytest.raises(MdlError):
        world.client.pull("lr", "v1", dest=world.pulls / "linked")
    assert not (world.pulls / "linked").exists()


# ------------------------------------------------------------------------------------------------
# 4. names, versions, aliases
# ------------------------------------------------------------------------------------------------

NAME_TEXT = st.one_of(st.text(), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]*", fullmatch=True),
                      st.sampled_from(["", ".", "..", "a..b", "x" * 128, "x" * 129, "a\n", "a\x00", "lr/..",
                                       "\u0661", "\uff21", "a\u0301"]))


@settings(BASE, max_examples=400)
@given(value=NAME_TEXT, which=st.sampled_from([validate_name, validate_version, validate_alias]))
def test_an_accepted_name_is_one_safe_path_component(value: str, which: Callable[[str], str]) -> None:
    try:
        out = which(value)
    except InvalidInput as exc:
        assert exc.exit_code == ExitCode.USAGE == 2 and exc.message
        return
    assert out == value
    assert value and len(value) <= MAX_LENGTH and value.isascii()
    assert "/" not in value and "\\" not in value and "\x00" not in value and ":" not in value
    assert value not in (".", "..") and not value.startswith((".", "-"))
    assert check_entry_path(value) == value
    joined = os.path.normpath(os.path.join("/srv/models", value))
    assert os.path.dirname(joined) == "/srv/models" and os.path.basename(joined) == value


VERSION_BASE = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}(-[0-9]{2,3})?", fullmatch=True)


@settings(BASE, max_examples=200)
@given(base=VERSION_BASE, extra=st.lists(st.integers(0, 120), max_size=30), with_base=st.booleans())
def test_unique_version_is_free_and_keeps_its_stem(base: str, extra: list[int], with_base: bool) -> None:
    """A free id: ``base`` itself, or its stem (``base`` less a ``-NN`` suffix: a retry takes the next
    suffix, never ``base-NN-01``) with a numeric suffix; a short valid base gives a valid version."""
    m = re.fullmatch(r"(.+)-(\d{2,})", base)
    stem = m.group(1) if m else base
    taken = {f"{stem}-{n:02d}" for n in extra} | ({base} if with_base else set())
    out = unique_version(base, taken)
    assert out not in taken
    if base not in taken:
        assert out == base
    else:
        assert re.fullmatch(re.escape(stem) + r"-\d{2,}", out)
        assert validate_version(out) == out  # short bases stay valid version ids


# ------------------------------------------------------------------------------------------------
# 5. configuration values
# ------------------------------------------------------------------------------------------------

NUMBERISH = st.one_of(
    st.integers().map(str), st.floats().map(repr), st.floats().map(str),
    st.sampled_from(["nan", "-nan", "inf", "-Infinity", "1e400", "1e-400", "1" + "0" * 400, "1" + "0" * 5000,
                     "0", "-1", "0x10", "1_000", " 5 ", "\u0663", "5.0", "5.5", "True", "", " ", "\x00", "\t1"]),
)
ENV_VALUE = st.one_of(st.text(), NUMBERISH, st.sampled_from(["simple", "kerberos", "json", "table", "never",
                                                              "world", "creator", "file:///x", "webhdfs://h:1"]))
ENV_KEYS = [s.env for s in SETTINGS] + ["MDL_CONTEXT"]
ENVS = st.dictionaries(st.sampled_from(ENV_KEYS), ENV_VALUE, max_size=len(ENV_KEYS))


def check_config(c: Config) -> None:
    assert isinstance(c, Config)
    for s in SETTINGS:
        v = c[s.key]
        assert isinstance(c.origin(s.key), str)
        if v is None:
            continue
        assert type(v) is s.type, (s.key, v)
        if s.type is str:
            assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in v), (s.key, v)
        elif s.type is dict:  # retention.models: model name -> checked retention.* overrides
            for name, overrides in v.items():
                assert validate_name(name) and set(overrides) <= {"keep_last", "keep_days", "grace"}, (s.key, v)
                for leaf, x in overrides.items():
                    assert x is None or check_number(BY_KEY[f"retention.{leaf}"], x), (s.key, v)
        elif s.type is list:  # trust.keys, trust.ca...: non-empty items without control characters
            assert v and all(p and not any(ord(ch) < 32 or ord(ch) == 127 for ch in p) for p in v), (s.key, v)
        elif s.type is not bool:
            assert check_number(s, v), (s.key, v)
        assert not s.choices or v in s.choices, (s.key, v)


def check_number(s: Any, v: Any) -> bool:
    return (
        type(v) is s.type
        and math.isfinite(v)
        and (v > 0 if s.minimum is None else v >= s.minimum)
        and (s.maximum is None or v <= s.maximum)
    )


def load_or_refuse(**kwargs: Any) -> Config | None:
    try:
        c = load(**kwargs)
    except ConfigError as exc:
        assert exc.exit_code == ExitCode.CONFIG == 7 and exc.message
        return None
    check_config(c)
    return c


@settings(BASE, max_examples=300)
@given(env=ENVS)
@example(env={"MDL_STORAGE_RETRIES": "1" + "0" * 5000})
@example(env={"MDL_STORAGE_TIMEOUT": "nan"})
def test_any_env_values_are_a_config_or_a_config_error(env: dict[str, str]) -> None:
    load_or_refuse(flags=None, env=env)


YAML_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-2 ** 1500, 2 ** 1500), st.floats(),
                        st.text(max_size=12), NUMBERISH,
                        st.sampled_from(["file:///m", "simple", "json", "never", "world", "prod"]))
YAML_KEY = st.one_of(st.sampled_from([s.key for s in SETTINGS] + [s.key.rsplit(".", 1)[-1] for s in SETTINGS]
                                     + ["storage", "registry", "transfer", "cache", "contexts", "current-context"]),
                     st.text(max_size=6), st.integers(), st.none(), st.booleans(), st.floats())
YAML_VALUE = st.recursive(YAML_SCALAR, lambda c: st.lists(c, max_size=3) | st.dictionaries(YAML_KEY, c, max_size=4),
                          max_leaves=15)
SECTION = st.dictionaries(st.sampled_from(["url", "root", "user", "auth", "timeout", "retries", "jobs", "dir",
                                           "digest_file", "read_acl", "ca_bundle", "?"]), YAML_SCALAR, max_size=4)


def _good_value(setting: Any) -> st.SearchStrategy[Any]:
    """A value ``setting`` accepts."""
    if setting.choices:
        return st.sampled_from(setting.choices)
    if setting.type is int:
        return st.integers(1, int(setting.maximum or 1000))
    if setting.type is float:
        return st.floats(0.001, setting.maximum or 1e6)
    if setting.type is dict:  # retention.models
        overrides = st.fixed_dictionaries({}, optional={"keep_last": st.integers(1, 100) | st.none(),
                                                        "keep_days": st.floats(0, 100), "grace": st.floats(0, 1e4)})
        return st.dictionaries(st.sampled_from(["fraud", "m-1", "a.b_c"]), overrides, max_size=2)
    return st.text(st.characters(min_codepoint=32, exclude_characters="\x7f", exclude_categories=("Cs",)),
                   min_size=1, max_size=15)


@st.composite
def plausible_configs(draw: st.DrawFn) -> dict:
    """A config file mdl would accept (settings, contexts, the current one), maybe with one value
    or key swapped for something hostile."""
    def section_doc() -> dict:
        doc: dict[str, Any] = {}
        for setting in draw(st.lists(st.sampled_from(SETTINGS), unique=True, max_size=4)):
            value = draw(_good_value(setting))
            if "." in setting.key:
                section, leaf = setting.key.split(".", 1)
                doc.setdefault(section, {})[leaf] = value
            else:
                doc[setting.key] = value
        return doc

    doc = section_doc()
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(["prod", "dev", "a b", "ü"]), unique=True, min_size=1, max_size=3))
        doc["contexts"] = {n: section_doc() for n in names}
        if draw(st.booleans()):
            doc["current-context"] = draw(st.sampled_from(names + ["missing"]))
    if draw(st.booleans()):  # one thing hostile
        where = doc
        while isinstance(where, dict) and where and draw(st.booleans()):
            where = where[draw(st.sampled_from(sorted(where, key=str)))]
        if isinstance(where, dict):
            where[draw(YAML_KEY)] = draw(YAML_VALUE)
    return doc


CONFIG_DOC = st.one_of(
    plausible_configs(),
    YAML_VALUE,
    st.fixed_dictionaries({}, optional={
        "storage": SECTION | YAML_VALUE, "registry": SECTION, "transfer": SECTION, "cache": SECTION,
        "output": YAML_SCALAR, "progress": YAML_SCALAR, "current-context": YAML_SCALAR | st.just("prod"),
        "contexts": st.dictionaries(YAML_KEY | st.just("prod"),
                                    st.none() | st.fixed_dictionaries({}, optional={
                                        "storage": SECTION, "registry": SECTION, "output": YAML_SCALAR,
                                        "transfer": SECTION}) | YAML_VALUE, max_size=3) | YAML_VALUE,
    }),
)
RAW_YAML = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([
        b"a: &a [*a, *a]\nstorage: *a\n",
        b"contexts: &c {x: *c}\n",
        b"storage: &s {url: x}\ncontexts: {prod: {storage: *s}}\ncurrent-context: prod\n",
        b"? [a, b]\n: 1\n",
        b"? {a: 1}\n: 1\n",
        b"!!python/object:os.system {}\n",
        b"storage: !!binary aGVsbG8=\n",
        b"output: 2026-01-01\n",
        b"storage:\n  timeout: 2026-01-01 00:00:00\n",
        b"transfer: {jobs: 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff}\n",
        b"transfer: {jobs: 1" + b"0" * 400 + b"}\n",
        b"transfer: {jobs: 1" + b"0" * 5000 + b"}\n",
        b"storage: {timeout: .nan}\n",
        b"storage: {retries: .inf}\n",
        b"[" * 10_000 + b"]" * 10_000,
        b"a:\n" + b"".join(b"  " * i + b"b:\n" for i in range(1, 300)),
        b"\xef\xbb\xbfoutput: json\n",
        b"\xff\xfeo\x00u\x00",
        b"%YAML 1.1\n---\noutput: json\n---\noutput: table\n",
        b"output: 2026-13-01\n",  # PyYAML raises ValueError (not a YAMLError) for these five
        b"output: !!int\n",
        b"output: !!bool maybe\n",
        b"output: !!timestamp x\n",
        b"1" + b"0" * 4300 + b"\n",
        b"contexts: {null: {}}\ncurrent-context: null\n",
        b"contexts: {1: {}}\n",
        b"contexts: [prod]\n",
        b"current-context: [prod]\n",
        b"current-context: prod\ncontexts: {prod: [1]}\n",
    ]),
)


@settings(BASE, max_examples=200)
@given(doc=CONFIG_DOC, raw=st.one_of(st.none(), RAW_YAML), env=st.one_of(st.just({}), ENVS),
       context=st.one_of(st.none(), st.text(max_size=5), st.just("prod")))
@example(doc={"storage": {"timeout": 10 ** 400}}, raw=None, env={}, context=None)
def test_any_config_file_is_a_config_or_a_config_error(doc: Any, raw: bytes | None, env: dict[str, str],
                                                       context: str | None, tmp_path: Path) -> None:
    if raw is None:
        try:
            text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
        except Exception:  # something PyYAML cannot write
            text = repr(doc)
        raw = text.encode("utf-8", "surrogatepass")
    path = tmp_path / "config.yaml"
    path.write_bytes(raw)
    load_or_refuse(flags=None, env=env, config_path=path, context=context or None)


def test_the_config_strategies_reach_valid_files(tmp_path: Path) -> None:
    """A guard on the generators: some generated files load, with values from the file and from a context."""
    path = tmp_path / "config.yaml"

    def loads_with(origin: str) -> Callable[[Any], bool]:
        def ok(doc: Any) -> bool:
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            c = load_or_refuse(flags=None, env={}, config_path=path)
            return c is not None and any(origin in v.origin for _, v in c.items())
        return ok

    find(plausible_configs(), loads_with("file "), settings=FIND)
    find(plausible_configs(), loads_with("(context "), settings=FIND)


@pytest.mark.parametrize("env,raw", [
    ({"MDL_TRANSFER_JOBS": "1" + "0" * 400}, None),  # an int Python holds but cannot turn into a float
    ({}, b"transfer: {jobs: 1" + b"0" * 400 + b"}\n"),  # the same from a file
    ({}, b"output: 2026-13-01\n"),  # PyYAML raises ValueError (not a YAMLError): no 13th month
    ({}, b"output: !!int\n"),  # ... IndexError
    ({}, b"output: !!bool maybe\n"),  # ... KeyError
    ({}, b"output: !!timestamp x\n"),  # ... AttributeError
    ({}, b"1" + b"0" * 4300 + b"\n"),  # ... ValueError: int() refuses more than 4300 digits
], ids=["env-int-10e400", "file-int-10e400", "yaml-bad-date", "yaml-empty-int", "yaml-bad-bool",
        "yaml-bad-timestamp", "yaml-4301-digits"])
def test_config_values_found_by_the_properties(env: dict[str, str], raw: bytes | None, tmp_path: Path) -> None:
    """Shrunk examples of the two properties above, kept as plain cases."""
    path = None
    if raw is not None:
        path = tmp_path / "config.yaml"
        path.write_bytes(raw)
    assert load_or_refuse(flags=None, env=env, config_path=path) is None


# ------------------------------------------------------------------------------------------------
# 6. pointer documents read from the registry
# ------------------------------------------------------------------------------------------------

ALIAS_LIKE = st.one_of(NAME_LIKE, st.just("latest"), st.just("prod"))
POINTER_DOC = st.one_of(
    st.dictionaries(ALIAS_LIKE, st.one_of(NAME_LIKE, JSON), max_size=4),
    st.dictionaries(st.sampled_from(["latest", "prod", "canary"]),
                    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True), max_size=3),
    JSON,
)
POINTER_DATA = st.one_of(
    st.none(), st.binary(max_size=100), st.text(max_size=100),
    st.builds(encode, POINTER_DOC, st.booleans()),
    st.builds(lambda d, a: encode(d, a).decode("utf-8", "surrogatepass"), POINTER_DOC, st.booleans()),
    st.builds(lambda d: bytearray(encode(d, True)), POINTER_DOC),
    st.sampled_from([b"[" * 100_000, b"{" * 100_000, b'{"latest": 1' + b"0" * 5000 + b"}", b'{"latest": NaN}',
                     b"  \n", "\u3000", b'{"latest": "v1", "latest": "../x"}', 0, 1.5, [], {}, {"latest": "v1"}]),
)


@settings(BASE, max_examples=200)
@given(data=POINTER_DATA)
def test_a_pointer_document_is_aliases_or_an_integrity_error(data: Any) -> None:
    try:
        aliases = parse_pointer(data, "lr", "generated pointer")
    except IntegrityError as exc:
        assert exc.exit_code == ExitCode.INTEGRITY == 8 and "'lr'" in exc.message
        return
    assert isinstance(aliases, dict)
    for alias, version in aliases.items():
        assert isinstance(alias, str) and validate_alias(alias) == alias
        assert isinstance(version, str) and validate_version(version) == version
        joined = os.path.normpath(os.path.join("/srv/models/lr", version))
        assert os.path.dirname(joined) == "/srv/models/lr"
