"""Where a model's rollout stands, as one document (``mdl rollout status``), and following it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mdl.errors import NotFound
from mdl.rollout.state import RolloutState

if TYPE_CHECKING:
    from mdl.client import Client

_NOISE = ("updated", "driven_at")  # change without news: not a reason to say it again


def status(client: Client, name: str) -> dict[str, Any]:
    """The rollout document (without its options) with the step's ``weight``, the live ``followers`` of
    its alias and how many have each version loaded (``counts``); NotFound if there is none."""
    from mdl.fleet import Fleet

    doc = client.rollout(name).doc
    if doc is None:
        raise NotFound(f"{name} has no rollout", hint=f"start one with: mdl rollout start {name} VERSION")
    state = RolloutState.from_doc(doc)
    followers = [r for r in Fleet(client).replicas(name) if r.follows(state.alias)]
    counts: dict[str, int] = {}
    for r in followers:
        counts[r.loaded or "-"] = counts.get(r.loaded or "-", 0) + 1
    out = {k: v for k, v in state.to_doc().items() if k != "options"}
    out.update(name=name, weight=state.weight, followers=len(followers), counts=counts)
    return out


def follow(client: Client, name: str, stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
    """``status`` now and after every change (of the rollout or of its replicas) until the rollout has
    ended (succeeded or aborted; the last one yielded says which) or ``stop`` is set."""
    stop = stop or threading.Event()
    changed = threading.Event()
    poke: Callable[[Any], None] = lambda _: changed.set()  # noqa: E731
    watches = [client.watch_pointer(name, poke), client.watch_replicas(name, poke)]
    last: dict[str, Any] | None = None
    try:
        while not stop.is_set():
            changed.clear()
            now = status(client, name)
            quiet = {k: v for k, v in now.items() if k not in _NOISE}
            if quiet != last:
                last = quiet
                yield now
            if now["state"] in ("succeeded", "aborted"):
                return
            changed.wait(1.0)
    finally:
        for w in watches:
            w.stop()
