"""PersistentVolumes, claims, StorageClasses and CSINodes, with upstream's assume cache on top.

VolumeBinding's Reserve assumes a PV bound to a claim (its `claimRef` set) or a claim annotated
with the selected node before the API knows; later decisions must see that at once, as the pod
cache sees assumed pods. An assumed object is dropped (the API's object wins again) when the
informer delivers a newer version of it, or when the plugin reverts it (upstream AssumeCache
Assume / Restore). The API objects themselves stay available for PreBind's checks.

Every change is also journaled as (kind, key), so a consumer that derives something from many
objects (NodeVolumeLimits' attached volumes per node) updates only what changed since it last
looked (`changes_since`), instead of recomputing on every `version` bump.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from berth.objects.volumes import (
    CSINodeInfo,
    PVCInfo,
    PVInfo,
    StorageClassInfo,
    parse_csinode,
    parse_pv,
    parse_pvc,
    parse_storage_class,
)
from berth.state.store import Store, object_key

log = logging.getLogger("berth.state.volumes")
Obj = dict[str, Any]
KINDS = ("PersistentVolume", "PersistentVolumeClaim", "StorageClass", "CSINode")
# Journal entries kept; a consumer further behind than this starts over (changes_since: None).
MAX_JOURNAL = 4096


@dataclass(slots=True)
class PodVolumes:
    """upstream PodVolumes: the PVs to bind to claims and the claims to provision, on one node
    (what VolumeBinding's Reserve assumed and its PreBind writes)."""

    static_bindings: list[tuple[PVInfo, PVCInfo]] = field(default_factory=list)
    dynamic_provisions: list[PVCInfo] = field(default_factory=list)


class VolumeIndex(Store):
    """The storage objects by name, with assumed PVs and claims overlaid."""

    kinds = KINDS

    def __init__(self) -> None:
        self.pvs: dict[str, PVInfo] = {}
        self.pvcs: dict[str, PVCInfo] = {}  # "namespace/name"
        self.classes: dict[str, StorageClassInfo] = {}
        self.csinodes: dict[str, CSINodeInfo] = {}
        self._pvs_by_class: dict[str, set[str]] = {}
        self.assumed_pvs: dict[str, PVInfo] = {}
        self.assumed_pvcs: dict[str, PVCInfo] = {}
        self.version = 0
        # False in a front that does not watch storage (the extender: kube-scheduler has run its
        # own volume plugins on the nodes it sends); the volume plugins then Skip.
        self.tracked = True
        self._journal: list[tuple[str, str]] = []
        self._journal_base = 0  # sequence number of _journal[0]

    # ----- reads (assumed objects win) --------------------------------------------------------
    def pv(self, name: str) -> PVInfo | None:
        return self.assumed_pvs.get(name) or self.pvs.get(name)

    def pvc(self, namespace: str, name: str) -> PVCInfo | None:
        key = f"{namespace}/{name}"
        return self.assumed_pvcs.get(key) or self.pvcs.get(key)

    def pvs_of_class(self, storage_class: str) -> Iterator[PVInfo]:
        """upstream pvCache.ListPVs(storageClassName), assumed objects included, by name."""
        for name in sorted(self._pvs_by_class.get(storage_class, ())):
            pv = self.pv(name)
            if pv is not None:
                yield pv

    @property
    def empty(self) -> bool:
        return not self.pvcs and not self.pvs

    # ----- change journal ---------------------------------------------------------------------
    @property
    def change_seq(self) -> int:
        """The sequence number the next change will get."""
        return self._journal_base + len(self._journal)

    def changes_since(self, seq: int) -> list[tuple[str, str]] | None:
        """(kind, key) of every change from `seq` on; None when those are no longer kept."""
        if seq < self._journal_base:
            return None
        return self._journal[seq - self._journal_base :]

    def _changed(self, kind: str, key: str) -> None:
        self.version += 1
        self._journal.append((kind, key))
        if len(self._journal) > MAX_JOURNAL:
            drop = len(self._journal) // 2
            del self._journal[:drop]
            self._journal_base += drop

    # ----- assume cache -----------------------------------------------------------------------
    def assume_pv(self, pv: PVInfo) -> None:
        self.assumed_pvs[pv.name] = pv
        self._changed("PersistentVolume", pv.name)

    def assume_pvc(self, pvc: PVCInfo) -> None:
        self.assumed_pvcs[pvc.key] = pvc
        self._changed("PersistentVolumeClaim", pvc.key)

    def restore_pv(self, name: str) -> None:
        if self.assumed_pvs.pop(name, None) is not None:
            self._changed("PersistentVolume", name)

    def restore_pvc(self, key: str) -> None:
        if self.assumed_pvcs.pop(key, None) is not None:
            self._changed("PersistentVolumeClaim", key)

    # ----- fed by berth.feed ------------------------------------------------------------------
    def upsert(self, obj: Obj) -> bool:
        """Add or replace a storage object (ObjectError if malformed); other kinds are ignored."""
        kind = obj.get("kind")
        if kind not in KINDS:
            return False
        key = object_key(obj)
        if kind == "PersistentVolume":
            pv = parse_pv(obj)
            self._unindex_pv(pv.name)
            self.pvs[pv.name] = pv
            self._pvs_by_class.setdefault(pv.storage_class, set()).add(pv.name)
            # A newer API object replaces what was assumed (upstream assumeCache.update).
            assumed = self.assumed_pvs.get(pv.name)
            if assumed is not None and pv.resource_version > assumed.resource_version:
                del self.assumed_pvs[pv.name]
        elif kind == "PersistentVolumeClaim":
            pvc = parse_pvc(obj)
            self.pvcs[pvc.key] = pvc
            assumed_pvc = self.assumed_pvcs.get(pvc.key)
            if assumed_pvc is not None and pvc.resource_version > assumed_pvc.resource_version:
                del self.assumed_pvcs[pvc.key]
        elif kind == "StorageClass":
            self.classes[key] = parse_storage_class(obj)
        else:
            self.csinodes[key] = parse_csinode(obj)
        self._changed(str(kind), key)
        return True

    def delete(self, obj: Obj) -> None:
        kind = obj.get("kind")
        key = object_key(obj)
        if kind == "PersistentVolume":
            self._unindex_pv(key)
            self.pvs.pop(key, None)
            self.assumed_pvs.pop(key, None)
        elif kind == "PersistentVolumeClaim":
            self.pvcs.pop(key, None)
            self.assumed_pvcs.pop(key, None)
        elif kind == "StorageClass":
            self.classes.pop(key, None)
        elif kind == "CSINode":
            self.csinodes.pop(key, None)
        else:
            return
        self._changed(str(kind), key)

    def _unindex_pv(self, name: str) -> None:
        old = self.pvs.get(name)
        if old is not None:
            names = self._pvs_by_class.get(old.storage_class)
            if names is not None:
                names.discard(name)
                if not names:
                    del self._pvs_by_class[old.storage_class]
