"""The live loop: informer events into state and queue; pop, decide, assume, bind, record.

Decisions are CPU-only (the engine never waits on the network); binding runs in its own task off
the decision path. A pod is assumed on its node the moment it is chosen; a failed bind forgets it
and requeues it; the watch confirms a successful one. `409` from someone else's bind, or a pod
deleted meanwhile, is dropped cleanly.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from aiolimiter import AsyncLimiter

from berth.engine import Engine
from berth.framework.algorithm import FitError
from berth.framework.events import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    CSI_NODE,
    NODE_ADD,
    NODE_DELETE,
    PERSISTENT_VOLUME,
    PERSISTENT_VOLUME_CLAIM,
    POD_GROUP,
    STORAGE_CLASS,
    UNSCHEDULABLE_POD_ADD,
    ActionType,
    ClusterEvent,
    collect_registrations,
    node_changes,
    pod_changes,
)
from berth.framework.runtime import FrameworkError
from berth.framework.status import SUCCESS, Code, Status
from berth.kube.events import EventRecorder
from berth.kube.evictor import Evictor
from berth.kube.informer import Obj, ObjectCache, object_key
from berth.objects import ObjectError, parse_node, parse_pod
from berth.objects.pod import POD_GROUP_LABEL, PodInfo
from berth.plugins.coscheduling import GROUP_PODS_SERVICE, PODGROUP_SERVICE, creation_time
from berth.plugins.coscheduling import NAME as COSCHEDULING
from berth.plugins.podtopologyspread import NAME as POD_TOPOLOGY_SPREAD
from berth.queue import QueuedPod, SchedulingQueue
from berth.telemetry import SchedulerMetrics

log = logging.getLogger("berth.scheduler")
TERMINAL = ("Succeeded", "Failed")
# The volume informers' kinds -> event resources.
VOLUME_RESOURCES = {
    "PersistentVolume": PERSISTENT_VOLUME,
    "PersistentVolumeClaim": PERSISTENT_VOLUME_CLAIM,
    "StorageClass": STORAGE_CLASS,
    "CSINode": CSI_NODE,
}


class LiveScheduler:
    def __init__(
        self,
        *,
        engine: Engine,
        queue: SchedulingQueue,
        recorder: EventRecorder,
        metrics: SchedulerMetrics,
        limiter: AsyncLimiter | None = None,
        max_binds_in_flight: int = 100,
        evictor: Evictor | None = None,
    ) -> None:
        self.engine = engine
        self.evictor = evictor
        self._preemptions: set[asyncio.Task[None]] = set()
        self.queue = queue
        self.recorder = recorder
        self.metrics = metrics
        self.limiter = limiter
        self._bind_slots = asyncio.Semaphore(max_binds_in_flight)
        self._binds: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.pods: dict[str, Obj] = {}  # latest raw object of every pod we know, by key
        self.scheduled = 0
        self.bind_failures = 0
        # Read by preemption (PDBs) and gang scheduling (PodGroups).
        self.pdbs = ObjectCache()
        self.pod_groups = PodGroupEvents(self)
        # "namespace/group" -> keys of the known non-terminal pods labelled with that group, and
        # each such pod's group (gang scheduling counts a group's pods on every decision).
        self.group_members: dict[str, set[str]] = {}
        self._group_of: dict[str, str] = {}
        self.gang = any(
            COSCHEDULING in (p.name for p in sch.framework.permit)
            for sch in engine.schedulers.values()
        )
        services = engine.handle.services
        services.setdefault(PODGROUP_SERVICE, self.pod_groups.objects.get)
        services.setdefault(GROUP_PODS_SERVICE, self.group_size)
        if self.gang:
            queue.group_order = self.group_order
        if any(sch.framework.pre_enqueue for sch in engine.schedulers.values()):
            queue.pre_enqueue = self.pre_enqueue
        # What each plugin that can reject a pod registered (upstream builds this from the
        # PreEnqueue, PreFilter, Filter, Reserve and Permit plugins of every profile).
        queue.set_registrations(
            collect_registrations(
                plugin
                for sch in engine.schedulers.values()
                for point in ("pre_enqueue", "pre_filter", "filter", "reserve", "permit")
                for plugin in getattr(sch.framework, point)
            )
        )
        queue.on_incoming = self._incoming
        histogram = metrics.extension_point_duration
        for profile, sch in engine.schedulers.items():

            def observe(point: str, code: str, seconds: float, profile: str = profile) -> None:
                histogram.labels(point, code, profile).observe(seconds)

            sch.framework.observe = observe
        self.nodes = NodeEvents(self)
        self.pod_events = PodEvents(self)
        self.namespaces = NamespaceEvents(self)

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

    # ----- pods by PodGroup (gang scheduling) ---------------------------------------------------
    def remember(self, key: str, obj: Obj) -> None:
        """Keep the latest raw pod and its PodGroup membership."""
        self.pods[key] = obj
        meta = obj.get("metadata") or {}
        group = str((meta.get("labels") or {}).get(POD_GROUP_LABEL) or "")
        full = f"{meta.get('namespace') or 'default'}/{group}" if group else ""
        old = self._group_of.get(key, "")
        if old == full:
            return
        if old:
            self._drop_member(key, old)
        if full:
            self._group_of[key] = full
            self.group_members.setdefault(full, set()).add(key)
            if self.gang:
                # A new member (ours or not) may complete a group whose pods lacked siblings.
                self.queue.move_all(UNSCHEDULABLE_POD_ADD, only_plugins={COSCHEDULING})

    def forget(self, key: str) -> None:
        self.pods.pop(key, None)
        old = self._group_of.get(key)
        if old:
            self._drop_member(key, old)

    def _drop_member(self, key: str, group: str) -> None:
        self._group_of.pop(key, None)
        members = self.group_members.get(group)
        if members is not None:
            members.discard(key)
            if not members:
                del self.group_members[group]

    def group_size(self, namespace: str, group: str) -> int:
        return len(self.group_members.get(f"{namespace}/{group}", ()))

    def group_order(self, pod: PodInfo) -> tuple[float, str]:
        """Coscheduling's queue order after priority: the PodGroup's creation time (the pod's
        own when it has no PodGroup) and the group's full name (the pod's key)."""
        if pod.pod_group:
            key = f"{pod.namespace}/{pod.pod_group}"
            created = creation_time(self.pod_groups.objects.get(key))
            return (pod.created if created is None else created), key
        return pod.created, pod.key

    def pre_enqueue(self, pod: PodInfo) -> Status:
        """The pod's profile's PreEnqueue plugins (SchedulingGates); the queue holds a pod they
        reject as gated: not tried, no FailedScheduling event (as upstream)."""
        scheduler = self.engine.scheduler_for(pod.scheduler_name)
        if scheduler is None or not scheduler.framework.pre_enqueue:
            return SUCCESS
        status = scheduler.framework.run_pre_enqueue(pod)
        if not status.ok:
            log.debug(
                "pod gated",
                extra={"pod": pod.key, "plugin": status.plugin, "reason": status.message},
            )
        return status

    def volume_event(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        """A PV, claim, StorageClass or CSINode was added, changed or deleted: retry the pods
        whose rejecting plugins registered for that (the volume plugins do)."""
        resource = VOLUME_RESOURCES.get(kind)
        if resource is None:
            return
        if new is None:
            action = ActionType.DELETE
        elif old is None:
            action = ActionType.ADD
        else:
            action = ActionType.UPDATE
        self.queue.move_all(ClusterEvent(resource, action), old=old, new=new)

    # ----- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Schedule until stopped (or cancelled, e.g. when leadership is lost)."""
        while not self._stopping:
            entry = await self.queue.pop()
            if entry is None:
                break
            try:
                await self.schedule_one(entry)
            except Exception:  # a bug must not stop the scheduler; the pod is retried
                log.exception("scheduling cycle failed", extra={"pod": entry.key})
                self.queue.requeue_backoff(entry)
            await asyncio.sleep(0)  # let informers and binds run between decisions

    async def stop(self, *, timeout: float = 30.0) -> None:
        """Stop taking pods; wait for binds in flight."""
        self._stopping = True
        self.queue.close()
        for waiting in self.engine.handle.waiting_pods:
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

    async def schedule_one(self, entry: QueuedPod) -> None:
        pod = entry.pod
        state = self.engine.state
        if state.node_of(pod.key) is not None or pod.key not in self.pods:
            self.queue.done(pod.key)  # bound or assumed already, or deleted
            return
        scheduler = self.engine.scheduler_for(pod.scheduler_name)
        if scheduler is None:
            self.queue.done(pod.key)
            return
        profile = pod.scheduler_name
        start = time.perf_counter()
        try:
            result = scheduler.schedule(pod)
        except FitError as fit:
            self.metrics.algorithm_duration.observe(time.perf_counter() - start)
            self._count("unschedulable", profile, start)
            message = fit.message
            log.info("pod unschedulable", extra={"pod": pod.key, "reason": message})
            self._failed_scheduling(pod, message)
            self._set_condition(pod, message)
            if scheduler.framework.post_filter:
                self.metrics.preemption_attempts.inc()
            if fit.post_filter is not None and self._preempt(entry, fit):
                # Victims are being deleted; retry after backoff, when the room is free.
                self.queue.requeue_backoff(entry)
                return
            self.queue.requeue_unschedulable(entry, plugins=fit.diagnosis.unschedulable_plugins())
            return
        except FrameworkError as exc:
            self._error(entry, profile, start, f"running scheduling plugins: {exc}")
            return
        self.metrics.algorithm_duration.observe(time.perf_counter() - start)
        fwk = scheduler.framework
        node = result.node
        state.assume_pod(pod, node)
        status = fwk.run_reserve(result.cycle, pod, node)
        if status.ok:
            status, _ = fwk.run_permit(result.cycle, pod, node)
            if status.code == Code.WAIT:
                # Held at Permit: stays assumed; the bind task waits for allow/reject/timeout.
                log.info("pod waiting at permit", extra={"pod": pod.key, "node": node})
                status = status.__class__()
        if not status.ok:
            fwk.run_unreserve(result.cycle, pod, node)
            state.forget_pod(pod.key)
            self._error(entry, profile, start, f"{status.plugin}: {status.message}")
            return
        task = asyncio.get_running_loop().create_task(
            self._bind(entry, fwk, result.cycle, node, profile, start)
        )
        self._binds.add(task)
        task.add_done_callback(self._binds.discard)

    # ----- preemption -------------------------------------------------------------------------
    def _preempt(self, entry: QueuedPod, fit: FitError) -> bool:
        """Act on PostFilter's result (upstream prepareCandidate + the nomination): nominate the
        pod, delete the victims, clear lower-priority nominations on that node. True when the
        pod was nominated (and should come back after backoff)."""
        pod = entry.pod
        node = fit.nominated_node
        state = self.engine.state
        nominator = self.engine.handle.nominator
        if not node:
            # Preemption cannot help: clear an earlier nomination, if any.
            if nominator.node_of(pod.key) or pod.nominated_node:
                nominator.remove(pod.key)
                pod.nominated_node = ""
                self._spawn(self._nominate(pod, ""))
            return False
        nominator.add(pod, node)
        pod.nominated_node = node
        for victim in fit.victims:
            # Count the victims as terminating until the watch reports them gone, so the next
            # attempt waits for them (PodEligibleToPreemptOthers) instead of preempting again.
            if state.node_of(victim.key) == node:
                state.replace_pod(
                    dataclasses.replace(victim, terminating=True, preempted_by_scheduler=True)
                )
        lower = [p for p in nominator.pods_for_node(node) if p.priority < pod.priority]
        for other in lower:
            nominator.remove(other.key)
            other.nominated_node = ""
        log.info(
            "preempting",
            extra={"pod": pod.key, "node": node, "victims": [v.key for v in fit.victims]},
        )
        self.metrics.preemption_victims.observe(len(fit.victims))
        self._spawn(self._carry_out(pod, node, fit.victims, lower))
        return True

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

    async def _bind(
        self, entry: QueuedPod, fwk: Any, cycle: Any, node: str, profile: str, start: float
    ) -> None:
        pod = entry.pod
        waiting = fwk.waiting_pod(pod.key)
        if waiting is not None:
            # upstream WaitOnPermit: bind only once allowed; a rejection or timeout releases
            # the room the pod held (Unreserve rejects its waiting siblings too) and requeues it.
            permit = await waiting.wait()
            if self.engine.handle.waiting_pods.get(pod.key) is waiting:
                self.engine.handle.waiting_pods.remove(pod.key)
            if not permit.ok:
                fwk.run_unreserve(cycle, pod, node)
                self.engine.state.forget_pod(pod.key)
                self.assigned_pod_deleted(pod)  # upstream handleBindingCycleError
                if pod.key not in self.pods or self._stopping:
                    self.queue.done(pod.key)
                    return
                message = f"{permit.plugin}: {permit.message}" if permit.plugin else permit.message
                self._count("unschedulable", profile, start)
                log.info("pod rejected at permit", extra={"pod": pod.key, "reason": message})
                self._failed_scheduling(pod, message)
                self._set_condition(pod, message)
                self.queue.requeue_backoff(entry)
                return
        # PreBind (VolumeBinding waits for claims to be bound) runs before taking a bind slot.
        status = await fwk.run_pre_bind(cycle, pod, node)
        pre_bind_failed = not status.ok
        if status.ok:
            async with self._bind_slots:
                if self.limiter is not None:
                    await self.limiter.acquire()
                bind_start = time.perf_counter()
                status = await fwk.run_bind(cycle, pod, node)
                self.metrics.binding_duration.observe(time.perf_counter() - bind_start)
        state = self.engine.state
        if status.ok:
            self.scheduled += 1
            self._count("scheduled", profile, start)
            if entry.initial_attempt is not None:
                attempts = "15+" if entry.attempts >= 15 else str(entry.attempts)
                self.metrics.sli_duration.labels(attempts).observe(
                    self.queue.clock() - entry.initial_attempt
                )
            self.metrics.scheduling_attempts.observe(entry.attempts)
            self.queue.done(pod.key)
            self.engine.handle.nominator.remove(pod.key)
            self.recorder.event(
                pod,
                type_="Normal",
                reason="Scheduled",
                action="Binding",
                message=f"Successfully assigned {pod.key} to {node}",
            )
            return
        self.bind_failures += 1
        self.metrics.binding_errors.inc()
        fwk.run_unreserve(cycle, pod, node)
        state.forget_pod(pod.key)
        self.assigned_pod_deleted(pod)  # upstream handleBindingCycleError
        latest = self.pods.get(pod.key)
        if latest is None or (latest.get("spec") or {}).get("nodeName"):
            # Deleted, or bound by someone else: nothing left for us to do.
            log.info("bind dropped", extra={"pod": pod.key, "reason": status.message})
            self.queue.done(pod.key)
            return
        self._count("error", profile, start)
        log.warning("bind failed", extra={"pod": pod.key, "node": node, "error": status.message})
        if pre_bind_failed:
            message = f'running PreBind plugin "{status.plugin}": {status.message}'
        else:
            message = f"Binding rejected: {status.message}"
        self._failed_scheduling(pod, message)
        self.queue.requeue_backoff(entry)

    # ----- informer events ---------------------------------------------------------------------
    def ours(self, raw: Obj) -> bool:
        spec = raw.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") in self.engine.schedulers

    def malformed(self, raw: Obj, exc: ObjectError) -> None:
        """A pod we cannot parse: tell its owner through an event, never crash."""
        meta = raw.get("metadata") or {}
        stub = PodInfo(
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name")),
            uid=str(meta.get("uid") or ""),
            labels={},
            node_name="",
            scheduler_name=str((raw.get("spec") or {}).get("schedulerName") or "default-scheduler"),
            priority=0,
            preemption_policy="",
            created=0.0,
            phase="",
            terminating=False,
            requests={},
            nonzero_cpu=0,
            nonzero_memory=0,
            host_ports=(),
            tolerations=(),
            node_selector={},
            required_node_terms=None,
            preferred_node_terms=(),
            required_affinity=(),
            required_anti_affinity=(),
            preferred_affinity=(),
            preferred_anti_affinity=(),
            spread_constraints=(),
            images=(),
            pod_group="",
            resource_version=str(meta.get("resourceVersion") or ""),
        )
        log.warning("malformed pod", extra={"pod": stub.key, "error": str(exc)})
        self._failed_scheduling(stub, f"invalid pod spec: {exc.where}")


class PodEvents:
    def __init__(self, s: LiveScheduler) -> None:
        self.s = s

    def on_add(self, obj: Obj) -> None:
        self._apply(obj, added=True)

    def on_update(self, old: Obj, new: Obj) -> None:
        if _nominated(old) != _nominated(new):
            self._sync_nomination(new)
        if not (new.get("spec") or {}).get("nodeName") and not _pod_changed(old, new):
            # upstream isPodUpdated: our own condition patch, or a resourceVersion bump, must
            # not put an unschedulable pod back in line.
            self.s.remember(object_key(new), new)
            return
        self._apply(new, added=False, old=old)

    def _sync_nomination(self, obj: Obj) -> None:
        """status.nominatedNodeName changed (by us or another scheduler): follow it."""
        key = object_key(obj)
        nominator = self.s.engine.handle.nominator
        node = _nominated(obj)
        if not node or (obj.get("spec") or {}).get("nodeName"):
            nominator.remove(key)
            return
        if nominator.node_of(key) == node:
            return
        try:
            nominator.add(parse_pod(obj), node)
        except ObjectError:
            nominator.remove(key)

    def on_delete(self, obj: Obj) -> None:
        key = object_key(obj)
        s = self.s
        s.engine.handle.nominator.remove(key)
        s.forget(key)
        waiting = s.engine.handle.waiting_pods.get(key)
        if waiting is not None:
            waiting.reject("", "pod deleted while waiting at permit")
        s.queue.delete(key)
        removed = s.engine.state.remove_pod(key)
        if removed is not None:
            s.assigned_pod_deleted(removed)

    def _apply(self, obj: Obj, *, added: bool, old: Obj | None = None) -> None:
        s = self.s
        key = object_key(obj)
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        state = s.engine.state
        if status.get("phase") in TERMINAL:
            s.engine.handle.nominator.remove(key)
            s.forget(key)
            s.queue.delete(key)
            removed = state.remove_pod(key)
            if removed is not None:
                s.assigned_pod_deleted(removed)
            return
        s.remember(key, obj)
        if spec.get("nodeName"):
            previous: PodInfo | None = None
            if old is not None and self._confirms_assumed(key, old, obj):
                # Our bind landed: the assumed pod is what parsing `obj` would give (it was
                # parsed from `old`, and only the node and server-set fields differ), so it
                # stays counted as it is, without parsing and re-indexing the pod again.
                state.confirm_pod(key)
                pod = state.pods[key]
            else:
                try:
                    pod = parse_pod(obj)
                except ObjectError as exc:
                    log.warning("cannot account bound pod", extra={"pod": key, "error": str(exc)})
                    return
                if state.node_of(key) is not None and not state.is_assumed(key):
                    previous = state.pods.get(key)
                state.add_pod(pod)  # confirms an assumed pod, or accounts someone else's
            s.engine.handle.nominator.remove(key)  # bound: no longer holds room by nomination
            s.queue.delete(key)
            if previous is None:
                s.queue.move_all(ASSIGNED_POD_ADD, new=pod, pre_check=s.cross_topology(pod))
                return
            # upstream AssignedPodUpdated: only the specific changes (labels, scale down,
            # tolerations) are dispatched; a label change goes through the same pre-check.
            for event in pod_changes(previous, pod):
                if event.action == ActionType.UPDATE_POD_LABEL:
                    check = s.cross_topology(pod)
                    s.queue.move_all(event, old=previous, new=pod, pre_check=check)
                elif event.action != ActionType.UPDATE:
                    s.queue.move_all(event, old=previous, new=pod)
            return
        if not s.ours(obj):
            return
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            s.queue.delete(key)
            return
        try:
            pod = parse_pod(obj)
        except ObjectError as exc:
            s.queue.delete(key)
            if added or key not in s.queue:
                s.malformed(obj, exc)
            return
        if state.node_of(key) is not None:
            return  # assumed and binding: the bind task owns it
        if added and pod.nominated_node:
            s.engine.handle.nominator.add(pod, pod.nominated_node)  # e.g. after a restart
        if added:
            s.queue.add(pod)
        else:
            s.queue.update(pod)

    def _confirms_assumed(self, key: str, old: Obj, new: Obj) -> bool:
        """Is `new` the pod assumed on its node, parsed from `old`, with only the binding's
        changes (spec.nodeName, resourceVersion, managedFields, the PodScheduled condition)?"""
        state = self.s.engine.state
        node = (new.get("spec") or {}).get("nodeName")
        if not state.is_assumed(key) or state.node_of(key) != node:
            return False
        assumed = state.pods.get(key)
        old_meta = old.get("metadata") or {}
        if assumed is None or not assumed.resource_version:
            return False
        if assumed.resource_version != old_meta.get("resourceVersion"):
            return False  # updated while it was being bound: parse the newest
        if (old.get("spec") or {}).get("nodeName"):
            return False
        return _but_binding(old) == _but_binding(new)


class PodGroupEvents(ObjectCache):
    """The PodGroups (scheduler-plugins CRD); a new or changed one may unblock its pods."""

    def __init__(self, s: LiveScheduler) -> None:
        super().__init__()
        self.s = s

    def on_add(self, obj: Obj) -> None:
        super().on_add(obj)
        if self.s.gang:
            self.s.queue.move_all(ClusterEvent(POD_GROUP, ActionType.ADD), new=obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        super().on_update(old, new)
        if self.s.gang and old.get("spec") != new.get("spec"):
            self.s.queue.move_all(ClusterEvent(POD_GROUP, ActionType.UPDATE), old=old, new=new)


class NodeEvents:
    def __init__(self, s: LiveScheduler) -> None:
        self.s = s

    def on_add(self, obj: Obj) -> None:
        self._upsert(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._upsert(new)

    def on_delete(self, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if not isinstance(name, str):
            return
        state = self.s.engine.state
        idx = state.index.get(name)
        gone = state.nodes[idx] if idx is not None else None
        state.remove_node(name)
        if gone is not None:
            self.s.queue.move_all(NODE_DELETE, old=gone)  # e.g. PodTopologySpread's domains

    def _upsert(self, obj: Obj) -> None:
        try:
            node = parse_node(obj)
        except ObjectError as exc:
            log.warning("malformed node ignored", extra={"error": str(exc)})
            return
        state = self.s.engine.state
        idx = state.index.get(node.name)
        old = state.nodes[idx] if idx is not None else None
        state.upsert_node(node)
        if old is None:
            self.s.queue.move_all(NODE_ADD, new=node)
            return
        # upstream nodeSchedulingPropertiesChange: one event per kind of change; a heartbeat
        # or other status-only change (conditions, annotations) raises none.
        for event in node_changes(old, node):
            self.s.queue.move_all(event, old=old, new=node)


class NamespaceEvents:
    def __init__(self, s: LiveScheduler) -> None:
        self.s = s

    def on_add(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self.s.engine.state.set_namespace(str(meta.get("name")), dict(meta.get("labels") or {}))

    def on_update(self, old: Obj, new: Obj) -> None:
        self.on_add(new)

    def on_delete(self, obj: Obj) -> None:
        self.s.engine.state.remove_namespace(str((obj.get("metadata") or {}).get("name")))


_SERVER_META = ("resourceVersion", "managedFields", "generation")


def _without(d: Obj, keys: tuple[str, ...]) -> Obj:
    return {k: v for k, v in d.items() if k not in keys}


def _strip(obj: Obj) -> Obj:
    """The pod without its status and the metadata the server maintains."""
    return {
        **_without(obj, ("status",)),
        "metadata": _without(obj.get("metadata") or {}, _SERVER_META),
    }


def _but_binding(obj: Obj) -> Obj:
    """The pod without what binding it changes: spec.nodeName, the PodScheduled condition,
    and the metadata the server maintains."""
    status = dict(obj.get("status") or {})
    conditions = [
        c for c in status.pop("conditions", None) or () if c.get("type") != "PodScheduled"
    ]
    if conditions:
        status["conditions"] = conditions
    # metadata, spec and status only: a listed pod carries no apiVersion/kind, a watched one does
    return {
        "metadata": _without(obj.get("metadata") or {}, _SERVER_META),
        "spec": _without(obj.get("spec") or {}, ("nodeName",)),
        "status": status,
    }


def _nominated(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("nominatedNodeName") or "")


def _pod_changed(old: Obj, new: Obj) -> bool:
    if (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase"):
        return True
    return _strip(old) != _strip(new)
