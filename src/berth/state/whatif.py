"""A hypothesis on the cluster state that puts the state back by itself (`what_if(state)`).

Preemption asks "does the pod fit once these pods are gone?", the nominated-pods check "does it
still fit with those pods added?", the extender's preempt verb "does it fit without the victims
kube-scheduler chose?". Each changes the state in the middle of a decision; doing it through a
`WhatIf` guarantees the state afterwards is the one before: removed pods return to their node
with their assumed flag, added pods go, and each touched node lists its pods in the old order
(victim selection and explanations iterate that order).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from berth.objects.pod import PodInfo
from berth.state.cluster import ClusterState


@contextmanager
def what_if(state: ClusterState) -> Iterator[WhatIf]:
    """A hypothesis (pods removed or added) on `state`, undone when the block ends."""
    hypothesis = WhatIf(state)
    try:
        yield hypothesis
    finally:
        hypothesis.undo()


class WhatIf:
    """Pod removals and additions undone in reverse when the `with` block ends."""

    def __init__(self, state: ClusterState) -> None:
        self._state = state
        # key -> (pod, node name, was assumed), for the pods taken off
        self._removed: dict[str, tuple[PodInfo, str, bool]] = {}
        self._added: list[str] = []
        self._orders: dict[str, list[str]] = {}  # node -> its pods' keys before the first change

    def _touch(self, node_name: str) -> None:
        if node_name not in self._orders:
            idx = self._state.index.get(node_name)
            self._orders[node_name] = list(self._state.node_pods[idx]) if idx is not None else []

    def remove(self, key: str) -> PodInfo | None:
        """Take a placed pod off its node for the hypothesis; None if it is not placed."""
        state = self._state
        pod = state.pods.get(key)
        if pod is None:
            return None
        node_name = state.pod_node[key]
        self._touch(node_name)
        assumed = state.is_assumed(key)
        state.remove_pod(key)
        if key in self._added:
            self._added.remove(key)  # added by this hypothesis: nothing to put back
        else:
            self._removed[key] = (pod, node_name, assumed)
        return pod

    def restore(self, key: str) -> None:
        """Put back a pod this hypothesis removed (as it was: same copy, node, assumed flag)."""
        entry = self._removed.pop(key, None)
        if entry is not None:
            if key in self._added:  # a copy this hypothesis added meanwhile gives way
                self._added.remove(key)
                self._state.remove_pod(key)
            self._put_back(*entry)

    def add(self, pod: PodInfo, node_name: str) -> None:
        """Count a pod that is placed nowhere on `node_name` for the hypothesis."""
        if pod.key in self._state.pods:
            raise ValueError(f"pod {pod.key} is already placed; remove it first")
        self._touch(node_name)
        self._state.add_pod(pod, node_name)
        self._added.append(pod.key)

    def _put_back(self, pod: PodInfo, node_name: str, assumed: bool) -> None:
        if assumed:
            self._state.assume_pod(pod, node_name)
        else:
            self._state.add_pod(pod, node_name)

    def undo(self) -> None:
        """Back to the state before the hypothesis."""
        state = self._state
        for key in reversed(self._added):
            state.remove_pod(key)
        self._added.clear()
        for pod, node_name, assumed in list(self._removed.values()):
            self._put_back(pod, node_name, assumed)
        self._removed.clear()
        for node_name, order in self._orders.items():
            idx = state.index.get(node_name)
            if idx is None:
                continue
            pods = state.node_pods[idx]
            kept = {k: pods[k] for k in order if k in pods}
            kept.update(pods)  # (nothing else expected; never drop a pod)
            state.node_pods[idx] = kept
        self._orders.clear()
