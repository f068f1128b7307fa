"""A rollout as the registry holds it (one document per model, moved by compare-and-set), typed.

The document's schema is checked by :func:`mdl.registry.base.parse_rollout` wherever it is read; this
module gives it names and the one rule every replica applies: which version it should run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

RUNNING, PAUSED, ABORTED, SUCCEEDED = "running", "paused", "aborted", "succeeded"
ACTIVE = (RUNNING, PAUSED)  # replicas split between the versions
STATES = (RUNNING, PAUSED, ABORTED, SUCCEEDED)


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

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RolloutState:
        """From a document :func:`parse_rollout` accepted (unknown keys are dropped)."""
        known = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
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


def desired_version(rollout_doc: dict[str, Any] | None, alias: str, replica_id: str, pointed: str | None) -> str | None:
    """What a replica following ``alias`` should run, given the model's rollout document (None: no
    rollout) and the version the alias points at."""
    if rollout_doc is None or rollout_doc.get("alias") != alias:
        return pointed
    return RolloutState.from_doc(rollout_doc).version_for(replica_id, pointed)
