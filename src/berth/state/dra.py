"""DeviceClasses, ResourceSlices, ResourceClaims, claim templates and DeviceTaintRules, with the
devices in use.

The DynamicResources plugin reads everything here (upstream's SharedDRAManager): slices indexed
by node (node-local ones) and the shared ones (network-attached), the allocated devices counted
from every claim's `status.allocation`, and on top of the API objects the claims Reserve
allocated but PreBind has not written yet (upstream's in-flight allocations), which count as
allocated at once, so the next pod never gets the same device. A newer API object replaces an
assumed claim (upstream's assume cache). The per-selector device matches the plugin derives are
cached against `slices_version` and `claims_version`. Slices are held with the taints of the
DeviceTaintRules that select their devices added (upstream ListWithDeviceTaintRules). CEL
selectors are compiled when their class or claim is delivered, not in the first decision that
reads them (the first compilation also builds the CEL environment: 3-4 ms).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Protocol

from berth.dra.allocator import DeviceID, MatchCache
from berth.dra.cel import Compiled, compile_selector
from berth.objects.dra import (
    RESOURCE_DEVICE_CLASS_PREFIX,
    ClaimInfo,
    DeviceClassInfo,
    SliceInfo,
    TaintRuleInfo,
    TemplateInfo,
    parse_claim_template,
    parse_device_class,
    parse_device_taint_rule,
    parse_resource_claim,
    parse_resource_slice,
)
from berth.state.store import Store, object_key

log = logging.getLogger("berth.state.dra")
Obj = dict[str, Any]
KINDS = (
    "DeviceClass",
    "ResourceSlice",
    "ResourceClaim",
    "ResourceClaimTemplate",
    "DeviceTaintRule",
)
MAX_LOG = 1 << 17


def _rv(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


class ClaimWriter(Protocol):
    """DynamicResources' I/O port for claim writes (a live front: the API)."""

    def bind_claim(
        self, claim: ClaimInfo, allocation: dict[str, Any] | None, consumer: dict[str, Any]
    ) -> Awaitable[dict[str, Any] | str]:
        """Add the finalizer, the allocation (if any) and `consumer` to status.reservedFor;
        the updated claim, or an error."""
        ...

    def deallocate(self, claim: ClaimInfo) -> None:
        """Clear status.allocation, reservedFor and devices (in the background)."""
        ...

    def unreserve(self, claim: ClaimInfo, pod_uid: str) -> None:
        """Remove the pod from status.reservedFor (in the background)."""
        ...

    def create_claim(self, body: dict[str, Any]) -> Awaitable[dict[str, Any] | str]:
        """Create a claim (the special claim of extended resources); the created object, or
        an error."""
        ...

    def delete_claim(self, claim: ClaimInfo) -> None:
        """Remove the finalizer, then delete the claim (in the background)."""
        ...

    def patch_pod_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> Awaitable[str | None]:
        """Merge `status` into the pod's status; None, or an error."""
        ...


class DRAIndex(Store):
    """The resource.k8s.io objects of the cluster, with in-flight allocations overlaid."""

    kinds = KINDS

    def __init__(self) -> None:
        self.classes: dict[str, DeviceClassInfo] = {}
        self.slices: dict[str, SliceInfo] = {}  # with the taint rules' taints
        self._published: dict[str, SliceInfo] = {}  # as the API holds them
        self.taint_rules: dict[str, TaintRuleInfo] = {}
        self.slices_on_node: dict[str, list[SliceInfo]] = {}
        self.shared_slices: list[SliceInfo] = []
        self.claims: dict[str, ClaimInfo] = {}  # "namespace/name"
        self.claims_by_uid: dict[str, str] = {}
        # extended resource name -> the class serving it (upstream's ExtendedResourceCache)
        self.extended: dict[str, DeviceClassInfo] = {}
        # pod uid -> "namespace/name" of its special extended-resource claim
        self.extended_claims: dict[str, str] = {}
        # class name -> its devices per node, for scoring extended resources (kept by
        # berth.plugins.extendedresources against the versions below)
        self.class_devices: dict[str, Any] = {}
        self.templates: dict[str, TemplateInfo] = {}
        # Reserve's allocations not yet in the API (uid -> claim with status.allocation)
        self.in_flight: dict[str, ClaimInfo] = {}
        # PreBind's writes the informer has not delivered yet ("namespace/name" -> claim)
        self.assumed: dict[str, ClaimInfo] = {}
        self.allocated: Counter[DeviceID] = Counter()  # devices allocated to one claim
        # devices shared by claims (consumable capacity): how many shares, the capacity they
        # consume together (upstream AllocatedSharedDeviceIDs, AggregatedCapacity)
        self.share_counts: Counter[DeviceID] = Counter()
        self.shared_capacity: dict[DeviceID, dict[str, Decimal]] = {}
        # every share counted (+1) or given back (-1) with what it consumes, in order, for a
        # consumer keeping per-device sums (`share_log_epoch` bumps when the log is cut short)
        self.share_log: list[tuple[DeviceID, dict[str, Decimal], int]] = []
        self.share_log_epoch = 0
        # Every device that became used (True) or free (False), in order: a consumer keeping a
        # mask of used devices applies the entries since it last looked (`allocation_log`).
        self.allocation_log: list[tuple[DeviceID, bool]] = []
        self.log_epoch = 0  # bumped when the log is cut short: consumers rebuild their mask
        self._counted: dict[str, tuple[DeviceID, ...]] = {}  # claim uid -> devices counted
        # claim uid -> its shares counted (device, consumed capacity)
        self._shares_counted: dict[str, tuple[tuple[DeviceID, dict[str, Decimal]], ...]] = {}
        self.match_cache = MatchCache()
        # class name -> its selectors, compiled when the class was delivered
        self.compiled: dict[str, tuple[Compiled, ...]] = {}
        self.slices_version = 0
        self._all_slices: tuple[int, tuple[SliceInfo, ...]] = (-1, ())
        self.classes_version = 0
        self.claims_version = 0
        # False in a front whose caller already allocated devices (the extender: kube-scheduler
        # runs its own DynamicResources); the plugin then skips.
        self.tracked = True

    # ----- reads -------------------------------------------------------------------------------
    def claim(self, namespace: str, name: str) -> ClaimInfo | None:
        key = f"{namespace}/{name}"
        return self.assumed.get(key) or self.claims.get(key)

    def device_class_for(self, resource: str) -> DeviceClassInfo | None:
        """upstream DeviceClassResolver.GetDeviceClass: the class an extended resource name
        maps to, explicitly (spec.extendedResourceName) or implicitly
        (deviceclass.resource.kubernetes.io/<class>)."""
        return self.extended.get(resource) if self.extended else None

    def extended_claim(self, namespace: str, pod_name: str, pod_uid: str) -> ClaimInfo | None:
        """upstream findExtendedResourceClaim: the pod's special claim from an earlier cycle."""
        key = self.extended_claims.get(pod_uid)
        if key is None:
            return None
        found = self.claim(*key.split("/", 1))
        if found is None or found.extended_for != (pod_name, pod_uid):
            return None
        return found

    def _remap_extended(self) -> None:
        """Rebuild the name -> class map. Two classes naming the same extendedResourceName:
        the newer one wins, the lower name on a tie (upstream updateResourceName2class)."""
        out: dict[str, DeviceClassInfo] = {}
        for cls in self.classes.values():
            out[RESOURCE_DEVICE_CLASS_PREFIX + cls.name] = cls
        for cls in sorted(self.classes.values(), key=lambda c: (c.created, _neg(c.name))):
            if cls.extended_resource_name:
                out[cls.extended_resource_name] = cls
        self.extended = out

    def pending_allocation(self, uid: str) -> ClaimInfo | None:
        return self.in_flight.get(uid)

    def is_allocated(self, device: DeviceID) -> bool:
        return self.allocated.get(device, 0) > 0

    def shared_use(self, device: DeviceID) -> Mapping[str, Decimal] | None:
        """The capacity allocated claims' shares of `device` consume ({} for shares without
        consumed capacity); None when no allocated claim shares it."""
        if not self.share_counts.get(device):
            return None
        return self.shared_capacity.get(device, {})

    def all_slices(self) -> tuple[SliceInfo, ...]:
        """Every slice, read-only: one tuple per slices_version (each PreFilter's allocator
        takes it; a fresh list per decision was 0.2 ms at 5,000 slices)."""
        if self._all_slices[0] != self.slices_version:
            self._all_slices = (self.slices_version, tuple(self.slices.values()))
        return self._all_slices[1]

    @property
    def empty(self) -> bool:
        return not self.slices and not self.claims

    def devices_in_use(self) -> Iterator[tuple[DeviceID, str]]:
        """(device, claim key) for every allocated device, in-flight ones included."""
        for uid, devices in self._counted.items():
            key = self.claims_by_uid.get(uid, uid)
            for d in devices:
                yield d, key

    # ----- allocated devices -------------------------------------------------------------------
    def _effective(self, uid: str) -> ClaimInfo | None:
        found = self.in_flight.get(uid)
        if found is not None:
            return found
        key = self.claims_by_uid.get(uid)
        if key is None:
            return None
        return self.assumed.get(key) or self.claims.get(key)

    def _recount(self, uid: str) -> None:
        for d in self._counted.pop(uid, ()):
            self.allocated[d] -= 1
            if self.allocated[d] <= 0:
                del self.allocated[d]
                self.allocation_log.append((d, False))
        for d, consumed in self._shares_counted.pop(uid, ()):
            self._add_share(d, consumed, -1)
        claim = self._effective(uid)
        if claim is None or claim.allocation is None:
            return
        # upstream foreachAllocatedDevice: admin access takes nothing; a result with a share
        # ID is one share of a device, the others hold their device alone
        results = [r for r in claim.allocation.results if not r.admin_access]
        devices = tuple(r.device_id for r in results if r.share_id is None)
        for d in devices:
            self.allocated[d] += 1
            if self.allocated[d] == 1:
                self.allocation_log.append((d, True))
        self._counted[uid] = devices
        shares = tuple(
            (r.device_id, dict(r.consumed_capacity or {})) for r in results if r.share_id
        )
        for d, consumed in shares:
            self._add_share(d, consumed, 1)
        if shares:
            self._shares_counted[uid] = shares
        self.claims_version += 1
        if len(self.allocation_log) > MAX_LOG:
            self.allocation_log.clear()
            self.log_epoch += 1

    def _add_share(self, device: DeviceID, consumed: dict[str, Decimal], sign: int) -> None:
        self.share_log.append((device, consumed, sign))
        if len(self.share_log) > MAX_LOG:
            self.share_log.clear()
            self.share_log_epoch += 1
        self.share_counts[device] += sign
        total = self.shared_capacity.setdefault(device, {})
        for name, value in consumed.items():
            total[name] = total.get(name, Decimal(0)) + sign * value
        if self.share_counts[device] <= 0:
            del self.share_counts[device]
            del self.shared_capacity[device]

    # ----- in-flight allocations (Reserve / Unreserve / PreBind) -------------------------------
    def signal_pending_allocation(self, claim: ClaimInfo) -> None:
        """upstream SignalClaimPendingAllocation: `claim` carries the allocation Reserve chose."""
        self.in_flight[claim.uid] = claim
        self.claims_by_uid.setdefault(claim.uid, claim.key)
        self._recount(claim.uid)
        self.claims_version += 1

    def remove_pending_allocation(self, uid: str) -> bool:
        removed = self.in_flight.pop(uid, None)
        if removed is None:
            return False
        key = self.claims_by_uid.get(uid)
        if key is not None and key not in self.claims and key not in self.assumed:
            del self.claims_by_uid[uid]  # an in-memory claim (extended resources)
        self._recount(uid)
        self.claims_version += 1
        return True

    def assume(self, claim: ClaimInfo) -> None:
        """A claim PreBind wrote (or, offline, would have written): it wins until the informer
        delivers a newer version."""
        self.assumed[claim.key] = claim
        self.claims_by_uid[claim.uid] = claim.key
        self._recount(claim.uid)
        self.claims_version += 1

    def restore(self, key: str) -> None:
        claim = self.assumed.pop(key, None)
        if claim is not None:
            self._recount(claim.uid)
            self.claims_version += 1

    # ----- fed by berth.feed ------------------------------------------------------------------
    def upsert(self, obj: Obj) -> bool:
        """Add or replace a resource.k8s.io object (ObjectError if malformed); other kinds are
        ignored."""
        kind = obj.get("kind")
        if kind not in KINDS:
            return False
        if kind == "ResourceSlice":
            self._add_slice(parse_resource_slice(obj))
        elif kind == "DeviceTaintRule":
            rule = parse_device_taint_rule(obj)
            self.taint_rules[rule.name] = rule
            self._retaint()
        elif kind == "DeviceClass":
            cls = parse_device_class(obj)
            self.classes[cls.name] = cls
            self.compiled.pop(cls.name, None)
            with _setup_failures_logged(cls.name):
                self.compiled[cls.name] = tuple(compile_selector(e) for e in cls.selectors)
            self.classes_version += 1
            self._remap_extended()
        elif kind == "ResourceClaim":
            claim = parse_resource_claim(obj)
            if not claim.namespace:
                claim = _with_namespace(claim, "default")
            old = self.claims.get(claim.key)
            if old is not None and old.uid != claim.uid:
                self._drop_claim(old)
            self.claims[claim.key] = claim
            self.claims_by_uid[claim.uid] = claim.key
            if claim.extended_for is not None:
                self.extended_claims[claim.extended_for[1]] = claim.key
            assumed = self.assumed.get(claim.key)
            if assumed is not None and _rv(claim.resource_version) >= _rv(assumed.resource_version):
                del self.assumed[claim.key]
            self._recount(claim.uid)
            self.claims_version += 1
            if claim.allocation is None:
                with _setup_failures_logged(claim.key):
                    _compile_requests(claim)
        else:
            template = parse_claim_template(obj)
            self.templates[f"{template.namespace}/{template.name}"] = template
        return True

    def _tainted(self, sl: SliceInfo) -> SliceInfo:
        """The slice with the taints of the rules selecting its devices appended."""
        rules = [
            r
            for r in self.taint_rules.values()
            if any(r.applies(sl.driver, sl.pool, d.name) for d in sl.devices)
        ]
        if not rules:
            return sl
        devices = []
        for d in sl.devices:
            extra = tuple(r.taint for r in rules if r.applies(sl.driver, sl.pool, d.name))
            devices.append(dataclasses.replace(d, taints=d.taints + extra) if extra else d)
        return dataclasses.replace(sl, devices=tuple(devices))

    def _retaint(self) -> None:
        for sl in list(self._published.values()):
            self._add_slice(sl)

    def _add_slice(self, published: SliceInfo) -> None:
        self._remove_slice(published.name)
        self._published[published.name] = published
        sl = self._tainted(published)
        self.slices[sl.name] = sl
        if sl.node_name:
            self.slices_on_node.setdefault(sl.node_name, []).append(sl)
        else:
            self.shared_slices.append(sl)
        self.slices_version += 1

    def _remove_slice(self, name: str) -> None:
        self._published.pop(name, None)
        old = self.slices.pop(name, None)
        if old is None:
            return
        if old.node_name:
            on_node = self.slices_on_node.get(old.node_name, [])
            on_node[:] = [s for s in on_node if s.name != name]
            if not on_node:
                self.slices_on_node.pop(old.node_name, None)
        else:
            self.shared_slices[:] = [s for s in self.shared_slices if s.name != name]
        self.slices_version += 1

    def _drop_claim(self, claim: ClaimInfo) -> None:
        owner = claim.extended_for
        if owner is not None and self.extended_claims.get(owner[1]) == claim.key:
            del self.extended_claims[owner[1]]
        self.claims.pop(claim.key, None)
        self.assumed.pop(claim.key, None)
        self.claims_by_uid.pop(claim.uid, None)
        self._recount(claim.uid)
        self.claims_version += 1

    def delete(self, obj: Obj) -> None:
        kind = obj.get("kind")
        key = object_key(obj)
        if kind == "ResourceSlice":
            self._remove_slice(key)
        elif kind == "DeviceTaintRule":
            if self.taint_rules.pop(key, None) is not None:
                self._retaint()
        elif kind == "DeviceClass":
            self.classes.pop(key, None)
            self.compiled.pop(key, None)
            self.classes_version += 1
            self._remap_extended()
        elif kind == "ResourceClaim":
            if "/" not in key:
                key = f"default/{key}"
            claim = self.claims.get(key)
            if claim is not None:
                self._drop_claim(claim)
        elif kind == "ResourceClaimTemplate":
            self.templates.pop(key, None)


@contextlib.contextmanager
def _setup_failures_logged(name: str) -> Iterator[None]:
    """A failure to compile ahead (a broken CEL environment: a bug, not the object's fault)
    must not refuse the object; the decision that needs the selectors compiles them again."""
    try:
        yield
    except Exception:
        log.exception("compiling CEL selectors ahead failed", extra={"object": name})


def _compile_requests(claim: ClaimInfo) -> None:
    """Compile the selectors of a claim still to allocate (into compile_selector's cache)."""
    for request in claim.spec.requests:
        specs = (request.exactly,) if request.exactly is not None else request.first_available
        for spec in specs:
            for expression in spec.selectors:
                compile_selector(expression)


def _neg(name: str) -> tuple[int, ...]:
    """A key sorting names in reverse, so the lowest name comes last (and wins)."""
    return (*(-ord(c) for c in name), 1)


def _with_namespace(claim: ClaimInfo, namespace: str) -> ClaimInfo:
    import dataclasses

    return dataclasses.replace(claim, namespace=namespace)
