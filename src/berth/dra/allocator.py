"""The structured-parameters allocator: devices for a pod's claims on one node.

A transcription of upstream's "incubating" allocator (dynamic-resource-allocation/structured/
internal/incubating/allocator_incubating.go), the one kube-scheduler 1.37 uses with its default
feature gates: an exhaustive first-fit search over the node's pools (sorted by driver and pool,
slices by name, devices in order), claim after claim, request after request, trying device
combinations rather than permutations, with `firstAvailable` subrequests in order,
`matchAttribute` / `distinctAttribute` constraints, admin access, device taints, shared
counters (partitionable devices), consumable capacity (devices shared by several claims, each
share consuming part of their capacity: berth.dra.capacity) and binding conditions. Selector
results are cached per (expression, device shape) across calls (`MatchCache`), so a device is
evaluated once. Not supported (an error naming the field): derived attributes (alpha).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from berth.dra.capacity import FRACTIONAL_DEFAULT, CapacityError, consumed_capacity, fits
from berth.dra.cel import CelRuntimeError, Compiled, compile_selector
from berth.dra.pools import Node, Pool, gather_pools, node_matches
from berth.objects.dra import (
    ALLOCATION_MODE_ALL,
    ALLOCATION_MODE_EXACT_COUNT,
    ALLOCATION_RESULTS_MAX_SIZE,
    Attribute,
    ClaimInfo,
    Constraint,
    Device,
    DeviceClassInfo,
    RequestSpec,
    SliceInfo,
)
from berth.objects.quantity import Quantity

DeviceID = tuple[str, str, str]  # (driver, pool, device)
# The capacity allocated claims' shares of a device consume (upstream AggregatedCapacity), or
# None when no allocated claim shares it (upstream: no AllocatedSharedDeviceIDs entry either).
SharedUse = Callable[[DeviceID], Mapping[str, Decimal] | None]


class AllocationError(Exception):
    """Invalid input (a CEL error, an unknown class, ...): scheduling the pod is aborted."""


class NodeAllocationError(AllocationError):
    """Only this node cannot be used (upstream ErrFailedAllocationOnNode)."""


class AllocationTimeout(AllocationError):
    """The search ran past its deadline (upstream: filterTimeout)."""


class _Stop(Exception):
    """Allocation cannot succeed (upstream errStop)."""


class _MaxSizeExceeded(Exception):
    """The claim would get more than 32 devices (upstream errAllocationResultMaxSizeExceeded)."""


class MatchCache:
    """Selector results per (expression, device shape): a shape is what CEL can see of a
    device, so identical devices share one evaluation. Errors are cached as their message."""

    def __init__(self, *, max_entries: int = 1 << 18) -> None:
        self._results: dict[tuple[str, tuple[Any, ...]], bool | str] = {}
        self.max_entries = max_entries
        self.evaluations = 0

    def matches(
        self, expression: str, device: Device, driver: str, compiled: Compiled | None = None
    ) -> bool | str:
        """`compiled`: the expression's compilation, when the caller holds it already."""
        key = (expression, device.shape)
        found = self._results.get(key)
        if found is not None:
            return found
        if compiled is None:
            compiled = compile_selector(expression)
        if compiled.error is not None:
            return compiled.error  # not cached here: the compile cache keeps it
        self.evaluations += 1
        result: bool | str
        try:
            result = compiled.matches(device, driver)
        except CelRuntimeError as exc:
            result = "\x00" + str(exc)  # a runtime error, told apart from a compile error
        if len(self._results) >= self.max_entries:
            self._results.clear()
        self._results[key] = result
        return result


@dataclass(slots=True)
class _RequestData:
    request: RequestSpec
    parent: str  # the parent request's name for a subrequest, "" otherwise
    cls: DeviceClassInfo | None
    num_devices: int = 0
    selected_sub: int = 0
    all_devices: list[_Candidate] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.parent}/{self.request.name}" if self.parent else self.request.name


@dataclass(slots=True)
class _Candidate:
    id: DeviceID
    device: Device
    slice: SliceInfo
    pool: Pool


@dataclass(slots=True)
class _Result:
    request: str
    parent: str
    id: DeviceID
    device: Device
    slice: SliceInfo
    admin_access: bool
    spec: RequestSpec
    share_id: str | None = None
    consumed: dict[str, Quantity] | None = None

    @property
    def request_name(self) -> str:
        return f"{self.parent}/{self.request}" if self.parent else self.request


def lookup_attribute(device: Device, driver: str, name: str) -> Attribute | None:
    """upstream lookupAttribute: the fully qualified name, or the bare id for the driver."""
    found = device.attributes.get(name)
    if found is not None:
        return found
    domain, sep, ident = name.partition("/")
    if not sep or domain != driver:
        return None
    return device.attributes.get(ident)


_SCALARS = ("string", "int", "bool", "version")


class _MatchAttribute:
    def __init__(self, requests: tuple[str, ...], attribute: str) -> None:
        self.requests = set(requests)
        self.attribute = attribute
        self.value: Attribute | None = None
        self.count = 0

    def applies(self, request: str, sub: str) -> bool:
        if not self.requests:
            return True
        if not sub:
            return request in self.requests
        return request in self.requests or f"{request}/{sub}" in self.requests

    def add(self, request: str, sub: str, device: Device, driver: str) -> bool:
        if not self.applies(request, sub):
            return True
        attr = lookup_attribute(device, driver, self.attribute)
        if attr is None:
            return False
        if self.count == 0:
            self.value, self.count = attr, 1
            return True
        if attr[0] not in _SCALARS or self.value is None or attr != self.value:
            return False
        self.count += 1
        return True

    def remove(self, request: str, sub: str, device: Device, driver: str) -> None:
        if self.applies(request, sub):
            self.count -= 1


class _DistinctAttribute(_MatchAttribute):
    def __init__(self, requests: tuple[str, ...], attribute: str) -> None:
        super().__init__(requests, attribute)
        self.values: list[Attribute] = []

    def add(self, request: str, sub: str, device: Device, driver: str) -> bool:
        if not self.applies(request, sub):
            return True
        attr = lookup_attribute(device, driver, self.attribute)
        if attr is None:
            return False
        if self.values and (attr[0] not in _SCALARS or attr in self.values):
            # upstream matchesAttribute: a value of another type never matches one already
            # taken; the first device may have any
            return False
        self.values.append(attr)
        return True

    def remove(self, request: str, sub: str, device: Device, driver: str) -> None:
        if self.applies(request, sub):
            self.values.pop()


def _kobj(claim: ClaimInfo) -> str:
    """klog.KObj: namespace/name, or the name alone for an object without a namespace."""
    return f"{claim.namespace}/{claim.name}" if claim.namespace else claim.name


class Allocator:
    """upstream structured.Allocator for one set of slices, classes and allocated devices."""

    def __init__(
        self,
        *,
        classes: Mapping[str, DeviceClassInfo],
        slices: Sequence[SliceInfo],
        allocated: Callable[[DeviceID], bool] | set[DeviceID],
        match_cache: MatchCache | None = None,
        slices_on_node: Mapping[str, Sequence[SliceInfo]] | None = None,
        shared_slices: Sequence[SliceInfo] | None = None,
        shares: SharedUse | None = None,
        fractional_capacity_range: bool = FRACTIONAL_DEFAULT,
    ) -> None:
        self.classes = classes
        self.all_slices = slices
        # devices allocated to one claim (upstream AllocatedDevices); a device shared by
        # allocated claims is in `shares` instead
        self._allocated = allocated.__contains__ if isinstance(allocated, set) else allocated
        self._shared: SharedUse = shares or _no_shares
        # DRAFractionalCapacityRange: off, as 1.37's components run by default; on only to
        # replay upstream's test rows that switch it on
        self.fractional = fractional_capacity_range
        self.cache = match_cache or MatchCache()
        if slices_on_node is None or shared_slices is None:
            by_node: dict[str, list[SliceInfo]] = {}
            shared: list[SliceInfo] = []
            for sl in slices:
                if sl.node_name:
                    by_node.setdefault(sl.node_name, []).append(sl)
                else:
                    shared.append(sl)
            slices_on_node, shared_slices = by_node, shared
        self.slices_on_node = slices_on_node
        self.shared_slices = shared_slices
        self._available_counters: dict[tuple[str, str], dict[str, dict[str, Decimal]]] = {}
        self.allocate_one_calls = 0

    def allocate(
        self, node: Node | None, claims: Sequence[ClaimInfo], *, deadline: float | None = None
    ) -> list[dict[str, Any]] | None:
        """Allocation results (API JSON) for every claim, None when they do not fit on the node;
        raises AllocationError (NodeAllocationError: this node only; AllocationTimeout: past
        `deadline`, a time.monotonic() value)."""
        run = _Run(self, node, claims, deadline)
        return run.allocate()


class _Run:
    """One Allocate call (upstream's `allocator`)."""

    def __init__(
        self,
        owner: Allocator,
        node: Node | None,
        claims: Sequence[ClaimInfo],
        deadline: float | None,
    ) -> None:
        self.a = owner
        self.deadline = deadline
        self.node = node
        self.claims = claims
        self.request_data: dict[tuple[int, int, int], _RequestData] = {}
        self.constraints: list[list[_MatchAttribute]] = [[] for _ in claims]
        self.results: list[list[_Result]] = [[] for _ in claims]
        self.allocating: dict[DeviceID, set[int]] = {}
        # capacity the shares of this attempt consume, per device (upstream allocatingCapacity)
        self.allocating_capacity: dict[DeviceID, dict[str, Decimal]] = {}
        self.consumed_counters: dict[tuple[str, str], dict[str, dict[str, Decimal]]] = {}
        self.pools: list[Pool] = []

    # ----- setup ---------------------------------------------------------------------------
    def allocate(self) -> list[dict[str, Any]] | None:
        name = self.node.name if self.node is not None else ""
        slices = [*self.a.slices_on_node.get(name, ()), *self.a.shared_slices]
        self.pools = gather_pools(slices, self.node, self.a.all_slices)
        for ci, claim in enumerate(self.claims):
            min_claim = 0
            for ri, request in enumerate(claim.spec.requests):
                if request.first_available:
                    min_req = None
                    for si, sub in enumerate(request.first_available):
                        data = self._validate(claim, sub, request.name, (ci, ri, si))
                        self.request_data[(ci, ri, si)] = data
                        min_req = (
                            data.num_devices if min_req is None else min(min_req, data.num_devices)
                        )
                    assert min_req is not None
                elif request.exactly is not None:
                    data = self._validate(claim, request.exactly, "", (ci, ri, 0))
                    self.request_data[(ci, ri, 0)] = data
                    min_req = data.num_devices
                else:
                    raise AllocationError(
                        f"claim {_kobj(claim)}, request {request.name}: unknown request type"
                    )
                if min_req > ALLOCATION_RESULTS_MAX_SIZE - min_claim:
                    raise AllocationError(
                        f"claim {_kobj(claim)}, request {request.name}: adding {min_req} devices "
                        f"exceeds the claim limit of {ALLOCATION_RESULTS_MAX_SIZE}, with "
                        f"{min_claim} already accounted for"
                    )
                min_claim += min_req
            for i, c in enumerate(claim.spec.constraints):
                self.constraints[ci].append(self._constraint(claim, i, c))
        try:
            done = self._allocate_one(0, 0, 0, 0, False, (0, 0, 0))
        except _Stop:
            return None
        except _MaxSizeExceeded:
            done = False
        if not done:
            if any(p.invalid for p in self.pools):
                raise NodeAllocationError("invalid resource pools were encountered")
            return None
        return [self._result(ci, claim) for ci, claim in enumerate(self.claims)]

    @staticmethod
    def _constraint(claim: ClaimInfo, i: int, c: Constraint) -> _MatchAttribute:
        if c.match_attribute:
            return _MatchAttribute(c.requests, c.match_attribute)
        if c.distinct_attribute:
            return _DistinctAttribute(c.requests, c.distinct_attribute)
        raise AllocationError(
            f"claim {_kobj(claim)}, constraint #{i}: empty constraint (unsupported constraint "
            "type?)"
        )

    def _validate(
        self, claim: ClaimInfo, spec: RequestSpec, parent: str, key: tuple[int, int, int]
    ) -> _RequestData:
        data = _RequestData(spec, parent, None)
        if spec.derived_attributes:
            raise AllocationError(
                f"claim {_kobj(claim)}, request {spec.name}: cannot handle request with derived "
                "attributes, the feature is disabled"
            )
        for i, selector in enumerate(spec.selectors):
            if not selector:
                raise AllocationError(
                    f"claim {_kobj(claim)}, request {spec.name}, selector #{i}: CEL expression "
                    "empty (unsupported selector type?)"
                )
        if not spec.class_name:
            raise AllocationError(
                f"claim {_kobj(claim)}, request {spec.name}: missing device class name "
                "(unsupported request type?)"
            )
        cls = self.a.classes.get(spec.class_name)
        if cls is None:
            raise AllocationError(
                f"claim {_kobj(claim)}, request {spec.name}: could not retrieve device class "
                f'{spec.class_name}: deviceclass.resource.k8s.io "{spec.class_name}" not found'
            )
        data.cls = cls
        if spec.mode == ALLOCATION_MODE_EXACT_COUNT:
            data.num_devices = spec.count
        elif spec.mode == ALLOCATION_MODE_ALL:
            for pool in self.pools:
                pool_name = f"{pool.id[0]}/{pool.id[1]}"
                if pool.incomplete:
                    raise AllocationError(
                        f"claim {_kobj(claim)}, request {spec.name}: asks for all devices, but "
                        f"resource pool {pool_name} is currently being updated"
                    )
                if pool.invalid:
                    raise AllocationError(
                        f"claim {_kobj(claim)}, request {spec.name}: asks for all devices, but "
                        f"resource pool {pool_name} is currently invalid"
                    )
                for sl in pool.slices:
                    for device in sl.devices:
                        if not self._selectable(key, data, sl, device):
                            continue
                        # static capacity only: what is taken is checked when allocating, so
                        # a device whose capacity is used up makes "All" fail
                        try:
                            ok = fits(
                                None,
                                spec.capacity,
                                device.capacities,
                                None,
                                fractional=self.a.fractional,
                            )
                        except CapacityError as exc:
                            raise AllocationError(
                                f"claim {_kobj(claim)}, request {spec.name}: checking capacity "
                                f"for device {device.name}: {exc}"
                            ) from None
                        if ok:
                            data.all_devices.append(
                                _Candidate((sl.driver, sl.pool, device.name), device, sl, pool)
                            )
            data.num_devices = len(data.all_devices)
        else:
            raise AllocationError(
                f"claim {_kobj(claim)}, request {spec.name}: unsupported count mode {spec.mode}"
            )
        return data

    # ----- search --------------------------------------------------------------------------
    def _allocate_one(
        self, ci: int, ri: int, si: int, di: int, in_sub: bool, start: tuple[int, int, int]
    ) -> bool:
        self.a.allocate_one_calls += 1
        if (
            self.deadline is not None
            and self.a.allocate_one_calls % 256 == 0
            and time.monotonic() > self.deadline
        ):
            raise AllocationTimeout("filter operation aborted: timed out")
        if ci >= len(self.claims):
            return True
        claim = self.claims[ci]
        if ri >= len(claim.spec.requests):
            try:
                return self._allocate_one(ci + 1, 0, 0, 0, False, (0, 0, 0))
            except _MaxSizeExceeded:
                return False
        data = self.request_data[(ci, ri, si)]
        if not in_sub and data.parent:
            all_exceeded = True
            sub = 0
            while (ci, ri, sub) in self.request_data:
                try:
                    ok = self._allocate_one(ci, ri, sub, di, True, (0, 0, 0))
                except _MaxSizeExceeded:
                    sub += 1
                    continue
                all_exceeded = False
                if ok:
                    self.request_data[(ci, ri, 0)].selected_sub = sub
                    return True
                sub += 1
            if all_exceeded:
                raise _MaxSizeExceeded
            return False
        spec = data.request
        do_all = spec.mode == ALLOCATION_MODE_ALL
        if do_all and not data.all_devices:
            return False
        if di >= data.num_devices:
            return self._allocate_one(ci, ri + 1, 0, 0, False, (0, 0, 0))
        remaining = data.num_devices - di
        if remaining > ALLOCATION_RESULTS_MAX_SIZE - len(self.results[ci]):
            raise _MaxSizeExceeded
        if do_all:
            cand = data.all_devices[di]
            undo = self._allocate_device(ci, ri, si, cand, must=True)
            if undo is None:
                return False
            try:
                done = self._allocate_one(ci, ri, si, di + 1, in_sub, (0, 0, 0))
            except BaseException:
                undo()
                raise
            if not done:
                undo()
            return done
        admin = bool(spec.admin_access)
        for pi in range(start[0], len(self.pools)):
            pool = self.pools[pi]
            if pool.incomplete or pool.invalid:
                continue
            slice_start = start[1] if pi == start[0] else 0
            for sli in range(slice_start, len(pool.slices)):
                sl = pool.slices[sli]
                dev_start = start[2] if pi == start[0] and sli == start[1] else 0
                for dvi in range(dev_start, len(sl.devices)):
                    device = sl.devices[dvi]
                    did = (pool.id[0], pool.id[1], device.name)
                    if admin and ci in self.allocating.get(did, ()):
                        continue
                    if not admin and self._in_use(did):
                        continue
                    if not self._selectable((ci, ri, si), data, sl, device):
                        continue
                    if not self._capacity_fits(ci, spec, did, device, "checking"):
                        continue
                    undo = self._allocate_device(
                        ci, ri, si, _Candidate(did, device, sl, pool), must=False
                    )
                    if undo is None:
                        continue
                    try:
                        done = self._allocate_one(ci, ri, si, di + 1, in_sub, (pi, sli, dvi + 1))
                    except BaseException:
                        undo()
                        raise
                    if done:
                        return True
                    undo()
        return False

    def _in_use(self, did: DeviceID) -> bool:
        return self.a._allocated(did) or bool(self.allocating.get(did))

    def _selectable(
        self, key: tuple[int, int, int], data: _RequestData, sl: SliceInfo, device: Device
    ) -> bool:
        """upstream isSelectable: class selectors, then the request's, then per-device node
        selection."""
        claim = self.claims[key[0]]
        if data.cls is not None and not self._selectors_match(
            claim, device, sl, data.cls.selectors, data.cls
        ):
            return False
        if not self._selectors_match(claim, device, sl, data.request.selectors, None):
            return False
        if sl.per_device_node_selection:
            return node_matches(self.node, device.node_name, device.all_nodes, device.node_selector)
        return True

    def _selectors_match(
        self,
        claim: ClaimInfo,
        device: Device,
        sl: SliceInfo,
        selectors: tuple[str, ...],
        cls: DeviceClassInfo | None,
    ) -> bool:
        for i, expression in enumerate(selectors):
            result = self.a.cache.matches(expression, device, sl.driver)
            if result is True:
                continue
            if result is False:
                return False
            owner = f"class {cls.name}" if cls is not None else f"claim {_kobj(claim)}"
            assert isinstance(result, str)
            if result.startswith("\x00"):
                raise AllocationError(
                    f"{owner}: selector #{i} on device {sl.driver}/{sl.pool}/{device.name}: CEL "
                    f"runtime error: {result[1:]}"
                )
            raise AllocationError(f"{owner}: selector #{i}: CEL compile error: {result}")
        return True

    def _allocate_device(
        self, ci: int, ri: int, si: int, cand: _Candidate, *, must: bool
    ) -> Callable[[], None] | None:
        """upstream allocateDevice: None when the device cannot be taken, else the undo."""
        claim = self.claims[ci]
        data = self.request_data[(ci, ri, si)]
        spec = data.request
        admin = bool(spec.admin_access)
        multi = cand.device.allow_multiple_allocations is True
        if not multi and admin and ci in self.allocating.get(cand.id, ()):
            return None
        if not admin and self._in_use(cand.id):
            return None
        counters = False
        # a shared device already in use has had its counters charged by its first share
        if cand.device.consumes_counters and not (multi and self._capacity_in_use(cand.id)):
            if not self._take_counters(cand):
                return None
            counters = True
        base, sub = (data.parent, spec.name) if data.parent else (spec.name, "")
        driver = cand.id[0]

        def rollback(added: int) -> None:
            for c in reversed(self.constraints[ci][:added]):
                c.remove(base, sub, cand.device, driver)
            if counters:
                self._release_counters(cand)

        if _tainted(cand.device, spec):
            rollback(0)
            return None
        added = 0
        for c in self.constraints[ci]:
            if not c.add(base, sub, cand.device, driver):
                rollback(added)
                if must:
                    raise AllocationError(
                        f"claim {_kobj(claim)}, request {spec.name}: cannot add device "
                        f"{'/'.join(cand.id)} because a claim constraint would not be satisfied"
                    )
                return None
            added += 1
        if not multi:
            self.allocating.setdefault(cand.id, set()).add(ci)

        def unmark() -> None:
            if not multi:
                self.allocating[cand.id].discard(ci)
            rollback(added)

        try:
            ok = self._capacity_fits(ci, spec, cand.id, cand.device, "rechecking")
        except AllocationError:
            unmark()
            raise
        if not ok:
            unmark()
            return None
        share_id: str | None = None
        consumed: dict[str, Quantity] = {}
        existed = False
        if multi:
            try:
                consumed = consumed_capacity(
                    spec.capacity, cand.device.capacities, fractional=self.a.fractional
                )
            except CapacityError as exc:
                unmark()
                raise AllocationError(
                    f"claim {_kobj(claim)}, request {spec.name}: computing consumed capacity "
                    f"for device {'/'.join(cand.id)}: {exc}"
                ) from None
            share_id = str(uuid.uuid4())  # upstream GenerateShareID: a random UUID
            existed = cand.id in self.allocating_capacity
            entry = self.allocating_capacity.setdefault(cand.id, {})
            for name, q in consumed.items():
                entry[name] = entry.get(name, Decimal(0)) + q.value
        previous = len(self.results[ci])
        self.results[ci].append(
            _Result(
                spec.name,
                data.parent,
                cand.id,
                cand.device,
                cand.slice,
                admin,
                spec,
                share_id,
                consumed or None,
            )
        )

        def undo() -> None:
            del self.results[ci][previous:]
            if multi:
                self._release_capacity(cand.id, consumed, existed)
            unmark()

        return undo

    # ----- consumable capacity -------------------------------------------------------------
    def _capacity_in_use(self, did: DeviceID) -> bool:
        """upstream deviceCapacityInUse: allocated claims or this attempt share the device."""
        return self.a._shared(did) is not None or did in self.allocating_capacity

    def _capacity_fits(
        self, ci: int, spec: RequestSpec, did: DeviceID, device: Device, verb: str
    ) -> bool:
        """upstream allocator.CmpRequestOverCapacity, its error worded as upstream's caller."""
        if not device.capacities and not spec.capacity:
            return True  # nothing to consume, nothing asked for
        try:
            return fits(
                self.a._shared(did),
                spec.capacity,
                device.capacities,
                self.allocating_capacity.get(did),
                fractional=self.a.fractional,
            )
        except CapacityError as exc:
            raise AllocationError(
                f"claim {_kobj(self.claims[ci])}, request {spec.name}: {verb} capacity for "
                f"device {'/'.join(did)}: {exc}"
            ) from None

    def _release_capacity(
        self, did: DeviceID, consumed: Mapping[str, Quantity], existed: bool
    ) -> None:
        """upstream ConsumedCapacityCollection.Remove, keeping the (empty) entry an earlier
        share of the device still relies on."""
        entry = self.allocating_capacity.get(did)
        if entry is not None:
            for name, q in consumed.items():
                if name in entry:
                    entry[name] -= q.value
            if all(v == 0 for v in entry.values()):
                del self.allocating_capacity[did]
        if existed and did not in self.allocating_capacity:
            self.allocating_capacity[did] = {}

    # ----- shared counters (partitionable devices) -----------------------------------------
    def _available(self, pool: Pool) -> dict[str, dict[str, Decimal]]:
        key = pool.id
        found = self.a._available_counters.get(key)
        if found is not None:
            return found
        available = {name: dict(counters) for name, counters in pool.counter_sets.items()}
        for group in (pool.slices, pool.slices_elsewhere):
            for sl in group:
                for device in sl.devices:
                    did = (sl.driver, sl.pool, device.name)
                    # upstream IsDeviceAllocated: held whole, or shared by allocated claims
                    if not self.a._allocated(did) and self.a._shared(did) is None:
                        continue
                    for set_name, counters in device.consumes_counters:
                        have = available.get(set_name)
                        if have is None:
                            continue
                        for name, value in counters.items():
                            if name in have:
                                have[name] -= value
        self.a._available_counters[key] = available
        return available

    def _take_counters(self, cand: _Candidate) -> bool:
        available = self._available(cand.pool)
        consumed = self.consumed_counters.setdefault(cand.pool.id, {})
        for set_name, counters in cand.device.consumes_counters:
            have = consumed.setdefault(set_name, {})
            for name, value in counters.items():
                have[name] = have.get(name, Decimal(0)) + value
        for set_name, counters in available.items():
            used = consumed.get(set_name, {})
            for name, value in counters.items():
                if value < used.get(name, Decimal(0)):
                    self._release_counters(cand)
                    return False
        return True

    def _release_counters(self, cand: _Candidate) -> None:
        consumed = self.consumed_counters.get(cand.pool.id, {})
        for set_name, counters in cand.device.consumes_counters:
            have = consumed.get(set_name, {})
            for name, value in counters.items():
                have[name] = have.get(name, Decimal(0)) - value

    # ----- the result ----------------------------------------------------------------------
    def _result(self, ci: int, claim: ClaimInfo) -> dict[str, Any]:
        results = []
        for r in self.results[ci]:
            entry: dict[str, Any] = {
                "request": r.request_name,
                "driver": r.id[0],
                "pool": r.id[1],
                "device": r.id[2],
            }
            if r.admin_access:
                entry["adminAccess"] = True
            if r.share_id is not None:
                entry["shareID"] = r.share_id
            if r.consumed:
                entry["consumedCapacity"] = {k: str(q) for k, q in r.consumed.items()}
            if r.spec.tolerations:
                entry["tolerations"] = [t.to_json() for t in r.spec.tolerations]
            if r.device.binding_conditions:
                entry["bindingConditions"] = list(r.device.binding_conditions)
            if r.device.binding_failure_conditions:
                entry["bindingFailureConditions"] = list(r.device.binding_failure_conditions)
            results.append(entry)
        config = self._config(ci, claim)
        devices: dict[str, Any] = {}
        if results:
            devices["results"] = results
        if config:
            devices["config"] = config
        out: dict[str, Any] = {"devices": devices}
        selector = self._node_selector(self.results[ci])
        if selector is not None:
            out["nodeSelector"] = selector
        return out

    def _selected(self, ci: int, ri: int) -> _RequestData:
        data = self.request_data[(ci, ri, 0)]
        if data.parent:
            data = self.request_data[(ci, ri, data.selected_sub)]
        return data

    def _config(self, ci: int, claim: ClaimInfo) -> list[dict[str, Any]]:
        config: list[dict[str, Any]] = []
        by_class: dict[str, tuple[int, int]] = {}
        for ri in range(len(claim.spec.requests)):
            data = self._selected(ci, ri)
            cls = data.cls
            if cls is None:
                continue
            if cls.name in by_class:
                start, end = by_class[cls.name]
                for i in range(start, end):
                    config[i]["requests"].append(data.name)
                continue
            start = len(config)
            for c in cls.config:
                entry = {k: v for k, v in c.items() if k != "requests"}
                config.append({"source": "FromClass", "requests": [data.name], **entry})
            by_class[cls.name] = (start, len(config))
        for c in claim.spec.config:
            wanted = list(c.get("requests") or [])
            entry = {k: v for k, v in c.items() if k != "requests"}
            if not wanted:
                config.append({"source": "FromClaim", **entry})
                continue
            for ri, request in enumerate(claim.spec.requests):
                if request.name in wanted:
                    config.append({"source": "FromClaim", "requests": wanted, **entry})
                    break
                data = self.request_data[(ci, ri, 0)]
                if not data.parent:
                    continue
                sub = request.first_available[data.selected_sub]
                if f"{request.name}/{sub.name}" in wanted:
                    config.append({"source": "FromClaim", "requests": wanted, **entry})
                    break
        for entry in config:
            requests = entry.get("requests")
            if not requests:
                continue
            covers_all = True
            for ri, request in enumerate(claim.spec.requests):
                if request.name in requests:
                    continue
                data = self.request_data[(ci, ri, 0)]
                if data.parent:
                    sub = request.first_available[data.selected_sub]
                    if f"{request.name}/{sub.name}" in requests:
                        continue
                covers_all = False
                break
            if covers_all:
                del entry["requests"]
        return config

    def _node_selector(self, results: list[_Result]) -> dict[str, Any] | None:
        """upstream createNodeSelector."""
        fields: list[dict[str, Any]] = []
        expressions: list[dict[str, Any]] = []
        target = self.node.name if self.node is not None else ""
        for r in results:
            if r.slice.per_device_node_selection:
                node_name, selector = r.device.node_name, r.device.node_selector
            else:
                node_name, selector = r.slice.node_name, r.slice.node_selector
            if node_name or r.device.binds_to_node:
                return {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [target]}
                            ]
                        }
                    ]
                }
            if selector is None or not selector.raw:
                continue
            terms = selector.raw.get("nodeSelectorTerms") or []
            if len(terms) == 1:
                first = terms[0] or {}
                _add_requirements(first.get("matchFields") or [], fields)
                _add_requirements(first.get("matchExpressions") or [], expressions)
            elif len(terms) > 1:
                raise AllocationError(
                    f"create NodeSelector: unsupported ResourceSlice.NodeSelector with "
                    f"{len(terms)} terms"
                )
        if not fields and not expressions:
            return None
        term: dict[str, Any] = {}
        if expressions:
            term["matchExpressions"] = expressions
        if fields:
            term["matchFields"] = fields
        return {"nodeSelectorTerms": [term]}


def _add_requirements(source: list[dict[str, Any]], into: list[dict[str, Any]]) -> None:
    for req in source:
        values = set(req.get("values") or [])
        if not any(
            r.get("key") == req.get("key")
            and r.get("operator") == req.get("operator")
            and set(r.get("values") or []) == values
            for r in into
        ):
            into.append(req)


def _no_shares(did: DeviceID) -> None:
    return None


def _tainted(device: Device, spec: RequestSpec) -> bool:
    """upstream taintPreventsAllocation: an untolerated NoSchedule or NoExecute taint."""
    for taint in device.taints:
        if taint.effect in ("NoSchedule", "NoExecute") and not any(
            t.tolerates(taint) for t in spec.tolerations
        ):
            return True
    return False
