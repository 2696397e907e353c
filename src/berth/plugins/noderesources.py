"""NodeResourcesFit and NodeResourcesBalancedAllocation: requests against allocatable.

Upstream: pkg/scheduler/framework/plugins/noderesources/{fit,resource_allocation,
least_allocated,most_allocated,requested_to_capacity_ratio,balanced_allocation}.go. Integer
arithmetic (and Go's truncating division) is reproduced so scores equal kube-scheduler's.
Every computation is over the node columns of the cluster state.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from berth.framework.events import (
    DEVICE_CLASS,
    NODE,
    POD,
    ActionType,
    ClusterEventWithHint,
    on,
)
from berth.framework.plugin import (
    MAX_NODE_SCORE,
    CycleState,
    FilterPlugin,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ScorePlugin,
)
from berth.framework.status import SKIP, SUCCESS, Status, unresolvable, unschedulable
from berth.objects.dra import RESOURCE_DEVICE_CLASS_PREFIX
from berth.objects.node import NodeInfo
from berth.objects.pod import PodInfo
from berth.plugins.extendedresources import class_device_counts
from berth.plugins.helpers import broken_linear
from berth.plugins.registry import register
from berth.state.cluster import CPU, MEMORY, PODS, BoolArray, IndexArray, IntArray

FIT = "NodeResourcesFit"
BALANCED = "NodeResourcesBalancedAllocation"
REASON_TOO_MANY_PODS = "Too many pods"
REASON_INSUFFICIENT = "Insufficient %s"
MAX_CUSTOM_PRIORITY_SCORE = 10
NATIVE = ("cpu", "memory", "ephemeral-storage")


def is_scalar_resource(name: str) -> bool:
    """Extended, hugepages, prefixed-native and attachable-volume resources (upstream helper)."""
    return "/" in name or name.startswith(("hugepages-", "attachable-volumes-"))


def is_extended_resource(name: str) -> bool:
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


class ResourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    weight: int = 1

    @model_validator(mode="after")
    def _weight(self) -> ResourceSpec:
        if not 0 < self.weight <= 100:
            raise ValueError(f"weight: resource weight of {self.name} not in valid range (0, 100]")
        return self


class ShapePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    utilization: int = Field(ge=0, le=100)
    score: int = Field(ge=0, le=MAX_CUSTOM_PRIORITY_SCORE)


class RequestedToCapacityRatio(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shape: list[ShapePoint]

    @field_validator("shape")
    @classmethod
    def _shape(cls, shape: list[ShapePoint]) -> list[ShapePoint]:
        return validate_shape(shape)


def validate_shape(shape: list[ShapePoint]) -> list[ShapePoint]:
    """upstream validateFunctionShape (validation_pluginargs.go:176), beyond the points' ranges."""
    if not shape:
        raise ValueError("at least one point must be specified")
    for prev, cur in itertools.pairwise(shape):
        if cur.utilization <= prev.utilization:
            raise ValueError("values must be sorted in increasing order")
    return shape


def _default_resources() -> list[ResourceSpec]:
    return [ResourceSpec(name="cpu"), ResourceSpec(name="memory")]


class ScoringStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"] = "LeastAllocated"
    resources: list[ResourceSpec] = Field(default_factory=_default_resources)
    requestedToCapacityRatio: RequestedToCapacityRatio | None = None

    @model_validator(mode="after")
    def _rtc(self) -> ScoringStrategy:
        if not self.resources:
            self.resources = _default_resources()
        if self.type == "RequestedToCapacityRatio" and self.requestedToCapacityRatio is None:
            raise ValueError(
                "requestedToCapacityRatio: must be specified when type is RequestedToCapacityRatio"
            )
        if self.type != "RequestedToCapacityRatio" and self.requestedToCapacityRatio is not None:
            raise ValueError(
                "requestedToCapacityRatio: must be nil when type is not RequestedToCapacityRatio"
            )
        return self


class NodeResourcesFitArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ignoredResources: list[str] = Field(default_factory=list)
    ignoredResourceGroups: list[str] = Field(default_factory=list)
    scoringStrategy: ScoringStrategy = Field(default_factory=ScoringStrategy)

    @field_validator("ignoredResourceGroups")
    @classmethod
    def _groups(cls, groups: list[str]) -> list[str]:
        for g in groups:
            if "/" in g:
                raise ValueError(f"{g!r}: resource group name can't contain '/'")
        return groups


class BalancedAllocationArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resources: list[ResourceSpec] = Field(default_factory=_default_resources)

    @field_validator("resources")
    @classmethod
    def _resources(cls, resources: list[ResourceSpec]) -> list[ResourceSpec]:
        seen = set()
        for r in resources:
            if r.name in seen:
                raise ValueError(f"Duplicate value: {r.name!r}")
            if r.weight != 1:
                raise ValueError(f"resource {r.name!r}: weight must be 1")
            seen.add(r.name)
        return resources or _default_resources()


# ----------------------------------------------------------------------------------------------
class NodeResourcesFit(PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin):
    name = FIT

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args, handle=handle)
        self.fit_args: NodeResourcesFitArgs = args or NodeResourcesFitArgs()
        strategy = self.fit_args.scoringStrategy
        self.strategy = strategy.type
        self.score_resources = [(r.name, r.weight) for r in strategy.resources]
        self.shape: list[tuple[int, int]] = []
        if strategy.requestedToCapacityRatio is not None:
            self.shape = [
                (p.utilization, p.score * (MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE))
                for p in strategy.requestedToCapacityRatio.shape
            ]
        self.ignored = set(self.fit_args.ignoredResources)
        self.ignored_groups = set(self.fit_args.ignoredResourceGroups)

    # --- queueing (upstream EventsToRegister and its QueueingHints) -----------------------------
    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        return (
            on(POD, ActionType.DELETE | ActionType.UPDATE_POD_SCALE_DOWN, self._after_pod_event),
            on(NODE, ActionType.ADD | ActionType.UPDATE_NODE_ALLOCATABLE, self._after_node_change),
            # a class may now serve an extended resource the pod asks for
            on(DEVICE_CLASS, ActionType.ADD | ActionType.UPDATE, self._after_device_class),
        )

    def _after_device_class(self, pod: PodInfo, old: Any, new: Any) -> bool:
        """upstream isSchedulableAfterDeviceClassEvent."""
        spec = (new.get("spec") if isinstance(new, dict) else None) or {}
        name = str(spec.get("extendedResourceName") or "")
        if isinstance(old, dict):
            if str((old.get("spec") or {}).get("extendedResourceName") or "") == name:
                return False
        elif isinstance(new, dict):
            cls = str((new.get("metadata") or {}).get("name") or "")
            if RESOURCE_DEVICE_CLASS_PREFIX + cls in pod.requests:
                return True
        return bool(name) and name in pod.requests

    def _after_pod_event(self, pod: PodInfo, old: Any, new: Any) -> bool:
        """A bound pod deleted, or scaled down in a resource this pod asks for, frees room."""
        if not isinstance(old, PodInfo):
            return True
        if not isinstance(new, PodInfo):
            return True  # deleted from a node (the only deletions raised)
        return any(new.requests.get(r, 0) < old.requests.get(r, 0) for r, _ in self._checked(pod))

    def _after_node_change(self, pod: PodInfo, old: Any, new: Any) -> bool:
        """upstream isSchedulableAfterNodeChange: the node's allocatable could hold the pod
        (ignoring the pods on it), and, for an update, grew in a resource the pod asks for (or
        in pods)."""
        if not isinstance(new, NodeInfo):
            return True
        checked = [
            (r, amount)
            for r, amount in self._checked(pod)
            if not self._delegated(r, new.allocatable.get(r, 0))
        ]
        if any(new.allocatable.get(r, 0) < amount for r, amount in checked):
            return False
        if not isinstance(old, NodeInfo):
            return True
        grown = [r for r, _ in checked] + ["pods"]
        return any(new.allocatable.get(r, 0) > old.allocatable.get(r, 0) for r in grown)

    # --- filter ---------------------------------------------------------------------------------
    def _checked(self, pod: PodInfo) -> list[tuple[str, int]]:
        """Requested resources the filter checks, in upstream's order (native, then scalar)."""
        out = [(r, pod.requests[r]) for r in NATIVE if pod.requests.get(r, 0) > 0]
        for r in sorted(pod.requests):
            amount = pod.requests[r]
            if r in NATIVE or amount <= 0 or not is_scalar_resource(r):
                continue
            if is_extended_resource(r) and (
                r in self.ignored or r.split("/", 1)[0] in self.ignored_groups
            ):
                continue
            out.append((r, amount))
        return out

    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        cycle.write(FIT, self._checked(pod))
        return None, SUCCESS

    def _mapped(self, resource: str) -> bool:
        """A DeviceClass serves this extended resource (upstream shouldDelegateResourceToDRA's
        class lookup)."""
        return self.ports.dra.device_class_for(resource) is not None

    def _delegated(self, resource: str, allocatable: int) -> bool:
        """upstream shouldDelegateResourceToDRA: a node that does not advertise the resource
        leaves it to DynamicResources when a class serves it."""
        return allocatable <= 0 and self._mapped(resource)

    def _columns(self, nodes: IndexArray, resource: str) -> tuple[IntArray, IntArray]:
        col = self.state.resource_index.get(resource)
        if col is None:
            zero = np.zeros(len(nodes), dtype=np.int64)
            return zero, zero
        return self.state.alloc[:, col].take(nodes), self.state.requested[:, col].take(nodes)

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        checked = cycle.read(FIT)
        if checked is None:
            checked = self._checked(pod)
        state = self.state
        # requested + 1 <= allocatable, for the pod count
        ok: BoolArray = state.requested[:, PODS].take(nodes) < state.alloc[:, PODS].take(nodes)
        for resource, amount in checked:
            alloc, used = self._columns(nodes, resource)
            fits = amount <= alloc - used
            if self._mapped(resource):
                fits |= alloc <= 0
            ok &= fits
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        checked = cycle.read(FIT)
        if checked is None:
            checked = self._checked(pod)
        state = self.state
        one = np.array([node], dtype=np.intp)
        reasons = []
        unresolvable_ = False
        if state.requested[node, PODS] + 1 > state.alloc[node, PODS]:
            reasons.append(REASON_TOO_MANY_PODS)
        for resource, amount in checked:
            alloc, used = self._columns(one, resource)
            if self._delegated(resource, int(alloc[0])):
                continue
            if amount > alloc[0] - used[0]:
                reasons.append(REASON_INSUFFICIENT % resource)
                unresolvable_ = unresolvable_ or amount > alloc[0]
        if not reasons:
            return SUCCESS
        return unresolvable(*reasons) if unresolvable_ else unschedulable(*reasons)

    # --- score ----------------------------------------------------------------------------------
    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        return SUCCESS

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        if self.strategy == "RequestedToCapacityRatio":
            allocs, reqs, weights = _allocation_matrix(
                self, pod, nodes, self.score_resources, non_zero=True
            )
            return self._rtc(allocs, reqs, weights, allocs != 0)
        # upstream leastResourceScorer / mostResourceScorer: per resource with allocatable > 0,
        # a 0..100 score weighted by the resource's weight; the node's score is the weighted
        # sum over the weights of the resources that counted (Go integer division throughout).
        least = self.strategy == "LeastAllocated"
        n = len(nodes)
        total = np.zeros(n, dtype=np.int64)
        weight_sum: IntArray | int = 0
        for alloc, req, weight, _ in _allocation_columns(
            self, pod, nodes, self.score_resources, non_zero=True
        ):
            if np.count_nonzero(alloc) == n:  # the usual case: no per-node masking needed
                if least:
                    per = np.where(req > alloc, 0, ((alloc - req) * MAX_NODE_SCORE) // alloc)
                else:
                    per = (np.minimum(req, alloc) * MAX_NODE_SCORE) // alloc
                total += per * weight
                weight_sum = weight_sum + weight
                continue
            valid = alloc != 0
            safe = np.where(valid, alloc, 1)
            if least:
                per = np.where(req > alloc, 0, ((alloc - req) * MAX_NODE_SCORE) // safe)
            else:
                per = (np.minimum(req, alloc) * MAX_NODE_SCORE) // safe
            total += np.where(valid, per, 0) * weight
            weight_sum = weight_sum + np.where(valid, weight, 0)
        if isinstance(weight_sum, int):
            return total // weight_sum if weight_sum else total
        out: IntArray = np.where(
            weight_sum == 0, 0, total // np.where(weight_sum == 0, 1, weight_sum)
        )
        return out.astype(np.int64)

    def _rtc(
        self, allocs: IntArray, reqs: IntArray, weights: IntArray, valid: BoolArray
    ) -> IntArray:
        safe = np.where(valid, allocs, 1)
        util = np.where(reqs > allocs, -1, (reqs * 100) // safe)
        per = np.where(util < 0, self._shape_at(np.full_like(util, 100)), self._shape_at(util))
        use = valid & (per > 0)
        node_score = np.where(use, per * weights, 0).sum(axis=1)
        weight_sum = np.where(use, weights, 0).sum(axis=1)
        ratio = node_score / np.where(weight_sum == 0, 1, weight_sum)
        rounded = np.floor(ratio + 0.5)  # math.Round on non-negative values
        out: IntArray = np.where(weight_sum == 0, 0, rounded).astype(np.int64)
        return out

    def _shape_at(self, p: IntArray) -> IntArray:
        return broken_linear(self.shape, p)


def _allocation_columns(
    plugin: NodeResourcesFit | NodeResourcesBalancedAllocation,
    pod: PodInfo,
    nodes: IndexArray,
    resources: list[tuple[str, int]],
    *,
    non_zero: bool,
) -> list[tuple[IntArray, IntArray, int, int]]:
    """(allocatable, requested incl. the pod, weight, the pod's own request) over `nodes` for
    each configured resource that takes part in the score.

    upstream calculateResourceAllocatableRequest: cpu/memory use non-zero requests when scoring
    with `non_zero`; a scalar resource the pod does not request, and any resource that is neither
    native (cpu, memory, ephemeral-storage) nor scalar, is left out (allocatable 0 there, so it
    never counts)."""
    state = plugin.state
    out: list[tuple[IntArray, IntArray, int, int]] = []
    for name, weight in resources:
        col = state.resource_index.get(name)
        if is_scalar_resource(name) and pod.requests.get(name, 0) > 0:
            served = _served_by_devices(plugin, pod, nodes, name, col)
            if served is not None:
                out.append((*served, weight, pod.requests[name]))
                continue
        if col is None or (name not in NATIVE and not is_scalar_resource(name)):
            # upstream scores cpu, memory, ephemeral-storage and scalar resources only; any
            # other name (`pods`, `storage`) is (0, 0) there and left out of the score.
            continue
        if non_zero and name == "cpu":
            want = pod.container_nonzero[0] if pod.container_nonzero else pod.nonzero_cpu
            req = state.nonzero[:, CPU].take(nodes) + want
        elif non_zero and name == "memory":
            want = pod.container_nonzero[1] if pod.container_nonzero else pod.nonzero_memory
            req = state.nonzero[:, MEMORY].take(nodes) + want
        else:
            want = pod.requests.get(name, 0)
            if is_scalar_resource(name) and want == 0:
                continue
            req = state.requested[:, col].take(nodes) + want
        out.append((state.alloc[:, col].take(nodes), req, weight, want))
    return out


def _served_by_devices(
    plugin: NodeResourcesFit | NodeResourcesBalancedAllocation,
    pod: PodInfo,
    nodes: IndexArray,
    name: str,
    col: int | None,
) -> tuple[IntArray, IntArray] | None:
    """upstream calculateResourceAllocatableRequest for an extended resource a DeviceClass
    serves: on a node that does not advertise it, the class's devices the node sees are its
    allocatable and the allocated ones its requests (nodes with neither keep theirs)."""
    cls = plugin.ports.dra.device_class_for(name)
    if cls is None:
        return None
    state = plugin.state
    zero = np.zeros(len(nodes), dtype=np.int64)
    alloc = state.alloc[:, col].take(nodes) if col is not None else zero
    used = state.requested[:, col].take(nodes) if col is not None else zero
    capacity, taken = class_device_counts(state, plugin.ports.dra, cls)
    devices, allocated = capacity.take(nodes), taken.take(nodes)
    from_devices = (alloc == 0) & (devices > 0)
    alloc = np.where(from_devices, devices, alloc)
    used = np.where(from_devices, allocated, used)
    return alloc, used + pod.requests[name]


def _allocation_matrix(
    plugin: NodeResourcesFit | NodeResourcesBalancedAllocation,
    pod: PodInfo,
    nodes: IndexArray,
    resources: list[tuple[str, int]],
    *,
    non_zero: bool,
) -> tuple[IntArray, IntArray, IntArray]:
    """`_allocation_columns` as node x resource matrices (allocatable 0 for a resource left
    out), for the less common scorers."""
    n = len(nodes)
    columns = _allocation_columns(plugin, pod, nodes, resources, non_zero=non_zero)
    if not columns:
        empty = np.zeros((n, 1), dtype=np.int64)
        return empty, empty, np.zeros(1, dtype=np.int64)
    allocs = np.stack([c[0] for c in columns], axis=1)
    reqs = np.stack([c[1] for c in columns], axis=1)
    return allocs, reqs, np.array([c[2] for c in columns], dtype=np.int64)


# ----------------------------------------------------------------------------------------------
class NodeResourcesBalancedAllocation(PreScorePlugin, ScorePlugin):
    name = BALANCED

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args, handle=handle)
        parsed: BalancedAllocationArgs = args or BalancedAllocationArgs()
        self.resources = [(r.name, 1) for r in parsed.resources]

    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        if all(pod.requests.get(name, 0) == 0 for name, _ in self.resources):
            return SKIP
        return SUCCESS

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        if all(pod.requests.get(name, 0) == 0 for name, _ in self.resources):
            return np.zeros(len(nodes), dtype=np.int64)
        columns = _allocation_columns(self, pod, nodes, self.resources, non_zero=False)
        if not columns:  # no fraction either way: both balances are 100
            return np.full(len(nodes), MAX_NODE_SCORE * 3 // 4, dtype=np.int64)
        if len(columns) == 2:
            (a0, r0, _, w0), (a1, r1, _, w1) = columns
            n = len(nodes)  # the usual case: cpu and memory on every node
            if np.count_nonzero(a0) == n and np.count_nonzero(a1) == n:
                before = _balance_of_two(a0, r0 - w0, a1, r1 - w1)
                after = _balance_of_two(a0, r0, a1, r1)
                fast: IntArray = MAX_NODE_SCORE // 2 + (MAX_NODE_SCORE // 2 + after - before) // 2
                return fast
        allocs = np.stack([c[0] for c in columns], axis=1)
        with_pod = np.stack([c[1] for c in columns], axis=1)
        without = with_pod - np.array([c[3] for c in columns], dtype=np.int64)
        # upstream balancedResourceScorer (balanced_allocation.go:204): the change in balance
        # the pod makes, mapped back to [50, 100] (both balances are in [50, 100]).
        before = _balance(allocs, without)
        after = _balance(allocs, with_pod)
        out: IntArray = MAX_NODE_SCORE // 2 + (MAX_NODE_SCORE // 2 + after - before) // 2
        return out


def _balance_of_two(a0: IntArray, r0: IntArray, a1: IntArray, r1: IntArray) -> IntArray:
    """`_balance` of two resources that every node has (allocatable > 0), from the columns
    themselves: the same arithmetic without building the matrices (a third of the plugin's
    time was stacking and masking them)."""
    std = np.abs((np.minimum(r0 / a0, 1.0) - np.minimum(r1 / a1, 1.0)) / 2)
    out: IntArray = np.trunc((1 - std) * MAX_NODE_SCORE).astype(np.int64)
    return out


def _balance(allocs: IntArray, reqs: IntArray) -> IntArray:
    """upstream balancedResourceScore (balanced_allocation.go:220): (1 - std) * 100 over the
    fractions requested/allocatable (capped at 1) of the resources with allocatable > 0; the
    std of two fractions is half their difference."""
    valid = allocs != 0
    frac = np.minimum(reqs / np.where(valid, allocs, 1), 1.0)
    count = valid.sum(axis=1)
    std = np.zeros(len(allocs), dtype=np.float64)
    if valid.all() and allocs.shape[1] == 2:  # the usual case: cpu and memory on every node
        std = np.abs((frac[:, 0] - frac[:, 1]) / 2)
    else:
        two = count == 2
        if two.any():
            # the two valid fractions of each such node, in resource order
            order = np.argsort(~valid[two], axis=1, kind="stable")[:, :2]
            f = np.take_along_axis(frac[two], order, axis=1)
            std[two] = np.abs((f[:, 0] - f[:, 1]) / 2)
        many = count > 2
        if many.any():
            v = valid[many]
            fm = np.where(v, frac[many], 0.0)
            mean = fm.sum(axis=1) / count[many]
            sq = np.where(v, (frac[many] - mean[:, None]) ** 2, 0.0).sum(axis=1)
            std[many] = np.sqrt(sq / count[many])
    out: IntArray = np.trunc((1 - std) * MAX_NODE_SCORE).astype(np.int64)
    return out


register(NodeResourcesFit, NodeResourcesFitArgs)
register(NodeResourcesBalancedAllocation, BalancedAllocationArgs)
