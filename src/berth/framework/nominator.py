"""Pods nominated to a node by preemption and not bound yet (upstream's PodNominator).

Preemption frees room on a node for one pod; until that pod is bound, filtering any other pod
of lower priority on that node counts the nominated pod as if it were placed there
(RunFilterPluginsWithNominatedPods), so the freed room is not taken by someone else.
"""

from __future__ import annotations

from berth.objects.pod import PodInfo


class Nominator:
    """Nominated pods by node; the fronts keep it current (preemption, watch, bind)."""

    def __init__(self) -> None:
        self._by_node: dict[str, dict[str, PodInfo]] = {}
        self._node_of: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._node_of)

    def add(self, pod: PodInfo, node_name: str) -> None:
        """Nominate `pod` to `node_name` (replacing any earlier nomination of it)."""
        self.remove(pod.key)
        if not node_name:
            return
        self._by_node.setdefault(node_name, {})[pod.key] = pod
        self._node_of[pod.key] = node_name

    def remove(self, key: str) -> None:
        node_name = self._node_of.pop(key, None)
        if node_name is None:
            return
        pods = self._by_node.get(node_name)
        if pods is not None:
            pods.pop(key, None)
            if not pods:
                del self._by_node[node_name]

    def node_of(self, key: str) -> str | None:
        return self._node_of.get(key)

    def pods_for_node(self, node_name: str) -> list[PodInfo]:
        return list(self._by_node.get(node_name, {}).values())

    def nodes(self) -> list[str]:
        """Nodes that have at least one nominated pod."""
        return list(self._by_node)
