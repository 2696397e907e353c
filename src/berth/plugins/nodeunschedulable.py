"""NodeUnschedulable: cordoned nodes reject pods that do not tolerate the unschedulable taint.

Upstream: pkg/scheduler/framework/plugins/nodeunschedulable/node_unschedulable.go.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from berth.framework.events import NODE, POD, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import CycleState, FilterPlugin
from berth.framework.status import SUCCESS, Status, unresolvable
from berth.objects.node import NodeInfo, Taint
from berth.objects.pod import PodInfo
from berth.plugins.helpers import tolerates
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, IndexArray

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


class NodeUnschedulable(FilterPlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        return (
            on(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT, _schedulable_after_node),
            on(POD, ActionType.UPDATE_POD_TOLERATION),
        )

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        if tolerates(pod.tolerations, UNSCHEDULABLE_TAINT):
            return np.ones(len(nodes), dtype=bool)
        ok: BoolArray = ~self.state.unschedulable[nodes]
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        if self.state.unschedulable[node] and not tolerates(pod.tolerations, UNSCHEDULABLE_TAINT):
            return unresolvable(ERR_REASON_UNSCHEDULABLE)
        return SUCCESS


def _schedulable_after_node(pod: PodInfo, old: Any, new: Any) -> bool:
    """upstream isSchedulableAfterNodeChange: only a node that takes pods (now) can help."""
    del old
    if not isinstance(new, NodeInfo):
        return True
    return not new.unschedulable or tolerates(pod.tolerations, UNSCHEDULABLE_TAINT)


register(NodeUnschedulable)
