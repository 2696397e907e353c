"""StatefulSets (upstream pkg/controller/statefulset): pods `NAME-0` .. `NAME-(n-1)` with stable
hostnames under the governing Service, created in order and each only once the ones before it
are Running and Ready (OrderedReady) or all at once (Parallel), removed from the highest ordinal,
a PersistentVolumeClaim per volumeClaimTemplate and ordinal, ControllerRevisions of the
template, and rolling updates from the highest ordinal down to the partition.
"""

from __future__ import annotations

import time
from typing import Any

from berth.cluster.controllers.base import (
    Controller,
    Key,
    is_active,
    is_available,
    is_ready,
    owner_reference,
)
from berth.cluster.controllers.deployment import template_hash
from berth.cluster.controllers.replicaset import pod_from_template
from berth.cluster.errors import ApiError
from berth.cluster.resources import CONTROLLER_REVISIONS, PODS, PVCS, STATEFUL_SETS
from berth.cluster.store import Change

JSON = dict[str, Any]
REVISION_LABEL = "controller-revision-hash"
POD_NAME = "statefulset.kubernetes.io/pod-name"
POD_INDEX = "apps.kubernetes.io/pod-index"


def revision_object(rt_owner: Any, owner: JSON, *, name: str, revision: int, data: JSON) -> JSON:
    """A ControllerRevision of `owner` (where StatefulSets and DaemonSets keep templates)."""
    meta = owner["metadata"]
    selector = ((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {**selector, REVISION_LABEL: name.rsplit("-", 1)[-1]},
            "ownerReferences": [owner_reference(rt_owner, owner)],
        },
        "data": data,
        "revision": revision,
    }


class StatefulSetController(Controller):
    name = "statefulset-controller"
    rt = STATEFUL_SETS
    watched = (PODS,)

    def keys(self, change: Change) -> list[Key]:
        if change.key == PODS.key:
            return list(self.owner_key(change))
        return list(self.own_key(change))

    def _revision(self, sts: JSON) -> str:
        """The update revision's name, its ControllerRevision created when missing."""
        meta, spec = sts["metadata"], sts.get("spec") or {}
        template = spec.get("template") or {}
        name = f"{meta['name']}-{template_hash(template)}"
        if self.store.get(CONTROLLER_REVISIONS, meta["namespace"], name) is None:
            existing = self.owned(CONTROLLER_REVISIONS, sts)
            number = max((int(r.get("revision") or 0) for r in existing), default=0) + 1
            data = {"spec": {"template": {**template, "$patch": "replace"}}}
            body = revision_object(STATEFUL_SETS, sts, name=name, revision=number, data=data)
            self.api.create(CONTROLLER_REVISIONS, namespace=meta["namespace"], body=body)
        return name

    def sync(self, sts: JSON) -> int:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return 0
        ns, name = meta["namespace"], meta["name"]
        update = self._revision(sts)
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        replicas = int(spec.get("replicas", 1))
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        pods = {p["metadata"]["name"]: p for p in self.owned(PODS, sts)}
        wanted = [f"{name}-{i}" for i in range(start, start + replicas)]
        old_status = sts.get("status") or {}
        current = str(old_status.get("currentRevision") or update)
        for i, pod_name in enumerate(wanted, start=start):
            pod = pods.get(pod_name)
            if pod is not None and not is_active(pod):
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    self.api.delete(PODS, namespace=ns, name=pod_name)  # recreated next sync
                pod = None
            if pod is None:
                if pod_name in pods and pods[pod_name]["metadata"].get("deletionTimestamp"):
                    break  # wait for it to go
                self._create(sts, i, pod_name, update)
                if ordered:
                    break
                continue
            if ordered and not (
                is_ready(pod) and (pod.get("status") or {}).get("phase") == "Running"
            ):
                break
        # scale down: the highest ordinal beyond the replicas first
        extra = sorted(
            (p for n, p in pods.items() if n not in wanted),
            key=lambda p: _ordinal(p["metadata"]["name"]),
            reverse=True,
        )
        for pod in extra:
            if not pod["metadata"].get("deletionTimestamp"):
                self.api.delete(PODS, namespace=ns, name=pod["metadata"]["name"])
            if ordered:
                break
        # rolling update: the highest ordinal not on the update revision, above the partition
        strategy = spec.get("updateStrategy") or {}
        pods = {p["metadata"]["name"]: p for p in self.owned(PODS, sts)}
        live = [pods[n] for n in wanted if n in pods]
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and len(live) == len(wanted):
            partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
            if all(is_ready(p) for p in live):
                for pod in reversed(live):
                    if _ordinal(pod["metadata"]["name"]) < start + partition:
                        break
                    if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) != update:
                        self.api.delete(PODS, namespace=ns, name=pod["metadata"]["name"])
                        break
        pods_now = [p for p in self.owned(PODS, sts) if is_active(p)]
        updated = [
            p for p in pods_now if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == update
        ]
        if len(updated) == replicas and all(is_ready(p) for p in updated):
            current = update
        status: JSON = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(pods_now),
            "readyReplicas": sum(1 for p in pods_now if is_ready(p)),
            "currentReplicas": sum(
                1
                for p in pods_now
                if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == current
            ),
            "updatedReplicas": len(updated),
            "currentRevision": current,
            "updateRevision": update,
            "collisionCount": 0,
            "availableReplicas": sum(
                1
                for p in pods_now
                if is_available(p, int(spec.get("minReadySeconds") or 0), time.time())
            ),
        }
        keep = ("replicas", "availableReplicas", "collisionCount", "observedGeneration")
        status = {k: v for k, v in status.items() if v or k in keep}
        return self.write_status(STATEFUL_SETS, sts, status)

    def _create(self, sts: JSON, ordinal: int, pod_name: str, revision: str) -> None:
        meta, spec = sts["metadata"], sts.get("spec") or {}
        ns = meta["namespace"]
        template = spec.get("template") or {}
        body = pod_from_template(
            template, owner=owner_reference(STATEFUL_SETS, sts), namespace=ns, name=pod_name
        )
        pmeta = body["metadata"]
        pmeta["labels"] = {
            **(pmeta.get("labels") or {}),
            REVISION_LABEL: revision,
            POD_NAME: pod_name,
            POD_INDEX: str(ordinal),
        }
        pspec = dict(body["spec"] or {})
        pspec["hostname"] = pod_name
        if spec.get("serviceName"):
            pspec["subdomain"] = spec["serviceName"]
        volumes = [v for v in pspec.get("volumes") or [] if isinstance(v, dict)]
        for claim in spec.get("volumeClaimTemplates") or []:
            cname = (claim.get("metadata") or {}).get("name", "")
            claim_name = f"{cname}-{pod_name}"
            if self.store.get(PVCS, ns, claim_name) is None:
                cbody = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": claim_name,
                        "namespace": ns,
                        "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                    },
                    "spec": claim.get("spec") or {},
                }
                try:
                    self.api.create(PVCS, namespace=ns, body=cbody)
                except ApiError as err:
                    self.event(sts, reason="FailedCreate", message=err.message, kind="Warning")
                    return
            volumes = [v for v in volumes if v.get("name") != cname]
            volumes.append({"name": cname, "persistentVolumeClaim": {"claimName": claim_name}})
        if volumes:
            pspec["volumes"] = volumes
        body["spec"] = pspec
        try:
            self.api.create(PODS, namespace=ns, body=body)
        except ApiError as err:
            self.event(
                sts,
                reason="FailedCreate",
                message=f"create Pod {pod_name} in StatefulSet {meta['name']} failed error: "
                f"{err.message}",
                kind="Warning",
            )
            return
        self.event(
            sts,
            reason="SuccessfulCreate",
            message=f"create Pod {pod_name} in StatefulSet {meta['name']} successful",
        )


def _ordinal(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1
