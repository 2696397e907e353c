"""The live loop: informer events into state and queue; pop, decide, assume, bind, record.

Decisions are CPU-only (the engine never waits on the network); binding runs in its own task off
the decision path. A pod is assumed on its node the moment it is chosen; a failed bind forgets it
and requeues it; the watch confirms a successful one. `409` from someone else's bind, or a pod
deleted meanwhile, is dropped cleanly.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

from berth.engine import Engine
from berth.feed import Feed, FeedListener
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
from berth.framework.events import (
    ASSIGNED_POD,
    ASSIGNED_POD_DELETE,
    UNSCHEDULABLE_POD_ADD,
    ActionType,
    ClusterEvent,
)
from berth.framework.status import Status
from berth.kube.events import EventRecorder
from berth.kube.evictor import Evictor
from berth.kube.informer import Handler, Obj, object_key
from berth.objects import ObjectError
from berth.objects.pod import PodInfo, pod_stub
from berth.plugins.coscheduling import NAME as COSCHEDULING
from berth.plugins.podtopologyspread import NAME as POD_TOPOLOGY_SPREAD
from berth.run.queue import QueuedPod, SchedulingQueue
from berth.telemetry import SchedulerMetrics

log = logging.getLogger("berth.scheduler")
TERMINAL = ("Succeeded", "Failed")


class LiveScheduler:
    """The scheduling loop of `berth run`: pop a pod, run the engine's cycle, act on the outcome."""

    def __init__(
        self,
        *,
        engine: Engine,
        queue: SchedulingQueue,
        recorder: EventRecorder,
        metrics: SchedulerMetrics,
        evictor: Evictor | None = None,
    ) -> None:
        self.engine = engine
        self.evictor = evictor
        self._preemptions: set[asyncio.Task[None]] = set()
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
            listener=_Queue(self),
        )
        queue.order = engine.queue_order
        if any(sch.framework.pre_enqueue for sch in engine.schedulers.values()):
            queue.pre_enqueue = self.pre_enqueue
        queue.set_registrations(engine.registrations())
        queue.on_incoming = self._incoming
        histogram = metrics.extension_point_duration
        for profile, sch in engine.schedulers.items():

            def observe(point: str, code: str, seconds: float, profile: str = profile) -> None:
                histogram.labels(point, code, profile).observe(seconds)

            sch.framework.observe = observe

    def handler(self, kind: str) -> Handler:
        """The informer handler for `kind`: the feed's (pods: the latest raw pod kept first)."""
        if kind == "Pod":
            return _RawPods(self.pods, self.feed.handler(kind))
        return self.feed.handler(kind)

    def _incoming(self, queue: str, event: str) -> None:
        self.metrics.incoming.labels(queue, event).inc()

    def cross_topology(self, added: PodInfo) -> Callable[[QueuedPod], bool]:
        """upstream getUnschedulablePodsWithCrossTopologyTerm: a bound pod added (or relabelled)
        can help only pods PodTopologySpread rejected in its namespace, or pods with a required
        affinity term it matches."""
        ns_labels = self.engine.state.namespace_labels

        def check(entry: QueuedPod) -> bool:
            pod = entry.pod
            if POD_TOPOLOGY_SPREAD in entry.unschedulable_plugins and (
                pod.namespace == added.namespace
            ):
                return True
            return any(term.matches_pod(added, ns_labels) for term in pod.required_affinity)

        return check

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
        while not self._stopping:
            entry = await self.queue.pop()
            if entry is None:
                break
            try:
                self.schedule_one(entry)
            except Exception:  # a bug must not stop the scheduler; the pod is retried
                log.exception("scheduling cycle failed", extra={"pod": entry.key})
                self.queue.requeue_backoff(entry)
            await asyncio.sleep(0)  # let informers and binds run between decisions

    async def stop(self, *, timeout: float = 30.0) -> None:
        """Stop taking pods; wait for binds in flight."""
        self._stopping = True
        self.queue.close()
        for waiting in self.engine.ports.waiting_pods:
            waiting.reject("", "scheduler stopping")
        pending = self._binds | self._preemptions
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
                self._failed_scheduling(pod, message)
                self._set_condition(pod, message)
                if outcome.framework.post_filter:
                    self.metrics.preemption_attempts.inc()
                if isinstance(outcome, Nominated):
                    self._preempt(outcome)
                    # Victims are being deleted; retry after backoff, when the room is free.
                    self.queue.requeue_backoff(entry)
                    return
                if outcome.cleared_nomination:
                    self._spawn(self._nominate(pod, ""))
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
                self._failed_scheduling(pod, message)
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
                self._failed_scheduling(pod, message)
                self.queue.requeue_backoff(entry)

    # ----- preemption, through the API ---------------------------------------------------------
    def _preempt(self, nominated: Nominated) -> None:
        """The engine nominated the pod and counts its victims as terminating: delete them and
        write the nominations (upstream prepareCandidate, asynchronously)."""
        pod, node, victims = nominated.pod, nominated.node, nominated.victims
        log.info(
            "preempting", extra={"pod": pod.key, "node": node, "victims": [v.key for v in victims]}
        )
        self.metrics.preemption_victims.observe(len(victims))
        self._spawn(self._carry_out(pod, node, victims, list(nominated.cleared)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._preemptions.add(task)
        task.add_done_callback(self._preemptions.discard)

    async def _nominate(self, pod: PodInfo, node: str) -> None:
        if self.evictor is not None:
            await self.evictor.nominate(pod, node)

    async def _carry_out(
        self, pod: PodInfo, node: str, victims: tuple[PodInfo, ...], lower: list[PodInfo]
    ) -> None:
        evictor = self.evictor
        if evictor is None:
            log.warning("no evictor: victims not deleted", extra={"pod": pod.key})
            return
        evictions = [evictor.preempt(v, preemptor=pod, node=node) for v in victims]
        _, evicted, _ = await asyncio.gather(
            evictor.nominate(pod, node),
            asyncio.gather(*evictions),
            asyncio.gather(*(evictor.nominate(p, "") for p in lower)),
        )
        state = self.engine.state
        for victim, result in zip(victims, evicted, strict=True):
            current = state.pods.get(victim.key)
            if not result.deleted and current is not None and current.preempted_by_scheduler:
                state.replace_pod(victim)  # not deleted after all: no longer terminating
        if not all(r.deleted for r in evicted):
            # Upstream moves the preemptor back to the active queue when a victim could not
            # be preempted; it is retried after its backoff here and may pick other victims.
            log.warning("some victims were not preempted", extra={"pod": pod.key, "node": node})

    def _count(self, result: str, profile: str, start: float) -> None:
        """One attempt in `scheduler_schedule_attempts_total` and its duration histogram."""
        self.metrics.attempts.labels(result, profile).inc()
        self.metrics.attempt_duration.labels(result, profile).observe(time.perf_counter() - start)

    def _failed_scheduling(self, pod: PodInfo, message: str) -> None:
        self.recorder.event(
            pod, type_="Warning", reason="FailedScheduling", action="Scheduling", message=message
        )

    def _error(self, entry: QueuedPod, profile: str, start: float, message: str) -> None:
        self._count("error", profile, start)
        log.warning("scheduling error", extra={"pod": entry.key, "error": message})
        self._failed_scheduling(entry.pod, message)
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

    def malformed(self, raw: Obj, exc: ObjectError) -> None:
        """A pod we cannot parse: tell its owner through an event, never crash."""
        meta = raw.get("metadata") or {}
        stub = pod_stub(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name")),
            uid=str(meta.get("uid") or ""),
            scheduler_name=str((raw.get("spec") or {}).get("schedulerName") or "default-scheduler"),
            resource_version=str(meta.get("resourceVersion") or ""),
        )
        log.warning("malformed pod", extra={"pod": stub.key, "error": str(exc)})
        self._failed_scheduling(stub, f"invalid pod spec: {exc.where}")


class _RawPods:
    """The pods informer's handler: keep the latest raw pod (events and conditions are written
    from it), then feed it."""

    def __init__(self, pods: dict[str, Obj], feed: Handler) -> None:
        self._pods = pods
        self._feed = feed

    def on_add(self, obj: Obj) -> None:
        self._keep(obj)
        self._feed.on_add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._keep(new)
        self._feed.on_update(old, new)

    def on_delete(self, obj: Obj) -> None:
        self._pods.pop(object_key(obj), None)
        self._feed.on_delete(obj)

    def _keep(self, obj: Obj) -> None:
        if (obj.get("status") or {}).get("phase") in TERMINAL:
            self._pods.pop(object_key(obj), None)
        else:
            self._pods[object_key(obj)] = obj


class _Queue(FeedListener):
    """What the feed reports, as upstream's event handlers act on it: pods queued, dequeued and
    moved back from unschedulable on the cluster events their rejectors registered for."""

    def __init__(self, s: LiveScheduler) -> None:
        self.s = s

    def cluster_event(self, event: ClusterEvent, old: Any, new: Any) -> None:
        queue = self.s.queue
        if event.resource == ASSIGNED_POD and event.action in (
            ActionType.ADD,
            ActionType.UPDATE_POD_LABEL,
        ):
            queue.move_all(event, old=old, new=new, pre_check=self.s.cross_topology(new))
        else:
            queue.move_all(event, old=old, new=new)

    def pending(self, pod: PodInfo, *, added: bool) -> None:
        if added:
            self.s.queue.add(pod)
        else:
            self.s.queue.update(pod)

    def pending_gone(self, key: str) -> None:
        self.s.queue.delete(key)

    def pod_group_grew(self, group: str) -> None:
        # A new member (ours or not) may complete a group whose pods lacked siblings.
        self.s.queue.move_all(UNSCHEDULABLE_POD_ADD, only_plugins={COSCHEDULING})

    def malformed(self, kind: str, raw: Obj, error: ObjectError) -> None:
        if kind == "Pod" and not (raw.get("spec") or {}).get("nodeName"):
            self.s.malformed(raw, error)  # a pod of ours: tell its owner
        else:
            super().malformed(kind, raw, error)
