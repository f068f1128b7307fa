"""Model names, versions and aliases: the rules they follow and how new versions are named."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from mdl.errors import InvalidInput

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
MAX_LENGTH = 128
_NAME_RE = re.compile(NAME_PATTERN)
RULE = f"must match {NAME_PATTERN}, be at most {MAX_LENGTH} characters and not contain '..'"

DEFAULT_ALIAS = "latest"
VERSION_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


def _validate(kind: str, value: str) -> str:
    a_kind = ("an " if kind[0] in "aeiou" else "a ") + kind
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{kind} is empty", hint=f"{a_kind} {RULE}")
    if len(value) > MAX_LENGTH or ".." in value or not _NAME_RE.fullmatch(value):
        raise InvalidInput(f"invalid {kind} {value!r}: {a_kind} {RULE}")
    return value


def validate_name(value: str) -> str:
    """Return a model name unchanged, or raise InvalidInput naming the rule."""
    return _validate("model name", value)


def validate_version(value: str) -> str:
    """Return a version id unchanged, or raise InvalidInput naming the rule."""
    return _validate("version", value)


def validate_alias(value: str) -> str:
    """Return an alias unchanged, or raise InvalidInput naming the rule."""
    return _validate("alias", value)


def timestamp_version(now: datetime | None = None) -> str:
    """A UTC timestamp id that sorts lexically and is a legal HDFS path component."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime(VERSION_TIME_FORMAT)


_SUFFIX_RE = re.compile(r"(.+)-(\d{2,})")


def unique_version(base: str, taken: set[str]) -> str:
    """``base`` or, if taken, ``base-01``, ``base-02``... (still lexically after ``base``).

    A ``base`` that already carries such a suffix (a retry: ``base-04`` was taken meanwhile) gets
    the next free suffix of the same stem, ``base-05``, never ``base-04-01``.
    """
    if base not in taken:
        return base
    m = _SUFFIX_RE.fullmatch(base)
    stem, n = (m.group(1), int(m.group(2)) + 1) if m else (base, 1)
    while True:
        candidate = f"{stem}-{n:02d}"
        if candidate not in taken:
            return candidate
        n += 1
