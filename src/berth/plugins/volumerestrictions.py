"""VolumeRestrictions: ReadWriteOncePod claims in use, and inline disks mounted elsewhere.

Upstream: pkg/scheduler/framework/plugins/volumerestrictions/volume_restrictions.go.
- A claim with the ReadWriteOncePod access mode already used by a placed pod makes every node
  Unschedulable (preemption may evict that pod).
- The same GCE PD (unless all mounts are read-only), AWS EBS volume, RBD image (overlapping
  monitors, same pool and image, unless all read-only) or iSCSI IQN (unless all read-only) cannot
  be mounted by a second pod on a node.
Pods without such volumes Skip at PreFilter; the disk check visits only the placed pods that
have inline disks (an index the state keeps), never every pod of every node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from berth.framework.events import (
    NODE,
    PERSISTENT_VOLUME_CLAIM,
    POD,
    ActionType,
    ClusterEventWithHint,
    on,
)
from berth.framework.plugin import CycleState, FilterPlugin, PreFilterPlugin, PreFilterResult
from berth.framework.status import SKIP, SUCCESS, Status, unresolvable, unschedulable
from berth.objects.pod import PodInfo
from berth.objects.volumes import READ_WRITE_ONCE_POD, PodVolume
from berth.plugins.registry import register
from berth.plugins.storagehelpers import not_found
from berth.state.cluster import BoolArray, IndexArray

NAME = "VolumeRestrictions"
ERR_REASON_DISK_CONFLICT = "node(s) had no available disk"
ERR_REASON_RWOP_CONFLICT = (  # volumerestrictions/volume_restrictions.go:61
    "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode "
    "already in-use by another pod"
)
_STATE_KEY = "PreFilter" + NAME


@dataclass(slots=True)
class _State:
    disks: tuple[PodVolume, ...]
    conflicting_pvc_refs: int
    conflicting_nodes: frozenset[int] | None = None  # computed on first Filter


def is_volume_conflict(volume: PodVolume, other: PodInfo) -> bool:
    """upstream isVolumeConflict: does `volume` clash with any volume of the placed pod `other`?"""
    for ev in other.volumes:
        if ev.disk_kind != volume.disk_kind or not ev.disk_kind:
            continue
        kind = volume.disk_kind
        if kind == "aws":
            if volume.disk == ev.disk:
                return True
        elif kind == "rbd":
            if (
                volume.monitors & ev.monitors
                and volume.disk == ev.disk
                and not (volume.read_only and ev.read_only)
            ):
                return True
        elif volume.disk == ev.disk and not (volume.read_only and ev.read_only):
            return True  # GCE PD by pdName, iSCSI by IQN
    return False


class VolumeRestrictions(PreFilterPlugin, FilterPlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        # spec.volumes is immutable: only a deleted pod releases a volume.
        return (
            on(POD, ActionType.DELETE),
            on(NODE, ActionType.ADD),
            on(PERSISTENT_VOLUME_CLAIM, ActionType.ADD | ActionType.UPDATE),
        )

    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        if not pod.volumes:
            return None, SKIP
        disks = tuple(v for v in pod.volumes if v.disk_kind)
        volumes = self.ports.volumes
        if not volumes.tracked:
            return None, SKIP
        conflicting = 0
        for v in pod.volumes:
            if not v.claim or v.ephemeral:
                continue
            pvc = volumes.pvc(pod.namespace, v.claim)
            if pvc is None:
                return None, unresolvable(not_found("persistentvolumeclaim", v.claim))
            if READ_WRITE_ONCE_POD not in pvc.access_modes:
                continue
            if self.state.pvc_users.get(f"{pod.namespace}/{v.claim}", 0) > 0:
                conflicting += 1
        if not disks and conflicting == 0:
            return None, SKIP
        cycle.write(_STATE_KEY, _State(disks, conflicting))
        return None, SUCCESS

    def _conflicting_nodes(self, s: _State) -> frozenset[int]:
        if s.conflicting_nodes is None:
            nodes: set[int] = set()
            state = self.state
            for other in state.pods_with_disks.values():
                idx = state.index.get(state.pod_node.get(other.key, ""))
                if idx is not None and any(is_volume_conflict(v, other) for v in s.disks):
                    nodes.add(idx)
            s.conflicting_nodes = frozenset(nodes)
        return s.conflicting_nodes

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        s: _State = cycle.read(_STATE_KEY)
        if s.conflicting_pvc_refs > 0:
            return np.zeros(len(nodes), dtype=bool)
        if not s.disks:
            return np.ones(len(nodes), dtype=bool)
        bad = self._conflicting_nodes(s)
        if not bad:
            return np.ones(len(nodes), dtype=bool)
        ok: BoolArray = ~np.isin(nodes, np.fromiter(bad, dtype=np.intp, count=len(bad)))
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        s: _State = cycle.read(_STATE_KEY)
        if s.disks and node in self._conflicting_nodes(s):
            return unschedulable(ERR_REASON_DISK_CONFLICT)
        if s.conflicting_pvc_refs > 0:
            return unschedulable(ERR_REASON_RWOP_CONFLICT)
        return SUCCESS


register(VolumeRestrictions)
