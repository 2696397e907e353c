"""The embedded cluster's ResourceClaim controller: what kube-controller-manager's resourceclaim
controller (pkg/controller/resourceclaim) does for a scheduler.

- A pod's claim with `resourceClaimTemplateName` gets a ResourceClaim made from the template
  (`generateName` `<pod>-<claim>-`, both truncated as upstream does past 57 characters; the
  template's labels and annotations plus `resource.kubernetes.io/pod-claim-name`; the pod as
  controlling owner), and its name goes into the pod's `status.resourceClaimStatuses`. A claim
  the controller made earlier but never recorded (found by owner and annotation) is reused, and
  one recorded but deleted is made again.
- A pod bound to a node whose allocated claim does not list it yet is added to `reservedFor`.
- A claim's `reservedFor` loses pods that are gone, replaced (another uid) or done; a claim left
  with no consumer is deallocated (status.allocation cleared) and loses the
  `resource.kubernetes.io/delete-protection` finalizer, and a generated claim whose pod is done
  or gone is deleted (upstream leaves a gone pod's claim to the garbage collector, which the
  embedded cluster does here).

Like the PV controller it is one task: store listeners mark pods and claims dirty, and each pass
syncs only the dirty ones, so a pass costs what changed, not every claim.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from berth.cluster.api import Api
from berth.cluster.errors import ApiError
from berth.cluster.reconcile import ObjectErrors
from berth.cluster.resources import PODS, RESOURCE_CLAIM_TEMPLATES, RESOURCE_CLAIMS
from berth.cluster.store import Change

log = logging.getLogger("berth.cluster.resourceclaims")
JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)

POD_CLAIM_ANNOTATION = "resource.kubernetes.io/pod-claim-name"
FINALIZER = "resource.kubernetes.io/delete-protection"
MAX_BASE_LENGTH = 57  # a generated name of 63: the base, "-" and 5 random characters


def generate_name(pod: str, claim: str) -> str:
    """upstream handleClaim's generateName: `<pod>-<claim>-`, both cut in proportion when
    longer than 57 characters (the apiserver would cut the claim name off the end)."""
    base = f"{pod}-{claim}-"
    if len(base) <= MAX_BASE_LENGTH:
        return base
    total = len(base)
    pod_part = pod[: len(pod) * MAX_BASE_LENGTH // total]
    return f"{pod_part}-{claim[: len(claim) * MAX_BASE_LENGTH // total]}"


def _meta(obj: JSON) -> JSON:
    meta: JSON = obj["metadata"]
    return meta


def _pod_done(pod: JSON) -> bool:
    """upstream isPodDone: terminal, or deleted before it was scheduled."""
    phase = (pod.get("status") or {}).get("phase")
    spec = pod.get("spec") or {}
    return phase in ("Succeeded", "Failed") or bool(
        _meta(pod).get("deletionTimestamp") and not spec.get("nodeName")
    )


def _owner_pod(claim: JSON) -> tuple[str, str] | None:
    """(name, uid) of the pod controlling the claim (upstream owningPod)."""
    for ref in _meta(claim).get("ownerReferences") or ():
        if (
            isinstance(ref, dict)
            and ref.get("controller") is True
            and ref.get("apiVersion") == "v1"
            and ref.get("kind") == "Pod"
        ):
            return str(ref.get("name") or ""), str(ref.get("uid") or "")
    return None


def _statuses(pod: JSON) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for s in (pod.get("status") or {}).get("resourceClaimStatuses") or ():
        if isinstance(s, dict) and s.get("name"):
            out[str(s["name"])] = s.get("resourceClaimName")
    return out


class ResourceClaimController:
    """Claims for pods from templates, reservations of bound pods, cleanup of finished ones."""

    def __init__(self, *, api: Api, interval: float = 0.05) -> None:
        self.api = api
        self.store = api.store
        self.interval = interval
        self.errors = ObjectErrors("resourceclaim controller")
        self._wake = asyncio.Event()
        self._pods: set[Key] = set()
        self._claims: set[Key] = set()
        # claim keys by the uid of a pod they are reserved for, or owned by
        self._by_pod_uid: dict[str, set[Key]] = defaultdict(set)
        # pods waiting for a template: (namespace, template) -> pod keys
        self._waiting: dict[Key, set[Key]] = defaultdict(set)
        self.store.add_listener(self._on_change)
        for claim in self.store.items(RESOURCE_CLAIMS):
            self._index(claim)
            self._claims.add(self._key(claim))
        for pod in self.store.items(PODS):
            if (pod.get("spec") or {}).get("resourceClaims"):
                self._pods.add(self._key(pod))

    @staticmethod
    def _key(obj: JSON) -> Key:
        meta = _meta(obj)
        return (str(meta.get("namespace") or ""), str(meta["name"]))

    def _index(self, claim: JSON) -> None:
        key = self._key(claim)
        owner = _owner_pod(claim)
        if owner is not None:
            self._by_pod_uid[owner[1]].add(key)
        for ref in (claim.get("status") or {}).get("reservedFor") or ():
            if isinstance(ref, dict) and ref.get("uid"):
                self._by_pod_uid[str(ref["uid"])].add(key)

    # ----- what changed ----------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        if change.key == PODS.key:
            pod = change.obj
            key = self._key(pod)
            uid = str(_meta(pod).get("uid") or "")
            if (
                change.type == "DELETED"
                or _pod_done(pod)
                or (pod.get("spec") or {}).get("nodeName")
            ):
                self._claims |= self._by_pod_uid.get(uid, set())
            if change.type == "DELETED":
                self._by_pod_uid.pop(uid, None)
            elif (pod.get("spec") or {}).get("resourceClaims"):
                self._pods.add(key)
            else:
                return
        elif change.key == RESOURCE_CLAIMS.key:
            claim = change.obj
            self._claims.add(self._key(claim))
            if change.type != "DELETED":
                self._index(claim)
            owner = _owner_pod(claim)
            if owner is not None:
                self._pods.add((self._key(claim)[0], owner[0]))
        elif change.key == RESOURCE_CLAIM_TEMPLATES.key and change.type != "DELETED":
            self._pods |= self._waiting.pop(self._key(change.obj), set())
        else:
            return
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.reconcile()
            await asyncio.sleep(self.interval)

    def reconcile(self) -> int:
        """One pass over the dirty pods and claims; the number of writes made."""
        writes = 0
        pods, self._pods = self._pods, set()
        for namespace, name in sorted(pods):
            pod = self.store.get(PODS, namespace, name)
            if pod is not None:
                writes += self.errors.run(pod, self._sync_pod)
        claims, self._claims = self._claims, set()
        for namespace, name in sorted(claims):
            claim = self.store.get(RESOURCE_CLAIMS, namespace, name)
            if claim is not None:
                writes += self.errors.run(claim, self._sync_claim)
        return writes

    # ----- pods (upstream syncPod) -----------------------------------------------------------
    def _sync_pod(self, pod: JSON) -> int:
        meta = _meta(pod)
        if meta.get("deletionTimestamp") or _pod_done(pod):
            return 0
        namespace = str(meta.get("namespace") or "default")
        statuses = _statuses(pod)
        created: dict[str, str] = {}
        writes = 0
        for pc in (pod.get("spec") or {}).get("resourceClaims") or ():
            if not isinstance(pc, dict) or not pc.get("resourceClaimTemplateName"):
                continue
            name = str(pc.get("name") or "")
            recorded = statuses.get(name)
            if recorded:
                claim = self.store.get(RESOURCE_CLAIMS, namespace, recorded)
                if claim is not None and (_owner_pod(claim) or ("", ""))[1] == meta["uid"]:
                    continue  # already made
            claim = self._orphan(pod, name)
            if claim is None:
                claim = self._create(pod, name, pc)
                writes += claim is not None
            if claim is not None:
                created[name] = _meta(claim)["name"]
        if created:
            writes += self._record(pod, created)
        if (pod.get("spec") or {}).get("nodeName"):
            writes += self._reserve_for_bound(pod)
        return writes

    def _orphan(self, pod: JSON, name: str) -> JSON | None:
        """upstream findPodResourceClaim: a claim owned by the pod, annotated for `name`."""
        uid = _meta(pod)["uid"]
        namespace = str(_meta(pod).get("namespace") or "")
        for ns, claim_name in sorted(self._by_pod_uid.get(uid, ())):
            claim = self.store.get(RESOURCE_CLAIMS, ns, claim_name)
            if claim is None or ns != namespace or (_owner_pod(claim) or ("", ""))[1] != uid:
                continue
            if (_meta(claim).get("annotations") or {}).get(POD_CLAIM_ANNOTATION) == name:
                return claim
        return None

    def _create(self, pod: JSON, name: str, pc: JSON) -> JSON | None:
        meta = _meta(pod)
        namespace = str(meta.get("namespace") or "default")
        template_name = str(pc["resourceClaimTemplateName"])
        template = self.store.get(RESOURCE_CLAIM_TEMPLATES, namespace, template_name)
        if template is None:
            # upstream records FailedResourceClaimCreation and retries; here the template's
            # creation wakes the pod up
            self._waiting[(namespace, template_name)].add(self._key(pod))
            log.info(
                "resource claim template not found",
                extra={"pod": f"{namespace}/{meta['name']}", "template": template_name},
            )
            return None
        spec = template.get("spec") or {}
        tmeta = spec.get("metadata") or {}
        annotations = {**(tmeta.get("annotations") or {}), POD_CLAIM_ANNOTATION: name}
        body: JSON = {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaim",
            "metadata": {
                "generateName": generate_name(str(meta["name"]), name),
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                    }
                ],
                "annotations": annotations,
            },
            "spec": spec.get("spec") or {},
        }
        if tmeta.get("labels"):
            body["metadata"]["labels"] = dict(tmeta["labels"])
        created = self.api.create(RESOURCE_CLAIMS, namespace=namespace, body=body).obj
        log.info(
            "created resource claim",
            extra={"pod": f"{namespace}/{meta['name']}", "claim": _meta(created)["name"]},
        )
        return created

    def _record(self, pod: JSON, created: dict[str, str]) -> int:
        """Merge the new claim names into status.resourceClaimStatuses (sorted by name)."""
        current = self.store.get(PODS, str(_meta(pod).get("namespace") or ""), _meta(pod)["name"])
        if current is None or _meta(current)["uid"] != _meta(pod)["uid"]:
            return 0
        merged = {k: v for k, v in _statuses(current).items() if v}
        merged.update(created)
        status = dict(current.get("status") or {})
        status["resourceClaimStatuses"] = [
            {"name": n, "resourceClaimName": merged[n]} for n in sorted(merged)
        ]
        if status == current.get("status"):
            return 0
        self.store.replace(PODS, {**current, "status": status}, current)
        return 1

    def _reserve_for_bound(self, pod: JSON) -> int:
        """A bound pod's allocated claims that do not list it yet (upstream reserveFor)."""
        meta = _meta(pod)
        namespace = str(meta.get("namespace") or "default")
        statuses = _statuses(pod)
        writes = 0
        for pc in (pod.get("spec") or {}).get("resourceClaims") or ():
            if not isinstance(pc, dict):
                continue
            name = pc.get("resourceClaimName") or statuses.get(str(pc.get("name") or ""))
            claim = self.store.get(RESOURCE_CLAIMS, namespace, str(name)) if name else None
            if claim is None:
                continue
            status = claim.get("status") or {}
            reserved = status.get("reservedFor") or []
            if status.get("allocation") is None or any(
                r.get("uid") == meta["uid"] for r in reserved
            ):
                continue
            if len(reserved) >= 256:  # upstream CanBeReserved
                continue
            consumer = {"resource": "pods", "name": meta["name"], "uid": meta["uid"]}
            self._update_status(claim, {**status, "reservedFor": [*reserved, consumer]})
            writes += 1
        return writes

    # ----- claims (upstream syncClaim) --------------------------------------------------------
    def _consumer_gone(self, namespace: str, ref: JSON) -> bool:
        if ref.get("apiGroup") or ref.get("resource") != "pods":
            return False  # not a consumer this controller checks
        pod = self.store.get(PODS, namespace, str(ref.get("name") or ""))
        return pod is None or _meta(pod)["uid"] != ref.get("uid") or _pod_done(pod)

    def _sync_claim(self, claim: JSON) -> int:
        meta = _meta(claim)
        namespace = str(meta.get("namespace") or "")
        status = dict(claim.get("status") or {})
        reserved = list(status.get("reservedFor") or [])
        remaining = [r for r in reserved if not self._consumer_gone(namespace, r)]
        protected = FINALIZER in (meta.get("finalizers") or ())
        writes = 0
        if len(remaining) < len(reserved):
            status["reservedFor"] = remaining
            if not remaining:
                status.pop("reservedFor")
                if protected:
                    status.pop("allocation", None)  # deallocate: the last consumer is gone
            claim = self._update_status(claim, status)
            writes += 1
            if protected and (claim.get("status") or {}).get("allocation") is None:
                claim = self._drop_finalizer(claim)
                writes += 1
        elif protected and meta.get("deletionTimestamp") and not remaining:
            if status.get("allocation") is not None:
                status.pop("allocation")
                claim = self._update_status(claim, status)
                writes += 1
            claim = self._drop_finalizer(claim)
            writes += 1
        if remaining:
            return writes
        owner = _owner_pod(claim)
        if owner is None:
            return writes
        pod = self.store.get(PODS, namespace, owner[0])
        if pod is None or _meta(pod)["uid"] != owner[1] or _pod_done(pod):
            try:
                self.api.delete(RESOURCE_CLAIMS, namespace=namespace, name=_meta(claim)["name"])
                writes += 1
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return writes

    def _update_status(self, claim: JSON, status: JSON) -> JSON:
        meta = _meta(claim)
        body = {**claim, "status": status}
        return self.api.update(
            RESOURCE_CLAIMS,
            namespace=str(meta.get("namespace") or ""),
            name=meta["name"],
            body=body,
            subresource="status",
        ).obj

    def _drop_finalizer(self, claim: JSON) -> JSON:
        meta = _meta(claim)
        finalizers = [f for f in meta.get("finalizers") or () if f != FINALIZER]
        body = {**claim, "metadata": {**meta, "finalizers": finalizers}}
        if not finalizers:
            body["metadata"].pop("finalizers")
        return self.api.update(
            RESOURCE_CLAIMS,
            namespace=str(meta.get("namespace") or ""),
            name=meta["name"],
            body=body,
        ).obj


__all__ = ["FINALIZER", "POD_CLAIM_ANNOTATION", "ResourceClaimController", "generate_name"]
