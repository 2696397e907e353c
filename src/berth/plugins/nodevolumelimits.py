"""NodeVolumeLimits: a node takes at most its CSINode's `allocatable.count` volumes per CSI driver.

Upstream: pkg/scheduler/framework/plugins/nodevolumelimits/csi.go (CSILimits). A pod's claims
(and generic ephemeral volumes) count as their PV's `spec.csi` driver and volume handle, or, not
bound yet, as their StorageClass's provisioner with a handle of their own; inline and PV in-tree
AWS EBS / GCE PD / Azure Disk / Cinder volumes count as the CSI volume they migrated to
(`berth.objects.csitranslation`). A volume already attached to the node (used by a placed pod)
is not counted again. Too many for a driver: `node(s) exceed max volume count`.

Pods without such volumes Skip at PreFilter. The attached volumes per node are not recounted per
decision: `_Attached` keeps the distinct volumes of every slot, by driver, and updates only the
slots whose pods changed (ClusterState.volume_gen) or whose claims, PVs or classes changed (the
VolumeIndex journal); Filter is then a few array operations per driver of the new pod.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from berth.framework.events import (
    CSI_NODE,
    NODE,
    PERSISTENT_VOLUME_CLAIM,
    POD,
    ActionType,
    ClusterEventWithHint,
    on,
)
from berth.framework.plugin import (
    CycleState,
    FilterPlugin,
    Handle,
    PreFilterPlugin,
    PreFilterResult,
)
from berth.framework.status import SKIP, SUCCESS, Status, error, unresolvable, unschedulable
from berth.objects.csitranslation import Attach, provisioner_driver
from berth.objects.pod import PodInfo
from berth.objects.volumes import PVCInfo
from berth.plugins.registry import register
from berth.plugins.storagehelpers import not_found
from berth.state.cluster import BoolArray, ClusterState, IndexArray, IntArray
from berth.state.volumes import VolumeIndex

NAME = "NodeVolumeLimits"
ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED = "node(s) exceed max volume count"
_STATE_KEY = "PreFilter" + NAME
# Upstream gives an unbound claim the handle `<random prefix>-<namespace>/<claim>`; a NUL never
# appears in a real handle, so this prefix cannot collide either, and is reproducible.
UNBOUND_PREFIX = "\0unbound-"


def unique_name(attach: Attach) -> str:
    return f"{attach[0]}/{attach[1]}"


def resolve_claim(volumes: VolumeIndex, pvc: PVCInfo) -> Attach | None:
    """upstream getCSIDriverInfo: the bound PV's CSI source (in-tree ones translated), else the
    class's provisioner (getCSIDriverInfoFromSC); None when the claim is not counted."""
    if pvc.volume_name:
        pv = volumes.pv(pvc.volume_name)
        if pv is not None:
            return pv.attach if pv.attach is not None and all(pv.attach) else None
    if not pvc.storage_class:
        return None  # no class: bound before scheduling (Immediate), safe not to count
    sc = volumes.classes.get(pvc.storage_class)
    if sc is None:
        return None
    driver = provisioner_driver(sc.provisioner)
    if not driver:
        return None
    return driver, f"{UNBOUND_PREFIX}{pvc.namespace}/{pvc.name}"


@dataclass(slots=True)
class _State:
    # upstream's Filter errors, independent of the node (missing claim, foreign ephemeral claim)
    problem: Status | None = None
    # an inline volume csi-translation-lib refuses: an error on nodes with a CSINode
    inline_problem: Status | None = None
    new: dict[str, str] = field(default_factory=dict)  # unique volume name -> driver


class _Attached:
    """The distinct attachable volumes of the placed pods, per node slot and CSI driver."""

    def __init__(self) -> None:
        self.cursor = -1  # VolumeIndex journal position; -1: rebuild everything
        self.seen_gen: IntArray = np.zeros(0, dtype=np.int64)
        self.resolved: dict[str, Attach | None] = {}  # ref -> what it counts as
        self.pv_deps: dict[str, set[str]] = {}  # PV name -> refs resolved through it
        self.sc_deps: dict[str, set[str]] = {}  # class name -> refs resolved through it
        self.ref_slots: dict[str, set[int]] = {}
        self.slot_refs: dict[int, dict[str, Attach | None]] = {}  # slot -> ref -> volume
        self.slot_uniques: dict[int, Counter[str]] = {}
        self.unique_slots: dict[str, set[int]] = {}
        self.counts: dict[str, IntArray] = {}  # driver -> distinct volumes per slot
        # driver -> allocatable.count per slot (-1: no limit), and the slots with a CSINode
        self.limits: dict[str, IntArray] = {}
        self.has_csinode: BoolArray = np.zeros(0, dtype=bool)
        self.limits_key: tuple[int, int] | None = None

    # ----- keeping up ----------------------------------------------------------------------------
    def sync(self, state: ClusterState, volumes: VolumeIndex) -> None:
        cap = len(state.volume_gen)
        if len(self.seen_gen) != cap:
            self._grow(cap)
        changes = volumes.changes_since(self.cursor) if self.cursor >= 0 else None
        dirty: set[int] = set()
        csinode_changed = False
        if changes is None:
            self._reset(cap)
            csinode_changed = True
        else:
            for kind, key in changes:
                if kind == "PersistentVolumeClaim":
                    refs: set[str] = {key}
                elif kind == "PersistentVolume":
                    refs = self.pv_deps.pop(key, set())
                elif kind == "StorageClass":
                    refs = self.sc_deps.pop(key, set())
                else:
                    csinode_changed = True
                    continue
                for ref in refs:
                    self.resolved.pop(ref, None)
                    dirty.update(self.ref_slots.get(ref, ()))
        self.cursor = volumes.change_seq
        dirty.update(np.flatnonzero(self.seen_gen != state.volume_gen).tolist())
        for slot in dirty:
            self._recount(state, volumes, slot)
        self.seen_gen = state.volume_gen.copy()
        limits_key = (state.slots_version, cap)
        if csinode_changed or self.limits_key != limits_key:
            self._build_limits(state, volumes, cap)
            self.limits_key = limits_key

    def _grow(self, cap: int) -> None:
        old = len(self.seen_gen)
        self.seen_gen = np.concatenate([self.seen_gen, np.full(cap - old, -1, dtype=np.int64)])
        for d, arr in self.counts.items():
            self.counts[d] = np.concatenate([arr, np.zeros(cap - old, dtype=np.int64)])

    def _reset(self, cap: int) -> None:
        self.seen_gen = np.full(cap, -1, dtype=np.int64)
        self.resolved.clear()
        self.pv_deps.clear()
        self.sc_deps.clear()
        self.ref_slots.clear()
        self.slot_refs.clear()
        self.slot_uniques.clear()
        self.unique_slots.clear()
        self.counts.clear()

    def _build_limits(self, state: ClusterState, volumes: VolumeIndex, cap: int) -> None:
        self.limits = {}
        self.has_csinode = np.zeros(cap, dtype=bool)
        for name, csinode in volumes.csinodes.items():
            slot = state.index.get(name)
            if slot is None:
                continue
            self.has_csinode[slot] = True
            for driver, count in csinode.drivers.items():
                if count is None:
                    continue
                arr = self.limits.get(driver)
                if arr is None:
                    arr = self.limits[driver] = np.full(cap, -1, dtype=np.int64)
                arr[slot] = count

    def _resolve(self, volumes: VolumeIndex, ref: str) -> Attach | None:
        if ref in self.resolved:
            return self.resolved[ref]
        found: Attach | None = None
        if ref.startswith("\0"):
            _, driver, handle = ref.split("\0", 2)
            found = (driver, handle)
        else:
            namespace, name = ref.split("/", 1)
            pvc = volumes.pvc(namespace, name)
            # A placed pod's missing claim is not counted (upstream: no guarantee it is its).
            if pvc is not None:
                found = resolve_claim(volumes, pvc)
                if pvc.volume_name:
                    self.pv_deps.setdefault(pvc.volume_name, set()).add(ref)
                if pvc.storage_class:
                    self.sc_deps.setdefault(pvc.storage_class, set()).add(ref)
        self.resolved[ref] = found
        return found

    def _recount(self, state: ClusterState, volumes: VolumeIndex, slot: int) -> None:
        for ref, attach in self.slot_refs.pop(slot, {}).items():
            slots = self.ref_slots.get(ref)
            if slots is not None:
                slots.discard(slot)
                if not slots:
                    del self.ref_slots[ref]
            if attach is not None:
                self._count(slot, attach, -1)
        refs = state.node_volumes.get(slot)
        if not refs:
            return
        now: dict[str, Attach | None] = {}
        for ref in refs:
            self.ref_slots.setdefault(ref, set()).add(slot)
            now[ref] = attach = self._resolve(volumes, ref)
            if attach is not None:
                self._count(slot, attach, +1)
        self.slot_refs[slot] = now

    def _count(self, slot: int, attach: Attach, sign: int) -> None:
        """One more (or less) ref to a volume on `slot`; the driver's count moves when the
        volume appears on (or leaves) the slot."""
        unique = unique_name(attach)
        held = self.slot_uniques.setdefault(slot, Counter())
        before = held[unique]
        held[unique] = before + sign
        if before == 0 and sign > 0:
            arr = self.counts.get(attach[0])
            if arr is None:
                arr = self.counts[attach[0]] = np.zeros(len(self.seen_gen), dtype=np.int64)
            arr[slot] += 1
            self.unique_slots.setdefault(unique, set()).add(slot)
        elif before == 1 and sign < 0:
            self.counts[attach[0]][slot] -= 1
            del held[unique]
            if not held:
                del self.slot_uniques[slot]
            slots = self.unique_slots[unique]
            slots.discard(slot)
            if not slots:
                del self.unique_slots[unique]


class NodeVolumeLimits(PreFilterPlugin, FilterPlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        # upstream CSILimits: CSINode Add, Pod Delete, PVC Add; Berth adds CSINode Update (a
        # limit raised in place) and Node Add (a node whose CSINode came first).
        return (
            on(CSI_NODE, ActionType.ADD | ActionType.UPDATE),
            on(POD, ActionType.DELETE),
            on(PERSISTENT_VOLUME_CLAIM, ActionType.ADD),
            on(NODE, ActionType.ADD),
        )

    def __init__(self, *, args: Any, handle: Handle) -> None:
        super().__init__(args=args, handle=handle)
        self._attached = _Attached()

    # ----- PreFilter ---------------------------------------------------------------------------
    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        if not pod.volumes:
            return None, SKIP
        if not any(v.claim or v.attach is not None or v.attach_error for v in pod.volumes):
            return None, SKIP
        volumes = self.ports.volumes
        if not volumes.tracked:
            return None, SKIP
        cycle.write(_STATE_KEY, self._new_volumes(volumes, pod))
        return None, SUCCESS

    def _new_volumes(self, volumes: VolumeIndex, pod: PodInfo) -> _State:
        """upstream filterAttachableVolumes for the pod being scheduled (node-independent)."""
        s = _State()
        for v in pod.volumes:
            if v.attach_error:
                s.inline_problem = error(
                    f"converting volume({v.name}) from inline to csi: failed to translate "
                    f"Kubernetes ID to EBS Volume ID {v.attach_error}"
                )
                continue
            if v.attach is not None and not v.claim:
                s.new[unique_name(v.attach)] = v.attach[0]
                continue
            if not v.claim and not v.ephemeral:
                continue
            if not v.claim:
                s.problem = error("PersistentVolumeClaim had no name")
                return s
            pvc = volumes.pvc(pod.namespace, v.claim)
            if pvc is None:
                s.problem = unresolvable(
                    f"looking up PVC {pod.namespace}/{v.claim}: "
                    + not_found("persistentvolumeclaim", v.claim)
                )
                return s
            if v.ephemeral and pvc.controller_uid != pod.uid:
                s.problem = error(
                    f"PVC {pvc.namespace}/{pvc.name} was not created for pod "
                    f"{pod.namespace}/{pod.name} (pod is not owner)"
                )
                return s
            attach = resolve_claim(volumes, pvc)
            if attach is not None:
                s.new[unique_name(attach)] = attach[0]
        return s

    def prepare(self) -> None:
        """The attached volumes per node brought up to date ahead of the next pod with a
        volume (the first one otherwise counted every node's: 6 ms at 5,000 nodes)."""
        volumes = self.ports.volumes
        if volumes.tracked and (volumes.pvcs or volumes.pvs):
            self._attached.sync(self.state, volumes)

    # ----- Filter ------------------------------------------------------------------------------
    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        s: _State = cycle.read(_STATE_KEY)
        n = len(nodes)
        if s.problem is not None:
            return np.zeros(n, dtype=bool)
        if not s.new and s.inline_problem is None:
            return np.ones(n, dtype=bool)
        att = self._attached
        att.sync(self.state, self.ports.volumes)
        ok = np.ones(n, dtype=bool)
        if s.inline_problem is not None:
            ok &= ~att.has_csinode[nodes]
        by_driver: dict[str, list[str]] = {}
        for unique, driver in s.new.items():
            by_driver.setdefault(driver, []).append(unique)
        for driver, uniques in by_driver.items():
            limit = att.limits.get(driver)
            if limit is None:
                continue
            node_limit = limit[nodes]
            limited = node_limit >= 0
            if not limited.any():
                continue
            fresh = np.full(n, len(uniques), dtype=np.int64)
            for unique in uniques:  # already attached there: not a new attachment
                slots = att.unique_slots.get(unique)
                if slots:
                    fresh -= np.isin(nodes, np.fromiter(slots, dtype=np.intp, count=len(slots)))
            attached = att.counts.get(driver)
            total = attached[nodes] + fresh if attached is not None else fresh
            # upstream csi.go:344-349 checks only the drivers the pod attaches something new
            # to: a node already over its limit still takes a pod whose volumes are there.
            ok &= ~(limited & (fresh > 0) & (total > node_limit))
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        s: _State = cycle.read(_STATE_KEY)
        if s.problem is not None:
            return s.problem
        if self.filter(cycle, pod, np.array([node], dtype=np.intp))[0]:
            return SUCCESS
        if s.inline_problem is not None and self._attached.has_csinode[node]:
            return s.inline_problem
        return unschedulable(ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED)


register(NodeVolumeLimits)
