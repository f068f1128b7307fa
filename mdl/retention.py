"""Retention planning: which versions of a model gc deletes and why each survivor stays (pure, no I/O).

A version is kept if ANY keep reason applies (an alias names it, it is pinned, it is in an alias's
rollback window, a live replica uses it, it is younger than the grace window, its creation time is
unreadable or in the future, or a count or age rule keeps it); otherwise it is deleted, naming the rules that condemned
it. Without a count or an age rule nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mdl.config import Config

DAY = 86400.0
MAX_CREATED_LENGTH = 64  # longer than any ISO-8601 timestamp: not one


@dataclass(frozen=True)
class Rules:
    keep_last: int | None = None  # keep the newest N; None: no count rule
    keep_days: float | None = None  # keep versions younger than D days; None: no age rule
    grace: float = 3600.0  # seconds during which a version is never deleted
    rollback_window: int = 3  # the last K versions each alias pointed at are kept

    @classmethod
    def for_model(cls, config: Config, name: str) -> Rules:
        """The config's ``retention.*`` with ``retention.models[name]``'s overrides."""
        overrides: Mapping[str, Any] = (config["retention.models"] or {}).get(name, {})
        return cls(
            keep_last=overrides.get("keep_last", config["retention.keep_last"]),
            keep_days=overrides.get("keep_days", config["retention.keep_days"]),
            grace=overrides.get("grace", config["retention.grace"]),
            rollback_window=config["retention.rollback_window"],
        )

    @property
    def has_rule(self) -> bool:
        """Whether a count or an age rule is set (without one, nothing is deleted)."""
        return self.keep_last is not None or self.keep_days is not None

    def describe(self) -> str:
        """E.g. ``keep_last=5, keep_days=30, grace=1h, rollback_window=3``."""
        parts = [f"keep_last={self.keep_last}"] if self.keep_last is not None else []
        if self.keep_days is not None:
            parts.append(f"keep_days={self.keep_days:g}")
        return ", ".join([*parts, f"grace={duration(self.grace)}", f"rollback_window={self.rollback_window}"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "keep_last": self.keep_last,
            "keep_days": self.keep_days,
            "grace": self.grace,
            "rollback_window": self.rollback_window,
        }


@dataclass(frozen=True)
class VersionFacts:
    version: str
    created: str  # ISO-8601 with an offset, from the manifest; anything else is an unknown age
    bytes: int
    aliases: tuple[str, ...] = ()  # aliases naming it now
    pinned: bool = False
    window: tuple[str, ...] = ()  # aliases whose rollback window holds it
    in_use: tuple[str, ...] = ()  # replica ids that have it loaded or are downloading it
    deleting: bool = False  # tombstoned: a delete started


@dataclass(frozen=True)
class Decision:
    version: str
    delete: bool
    reasons: tuple[str, ...]
    bytes: int
    created: str = field(default="", compare=False)  # the manifest's, for gc's plan table


@dataclass(frozen=True)
class Plan:
    name: str
    rules: Rules
    decisions: list[Decision]  # newest first

    @property
    def delete(self) -> list[Decision]:
        return [d for d in self.decisions if d.delete]

    @property
    def keep(self) -> list[Decision]:
        return [d for d in self.decisions if not d.delete]

    @property
    def bytes_freed(self) -> int:
        return sum(d.bytes for d in self.delete)

    def to_dict(self) -> dict[str, Any]:
        """The plan as ``mdl gc -o json`` prints it."""
        return {
            "name": self.name,
            "rules": self.rules.to_dict(),
            "delete": [{"version": d.version, "bytes": d.bytes, "reasons": list(d.reasons)} for d in self.delete],
            "keep": [{"version": d.version, "reasons": list(d.reasons)} for d in self.keep],
            "bytes_freed": self.bytes_freed,
        }


def duration(seconds: float) -> str:
    """``3600`` -> ``1h``, ``5400`` -> ``1h30m``, ``0`` -> ``0s``, ``1.5`` -> ``1.5s``."""
    if not float(seconds).is_integer():
        return f"{seconds:g}s"
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def created_at(created: object) -> float | None:
    """Seconds since the epoch of an ISO-8601 timestamp with an offset (``Z`` too), or None when it
    is not one: a time without an offset could be any zone, so it is unreadable too."""
    if not isinstance(created, str) or len(created) > MAX_CREATED_LENGTH:
        return None
    text = created[:-1] + "+00:00" if created.endswith(("Z", "z")) else created
    try:
        when = datetime.fromisoformat(text)
        return when.timestamp() if when.tzinfo is not None and when.utcoffset() is not None else None
    except (ValueError, OverflowError, OSError):
        return None


def _days(days: float) -> str:
    return f"{days:g} day" + ("" if days == 1 else "s")


def plan(name: str, facts: list[VersionFacts], rules: Rules, now: float) -> Plan:
    """Decide every version of ``name``, newest first (by creation time, then version id; versions of
    unreadable creation time first). The count rule ranks only live versions of readable creation
    time. A tombstoned version is deleted ("deletion in progress": gc finishes it) unless an alias names
    it, which the protocol never allows: gc never deletes what a pointer names."""
    ages = {f.version: created_at(f.created) for f in facts}
    ordered = sorted(facts, key=lambda f: (_or_inf(ages[f.version]), f.version), reverse=True)
    ranked = [f.version for f in ordered if ages[f.version] is not None and not f.deleting]
    rank = {v: i for i, v in enumerate(ranked)}
    decisions = []
    for f in ordered:
        if f.deleting and not f.aliases:
            decisions.append(Decision(f.version, True, ("deletion in progress",), f.bytes, f.created))
            continue
        keep, condemn = _judge(f, ages[f.version], rank.get(f.version), rules, now)
        if f.deleting:
            keep.append("deletion in progress")
        if not keep and not condemn:
            keep.append("no retention rule")
        decisions.append(Decision(f.version, not keep, tuple(keep or condemn), f.bytes, f.created))
    return Plan(name, rules, decisions)


def _or_inf(created: float | None) -> float:
    return float("inf") if created is None else created


def _judge(
    f: VersionFacts, created: float | None, rank: int | None, rules: Rules, now: float
) -> tuple[list[str], list[str]]:
    """The reasons to keep ``f`` and the rules that would delete it."""
    keep: list[str] = []
    condemn: list[str] = []
    if f.aliases:
        keep.append("aliased: " + ", ".join(f.aliases))
    if f.pinned:
        keep.append("pinned")
    if f.window:
        keep.append("rollback window of " + ", ".join(f.window))
    if f.in_use:
        keep.append("in use by " + ", ".join(f.in_use))
    if created is None:
        keep.append("creation time unreadable")
        return keep, condemn
    age = now - created
    if age < 0:  # clock skew, or a hostile manifest: not old by any rule
        keep.append("creation time in the future")
    elif age < rules.grace:
        keep.append(f"newer than grace ({duration(rules.grace)})")
    if rules.keep_last is not None and rank is not None:
        if rank < rules.keep_last:
            keep.append(f"among the newest {rules.keep_last}")
        else:
            condemn.append(f"beyond the newest {rules.keep_last}")
    if rules.keep_days is not None:
        if age < rules.keep_days * DAY:
            keep.append(f"younger than {_days(rules.keep_days)}")
        else:
            condemn.append(f"older than {_days(rules.keep_days)}")
    return keep, condemn


class AliasMove(Protocol):
    """What ``rollback_windows`` reads of a history entry (``mdl.registry.HistoryEntry`` has it)."""

    @property
    def alias(self) -> str | None: ...

    @property
    def from_version(self) -> str | None: ...

    @property
    def to_version(self) -> str | None: ...


def rollback_windows(history: Iterable[AliasMove], aliases: Mapping[str, str], k: int) -> dict[str, tuple[str, ...]]:
    """Version -> the aliases whose rollback window holds it: the last ``k`` distinct versions each
    alias pointed at before its current value (``aliases``; a removed alias has none, so its last
    value counts). ``history`` is oldest first, as the registry returns it; entries without an alias
    (pins, deletions) are ignored."""
    if k <= 0:
        return {}
    windows: dict[str, list[str]] = {}
    for entry in reversed(list(history)):
        alias = entry.alias
        if alias is None:
            continue
        window = windows.setdefault(alias, [])
        for version in (entry.to_version, entry.from_version):
            if len(window) < k and version is not None and version != aliases.get(alias) and version not in window:
                window.append(version)
    held: dict[str, list[str]] = {}
    for alias in sorted(windows):
        for version in windows[alias]:
            held.setdefault(version, []).append(alias)
    return {version: tuple(names) for version, names in held.items()}


def rm_refusals(facts: VersionFacts, force: bool) -> list[str]:
    """Why ``mdl rm`` refuses to delete a version (empty: it may). An alias or a pin always refuses
    (promote another version or unpin first); a live replica or a rollback window only without force."""
    refusals = []
    if facts.aliases:
        refusals.append("aliased: " + ", ".join(facts.aliases))
    if facts.pinned:
        refusals.append("pinned")
    if not force and facts.in_use:
        refusals.append("in use by " + ", ".join(facts.in_use))
    if not force and facts.window:
        refusals.append("rollback window of " + ", ".join(facts.window))
    return refusals
