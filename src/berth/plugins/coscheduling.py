"""Coscheduling: all-or-nothing scheduling of the pods of a PodGroup (gang scheduling).

Follows scheduler-plugins' pkg/coscheduling/coscheduling.go and core/core.go: PodGroups are
`scheduling.x-k8s.io/v1alpha1` objects (`spec.minMember`, `spec.minResources`,
`spec.scheduleTimeoutSeconds`); pods join one with the label `scheduling.x-k8s.io/pod-group`.

- PreFilter rejects a pod whose group was denied recently (`podGroupBackoffSeconds`), whose group
  has fewer pods than minMember, or whose group's minResources exceed what the cluster has free;
- PostFilter, when a member fits nowhere, rejects the group's pods waiting at Permit so the room
  they hold is released (unless enough are already assigned, or the gap is within 10%);
- Permit lets a pod through once the group's assigned (assumed or bound) pods plus this one reach
  minMember, allowing every waiting sibling; otherwise the pod waits (scheduleTimeoutSeconds, or
  `permitWaitingTimeSeconds`);
- Unreserve (a waiting member timed out or was rejected) rejects the waiting siblings too.

- QueueSort: priority, then the PodGroup's creation time, then the group's name, so the members
  of a group are tried one after another (the engine's queue order once a profile enables it).

PodGroups and the pods of each group come from the pod_groups store, which the feed keeps on
every front (all non-terminal pods that carry the label, as upstream's pod lister).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from berth.framework.events import POD, POD_GROUP, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import (
    CycleState,
    PermitPlugin,
    PostFilterPlugin,
    PostFilterResult,
    PreFilterPlugin,
    PreFilterResult,
    QueueSortPlugin,
    ReservePlugin,
)
from berth.framework.status import SUCCESS, Code, Status, unresolvable, unschedulable
from berth.objects.errors import ObjectError
from berth.objects.pod import POD_GROUP_LABEL, PodInfo
from berth.objects.quantity import resource_value
from berth.plugins.registry import register

NAME = "Coscheduling"
POD_GROUP_NOT_FOUND = "PodGroup not found"
OPTIMISTIC_REJECTION = "optimistic rejection in PostFilter"
UNRESERVE_REJECTION = "rejection in Unreserve"


class CoschedulingArgs(BaseModel):
    """scheduler-plugins CoschedulingArgs (v1): defaults 60 and 0 seconds."""

    model_config = ConfigDict(extra="forbid")

    permitWaitingTimeSeconds: int = Field(default=60, ge=0)
    podGroupBackoffSeconds: int = Field(default=0, ge=0)


def group_key(pod: PodInfo) -> str:
    """upstream GetPodGroupFullName: "namespace/name", or "" for a pod of no group."""
    return f"{pod.namespace}/{pod.pod_group}" if pod.pod_group else ""


def min_member(pg: dict[str, Any]) -> int:
    value = (pg.get("spec") or {}).get("minMember")
    return value if isinstance(value, int) else 0


def creation_time(pg: dict[str, Any] | None) -> float | None:
    """The PodGroup's metadata.creationTimestamp as epoch seconds (None if absent or bad)."""
    if not pg:
        return None
    raw = (pg.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def wait_seconds(pg: dict[str, Any], default: float) -> float:
    """upstream GetWaitTimeDuration: spec.scheduleTimeoutSeconds when set and non-zero."""
    value = (pg.get("spec") or {}).get("scheduleTimeoutSeconds")
    if isinstance(value, int) and value > 0:
        return float(value)
    return default


class Coscheduling(PreFilterPlugin, PostFilterPlugin, ReservePlugin, PermitPlugin, QueueSortPlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        # scheduler-plugins: a new pod (a sibling may complete the group) and PodGroup changes.
        return (on(POD, ActionType.ADD), on(POD_GROUP, ActionType.ADD | ActionType.UPDATE))

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args or CoschedulingArgs(), handle=handle)
        self.clock: Callable[[], float] = time.monotonic
        self._backed_off: dict[str, float] = {}  # group key -> until (clock)
        self._permitted: dict[str, float] = {}  # groups whose minResources check passed

    # ----- lookups -----------------------------------------------------------------------------
    def pod_group(self, pod: PodInfo) -> tuple[str, dict[str, Any] | None]:
        """upstream GetPodGroup: the full name, and the PodGroup if it exists."""
        key = group_key(pod)
        if not key:
            return "", None
        return key, self.ports.pod_groups.get(key)

    def assigned(self, namespace: str, group: str, *, exclude: str = "") -> int:
        """upstream CalculateAssignedPods: the group's pods placed on a node, assumed or bound
        (this cycle's pod, assumed before Permit in Berth, is left out as upstream's snapshot
        does)."""
        pods = self.state.pods_by_label.get(namespace, {}).get((POD_GROUP_LABEL, group), {})
        waiting = self.handle.ports.waiting_pods
        count = 0
        for key in pods:
            if key == exclude:
                continue
            w = waiting.get(key) if len(waiting) else None
            if w is not None and w.result is not None and not w.result.ok:
                continue  # rejected while waiting, not yet released by its front
            count += 1
        return count

    def total_pods(self, pod: PodInfo) -> int:
        """The group's non-terminal pods, placed or not (upstream's pod lister)."""
        return self.ports.pod_groups.size(group_key(pod))

    def backoff(self, key: str, seconds: float) -> None:
        """upstream BackoffPodGroup."""
        if seconds > 0:
            self._backed_off[key] = self.clock() + seconds

    # ----- QueueSort ---------------------------------------------------------------------------
    def sort_key(self, pod: PodInfo, queued_at: float) -> tuple[Any, ...]:
        """scheduler-plugins Less: priority, then the PodGroup's creation time (the pod's own
        when it has no PodGroup) and the group's full name (the pod's key), so the members of
        a group are tried one after another."""
        key = group_key(pod)
        if key:
            created = creation_time(self.ports.pod_groups.get(key))
            return (-pod.priority, pod.created if created is None else created, key, queued_at)
        return (-pod.priority, pod.created, pod.key, queued_at)

    # ----- PreFilter ---------------------------------------------------------------------------
    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        key, pg = self.pod_group(pod)
        if pg is None:
            return None, SUCCESS
        until = self._backed_off.get(key)
        if until is not None:
            if self.clock() < until:
                return None, unresolvable(f"podGroup {key} failed recently")
            del self._backed_off[key]
        total = self.total_pods(pod)
        minimum = min_member(pg)
        if total < minimum:
            return None, unresolvable(
                f"pre-filter pod {pod.name} cannot find enough sibling pods, "
                f"current pods number: {total}, minMember of group: {minimum}"
            )
        requested = (pg.get("spec") or {}).get("minResources")
        if not requested:
            return None, SUCCESS
        permitted = self._permitted.get(key)
        if permitted is not None and self.clock() < permitted:
            return None, SUCCESS
        gap = self.resource_gap(pod, requested, minimum)
        if gap:
            return None, unresolvable(f"resource gap: {gap}")
        self._permitted[key] = self.clock() + self.args.permitWaitingTimeSeconds
        return None, SUCCESS

    def resource_gap(self, pod: PodInfo, requested: dict[str, Any], minimum: int) -> str:
        """upstream CheckClusterResource: what the cluster's free room (allocatable - requested
        of every node, not counting the group's own pods) lacks of minResources plus minMember
        pods; "" when it is enough."""
        state = self.state
        nodes = state.node_indices()
        wanted: dict[str, int] = {"pods": minimum}
        try:
            for name, quantity in requested.items():
                wanted[str(name)] = resource_value(str(name), quantity)
        except (ObjectError, ValueError, ArithmeticError, TypeError):
            return ""  # a malformed minResources is ignored rather than blocking the group
        own = self.state.pods_by_label.get(pod.namespace, {}).get(
            (POD_GROUP_LABEL, pod.pod_group), {}
        )
        gaps = []
        for name, amount in wanted.items():
            col = state.resource_index.get(name)
            if col is None:
                free = 0
            else:
                left = state.alloc[:, col].take(nodes) - state.requested[:, col].take(nodes)
                free = int(np.sum(left))
                free += sum(
                    (1 if name == "pods" else p.requests.get(name, 0)) for p in own.values()
                )
            if amount > free:
                gaps.append(f"{name}:{amount - free}")
        return " ".join(sorted(gaps))

    # ----- PostFilter --------------------------------------------------------------------------
    def post_filter(
        self, cycle: CycleState, pod: PodInfo, diagnosis: Any
    ) -> tuple[PostFilterResult | None, Status]:
        key, pg = self.pod_group(pod)
        if pg is None:
            return None, unschedulable("can not find pod group")
        minimum = min_member(pg)
        assigned = self.assigned(pod.namespace, pod.pod_group, exclude=pod.key)
        if assigned >= minimum:
            return None, Status(Code.UNSCHEDULABLE)
        # A small gap (<= 10%) to the quorum: later pods may still complete the group.
        if minimum and (minimum - assigned) / minimum <= 0.1:
            return None, Status(Code.UNSCHEDULABLE)
        self.reject_waiting(key, OPTIMISTIC_REJECTION)
        if self.args.podGroupBackoffSeconds and self.total_pods(pod) >= minimum:
            self.backoff(key, self.args.podGroupBackoffSeconds)
        self._permitted.pop(key, None)
        return None, unschedulable(
            f"PodGroup {key} gets rejected due to Pod {pod.name} is unschedulable even after "
            "PostFilter"
        )

    def reject_waiting(self, key: str, message: str) -> int:
        rejected = 0
        for waiting in self.handle.ports.waiting_pods:
            if group_key(waiting.pod) == key and not waiting.done:
                waiting.reject(self.name, message)
                rejected += 1
        return rejected

    # ----- Reserve -----------------------------------------------------------------------------
    def reserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        return SUCCESS

    def unreserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> None:
        """A member left (rejected, timed out, bind failed): its waiting siblings go too."""
        key, pg = self.pod_group(pod)
        if pg is None:
            return
        self.reject_waiting(key, UNRESERVE_REJECTION)
        self._permitted.pop(key, None)

    # ----- Permit ------------------------------------------------------------------------------
    def permit(self, cycle: CycleState, pod: PodInfo, node_name: str) -> tuple[Status, float]:
        key, pg = self.pod_group(pod)
        if not key:
            return SUCCESS, 0.0
        if pg is None:
            return unschedulable(POD_GROUP_NOT_FOUND), 0.0
        assigned = self.assigned(pod.namespace, pod.pod_group, exclude=pod.key)
        if assigned + 1 >= min_member(pg):
            for waiting in self.handle.ports.waiting_pods:
                if group_key(waiting.pod) == key:
                    waiting.allow(self.name)
            return SUCCESS, 0.0
        return Status(Code.WAIT), wait_seconds(pg, float(self.args.permitWaitingTimeSeconds))


register(Coscheduling, CoschedulingArgs)

__all__ = [
    "NAME",
    "Coscheduling",
    "CoschedulingArgs",
    "creation_time",
    "group_key",
]
