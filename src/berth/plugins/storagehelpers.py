"""What the volume plugins share: the volume index service, PV node affinity over node columns,
and upstream's NotFound messages.

Upstream: component-helpers/storage/volume (CheckNodeAffinity) and apimachinery's NotFound
errors, whose text the plugins return as reasons (`persistentvolumeclaim "data" not found`).
"""

from __future__ import annotations

import numpy as np

from berth.framework.plugin import Handle
from berth.objects.selectors import NodeSelectorTerm
from berth.objects.volumes import PVInfo
from berth.plugins.nodeaffinity import requirement_mask
from berth.state.cluster import BoolArray, ClusterState, IndexArray
from berth.state.volumes import VolumeIndex

VOLUMES_SERVICE = "volumes"


def volume_index(handle: Handle) -> VolumeIndex:
    """The front's volume index, or an empty one (a front that knows no storage objects)."""
    found = handle.services.get(VOLUMES_SERVICE)
    if isinstance(found, VolumeIndex):
        return found
    index = VolumeIndex()
    handle.services[VOLUMES_SERVICE] = index
    return index


def not_found(resource: str, name: str) -> str:
    """apimachinery's NotFound message, e.g. `persistentvolumeclaim "data" not found`."""
    return f'{resource} "{name}" not found'


def _term_mask(state: ClusterState, term: NodeSelectorTerm, nodes: IndexArray) -> BoolArray:
    if not term.expressions and not term.fields:
        return np.zeros(len(nodes), dtype=bool)
    mask = np.ones(len(nodes), dtype=bool)
    for req in term.expressions:
        mask &= requirement_mask(state, req, nodes)
    for req in term.fields:
        # CheckNodeAffinity matches a node made of the labels only: its name is "".
        if not req.matches({"metadata.name": ""}):
            mask[:] = False
    return mask


def pv_node_mask(state: ClusterState, pv: PVInfo, nodes: IndexArray) -> BoolArray:
    """upstream volume.CheckNodeAffinity for every node: no required affinity matches all."""
    if pv.node_terms is None:
        return np.ones(len(nodes), dtype=bool)
    mask = np.zeros(len(nodes), dtype=bool)
    for term in pv.node_terms:
        mask |= _term_mask(state, term, nodes)
    return mask
