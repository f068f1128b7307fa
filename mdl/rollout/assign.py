"""Which replicas run the candidate: at weight w% of the live followers, exactly ``target(w, n)`` of
them (the nearest whole number), chosen so that as few replicas as possible change sides.

Sticky: a replica already on the candidate stays there while it lives and the share allows; one that
leaves frees its seat for the next in line. The line is an order every machine computes alike — a
hash of the rollout id and the replica id — so the driver and a resumed driver on another machine
agree, and the candidate's replicas spread over hosts rather than taking the first registered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = ["assign", "line", "target"]


def target(weight: int, live: int) -> int:
    """Replicas on the candidate at ``weight`` percent of ``live`` followers (half rounds up)."""
    if not 0 <= weight <= 100 or live < 0:
        raise ValueError(f"weight {weight} must be 0-100 and live {live} at least 0")
    return (weight * live + 50) // 100


def line(rollout_id: str, replica_id: str) -> bytes:
    """A replica's place in line for the candidate (lower first), the same on every machine."""
    return hashlib.sha256(f"{rollout_id}\0{replica_id}".encode()).digest()


def assign(
    rollout_id: str, assigned: Iterable[str], live: Sequence[str], weight: int, fresh: Iterable[str] = ()
) -> list[str]:
    """The replicas on the candidate after a change: the live ones of ``assigned`` kept, then topped up
    from the unassigned live ones — those that hold no version yet (``fresh``: a newcomer starts on the
    candidate rather than another replica switching) first, each group in line — or trimmed from the
    back of the line, to exactly ``target(weight, len(live))``. Sorted. Replicas that are gone leave."""
    alive = set(live)
    keep = sorted({r for r in assigned if r in alive}, key=lambda r: line(rollout_id, r))
    want = target(weight, len(alive))
    if len(keep) > want:
        return sorted(keep[:want])
    new = set(fresh)
    waiting = sorted(alive.difference(keep), key=lambda r: (r not in new, line(rollout_id, r)))
    return sorted(keep + waiting[: want - len(keep)])
