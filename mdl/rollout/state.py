"""A rollout as the registry holds it (one document per model, moved by compare-and-set), typed.

The document's schema is checked by :func:`mdl.registry.base.parse_rollout` wherever it is read; this
module gives it names and the one rule every replica applies: which version it should run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from mdl.rollout.assign import target

RUNNING, PAUSED, ABORTED, SUCCEEDED = "running", "paused", "aborted", "succeeded"
ACTIVE = (RUNNING, PAUSED)  # replicas split between the versions
STATES = (RUNNING, PAUSED, ABORTED, SUCCEEDED)
DRIVER_BEAT = 10.0  # seconds between a running driver's writes of ``driven_at`` when nothing else changes
DRIVER_FRESH = 30.0  # a ``driven_at`` older than this: no driver is running
JOIN_WAIT = 2.0  # seconds a replica starting cold waits for a running driver to place it


@dataclass(frozen=True)
class RolloutState:
    """One model's rollout: ``alias``'s replicas move from ``stable`` to ``candidate`` in ``steps``
    (percent of the live followers); ``assigned`` are the replicas on the candidate now."""

    id: str
    alias: str
    stable: str
    candidate: str
    steps: tuple[int, ...]
    step: int = 0
    state: str = RUNNING
    assigned: tuple[str, ...] = ()
    reason: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    by: str = ""
    started: str = ""
    updated: str = ""
    step_started: str = ""  # when the current step's replicas were all ready (its interval counts from it)
    followers: int = 0  # live followers the assignment was last computed over
    driven_at: str = ""  # when a driver last wrote: a running driver writes at least every DRIVER_BEAT

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RolloutState:
        """From a document :func:`parse_rollout` accepted (unknown keys are dropped)."""
        known = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        # keys parse_rollout does not check (a later addition): registry contents, kept only if well-formed
        if not (isinstance(known.get("followers"), int) and 0 <= known["followers"] < 10**9):
            known.pop("followers", None)
        if not (isinstance(known.get("driven_at"), str) and len(known["driven_at"]) <= 64):
            known.pop("driven_at", None)
        known["steps"] = tuple(known.get("steps", ()))
        known["assigned"] = tuple(known.get("assigned", ()))
        known["options"] = dict(known.get("options") or {})
        return cls(**known)

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["steps"], doc["assigned"] = list(self.steps), list(self.assigned)
        return doc

    def but(self, **changes: Any) -> RolloutState:
        return replace(self, **changes)

    @property
    def weight(self) -> int:
        """Percent of the live followers on the candidate at the current step."""
        return self.steps[self.step]

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def last_step(self) -> bool:
        return self.step == len(self.steps) - 1

    def version_for(self, replica_id: str, pointed: str | None) -> str | None:
        """The version a replica following ``alias`` should run: the candidate if it is assigned and the
        rollout is active, else what the alias points at (``pointed``)."""
        if self.active and replica_id in self.assigned:
            return self.candidate
        return pointed


def awaits_placement(rollout_doc: dict[str, Any] | None, alias: str, replica_id: str) -> bool:
    """Whether a replica starting cold should wait (up to JOIN_WAIT) for the driver to place it: a
    running rollout of its alias, driven lately, with a seat on the candidate free for a newcomer.
    Placed at once, it starts from the right version rather than loading stable and switching."""
    if rollout_doc is None or rollout_doc.get("alias") != alias:
        return False
    st = RolloutState.from_doc(rollout_doc)
    if st.state != RUNNING or replica_id in st.assigned or age(st.driven_at) > DRIVER_FRESH:
        return False
    return len(st.assigned) < target(st.weight, st.followers + 1)


def age(iso: str) -> float:
    """Seconds since ``iso`` (a time mdl wrote; infinite if it cannot be read)."""
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))  # now_iso(): microseconds, Z
    except (ValueError, TypeError):
        return float("inf")
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())


def desired_version(rollout_doc: dict[str, Any] | None, alias: str, replica_id: str, pointed: str | None) -> str | None:
    """What a replica following ``alias`` should run, given the model's rollout document (None: no
    rollout) and the version the alias points at."""
    if rollout_doc is None or rollout_doc.get("alias") != alias:
        return pointed
    return RolloutState.from_doc(rollout_doc).version_for(replica_id, pointed)
