"""The scheduling queue, shaped like upstream's PriorityQueue (pkg/scheduler/backend/queue).

- active: pods ready to be tried, highest priority first, then the time they were queued;
- backoff: pods that failed recently, released when their backoff (initial x 2^(attempts-1),
  capped) expires;
- unschedulable: pods no node could take; a cluster event that could help them (a node added or
  changed, a pod deleted, ...) moves them back, and none waits longer than
  `max_unschedulable_seconds` (upstream's podMaxInUnschedulablePodsDuration, 5 minutes).
A move request that arrives while a pod is being tried sends that pod to backoff rather than
unschedulable, so an event during its cycle is not lost (upstream's moveRequestCycle).

PreEnqueue (upstream runPreEnqueuePlugins in moveToActiveQ): every time a pod would enter the
active queue, `pre_enqueue(pod)` runs first; a pod it rejects is *gated*: held aside (counted as
`gated`, upstream keeps it in unschedulablePods under the gated metric), never popped, not moved
by cluster events (unless they name its gating plugin), and re-checked when the pod itself is
updated (SchedulingGates: the last gate removed) or, at the latest, by the periodic flush.

Gang scheduling (the Coscheduling plugin) replaces the active queue's order, as its QueueSort
does upstream: `group_order(pod)` gives (the PodGroup's creation time, the group's full name) for
a pod of a group, (the pod's own time, its key) for any other, and pods of equal priority are
ordered by that, so the members of a group are popped one after another.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from berth.framework.status import Status
from berth.objects.pod import PodInfo

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "inFlight"
GATED = "gated"
PARKED = (UNSCHEDULABLE, GATED)  # waiting for an event (or the periodic flush)


@dataclass(eq=False)
class QueuedPod:
    pod: PodInfo
    timestamp: float  # when last queued; orders pods of equal priority
    initial_attempt: float | None = None
    attempts: int = 0
    where: str = ACTIVE
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    unschedulable_plugins: set[str] = field(default_factory=set)
    popped_at_move: int = 0
    generation: int = 0
    gate: Status | None = None  # the PreEnqueue rejection while the pod is gated

    @property
    def key(self) -> str:
        return self.pod.key


class SchedulingQueue:
    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable_seconds = max_unschedulable_seconds
        self.clock = clock
        self._entries: dict[str, QueuedPod] = {}
        # The entries whose `where` is UNSCHEDULABLE or GATED: cluster events and the periodic
        # flush scan only these (a move on every bound pod's watch event must not walk
        # thousands of pending pods).
        self._parked: dict[str, QueuedPod] = {}
        self._active: list[tuple[tuple[Any, ...], int, int, QueuedPod]] = []
        # Set by the live scheduler when a profile enables Coscheduling (see the module doc).
        self.group_order: Callable[[PodInfo], tuple[float, str]] | None = None
        # Set by the live scheduler: the pod's profile's PreEnqueue plugins (see the module doc).
        self.pre_enqueue: Callable[[PodInfo], Status] | None = None
        self._backoff: list[tuple[float, int, int, QueuedPod]] = []
        self._seq = itertools.count()
        self._moves = 0
        self._wakeup = asyncio.Event()
        self._closed = False

    # ----- counts ------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 0, IN_FLIGHT: 0}
        for e in self._entries.values():
            out[e.where] += 1
        return out

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> QueuedPod | None:
        return self._entries.get(key)

    # ----- placement ---------------------------------------------------------------------------
    def _place(self, entry: QueuedPod, where: str) -> None:
        if entry.where in PARKED:
            self._parked.pop(entry.key, None)
        entry.where = where
        if where in PARKED:
            self._parked[entry.key] = entry

    def _push_active(self, entry: QueuedPod) -> None:
        if self.pre_enqueue is not None:
            status = self.pre_enqueue(entry.pod)
            if not status.ok:
                entry.generation += 1  # any heap item of this pod is stale now
                if entry.where != GATED:
                    self._place(entry, GATED)
                    entry.unschedulable_since = self.clock()
                entry.gate = status
                entry.unschedulable_plugins = {status.plugin}
                return
            entry.gate = None
        self._place(entry, ACTIVE)
        entry.generation += 1
        order: tuple[Any, ...] = (-entry.pod.priority, entry.timestamp)
        if self.group_order is not None:
            order = (-entry.pod.priority, *self.group_order(entry.pod), entry.timestamp)
        heapq.heappush(self._active, (order, next(self._seq), entry.generation, entry))
        self._wakeup.set()

    def _push_backoff(self, entry: QueuedPod) -> None:
        self._place(entry, BACKOFF)
        entry.generation += 1
        heapq.heappush(
            self._backoff, (entry.backoff_until, next(self._seq), entry.generation, entry)
        )

    def backoff_duration(self, attempts: int) -> float:
        duration = self.initial_backoff
        for _ in range(1, attempts):
            duration *= 2
            if duration >= self.max_backoff:
                return self.max_backoff
        return min(duration, self.max_backoff)

    def _to_active_or_backoff(self, entry: QueuedPod) -> None:
        if entry.attempts and self.clock() < entry.backoff_until:
            self._push_backoff(entry)
        else:
            self._push_active(entry)

    # ----- informer-driven changes -------------------------------------------------------------
    def add(self, pod: PodInfo) -> None:
        entry = self._entries.get(pod.key)
        if entry is not None:
            self.update(pod)
            return
        entry = QueuedPod(pod=pod, timestamp=self.clock())
        self._entries[pod.key] = entry
        self._push_active(entry)

    def update(self, pod: PodInfo) -> None:
        entry = self._entries.get(pod.key)
        if entry is None:
            self.add(pod)
            return
        entry.pod = pod
        if entry.where in (UNSCHEDULABLE, GATED):
            # upstream: an updated pod may now fit (or have lost its last gate); try again.
            self._to_active_or_backoff(entry)
        elif entry.where == ACTIVE:
            self._push_active(entry)  # priority may have changed; old heap item is stale

    def delete(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._parked.pop(key, None)
            entry.generation += 1  # invalidates heap items

    def move_all(self, *, event: str, only_plugins: set[str] | None = None) -> int:
        """Move unschedulable pods back (all, or those rejected by `only_plugins`).

        Gated pods stay where they are unless the event names their gating plugin (upstream
        requeues a gated pod only on the events its PreEnqueue plugin registered)."""
        del event
        self._moves += 1
        moved = 0
        for entry in list(self._parked.values()):
            if entry.where == GATED:
                if only_plugins is None or not (entry.unschedulable_plugins & only_plugins):
                    continue
            elif entry.where != UNSCHEDULABLE:
                continue
            if only_plugins is not None and not (entry.unschedulable_plugins & only_plugins):
                continue
            self._to_active_or_backoff(entry)
            moved += 1
        return moved

    # ----- the scheduling loop's side ----------------------------------------------------------
    async def pop(self) -> QueuedPod | None:
        """The next pod to try; None once the queue is closed."""
        while True:
            if self._closed:
                return None
            self.flush_backoff()
            while self._active:
                _, _, generation, entry = heapq.heappop(self._active)
                if entry.generation != generation or self._entries.get(entry.key) is not entry:
                    continue
                self._place(entry, IN_FLIGHT)
                entry.attempts += 1
                if entry.initial_attempt is None:
                    entry.initial_attempt = self.clock()
                entry.popped_at_move = self._moves
                return entry
            self._wakeup.clear()
            timeout = self._next_backoff_in()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=timeout)

    def _next_backoff_in(self) -> float | None:
        while self._backoff:
            until, _, generation, entry = self._backoff[0]
            if entry.generation != generation or self._entries.get(entry.key) is not entry:
                heapq.heappop(self._backoff)
                continue
            return max(0.0, until - self.clock())
        return 1.0 if self._entries else None

    def requeue_unschedulable(self, entry: QueuedPod, *, plugins: set[str]) -> None:
        """After a cycle found no node."""
        if self._entries.get(entry.key) is not entry:
            return  # deleted meanwhile
        now = self.clock()
        entry.timestamp = now
        entry.backoff_until = now + self.backoff_duration(entry.attempts)
        entry.unschedulable_plugins = plugins
        if self._moves > entry.popped_at_move:
            self._push_backoff(entry)
        else:
            self._place(entry, UNSCHEDULABLE)
            entry.unschedulable_since = now

    def requeue_backoff(self, entry: QueuedPod) -> None:
        """After an error (a failed bind, a plugin error): try again after backoff."""
        if self._entries.get(entry.key) is not entry:
            return
        now = self.clock()
        entry.timestamp = now
        entry.backoff_until = now + self.backoff_duration(entry.attempts)
        self._push_backoff(entry)

    def done(self, key: str) -> None:
        """The pod is bound (or gone): forget it."""
        self.delete(key)

    # ----- periodic flushes --------------------------------------------------------------------
    def flush_backoff(self) -> int:
        now = self.clock()
        moved = 0
        while self._backoff and self._backoff[0][0] <= now:
            _, _, generation, entry = heapq.heappop(self._backoff)
            if entry.generation != generation or self._entries.get(entry.key) is not entry:
                continue
            self._push_active(entry)
            moved += 1
        return moved

    def flush_unschedulable(self) -> int:
        now = self.clock()
        moved = 0
        for entry in list(self._parked.values()):
            if now - entry.unschedulable_since >= self.max_unschedulable_seconds:
                if entry.where == GATED:
                    entry.unschedulable_since = now  # re-checked; stays gated if still rejected
                self._to_active_or_backoff(entry)
                if entry.where != GATED:
                    moved += 1
        return moved

    async def run_flushers(
        self, *, period: float = 1.0, unschedulable_period: float = 30.0
    ) -> None:
        last = self.clock()
        while not self._closed:
            await asyncio.sleep(period)
            if self.flush_backoff():
                self._wakeup.set()
            if self.clock() - last >= unschedulable_period:
                last = self.clock()
                if self.flush_unschedulable():
                    self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
