"""Services and workload controllers, for the selector upstream spreads pods by default.

PodTopologySpread's system default constraints (and `defaultingType: List`) apply to pods
without constraints of their own, with a label selector built from the Services that select the
pod and the ReplicationController / ReplicaSet / StatefulSet that controls it (upstream
helper.DefaultSelector). This index keeps just those selectors, by namespace.
"""

from __future__ import annotations

from typing import Any

from berth.objects.errors import ObjectError
from berth.objects.pod import PodInfo
from berth.objects.selectors import LabelSelector, Requirement, parse_label_selector
from berth.state.store import Store

KINDS = ("Service", "ReplicationController", "ReplicaSet", "StatefulSet")
_MAP_SELECTOR_KINDS = ("Service", "ReplicationController")  # spec.selector is a plain map


class WorkloadIndex(Store):
    kinds = KINDS

    def __init__(self) -> None:
        self._services: dict[str, dict[str, dict[str, str]]] = {}
        self._controllers: dict[tuple[str, str, str], LabelSelector | dict[str, str]] = {}

    def upsert(self, obj: dict[str, Any]) -> bool:
        """Record a Service's or controller's selector (one that cannot be parsed selects
        nothing); no plugin registers events for these kinds."""
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
        raw = (obj.get("spec") or {}).get("selector")
        if kind == "Service":
            if isinstance(raw, dict) and raw:
                self._services.setdefault(ns, {})[name] = {k: str(v) for k, v in raw.items()}
            else:
                self._services.get(ns, {}).pop(name, None)
            return False
        if kind not in KINDS:
            return False
        key = (str(kind), ns, name)
        if kind in _MAP_SELECTOR_KINDS:
            self._controllers[key] = {k: str(v) for k, v in (raw or {}).items()}
            return False
        try:
            self._controllers[key] = parse_label_selector(
                raw, where="spec.selector", kind=str(kind), name=f"{ns}/{name}"
            )
        except ObjectError:
            self._controllers.pop(key, None)
        return False

    def delete(self, obj: dict[str, Any]) -> None:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
        if kind == "Service":
            self._services.get(ns, {}).pop(name, None)
        else:
            self._controllers.pop((str(kind), ns, name), None)

    def default_selector(self, pod: PodInfo) -> LabelSelector:
        """upstream helper.DefaultSelector: Services' selectors merged, plus the controller's."""
        label_set: dict[str, str] = {}
        for selector in self._services.get(pod.namespace, {}).values():
            if all(pod.labels.get(k) == v for k, v in selector.items()):
                label_set.update(selector)
        extra: tuple[Requirement, ...] = ()
        if pod.controller is not None:
            kind, name = pod.controller
            found = self._controllers.get((kind, pod.namespace, name))
            if isinstance(found, dict):
                label_set.update(found)
            elif isinstance(found, LabelSelector) and not found.matches_nothing:
                extra = found.requirements
        reqs = tuple(Requirement(k, "In", frozenset((v,))) for k, v in sorted(label_set.items()))
        return LabelSelector(reqs + extra)
