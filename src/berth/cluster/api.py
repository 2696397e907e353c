"""The API server's verbs on the store: create, get, list, update, patch, delete, bind, evict.

Independent of HTTP so the REST handlers, the simulated kubelet and Python callers share one set
of semantics (defaults, admission, validation, optimistic concurrency, cascading deletes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from berth.cluster import dra, errors, wiretypes
from berth.cluster.admission import default_pod, now, prepare_create, prepare_update
from berth.cluster.patch import json_patch, merge_patch, strategic_merge_patch
from berth.cluster.pdb import DisruptionController
from berth.cluster.resources import (
    NAMESPACES,
    NODES,
    PODS,
    PRIORITY_CLASSES,
    STORED,
    ResourceType,
)
from berth.cluster.selectors import Predicate
from berth.cluster.storage import STORAGE_TYPES, default_on_create
from berth.cluster.store import Change, Store
from berth.cluster.timestamps import normalize
from berth.cluster.validation import require_object, validate

JSON = dict[str, Any]
Convert = Callable[[JSON], JSON]

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


class Api:
    """Kubernetes semantics over a `Store`."""

    def __init__(self, *, store: Store, disruption: DisruptionController) -> None:
        self.store = store
        self.disruption = disruption

    # --- helpers -----------------------------------------------------------------------------

    def _priority_class(self, name: str | None) -> JSON | None:
        if name:
            return self.store.get(PRIORITY_CLASSES, "", name)
        for pc in self.store.items(PRIORITY_CLASSES):
            if pc.get("globalDefault"):
                return pc
        return None

    def _require_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if rt.namespaced and namespace is not None:
            ns = self.store.get(NAMESPACES, "", namespace)
            if ns is None:
                raise errors.not_found(plural="namespaces", group="", name=namespace)
            if (ns.get("metadata") or {}).get("deletionTimestamp"):
                raise errors.forbidden(
                    plural=rt.plural,
                    group=rt.group,
                    name="",
                    why=f"unable to create new content in namespace {namespace} because it is "
                    "being terminated",
                )

    def get(self, rt: ResourceType, *, namespace: str, name: str) -> JSON:
        obj = self.store.get(rt, namespace if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(plural=rt.plural, group=rt.group, name=name)
        return obj

    def list_objects(
        self, rt: ResourceType, *, namespace: str | None, predicate: Predicate
    ) -> list[JSON]:
        items = [o for o in self.store.items(rt, namespace) if predicate(o)]
        if rt.namespaced:
            items.sort(key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
        else:
            items.sort(key=lambda o: o["metadata"]["name"])
        return items

    # --- create ------------------------------------------------------------------------------

    def create(self, rt: ResourceType, *, namespace: str | None, body: Any) -> Change:
        body = _typed(rt, body)
        self._require_namespace(rt, namespace)
        obj = prepare_create(rt, body, namespace=namespace if rt.namespaced else None)
        validate(rt, obj)
        if rt is PODS:
            obj = default_pod(obj, priority_class=self._priority_class)
            node = (obj.get("spec") or {}).get("nodeName")
            if node:
                obj = {**obj, "metadata": self._with_topology_labels(obj["metadata"], node)}
        elif rt is NAMESPACES:
            obj = {**obj, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            meta = dict(obj["metadata"])
            meta["labels"] = {
                **(meta.get("labels") or {}),
                "kubernetes.io/metadata.name": meta["name"],
            }
            obj["metadata"] = meta
        elif rt is PRIORITY_CLASSES:
            obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
            if obj.get("globalDefault"):
                for pc in self.store.items(PRIORITY_CLASSES):
                    if pc.get("globalDefault"):
                        raise errors.invalid(
                            kind="PriorityClass",
                            group="scheduling.k8s.io",
                            name=obj["metadata"]["name"],
                            causes=[
                                (
                                    "FieldValueInvalid",
                                    "globalDefault",
                                    f"Invalid value: true: PriorityClass {pc['metadata']['name']}"
                                    " is already marked as default. Only one default can exist",
                                )
                            ],
                        )
        elif rt in STORAGE_TYPES:
            obj = default_on_create(rt, obj, store=self.store)
        elif rt.group == dra.GROUP:
            obj = dra.on_create(rt, obj)
        obj = normalize(rt.key, obj)
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        if self.store.get(rt, ns, meta["name"]) is not None:
            raise errors.already_exists(plural=rt.plural, group=rt.group, name=meta["name"])
        return self.store.create(rt, obj)

    # --- update / patch ----------------------------------------------------------------------

    def update(
        self, rt: ResourceType, *, namespace: str, name: str, body: Any, subresource: str = ""
    ) -> Change:
        body = _typed(rt, body)
        old = self.get(rt, namespace=namespace, name=name)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.stale(plural=rt.plural, group=rt.group, name=name)
        return self._write(rt, body, old, subresource=subresource)

    def _write(self, rt: ResourceType, new: JSON, old: JSON, *, subresource: str) -> Change:
        obj = normalize(rt.key, prepare_update(rt, new, old, subresource=subresource))
        validate(rt, obj)
        if rt.group == dra.GROUP:
            obj = dra.on_update(rt, obj, old, subresource=subresource)
        if rt is PODS and subresource != "status":
            new_node = (obj.get("spec") or {}).get("nodeName")
            if new_node != (old.get("spec") or {}).get("nodeName"):
                raise errors.invalid(
                    kind="Pod",
                    group="",
                    name=old["metadata"]["name"],
                    causes=[
                        (
                            "FieldValueForbidden",
                            "spec.nodeName",
                            "Forbidden: pod updates may not change nodeName",
                        )
                    ],
                )
        return self.store.replace(rt, obj, old)

    def patch(
        self,
        rt: ResourceType,
        *,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        subresource: str = "",
        view: tuple[Convert, Convert] | None = None,
    ) -> Change:
        """Patch an object; `view` = (out, in) converts when the API shows another shape."""
        kind = PATCH_TYPES.get(content_type)
        if kind is None or (kind == "strategic" and rt.custom):
            raise errors.unsupported_media_type(content_type)
        old = self.get(rt, namespace=namespace, name=name)
        shown = view[0](old) if view else old
        if kind == "json":
            limits = self.store.limits
            new = json_patch(
                shown,
                body,
                max_copy_bytes=limits.json_patch_max_copy_bytes,
                max_operations=limits.json_patch_max_operations,
            )
        else:
            body = require_object(body)
            new = (strategic_merge_patch if kind == "strategic" else merge_patch)(shown, body)
        new = require_object(new)
        if view:
            new = view[1](new)
        wiretypes.check(api_version=rt.api_version, kind=rt.kind, obj=new)
        meta = new.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.stale(plural=rt.plural, group=rt.group, name=name)
        if meta.get("name", name) != name:
            raise errors.bad_request("metadata.name: the name cannot be changed by a patch")
        return self._write(rt, new, old, subresource=subresource)

    # --- delete ------------------------------------------------------------------------------

    def delete(
        self, rt: ResourceType, *, namespace: str, name: str, options: JSON | None = None
    ) -> Change:
        old = self.get(rt, namespace=namespace, name=name)
        pre = (options or {}).get("preconditions") or {}
        meta = old["metadata"]
        # upstream checks delete preconditions early (registry/rest/delete.go), naming the kind
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise errors.conflict(
                plural=rt.kind,
                group=rt.group,
                name=name,
                why=f"the UID in the precondition ({pre['uid']}) does not match the UID in "
                f"record ({meta['uid']}). The object might have been deleted and then recreated",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise errors.conflict(
                plural=rt.kind,
                group=rt.group,
                name=name,
                why="the ResourceVersion in the precondition "
                f"({pre['resourceVersion']}) does not match the ResourceVersion in record "
                f"({meta['resourceVersion']}). The object might have been modified",
            )
        if rt is NAMESPACES:
            if name in PROTECTED_NAMESPACES:
                raise errors.forbidden(
                    plural="namespaces",
                    group="",
                    name=name,
                    why="this namespace may not be deleted",
                )
            for other in STORED:
                if other.namespaced:
                    for obj in list(self.store.items(other, name)):
                        self.store.delete(other, obj)
        if rt is PODS or rt is NAMESPACES:
            stamp = now()
            md = {**meta, "deletionTimestamp": stamp}
            if rt is PODS:
                md["deletionGracePeriodSeconds"] = 0
            old = {**old, "metadata": md}
        return self.store.delete(rt, old)

    def delete_collection(
        self, rt: ResourceType, *, namespace: str | None, predicate: Predicate
    ) -> list[JSON]:
        out = []
        for obj in self.list_objects(rt, namespace=namespace, predicate=predicate):
            meta = obj["metadata"]
            out.append(self.delete(rt, namespace=meta.get("namespace", ""), name=meta["name"]).obj)
        return out

    # --- pod subresources --------------------------------------------------------------------

    def _with_topology_labels(self, meta: JSON, node_name: str) -> JSON:
        """`meta` with the node's zone and region labels, as upstream's PodTopologyLabels
        admission copies them onto a pod bound (or created bound) to it (on since 1.35)."""
        node = self.store.get(NODES, "", node_name)
        labels = ((node or {}).get("metadata") or {}).get("labels") or {}
        copied = {k: labels[k] for k in TOPOLOGY_LABELS if k in labels}
        if not copied:
            return meta
        return {**meta, "labels": {**(meta.get("labels") or {}), **copied}}

    def bind(self, *, namespace: str, name: str, body: Any) -> None:
        """POST pods/NAME/binding (or /bindings): set spec.nodeName and PodScheduled."""
        binding = require_object(body)
        wiretypes.check(api_version="v1", kind="Binding", obj=binding)
        target = binding.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid(
                kind="Binding",
                group="",
                name=name,
                causes=[("FieldValueRequired", "target.name", "Required value")],
            )
        pod = self.store.get(PODS, namespace, name)
        if pod is None:
            raise errors.not_found(plural="pods", group="", name=name)
        meta = pod["metadata"]
        want_uid = (binding.get("metadata") or {}).get("uid")
        if want_uid and want_uid != meta["uid"]:
            raise errors.conflict(
                plural="pods",
                group="",
                name=name,
                why=precondition_failed(
                    f"/registry/pods/{namespace}/{name}",
                    f"UID in precondition: {want_uid}, UID in object meta: {meta['uid']}",
                ),
            )
        if meta.get("deletionTimestamp"):
            raise errors.conflict(
                plural="pods/binding",
                group="",
                name=name,
                why=f"pod {name} is being deleted, cannot be assigned to a host",
            )
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise errors.conflict(
                plural="pods/binding",
                group="",
                name=name,
                why=f'pod {name} is already assigned to node "{current}"',
            )
        if (pod.get("spec") or {}).get("schedulingGates"):
            # upstream BindingREST.setPodNodeAndMetadata: "reject binding to a scheduling
            # un-ready Pod" (a plain error, wrapped as a 409 Conflict by assignPod).
            raise errors.conflict(
                plural="pods/binding",
                group="",
                name=name,
                why=f"pod {name} has non-empty .spec.schedulingGates",
            )
        stamp = now()
        status = dict(pod.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp})
        status["conditions"] = conditions
        # upstream clears the nomination hint on binding (ClearingNominatedNodeNameAfterBinding,
        # on by default since 1.35)
        status.pop("nominatedNodeName", None)
        annotations = (binding.get("metadata") or {}).get("annotations")
        new_meta = self._with_topology_labels(meta, node)
        if annotations:
            merged = {**(meta.get("annotations") or {}), **annotations}
            new_meta = {**new_meta, "annotations": merged}
        spec = {**pod["spec"], "nodeName": node}
        self.store.replace(PODS, {**pod, "metadata": new_meta, "spec": spec, "status": status}, pod)

    def evict(self, *, namespace: str, name: str, body: Any) -> None:
        """POST pods/NAME/eviction: delete the pod unless a PodDisruptionBudget forbids it."""
        eviction = require_object(body)
        wiretypes.check(api_version="policy/v1", kind="Eviction", obj=eviction)
        pod = self.store.get(PODS, namespace, name)
        if pod is None:
            raise errors.not_found(plural="pods", group="", name=name)
        self.disruption.check_eviction(pod)
        self.delete(PODS, namespace=namespace, name=name, options=eviction.get("deleteOptions"))


def _typed(rt: ResourceType, body: Any) -> JSON:
    """The body as an object of `rt`'s kind, or 400 as upstream's create and update handlers
    answer a body of another API version or kind."""
    obj = require_object(body)
    version, kind = obj.get("apiVersion"), obj.get("kind")
    if version and version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({version}) does not match the expected API version "
            f"({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    wiretypes.check(api_version=rt.api_version, kind=rt.kind, obj=obj)
    return obj


TOPOLOGY_LABELS = ("topology.kubernetes.io/zone", "topology.kubernetes.io/region")


def precondition_failed(key: str, detail: str) -> str:
    """upstream's wording of a precondition the storage layer refuses: its InvalidObj error for
    the object's etcd key (storage.Preconditions.Check, StorageError.Error)."""
    return (
        f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: {detail}"
    )
