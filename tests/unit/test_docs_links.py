"""Every relative link in README.md and docs/*.md leads somewhere: the file or directory exists and the
anchor names a heading of the target (slugged as GitHub does)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``, repeated headings numbered -1, -2... as GitHub does."""
    seen: Counter[str] = Counter()
    out = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if m:
            base = slug(m.group(2))
            out.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return out


def links(page: Path) -> list[str]:
    """The targets of the page's links, outside code."""
    found = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        line = INLINE_CODE.sub("", line)
        found += LINK.findall(line)
        m = REFERENCE.match(line)
        if m:
            found.append(m.group(1))
    return found


def local(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)  # http:, https:, mailto:...


def test_slug_follows_githubs_rules():
    assert slug("watch — the hot-update sidecar") == "watch--the-hot-update-sidecar"
    assert slug("How a version is published (nothing half-done is ever visible)") == (
        "how-a-version-is-published-nothing-half-done-is-ever-visible"
    )
    assert slug("Performance (measured, `bench/`)") == "performance-measured-bench"
    assert slug("`-o wide`") == "-o-wide"
    assert slug("alias rm") == "alias-rm"


def test_repeated_headings_are_numbered(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# Usage\n```sh\n# not a heading\n```\n## Usage\n### Usage\n", encoding="utf-8")
    assert anchors(page) == {"usage", "usage-1", "usage-2"}


def test_links_outside_code_are_found(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "See [a](a.md#x) and `[b](b.md)`.\n```\n[c](c.md)\n```\n[d]: d.md\n![e](e.png)\n[w](https://x.org)\n",
        encoding="utf-8",
    )
    assert links(page) == ["a.md#x", "d.md", "e.png", "https://x.org"]


def test_the_pages_exist_and_link_to_each_other():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/commands.md", "docs/output.md", "docs/architecture.md"} <= names
    readme = set(links(ROOT / "README.md"))
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"


def broken_links(page: Path) -> list[str]:
    """The local links of ``page`` that lead nowhere, each with the reason."""
    broken = []
    for target in filter(local, links(page)):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    return broken


def test_broken_links_are_caught(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "other.md").write_text("# Other page\n## A — b\n", encoding="utf-8")
    page = tmp_path / "p.md"
    page.write_text(
        "# Top\n[ok](other.md#a--b) [dir](d) [self](#top) [gone](nope.md) [bad](other.md#a-b) [x](#nope)\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "nope.md: no such file",
        "other.md#a-b: no heading with anchor #a-b in other.md",
        "#nope: no heading with anchor #nope in p.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_local_link_resolves(page: Path):
    assert broken_links(page) == []
