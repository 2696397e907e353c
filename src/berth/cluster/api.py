"""The API server's verbs on the store: create, get, list, update, patch, delete, bind, evict.

Independent of HTTP so the REST handlers, the simulated kubelet and Python callers share one set
of semantics (defaults, admission, validation, optimistic concurrency, cascading deletes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from berth.cluster import dra, errors, eventvalidation, fieldsets, managedfields, wiretypes
from berth.cluster.admission import default_pod, now, prepare_create, prepare_update
from berth.cluster.options import WriteOptions
from berth.cluster.patch import json_patch, merge_patch, strategic_merge_patch
from berth.cluster.pdb import DisruptionController
from berth.cluster.resources import (
    EVENTS,
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    PRIORITY_CLASSES,
    SERVICES,
    STORED,
    ResourceType,
)
from berth.cluster.selectors import Predicate
from berth.cluster.storage import STORAGE_TYPES, default_on_create
from berth.cluster.store import Change, Store, event_bytes
from berth.cluster.timestamps import normalize
from berth.cluster.validation import register_checks, require_object, validate
from berth.cluster.webhooks import KEY as WEBHOOK_CONFIGURATIONS
from berth.cluster.webhooks import default_configuration
from berth.cluster.workloads import (
    CHECKS,
    WORKLOAD_KEYS,
    default_service,
    default_workload,
    from_scale,
    job_selector,
    to_scale,
)

JSON = dict[str, Any]
Convert = Callable[[JSON], JSON]
View = tuple[Convert, Callable[[JSON, JSON], JSON]]

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
# What a custom resource's PATCH takes (apiextensions' crdHandler; no strategic merge), and
# the bodies a create or update is decoded from (kube-apiserver's serializers, CBOR being off).
CUSTOM_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)
BODY_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
CUSTOM_BODY_TYPES = ("application/json", "application/yaml")


def patch_kind(rt: ResourceType, content_type: str) -> str:
    """The patch a PATCH's Content-Type asks for; upstream's 415 for a type `rt` does not take
    (a built-in kind's route consumes the patch types only; a custom resource's handler names
    its own)."""
    kind = PATCH_TYPES.get(content_type)
    if kind is None and not rt.custom:
        raise errors.route_unsupported_media_type()
    if kind is None or (kind == "strategic" and rt.custom):
        raise errors.unsupported_media_type(CUSTOM_PATCH_TYPES)
    return kind


_INTERNAL = WriteOptions(field_validation="Ignore")  # the simulated controllers' own writes
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
register_checks(CHECKS)


def _validate_event(event: JSON, old: JSON | None, opts: WriteOptions | None) -> None:
    """events.go's rules: the legacy ones always, the strict ones through events.k8s.io/v1."""
    strict = opts is not None and opts.events_api
    causes = eventvalidation.legacy_causes(event, core_api=not strict)
    if strict:
        if old is None:
            causes += eventvalidation.strict_create_causes(event)
        else:
            causes += eventvalidation.strict_update_causes(event, old)
    if causes:
        raise errors.invalid(
            kind="Event",
            group="",  # upstream names the core kind for both APIs (one storage)
            name=str(event["metadata"].get("name", "")),
            causes=causes,
        )


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

    def _namespace_labels(self, namespace: str) -> dict[str, str]:
        ns = self.store.get(NAMESPACES, "", namespace)
        labels = ((ns or {}).get("metadata") or {}).get("labels")
        return labels if isinstance(labels, dict) else {}

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

    def create(
        self,
        rt: ResourceType,
        *,
        namespace: str | None,
        body: Any,
        opts: WriteOptions | None = None,
        applied: bool = False,
    ) -> Change:
        """Create an object. `opts` are a request's (None: a simulated controller's write, which
        records no field manager); `applied`: `body` carries the managedFields of an apply."""
        body = _typed(rt, body, opts or _INTERNAL)
        self._require_namespace(rt, namespace)
        obj = prepare_create(rt, body, namespace=namespace if rt.namespaced else None)
        obj = self._decode_defaults(rt, obj, None)
        validate(rt, obj)
        if rt is EVENTS:
            _validate_event(obj, None, opts)
        if opts is not None and not applied:
            obj = managedfields.record_update(
                _type(rt),
                old=None,
                new=obj,
                manager=opts.manager,
                api_version=rt.api_version,
                stamp=now(),
            )
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
            obj = dra.on_create(rt, obj, namespace_labels=self._namespace_labels)
        obj = normalize(rt.key, obj)
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        if self.store.get(rt, ns, meta["name"]) is not None:
            raise errors.already_exists(plural=rt.plural, group=rt.group, name=meta["name"])
        if opts is not None and opts.dry_run:
            return self._dry(rt, obj, None, "ADDED")
        return self.store.create(rt, obj)

    def _dry(self, rt: ResourceType, obj: JSON, old: JSON | None, kind: str) -> Change:
        """What a dry run answers: the object as it would be stored, checked against the
        limits, stored nowhere (no resourceVersion for a create, as upstream)."""
        if kind == "ADDED":
            obj = {**obj, "metadata": {**obj["metadata"]}}
            obj["metadata"].pop("resourceVersion", None)
        elif old is not None:
            obj = {
                **obj,
                "metadata": {
                    **obj["metadata"],
                    "resourceVersion": old["metadata"]["resourceVersion"],
                },
            }
        data = self.store.check(obj, sized=kind != "DELETED")
        return Change(self.store.rv, rt.key, kind, obj, old, event_bytes(kind, data))

    def _decode_defaults(self, rt: ResourceType, obj: JSON, old: JSON | None) -> JSON:
        """What kube-apiserver fills in as it decodes a write (SetDefaults_*) and the strategy's
        PrepareForCreate/Update: workload and Service defaults, a Job's selector, a Service's
        allocated cluster IP and node ports (kept from `old` on an update)."""
        if rt.key in WORKLOAD_KEYS:
            obj = default_workload(rt, obj)
            if rt is JOBS and old is None:
                obj = job_selector(obj)
        elif rt is SERVICES:
            spec = dict(obj.get("spec") or {})
            if old is not None:
                old_spec = old.get("spec") or {}
                for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                    if key in old_spec and not spec.get(key):
                        spec[key] = old_spec[key]
                obj = {**obj, "spec": spec}
            used_ips: set[str] = set()
            used_ports: set[int] = set()
            for svc in self.store.items(SERVICES):
                sspec = svc.get("spec") or {}
                used_ips.add(str(sspec.get("clusterIP")))
                used_ports.update(
                    int(p["nodePort"])
                    for p in sspec.get("ports") or []
                    if isinstance(p, dict) and isinstance(p.get("nodePort"), int)
                )
            obj = default_service(obj, used_ips=used_ips, used_ports=used_ports)
        elif rt.key == WEBHOOK_CONFIGURATIONS:
            obj = default_configuration(obj)
        elif rt is EVENTS and not isinstance(obj.get("source"), dict):
            obj = {**obj, "source": {}}  # a struct, always encoded upstream (core and new API)
        return obj

    # --- update / patch ----------------------------------------------------------------------

    def update(
        self,
        rt: ResourceType,
        *,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
        opts: WriteOptions | None = None,
    ) -> Change:
        body = _typed(rt, body, opts or _INTERNAL)
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
        return self._write(rt, body, old, subresource=subresource, opts=opts)

    def _write(
        self,
        rt: ResourceType,
        new: JSON,
        old: JSON,
        *,
        subresource: str,
        opts: WriteOptions | None = None,
        applied: bool = False,
    ) -> Change:
        obj = normalize(rt.key, prepare_update(rt, new, old, subresource=subresource))
        if subresource != "status":
            obj = self._decode_defaults(rt, obj, old)
        validate(rt, obj)
        if rt is EVENTS:
            _validate_event(obj, old, opts)
        if rt.group == dra.GROUP:
            obj = dra.on_update(
                rt, obj, old, subresource=subresource, namespace_labels=self._namespace_labels
            )
        if applied:
            obj = {
                **obj,
                "metadata": {
                    **obj["metadata"],
                    "managedFields": new["metadata"].get("managedFields") or [],
                },
            }
        elif opts is not None:
            obj = managedfields.record_update(
                _type(rt),
                old=old,
                new=obj,
                manager=opts.manager,
                api_version=rt.api_version,
                stamp=now(),
                subresource="status" if subresource == "status" else "",
            )
        else:  # a simulated controller's write leaves the managers as they are
            managed = old["metadata"].get("managedFields")
            meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
            if managed:
                meta["managedFields"] = managed
            obj = {**obj, "metadata": meta}
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
        meta = obj["metadata"]
        dry = opts is not None and opts.dry_run
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            if dry:
                return self._dry(rt, obj, old, "DELETED")
            return self.store.delete(rt, obj)  # the last finalizer is gone
        if dry:
            return self._dry(rt, obj, old, "MODIFIED")
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
        view: View | None = None,
        opts: WriteOptions | None = None,
    ) -> Change:
        """Patch an object; `view` = (out, in) converts when the API shows another shape
        (`in` gets the patched view and the stored object)."""
        kind = patch_kind(rt, content_type)
        opts = opts or WriteOptions()
        if kind == "apply":
            if view is not None:
                raise errors.unsupported_media_type(
                    t for t in PATCH_TYPES if t != "application/apply-patch+yaml"
                )
            return self._apply(
                rt, namespace=namespace, name=name, body=body, subresource=subresource, opts=opts
            )
        if opts.force:
            raise errors.invalid(
                kind="PatchOptions",
                group="meta.k8s.io",
                name="",
                causes=[
                    (
                        "FieldValueForbidden",
                        "force",
                        "Forbidden: may not be specified for non-apply patch",
                    )
                ],
            )
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
            new = view[1](new, old)
        new, unknown = wiretypes.check(api_version=rt.api_version, kind=rt.kind, obj=new)
        opts.unknown_fields(kind=rt.kind, api_version=rt.api_version, paths=unknown)
        meta = new.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.stale(plural=rt.plural, group=rt.group, name=name)
        if meta.get("name", name) != name:
            raise errors.bad_request("metadata.name: the name cannot be changed by a patch")
        return self._write(rt, new, old, subresource=subresource, opts=opts)

    def _apply(
        self,
        rt: ResourceType,
        *,
        namespace: str,
        name: str,
        body: Any,
        subresource: str,
        opts: WriteOptions,
    ) -> Change:
        """Server-side apply: merge the configuration as `opts.field_manager` (an upsert)."""
        if not opts.field_manager:
            raise errors.invalid(
                kind="PatchOptions",
                group="meta.k8s.io",
                name="",
                causes=[
                    (
                        "FieldValueRequired",
                        "fieldManager",
                        "Required value: is required for apply patch",
                    )
                ],
            )
        config = require_object(body)
        version, kind = config.get("apiVersion"), config.get("kind")
        if not version or not kind:
            raise errors.bad_request(
                f"error decoding YAML: Object 'Kind' is missing in '{_compact(config)}'"
                if not kind
                else "apiVersion must be set"
            )
        t = _type(rt)
        unknown = fieldsets.undeclared(t, {k: v for k, v in config.items() if k != "status"})
        if unknown:  # upstream's typed conversion of the apply configuration fails
            cmeta = config.get("metadata") or {}
            where = f"{cmeta.get('namespace') or ''}/{cmeta.get('name') or ''}"
            listed = "\n".join(
                f"{fieldsets.path_string(p)}: field not declared in schema" for p in unknown
            )
            raise errors.ApiError(
                code=500,
                reason="",
                message=f"failed to create typed patch object ({where}; {rt.api_version}, "
                f"Kind={rt.kind}): {listed}",
            )
        config = _typed(rt, config, opts)
        cmeta = config.get("metadata") or {}
        if cmeta.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({cmeta['name']}) does not match the name on the URL "
                f"({name})"
            )
        old = self.store.get(rt, namespace if rt.namespaced else "", name)
        if old is None:
            if subresource:
                raise errors.not_found(plural=rt.plural, group=rt.group, name=name)
            created = managedfields.apply(
                t,
                live=None,
                config={**config, "metadata": {**cmeta, "name": name}},
                manager=opts.field_manager,
                api_version=rt.api_version,
                stamp=now(),
                force=opts.force,
            )
            return self.create(
                rt, namespace=namespace or None, body=created, opts=opts, applied=True
            )
        new = managedfields.apply(
            t,
            live=old,
            config=config,
            manager=opts.field_manager,
            api_version=rt.api_version,
            stamp=now(),
            force=opts.force,
            subresource="status" if subresource == "status" else "",
        )
        rv = cmeta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.stale(plural=rt.plural, group=rt.group, name=name)
        new = {
            **new,
            "metadata": {**new["metadata"], "resourceVersion": old["metadata"]["resourceVersion"]},
        }
        return self._write(rt, new, old, subresource=subresource, opts=opts, applied=True)

    def get_scale(self, rt: ResourceType, *, namespace: str, name: str) -> JSON:
        return to_scale(rt, self.get(rt, namespace=namespace, name=name))

    def update_scale(
        self,
        rt: ResourceType,
        *,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions | None = None,
    ) -> JSON:
        """PUT .../scale: the workload's replicas from an autoscaling/v1 Scale."""
        scale = require_object(body)
        scale, unknown = wiretypes.check(api_version="autoscaling/v1", kind="Scale", obj=scale)
        (opts or _INTERNAL).unknown_fields(
            kind="Scale", api_version="autoscaling/v1", paths=unknown
        )
        old = self.get(rt, namespace=namespace, name=name)
        new = from_scale(rt, scale, old)
        rv = new["metadata"].get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.stale(plural=rt.plural, group=rt.group, name=name)
        return to_scale(rt, self._write(rt, new, old, subresource="scale", opts=opts).obj)

    def scale_view(self, rt: ResourceType) -> View:
        """(out, in) of the Scale view a PATCH of .../scale edits."""
        return (lambda obj: to_scale(rt, obj)), (lambda scale, old: from_scale(rt, scale, old))

    # --- delete ------------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        *,
        namespace: str,
        name: str,
        options: JSON | None = None,
        opts: WriteOptions | None = None,
    ) -> Change:
        old = self.get(rt, namespace=namespace, name=name)
        dry = (opts is not None and opts.dry_run) or bool((options or {}).get("dryRun"))
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
            for inner in STORED:
                if inner.namespaced and not dry:
                    for obj in list(self.store.items(inner, name)):
                        self.store.delete(inner, obj)
        finalizers = list(meta.get("finalizers") or [])
        policy = _propagation(rt, options or {})
        wanted = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}.get(policy)
        if wanted and wanted not in finalizers and rt is not NAMESPACES:
            other = {"orphan": "foregroundDeletion", "foregroundDeletion": "orphan"}[wanted]
            finalizers = [f for f in finalizers if f != other] + [wanted]
        if finalizers and rt is not NAMESPACES:
            # upstream's graceful deletion with finalizers pending: the object stays, marked,
            # until whoever owns each finalizer removes it (an update with none left deletes)
            md = {**meta, "finalizers": finalizers}
            md.setdefault("deletionTimestamp", now())
            md.setdefault("deletionGracePeriodSeconds", 0)
            if md == meta or dry:
                return self._dry(rt, {**old, "metadata": md}, old, "MODIFIED")
            return self.store.replace(rt, {**old, "metadata": md}, old)
        if rt is PODS or rt is NAMESPACES:
            stamp = now()
            md = {**meta, "deletionTimestamp": stamp}
            if rt is PODS:
                md["deletionGracePeriodSeconds"] = 0
            old = {**old, "metadata": md}
        if dry:
            return self._dry(rt, old, old, "DELETED")
        return self.store.delete(rt, old)

    def delete_collection(
        self,
        rt: ResourceType,
        *,
        namespace: str | None,
        predicate: Predicate,
        options: JSON | None = None,
        opts: WriteOptions | None = None,
    ) -> list[JSON]:
        out = []
        for obj in self.list_objects(rt, namespace=namespace, predicate=predicate):
            meta = obj["metadata"]
            change = self.delete(
                rt,
                namespace=meta.get("namespace", ""),
                name=meta["name"],
                options=options,
                opts=opts,
            )
            out.append(change.obj)
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

    def bind(
        self, *, namespace: str, name: str, body: Any, opts: WriteOptions | None = None
    ) -> None:
        """POST pods/NAME/binding (or /bindings): set spec.nodeName and PodScheduled."""
        binding = require_object(body)
        binding, unknown = wiretypes.check(api_version="v1", kind="Binding", obj=binding)
        (opts or _INTERNAL).unknown_fields(kind="Binding", api_version="v1", paths=unknown)
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
        if opts is not None and opts.dry_run:
            return
        self.store.replace(PODS, {**pod, "metadata": new_meta, "spec": spec, "status": status}, pod)

    def evict(
        self, *, namespace: str, name: str, body: Any, opts: WriteOptions | None = None
    ) -> None:
        """POST pods/NAME/eviction: delete the pod unless a PodDisruptionBudget forbids it."""
        eviction = require_object(body)
        eviction, unknown = wiretypes.check(api_version="policy/v1", kind="Eviction", obj=eviction)
        (opts or _INTERNAL).unknown_fields(kind="Eviction", api_version="policy/v1", paths=unknown)
        pod = self.store.get(PODS, namespace, name)
        if pod is None:
            raise errors.not_found(plural="pods", group="", name=name)
        options = eviction.get("deleteOptions") or {}
        dry = (opts is not None and opts.dry_run) or bool(options.get("dryRun"))
        self.disruption.check_eviction(pod, record=not dry)
        self.delete(PODS, namespace=namespace, name=name, options=options, opts=opts)


# Resources whose deletion orphans dependents when the request does not say (upstream's
# DefaultGarbageCollectionPolicy, kept for old clients in these group-versions).
_ORPHAN_BY_DEFAULT = frozenset({"replicationcontrollers", "jobs.batch"})


def _propagation(rt: ResourceType, options: JSON) -> str:
    """The deletion's propagation policy: the request's, else from `orphanDependents`, else
    the resource's default."""
    policy = options.get("propagationPolicy")
    if policy in ("Orphan", "Background", "Foreground"):
        return str(policy)
    if options.get("orphanDependents") is True:
        return "Orphan"
    if options.get("orphanDependents") is False:
        return "Background"
    return "Orphan" if rt.key in _ORPHAN_BY_DEFAULT else "Background"


def _type(rt: ResourceType) -> fieldsets.Type:
    return fieldsets.root(rt.api_version, rt.kind) or fieldsets.DEDUCED


def _compact(obj: JSON) -> str:
    import orjson

    return orjson.dumps(obj).decode()


def _typed(rt: ResourceType, body: Any, opts: WriteOptions) -> JSON:
    """The body as an object of `rt`'s kind without unknown fields (refused, warned of or
    dropped as `opts` says), or 400 as upstream's create and update handlers answer a body of
    another API version or kind."""
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
    obj, unknown = wiretypes.check(api_version=rt.api_version, kind=rt.kind, obj=obj)
    opts.unknown_fields(kind=rt.kind, api_version=rt.api_version, paths=unknown)
    return obj


TOPOLOGY_LABELS = ("topology.kubernetes.io/zone", "topology.kubernetes.io/region")


def precondition_failed(key: str, detail: str) -> str:
    """upstream's wording of a precondition the storage layer refuses: its InvalidObj error for
    the object's etcd key (storage.Preconditions.Check, StorageError.Error)."""
    return (
        f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: {detail}"
    )
