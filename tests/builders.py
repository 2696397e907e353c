"""Builders for Kubernetes objects and a harness that runs one plugin the way the engine does.

Tests describe nodes and pods as upstream's tests do (st.MakePod().Req(...)...), but as plain
dicts, then ask for a plugin's filter verdict / reasons / normalised scores on every node.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from berth.config.plugins import ResolvedProfile
from berth.engine import build_framework
from berth.framework.algorithm import Scheduler
from berth.framework.plugin import CycleState, FilterPlugin, Handle, ScorePlugin
from berth.framework.status import Status
from berth.objects import parse_node, parse_pod
from berth.objects.pod import PodInfo
from berth.plugins.registry import registry
from berth.state.cluster import ClusterState

_counter = itertools.count()


def node(
    name: str,
    *,
    cpu: str | int = "4",
    memory: str = "16Gi",
    pods: int = 110,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    images: list[tuple[list[str], int]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    alloc: dict[str, Any] = {"cpu": str(cpu), "memory": memory, "pods": str(pods)}
    alloc.update(extra or {})
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
        },
        "spec": spec,
        "status": {
            "allocatable": alloc,
            "capacity": alloc,
            "images": [{"names": n, "sizeBytes": s} for n, s in (images or [])],
        },
    }


def pod(
    name: str | None = None,
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    requests: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    node_name: str = "",
    scheduler: str = "berth",
    priority: int | None = None,
    spec: dict[str, Any] | None = None,
    containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    name = name or f"pod-{next(_counter)}"
    req: dict[str, str] = dict(requests or {})
    if cpu is not None:
        req["cpu"] = cpu
    if memory is not None:
        req["memory"] = memory
    body: dict[str, Any] = {
        "schedulerName": scheduler,
        "containers": containers
        or [{"name": "c", "image": "busybox", "resources": {"requests": req} if req else {}}],
    }
    if node_name:
        body["nodeName"] = node_name
    if priority is not None:
        body["priority"] = priority
    body.update(spec or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": dict(labels or {}),
        },
        "spec": body,
    }


def make_state(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]] = (),  # type: ignore[assignment]
    namespaces: dict[str, dict[str, str]] | None = None,
) -> ClusterState:
    state = ClusterState()
    for n in nodes:
        state.upsert_node(parse_node(n))
    for p in pods:
        state.add_pod(parse_pod(p))
    for ns, labels in (namespaces or {}).items():
        state.set_namespace(ns, labels)
    return state


class PluginHarness:
    """One plugin instantiated on a state; results keyed by node name, as upstream tests read."""

    def __init__(self, plugin: str, state: ClusterState, args: dict[str, Any] | None = None):
        spec = registry()[plugin]
        parsed = spec.args_model.model_validate(args or {}) if spec.args_model else None
        self.state = state
        self.plugin = spec.cls(args=parsed, handle=Handle(state=state))

    def _nodes(self) -> np.ndarray:
        return self.state.node_indices()

    def filter(self, raw_pod: dict[str, Any]) -> dict[str, Status]:
        """Node name -> Status (Success or the rejection), running PreFilter first."""
        from berth.framework.plugin import PreFilterPlugin
        from berth.framework.status import SUCCESS

        pod = parse_pod(raw_pod)
        cycle = CycleState()
        nodes = self._nodes()
        allowed = None
        if isinstance(self.plugin, PreFilterPlugin):
            result, status = self.plugin.pre_filter(cycle, pod)
            if status.is_skip:
                return {self.state.names[i]: SUCCESS for i in nodes}
            if not status.ok:
                return {self.state.names[i]: status for i in nodes}
            allowed = result.node_names if result is not None else None
        assert isinstance(self.plugin, FilterPlugin)
        ok = self.plugin.filter(cycle, pod, nodes)
        out: dict[str, Status] = {}
        for i, passed in zip(nodes, ok, strict=True):
            name = self.state.names[i]
            if allowed is not None and name not in allowed:
                out[name] = Status(code=3, reasons=("not in PreFilterResult",))  # type: ignore[arg-type]
            elif passed:
                out[name] = SUCCESS
            else:
                out[name] = self.plugin.explain(cycle, pod, int(i))
        return out

    def reasons(self, raw_pod: dict[str, Any]) -> dict[str, list[str]]:
        return {n: list(s.reasons) for n, s in self.filter(raw_pod).items() if not s.ok}

    def score(self, raw_pod: dict[str, Any], nodes: list[str] | None = None) -> dict[str, int]:
        """Normalised scores on `nodes` (default: all); {} when PreScore says Skip."""
        from berth.framework.plugin import PreScorePlugin

        pod = parse_pod(raw_pod)
        cycle = CycleState()
        idx = (
            self._nodes()
            if nodes is None
            else np.array([self.state.index[n] for n in nodes], dtype=np.intp)
        )
        if isinstance(self.plugin, PreScorePlugin):
            status = self.plugin.pre_score(cycle, pod, idx)
            if status.is_skip:
                return {}
        assert isinstance(self.plugin, ScorePlugin)
        raw = self.plugin.score(cycle, pod, idx)
        scores = self.plugin.normalize(cycle, pod, idx, raw)
        return {self.state.names[i]: int(s) for i, s in zip(idx, scores, strict=True)}


def parsed(raw_pod: dict[str, Any]) -> PodInfo:
    return parse_pod(raw_pod)


def scheduler(
    state: ClusterState, resolved: ResolvedProfile, *, seed: int = 0
) -> Scheduler:  # pragma: no cover - convenience
    import random

    handle = Handle(state=state, rng=random.Random(seed))
    return Scheduler(framework=build_framework(resolved, handle))
