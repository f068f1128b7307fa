"""Driving a rollout: start it, keep its assignment exact as replicas come and go, advance it step by
step through its gates, abort it (everyone back on stable), pause, resume, finish.

The driver holds no state of its own: every decision is read from and written to the registry's
rollout document by compare-and-set, so a driver that dies leaves the rollout where it was (replicas
keep the versions they were assigned) and ``resume`` on any machine continues it. Two drivers at once
compute the same assignment (it is deterministic) and lose races harmlessly.

Each step: the assignment moves ``weight``% of the live followers to the candidate; once all of them
report ready on it the step's ``interval`` runs; then its gates decide — pass: the next step; fail: abort.
After the last step (100%) the alias itself moves to the candidate and the rollout has succeeded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mdl.errors import CasConflict, Conflict, HookFailed, InvalidInput, MdlError, NotFound, RolloutFailed
from mdl.fleet import ReplicaRecord
from mdl.host import now_iso
from mdl.names import validate_alias, validate_version
from mdl.registry.base import NO_REVISION, Replica
from mdl.rollout.assign import assign
from mdl.rollout.gates import Snapshot, Thresholds, judge, snapshot, window
from mdl.rollout.state import ABORTED, DRIVER_BEAT, PAUSED, RUNNING, SUCCEEDED, RolloutState, age

if TYPE_CHECKING:
    from mdl.client import Client

Emit = Callable[[dict[str, Any]], None]
LOOK_EVERY = 0.5  # seconds between looks at the fleet when nothing was delivered (a safety net)


@dataclass(frozen=True)
class RolloutOptions:
    steps: tuple[int, ...] = (10, 50, 100)
    interval: float = 120.0  # seconds a step runs, once its replicas are ready, before its gates judge it
    ready_timeout: float = 300.0  # a step's replicas must be ready on their versions within this
    gate_cmd: str | None = None  # run at the end of each step: exit 0 passes
    gate_timeout: float = 300.0
    thresholds: Thresholds = Thresholds()  # on what the candidate's servers answered during the step
    failure_limit: int = 0  # failed gate checks tolerated (each runs the step's interval again) before abort

    def check(self) -> RolloutOptions:
        s = self.steps
        if not s or len(s) > 20 or any(not 1 <= w <= 100 for w in s) or list(s) != sorted(set(s)) or s[-1] != 100:
            raise InvalidInput(
                f"--steps {','.join(map(str, s))}: 1 to 20 percentages, increasing, each 1-100, the last 100",
                hint="e.g. --steps 10,50,100",
            )
        if self.interval < 0 or self.ready_timeout <= 0 or self.failure_limit < 0:
            raise InvalidInput("--interval and --failure-limit must be at least 0, --ready-timeout positive")
        return self

    def to_doc(self) -> dict[str, Any]:
        """Kept in the rollout document: a resume on another machine drives it the same way."""
        return {
            "interval": self.interval,
            "ready_timeout": self.ready_timeout,
            "gate_cmd": self.gate_cmd,
            "gate_timeout": self.gate_timeout,
            "failure_limit": self.failure_limit,
            **self.thresholds.to_doc(),
        }

    @classmethod
    def from_state(cls, state: RolloutState) -> RolloutOptions:
        """From the document (registry contents: a value of the wrong kind reads as the default)."""
        o = state.options

        def num(key: str, default: float) -> float:
            v = o.get(key)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e9
            return float(v) if ok else default  # type: ignore[arg-type]

        gate = o.get("gate_cmd")
        return cls(
            state.steps,
            num("interval", 120.0),
            num("ready_timeout", 300.0) or 300.0,
            gate if isinstance(gate, str) and gate else None,
            num("gate_timeout", 300.0) or 300.0,
            Thresholds.from_doc(o),
            int(num("failure_limit", 0)),
        )


class RolloutDriver:
    """Starts and drives the rollouts of one model (see the module docstring)."""

    def __init__(self, client: Client, name: str, emit: Emit | None = None, who: str | None = None) -> None:
        self.client, self.name = client, name
        self.emit = emit or (lambda e: None)
        self.who = who or client.identity
        self._changed = threading.Event()
        self._step: tuple[str, int] | None = None  # the step the clocks below are about
        self._waiting_since = 0.0  # since when its replicas are awaited
        self._window: tuple[float, Snapshot] | None = None  # when its window opened, the counters then
        self._failures = 0  # its failed gate checks
        self._replicas: list[Replica] | None = None  # the replica watch's latest delivery while driving

    # -- the document -------------------------------------------------------------------------------

    def read(self) -> tuple[RolloutState | None, int]:
        r = self.client.rollout(self.name)
        return (RolloutState.from_doc(r.doc) if r.doc is not None else None), r.revision

    def current(self) -> RolloutState:
        state, _ = self.read()
        if state is None:
            raise NotFound(f"{self.name} has no rollout", hint=f"start one with: mdl rollout start {self.name} VERSION")
        return state

    def _write(
        self, state: RolloutState, revision: int, action: str, note: str | None = None, history: bool = True
    ) -> int:
        """Compare-and-set the document (with a history entry unless ``history`` is False: the driver's
        heartbeat); the new revision. CasConflict if it moved meanwhile."""
        state = state.but(updated=now_iso())
        entry = {"who": self.who, "action": action, "version": state.candidate, "rule": note} if history else None
        return self.client.set_rollout(self.name, state.to_doc(), revision, entry).revision

    def _event(self, event: str, state: RolloutState | None = None, **data: Any) -> None:
        doc: dict[str, Any] = {"event": event, "at": now_iso(), "model": self.name}
        if state is not None:
            doc.update(
                alias=state.alias,
                candidate=state.candidate,
                stable=state.stable,
                state=state.state,
                step=state.step + 1,
                steps=len(state.steps),
                weight=state.weight,
                on_candidate=len(state.assigned),
            )
        try:
            self.emit({**doc, **data})
        except Exception:
            pass

    # -- operations -----------------------------------------------------------------------------------

    def start(self, candidate: str, alias: str, opts: RolloutOptions) -> RolloutState:
        """Write a new rollout at its first step (Conflict if one is running or paused)."""
        validate_version(candidate)
        validate_alias(alias)
        opts.check()
        self.client.manifest(self.name, candidate)  # it exists and its manifest checks out (else exit 3 or 8)
        if candidate in self.client.registry.lifecycle(self.name).tombstones:
            raise NotFound(
                f"version {self.name}/{candidate} is being deleted", hint=f"see the versions with: mdl list {self.name}"
            )
        stable = self.client.pointer(self.name).aliases.get(alias)
        if stable is None:
            raise NotFound(
                f"{self.name}:{alias} is not set, so there is nothing to roll out from",
                hint=f"promote a first version with: mdl promote {self.name} {candidate} --alias {alias}",
            )
        if stable == candidate:
            raise Conflict(f"{self.name}:{alias} already points at {candidate}")
        old, revision = self.read()
        if old is not None and old.active:
            raise Conflict(
                f"{self.name} has a rollout {old.state} ({old.alias}: {old.stable} -> {old.candidate}, "
                f"step {old.step + 1} of {len(old.steps)})",
                hint=f"see it with: mdl rollout status {self.name}; end it with mdl rollout abort|promote {self.name}",
            )
        now = now_iso()
        state = RolloutState(
            id=f"{int(time.time() * 1000):x}-{self.who[:20]}".replace("@", "-"),
            alias=alias,
            stable=stable,
            candidate=candidate,
            steps=tuple(opts.steps),
            options=opts.to_doc(),
            by=self.who,
            started=now,
            updated=now,
        )
        state = state.but(id=_safe_id(state.id), assigned=tuple(self._assignment(state)))
        self._write(state, revision if old is not None else NO_REVISION, "rollout-start", _step_note(state))
        self._event("started", state)
        return state

    def abort(self, reason: str) -> RolloutState:
        """Every replica back on stable; the rollout ends aborted with ``reason``."""
        return self._transition(ABORTED, "rollout-abort", reason, assigned=())

    def pause(self, reason: str = "paused by hand") -> RolloutState:
        """Stay where it is: no step is taken until ``resume`` (joins and leaves are still balanced)."""
        return self._transition(PAUSED, "rollout-pause", reason)

    def promote(self) -> RolloutState:
        """Finish at once: the alias moves to the candidate and the rollout has succeeded."""
        while True:
            state, revision = self.read()
            if state is None or not state.active:
                raise Conflict(f"{self.name} has no rollout running or paused")
            try:
                return self._finish(state, revision)
            except CasConflict:
                continue

    def resume(self) -> RolloutState:
        while True:
            state, revision = self.read()
            if state is None or not state.active:
                raise Conflict(
                    f"{self.name} has no rollout to resume (none, or it has ended)",
                    hint=f"see it with: mdl rollout status {self.name}",
                )
            if state.state == RUNNING:
                return state
            try:
                self._write(state.but(state=RUNNING, reason=None), revision, "rollout-resume")
            except CasConflict:
                continue
            self._event("resumed", state)
            return state.but(state=RUNNING, reason=None)

    def _transition(self, to: str, action: str, reason: str, **changes: Any) -> RolloutState:
        while True:
            state, revision = self.read()
            if state is None or not state.active:
                raise Conflict(
                    f"{self.name} has no rollout running or paused", hint=f"see it with: mdl rollout status {self.name}"
                )
            new = state.but(state=to, reason=reason, **changes)
            try:
                self._write(new, revision, action, reason)
            except CasConflict:
                continue
            self._event(to, new, reason=reason)
            return new

    # -- driving ----------------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> RolloutState:
        """Drive the rollout until it succeeds (returns it), is aborted (RolloutFailed, exit 1) or paused
        (returns it), or ``stop`` is set (returns where it stands: it stays there)."""
        stop = stop or threading.Event()
        watch = self.client.watch_replicas(self.name, self._on_replicas)
        try:
            while not stop.is_set():
                state, revision = self.read()
                if state is None:
                    raise NotFound(f"{self.name} has no rollout")
                if state.state == ABORTED:
                    raise RolloutFailed(
                        f"the rollout of {self.name} was aborted: {state.reason}",
                        hint=f"see it with: mdl rollout status {self.name}",
                    )
                if state.state in (SUCCEEDED, PAUSED):
                    return state
                try:
                    if self._tick(state, revision):
                        continue  # it moved: look again at once
                except CasConflict:
                    continue  # someone else moved it: read again
                self._changed.wait(LOOK_EVERY)
                self._changed.clear()
            state, _ = self.read()
            assert state is not None
            return state
        finally:
            watch.stop()
            self._replicas = None

    def _tick(self, state: RolloutState, revision: int) -> bool:
        """One look at a running rollout: keep its assignment exact, then wait for the step's replicas,
        run its window, judge it. True if it changed the document."""
        key = (state.id, state.step)
        if self._step != key:  # a new step (or a resumed one): its clocks start now
            self._step, self._waiting_since, self._window = key, time.monotonic(), None
            self._failures = 0
        opts = RolloutOptions.from_state(state)
        followers = self._followers(state.alias)
        state, moved = self._rebalance(state, revision, followers)
        if moved:
            return True
        failed = [r for r in followers if r.id in state.assigned and r.failed_on(state.candidate)]
        if failed:
            why = "; ".join(f"{r.id}: {r.error}" for r in failed)
            self.abort(f"{len(failed)} replica(s) failed to load {state.candidate}: {why}")
            return True
        if not self._step_ready(state, followers):
            self._window = None
            if time.monotonic() - self._waiting_since > opts.ready_timeout:
                within = f"{opts.ready_timeout:g}s"
                self.abort(f"step {state.step + 1}: replicas not ready on their versions within {within}")
                return True
            return False
        if not state.step_started:
            self._write(state.but(step_started=now_iso()), revision, "rollout-step-ready", _step_note(state))
            self._event("step-ready", state)
            return True
        if self._window is None:  # the window opens: the servers' counters now
            # with metric gates the window is measured from now (a resumed driver has no earlier counters);
            # without, a resumed step keeps the time it already ran
            ran = 0.0 if opts.thresholds.any else age(state.step_started)
            ran = ran if ran != float("inf") else 0.0  # (a time it cannot read: the window starts now)
            self._window = (time.monotonic() - ran, snapshot(_servers(followers), self.name))
        if time.monotonic() - self._window[0] < opts.interval:
            return False
        verdict, why = self._gate(state, followers, opts, self._window[1])
        if verdict == "fail" and self._failures < opts.failure_limit:
            self._failures += 1
            self._event("gate-failed", state, reason=why, failures=self._failures)
            self._window = None  # the step runs another interval
            return False
        if verdict == "fail":
            self.abort(why)
        elif verdict == "pause":
            self.pause(why)
        else:
            self._advance(state, revision)
        return True

    def _followers(self, alias: str) -> list[ReplicaRecord]:
        """The live replicas following ``alias``: as the replica watch last delivered them while driving
        (no re-read of a 1,000-replica fleet every look), else read now."""
        replicas = self._replicas
        if replicas is None:
            replicas = self.client.replicas(self.name)
        records = (ReplicaRecord.from_replica(r) for r in replicas)
        return [r for r in records if r is not None and r.follows(alias)]

    def _on_replicas(self, replicas: list[Replica]) -> None:
        self._replicas = replicas
        self._changed.set()

    def _assignment(self, state: RolloutState) -> list[str]:
        return assign(state.id, state.assigned, [r.id for r in self._followers(state.alias)], state.weight)

    def _rebalance(
        self, state: RolloutState, revision: int, followers: list[ReplicaRecord]
    ) -> tuple[RolloutState, bool]:
        """Keep exactly the step's share of the live followers on the candidate (sticky), and the count
        of followers and ``driven_at`` current (joiners read them: see ``awaits_placement``); whether it wrote."""
        live = [r.id for r in followers]
        fresh = [r.id for r in followers if r.loaded is None]
        assigned = tuple(assign(state.id, state.assigned, live, state.weight, fresh))
        if assigned == state.assigned and len(live) == state.followers and age(state.driven_at) < DRIVER_BEAT:
            return state, False
        new = state.but(assigned=assigned, followers=len(live), driven_at=now_iso())
        self._write(new, revision, "rollout-assign", None, history=False)  # churn and heartbeats: no entry
        if assigned != state.assigned:
            self._event("assigned", new)
        return new, True

    def _step_ready(self, state: RolloutState, followers: list[ReplicaRecord]) -> bool:
        """Every follower ready on the version the rollout gives it (no followers: nothing to wait for)."""
        for r in followers:
            want = state.candidate if r.id in state.assigned else state.stable
            if not r.ready_on(want):
                return False
        return True

    def _gate(
        self, state: RolloutState, followers: list[ReplicaRecord], opts: RolloutOptions, before: Snapshot
    ) -> tuple[str, str]:
        """("pass" | "fail" | "pause", why) for a step that ran its interval: first the thresholds on
        what the candidate answered since the window opened (``before``), then ``--gate-cmd``."""
        label = f"step {state.step + 1} ({state.weight}%)"
        if opts.thresholds.any:
            counts = window(before, snapshot(_servers(followers), self.name), state.candidate)
            verdict, why = judge(counts, opts.thresholds)
            self._event("gate", state, verdict=verdict, reading=why, requests=counts.requests, errors=counts.errors)
            if verdict == "fail":
                return "fail", f"{label}: {why}"
            if verdict == "no-data" and opts.thresholds.on_no_data != "pass":
                return ("fail" if opts.thresholds.on_no_data == "fail" else "pause"), f"{label}: no data: {why}"
        if opts.gate_cmd:
            from mdl.watch.hooks import run_command

            def urls(version: str) -> str:
                on = (r.address for r in followers if r.kind == "server" and r.loaded == version)
                return " ".join(a for a in on if a)

            env = {
                "MDL_MODEL": self.name,
                "MDL_ALIAS": state.alias,
                "MDL_STABLE": state.stable,
                "MDL_CANDIDATE": state.candidate,
                "MDL_WEIGHT": str(state.weight),
                "MDL_STEP": str(state.step + 1),
                "MDL_CANDIDATE_URLS": urls(state.candidate),
                "MDL_STABLE_URLS": urls(state.stable),
            }
            try:
                run_command(opts.gate_cmd, env, opts.gate_timeout, "gate")
            except HookFailed as exc:
                return "fail", f"{label}: {exc.message}"
        self._event("gate-passed", state)
        return "pass", ""

    def _advance(self, state: RolloutState, revision: int) -> RolloutState:
        if state.last_step:
            return self._finish(state, revision)
        new = state.but(step=state.step + 1, step_started="")
        new = new.but(assigned=tuple(self._assignment(new)))
        self._write(new, revision, "rollout-step", _step_note(new))
        self._event("step", new)
        return new

    def _finish(self, state: RolloutState, revision: int) -> RolloutState:
        """The alias to the candidate (unless it is there already), then the document to succeeded."""
        pointed = self.client.pointer(self.name).aliases.get(state.alias)
        if pointed != state.candidate:
            try:
                self.client.promote(self.name, state.candidate, alias=state.alias, expect=pointed)
            except MdlError as exc:
                if not isinstance(exc, CasConflict):
                    raise
        done = state.but(state=SUCCEEDED, assigned=(), reason=None)
        self._write(done, revision, "rollout-succeed", _step_note(state))
        self._event("succeeded", done)
        return done


def _servers(followers: list[ReplicaRecord]) -> list[str]:
    """The addresses of the servers among ``followers`` (their /metrics are read for the gates)."""
    return [r.address for r in followers if r.kind == "server" and r.address]


def _step_note(state: RolloutState) -> str:
    return f"step {state.step + 1} of {len(state.steps)}: {state.weight}%"


def _safe_id(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:64]
