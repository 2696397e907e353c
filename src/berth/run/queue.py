"""The scheduling queue, shaped like upstream's PriorityQueue (pkg/scheduler/backend/queue).

- active: pods ready to be tried, highest priority first, then the time they were queued;
- backoff: pods that failed recently, released when their backoff (initial x 2^(attempts-1),
  capped) expires;
- unschedulable: pods no node could take; a cluster event that could help them moves them back,
  and none waits longer than `max_unschedulable_seconds` (upstream's
  podMaxInUnschedulablePodsDuration, 5 minutes).

Which events could help (upstream isPodWorthRequeuing, berth.framework.events): each plugin
registers the cluster events that can make a pod it rejected schedulable (`set_registrations`); a
pod moves on an event only if one of the plugins that rejected it registered for that event (and
its hint, if any, agrees). A plugin with no registrations on record is interested in every event.
A pod that failed with no rejecting plugin goes to backoff, not to unschedulable (upstream), and
would be moved by any event. An event no plugin registered for is dropped without looking at any
pod (upstream isEventOfInterest). The parked pods are indexed by rejecting plugin, so an event
looks only at the pods of the plugins that registered for it.

An event that arrives while a pod is being tried sends that pod to backoff rather than
unschedulable, so an event during its cycle is not lost (upstream's moveRequestCycle, with the
SchedulerQueueingHints gate off: any event some plugin registered for counts).

`on_incoming(queue, event)` is called for every pod placed in a queue, with upstream's event label
(`scheduler_queue_incoming_pods_total`).

PreEnqueue (upstream runPreEnqueuePlugins in moveToActiveQ): every time a pod would enter the
active queue, `pre_enqueue(pod)` runs first; a pod it rejects is *gated*: held aside (counted as
`gated`, upstream keeps it in unschedulablePods under the gated metric), never popped, not moved
by cluster events (unless they name its gating plugin), and re-checked when the pod itself is
updated (SchedulingGates: the last gate removed) or, at the latest, by the periodic flush.

The active queue's order is the engine's QueueSort (`order(pod, queued_at)`, a sort key):
upstream's PrioritySort (priority, then the time queued) unless a profile enables Coscheduling,
whose QueueSort keeps the members of a PodGroup together.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from berth.framework.events import (
    BACKOFF_COMPLETE,
    SCHEDULE_ATTEMPT_FAILURE,
    UNSCHEDULABLE_POD_ADD,
    UNSCHEDULABLE_POD_UPDATE,
    UNSCHEDULABLE_TIMEOUT,
    ClusterEvent,
    ClusterEventWithHint,
    Registrations,
)
from berth.framework.status import Status
from berth.objects.pod import PodInfo

log = logging.getLogger("berth.queue")

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
    indexed: frozenset[str] = frozenset()  # the plugins it is indexed under while parked

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
        # The same entries by rejecting (or gating) plugin; "" holds those with none.
        self._by_plugin: dict[str, dict[str, QueuedPod]] = {}
        self._registrations: Registrations = {}
        self._everything = True  # some plugin takes every event (or none is on record)
        self._interested: dict[ClusterEvent, frozenset[str]] = {}
        # Called with (queue, event label) for every pod placed in a queue.
        self.on_incoming: Callable[[str, str], None] | None = None
        self._active: list[tuple[tuple[Any, ...], int, int, QueuedPod]] = []
        # The engine's QueueSort as a key of (pod, time queued); upstream PrioritySort here.
        self.order: Callable[[PodInfo, float], tuple[Any, ...]] = _priority_order
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

    def has_active(self) -> bool:
        """Is a pod (perhaps a stale heap entry) waiting in the active queue?"""
        return bool(self._active)

    def parked(self) -> list[QueuedPod]:
        """The unschedulable and gated pods (for the per-plugin gauge)."""
        return list(self._parked.values())

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> QueuedPod | None:
        return self._entries.get(key)

    # ----- placement ---------------------------------------------------------------------------
    def set_registrations(self, registrations: Registrations) -> None:
        """Plugin name -> the events it registered (None: every event), see the module doc."""
        self._registrations = dict(registrations)
        self._everything = not registrations or any(r is None for r in registrations.values())
        self._interested.clear()

    def _incoming(self, where: str, event: str) -> None:
        if self.on_incoming is not None and event:
            self.on_incoming(where, event)

    def _place(self, entry: QueuedPod, where: str) -> None:
        if entry.where in PARKED:
            self._parked.pop(entry.key, None)
            for plugin in entry.indexed:
                bucket = self._by_plugin.get(plugin)
                if bucket is not None:
                    bucket.pop(entry.key, None)
                    if not bucket:
                        del self._by_plugin[plugin]
            entry.indexed = frozenset()
        entry.where = where
        if where in PARKED:
            self._parked[entry.key] = entry
            entry.indexed = frozenset(entry.unschedulable_plugins or ("",))
            for plugin in entry.indexed:
                self._by_plugin.setdefault(plugin, {})[entry.key] = entry

    def _push_active(self, entry: QueuedPod, event: str) -> None:
        if self.pre_enqueue is not None:
            status = self.pre_enqueue(entry.pod)
            if not status.ok:
                entry.generation += 1  # any heap item of this pod is stale now
                entry.gate = status
                entry.unschedulable_plugins = {status.plugin}
                if entry.where != GATED:
                    entry.unschedulable_since = self.clock()
                    self._incoming(UNSCHEDULABLE, event)  # upstream counts gated pods there
                self._place(entry, GATED)  # (re-indexed: the gating plugin may have changed)
                return
            entry.gate = None
        self._incoming(ACTIVE, event)
        self._place(entry, ACTIVE)
        if entry.initial_attempt is None:
            # upstream's InitialAttemptTimestamp, where the SLI starts: the first time the pod
            # enters the active queue ungated (moveToActiveQ), not when it is first popped
            entry.initial_attempt = self.clock()
        entry.generation += 1
        order = self.order(entry.pod, entry.timestamp)
        heapq.heappush(self._active, (order, next(self._seq), entry.generation, entry))
        self._wakeup.set()

    def _requeue_active(self, entry: QueuedPod) -> None:
        """Re-push a pod already in the active queue (its order may have changed)."""
        self._push_active(entry, "")

    def _push_backoff(self, entry: QueuedPod, event: str) -> None:
        self._incoming(BACKOFF, event)
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

    def _to_active_or_backoff(self, entry: QueuedPod, event: str) -> None:
        if entry.attempts and self.clock() < entry.backoff_until:
            self._push_backoff(entry, event)
        else:
            self._push_active(entry, event)

    # ----- informer-driven changes -------------------------------------------------------------
    def add(self, pod: PodInfo) -> None:
        entry = self._entries.get(pod.key)
        if entry is not None:
            self.update(pod)
            return
        entry = QueuedPod(pod=pod, timestamp=self.clock())
        self._entries[pod.key] = entry
        self._push_active(entry, UNSCHEDULABLE_POD_ADD.label)

    def update(self, pod: PodInfo) -> None:
        entry = self._entries.get(pod.key)
        if entry is None:
            self.add(pod)
            return
        entry.pod = pod
        if entry.where in (UNSCHEDULABLE, GATED):
            # upstream (isPodUpdated): an updated pod may now fit (or have lost its last gate).
            self._to_active_or_backoff(entry, UNSCHEDULABLE_POD_UPDATE.label)
        elif entry.where == ACTIVE:
            # priority may have changed; the old heap item is stale (no new incoming pod)
            self._requeue_active(entry)

    def delete(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            self._place(entry, IN_FLIGHT)  # out of the parked indexes
            del self._entries[key]
            entry.generation += 1  # invalidates heap items

    def move_all(
        self,
        event: ClusterEvent,
        *,
        old: Any = None,
        new: Any = None,
        only_plugins: set[str] | None = None,
        pre_check: Callable[[QueuedPod], bool] | None = None,
    ) -> int:
        """upstream moveAllToActiveOrBackoffQueue: move the parked pods this event could help
        (see the module doc) to the active or backoff queue; the number moved.

        `old`/`new` are the event's objects for hint functions; `only_plugins` further limits the
        move to pods one of those plugins rejected; `pre_check(entry)` false skips a pod (upstream
        preCheck, e.g. AssignedPodAdd looks only at pods with a term the new pod matches)."""
        interested = self._interested.get(event)
        if interested is None:
            interested = frozenset(
                name
                for name, regs in self._registrations.items()
                if regs is not None and any(r.event.matches(event) for r in regs)
            )
            self._interested[event] = interested
        if not interested and not self._everything:
            return 0  # no plugin registered for it (upstream isEventOfInterest)
        self._moves += 1
        candidates: dict[str, QueuedPod] = {}
        for plugin, bucket in self._by_plugin.items():
            if plugin in interested or self._registrations.get(plugin, None) is None:
                candidates.update(bucket)
        moved = 0
        label = event.label
        for entry in list(candidates.values()):
            rejectors = entry.unschedulable_plugins
            if only_plugins is not None and rejectors.isdisjoint(only_plugins):
                continue
            if entry.where == GATED:
                # upstream: only the events its gating plugin registered re-check a gated pod.
                if entry.gate is None or not self._worth(entry, event, old, new, gated=True):
                    continue
            elif entry.where != UNSCHEDULABLE or not self._worth(entry, event, old, new):
                continue
            if pre_check is not None and not pre_check(entry):
                continue
            self._to_active_or_backoff(entry, label)
            if entry.where != GATED:
                moved += 1
        return moved

    def _worth(
        self, entry: QueuedPod, event: ClusterEvent, old: Any, new: Any, *, gated: bool = False
    ) -> bool:
        """upstream isPodWorthRequeuing (registrations and hints of the pod's rejectors)."""
        rejectors = entry.unschedulable_plugins
        if not rejectors:
            return True  # no rejecting plugin: any event
        for plugin in rejectors:
            regs = self._registrations.get(plugin)
            if regs is None:
                if gated and plugin not in self._registrations and self._registrations:
                    continue
                return True  # interested in everything
            for reg in regs:
                if reg.event.matches(event) and _hint(reg, plugin, entry.pod, old, new):
                    return True
        return False

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
        """After a cycle found no node: parked until an event one of `plugins` (the rejecting
        plugins) registered for, or in backoff when an event came during the cycle or no plugin
        rejected it (upstream addUnschedulableWithoutQueueingHint)."""
        if self._entries.get(entry.key) is not entry:
            return  # deleted meanwhile
        now = self.clock()
        entry.timestamp = now
        entry.backoff_until = now + self.backoff_duration(entry.attempts)
        entry.unschedulable_plugins = {p for p in plugins if p}
        if self._moves > entry.popped_at_move or not entry.unschedulable_plugins:
            self._push_backoff(entry, SCHEDULE_ATTEMPT_FAILURE)
        else:
            self._incoming(UNSCHEDULABLE, SCHEDULE_ATTEMPT_FAILURE)
            self._place(entry, UNSCHEDULABLE)
            entry.unschedulable_since = now

    def requeue_backoff(self, entry: QueuedPod) -> None:
        """After an error (a failed bind, a plugin error): try again after backoff."""
        if self._entries.get(entry.key) is not entry:
            return
        now = self.clock()
        entry.timestamp = now
        entry.backoff_until = now + self.backoff_duration(entry.attempts)
        entry.unschedulable_plugins = set()  # upstream: an error leaves no rejecting plugin
        self._push_backoff(entry, SCHEDULE_ATTEMPT_FAILURE)

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
            self._push_active(entry, BACKOFF_COMPLETE)
            moved += 1
        return moved

    def flush_unschedulable(self) -> int:
        now = self.clock()
        moved = 0
        for entry in list(self._parked.values()):
            if now - entry.unschedulable_since >= self.max_unschedulable_seconds:
                if entry.where == GATED:
                    entry.unschedulable_since = now  # re-checked; stays gated if still rejected
                self._to_active_or_backoff(entry, UNSCHEDULABLE_TIMEOUT)
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


def _priority_order(pod: PodInfo, queued_at: float) -> tuple[Any, ...]:
    return (-pod.priority, queued_at)


def _hint(reg: ClusterEventWithHint, plugin: str, pod: PodInfo, old: Any, new: Any) -> bool:
    """A registration's hint (None: Queue); an error counts as Queue, as upstream."""
    if reg.hint is None:
        return True
    try:
        return reg.hint(pod, old, new)
    except Exception:
        log.exception("queueing hint failed", extra={"plugin": plugin, "pod": pod.key})
        return True
