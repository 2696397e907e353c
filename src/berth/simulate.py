"""`berth simulate`: schedule the pending pods of a cluster dump offline and explain each decision.

Bound pods are loaded into the state; pending pods whose schedulerName matches a profile are
taken in queue order (priority descending, then creation time) and each placement is assumed,
so later pods see earlier ones, exactly as the live scheduler's cache would. When a pod fits
nowhere and DefaultPreemption nominates a node, the victims vanish from the state at once (there
is no graceful termination offline) and the pod is placed on its nominated node right away.

Gang scheduling (a profile enabling Coscheduling): pending pods are ordered by priority, then
their PodGroup's creation time and name, so a group's pods are decided one after another. A pod
held at Permit (its group is short of minMember) keeps its room and its decision is reported
once the group is complete (then all are placed) or rejected (a member fit nowhere: the waiting
members are released and reported pending with Coscheduling's reason). Offline no time passes,
so Permit timeouts never fire; instead, when the queue ends with a group still short of
minMember, its held pods are released and reported pending.

Scheduling gates (PreEnqueue, SchedulingGates): a pending pod a PreEnqueue plugin rejects is not
tried and takes no room; it is reported pending, in queue order, with `"gated": true`, no
per-node reasons and the message `SchedulingGates: waiting for scheduling gates: [a b]`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from berth.config.loader import Config
from berth.dump import Dump
from berth.engine import Engine
from berth.framework.algorithm import FitError
from berth.framework.plugin import CycleState
from berth.framework.runtime import FrameworkError
from berth.framework.status import SUCCESS, Code, Status
from berth.metrics.refresher import Refresher
from berth.objects import ObjectError, parse_node, parse_pod
from berth.objects.pod import PodInfo
from berth.plugins.coscheduling import (
    GROUP_PODS_SERVICE,
    PODGROUP_SERVICE,
    creation_time,
    group_key,
    min_member,
)
from berth.plugins.coscheduling import NAME as COSCHEDULING
from berth.plugins.defaultbinder import BINDER_SERVICE
from berth.plugins.defaultpreemption import PDB_SERVICE
from berth.plugins.metricscore import SERVICE as METRICS_SERVICE
from berth.state.cluster import ClusterState

TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class Decision:
    pod: str
    node: str | None
    reasons: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, int] = field(default_factory=dict)
    plugin_scores: dict[str, dict[str, int]] = field(default_factory=dict)
    message: str = ""
    error: str = ""
    preempted: list[str] = field(default_factory=list)
    nominated_node: str = ""
    gated: bool = False  # held by a PreEnqueue plugin (scheduling gates): never tried

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pod": self.pod,
            "node": self.node,
            "reasons": self.reasons,
            "scores": self.scores,
            "message": self.message,
        }
        if self.plugin_scores:
            out["pluginScores"] = self.plugin_scores
        if self.nominated_node:
            out["nominatedNode"] = self.nominated_node
            out["preempted"] = self.preempted
        if self.gated:
            out["gated"] = True
        if self.error:
            out["error"] = self.error
        return out


def _key(raw: dict[str, Any]) -> str:
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"


def _with_priority(raw: dict[str, Any], classes: dict[str, int], default: int | None) -> Any:
    """Fill spec.priority from the PriorityClass, as the API server's admission would have."""
    spec = raw.get("spec")
    if not isinstance(spec, dict) or spec.get("priority") is not None:
        return raw
    name = spec.get("priorityClassName")
    value = classes.get(name) if isinstance(name, str) else default
    if value is None:
        return raw
    return {**raw, "spec": {**spec, "priority": value}}


class Simulation:
    """Loads a dump into an Engine and schedules its pending pods one by one."""

    def __init__(self, *, dump: Dump, config: Config, seed: int | None = None) -> None:
        self.dump = dump
        state = ClusterState()
        pdbs = [o for o in dump.other if o.get("kind") == "PodDisruptionBudget"]
        self.pod_groups: dict[str, dict[str, Any]] = {}
        for pg in dump.pod_groups:
            meta = pg.get("metadata") or {}
            if isinstance(meta, dict):
                key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
                self.pod_groups[key] = pg
        self.group_sizes: dict[str, int] = {}
        services: dict[str, Any] = {
            BINDER_SERVICE: self._bind,
            PDB_SERVICE: lambda: pdbs,
            PODGROUP_SERVICE: self.pod_groups.get,
            GROUP_PODS_SERVICE: lambda ns, name: self.group_sizes.get(f"{ns}/{name}", 0),
        }
        self.refresher: Refresher | None = None
        self._sampled = False
        if config.model.metricSources:
            self.refresher = Refresher.from_config(config, state=state)
            services[METRICS_SERVICE] = self.refresher.table
        self.engine = Engine(config=config, state=state, seed=seed, services=services)
        self.load_errors: list[str] = list(dump.malformed)
        self.pending: list[tuple[dict[str, Any], PodInfo | None, str]] = []
        # Decisions of pods held at Permit, reported when their wait ends.
        self._held: dict[str, tuple[Decision, CycleState]] = {}
        self.gang = any(
            COSCHEDULING in (p.name for p in sch.framework.permit)
            for sch in self.engine.schedulers.values()
        )
        self._load()

    async def _bind(self, pod: PodInfo, node_name: str) -> Status:
        self.engine.state.add_pod(pod, node_name)
        return SUCCESS

    def _load(self) -> None:
        state = self.engine.state
        for ns in self.dump.namespaces:
            meta = ns.get("metadata") or {}
            if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                state.set_namespace(meta["name"], dict(meta.get("labels") or {}))
        for obj in self.dump.other:
            self.engine.workloads.upsert(obj)  # Services and controllers, for default spreading
            self.engine.volumes.upsert(obj)  # PVs, PVCs, StorageClasses, CSINodes
            self.engine.dra.upsert(obj)  # DeviceClasses, ResourceSlices, ResourceClaims
        for raw in self.dump.nodes:
            try:
                state.upsert_node(parse_node(raw))
            except ObjectError as exc:
                self.load_errors.append(str(exc))
        classes: dict[str, int] = {}
        default: int | None = None
        for pc in self.dump.priority_classes:
            meta = pc.get("metadata") or {}
            value = pc.get("value")
            if isinstance(meta, dict) and isinstance(value, int):
                classes[str(meta.get("name"))] = value
                if pc.get("globalDefault"):
                    default = value
        for raw in self.dump.pods:
            raw = _with_priority(raw, classes, default)
            spec = raw.get("spec") if isinstance(raw.get("spec"), dict) else {}
            status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
            assert isinstance(spec, dict) and isinstance(status, dict)
            if status.get("phase") in TERMINAL_PHASES:
                continue
            group = self._group_of(raw)
            if group:
                self.group_sizes[group] = self.group_sizes.get(group, 0) + 1
            if spec.get("nodeName"):
                try:
                    state.add_pod(parse_pod(raw))
                except ObjectError as exc:
                    self.load_errors.append(str(exc))
                continue
            scheduler = spec.get("schedulerName") or "default-scheduler"
            if scheduler not in self.engine.schedulers:
                continue
            meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
            assert isinstance(meta, dict)
            if meta.get("deletionTimestamp"):
                continue
            try:
                self.pending.append((raw, parse_pod(raw), ""))
            except ObjectError as exc:
                self.pending.append((raw, None, str(exc)))

        def order(item: tuple[dict[str, Any], PodInfo | None, str]) -> tuple[Any, ...]:
            raw, pod, _ = item
            if pod is None:
                return (0, 0.0, _key(raw))
            if self.gang:
                # Coscheduling's QueueSort: priority, group creation time, group name.
                key = group_key(pod)
                created = creation_time(self.pod_groups.get(key)) if key else None
                return (
                    -pod.priority,
                    pod.created if created is None else created,
                    key or pod.key,
                    pod.created,
                    pod.key,
                )
            return (-pod.priority, pod.created, pod.key)

        self.pending.sort(key=order)

    @staticmethod
    def _group_of(raw: dict[str, Any]) -> str:
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
        assert isinstance(meta, dict)
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        assert isinstance(labels, dict)
        name = labels.get("scheduling.x-k8s.io/pod-group")
        return f"{meta.get('namespace') or 'default'}/{name}" if name else ""

    async def _settle(self) -> list[Decision]:
        """Finish the pods whose wait at Permit ended: bind the allowed, release the rejected
        (whose Unreserve may reject more, hence the loop)."""
        out: list[Decision] = []
        waiting = self.engine.handle.waiting_pods
        while True:
            ended = [w for w in waiting if w.done]
            if not ended:
                return out
            for w in ended:
                waiting.remove(w.key)
                decision, cycle = self._held.pop(w.key)
                fwk = self.engine.schedulers[w.pod.scheduler_name].framework
                status = w.result or SUCCESS
                if status.ok:
                    status = await fwk.run_pre_bind(cycle, w.pod, w.node)
                if status.ok:
                    status = await fwk.run_bind(cycle, w.pod, w.node)
                if status.ok:
                    self.engine.state.assumed.discard(w.key)
                else:
                    fwk.run_unreserve(cycle, w.pod, w.node)
                    self.engine.state.forget_pod(w.key)
                    decision.node = None
                    decision.message = f"{status.plugin}: {status.message or status.code}"
                    if status.code == Code.ERROR:
                        decision.error = decision.message
                out.append(decision)

    async def _release_incomplete(self) -> list[Decision]:
        """The queue is over: groups still short of minMember give their room back."""
        for w in self.engine.handle.waiting_pods:
            key = group_key(w.pod)
            pg = self.pod_groups.get(key) or {}
            placed = sum(1 for o in self.engine.handle.waiting_pods if group_key(o.pod) == key)
            w.reject(
                COSCHEDULING,
                f"PodGroup {key} did not reach minMember {min_member(pg)} ({placed} pods could "
                "be placed) before the simulation's queue ended",
            )
        return await self._settle()

    def sample_metrics(self) -> list[str]:
        """Take the one sample of every metric source the run scores with (node annotations
        work offline; a source that cannot be reached drops out of the score, as in the live
        scheduler). Returns a warning per source that was down; `run` calls it if needed."""
        if self.refresher is None or self._sampled:
            return []
        self._sampled = True
        refresher = self.refresher

        async def once() -> dict[str, bool]:
            try:
                return await refresher.refresh_once()
            finally:
                await refresher.stop()

        up = asyncio.run(once())
        return [
            f"metric source {name!r} unavailable; scored without it"
            for name, ok in up.items()
            if not ok
        ]

    def run(self) -> Iterator[Decision]:
        self.sample_metrics()
        loop = asyncio.new_event_loop()
        try:
            for raw, pod, problem in self.pending:
                if pod is None:
                    yield Decision(pod=_key(raw), node=None, error=problem, message=problem)
                    continue
                gate = self.engine.schedulers[pod.scheduler_name].framework.run_pre_enqueue(pod)
                if not gate.ok:
                    # Gated (upstream keeps it out of the active queue): not tried at all.
                    message = f"{gate.plugin}: {gate.message or gate.code}"
                    yield Decision(pod=pod.key, node=None, message=message, gated=True)
                    continue
                decision = loop.run_until_complete(self._decide(pod))
                if pod.key not in self._held:
                    yield decision
                if self._held:
                    yield from loop.run_until_complete(self._settle())
            if self._held:
                yield from loop.run_until_complete(self._release_incomplete())
        finally:
            loop.close()

    async def _decide(self, pod: PodInfo) -> Decision:
        scheduler = self.engine.schedulers[pod.scheduler_name]
        fwk = scheduler.framework
        preempted: list[str] = []
        try:
            try:
                result = scheduler.schedule(pod, explain_scores=True)
            except FitError as fit:
                if not fit.nominated_node:
                    raise
                # Offline, victims vanish at once: evict them and place the pod on its node.
                for victim in fit.victims:
                    self.engine.state.remove_pod(victim.key)
                    preempted.append(victim.key)
                pod.nominated_node = fit.nominated_node
                result = scheduler.schedule(pod, explain_scores=True)
        except FitError as fit:
            reasons = {n: list(s.reasons) for n, s in fit.diagnosis.node_statuses().items()}
            return Decision(
                pod=pod.key,
                node=None,
                reasons=reasons,
                message=fit.message,
                preempted=preempted,
                nominated_node=pod.nominated_node if preempted else "",
            )
        except FrameworkError as exc:
            return Decision(pod=pod.key, node=None, error=str(exc), message=str(exc))
        reasons = {n: list(s.reasons) for n, s in result.diagnosis.node_statuses().items()}
        decision = Decision(
            pod=pod.key,
            node=result.node,
            reasons=reasons,
            scores=result.scores,
            plugin_scores=result.plugin_scores,
            preempted=preempted,
            nominated_node=pod.nominated_node if preempted else "",
        )
        self.engine.state.assume_pod(pod, result.node)
        status = fwk.run_reserve(result.cycle, pod, result.node)
        if status.ok:
            status, _ = fwk.run_permit(result.cycle, pod, result.node)
            if status.code == Code.WAIT:
                # Held at Permit: it keeps its room; _settle reports it when the wait ends.
                self._held[pod.key] = (decision, result.cycle)
                return decision
        if status.ok:
            status = await fwk.run_pre_bind(result.cycle, pod, result.node)
        if status.ok:
            status = await fwk.run_bind(result.cycle, pod, result.node)
        if not status.ok:
            fwk.run_unreserve(result.cycle, pod, result.node)
            self.engine.state.forget_pod(pod.key)
            decision.node = None
            decision.message = f"{status.plugin}: {status.message or status.code}"
            if status.code == Code.ERROR:
                decision.error = decision.message
        else:
            self.engine.state.assumed.discard(pod.key)
        return decision


def to_json_line(decision: Decision) -> str:
    return json.dumps(decision.to_json(), sort_keys=False)


def format_table(decisions: list[Decision]) -> str:
    """A table for people: pod, node, best score or why it is pending."""
    rows = [("POD", "NODE", "SCORE", "WHY")]
    for d in decisions:
        if d.node:
            score = d.scores.get(d.node)
            why = f"preempted {', '.join(d.preempted)}" if d.preempted else ""
            rows.append((d.pod, d.node, "" if score is None else str(score), why))
        else:
            rows.append((d.pod, "<pending>", "", d.error or d.message))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        lines.append(
            "  ".join(r[i].ljust(widths[i]) for i in range(3)) + ("  " + r[3] if r[3] else "")
        )
    placed = sum(1 for d in decisions if d.node)
    lines.append("")
    lines.append(f"{placed}/{len(decisions)} pending pods placed")
    return "\n".join(line.rstrip() for line in lines)
