"""Which pods the rebalancer may evict at all: descheduler's DefaultEvictor protections, read
from the raw pod (owners, annotations, volumes) as descheduler reads them.

Never: mirror and static pods, pods being deleted, pods without an owner to recreate them
(descheduler's bare pods), DaemonSet pods, system-critical pods (priority >= 2,000,000,000),
pods at or above `priorityThreshold`, pods with local storage (emptyDir, hostPath), pods with
claims when `ignorePvcPods`, pods younger than `minPodAge`, pods outside `evictableNamespaces`.
The options lift the protections as descheduler's do; the annotation
`descheduler.alpha.kubernetes.io/evict` lifts all of them for one pod, as it does there.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from berth.config.rebalance import SYSTEM_CRITICAL_PRIORITY, RebalanceConfig

EVICT_ANNOTATION = "descheduler.alpha.kubernetes.io/evict"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
SOURCE_ANNOTATION = "kubernetes.io/config.source"
Obj = dict[str, Any]


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def protection(raw: Obj, settings: RebalanceConfig, *, now: float | None = None) -> str | None:
    """Why `raw` may not be evicted, or None when it may."""
    meta, spec, status = (
        _dict(raw.get("metadata")),
        _dict(raw.get("spec")),
        _dict(raw.get("status")),
    )
    annotations = _dict(meta.get("annotations"))
    namespace = str(meta.get("namespace") or "default")
    if not settings.evictableNamespaces.allows(namespace):
        return "namespace is not evictable"
    if meta.get("deletionTimestamp"):
        return "pod is terminating"
    if EVICT_ANNOTATION in annotations:
        return None
    if MIRROR_ANNOTATION in annotations:
        return "pod is a mirror pod"
    source = annotations.get(SOURCE_ANNOTATION)
    if source is not None and source != "api":
        return "pod is a static pod"
    owners = meta.get("ownerReferences") if isinstance(meta.get("ownerReferences"), list) else []
    if not owners:
        return "pod does not have any ownerRefs"
    if not settings.evictDaemonSetPods and any(_dict(o).get("kind") == "DaemonSet" for o in owners):
        return "daemonset pods are protected against eviction"
    priority = spec.get("priority")
    if not settings.evictSystemCriticalPods:
        if isinstance(priority, int) and priority >= SYSTEM_CRITICAL_PRIORITY:
            return "pod has system critical priority and is protected against eviction"
        threshold = settings.priorityThreshold
        if threshold is not None and isinstance(priority, int) and priority >= threshold:
            return "pod has higher priority than specified priority class threshold"
    volumes = [_dict(v) for v in spec.get("volumes") or () if isinstance(v, dict)]
    if not settings.evictLocalStoragePods and any(
        "emptyDir" in v or "hostPath" in v for v in volumes
    ):
        return "pod has local storage and is protected against eviction"
    if settings.ignorePvcPods and any("persistentVolumeClaim" in v for v in volumes):
        return "pod with PVC is protected against eviction"
    if settings.minPodAge is not None:
        started = _timestamp(status.get("startTime"))
        if started is None or (now or time.time()) - started < settings.minPodAge:
            return f"pod age is not older than MinPodAge: {settings.minPodAge:g}s"
    return None


def qos_class(raw: Obj) -> str:
    """status.qosClass, or computed as the kubelet does (requests and limits of cpu/memory)."""
    given = _dict(raw.get("status")).get("qosClass")
    if isinstance(given, str) and given:
        return given
    containers = [
        _dict(c)
        for c in [
            *(_dict(raw.get("spec")).get("containers") or ()),
            *(_dict(raw.get("spec")).get("initContainers") or ()),
        ]
    ]
    any_set = False
    guaranteed = True
    for c in containers:
        res = _dict(c.get("resources"))
        requests, limits = _dict(res.get("requests")), _dict(res.get("limits"))
        for name in ("cpu", "memory"):
            if name in requests or name in limits:
                any_set = True
            limit = limits.get(name)
            if limit is None or requests.get(name, limit) != limit:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


QOS_ORDER = {"BestEffort": 0, "Burstable": 1, "Guaranteed": 2}


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


__all__ = ["EVICT_ANNOTATION", "QOS_ORDER", "protection", "qos_class"]
