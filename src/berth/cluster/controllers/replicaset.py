"""ReplicaSets and ReplicationControllers (upstream pkg/controller/replicaset): keep
`spec.replicas` active pods of the template, adopting matching orphans, deleting the least
valuable first, and report replicas, fully-labeled, ready and available counts.
"""

from __future__ import annotations

import time
from typing import Any

from berth.cluster.admission import now
from berth.cluster.api import Api
from berth.cluster.controllers.base import (
    Controller,
    Key,
    OwnerIndex,
    controller_ref,
    is_active,
    is_available,
    is_ready,
    owner_reference,
    ready_since,
    set_condition,
)
from berth.cluster.errors import ApiError
from berth.cluster.resources import PODS, REPLICA_SETS, REPLICATION_CONTROLLERS, ResourceType
from berth.cluster.selectors import label_selector_matches
from berth.cluster.store import Change

JSON = dict[str, Any]
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def pod_from_template(
    template: JSON, *, owner: JSON, namespace: str, name: str = "", generate_name: str = ""
) -> JSON:
    """upstream GetPodFromTemplate: the template's labels, annotations, finalizers and spec,
    owned by the controller."""
    tmeta = template.get("metadata") or {}
    meta: JSON = {"namespace": namespace, "ownerReferences": [owner]}
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name
    for key in ("labels", "annotations", "finalizers"):
        if tmeta.get(key):
            meta[key] = dict(tmeta[key]) if isinstance(tmeta[key], dict) else list(tmeta[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec")}


def deletion_rank(pod: JSON) -> tuple[Any, ...]:
    """upstream ActivePods ordering: the first is the one to delete first (unscheduled, then
    pending, not ready, ready for less time, more restarts, newer)."""
    status = pod.get("status") or {}
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    since = ready_since(pod)
    return (
        bool((pod.get("spec") or {}).get("nodeName")),
        _PHASE_RANK.get(str(status.get("phase")), 0),
        is_ready(pod),
        -(since or 0.0),
        -restarts,
        _negated(str(pod["metadata"].get("creationTimestamp", ""))),
        pod["metadata"]["name"],
    )


def _negated(stamp: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in stamp)


class ReplicaSetController(Controller):
    """Both ReplicaSets (apps/v1, LabelSelector) and ReplicationControllers (v1, a map)."""

    def __init__(self, *, api: Api, index: OwnerIndex, rt: ResourceType = REPLICA_SETS) -> None:
        self.rt = rt
        self.watched = (PODS,)
        self.name = "replicaset-controller" if rt is REPLICA_SETS else "replication-controller"
        super().__init__(api=api, index=index)

    def keys(self, change: Change) -> list[Key]:
        if change.key == PODS.key:
            keys = list(self.owner_key(change))
            if not keys and change.type == "ADDED" and not controller_ref(change.obj):
                keys = self._selecting(change.obj)  # an orphan someone may adopt
            return keys
        return list(self.own_key(change))

    def selector(self, owner: JSON) -> JSON | None:
        spec = owner.get("spec") or {}
        if self.rt is REPLICATION_CONTROLLERS:
            sel = spec.get("selector")
            return {"matchLabels": sel} if sel else None
        sel = spec.get("selector")
        return sel if isinstance(sel, dict) else None

    def _selecting(self, pod: JSON) -> list[Key]:
        if not self.store.count(self.rt):
            return []  # nothing could adopt it (the usual case on the create path)
        ns = pod["metadata"]["namespace"]
        labels = pod["metadata"].get("labels") or {}
        out = []
        for owner in self.store.items(self.rt, ns):
            sel = self.selector(owner)
            if sel and label_selector_matches(sel, labels, unknown_operator=False):
                out.append((ns, owner["metadata"]["name"]))
        return out

    def pods(self, owner: JSON) -> list[JSON]:
        """The active pods `owner` controls, after adopting matching orphans."""
        sel = self.selector(owner)
        ns = owner["metadata"]["namespace"]
        if sel and not owner["metadata"].get("deletionTimestamp"):
            ref = owner_reference(self.rt, owner)
            for pod in list(self.store.items(PODS, ns)):
                if controller_ref(pod) is None and is_active(pod):
                    labels = pod["metadata"].get("labels") or {}
                    if label_selector_matches(sel, labels, unknown_operator=False):
                        meta = dict(pod["metadata"])
                        meta["ownerReferences"] = [*(meta.get("ownerReferences") or []), ref]
                        self.store.replace(PODS, {**pod, "metadata": meta}, pod)
        return [p for p in self.owned(PODS, owner) if is_active(p)]

    def sync(self, owner: JSON) -> int:
        meta = owner["metadata"]
        spec = owner.get("spec") or {}
        pods = self.pods(owner)
        failure: str | None = None
        if not meta.get("deletionTimestamp"):
            want = int(spec.get("replicas", 1))
            diff = len(pods) - want
            if diff < 0:
                failure = self._create(owner, -diff)
            elif diff > 0:
                for pod in sorted(pods, key=deletion_rank)[:diff]:
                    self._delete(owner, pod)
            pods = self.pods(owner) if diff else pods
        return self.write_status(self.rt, owner, self._status(owner, pods, failure))

    def _create(self, owner: JSON, count: int) -> str | None:
        meta = owner["metadata"]
        template = (owner.get("spec") or {}).get("template") or {}
        ref = owner_reference(self.rt, owner)
        for _ in range(count):
            pod = pod_from_template(
                template, owner=ref, namespace=meta["namespace"], generate_name=f"{meta['name']}-"
            )
            try:
                created = self.api.create(PODS, namespace=meta["namespace"], body=pod).obj
            except ApiError as err:
                message = f"Error creating: {err.message}"
                self.event(owner, reason="FailedCreate", message=message, kind="Warning")
                return message
            self.event(
                owner,
                reason="SuccessfulCreate",
                message=f"Created pod: {created['metadata']['name']}",
            )
        return None

    def _delete(self, owner: JSON, pod: JSON) -> None:
        name = pod["metadata"]["name"]
        try:
            self.api.delete(PODS, namespace=pod["metadata"]["namespace"], name=name)
        except ApiError as err:
            message = f"Error deleting: {err.message}"
            self.event(owner, reason="FailedDelete", message=message, kind="Warning")
            return
        self.event(owner, reason="SuccessfulDelete", message=f"Deleted pod: {name}")

    def _status(self, owner: JSON, pods: list[JSON], failure: str | None) -> JSON:
        spec = owner.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        at = time.time()
        ready = [p for p in pods if is_ready(p)]
        available = [p for p in ready if is_available(p, min_ready, at)]
        for p in ready:
            since = ready_since(p)
            if p not in available and since is not None:  # becomes available later
                key = (owner["metadata"]["namespace"], owner["metadata"]["name"])
                self.requeue_at(key, time.monotonic() + since + min_ready - at + 0.01)
        labeled = [
            p
            for p in pods
            if all(
                (p["metadata"].get("labels") or {}).get(k) == v for k, v in template_labels.items()
            )
        ]
        old = owner.get("status") or {}
        status: JSON = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(labeled),
            "readyReplicas": len(ready),
            "availableReplicas": len(available),
            "observedGeneration": owner["metadata"].get("generation", 1),
        }
        if self.rt is REPLICA_SETS:
            terminating = [
                p for p in self.owned(PODS, owner) if p["metadata"].get("deletionTimestamp")
            ]
            status["terminatingReplicas"] = len(terminating)
        conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        if failure is not None:
            conditions = set_condition(
                conditions,
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "lastTransitionTime": now(),
                    "reason": "FailedCreate",
                    "message": failure,
                },
            )
        if conditions:
            status["conditions"] = conditions
        # upstream omits zero counts (omitempty) except replicas
        keep = ("replicas", "terminatingReplicas")  # an int and a set pointer
        return {k: v for k, v in status.items() if v or k in keep}
