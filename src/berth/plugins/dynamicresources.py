"""DynamicResources: a pod's ResourceClaims get devices, and only nodes that can give them pass.

Upstream: pkg/scheduler/framework/plugins/dynamicresources/dynamicresources.go (1.37).
- PreEnqueue: a pod whose claim does not exist yet (or is being deleted, or was not made for it)
  is held at the gate with upstream's reason until a claim event or the pod's own update (its
  `status.resourceClaimStatuses`) may change that.
- PreFilter: pods without claims Skip. The same claim checks, a claim in use by another pod, one
  being allocated for another pod, or a request naming a class that does not exist is
  UnschedulableAndUnresolvable with upstream's reason.
- Filter: an allocated claim's `nodeSelector` must accept the node, and its devices' binding
  conditions must not have failed or timed out (`resourceclaim not available on the node`);
  claims to allocate need the structured allocator to succeed on the node (`cannot allocate all
  claims`). A CEL or class error fails the attempt (Error).
- Score: prioritized lists (`firstAvailable`): 8 - i per claim for the i-th subrequest chosen,
  normalized to 0..100.
- Reserve puts the allocation in flight (the next pod sees its devices taken); Unreserve takes
  it back; PreBind writes finalizer, `status.allocation` and `status.reservedFor` through the
  front's claim writer (offline: into the state), then, live, waits for the devices' binding
  conditions (`bindingTimeout`); PostFilter deallocates an allocated claim that no node could use
  and nobody else holds.
- Extended resources a DeviceClass serves (extendeddynamicresources.go, the pod-side helpers in
  plugins/extendedresources.py): PreFilter adds the pod's special claim (an earlier cycle's, or
  one in memory), Filter gives each set of resources the nodes leave to DRA its own variant of
  it, PreBind creates it and writes the pod's `status.extendedResourceClaimStatus`; Unreserve
  and PostFilter delete a created one.

Filter is vectorised: for pods whose claims are plain counts (ExactCount requests without
constraints, admin access or subrequests) over "clean" pools (complete, one generation, no
shared counters, no binding conditions), the free matching devices are counted per node with
one bincount over the device table, and that decides every node exactly; devices shared by
several claims count where one more share fits beside the allocated ones (capacity columns,
berth.dra.capacity_columns), unless two of the pod's requests could share one; the
allocator's search runs only on nodes where something else is involved, and at Reserve on the
chosen node (its first-fit choice is upstream's).
"""

from __future__ import annotations

import asyncio
import calendar
import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from berth.config.durations import Duration
from berth.dra.allocator import (
    AllocationError,
    AllocationTimeout,
    Allocator,
    DeviceID,
    NodeAllocationError,
)
from berth.dra.capacity_columns import CapacityColumns
from berth.dra.cel import compile_selector
from berth.dra.pools import Node
from berth.framework.events import (
    DEVICE_CLASS,
    DEVICE_TAINT_RULE,
    NODE,
    POD,
    RESOURCE_CLAIM,
    RESOURCE_SLICE,
    ActionType,
    ClusterEventWithHint,
    on,
)
from berth.framework.plugin import (
    CycleState,
    FilterPlugin,
    PostFilterPlugin,
    PostFilterResult,
    PreBindPlugin,
    PreEnqueuePlugin,
    PreFilterPlugin,
    PreFilterResult,
    ReservePlugin,
    ScorePlugin,
)
from berth.framework.runtime import FrameworkError
from berth.framework.status import (
    SKIP,
    SUCCESS,
    Code,
    Status,
    error,
    unresolvable,
)
from berth.objects.dra import (
    ALLOCATION_MODE_EXACT_COUNT,
    ALLOCATION_RESULTS_MAX_SIZE,
    FINALIZER,
    FIRST_AVAILABLE_DEVICE_REQUEST_MAX_SIZE,
    ClaimInfo,
    RequestSpec,
    parse_resource_claim,
)
from berth.objects.names import generate_name
from berth.objects.pod import PodInfo
from berth.plugins.extendedresources import (
    ERR_CANNOT_FIT,
    ERR_STALE_CLAIM,
    SPECIAL_CLAIM_NAME,
    Mapping,
    extended_requests,
    for_create,
    requests_and_mappings,
    special_claim,
    with_requests,
)
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, IndexArray, IntArray
from berth.state.dra import DRAIndex
from berth.state.nodemasks import terms_mask

NAME = "DynamicResources"
ERR_CANNOT_ALLOCATE = "cannot allocate all claims"
ERR_NOT_AVAILABLE = "resourceclaim not available on the node"
_RAN_KEY = NAME + "/PreFilter"
_STATE_KEY = NAME
# upstream PreBind polls the claims for their devices' binding conditions every 5 s
BINDING_POLL_SECONDS = 5.0
log = logging.getLogger("berth.plugins.dynamicresources")


class DynamicResourcesArgs(BaseModel):
    """upstream DynamicResourcesArgs (kubescheduler.config.k8s.io/v1)."""

    model_config = ConfigDict(extra="forbid")
    filterTimeout: Duration = Field(default=10.0)
    bindingTimeout: Duration = Field(default=600.0)

    @field_validator("filterTimeout")
    @classmethod
    def _filter(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must be zero or positive")
        return v

    @field_validator("bindingTimeout")
    @classmethod
    def _binding(cls, v: float) -> float:
        if v < 1:
            raise ValueError("must be at least 1 second")
        return v


@dataclass(slots=True)
class _Fast:
    """PreFilter's plan for the vectorised path: per distinct request, the devices wanted."""

    keys: list[tuple[Any, ...]]
    specs: list[RequestSpec]
    need: list[int]
    merged: list[bool]  # the devices of a key are wanted by more than one request


@dataclass(slots=True)
class _State:
    claims: list[ClaimInfo]
    available_on: list[Any]  # per claim: the allocation's NodeSelector, or None
    to_allocate: list[int]
    allocator: Allocator | None = None
    fast: _Fast | None = None
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)  # set by Reserve
    results: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # slot -> results
    reasons: dict[int, Status] = field(default_factory=dict)  # slot -> why it was rejected
    unavailable: set[int] = field(default_factory=set)
    # allocated claims whose devices' binding conditions failed or timed out: unavailable
    # everywhere (PostFilter may deallocate them)
    not_ready: set[int] = field(default_factory=set)
    # extended resources backed by DRA: the special claim's index in `claims` (last), the
    # pod's requests of extended resources, the claim's uid at PreFilter (in-flight key)
    extended: int | None = None
    ext_requests: dict[str, int] = field(default_factory=dict)
    ext_uid: str = ""
    # per set of resources a node leaves to DRA: (claim indices, the claims to allocate with
    # the node's variant of the special claim, its plan, the container mappings)
    variants: dict[tuple[str, ...], _Variant] = field(default_factory=dict)
    node_variant: dict[int, tuple[str, ...] | None] = field(default_factory=dict)  # by slot
    ext_claim: ClaimInfo | None = None  # Reserve: the chosen node's variant
    ext_mappings: list[Mapping] = field(default_factory=list)


@dataclass(slots=True)
class _Variant:
    indices: list[int]
    claims: list[ClaimInfo]
    fast: _Fast | None
    mappings: list[Mapping]


@dataclass(slots=True)
class _Table:
    """All devices of clean pools as arrays, for counting per node."""

    version: tuple[int, int]
    classes_version: int  # the DeviceClasses `matches` and `class_matches` were computed for
    ids: list[DeviceID]
    devices: list[Any]
    drivers: list[str]
    row: dict[DeviceID, int]
    node_slot: IntArray  # -1: not node-local
    group: IntArray  # network-attached accessibility group, -1 for node-local
    groups: list[Any]  # per group: the slice (its node selection)
    slow_slots: set[int]  # nodes that see a pool the table does not hold
    slow_everywhere: bool
    tainted: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # NoSchedule+
    matches: dict[tuple[Any, ...], BoolArray | None] = field(default_factory=dict)
    class_matches: dict[str, BoolArray | None] = field(default_factory=dict)
    free_at: int = 0  # how much of the index's allocation_log `free` reflects
    free_epoch: int = 0
    free: BoolArray | None = None
    group_masks: BoolArray | None = None  # groups x node slots
    has_capacity: bool = False  # some device has a capacity or allows multiple allocations
    any_multi: bool = False  # some device allows multiple allocations
    # the devices' capacities and what shares consume, built when first needed
    capacity: CapacityColumns | None = None


def _request_key(spec: RequestSpec) -> tuple[Any, ...]:
    return (spec.class_name, spec.selectors, spec.tolerations)


def _plan_key(spec: RequestSpec) -> tuple[Any, ...]:
    capacity = None if spec.capacity is None else tuple(sorted(spec.capacity.items()))
    return (*_request_key(spec), capacity)


def _simple(spec: RequestSpec) -> bool:
    return (
        spec.mode == ALLOCATION_MODE_EXACT_COUNT
        and not spec.admin_access
        and not spec.derived_attributes
    )


class DynamicResources(
    PreEnqueuePlugin,
    PreFilterPlugin,
    FilterPlugin,
    PostFilterPlugin,
    ScorePlugin,
    ReservePlugin,
    PreBindPlugin,
):
    name = NAME

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args, handle=handle)
        a = args if isinstance(args, DynamicResourcesArgs) else DynamicResourcesArgs()
        self.filter_timeout = a.filterTimeout
        self.binding_timeout = a.bindingTimeout
        self.binding_poll = BINDING_POLL_SECONDS
        self._table: _Table | None = None

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        return (
            # A resource might depend on node labels for topology filtering.
            on(
                NODE,
                ActionType.ADD | ActionType.UPDATE_NODE_LABEL | ActionType.UPDATE_NODE_ALLOCATABLE,
            ),
            on(
                RESOURCE_CLAIM,
                ActionType.ADD | ActionType.UPDATE | ActionType.DELETE,
                self._after_claim_change,
            ),
            # the ResourceClaim names in the pod's status make a pod waiting for them schedulable
            on(POD, ActionType.UPDATE_POD_GENERATED_RESOURCE_CLAIM, self._after_pod_update),
            on(DEVICE_CLASS, ActionType.ADD | ActionType.UPDATE),
            on(RESOURCE_SLICE, ActionType.ADD | ActionType.UPDATE),
            # a rule's taints change what devices a request may take (ListWithDeviceTaintRules)
            on(DEVICE_TAINT_RULE, ActionType.ADD | ActionType.UPDATE | ActionType.DELETE),
        )

    # ----- queueing hints (upstream isSchedulableAfterClaimChange, ...TargetPodUpdate) ---------
    def _after_claim_change(self, pod: PodInfo, old: Any, new: Any) -> bool:
        old_status = _status(old)
        if new is None:
            # deleted: only an allocation going away frees devices
            return old_status.get("allocation") is not None
        try:
            claims = self.pod_claims(pod)
        except _Unschedulable:
            return False  # still not schedulable
        new_status = _status(new)
        if old_status.get("allocation") is not None and new_status.get("allocation") is None:
            return True  # deallocated: devices may be free for others
        uid = (new.get("metadata") or {}).get("uid") if isinstance(new, dict) else None
        if not any(c.uid == uid for c in claims):
            return False  # not a claim this pod waits for
        if old is None:
            return True  # the claim for the pod got created
        return bool(old_status != new_status)

    def _after_pod_update(self, pod: PodInfo, old: Any, new: Any) -> bool:
        target = new if isinstance(new, PodInfo) else pod
        try:
            self.pod_claims(target)
        except _Unschedulable:
            return False
        return True

    # ----- PreEnqueue --------------------------------------------------------------------------
    def pre_enqueue(self, pod: PodInfo) -> Status:
        """upstream PreEnqueue: every claim of the pod exists (foreachPodResourceClaim)."""
        if not pod.resource_claims or not self.index.tracked:
            return SUCCESS
        try:
            self.pod_claims(pod)
        except _Unschedulable as exc:
            return unresolvable(str(exc))
        return SUCCESS

    @property
    def index(self) -> DRAIndex:
        return self.ports.dra

    # ----- the pod's claims --------------------------------------------------------------------
    def pod_claims(self, pod: PodInfo) -> list[ClaimInfo]:
        """upstream foreachPodResourceClaim; raises _Unschedulable with upstream's reason."""
        index = self.index
        statuses = dict(pod.resource_claim_statuses)
        out = []
        for pc in pod.resource_claims:
            must_check_owner = False
            if pc.claim_name is not None:
                name: str | None = pc.claim_name
            elif pc.template_name is not None:
                if pc.name not in statuses:
                    raise _Unschedulable(
                        f'pod "{pod.namespace}/{pod.name}": ResourceClaim not created yet'
                    )
                name = statuses[pc.name]
                must_check_owner = True
            else:
                raise _Unschedulable(
                    f'pod "{pod.namespace}/{pod.name}", spec.resourceClaim "{pc.name}": none of '
                    "the supported fields are set"
                )
            if name is None:
                continue
            claim = index.claim(pod.namespace, name)
            if claim is None:
                raise _Unschedulable(f'resourceclaim.resource.k8s.io "{name}" not found')
            if claim.deleting:
                raise _Unschedulable(f'resourceclaim "{claim.name}" is being deleted')
            if must_check_owner and (claim.controller is None or claim.controller[2] != pod.uid):
                raise _Unschedulable(
                    f"ResourceClaim {claim.namespace}/{claim.name} was not created for Pod "
                    f"{pod.namespace}/{pod.name} (Pod is not owner)"
                )
            out.append(claim)
        return out

    # ----- PreFilter ---------------------------------------------------------------------------
    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        cycle.write(_RAN_KEY, True)  # upstream writes its (empty) state first of all
        index = self.index
        if not index.tracked:
            return None, SKIP
        extended = extended_requests(pod, index)
        if not pod.resource_claims and extended is None:
            return None, SKIP
        try:
            claims = self.pod_claims(pod)
        except _Unschedulable as exc:
            return None, unresolvable(str(exc))
        ext_claim = None
        if extended is not None:
            # the special claim of an earlier cycle, or a new one in memory
            ext_claim = index.extended_claim(pod.namespace, pod.name, pod.uid) or special_claim(pod)
            claims.append(ext_claim)
        if not claims:
            return None, SKIP
        state = _State(claims=claims, available_on=[None] * len(claims), to_allocate=[])
        if ext_claim is not None and extended is not None:
            state.extended, state.ext_requests, state.ext_uid = (
                len(claims) - 1,
                extended,
                ext_claim.uid,
            )
        for i, claim in enumerate(claims):
            if claim.allocation is not None:
                state.available_on[i] = claim.allocation.node_selector
                if not _ready_for_binding(claim, self.binding_timeout, time.time()):
                    state.not_ready.add(i)
                continue
            if index.pending_allocation(claim.uid) is not None:
                return None, unresolvable(
                    f"resource claim {claim.namespace}/{claim.name} is in the process of being "
                    "allocated"
                )
            if i == state.extended:
                # no classes to check: Filter builds its requests per node
                state.to_allocate.append(i)
                continue
            for request in claim.spec.requests:
                if request.exactly is not None:
                    problem = self._check_class(request.exactly.class_name, request.name)
                elif request.first_available:
                    problem = None
                    for sub in request.first_available:
                        problem = self._check_class(sub.class_name, f"{request.name}/{sub.name}")
                        if problem is not None:
                            break
                else:
                    problem = unresolvable(
                        f"resource claim {claim.namespace}/{claim.name}, request {request.name}: "
                        "unknown request type"
                    )
                if problem is not None:
                    return None, problem
            state.to_allocate.append(i)
        if state.to_allocate:
            state.allocator = Allocator(
                classes=index.classes,
                slices=index.all_slices(),
                allocated=index.is_allocated,
                shares=index.shared_use,
                match_cache=index.match_cache,
                slices_on_node=index.slices_on_node,
                shared_slices=index.shared_slices,
            )
            if state.extended is None:
                state.fast = self._plan([claims[i] for i in state.to_allocate])
        cycle.write(_STATE_KEY, state)
        return None, SUCCESS

    def _check_class(self, class_name: str, request: str) -> Status | None:
        if not class_name:
            return error(f"request {request}: unsupported request type")
        if class_name not in self.index.classes:
            return unresolvable(f"request {request}: device class {class_name} does not exist")
        return None

    def _plan(self, claims: list[ClaimInfo]) -> _Fast | None:
        """The vectorised plan, when every claim to allocate is a plain count."""
        need: dict[tuple[Any, ...], int] = {}
        specs: dict[tuple[Any, ...], RequestSpec] = {}
        merged: set[tuple[Any, ...]] = set()
        for claim in claims:
            if claim.spec.constraints:
                return None
            total = 0
            for request in claim.spec.requests:
                spec = request.exactly
                if spec is None or not _simple(spec):
                    return None
                total += spec.count
                key = _plan_key(spec)
                if key in need:
                    merged.add(key)
                need[key] = need.get(key, 0) + spec.count
                specs[key] = spec
            if total > ALLOCATION_RESULTS_MAX_SIZE:
                return None  # the allocator reports the limit
        keys = list(need)
        return _Fast(
            keys=keys,
            specs=[specs[k] for k in keys],
            need=[need[k] for k in keys],
            merged=[k in merged for k in keys],
        )

    # ----- the device table (vectorised path) --------------------------------------------------
    def prepare(self) -> None:
        """The device table, its free devices and what each class's selectors accept, built
        ahead of the decisions (the first one paid 20-25 ms for them at 500 nodes)."""
        index = self.index
        if not index.tracked or not index.slices or not index.classes:
            return
        table = self._device_table()
        self._free(table)
        for name in index.classes:
            self._class_matches(table, name)

    def _device_table(self) -> _Table:
        index, cluster = self.index, self.state
        version = (index.slices_version, cluster.slots_version)
        table = self._table
        if table is not None and table.version == version:
            if table.classes_version != index.classes_version:
                # a class changed its selectors (or went): what they matched is stale
                table.matches.clear()
                table.class_matches.clear()
                table.classes_version = index.classes_version
            return table
        by_pool: dict[tuple[str, str], list[Any]] = {}
        for sl in index.slices.values():
            by_pool.setdefault(sl.pool_id, []).append(sl)
        ids: list[DeviceID] = []
        devices: list[Any] = []
        drivers: list[str] = []
        slots: list[int] = []
        groups_of: list[int] = []
        groups: list[Any] = []
        slow_slots: set[int] = set()
        slow_everywhere = False
        for slices in by_pool.values():
            newest = max(s.generation for s in slices)
            current = [s for s in slices if s.generation == newest]
            names = [d.name for s in current for d in s.devices]
            clean = (
                all(s.slice_count == len(current) for s in current)
                and len(slices) == len(current)
                and len(set(names)) == len(names)
                and not any(
                    s.shared_counters or s.per_device_node_selection or s.uses_compatibility_groups
                    for s in current
                )
                and not any(
                    d.consumes_counters or d.binding_conditions for s in current for d in s.devices
                )
                and len({s.node_name for s in current}) == 1
            )
            if not clean:
                for s in slices:
                    slot = cluster.index.get(s.node_name) if s.node_name else None
                    if slot is not None:
                        slow_slots.add(slot)
                    elif not s.node_name:
                        slow_everywhere = True
                continue
            for s in current:
                slot = cluster.index.get(s.node_name, -1) if s.node_name else -1
                if s.node_name and slot < 0:
                    continue  # a node the state does not hold: never a candidate
                g = -1
                if not s.node_name:
                    g = len(groups)
                    groups.append(s)
                for d in s.devices:
                    ids.append((s.driver, s.pool, d.name))
                    devices.append(d)
                    drivers.append(s.driver)
                    slots.append(slot)
                    groups_of.append(g)
        table = _Table(
            version=version,
            classes_version=index.classes_version,
            ids=ids,
            devices=devices,
            drivers=drivers,
            row={d: i for i, d in enumerate(ids)},
            node_slot=np.array(slots, dtype=np.int64),
            group=np.array(groups_of, dtype=np.int64),
            groups=groups,
            slow_slots=slow_slots,
            slow_everywhere=slow_everywhere,
        )
        table.tainted = np.fromiter(
            (any(t.effect in ("NoSchedule", "NoExecute") for t in d.taints) for d in devices),
            dtype=bool,
            count=len(devices),
        )
        table.any_multi = any(d.allow_multiple_allocations for d in devices)
        table.has_capacity = table.any_multi or any(d.capacities for d in devices)
        self._table = table
        return table

    def _columns(self, table: _Table, fast: _Fast) -> CapacityColumns | None:
        """The table's capacity columns, when capacity can decide anything: a request asks
        for some, a device may be shared, or shares were allocated of a device that no longer
        allows them (without any of these, every device fits one more claim whole)."""
        if not table.has_capacity:
            return None
        index = self.index
        if not (
            table.any_multi
            or any(spec.capacity is not None for spec in fast.specs)
            or any(device in table.row for device in index.share_counts)
        ):
            return None
        if table.capacity is None:
            table.capacity = CapacityColumns.build(table.ids, table.devices)
        columns = table.capacity
        columns.follow(index.share_log, index.share_log_epoch, index.shared_capacity)
        return columns

    def _matches(self, table: _Table, spec: RequestSpec) -> BoolArray | None:
        """Which table devices a request can take (class and request selectors, taints); None
        when a selector fails on some device (the allocator then reports it)."""
        key = _request_key(spec)
        if key in table.matches:
            return table.matches[key]
        result = self._class_matches(table, spec.class_name)
        if result is not None:
            result = self._narrow(table, result, spec)
        table.matches[key] = result
        return result

    def _class_matches(self, table: _Table, class_name: str) -> BoolArray | None:
        """The table devices a class's selectors accept (None: a selector fails on one); kept
        with the table, and computed ahead of decisions by `prepare`."""
        if class_name in table.class_matches:
            return table.class_matches[class_name]
        index = self.index
        cls = index.classes[class_name]
        compiled = index.compiled.get(class_name, ())
        if len(compiled) != len(cls.selectors):  # (a class placed in the index directly)
            compiled = tuple(compile_selector(e) for e in cls.selectors)
        cache = index.match_cache
        out = np.ones(len(table.devices), dtype=bool)
        result: BoolArray | None = out
        for program in compiled:
            at = np.flatnonzero(out)
            for i in at.tolist():
                m = cache.matches(program.expression, table.devices[i], table.drivers[i], program)
                if m is True:
                    continue
                out[i] = False
                if m is not False:
                    result = None
                    break
            if result is None:
                break
        table.class_matches[class_name] = result
        return result

    def _narrow(self, table: _Table, accepted: BoolArray, spec: RequestSpec) -> BoolArray | None:
        """Of the devices the class accepts, those the request's own selectors accept and
        whose NoSchedule/NoExecute taints it tolerates; None when a selector fails."""
        cache = self.index.match_cache
        out = accepted.copy()
        # without selectors of its own, only the tainted devices can be refused
        look = out if spec.selectors else out & table.tainted
        for i in np.flatnonzero(look).tolist():
            device, driver = table.devices[i], table.drivers[i]
            for expression in spec.selectors:
                m = cache.matches(expression, device, driver)
                if m is True:
                    continue
                if m is not False:
                    return None
                out[i] = False
                break
            if out[i] and any(
                t.effect in ("NoSchedule", "NoExecute")
                and not any(tol.tolerates(t) for tol in spec.tolerations)
                for t in device.taints
            ):
                out[i] = False
        return out

    def _free(self, table: _Table) -> BoolArray:
        """Devices of the table nobody holds: built once per table from the allocated set,
        then kept current from the index's allocation log (one entry per change)."""
        index = self.index
        log = index.allocation_log
        if table.free is None or table.free_epoch != index.log_epoch:
            free = np.ones(len(table.ids), dtype=bool)
            for device in index.allocated:
                row = table.row.get(device)
                if row is not None:
                    free[row] = False
            table.free, table.free_at, table.free_epoch = free, len(log), index.log_epoch
            return free
        free = table.free
        for device, used in log[table.free_at :]:
            row = table.row.get(device)
            if row is not None:
                free[row] = not used
        table.free_at = len(log)
        return free

    def _group_masks(self, table: _Table) -> BoolArray:
        if table.group_masks is not None:
            return table.group_masks
        cluster = self.state
        all_slots = np.arange(len(cluster.present), dtype=np.intp)
        masks = np.zeros((len(table.groups), len(all_slots)), dtype=bool)
        for g, sl in enumerate(table.groups):
            if sl.all_nodes:
                masks[g] = cluster.present
            elif sl.node_selector is not None:
                masks[g] = terms_mask(cluster, sl.node_selector.terms, all_slots) & cluster.present
        table.group_masks = masks
        return masks

    def _fast_filter(self, fast: _Fast, nodes: IndexArray) -> tuple[BoolArray, BoolArray] | None:
        """(decided ok, needs the search) per node, or None when the plan cannot be used."""
        table = self._device_table()
        columns = self._columns(table, fast)
        if columns is not None and not columns.exact:
            return None
        free = self._free(table)
        capacity = len(self.state.present)
        matched: list[BoolArray] = []
        for key, spec, merged in zip(fast.keys, fast.specs, fast.merged, strict=True):
            m = self._matches(table, spec)
            if m is None:
                return None
            if columns is not None:
                if (m & columns.inexact).any():
                    return None  # a capacity the columns cannot hold exactly
                if merged and (m & columns.multi).any():
                    return None  # claims may share a device: the search counts them
                share = columns.share(key, spec, m)
                if share is None:
                    return None
                m = m & columns.fits(share)
            elif spec.capacity:
                m = np.zeros_like(m)  # no device has the capacity asked for
            matched.append(m)
        for a in range(len(matched)):
            for b in range(a + 1, len(matched)):
                if (matched[a] & matched[b]).any():
                    return None  # requests compete for devices: the search decides
        ok = np.ones(len(nodes), dtype=bool)
        local = table.node_slot >= 0
        for m, need in zip(matched, fast.need, strict=True):
            usable = m & free
            counts = np.bincount(table.node_slot[usable & local], minlength=capacity)
            if table.groups:
                per_group = np.bincount(table.group[usable & ~local], minlength=len(table.groups))
                if per_group.any():
                    counts = counts + per_group @ self._group_masks(table)
            ok &= counts.take(nodes) >= need
        if table.slow_everywhere:
            slow = np.ones(len(nodes), dtype=bool)
        elif table.slow_slots:
            slow = np.isin(nodes, np.fromiter(table.slow_slots, dtype=np.intp))
        else:
            slow = np.zeros(len(nodes), dtype=bool)
        return ok & ~slow, slow

    # ----- Filter ------------------------------------------------------------------------------
    def _node(self, slot: int) -> Node:
        info = self.state.node(slot)
        return Node(info.name, info.labels, info.declared_features)

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        state: _State = cycle.read(_STATE_KEY)
        ok = np.ones(len(nodes), dtype=bool)
        not_available = np.zeros(len(nodes), dtype=bool)
        for i, selector in enumerate(state.available_on):
            if i in state.not_ready:
                state.unavailable.add(i)
                not_available[:] = True
                continue
            if selector is None:
                continue
            fits = terms_mask(self.state, selector.terms, nodes)
            if not fits.all():
                state.unavailable.add(i)
                not_available |= ~fits
        for mask, key in self._node_variants(state, pod, nodes, ok):
            self._allocate(state, pod, nodes, mask, key, ok)
        for slot in nodes[ok & not_available].tolist():
            state.reasons[slot] = unresolvable(ERR_NOT_AVAILABLE)
        ok &= ~not_available
        return ok

    def _node_variants(
        self, state: _State, pod: PodInfo, nodes: IndexArray, ok: BoolArray
    ) -> list[tuple[BoolArray, tuple[str, ...] | None]]:
        """upstream filterExtendedResources, over all nodes at once: which extended resources
        each node leaves to DRA (its allocatable has none of them and a class serves them), the
        nodes grouped by that set (None: no special claim to allocate); rejected nodes get
        their reason and drop out of `ok`."""
        everywhere = np.ones(len(nodes), dtype=bool)
        if state.extended is None:
            return [(everywhere, None)]
        claim = state.claims[state.extended]
        if claim.spec.requests:
            # the claim of an earlier cycle: PostFilter deletes it and the pod tries anew
            for slot in nodes.tolist():
                state.reasons[slot] = unresolvable(ERR_STALE_CLAIM)
            ok[:] = False
            return []
        if claim.allocation is not None:
            return [(everywhere, None)]
        cluster, index = self.state, self.index
        bits = np.zeros(len(nodes), dtype=np.int64)
        names: list[str] = []
        for resource in sorted(state.ext_requests):
            col = cluster.resource_index.get(resource)
            if col is None:
                alloc = np.zeros(len(nodes), dtype=np.int64)
            else:
                alloc = cluster.alloc[:, col].take(nodes)
            if index.device_class_for(resource) is not None:
                bits |= np.where(alloc == 0, 1 << len(names), 0)
                names.append(resource)
                continue
            for at in np.flatnonzero((alloc == 0) & ok).tolist():
                slot = int(nodes[at])
                if resource not in cluster.node(slot).allocatable:
                    # neither advertised by the node nor served by a class
                    state.reasons[slot] = unresolvable(ERR_CANNOT_FIT)
                    ok[at] = False
        out: list[tuple[BoolArray, tuple[str, ...] | None]] = []
        for value in np.unique(bits[ok]).tolist():
            key = tuple(n for b, n in enumerate(names) if value >> b & 1)
            out.append((ok & (bits == value), key))
        return out

    def _variant(self, state: _State, pod: PodInfo, key: tuple[str, ...] | None) -> _Variant:
        """The claims to allocate on nodes of one variant (None: the pod's claims as they are)."""
        if key is None:
            claims = [state.claims[i] for i in state.to_allocate]
            return _Variant(list(state.to_allocate), claims, state.fast, [])
        found = state.variants.get(key)
        if found is not None:
            return found
        indices = [i for i in state.to_allocate if i != state.extended]
        claims = [state.claims[i] for i in indices]
        mappings: list[Mapping] = []
        if key and state.extended is not None:
            # Berth leaves the special claim out where the node's allocatable serves every
            # extended resource (upstream would allocate it without requests: see the docs)
            requests, mappings = requests_and_mappings(pod, set(key), self.index)
            indices.append(state.extended)
            claims.append(with_requests(state.claims[state.extended], requests))
        variant = _Variant(indices, claims, self._plan(claims) if claims else None, mappings)
        state.variants[key] = variant
        return variant

    def _allocate(
        self,
        state: _State,
        pod: PodInfo,
        nodes: IndexArray,
        mask: BoolArray,
        key: tuple[str, ...] | None,
        ok: BoolArray,
    ) -> None:
        """Allocate the variant's claims on the nodes of `mask`: counted where the plan allows,
        searched elsewhere; results kept per node for Reserve, rejections with their reason."""
        variant = self._variant(state, pod, key)
        if key is not None:  # (a node without an entry reads as None)
            for slot in nodes[mask].tolist():
                state.node_variant[slot] = key
        search = mask.copy()
        if state.allocator is None or not variant.claims:
            search[:] = False
        elif variant.fast is not None:
            decided = self._fast_filter(variant.fast, nodes)
            if decided is not None:
                fits, slow = decided
                search = mask & slow
                rejected = mask & ~fits & ~slow
                for slot in nodes[rejected].tolist():
                    state.reasons[slot] = unresolvable(ERR_CANNOT_ALLOCATE)
                ok &= ~rejected
        if search.any():
            claims = variant.claims
            deadline = time.monotonic() + self.filter_timeout if self.filter_timeout > 0 else None
            assert state.allocator is not None
            for at in np.flatnonzero(search).tolist():
                slot = int(nodes[at])
                node = self._node(slot)
                try:
                    results = state.allocator.allocate(node, claims, deadline=deadline)
                except AllocationTimeout:
                    raise FrameworkError(
                        f"running Filter plugin {NAME!r}: node {node.name}: timed out trying to "
                        "allocate devices"
                    ) from None
                except NodeAllocationError as exc:
                    state.reasons[slot] = unresolvable(str(exc))
                    ok[at] = False
                    continue
                except AllocationError as exc:
                    raise FrameworkError(f"running Filter plugin {NAME!r}: {exc}") from None
                if results is None or len(results) != len(claims):
                    state.reasons[slot] = unresolvable(ERR_CANNOT_ALLOCATE)
                    ok[at] = False
                    continue
                state.results[slot] = results

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        state: _State | None = cycle.read(_STATE_KEY)
        if state is None:
            return SUCCESS
        found = state.reasons.get(node)
        if found is not None:
            return found
        self.filter(cycle, pod, np.array([node], dtype=np.intp))
        return state.reasons.get(node, SUCCESS)

    # ----- Score -------------------------------------------------------------------------------
    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        """upstream Score (computeScore) with DefaultNormalizeScore."""
        state: _State | None = cycle.read(_STATE_KEY)
        scores = np.zeros(len(nodes), dtype=np.int64)
        if state is None or not any(
            r.first_available for c in state.claims for r in c.spec.requests
        ):
            return scores
        for at, slot in enumerate(nodes.tolist()):
            results = state.results.get(int(slot))
            if results is None:
                continue
            variant = self._variant(state, pod, state.node_variant.get(int(slot)))
            scores[at] = _score(state, dict(zip(variant.indices, results, strict=True)))
        return scores

    def normalize(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray, scores: IntArray
    ) -> IntArray:
        top = int(scores.max()) if len(scores) else 0
        if top == 0:
            return scores
        out: IntArray = 100 * scores // top
        return out

    # ----- Reserve / Unreserve -----------------------------------------------------------------
    def _results_for(
        self, state: _State, pod: PodInfo, node_name: str
    ) -> tuple[_Variant, list[dict[str, Any]]] | Status:
        slot = self.state.index.get(node_name)
        if slot is None:
            return error(f'node "{node_name}" not found')
        results = state.results.get(slot)
        if results is not None:
            return self._variant(state, pod, state.node_variant.get(slot)), results
        one = np.array([slot], dtype=np.intp)
        fits = np.ones(1, dtype=bool)
        variants = self._node_variants(state, pod, one, fits)
        if not variants:
            return error("claim allocation not found for node")
        variant = self._variant(state, pod, variants[0][1])
        state.node_variant[slot] = variants[0][1]
        if not variant.claims:
            return variant, []
        assert state.allocator is not None
        try:
            found = state.allocator.allocate(self._node(slot), variant.claims)
        except AllocationError as exc:
            return error(str(exc))
        if found is None or len(found) != len(variant.claims):
            return error("claim allocation not found for node")
        state.results[slot] = found
        return variant, found

    def reserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        state: _State | None = cycle.read(_STATE_KEY)
        if state is None or not state.to_allocate:
            return SUCCESS
        found = self._results_for(state, pod, node_name)
        if isinstance(found, Status):
            return found
        variant, results = found
        index = self.index
        for i, claim, allocation in zip(variant.indices, variant.claims, results, strict=True):
            state.pending[i] = allocation
            if i == state.extended:
                # the node's variant of the special claim is what PreBind creates
                state.ext_claim, state.ext_mappings = claim, variant.mappings
            index.signal_pending_allocation(_with_status(claim, allocation=allocation))
        return SUCCESS

    def unreserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> None:
        state: _State | None = cycle.read(_STATE_KEY)
        if state is None:
            return
        index = self.index
        writer = self.ports.claim_writer
        for i, claim in enumerate(state.claims):
            if i == state.extended:
                self._unreserve_extended(state, claim)
                continue
            if index.remove_pending_allocation(claim.uid):
                index.restore(claim.key)
            state.pending.pop(i, None)
            current = index.claim(claim.namespace, claim.name) or claim
            if current.allocation is not None and any(
                r.uid == pod.uid for r in current.reserved_for
            ):
                if writer is not None:
                    writer.unreserve(current, pod.uid)
                else:
                    index.assume(_without_consumer(current, pod.uid))

    def _unreserve_extended(self, state: _State, claim: ClaimInfo) -> None:
        """upstream unreserveExtendedResourceClaim: out of flight; deleted once created."""
        index = self.index
        if index.remove_pending_allocation(state.ext_uid):
            index.restore(claim.key)
        if state.extended is not None:
            state.pending.pop(state.extended, None)
        if claim.name != SPECIAL_CLAIM_NAME:
            self._delete_claim(claim)

    def _delete_claim(self, claim: ClaimInfo) -> None:
        writer = self.ports.claim_writer
        if writer is not None:
            writer.delete_claim(claim)
            return
        self.index.restore(claim.key)
        self.index.delete({"kind": "ResourceClaim", "metadata": dict(claim.raw["metadata"])})

    # ----- PreBind -----------------------------------------------------------------------------
    async def pre_bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        state: _State | None = cycle.read(_STATE_KEY)
        if state is None:
            return SUCCESS
        index = self.index
        writer = self.ports.claim_writer
        consumer = {"resource": "pods", "name": pod.name, "uid": pod.uid}
        for i, claim in enumerate(state.claims):
            if any(r.uid == pod.uid for r in claim.reserved_for):
                continue
            allocation = state.pending.get(i)
            pending_uid = claim.uid
            if i == state.extended:
                if allocation is None and not claim.spec.requests:
                    continue  # the node's allocatable serves every extended resource
                if claim.name == SPECIAL_CLAIM_NAME:
                    created = await self._create_extended(state, pod)
                    if isinstance(created, Status):
                        return created
                    claim = state.claims[i] = created
            if writer is None:
                updated = _bound(claim, allocation, consumer)
            else:
                answer = await writer.bind_claim(
                    claim, stamped(allocation, claim) if allocation is not None else None, consumer
                )
                if isinstance(answer, str):
                    return error(answer)
                updated = parse_resource_claim(answer)
            index.assume(updated)
            if index.remove_pending_allocation(pending_uid):
                state.pending.pop(i, None)
            state.claims[i] = updated
            if i == state.extended:
                problem = await self._record_mappings(state, pod, updated)
                if problem is not None:
                    return problem
        if writer is None or not any(_binding_conditions(c) for c in state.claims):
            return SUCCESS
        return await self._wait_for_binding_conditions(state, pod, node_name)

    async def _create_extended(self, state: _State, pod: PodInfo) -> ClaimInfo | Status:
        """upstream createExtendedResourceClaimInAPI: the node's variant, created with a
        generated name (offline: into the state)."""
        claim = state.ext_claim
        if claim is None:
            return error(f"extended resource claim not found for node {pod.node_name}")
        body = for_create(claim)
        writer = self.ports.claim_writer
        if writer is None:
            meta = body["metadata"]
            meta["name"] = generate_name(str(meta.get("generateName") or ""))
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = "1"
            self.index.upsert(body)
            created = self.index.claim(pod.namespace, meta["name"])
            assert created is not None
            return created
        answer = await writer.create_claim(body)
        if isinstance(answer, str):
            return error(f"create claim for extended resources {pod.namespace}/: {answer}")
        return parse_resource_claim(answer)

    async def _record_mappings(
        self, state: _State, pod: PodInfo, claim: ClaimInfo
    ) -> Status | None:
        """upstream patchPodExtendedResourceClaimStatus: which container's resource each
        request of the claim serves, in the pod's status (offline: nothing to write)."""
        if not state.ext_mappings:
            return error(
                f"nil or empty request mappings, no update of pod {pod.namespace}/{pod.name} "
                "ExtendedResourceClaimStatus"
            )
        writer = self.ports.claim_writer
        if writer is None:
            return None
        status = {"requestMappings": state.ext_mappings, "resourceClaimName": claim.name}
        problem = await writer.patch_pod_status(
            pod.namespace, pod.name, {"extendedResourceClaimStatus": status}
        )
        if problem is not None:
            return error(
                f"update pod {pod.namespace}/{pod.name} ExtendedResourceClaimStatus: {problem}"
            )
        return None

    async def _wait_for_binding_conditions(
        self, state: _State, pod: PodInfo, node_name: str
    ) -> Status:
        """upstream PreBind's wait: poll the claims (the informer's view) until every device's
        binding conditions are true, one of its failure conditions is, or bindingTimeout."""
        log.info(
            "waiting for binding conditions for device on node",
            extra={"pod": pod.key, "node": node_name},
        )
        if self.ports.events is not None:
            self.ports.events(
                pod,
                type_="Normal",
                reason="BindingConditionsPending",
                action="Scheduling",
                message=f"waiting for binding conditions for device on node {node_name}",
            )
        index = self.index
        deadline = time.monotonic() + self.binding_timeout
        while True:
            ready = True
            for i, claim in enumerate(state.claims):
                current = index.claim(claim.namespace, claim.name)
                if current is None:
                    return error(f'resourceclaim.resource.k8s.io "{claim.name}" not found')
                state.claims[i] = current
                verdict = _binding_state(current)
                if isinstance(verdict, str):
                    return error(f"device binding failed: {verdict}")
                if not verdict:
                    ready = False
                    if _timed_out(current, self.binding_timeout, time.time()):
                        return error(f"device binding timeout: claim={current.name}")
            if ready:
                return SUCCESS
            if time.monotonic() >= deadline:
                return error("device binding timeout: context deadline exceeded")
            await asyncio.sleep(min(self.binding_poll, max(0.0, deadline - time.monotonic())))

    # ----- PostFilter --------------------------------------------------------------------------
    def post_filter(
        self, cycle: CycleState, pod: PodInfo, diagnosis: Any
    ) -> tuple[PostFilterResult | None, Status]:
        if not cycle.read(_RAN_KEY):
            # An earlier PreFilter rejected the pod unresolvably, so this one never ran: upstream
            # fails reading its state (dynamicresources.go:1163, CycleState's ErrNotFound), which
            # ends PostFilter with an Error before preemption; the message ends "not found".
            return None, error("not found")
        state: _State | None = cycle.read(_STATE_KEY)
        if state is None:
            return None, Status(Code.UNSCHEDULABLE)
        writer = self.ports.claim_writer
        created = state.extended is not None and (
            state.claims[state.extended].name != SPECIAL_CLAIM_NAME
        )
        for i in sorted(state.unavailable):
            claim = state.claims[i]
            if i == state.extended:
                if created:
                    break
                continue
            held = claim.reserved_for
            if not held or (len(held) == 1 and held[0].uid == pod.uid):
                if writer is not None:
                    writer.deallocate(claim)
                else:
                    self.index.assume(_with_status(claim, allocation=None, reserved_for=[]))
                return None, Status(
                    Code.UNSCHEDULABLE, ("deallocation of ResourceClaim completed",)
                )
        if created and state.extended is not None:
            # the special claim of an earlier cycle is deleted; the pod tries anew
            self._delete_claim(state.claims[state.extended])
            return None, Status(Code.UNSCHEDULABLE, ("deletion of ResourceClaim completed",))
        return None, Status(Code.UNSCHEDULABLE)


class _Unschedulable(Exception):
    pass


def _status(raw: Any) -> dict[str, Any]:
    status = raw.get("status") if isinstance(raw, dict) else None
    return status if isinstance(status, dict) else {}


def _binding_conditions(claim: ClaimInfo) -> bool:
    """upstream hasBindingConditions, for one claim."""
    return claim.allocation is not None and any(
        r.binding_conditions for r in claim.allocation.results
    )


def _device_conditions(claim: ClaimInfo, driver: str, pool: str, device: str) -> dict[str, Any]:
    """The conditions (type -> condition) of one allocated device in status.devices ({} when
    the device has no entry there)."""
    for d in _status(claim.raw).get("devices") or ():
        if isinstance(d, dict) and (d.get("driver"), d.get("pool"), d.get("device")) == (
            driver,
            pool,
            device,
        ):
            return {str(c.get("type")): c for c in d.get("conditions") or () if isinstance(c, dict)}
    return {}


def _binding_state(claim: ClaimInfo) -> bool | str:
    """upstream isClaimReadyForBinding: True when every device's binding conditions are true,
    False while they are not yet, a message when a failure condition is true."""
    if claim.allocation is None:
        return False
    for r in claim.allocation.results:
        if not r.binding_conditions:
            continue
        found = any(
            isinstance(d, dict)
            and (d.get("driver"), d.get("pool"), d.get("device")) == (r.driver, r.pool, r.device)
            for d in _status(claim.raw).get("devices") or ()
        )
        if not found:
            return False
        conditions = _device_conditions(claim, r.driver, r.pool, r.device)
        for name in r.binding_failure_conditions:
            c = conditions.get(name)
            if c is not None and c.get("status") == "True":
                return (
                    f"claim={claim.name}, reason={c.get('reason', '')}, "
                    f'message="{c.get("message", "")}"'
                )
        for name in r.binding_conditions:
            if (conditions.get(name) or {}).get("status") != "True":
                return False
    return True


def _timed_out(claim: ClaimInfo, timeout: float, now: float) -> bool:
    """upstream isClaimTimeout: allocated with binding conditions longer than `timeout` ago."""
    if claim.allocation is None or not _binding_conditions(claim):
        return False
    stamp = claim.allocation.raw.get("allocationTimestamp")
    if not isinstance(stamp, str):
        return False
    try:
        at = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return False
    return at + timeout < now


def _ready_for_binding(claim: ClaimInfo, timeout: float, now: float) -> bool:
    """Filter's check of an allocated claim: its binding conditions neither failed nor timed out."""
    if not _binding_conditions(claim):
        return True
    verdict = _binding_state(claim)
    if isinstance(verdict, str):
        return False
    return verdict or not _timed_out(claim, timeout, now)


def _score(state: _State, results: dict[int, dict[str, Any]]) -> int:
    """upstream computeScore; `results`: the node's allocation per claim index."""
    score = 0
    for i, claim in enumerate(state.claims):
        if claim.allocation is not None:
            chosen = {r.request for r in claim.allocation.results if "/" in r.request}
        else:
            allocation = results.get(i)
            if allocation is None:
                continue
            chosen = {
                r["request"]
                for r in allocation["devices"].get("results", ())
                if "/" in r["request"]
            }
        for request in claim.spec.requests:
            for i, sub in enumerate(request.first_available):
                if f"{request.name}/{sub.name}" in chosen:
                    score += FIRST_AVAILABLE_DEVICE_REQUEST_MAX_SIZE - i
    return score


def _with_status(
    claim: ClaimInfo,
    *,
    allocation: dict[str, Any] | None,
    reserved_for: list[dict[str, Any]] | None = None,
    finalizer: bool = True,
) -> ClaimInfo:
    """The claim with status.allocation (and reservedFor) replaced, as the API would hold it."""
    raw = dict(claim.raw)
    meta = dict(raw.get("metadata") or {})
    status = dict(raw.get("status") or {})
    if allocation is None:
        status.pop("allocation", None)
        status.pop("devices", None)
    else:
        status["allocation"] = allocation
        if finalizer and FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), FINALIZER]
    if reserved_for is not None:
        if reserved_for:
            status["reservedFor"] = reserved_for
        else:
            status.pop("reservedFor", None)
    raw["metadata"] = meta
    raw["status"] = status
    parsed = parse_resource_claim(raw)
    if not parsed.namespace:
        parsed = dataclasses.replace(parsed, namespace=claim.namespace)
    return parsed


def _reserved(claim: ClaimInfo) -> list[dict[str, Any]]:
    return list((claim.raw.get("status") or {}).get("reservedFor") or [])


def _bound(
    claim: ClaimInfo, allocation: dict[str, Any] | None, consumer: dict[str, Any]
) -> ClaimInfo:
    """Offline PreBind: what the API server would store after bindClaim's writes."""
    return _with_status(
        claim,
        allocation=stamped(allocation, claim),
        reserved_for=[*_reserved(claim), consumer],
    )


def stamped(allocation: dict[str, Any] | None, claim: ClaimInfo) -> dict[str, Any] | None:
    """The allocation PreBind writes: the new one or the claim's, with allocationTimestamp set
    when missing (upstream does so with binding conditions enabled, as in 1.37's defaults)."""
    current = (
        allocation if allocation is not None else (claim.raw.get("status") or {}).get("allocation")
    )
    if current is None or current.get("allocationTimestamp"):
        return current
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {**current, "allocationTimestamp": now}


def _without_consumer(claim: ClaimInfo, uid: str) -> ClaimInfo:
    keep = [r for r in _reserved(claim) if r.get("uid") != uid]
    current = (claim.raw.get("status") or {}).get("allocation")
    return _with_status(claim, allocation=current, reserved_for=keep, finalizer=False)


register(DynamicResources, DynamicResourcesArgs)

__all__ = [
    "DynamicResources",
    "DynamicResourcesArgs",
]
