"""VolumeZone: a pod's bound PersistentVolumes' zone and region labels against the node's.

Upstream: pkg/scheduler/framework/plugins/volumezone/volume_zone.go. PreFilter collects, for each
`persistentVolumeClaim` volume, the topology labels of its bound PV (`topology.kubernetes.io/
zone`/`region` and the deprecated `failure-domain.beta.kubernetes.io/` ones; a value may list
several zones joined by `__`); unbound claims of a WaitForFirstConsumer class are left to
VolumeBinding. Filter rejects a node that carries any topology label but not a value the PV allows
(a beta PV label is also matched against the node's GA label). Each label is one column compare.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from berth.framework.events import (
    NODE,
    PERSISTENT_VOLUME,
    PERSISTENT_VOLUME_CLAIM,
    STORAGE_CLASS,
    ActionType,
    ClusterEventWithHint,
    on,
)
from berth.framework.plugin import CycleState, FilterPlugin, PreFilterPlugin, PreFilterResult
from berth.framework.status import SKIP, SUCCESS, Status, unresolvable
from berth.objects.pod import PodInfo
from berth.objects.volumes import PVInfo
from berth.plugins.registry import register
from berth.plugins.storagehelpers import not_found
from berth.state.cluster import MISSING, BoolArray, IndexArray

NAME = "VolumeZone"
ERR_REASON_CONFLICT = "node(s) had no available volume zone"
_STATE_KEY = "PreFilter" + NAME

BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
TOPOLOGY_LABELS = (BETA_ZONE, BETA_REGION, ZONE, REGION)
_TO_GA = {BETA_ZONE: ZONE, BETA_REGION: REGION}

PVTopology = tuple[str, str, frozenset[str]]  # pv name, label key, allowed values


def label_zones_to_set(value: str) -> frozenset[str] | None:
    """cloud-provider volume helpers LabelZonesToSet: `a__b` -> {a, b}; None if a part is empty."""
    parts = [p.strip() for p in value.split("__")]
    if any(not p for p in parts):
        return None
    return frozenset(parts)


def pv_topologies(pv: PVInfo) -> list[PVTopology]:
    out = []
    for key in TOPOLOGY_LABELS:
        value = pv.labels.get(key)
        if value is None:
            continue
        zones = label_zones_to_set(value)
        if zones is not None:  # upstream ignores a label it cannot parse
            out.append((pv.name, key, zones))
    return out


class VolumeZone(PreFilterPlugin, FilterPlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        # volumeBindingMode is immutable: only a new StorageClass can help.
        return (
            on(STORAGE_CLASS, ActionType.ADD),
            on(NODE, ActionType.ADD | ActionType.UPDATE_NODE_LABEL),
            on(PERSISTENT_VOLUME_CLAIM, ActionType.ADD | ActionType.UPDATE),
            on(PERSISTENT_VOLUME, ActionType.ADD | ActionType.UPDATE),
        )

    def _topologies(self, pod: PodInfo) -> tuple[list[PVTopology], Status]:
        """upstream getPVbyPod."""
        volumes = self.ports.volumes
        out: list[PVTopology] = []
        for v in pod.volumes:
            if not v.claim or v.ephemeral:
                continue
            pvc = volumes.pvc(pod.namespace, v.claim)
            if pvc is None:
                return [], unresolvable(not_found("persistentvolumeclaim", v.claim))
            if not pvc.volume_name:
                if not pvc.storage_class:
                    return [], unresolvable(
                        "PersistentVolumeClaim had no pv name and storageClass name"
                    )
                sc = volumes.classes.get(pvc.storage_class)
                if sc is None:
                    return [], unresolvable(
                        not_found("storageclass.storage.k8s.io", pvc.storage_class)
                    )
                if sc.binding_mode is None:
                    return [], unresolvable(
                        f'VolumeBindingMode not set for StorageClass "{pvc.storage_class}"'
                    )
                if sc.wait_for_first_consumer:
                    continue  # unbound volumes are VolumeBinding's
                return [], unresolvable("PersistentVolume had no name")
            pv = volumes.pv(pvc.volume_name)
            if pv is None:
                return [], unresolvable(not_found("persistentvolume", pvc.volume_name))
            out.extend(pv_topologies(pv))
        return out, SUCCESS

    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        if not pod.volumes or not self.ports.volumes.tracked:
            return None, SKIP
        topologies, status = self._topologies(pod)
        if not status.ok:
            return None, status
        if not topologies:
            return None, SKIP
        cycle.write(_STATE_KEY, topologies)
        return None, SUCCESS

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        topologies: list[PVTopology] = cycle.read(_STATE_KEY)
        state = self.state
        constrained = np.zeros(len(nodes), dtype=bool)
        for key in TOPOLOGY_LABELS:
            constrained |= state.label_column(key).codes[nodes] != MISSING
        ok = np.ones(len(nodes), dtype=bool)
        for _, key, values in topologies:
            col = state.label_column(key)
            codes = col.codes[nodes]
            match = col.has(codes, (col.code(v) for v in values))
            ga = _TO_GA.get(key)
            if ga is not None:
                ga_col = state.label_column(ga)
                ga_codes = ga_col.codes.take(nodes)
                match |= (codes == MISSING) & ga_col.has(ga_codes, (ga_col.code(v) for v in values))
            ok &= match
        result: BoolArray = ~constrained | ok
        return result

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        if self.filter(cycle, pod, np.array([node], dtype=np.intp))[0]:
            return SUCCESS
        return unresolvable(ERR_REASON_CONFLICT)


register(VolumeZone)
