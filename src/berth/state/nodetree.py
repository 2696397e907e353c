"""kube-scheduler's node tree: nodes grouped by zone, listed one node of each zone in turn.

The order in which the scheduler scans nodes (which nodes `percentageOfNodesToScore` finds
feasible first, where the next search starts, which candidates preemption meets first) is this
list, as upstream's `pkg/scheduler/backend/cache/node_tree.go`. Slots stand for node names.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IndexArray = npt.NDArray[np.intp]

TOPOLOGY_ZONE = "topology.kubernetes.io/zone"
TOPOLOGY_REGION = "topology.kubernetes.io/region"
BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"


def zone_key(labels: dict[str, str]) -> str:
    """upstream utilnode.GetZoneKey: "region:\\x00:zone" from the deprecated labels if present,
    else the topology ones; "" when the node has neither a region nor a zone."""
    zone = labels[BETA_ZONE] if BETA_ZONE in labels else labels.get(TOPOLOGY_ZONE, "")
    region = labels[BETA_REGION] if BETA_REGION in labels else labels.get(TOPOLOGY_REGION, "")
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


class NodeTree:
    """Zone -> node slots in arrival order, and the zones in the order they first appeared
    (a zone that empties is dropped; coming back, it goes last)."""

    def __init__(self) -> None:
        self.tree: dict[str, list[int]] = {}
        self.zones: list[str] = []
        self.zone_of: dict[int, str] = {}

    @property
    def num_nodes(self) -> int:
        return len(self.zone_of)

    def add(self, slot: int, zone: str) -> None:
        """upstream addNode: appended to its zone; a node already there is not added twice."""
        if slot in self.zone_of:
            return
        members = self.tree.get(zone)
        if members is None:
            self.zones.append(zone)
            self.tree[zone] = [slot]
        else:
            members.append(slot)
        self.zone_of[slot] = zone

    def remove(self, slot: int) -> bool:
        """upstream removeNode; False when the node is not in the tree."""
        zone = self.zone_of.pop(slot, None)
        if zone is None:
            return False
        members = self.tree[zone]
        members.remove(slot)
        if not members:
            del self.tree[zone]
            self.zones.remove(zone)
        return True

    def update(self, slot: int, zone: str) -> None:
        """upstream updateNode: a node whose zone changed moves to the end of its new zone."""
        if self.zone_of.get(slot) == zone:
            return
        self.remove(slot)
        self.add(slot, zone)

    def list(self) -> IndexArray:
        """upstream list(): round after round, the next node of every zone not yet exhausted,
        zones in their order. Vectorised: each slot's (round, zone) pair, sorted."""
        if not self.zones:
            return np.zeros(0, dtype=np.intp)
        members = [np.array(self.tree[z], dtype=np.intp) for z in self.zones]
        slots = np.concatenate(members)
        rounds = np.concatenate([np.arange(len(m)) for m in members])
        zone_rank = np.repeat(np.arange(len(members)), [len(m) for m in members])
        order: IndexArray = slots[np.lexsort((zone_rank, rounds))]
        return order
