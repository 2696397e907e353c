"""NodePorts: a pod's host ports must be free on the node (0.0.0.0 conflicts with every IP).

Upstream: pkg/scheduler/framework/plugins/nodeports/node_ports.go and HostPortInfo.CheckConflict.
Only nodes that already have host ports in use are examined; all others pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from berth.framework.events import NODE, POD, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import CycleState, FilterPlugin, PreFilterPlugin, PreFilterResult
from berth.framework.status import SKIP, SUCCESS, Status, unschedulable
from berth.objects.pod import PodInfo
from berth.plugins.registry import register
from berth.state.cluster import BoolArray, IndexArray

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(
    used: Counter[tuple[str, str, int]], wanted: tuple[tuple[str, str, int], ...]
) -> bool:
    for ip, proto, port in wanted:
        if port <= 0:
            continue
        if ip == ANY_IP:
            if any(u_proto == proto and u_port == port for _, u_proto, u_port in used):
                return True
        elif (ANY_IP, proto, port) in used or (ip, proto, port) in used:
            return True
    return False


class NodePorts(PreFilterPlugin, FilterPlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        # Container ports are immutable: pod updates cannot free any.
        return (
            on(POD, ActionType.DELETE, _schedulable_after_pod_deleted),
            on(NODE, ActionType.ADD),
        )

    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        if not pod.host_ports:
            return None, SKIP
        return None, SUCCESS

    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        ok = np.ones(len(nodes), dtype=bool)
        if not pod.host_ports:
            return ok
        busy = [
            idx for idx, used in self.state.node_ports.items() if conflicts(used, pod.host_ports)
        ]
        if busy:
            ok &= ~np.isin(nodes, np.array(busy, dtype=np.intp))
        return ok

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        used = self.state.node_ports.get(node)
        if used and conflicts(used, pod.host_ports):
            return unschedulable(ERR_REASON)
        return SUCCESS


def _schedulable_after_pod_deleted(pod: PodInfo, old: Any, new: Any) -> bool:
    """upstream isSchedulableAfterPodDeleted: only a pod that used one of the ports helps (the
    live scheduler raises the event only for pods counted on a node)."""
    del new
    if not isinstance(old, PodInfo):
        return True
    wanted = {(proto, port) for _, proto, port in pod.host_ports}
    return any((proto, port) in wanted for _, proto, port in old.host_ports)


register(NodePorts)
