"""NodeDeclaredFeatures: a pod that needs a node feature runs only where the kubelet declares it.

Upstream: pkg/scheduler/framework/plugins/nodedeclaredfeatures (GA in 1.37) with
component-helpers/nodedeclaredfeatures' registry. The features a pod needs are inferred when it
is parsed (`PodInfo.required_features`: RestartAllContainersOnContainerExits,
UserNamespacesHostNetworkSupport, VolumeBindMountOptions); a node declares its own in
`status.declaredFeatures`. A pod needing none Skips; a node missing one is
UnschedulableAndUnresolvable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from berth.framework.events import NODE, POD, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import CycleState, FilterPlugin, PreFilterPlugin, PreFilterResult
from berth.framework.status import SKIP, SUCCESS, Status, unresolvable
from berth.objects.node import NodeInfo
from berth.objects.pod import PodInfo
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, IndexArray

NAME = "NodeDeclaredFeatures"
ERR_REASON_UNSATISFIED = "node(s) didn't match Pod's required features"


class NodeDeclaredFeatures(PreFilterPlugin, FilterPlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        return (
            on(NODE, ActionType.ADD | ActionType.UPDATE_NODE_DECLARED_FEATURE, _after_node),
            on(POD, ActionType.UPDATE),
        )

    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        if not pod.required_features:
            return None, SKIP
        return None, SUCCESS

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        # Pods needing a feature are rare: the per-node set test runs only for them.
        want = pod.required_features
        nodes_of = self.state.nodes
        return np.fromiter(
            (want <= nodes_of[i].declared_features for i in nodes.tolist()),
            dtype=bool,
            count=len(nodes),
        )

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        if pod.required_features <= self.state.node(node).declared_features:
            return SUCCESS
        return unresolvable(ERR_REASON_UNSATISFIED)


def _after_node(pod: PodInfo, old: Any, new: Any) -> bool:
    """upstream isSchedulableAfterNodeChange: only a change of the declared features helps."""
    if isinstance(old, NodeInfo) and isinstance(new, NodeInfo):
        return old.declared_features != new.declared_features
    return True


register(NodeDeclaredFeatures)
