"""TaintToleration: filter on untolerated NoSchedule/NoExecute taints, score PreferNoSchedule.

Upstream: pkg/scheduler/framework/plugins/tainttoleration/taint_toleration.go. The filter is
evaluated once per distinct taint set and broadcast to nodes (nodes share few taint sets).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from berth.framework.events import NODE, POD, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import CycleState, FilterPlugin, PreScorePlugin, ScorePlugin
from berth.framework.status import SUCCESS, Status, unresolvable
from berth.objects.node import NodeInfo
from berth.objects.pod import PodInfo
from berth.plugins.helpers import (
    FILTER_EFFECTS,
    default_normalize,
    first_untolerated,
    tolerates,
    tolerates_node_taints,
)
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, IndexArray, IntArray

NAME = "TaintToleration"
# 1.37 no longer names the taint (taint_toleration.go:133).
ERR_REASON_UNTOLERATED = "node(s) had untolerated taint(s)"


class TaintToleration(FilterPlugin, PreScorePlugin, ScorePlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        return (
            on(NODE, ActionType.ADD | ActionType.UPDATE_NODE_TAINT, _schedulable_after_node),
            on(POD, ActionType.UPDATE_POD_TOLERATION),
        )

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        return tolerates_node_taints(self.state, pod, nodes)

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        taint = first_untolerated(self.state.node(node).taints, pod.tolerations, FILTER_EFFECTS)
        if taint is None:
            return SUCCESS
        return unresolvable(ERR_REASON_UNTOLERATED)

    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        prefer = tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule"))
        cycle.write(NAME, prefer)
        return SUCCESS

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        prefer = cycle.read(NAME)
        if prefer is None:
            prefer = tuple(t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule"))
        state = self.state
        per_group = np.array(
            [
                sum(
                    1 for t in taints if t.effect == "PreferNoSchedule" and not tolerates(prefer, t)
                )
                for taints in state.taint_sets
            ],
            dtype=np.int64,
        )
        counts: IntArray = per_group[state.taint_group[nodes]]
        return counts

    def normalize(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray, scores: IntArray
    ) -> IntArray:
        return default_normalize(scores, reverse=True)


def _schedulable_after_node(pod: PodInfo, old: Any, new: Any) -> bool:
    """upstream isSchedulableAfterNodeChange: the node (added, or its taints changed) now has
    no taint the pod does not tolerate, and did have one before."""
    if not isinstance(new, NodeInfo):
        return True
    if first_untolerated(new.taints, pod.tolerations, FILTER_EFFECTS) is not None:
        return False
    if not isinstance(old, NodeInfo):
        return True
    return first_untolerated(old.taints, pod.tolerations, FILTER_EFFECTS) is not None


register(TaintToleration)
