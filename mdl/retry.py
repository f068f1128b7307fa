"""The one retry policy: exponential backoff with "equal jitter".

Attempt ``n`` (1-based) waits a random time between half and all of ``min(cap, base * 2**(n-1))``:
never less than half the step (so a retry is not hammering), never in lockstep with the rest of a
fleet that failed at the same moment (AWS Architecture Blog, "Exponential Backoff and Jitter").
Every retry loop in mdl (WebHDFS requests, registry moves, SQLite opens, the watch engine's failed
versions) takes its delays from a :class:`Backoff`; only the numbers differ.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

__all__ = ["Backoff", "spread"]


@dataclass(frozen=True)
class Backoff:
    """Delays for attempt 1, 2, ...: ``base`` doubling up to ``cap``, each drawn from [step/2, step]."""

    base: float
    cap: float

    def step(self, attempt: int) -> float:
        """The un-jittered delay of ``attempt`` (the upper bound of :meth:`delay`)."""
        return min(self.cap, self.base * 2 ** min(max(0, attempt - 1), 62))

    def delay(self, attempt: int) -> float:
        top = self.step(attempt)
        return top / 2 + random.uniform(0, top / 2)

    def sleep(self, attempt: int, deadline: float | None = None) -> bool:
        """Sleep for :meth:`delay`; with a ``deadline`` (``time.monotonic()``), only if the pause ends
        before it. Returns whether it slept (False: the caller is out of time and should give up)."""
        pause = self.delay(attempt)
        if deadline is not None and time.monotonic() + pause > deadline:
            return False
        time.sleep(pause)
        return True


def spread(seconds: float) -> float:
    """A random pause in [0, seconds): spreads a fleet's reaction to one event (``watch --jitter``)."""
    return random.uniform(0, seconds) if seconds > 0 else 0.0
