"""resource.k8s.io/v1 in the embedded cluster: what kube-apiserver does to a DeviceClass,
ResourceSlice, ResourceClaim, ResourceClaimTemplate or DeviceTaintRule between decoding and
storing it.

Upstream's defaults (pkg/apis/resource/v1: `allocationMode: ExactCount`, `count: 1`, a
toleration's `operator: Equal`, a taint's `timeAdded`), the registry strategies (a new claim's
status is reset to `{}`, a claim's and a template's spec is immutable, a slice's driver, pool and
node are, a /status write of a claim keeps its spec and drops device statuses of devices no
longer allocated) and validation (devicevalidation.py). Changing a claim's `status.allocation` or
`status.reservedFor` also needs the synthetic `resourceclaims/binding` permission when RBAC is
enforced, and changing `status.devices` the `resourceclaims/driver` one, as kube-apiserver 1.37
checks them (DRAResourceClaimGranularStatusAuthorization): the REST handler puts the request's
authorizer and attributes in `REQUEST` for that. Admin access needs the namespace's
`resource.kubernetes.io/admin-access` label.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from berth.cluster import devicevalidation as check
from berth.cluster import rbac
from berth.cluster.admission import now
from berth.cluster.errors import invalid
from berth.cluster.rbac import Attributes, Authorizer
from berth.cluster.resources import (
    DEVICE_CLASSES,
    DEVICE_TAINT_RULES,
    RESOURCE_CLAIM_TEMPLATES,
    RESOURCE_CLAIMS,
    RESOURCE_SLICES,
    ResourceType,
)

JSON = dict[str, Any]
GROUP = "resource.k8s.io"
# The authorizer and attributes of the request being served (None: an in-process caller, such as
# the embedded claim controller, which upstream's controllers are granted anyway).
REQUEST: contextvars.ContextVar[tuple[Authorizer, Attributes] | None] = contextvars.ContextVar(
    "berth_cluster_request", default=None
)
# Admin access to devices needs this label, "true", on the claim's namespace (DRAAdminAccess)
ADMIN_NAMESPACE_LABEL = "resource.kubernetes.io/admin-access"
ADMIN_MESSAGE = (
    f"admin access to devices requires the `{ADMIN_NAMESPACE_LABEL}: true` label on the "
    "containing namespace"
)
# a namespace's labels ({} for one that does not exist)
NamespaceLabels = Callable[[str], Mapping[str, str]]


# ----- defaults -----------------------------------------------------------------------------------


def _default_request(raw: JSON) -> None:
    """SetDefaults_ExactDeviceRequest / DeviceSubRequest, and their tolerations' operator."""
    if not raw.get("allocationMode"):
        raw["allocationMode"] = "ExactCount"
    if raw["allocationMode"] == "ExactCount" and not raw.get("count"):
        raw["count"] = 1
    for t in raw.get("tolerations") or ():
        if isinstance(t, dict) and not t.get("operator"):
            t["operator"] = "Equal"


def _default_claim_spec(spec: Any) -> None:
    devices = spec.get("devices") if isinstance(spec, dict) else None
    for r in (devices or {}).get("requests") or () if isinstance(devices, dict) else ():
        if not isinstance(r, dict):
            continue
        if isinstance(r.get("exactly"), dict):
            _default_request(r["exactly"])
        for s in r.get("firstAvailable") or ():
            if isinstance(s, dict):
                _default_request(s)


def _default_taint(t: Any) -> None:
    if isinstance(t, dict) and not t.get("timeAdded"):
        t["timeAdded"] = now()


def _defaults(rt: ResourceType, obj: JSON) -> JSON:
    """The object with upstream's defaults applied (a copy; stored dicts are never mutated)."""
    out = copy.deepcopy(obj)
    spec = out.get("spec")
    if rt is RESOURCE_CLAIMS:
        _default_claim_spec(spec)
        status = out.get("status")
        allocation = status.get("allocation") if isinstance(status, dict) else None
        devices = allocation.get("devices") if isinstance(allocation, dict) else None
        for r in (devices or {}).get("results") or () if isinstance(devices, dict) else ():
            for t in r.get("tolerations") or () if isinstance(r, dict) else ():
                if isinstance(t, dict) and not t.get("operator"):
                    t["operator"] = "Equal"
    elif rt is RESOURCE_CLAIM_TEMPLATES and isinstance(spec, dict):
        _default_claim_spec(spec.get("spec"))
    elif rt is RESOURCE_SLICES and isinstance(spec, dict):
        for d in spec.get("devices") or ():
            for t in d.get("taints") or () if isinstance(d, dict) else ():
                _default_taint(t)
    elif rt is DEVICE_TAINT_RULES and isinstance(spec, dict):
        _default_taint(spec.get("taint"))
    return out


# ----- create and update --------------------------------------------------------------------------


def _raise(rt: ResourceType, obj: JSON, causes: list[check.Cause]) -> None:
    if causes:
        raise invalid(
            kind=rt.kind, group=rt.group, name=str(obj["metadata"].get("name", "")), causes=causes
        )


def _spec_causes(rt: ResourceType, obj: JSON, old: JSON | None) -> list[check.Cause]:
    if rt is DEVICE_CLASSES:
        return check.device_class(obj, old)
    if rt is RESOURCE_SLICES:
        return check.resource_slice(obj, old)
    if rt is DEVICE_TAINT_RULES:
        return check.device_taint_rule(obj, old)
    if rt is RESOURCE_CLAIMS:
        if old is not None:  # upstream checks only that the spec did not change
            return [] if obj.get("spec") == old.get("spec") else [check.immutable("spec", None)]
        return check.claim_spec("spec", obj.get("spec"))
    if rt is RESOURCE_CLAIM_TEMPLATES:
        if old is not None:
            return [] if obj.get("spec") == old.get("spec") else [check.immutable("spec", None)]
        return check.claim_template(obj)
    return []


def _admin_causes(
    namespace: str, path: str | None, labels: NamespaceLabels | None
) -> list[check.Cause]:
    """upstream AuthorizedForAdmin / AuthorizedForAdminStatus: admin access at `path` needs
    the namespace's label."""
    if path is None or labels is None or labels(namespace).get(ADMIN_NAMESPACE_LABEL) == "true":
        return []
    return [check.forbidden(path, ADMIN_MESSAGE)]


def _admin_request(spec: Any) -> str | None:
    """The path of the first exact request asking for admin access (relative to the claim
    spec, as upstream names it for templates too)."""
    devices = spec.get("devices") if isinstance(spec, dict) else None
    requests = devices.get("requests") if isinstance(devices, dict) else None
    for i, r in enumerate(requests if isinstance(requests, list) else ()):
        exactly = r.get("exactly") if isinstance(r, dict) else None
        if isinstance(exactly, dict) and exactly.get("adminAccess") is True:
            return f"spec.devices.requests[{i}].adminAccess"
    return None


def _admin_result(status: Any) -> str | None:
    allocation = status.get("allocation") if isinstance(status, dict) else None
    devices = allocation.get("devices") if isinstance(allocation, dict) else None
    results = devices.get("results") if isinstance(devices, dict) else None
    for i, r in enumerate(results if isinstance(results, list) else ()):
        if isinstance(r, dict) and r.get("adminAccess") is True:
            return f"status.allocation.devices.results[{i}].adminAccess"
    return None


def on_create(
    rt: ResourceType, obj: JSON, *, namespace_labels: NamespaceLabels | None = None
) -> JSON:
    """A new resource.k8s.io object as stored, or 422 with upstream's causes."""
    out = _defaults(rt, obj)
    causes: list[check.Cause] = []
    namespace = str(out["metadata"].get("namespace") or "")
    if rt is RESOURCE_CLAIMS:
        out["status"] = {}  # PrepareForCreate: status is not set by users
        out["metadata"].pop("generation", None)
        causes = _admin_causes(namespace, _admin_request(out.get("spec")), namespace_labels)
    elif rt is RESOURCE_CLAIM_TEMPLATES:
        spec = out.get("spec")
        inner = spec.get("spec") if isinstance(spec, dict) else None
        causes = _admin_causes(namespace, _admin_request(inner), namespace_labels)
    elif rt is DEVICE_TAINT_RULES:
        out.pop("status", None)
    _raise(rt, out, causes + _spec_causes(rt, out, None))
    return out


def on_update(
    rt: ResourceType,
    obj: JSON,
    old: JSON,
    *,
    subresource: str,
    namespace_labels: NamespaceLabels | None = None,
) -> JSON:
    """An update of `old` (already prepared: status kept or spec kept) as stored, or 422."""
    out = _defaults(rt, obj)
    if rt is RESOURCE_CLAIMS:
        out["metadata"].pop("generation", None)
        if subresource == "status":
            status = _without_deallocated_devices(out.get("status"))
            if status.get("reservedFor") == []:
                del status["reservedFor"]  # an empty list is omitted (omitempty), as upstream
            out["status"] = status
            admin = None if _admin_result(old.get("status")) else _admin_result(status)
            namespace = str(out["metadata"].get("namespace") or "")
            causes = _admin_causes(namespace, admin, namespace_labels)
            _raise(rt, out, causes + check.claim_status(out, old))
            _authorize_binding(out, old)
            _authorize_device_status(out, old)
            return out
    if subresource == "status":
        return out
    _raise(rt, out, _spec_causes(rt, out, old))
    return out


def _device_key(d: Any) -> tuple[Any, ...]:
    return (d.get("driver"), d.get("pool"), d.get("device"), d.get("shareID") or "")


def _modified_drivers(new: Any, old: Any) -> set[str]:
    """upstream getModifiedDrivers: the drivers of status.devices entries added, changed or
    removed."""
    before = (
        {_device_key(d): d for d in old if isinstance(d, dict)} if isinstance(old, list) else {}
    )
    drivers: set[str] = set()
    for d in new if isinstance(new, list) else ():
        if not isinstance(d, dict):
            continue
        previous = before.pop(_device_key(d), None)
        if previous != d:
            drivers.add(str(d.get("driver") or ""))
    drivers.update(str(d.get("driver") or "") for d in before.values())
    return drivers


def _authorize_device_status(new: JSON, old: JSON) -> None:
    """upstream AuthorizedForDeviceStatus: a change of an allocated claim's status.devices
    needs, per driver whose entries changed, the `arbitrary-node:` verb on resourceclaims/driver
    named after the driver. (Upstream first tries `associated-node:` for a service account
    whose token is bound to the allocation's node; the embedded cluster's tokens are bound to
    no node.)"""
    context = REQUEST.get()
    status, before = new.get("status") or {}, old.get("status") or {}
    if context is None or status.get("allocation") is None:
        return
    drivers = _modified_drivers(status.get("devices"), before.get("devices"))
    if not drivers:
        return
    authorizer, attributes = context
    verbs = [f"arbitrary-node:{attributes.verb}"]
    causes = []
    for driver in sorted(drivers):
        denial = ""
        for verb in verbs:
            synthetic = dataclasses.replace(
                attributes, verb=verb, subresource="driver", name=driver
            )
            allowed, reason = authorizer.allows(synthetic)
            if allowed:
                denial = ""
                break
            denial = denial or rbac.forbidden(synthetic, reason).message
        if denial:
            causes.append(
                check.forbidden(
                    "status.devices",
                    'changing status.devices requires resource="resourceclaims/driver", '
                    f'verb="[{" ".join(verbs)}]" permission: {denial}',
                )
            )
    _raise(RESOURCE_CLAIMS, new, causes)


def _without_deallocated_devices(raw: Any) -> JSON:
    """upstream dropDeallocatedStatusDevices: status.devices only for devices still allocated."""
    status: JSON = dict(raw) if isinstance(raw, dict) else {}
    devices = status.get("devices")
    if not isinstance(devices, list):
        return status
    allocation = status.get("allocation")
    results = (
        ((allocation or {}).get("devices") or {}).get("results") or ()
        if isinstance(allocation, dict)
        else ()
    )
    allocated = {
        (r.get("driver"), r.get("pool"), r.get("device"), r.get("shareID"))
        for r in results
        if isinstance(r, dict)
    }
    kept = [
        d
        for d in devices
        if isinstance(d, dict)
        and (d.get("driver"), d.get("pool"), d.get("device"), d.get("shareID")) in allocated
    ]
    if kept:
        status["devices"] = kept
    else:
        status.pop("devices", None)
    return status


def _authorize_binding(new: JSON, old: JSON) -> None:
    """upstream AuthorizedForBinding: a change of status.allocation or status.reservedFor needs
    the same verb on resourceclaims/binding, cluster-wide."""
    context = REQUEST.get()
    if context is None:
        return
    authorizer, attributes = context
    status, before = new.get("status") or {}, old.get("status") or {}
    if status.get("allocation") == before.get("allocation") and status.get(
        "reservedFor"
    ) == before.get("reservedFor"):
        return
    synthetic = dataclasses.replace(attributes, subresource="binding", namespace="", name="")
    allowed, reason = authorizer.allows(synthetic)
    if allowed:
        return
    denial = rbac.forbidden(synthetic, reason).message
    _raise(
        RESOURCE_CLAIMS,
        new,
        [
            check.forbidden(
                "status.allocation",
                "changing status.allocation or status.reservedFor requires resource="
                f'"resourceclaims/binding", verb="{attributes.verb}" permission: {denial}',
            )
        ],
    )
