"""The PersistentVolumes an unbound claim could take, kept across decisions: the
node-independent half of upstream's FindMatchingVolume (component-helpers/storage/volume).

Asking every PV of the claim's class again in each decision cost a Python loop over all of them
(5,000 local PVs: milliseconds per pod with a claim). Here the answer for claims of one shape
(class, request, volume mode, access modes, no label selector) is kept smallest first, as
FindMatchingVolume walks them, with each PV's affinity group (PVNodeMasks) and capacity as
arrays, and brought up to date from VolumeIndex's change journal: a PV taken (Reserve's assume,
or the API binding it) drops out, one given back returns, and a new PV, or one whose size or
node affinity changed, rebuilds the shape. The PVs pre-bound to a claim come from an index by
claim reference. A claim with a selector is answered afresh each time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from berth.objects.volumes import PVCInfo, PVInfo
from berth.plugins.storagehelpers import PVNodeMasks
from berth.state.cluster import BoolArray, IndexArray, IntArray
from berth.state.volumes import VolumeIndex

MAX_SHAPES = 64  # per class; beyond, the shapes are dropped and rebuilt on their next use


def is_volume_bound_to_claim(pv: PVInfo, pvc: PVCInfo) -> bool:
    """upstream IsVolumeBoundToClaim (pre-bound by a user, or bound)."""
    ref = pv.claim_ref
    if ref is None or (ref[0], ref[1]) != (pvc.namespace, pvc.name):
        return False
    return not ref[2] or ref[2] == pvc.uid


def _fits(pv: PVInfo, pvc: PVCInfo) -> bool:
    """FindMatchingVolume's checks of every PV it does not skip: size, volume mode, deletion."""
    return pv.capacity >= pvc.request and pv.volume_mode == pvc.volume_mode and not pv.deleting


def _available_for(pv: PVInfo, pvc: PVCInfo) -> bool:
    """FindMatchingVolume's checks of a PV no claim references, in its order."""
    return (
        pv.claim_ref is None
        and _fits(pv, pvc)
        and pv.phase == "Available"
        and (pvc.selector is None or pvc.selector.matches(pv.labels))
        and pv.storage_class == pvc.storage_class
        and pvc.access_modes <= pv.access_modes
    )


@dataclass(slots=True)
class Candidates:
    """A claim's candidates: `prebound` (the PVs pre-bound to it, by name), tried first, then
    `pool[r]` for each r where `alive[r]`, smallest first (the first of equal sizes by name)."""

    prebound: list[PVInfo]
    pool: list[PVInfo]
    alive: BoolArray
    gids: IndexArray  # per pool entry: its PVNodeMasks group
    capacity: IntArray  # per entry of prebound + pool
    rank: dict[str, int]  # PV name -> its index in pool

    @property
    def walk(self) -> list[PVInfo]:
        """prebound + pool: what a choice (an index) refers to."""
        return self.prebound + self.pool


@dataclass(slots=True)
class _Shape:
    claim: PVCInfo  # the claim it was built for (its name does not matter to the shape)
    pool: list[PVInfo]
    alive: BoolArray
    capacity: IntArray
    rank: dict[str, int]
    gids: IndexArray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    labels_version: int = -1

    def update(self, name: str, pv: PVInfo | None) -> bool:
        """The PV `name` changed (None: gone from the class); False when the shape must be
        rebuilt (a new member, or one whose place or affinity group changed)."""
        ok = pv is not None and _available_for(pv, self.claim)
        r = self.rank.get(name)
        if r is None:
            return not ok
        if not ok:
            self.alive[r] = False
            return True
        assert pv is not None
        old = self.pool[r]
        if old.capacity != pv.capacity or old.node_terms != pv.node_terms:
            return False
        self.pool[r] = pv
        self.alive[r] = True
        return True


@dataclass(slots=True)
class _Class:
    seq: int = -1  # VolumeIndex.change_seq it reflects
    by_claim: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # claimRef -> PVs
    ref_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    shapes: dict[tuple[object, ...], _Shape] = field(default_factory=dict)

    def index_ref(self, name: str, pv: PVInfo | None) -> None:
        old = self.ref_of.pop(name, None)
        if old is not None:
            names = self.by_claim[old]
            names.discard(name)
            if not names:
                del self.by_claim[old]
        if pv is not None and pv.claim_ref is not None:
            ref = (pv.claim_ref[0], pv.claim_ref[1])
            self.ref_of[name] = ref
            self.by_claim.setdefault(ref, set()).add(name)


class PVCandidates:
    """Candidates per claim, from shapes kept per StorageClass (see the module docstring)."""

    def __init__(self, masks: PVNodeMasks) -> None:
        self.masks = masks
        self._volumes: VolumeIndex | None = None
        self._classes: dict[str, _Class] = {}

    def for_claim(self, volumes: VolumeIndex, pvc: PVCInfo) -> Candidates:
        if volumes is not self._volumes:
            self._volumes = volumes
            self._classes.clear()
        cls = self._sync(volumes, pvc.storage_class)
        prebound = [
            pv
            for name in sorted(cls.by_claim.get((pvc.namespace, pvc.name), ()))
            if (pv := volumes.pv(name)) is not None
            and is_volume_bound_to_claim(pv, pvc)
            and _fits(pv, pvc)
        ]
        if pvc.selector is not None:
            shape = self._build(volumes, pvc)
        else:
            key = (pvc.request, pvc.volume_mode, pvc.access_modes)
            found = cls.shapes.get(key)
            if found is None:
                if len(cls.shapes) >= MAX_SHAPES:
                    cls.shapes.clear()
                found = cls.shapes[key] = self._build(volumes, pvc)
            shape = found
        labels_version = self.masks.state.labels_version
        if shape.labels_version != labels_version:
            shape.gids = self.masks.groups(shape.pool)
            shape.labels_version = labels_version
        capacity = shape.capacity
        if prebound:
            before = np.fromiter((pv.capacity for pv in prebound), np.int64, len(prebound))
            capacity = np.concatenate([before, capacity])
        return Candidates(
            prebound=prebound,
            pool=list(shape.pool),
            alive=shape.alive.copy(),
            gids=shape.gids,
            capacity=capacity,
            rank=shape.rank,
        )

    def prepare(self, volumes: VolumeIndex, claims: Iterable[PVCInfo]) -> None:
        """Build, ahead of the decisions, the shapes of `claims` (without a selector) and the
        affinity groups of their PVs: a first decision of a shape otherwise pays both."""
        seen: set[tuple[str, tuple[object, ...]]] = set()
        for pvc in claims:
            key = (pvc.storage_class, (pvc.request, pvc.volume_mode, pvc.access_modes))
            if pvc.selector is None and key not in seen:
                seen.add(key)
                self.for_claim(volumes, pvc)

    def _sync(self, volumes: VolumeIndex, storage_class: str) -> _Class:
        cls = self._classes.get(storage_class)
        if cls is None:
            cls = self._classes[storage_class] = _Class()
        changes = volumes.changes_since(cls.seq) if cls.seq >= 0 else None
        if changes is None:
            cls.by_claim.clear()
            cls.ref_of.clear()
            cls.shapes.clear()
            for member in volumes.pvs_of_class(storage_class):
                cls.index_ref(member.name, member)
        else:
            names = {key for kind, key in changes if kind == "PersistentVolume"}
            for name in names:
                pv: PVInfo | None = volumes.pv(name)
                if pv is not None and pv.storage_class != storage_class:
                    pv = None
                cls.index_ref(name, pv)
                stale = [k for k, shape in cls.shapes.items() if not shape.update(name, pv)]
                for k in stale:
                    del cls.shapes[k]
        cls.seq = volumes.change_seq
        return cls

    def _build(self, volumes: VolumeIndex, pvc: PVCInfo) -> _Shape:
        pool = [pv for pv in volumes.pvs_of_class(pvc.storage_class) if _available_for(pv, pvc)]
        pool.sort(key=lambda pv: pv.capacity)  # stable: the first of equal sizes (by name) wins
        return _Shape(
            claim=pvc,
            pool=pool,
            alive=np.ones(len(pool), dtype=bool),
            capacity=np.fromiter((pv.capacity for pv in pool), np.int64, len(pool)),
            rank={pv.name: r for r, pv in enumerate(pool)},
        )
