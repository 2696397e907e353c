"""PodDisruptionBudgets: the disruption controller's status arithmetic and the eviction check.

`compute_status` does what upstream's disruption controller does for bare pods (expected pods are
the pods the selector matches, healthy means Running and Ready); `DisruptionController` keeps every
PDB's status current by recomputing the namespaces whose pods or PDBs changed, in batches.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from berth.cluster.admission import now
from berth.cluster.errors import internal, too_many_requests
from berth.cluster.reconcile import ObjectErrors
from berth.cluster.resources import PDBS, PODS
from berth.cluster.selectors import selector_from_label_selector
from berth.cluster.store import Change, Store

JSON = dict[str, Any]

EVICTION_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


def pod_healthy(pod: JSON) -> bool:
    """Running, Ready and not being deleted: what upstream counts as a healthy pod."""
    if pod["metadata"].get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _scaled(value: Any, total: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        pct = int(value[:-1])
        raw = pct * total / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    return int(value)


def matching_pods(pdb: JSON, pods: list[JSON]) -> list[JSON]:
    select = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
    return [p for p in pods if select(p)]


def compute_status(pdb: JSON, pods: list[JSON]) -> JSON:
    """The PDB's status given the pods of its namespace."""
    spec = pdb.get("spec") or {}
    matched = matching_pods(pdb, pods)
    expected = len(matched)
    healthy = sum(1 for p in matched if pod_healthy(p))
    if "maxUnavailable" in spec:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, round_up=True))
    elif "minAvailable" in spec:
        desired = _scaled(spec["minAvailable"], expected, round_up=True)
    else:
        desired = expected  # upstream defaults minAvailable to 1 only via kubectl; none here
    old = pdb.get("status") or {}
    allowed = max(0, healthy - desired)
    status: JSON = {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
    }
    ok = "True" if allowed > 0 else "False"
    prev = {c.get("type"): c for c in old.get("conditions") or []}.get("DisruptionAllowed")
    stamp = prev["lastTransitionTime"] if prev and prev.get("status") == ok else now()
    status["conditions"] = [
        {
            "type": "DisruptionAllowed",
            "status": ok,
            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
            "message": "",
            "observedGeneration": status["observedGeneration"],
            "lastTransitionTime": stamp,
        }
    ]
    if old.get("disruptedPods"):
        alive = {
            p["metadata"]["name"] for p in matched if not p["metadata"].get("deletionTimestamp")
        }
        kept = {k: v for k, v in old["disruptedPods"].items() if k in alive}
        if kept:
            status["disruptedPods"] = kept
    return status


def _same(a: JSON, b: JSON) -> bool:
    keys = (
        "disruptionsAllowed",
        "currentHealthy",
        "desiredHealthy",
        "expectedPods",
        "observedGeneration",
    )
    return all(a.get(k) == b.get(k) for k in keys)


class DisruptionController:
    """Keeps PDB statuses current: marks namespaces dirty on changes, recomputes in batches."""

    def __init__(self, *, store: Store, interval: float = 0.05) -> None:
        self.store = store
        self.interval = interval
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self.errors = ObjectErrors("disruption controller")
        store.add_listener(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.key == PODS.key or (change.key == PDBS.key and change.type != "DELETED"):
            ns = change.obj["metadata"].get("namespace", "")
            if change.key == PDBS.key:
                old_spec = (change.old or {}).get("spec")
                if change.type == "MODIFIED" and old_spec == change.obj.get("spec"):
                    return  # a status write of ours
            self._dirty.add(ns)
            self._wake.set()

    def sync_namespace(self, namespace: str) -> None:
        """Recompute every PDB of `namespace` now, writing only the ones that changed."""
        pdbs = list(self.store.items(PDBS, namespace))
        if not pdbs:
            return
        pods = list(self.store.items(PODS, namespace))

        def sync(pdb: JSON) -> int:
            status = compute_status(pdb, pods)
            if _same(status, pdb.get("status") or {}):
                return 0
            self.store.replace(PDBS, {**pdb, "status": status}, pdb)
            return 1

        for pdb in pdbs:
            self.errors.run(pdb, sync)

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            for ns in dirty:
                self.sync_namespace(ns)
            await asyncio.sleep(self.interval)

    def check_eviction(self, pod: JSON, *, record: bool = True) -> None:
        """Raise 429 if evicting `pod` would violate a PDB; record the disruption otherwise
        (not for a dry run: `record` False)."""
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        if status.get("phase") == "Pending" and not (pod.get("spec") or {}).get("nodeName"):
            return
        if pod["metadata"].get("deletionTimestamp"):
            return
        ns = pod["metadata"]["namespace"]
        pdbs = [p for p in self.store.items(PDBS, ns) if matching_pods(p, [pod])]
        if not pdbs:
            return
        if len(pdbs) > 1:
            raise internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                "does not support."
            )
        pdb = pdbs[0]
        pods = list(self.store.items(PODS, ns))
        fresh = compute_status(pdb, pods)
        if not pod_healthy(pod):
            # IfHealthyBudget: an unhealthy pod may go if the budget is currently met.
            if fresh["currentHealthy"] >= fresh["desiredHealthy"]:
                return
            raise too_many_requests(EVICTION_MESSAGE, details=_cause(pdb, fresh))
        if fresh["disruptionsAllowed"] <= 0:
            raise too_many_requests(EVICTION_MESSAGE, details=_cause(pdb, fresh))
        if not record:
            return
        fresh["disruptionsAllowed"] -= 1
        disrupted = dict(fresh.get("disruptedPods") or {})
        disrupted[pod["metadata"]["name"]] = now()
        fresh["disruptedPods"] = disrupted
        self.store.replace(PDBS, {**pdb, "status": fresh}, pdb)


def _cause(pdb: JSON, status: JSON) -> JSON:
    name = pdb["metadata"]["name"]
    return {
        "causes": [
            {
                "reason": "DisruptionBudget",
                "message": f"The disruption budget {name} needs {status['desiredHealthy']} "
                f"healthy pods and has {status['currentHealthy']} currently",
            }
        ]
    }
