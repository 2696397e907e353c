"""VolumeBinding: a pod's PersistentVolumeClaims decide where it can run, and get bound there.

Upstream: pkg/scheduler/framework/plugins/volumebinding/ (volume_binding.go, binder.go) and
component-helpers/storage/volume (FindMatchingVolume, CheckNodeAffinity).
- PreFilter: pods without claims Skip. A missing, lost or deleting claim, or an ephemeral claim
  the pod does not own, is UnschedulableAndUnresolvable; so is a claim not yet bound whose class
  binds Immediately (`pod has unbound immediate PersistentVolumeClaims`).
- Filter: a bound claim's PV must accept the node (`spec.nodeAffinity`); an unbound claim of a
  WaitForFirstConsumer class needs, on that node, an Available PV matching it (class, size, access
  and volume modes, selector, node affinity; the smallest wins, each PV serves one claim) or a
  class that can provision there (a provisioner, `allowedTopologies`). The candidates (the
  node-independent checks) are kept across decisions per claim shape (pvcandidates); a PV's node
  affinity is evaluated once over the whole node table and cached (storagehelpers.PVNodeMasks);
  the first matching PV of every node is then found with array operations over (PV, node)
  pairs, each distinct affinity visited once, not with a mask per PV per decision. Score reads
  Filter's answer for the nodes it passed instead of finding the volumes again.
- Reserve assumes the chosen PVs bound (`spec.claimRef`) and the claims to provision annotated
  `volume.kubernetes.io/selected-node`, so the next pods see them taken; Unreserve reverts that.
- PreBind writes those through the front's volume binder and waits (up to bindTimeoutSeconds)
  until every claim is bound, through the front's volume binder port; a front without one
  (berth simulate) keeps the assumed state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from berth.framework.events import (
    CSI_DRIVER,
    CSI_NODE,
    CSI_STORAGE_CAPACITY,
    NODE,
    PERSISTENT_VOLUME,
    PERSISTENT_VOLUME_CLAIM,
    STORAGE_CLASS,
    ActionType,
    ClusterEventWithHint,
    on,
)
from berth.framework.plugin import (
    MAX_NODE_SCORE,
    CycleState,
    FilterPlugin,
    PreBindPlugin,
    PreFilterPlugin,
    PreFilterResult,
    PreScorePlugin,
    ReservePlugin,
    ScorePlugin,
)
from berth.framework.status import SKIP, SUCCESS, Status, error, unresolvable
from berth.objects.pod import PodInfo
from berth.objects.volumes import (
    ANN_BOUND_BY_CONTROLLER,
    ANN_SELECTED_NODE,
    NOT_SUPPORTED_PROVISIONER,
    PVCInfo,
    PVInfo,
)
from berth.plugins.helpers import broken_linear
from berth.plugins.noderesources import MAX_CUSTOM_PRIORITY_SCORE, ShapePoint, validate_shape
from berth.plugins.pvcandidates import Candidates, PVCandidates, is_volume_bound_to_claim
from berth.plugins.registry import register
from berth.plugins.storagehelpers import PVNodeMasks, not_found
from berth.state.cluster import BoolArray, IndexArray, IntArray
from berth.state.volumes import PodVolumes

NAME = "VolumeBinding"
ERR_REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
ERR_REASON_NODE_CONFLICT = "node(s) didn't match PersistentVolume's node affinity"
ERR_REASON_NOT_ENOUGH_SPACE = "node(s) did not have enough free storage"
ERR_REASON_PV_NOT_EXIST = (
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
)
ERR_REASON_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
_STATE_KEY = NAME


def _default_shape() -> list[ShapePoint]:
    # upstream SetDefaults_VolumeBindingArgs with StorageCapacityScoring (on since 1.37):
    # the emptier the volume would be, the better (apis/config/v1/defaults.go:198).
    return [ShapePoint(utilization=0, score=10), ShapePoint(utilization=100, score=0)]


class VolumeBindingArgs(BaseModel):
    """upstream VolumeBindingArgs."""

    model_config = ConfigDict(extra="forbid")
    bindTimeoutSeconds: int = Field(default=600, ge=0)
    shape: list[ShapePoint] = Field(default_factory=_default_shape)

    @field_validator("shape")
    @classmethod
    def _shape(cls, shape: list[ShapePoint]) -> list[ShapePoint]:
        return validate_shape(shape)


@dataclass(slots=True)
class _Verdict:
    """Per node (aligned with the nodes asked about): what FindPodVolumes concluded."""

    bound_ok: BoolArray
    pvs_found: BoolArray
    unbound_ok: BoolArray
    choice: list[np.ndarray]  # per delayed claim: index into its candidates, -1 for none


@dataclass(slots=True)
class _Claims:
    bound: list[PVCInfo]
    delayed: list[PVCInfo]  # unbound, WaitForFirstConsumer, no volumeName
    # per delayed claim: its prebound PVs and the other candidates, smallest first
    candidates: list[Candidates] = field(default_factory=list)
    # the last Filter's answer, which `explain` reads instead of recomputing per node
    last: tuple[IndexArray, _Verdict] | None = None
    # set by Reserve
    reserved: PodVolumes | None = None
    all_bound: bool = True


_NONE = np.iinfo(np.int64).max


def _first_match(
    masks: PVNodeMasks, cand: Candidates, nodes: IndexArray, used: dict[str, BoolArray]
) -> np.ndarray:
    """Per node in `nodes`: the index in `cand.pool` (smallest first) of the first live PV
    whose node affinity accepts the node and that no earlier claim of the pod took there, or -1
    (FindMatchingVolume's smallest match, for every node at once).

    PVs with the same affinity match the same nodes, so only the first of each distinct affinity
    can win anywhere: the walk keeps one (rank, slots) per affinity, stops at the first one that
    matches every node, and takes the smallest rank per node over the (rank, slot) pairs, the
    slots of all affinities gathered at once from PVNodeMasks.packed."""
    n = len(nodes)
    best = np.full(n, _NONE, dtype=np.int64)
    pool = cand.pool
    if not pool or n == 0:
        return np.full(n, -1, dtype=np.int64)
    free = cand.alive.copy()
    for name, elsewhere in used.items():
        rank = cand.rank.get(name)
        if rank is None or not free[rank]:
            continue
        # taken on some nodes: this PV alone, minus those
        free[rank] = False
        where = masks.matches(pool[rank], nodes) & ~elsewhere
        best[where] = np.minimum(best[where], rank)
    ranks = np.flatnonzero(free)
    # the first PV of each distinct affinity (np.unique: index of the first occurrence)
    firsts, at_rank = np.unique(cand.gids[ranks], return_index=True)
    first_ranks = ranks[at_rank]
    flat, offsets, group_full = masks.packed()
    full = group_full[firsts]
    if full.any():
        # A PV that matches every node: no later PV can come first anywhere.
        everywhere = int(first_ranks[full].min())
        np.minimum(best, everywhere, out=best)
        keep = ~full & (first_ranks < everywhere)
        firsts, first_ranks = firsts[keep], first_ranks[keep]
    if len(firsts):
        starts = offsets[firsts]
        lengths = offsets[firsts + 1] - starts
        # the slots of every group in `firsts`, end to end
        within = np.arange(int(lengths.sum()), dtype=np.intp)
        within -= np.repeat(np.cumsum(lengths) - lengths, lengths)
        pos = np.full(len(masks.state.present), -1, dtype=np.intp)
        pos[nodes] = np.arange(n)
        at = pos[flat[np.repeat(starts, lengths) + within]]
        rank_of = np.repeat(first_ranks.astype(np.int64), lengths)
        keep_at = at >= 0
        np.minimum.at(best, at[keep_at], rank_of[keep_at])
    best[best == _NONE] = -1
    return best


def _mark_used(
    used: dict[str, BoolArray], pool: list[PVInfo], choice: np.ndarray, matched: BoolArray
) -> None:
    """Record, per chosen PV, the nodes where this claim took it (for the pod's next claims)."""
    at = np.flatnonzero(matched)
    chosen = choice[at]
    order = np.argsort(chosen, kind="stable")
    values, starts = np.unique(chosen[order], return_index=True)
    for value, part in zip(values, np.split(at[order], starts[1:]), strict=True):
        name = pool[int(value)].name
        mask = used.get(name)
        if mask is None:
            mask = used[name] = np.zeros(len(choice), dtype=bool)
        mask[part] = True


class VolumeBinding(
    PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin, ReservePlugin, PreBindPlugin
):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        add_update = ActionType.ADD | ActionType.UPDATE
        return (
            on(STORAGE_CLASS, add_update),
            on(PERSISTENT_VOLUME_CLAIM, add_update),
            on(PERSISTENT_VOLUME, add_update),
            on(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL),
            on(CSI_NODE, add_update),
            on(CSI_DRIVER, ActionType.UPDATE),
            on(CSI_STORAGE_CAPACITY, add_update),
        )

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args, handle=handle)
        parsed = args if isinstance(args, VolumeBindingArgs) else VolumeBindingArgs()
        self.bind_timeout = float(parsed.bindTimeoutSeconds)
        scale = MAX_NODE_SCORE // MAX_CUSTOM_PRIORITY_SCORE
        self.shape = [(p.utilization, p.score * scale) for p in parsed.shape]
        self._masks = PVNodeMasks(self.state)
        self._candidates = PVCandidates(self._masks)
        self._prepared_seq = -1  # the volume journal's position `prepare` looked at last

    def prepare(self) -> None:
        """The candidates of the unbound WaitForFirstConsumer claims delivered since the last
        call, and their PVs' affinity groups, built ahead of the claims' pods' decisions."""
        volumes = self.ports.volumes
        if not volumes.tracked or not volumes.pvs:
            return
        changes = volumes.changes_since(self._prepared_seq) if self._prepared_seq >= 0 else None
        if changes is None:
            keys: Iterable[str] = list(volumes.pvcs)
        else:
            keys = {key for kind, key in changes if kind == "PersistentVolumeClaim"}
        self._prepared_seq = volumes.change_seq
        waiting = []
        for key in keys:
            pvc = volumes.pvcs.get(key)
            if pvc is None or pvc.fully_bound or pvc.volume_name:
                continue
            sc = volumes.classes.get(pvc.storage_class) if pvc.storage_class else None
            if sc is not None and sc.wait_for_first_consumer:
                waiting.append(pvc)
        self._candidates.prepare(volumes, waiting)
        self._masks.packed()

    # ----- PreFilter ---------------------------------------------------------------------------
    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        claims = [v for v in pod.volumes if v.claim]
        if not claims:
            return None, SKIP
        volumes = self.ports.volumes
        if not volumes.tracked:
            return None, SKIP
        pvcs: list[PVCInfo] = []
        for v in claims:  # upstream podHasPVCs
            pvc = volumes.pvc(pod.namespace, v.claim)
            if pvc is None:
                if v.ephemeral:
                    return None, unresolvable(
                        "waiting for ephemeral volume controller to create the "
                        f'persistentvolumeclaim "{v.claim}"'
                    )
                return None, unresolvable(not_found("persistentvolumeclaim", v.claim))
            if pvc.phase == "Lost":
                return None, unresolvable(
                    f'persistentvolumeclaim "{pvc.name}" bound to non-existent persistentvolume '
                    f'"{pvc.volume_name}"'
                )
            if pvc.deleting:
                return None, unresolvable(f'persistentvolumeclaim "{pvc.name}" is being deleted')
            if v.ephemeral and pvc.controller_uid != pod.uid:
                return None, unresolvable(
                    f"PVC {pvc.namespace}/{pvc.name} was not created for pod "
                    f"{pod.namespace}/{pod.name} (pod is not owner)"
                )
            pvcs.append(pvc)
        state = _Claims(bound=[], delayed=[])
        immediate = False
        for pvc in pvcs:  # upstream GetPodVolumeClaims
            if pvc.fully_bound:
                state.bound.append(pvc)
                continue
            sc = volumes.classes.get(pvc.storage_class) if pvc.storage_class else None
            if sc is not None and sc.binding_mode is None:
                return None, error(
                    f'VolumeBindingMode not set for StorageClass "{pvc.storage_class}"'
                )
            if sc is not None and sc.wait_for_first_consumer and not pvc.volume_name:
                state.delayed.append(pvc)
            else:
                immediate = True
        if immediate:
            return None, unresolvable(ERR_REASON_UNBOUND_IMMEDIATE)
        # Claims that find a PV by matching, smallest request first (upstream byPVCSize).
        state.delayed.sort(key=lambda c: c.request)
        for pvc in state.delayed:
            state.candidates.append(self._candidates.for_claim(volumes, pvc))
        cycle.write(_STATE_KEY, state)
        return None, SUCCESS

    # ----- Filter ------------------------------------------------------------------------------
    def _find(self, state: _Claims, nodes: IndexArray) -> _Verdict:
        """upstream FindPodVolumes for every node in `nodes`."""
        n = len(nodes)
        cluster = self.state
        volumes = self.ports.volumes
        masks = self._masks
        bound_ok = np.ones(n, dtype=bool)
        pvs_found = np.ones(n, dtype=bool)
        for pvc in state.bound:  # checkBoundClaims stops at the first problem per node
            pv = volumes.pv(pvc.volume_name)
            if pv is None:
                pvs_found &= ~bound_ok  # only where every earlier claim's PV matched
                break
            bound_ok &= masks.matches(pv, nodes)
        unbound_ok = np.ones(n, dtype=bool)
        choices: list[np.ndarray] = []
        names = cluster.names
        used: dict[str, BoolArray] = {}  # PV name -> nodes where an earlier claim chose it
        provision = np.ones(n, dtype=bool)
        need_provision = np.zeros(n, dtype=bool)
        last = len(state.delayed) - 1
        for k, (pvc, cand) in enumerate(zip(state.delayed, state.candidates, strict=True)):
            selected = pvc.annotations.get(ANN_SELECTED_NODE)
            if selected is not None:
                # Already asked to provision on one node (upstream's fast path).
                unbound_ok &= np.fromiter((names[i] == selected for i in nodes), bool, n)
                need_provision |= True
                provision &= self._provisionable(pvc, nodes)
                choices.append(np.full(n, -1, dtype=np.int64))
                continue
            prebound = cand.prebound
            # A PV pre-bound to the claim ends FindMatchingVolume's walk: the first one not
            # taken decides the node, matching or not.
            choice = np.full(n, -1, dtype=np.int64)
            decided = np.zeros(n, dtype=bool)
            for i, pv in enumerate(prebound):
                avail = ~decided
                if pv.name in used:
                    avail &= ~used[pv.name]
                choice[avail & masks.matches(pv, nodes)] = i
                decided |= avail
            if not decided.all():
                rest = _first_match(masks, cand, nodes, used)
                found = ~decided & (rest >= 0)
                choice[found] = rest[found] + len(prebound)
            matched = choice >= 0
            if k < last and matched.any():
                _mark_used(used, cand.walk, choice, matched)
            unmatched = ~matched
            if unmatched.any():
                need_provision |= unmatched
                provision &= ~unmatched | self._provisionable(pvc, nodes)
            choices.append(choice)
        # Where some claim is left to provision, every such claim must be provisionable there
        # (upstream checkVolumeProvisions decides unboundVolumesSatisfied then).
        unbound_ok &= ~need_provision | provision
        return _Verdict(bound_ok, pvs_found, unbound_ok, choices)

    def _provisionable(self, pvc: PVCInfo, nodes: IndexArray) -> BoolArray:
        """upstream checkVolumeProvisions for one claim: a provisioner, and allowedTopologies."""
        sc = self.ports.volumes.classes.get(pvc.storage_class)
        if sc is None or not sc.provisioner or sc.provisioner == NOT_SUPPORTED_PROVISIONER:
            return np.zeros(len(nodes), dtype=bool)
        if not sc.allowed_topologies:
            return np.ones(len(nodes), dtype=bool)
        mask = np.zeros(len(nodes), dtype=bool)
        for term in sc.allowed_topologies:
            term_ok = np.ones(len(nodes), dtype=bool)
            for key, values in term:
                col = self.state.label_column(key)
                term_ok &= col.has(col.codes.take(nodes), (col.code(v) for v in values))
            mask |= term_ok
        return mask

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        state: _Claims = cycle.read(_STATE_KEY)
        v = self._find(state, nodes)
        state.last = (nodes, v)
        ok: BoolArray = v.bound_ok & v.pvs_found & v.unbound_ok
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        state: _Claims = cycle.read(_STATE_KEY)
        v, i = None, 0
        if state.last is not None:
            at = np.flatnonzero(state.last[0] == node)
            if len(at):
                v, i = state.last[1], int(at[0])
        if v is None:
            v = self._find(state, np.array([node], dtype=np.intp))
        reasons = []
        if not v.bound_ok[i]:
            reasons.append(ERR_REASON_NODE_CONFLICT)
        if not v.unbound_ok[i]:
            reasons.append(ERR_REASON_BIND_CONFLICT)
        if not v.pvs_found[i]:
            reasons.append(ERR_REASON_PV_NOT_EXIST)
        return unresolvable(*reasons) if reasons else SUCCESS

    def _verdict(self, state: _Claims, nodes: IndexArray) -> _Verdict:
        """The last Filter's answer for `nodes` (Score runs on nodes Filter passed, with the
        state unchanged), or FindPodVolumes anew for nodes it did not see."""
        if state.last is not None:
            seen, v = state.last
            pos = np.full(len(self.state.present), -1, dtype=np.intp)
            pos[seen] = np.arange(len(seen))
            at = pos[nodes]
            if (at >= 0).all():
                return _Verdict(
                    v.bound_ok[at], v.pvs_found[at], v.unbound_ok[at], [c[at] for c in v.choice]
                )
        return self._find(state, nodes)

    # ----- Score (storage capacity scoring) -----------------------------------------------------
    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        # StorageCapacityScoring is on: every pod is scored, 0 without volumes to bind
        # (volume_binding.go:453).
        return SUCCESS

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        """upstream Score (volume_binding.go:468): per StorageClass of the PVs the pod's claims
        would bind to on the node, the shape at requested/capacity; the mean over classes.
        Claims left to provision count only with a CSIStorageCapacity, which Berth does not
        track, so they score nothing."""
        out = np.zeros(len(nodes), dtype=np.int64)
        state: _Claims | None = cycle.read(_STATE_KEY)
        if state is None or not state.delayed or not len(nodes):
            return out
        verdict = self._verdict(state, nodes)
        requested: dict[str, IntArray] = {}
        capacity: dict[str, IntArray] = {}
        present: dict[str, BoolArray] = {}
        for pvc, cand, choice in zip(state.delayed, state.candidates, verdict.choice, strict=True):
            here = choice >= 0
            if not here.any():
                continue
            # every candidate is of the claim's class (VolumeIndex.pvs_of_class)
            cls = pvc.storage_class
            req = requested.setdefault(cls, np.zeros(len(nodes), dtype=np.int64))
            cap = capacity.setdefault(cls, np.zeros(len(nodes), dtype=np.int64))
            req[here] += pvc.request
            cap[here] += cand.capacity[choice[here]]
            present[cls] = present.get(cls, np.zeros(len(nodes), dtype=bool)) | here
        if not requested:
            return out
        total = np.zeros(len(nodes), dtype=np.int64)
        classes = np.zeros(len(nodes), dtype=np.int64)
        for cls, req in requested.items():
            cap = capacity[cls]
            counted = cap > 0
            full = (cap == 0) | (req > cap)
            util = np.where(full, 100, req * 100 // np.where(counted, cap, 1))
            used = present[cls]  # a class counts only where one of its PVs was chosen
            total += np.where(used, broken_linear(self.shape, util), 0)
            classes += used
        mean = total / np.where(classes == 0, 1, classes)
        rounded: IntArray = np.where(classes == 0, 0, np.floor(mean + 0.5)).astype(np.int64)
        return rounded  # math.Round of non-negative means

    # ----- Reserve -----------------------------------------------------------------------------
    def reserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        """upstream AssumePodVolumes."""
        state: _Claims | None = cycle.read(_STATE_KEY)
        if state is None or not state.delayed:
            return SUCCESS  # no claims, or all of them bound
        idx = self.state.index.get(node_name)
        if idx is None:
            return error(f'node "{node_name}" not found')
        verdict = self._find(state, np.array([idx], dtype=np.intp))
        volumes = self.ports.volumes
        reserved = PodVolumes()
        for pvc, cand, choice in zip(state.delayed, state.candidates, verdict.choice, strict=True):
            if choice[0] < 0:
                annotations = {**pvc.annotations, ANN_SELECTED_NODE: node_name}
                raw = pvc.raw
                meta = {**raw.get("metadata", {}), "annotations": annotations}
                claim = dataclasses.replace(
                    pvc, annotations=annotations, raw={**raw, "metadata": meta}
                )
                volumes.assume_pvc(claim)
                reserved.dynamic_provisions.append(claim)
                continue
            pv = cand.walk[int(choice[0])]
            new_pv = _bind_volume_to_claim(pv, pvc)
            if new_pv is not pv:
                volumes.assume_pv(new_pv)
            reserved.static_bindings.append((new_pv, pvc))
        state.reserved = reserved
        state.all_bound = False
        return SUCCESS

    def unreserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> None:
        state: _Claims | None = cycle.read(_STATE_KEY)
        if state is None or state.reserved is None:
            return
        volumes = self.ports.volumes
        for pv, _ in state.reserved.static_bindings:
            volumes.restore_pv(pv.name)
        for pvc in state.reserved.dynamic_provisions:
            volumes.restore_pvc(pvc.key)
        state.reserved = None

    # ----- PreBind -----------------------------------------------------------------------------
    async def pre_bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        state: _Claims | None = cycle.read(_STATE_KEY)
        if state is None or state.all_bound or state.reserved is None:
            return SUCCESS
        binder = self.ports.volume_binder
        if binder is None:
            return SUCCESS  # offline: the assumed bindings stand
        problem = await binder(pod, node_name, state.reserved, self.bind_timeout)
        if problem is not None:
            return error(problem)
        return SUCCESS


def _bind_volume_to_claim(pv: PVInfo, pvc: PVCInfo) -> PVInfo:
    """upstream GetBindVolumeToClaim: the PV with claimRef (and bound-by-controller) set, or `pv`
    itself when nothing changes."""
    raw = pv.raw
    meta = dict(raw.get("metadata") or {})
    spec = dict(raw.get("spec") or {})
    dirty = False
    ref = pv.claim_ref
    if ref is None or ref != (pvc.namespace, pvc.name, pvc.uid):
        spec["claimRef"] = {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": pvc.namespace,
            "name": pvc.name,
            "uid": pvc.uid,
            "resourceVersion": str(pvc.resource_version),
        }
        dirty = True
    annotations = dict(meta.get("annotations") or {})
    if not is_volume_bound_to_claim(pv, pvc) and ANN_BOUND_BY_CONTROLLER not in annotations:
        annotations[ANN_BOUND_BY_CONTROLLER] = "yes"
        meta["annotations"] = annotations
        dirty = True
    if not dirty:
        return pv
    return dataclasses.replace(
        pv,
        claim_ref=(pvc.namespace, pvc.name, pvc.uid),
        raw={**raw, "metadata": meta, "spec": spec},
    )


register(VolumeBinding, VolumeBindingArgs)
