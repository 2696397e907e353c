"""What the volume plugins share: PV node affinity over node columns (and its cache,
PVNodeMasks), and upstream's NotFound messages.

Upstream: component-helpers/storage/volume (CheckNodeAffinity) and apimachinery's NotFound
errors, whose text the plugins return as reasons (`persistentvolumeclaim "data" not found`).
"""

from __future__ import annotations

import numpy as np

from berth.objects.selectors import NodeSelectorTerm
from berth.objects.volumes import PVInfo
from berth.state.cluster import BoolArray, ClusterState, IndexArray
from berth.state.nodemasks import terms_mask


def not_found(resource: str, name: str) -> str:
    """apimachinery's NotFound message, e.g. `persistentvolumeclaim "data" not found`."""
    return f'{resource} "{name}" not found'


def pv_node_mask(state: ClusterState, pv: PVInfo, nodes: IndexArray) -> BoolArray:
    """upstream volume.CheckNodeAffinity for every node: no required affinity matches all."""
    if pv.node_terms is None:
        return np.ones(len(nodes), dtype=bool)
    return terms_mask(state, pv.node_terms, nodes, match_fields=False)


class PVNodeMasks:
    """Each PV's required node affinity evaluated once over the whole node table, not per
    decision: the slots it matches, per distinct affinity (local PVs pinned to the same node, or
    PVs of one zone, share an entry, `group`). An entry is computed the first time a PV object is
    seen and dropped when any node's labels, or the set of nodes, change
    (ClusterState.labels_version)."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._labels_version = -1
        self._by_pv: dict[str, tuple[object, int]] = {}  # PV name -> (its node_terms, group)
        self._groups: dict[tuple[NodeSelectorTerm, ...] | None, int] = {}
        self.slots: list[IndexArray] = []  # group -> matching node slots, ascending
        self.full: list[bool] = []  # group -> matches every node
        self._packed: tuple[IndexArray, IndexArray, BoolArray] | None = None

    def _check(self) -> None:
        state = self.state
        if self._labels_version != state.labels_version:
            self._by_pv.clear()
            self._groups.clear()
            self.slots.clear()
            self.full.clear()
            self._packed = None
            self._labels_version = state.labels_version

    def group(self, pv: PVInfo) -> int:
        self._check()
        entry = self._by_pv.get(pv.name)
        if entry is not None and entry[0] is pv.node_terms:
            return entry[1]
        return self._add(pv)

    def groups(self, pvs: list[PVInfo]) -> IndexArray:
        """group() of each PV, as an array (one tight loop: this runs over every candidate)."""
        self._check()
        get = self._by_pv.get
        out = np.empty(len(pvs), dtype=np.intp)
        for i, pv in enumerate(pvs):
            entry = get(pv.name)
            out[i] = entry[1] if entry is not None and entry[0] is pv.node_terms else self._add(pv)
        return out

    def _add(self, pv: PVInfo) -> int:
        state = self.state
        gid = self._groups.get(pv.node_terms)
        if gid is None:
            every = state.node_indices()
            slots = every[pv_node_mask(state, pv, every)]
            gid = len(self.slots)
            self.slots.append(slots)
            self.full.append(len(slots) == len(every))
            self._groups[pv.node_terms] = gid
        if len(self._by_pv) > 2 * len(self._groups) + 4096:
            self._by_pv.clear()  # PVs long deleted; the live ones come back on their next use
        self._by_pv[pv.name] = (pv.node_terms, gid)
        return gid

    def packed(self) -> tuple[IndexArray, IndexArray, BoolArray]:
        """Every group's slots end to end, where each group's begin (offsets[g] to
        offsets[g + 1]), and `full` as an array: what lets a decision gather the slots of
        thousands of groups with array operations (rebuilt when a group is added)."""
        self._check()
        packed = self._packed
        if packed is None or len(packed[2]) != len(self.slots):
            sizes = np.fromiter((len(s) for s in self.slots), dtype=np.intp, count=len(self.slots))
            offsets = np.zeros(len(self.slots) + 1, dtype=np.intp)
            np.cumsum(sizes, out=offsets[1:])
            flat = np.concatenate(self.slots) if self.slots else np.zeros(0, dtype=np.intp)
            full = np.array(self.full, dtype=bool)
            packed = self._packed = (flat.astype(np.intp, copy=False), offsets, full)
        return packed

    def matches(self, pv: PVInfo, nodes: IndexArray) -> BoolArray:
        """pv_node_mask(state, pv, nodes), from the cache."""
        gid = self.group(pv)
        if self.full[gid]:
            return np.ones(len(nodes), dtype=bool)
        found: BoolArray = np.isin(nodes, self.slots[gid], assume_unique=True)
        return found
