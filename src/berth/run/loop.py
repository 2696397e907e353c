"""The scheduling loop of `berth run` (upstream ScheduleOne): pop a pod, run the engine's cycle,
say what its outcome means: a binding cycle in its own task, events, metrics and the queue.

Decisions are CPU-only (the engine never waits on the network); binding runs off the decision
path. A pod is assumed on its node the moment it is chosen; a failed bind forgets it and requeues
it; the watch confirms a successful one. `409` from someone else's bind, or a pod deleted
meanwhile, is dropped cleanly.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

from berth.engine import Engine
from berth.feed import Feed
from berth.framework.cycle import (
    PRE_BIND,
    BindFailed,
    Bound,
    Error,
    Nominated,
    PermitRejected,
    Reserved,
    Scheduled,
    Unschedulable,
    Waiting,
)
from berth.framework.events import ASSIGNED_POD_DELETE
from berth.framework.status import Status
from berth.kube.events import EventSink
from berth.kube.evictor import Evictor
from berth.kube.informer import Handler, Obj
from berth.objects.pod import PodInfo
from berth.run.listener import QueueListener, RawPods
from berth.run.preemption import Preemptions
from berth.run.queue import QueuedPod, SchedulingQueue
from berth.telemetry import SchedulerMetrics

log = logging.getLogger("berth.scheduler")

# Decisions run back to back for up to this long before the informers, the binding cycles and
# the rest of the event loop get their turn. Each turn is a poll of every socket and pipe: one
# per decision was a sizeable share of the loop's own CPU at 0.2 ms a decision, and the
# binding cycles started together share their writes to the API dispatcher. The state a
# decision sees is at most this much older than the informers' (assumed pods are in it).
DECISIONS_SLICE = 0.001


class LiveScheduler:
    """The scheduling loop of `berth run`: pop a pod, run the engine's cycle, act on the outcome."""

    def __init__(
        self,
        *,
        engine: Engine,
        queue: SchedulingQueue,
        recorder: EventSink,
        metrics: SchedulerMetrics,
        evictor: Evictor | None = None,
    ) -> None:
        self.engine = engine
        self.evictor = evictor
        self.preemptions = Preemptions(evictor=evictor, state=engine.state)
        self.queue = queue
        self.recorder = recorder
        self.metrics = metrics
        self._binds: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.pods: dict[str, Obj] = {}  # latest raw object of every pod we know, by key
        self.scheduled = 0
        self.bind_failures = 0
        # The informers' objects go through the engine's feed; its listener moves the queue.
        self.feed = Feed(
            state=engine.state,
            ports=engine.ports,
            responsible=engine.schedules,
            listener=QueueListener(queue, engine.state, self.failed_scheduling),
        )
        queue.order = engine.queue_order
        if any(sch.framework.pre_enqueue for sch in engine.schedulers.values()):
            queue.pre_enqueue = self.pre_enqueue
        queue.set_registrations(engine.registrations())
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        queue.on_incoming = self._incoming
        histogram = metrics.extension_point_duration
        for profile, sch in engine.schedulers.items():
            # each (point, status) series looked up once: labels() costs as much as the
            # observation itself, and a cycle observes eight or so points
            series: dict[tuple[str, str], Any] = {}

            def observe(
                point: str,
                code: str,
                seconds: float,
                profile: str = profile,
                series: dict[tuple[str, str], Any] = series,
            ) -> None:
                child = series.get((point, code))
                if child is None:
                    child = series[(point, code)] = histogram.labels(point, code, profile)
                child.observe(seconds)

            sch.framework.observe = observe

    def handler(self, kind: str) -> Handler:
        """The informer handler for `kind`: the feed's (pods: the latest raw pod kept first)."""
        if kind == "Pod":
            return RawPods(self.pods, self.feed.handler(kind))
        return self.feed.handler(kind)

    def _incoming(self, queue: str, event: str) -> None:
        self._labelled(self.metrics.incoming, queue, event).inc()

    def _labelled(self, metric: Any, *values: str) -> Any:
        """A counter's metric.labels(*values), looked up once per label set (prometheus_client's
        labels() builds and checks the label tuple under a lock each time; the sets here are
        few: results, profiles, queues and events). The histograms keep their own series."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def assigned_pod_deleted(self, pod: PodInfo) -> None:
        """A pod counted on a node is gone (deleted, finished, or forgotten after a failed
        binding cycle): its room may help others."""
        self.queue.move_all(ASSIGNED_POD_DELETE, old=pod)

    def pre_enqueue(self, pod: PodInfo) -> Status:
        """The pod's profile's PreEnqueue plugins (SchedulingGates); the queue holds a pod they
        reject as gated: not tried, no FailedScheduling event (as upstream)."""
        status = self.engine.pre_enqueue(pod)
        if not status.ok:
            log.debug(
                "pod gated",
                extra={"pod": pod.key, "plugin": status.plugin, "reason": status.message},
            )
        return status

    # ----- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Schedule until stopped (or cancelled, e.g. when leadership is lost)."""
        clock = time.perf_counter
        turn = clock()
        while not self._stopping:
            if not self.queue.has_active():
                # nothing to decide now: set-up a change made stale is done here, not in
                # the next decision
                self.engine.prepare()
            entry = await self.queue.pop()
            if entry is None:
                break
            try:
                self.schedule_one(entry)
            except Exception:  # a bug must not stop the scheduler; the pod is retried
                log.exception("scheduling cycle failed", extra={"pod": entry.key})
                self.queue.requeue_backoff(entry)
            if clock() - turn >= DECISIONS_SLICE:
                await asyncio.sleep(0)  # let informers and binds run between decisions
                turn = clock()

    async def stop(self, *, timeout: float = 30.0) -> None:
        """Stop taking pods; wait for binds in flight."""
        self._stopping = True
        self.queue.close()
        for waiting in self.engine.ports.waiting_pods:
            waiting.reject("", "scheduler stopping")
        pending = self._binds | self.preemptions.tasks
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        await self.recorder.flush()

    def refresh_gauges(self) -> None:
        counts = self.queue.counts()
        self.metrics.pending.labels("active").set(counts["active"])
        self.metrics.pending.labels("backoff").set(counts["backoff"])
        self.metrics.pending.labels("unschedulable").set(counts["unschedulable"])
        self.metrics.pending.labels("gated").set(counts["gated"])
        per_plugin: collections.Counter[tuple[str, str]] = collections.Counter()
        for entry in self.queue.parked():
            for plugin in entry.unschedulable_plugins:
                if plugin:
                    per_plugin[(plugin, entry.pod.scheduler_name)] += 1
        gauge = self.metrics.unschedulable_pods
        gauge.clear()
        for (plugin, profile), count in per_plugin.items():
            gauge.labels(plugin, profile).set(count)

    def schedule_one(self, entry: QueuedPod) -> None:
        """upstream ScheduleOne: the engine's scheduling cycle, then its outcome: a binding
        cycle in its own task, or the failure handling (events, condition, queue)."""
        pod = entry.pod
        engine = self.engine
        if (
            engine.state.node_of(pod.key) is not None  # bound or assumed already
            or pod.key not in self.pods  # deleted
            or engine.scheduler_for(pod.scheduler_name) is None
        ):
            self.queue.done(pod.key)
            return
        profile = pod.scheduler_name
        start = time.perf_counter()
        outcome = engine.schedule(pod)
        match outcome:
            case Scheduled() | Waiting():
                self.metrics.algorithm_duration.observe(outcome.seconds)
                if isinstance(outcome, Waiting):
                    # Held at Permit: stays assumed; the binding cycle waits for the verdict.
                    log.info("pod waiting at permit", extra={"pod": pod.key, "node": outcome.node})
                task = asyncio.get_running_loop().create_task(
                    self._binding_cycle(entry, outcome, start)
                )
                self._binds.add(task)
                task.add_done_callback(self._binds.discard)
            case Unschedulable():
                self.metrics.algorithm_duration.observe(outcome.seconds)
                self._count("unschedulable", profile, start)
                message = outcome.fit.message
                log.info("pod unschedulable", extra={"pod": pod.key, "reason": message})
                self.failed_scheduling(pod, message)
                self._set_condition(pod, message)
                if outcome.framework.post_filter:
                    self.metrics.preemption_attempts.inc()
                if isinstance(outcome, Nominated):
                    self.metrics.preemption_victims.observe(len(outcome.victims))
                    self.preemptions.carry_out(outcome)
                    # Victims are being deleted; retry after backoff, when the room is free.
                    self.queue.requeue_backoff(entry)
                    return
                if outcome.cleared_nomination:
                    self.preemptions.clear(pod)
                self.queue.requeue_unschedulable(entry, plugins=outcome.rejectors)
            case Error(status=status):
                if status.plugin:  # Reserve or Permit rejected the node
                    message = f"{status.plugin}: {status.message}"
                else:
                    message = f"running scheduling plugins: {status.message}"
                self._error(entry, profile, start, message)

    async def _binding_cycle(self, entry: QueuedPod, reserved: Reserved, start: float) -> None:
        """The engine's binding cycle, then its outcome: the Scheduled event, or the pod back
        in the queue (its room given back: pods it was blocking may fit now)."""
        pod = entry.pod
        profile = pod.scheduler_name
        outcome = await self.engine.bind(reserved)
        match outcome:
            case Bound(node=node):
                self.scheduled += 1
                self._count("scheduled", profile, start)
                if entry.initial_attempt is not None:
                    attempts = "15+" if entry.attempts >= 15 else str(entry.attempts)
                    self.metrics.sli_duration.labels(attempts).observe(
                        self.queue.clock() - entry.initial_attempt
                    )
                self.metrics.scheduling_attempts.observe(entry.attempts)
                self.queue.done(pod.key)
                self.recorder.event(
                    pod,
                    type_="Normal",
                    reason="Scheduled",
                    action="Binding",
                    message=f"Successfully assigned {pod.key} to {node}",
                )
            case PermitRejected(status=status):
                self.assigned_pod_deleted(pod)  # upstream handleBindingCycleError
                if pod.key not in self.pods or self._stopping:
                    self.queue.done(pod.key)
                    return
                message = f"{status.plugin}: {status.message}" if status.plugin else status.message
                self._count("unschedulable", profile, start)
                log.info("pod rejected at permit", extra={"pod": pod.key, "reason": message})
                self.failed_scheduling(pod, message)
                self._set_condition(pod, message)
                self.queue.requeue_backoff(entry)
            case BindFailed(node=node, status=status, stage=stage):
                self.bind_failures += 1
                self.metrics.binding_errors.inc()
                self.assigned_pod_deleted(pod)  # upstream handleBindingCycleError
                latest = self.pods.get(pod.key)
                if latest is None or (latest.get("spec") or {}).get("nodeName"):
                    # Deleted, or bound by someone else: nothing left for us to do.
                    log.info("bind dropped", extra={"pod": pod.key, "reason": status.message})
                    self.queue.done(pod.key)
                    return
                self._count("error", profile, start)
                log.warning(
                    "bind failed", extra={"pod": pod.key, "node": node, "error": status.message}
                )
                if stage == PRE_BIND:
                    message = f'running PreBind plugin "{status.plugin}": {status.message}'
                else:
                    message = f"Binding rejected: {status.message}"
                self.failed_scheduling(pod, message)
                self.queue.requeue_backoff(entry)

    # ----- what outcomes say ------------------------------------------------------------------
    def _count(self, result: str, profile: str, start: float) -> None:
        """One attempt in `scheduler_schedule_attempts_total` and its duration histogram."""
        self._labelled(self.metrics.attempts, result, profile).inc()
        self.metrics.attempt_duration.labels(result, profile).observe(time.perf_counter() - start)

    def failed_scheduling(self, pod: PodInfo, message: str) -> None:
        self.recorder.event(
            pod, type_="Warning", reason="FailedScheduling", action="Scheduling", message=message
        )

    def _error(self, entry: QueuedPod, profile: str, start: float, message: str) -> None:
        self._count("error", profile, start)
        log.warning("scheduling error", extra={"pod": entry.key, "error": message})
        self.failed_scheduling(entry.pod, message)
        self.queue.requeue_backoff(entry)

    def _set_condition(self, pod: PodInfo, message: str) -> None:
        raw = self.pods.get(pod.key) or {}
        for c in (raw.get("status") or {}).get("conditions") or []:
            if (
                c.get("type") == "PodScheduled"
                and c.get("status") == "False"
                and c.get("reason") == "Unschedulable"
                and c.get("message") == message
            ):
                return  # already says so
        self.recorder.condition(pod, status="False", reason="Unschedulable", message=message)
