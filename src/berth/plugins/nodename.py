"""NodeName: a pod naming a node in spec.nodeName fits only there.

Upstream: pkg/scheduler/framework/plugins/nodename/node_name.go.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from berth.framework.events import NODE, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import CycleState, FilterPlugin
from berth.framework.status import SUCCESS, Status, unresolvable
from berth.objects.pod import PodInfo
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, IndexArray

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


class NodeName(FilterPlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        return (on(NODE, ActionType.ADD),)

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        if not pod.node_name:
            return np.ones(len(nodes), dtype=bool)
        idx = self.state.index.get(pod.node_name, -1)
        ok: BoolArray = nodes == idx
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        if pod.node_name and self.state.names[node] != pod.node_name:
            return unresolvable(ERR_REASON)
        return SUCCESS


register(NodeName)
