"""Storage in the embedded cluster: the API server's defaults and validation for PersistentVolumes,
PersistentVolumeClaims and StorageClasses, and a simulated PV controller with a provisioner.

The controller does what kube-controller-manager's PV controller and an external provisioner do,
enough for a scheduler to be tested end to end: an unclaimed PV becomes Available; a PV whose
`spec.claimRef` names a claim is bound to it (claim `spec.volumeName`, `pv.kubernetes.io/
bind-completed`, both phases Bound); an unbound claim of an `Immediate` class is bound to the
smallest matching Available PV, or provisioned; a claim carrying `volume.kubernetes.io/
selected-node` (written by a scheduler for a `WaitForFirstConsumer` class) gets a new PV pinned to
that node's zone (or to the node when it has no zone label). Like the simulated kubelet it is one
task that reconciles every object after a batch of changes; it never deletes or resizes volumes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any

from berth.cluster.admission import now
from berth.cluster.reconcile import ObjectErrors
from berth.cluster.resources import NODES, PVCS, PVS, STORAGE_CLASSES, ResourceType
from berth.cluster.store import Change, Store
from berth.objects.quantity import resource_value

log = logging.getLogger("berth.cluster.storage")
JSON = dict[str, Any]
Cause = tuple[str, str, str]  # reason, field, message (as in validation.py)

ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"
STORAGE_TYPES = (PVS, PVCS, STORAGE_CLASSES)
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


# --- defaults and validation (the API server's part) ---------------------------------------------


def default_on_create(rt: ResourceType, obj: JSON, *, store: Store) -> JSON:
    """Upstream's defaulting for storage objects, and the DefaultStorageClass admission plugin."""
    if rt is PVS:
        spec = {"persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"}
        spec.update(obj.get("spec") or {})
        return {**obj, "spec": spec, "status": {"phase": "Pending"}}
    if rt is PVCS:
        spec = {"volumeMode": "Filesystem", **(obj.get("spec") or {})}
        if "storageClassName" not in spec:
            default = _default_class(store)
            if default:
                spec["storageClassName"] = default
        return {**obj, "spec": spec, "status": {"phase": "Pending"}}
    if rt is STORAGE_CLASSES:
        return {"reclaimPolicy": "Delete", "volumeBindingMode": "Immediate", **obj}
    return obj


def _default_class(store: Store) -> str | None:
    """The newest StorageClass annotated as the default (upstream picks the newest too)."""
    best: tuple[str, str] | None = None
    for sc in store.items(STORAGE_CLASSES):
        meta = sc["metadata"]
        if (meta.get("annotations") or {}).get(ANN_DEFAULT_CLASS) == "true":
            stamp = (str(meta.get("creationTimestamp") or ""), meta["name"])
            if best is None or stamp > best:
                best = stamp
    return best[1] if best else None


def _modes_causes(path: str, modes: Any) -> list[Cause]:
    if not isinstance(modes, list) or not modes:
        return [("FieldValueRequired", path, "Required value: at least 1 access mode is required")]
    out: list[Cause] = []
    for i, m in enumerate(modes):
        if m not in ACCESS_MODES:
            out.append(
                (
                    "FieldValueNotSupported",
                    f"{path}[{i}]",
                    f'Unsupported value: "{m}": supported values: '
                    + ", ".join(f'"{a}"' for a in ACCESS_MODES),
                )
            )
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        out.append(
            (
                "FieldValueForbidden",
                path,
                "Forbidden: may not use ReadWriteOncePod with other access modes",
            )
        )
    return out


def _storage_causes(path: str, qty: Any) -> list[Cause]:
    if qty is None:
        return [("FieldValueRequired", path, "Required value")]
    try:
        resource_value("storage", qty)
    except ValueError:
        return [("FieldValueInvalid", path, f"Invalid value: {qty!r}: quantities must match")]
    return []


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _csi_driver_causes(path: str, driver: Any) -> list[Cause]:
    """upstream ValidateCSIDriverName: required, at most 63 characters, a DNS-1123 subdomain
    (case aside)."""
    if not isinstance(driver, str) or not driver:
        return [("FieldValueRequired", path, "Required value")]
    causes: list[Cause] = []
    if len(driver) > 63:
        causes.append(("FieldValueTooLong", path, "Too long: may not be more than 63 bytes"))
    if len(driver) > 253 or not _SUBDOMAIN.match(driver.lower()):
        causes.append(
            (
                "FieldValueInvalid",
                path,
                f'Invalid value: "{driver}": a lowercase RFC 1123 subdomain must consist of lower '
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
        )
    return causes


def pv_causes(pv: JSON) -> list[Cause]:
    spec = pv.get("spec") or {}
    causes = _modes_causes("spec.accessModes", spec.get("accessModes"))
    causes += _storage_causes("spec.capacity", (spec.get("capacity") or {}).get("storage"))
    csi = spec.get("csi")
    if isinstance(csi, dict):
        causes += _csi_driver_causes("spec.csi.driver", csi.get("driver"))
    return causes


def pvc_causes(pvc: JSON) -> list[Cause]:
    spec = pvc.get("spec") or {}
    causes = _modes_causes("spec.accessModes", spec.get("accessModes"))
    requests = (spec.get("resources") or {}).get("requests") or {}
    causes += _storage_causes("spec.resources[storage]", requests.get("storage"))
    return causes


def storage_class_causes(sc: JSON) -> list[Cause]:
    if not sc.get("provisioner"):
        return [("FieldValueRequired", "provisioner", "Required value")]
    mode = sc.get("volumeBindingMode")
    if mode is not None and mode not in ("Immediate", "WaitForFirstConsumer"):
        return [
            (
                "FieldValueNotSupported",
                "volumeBindingMode",
                f'Unsupported value: "{mode}": supported values: "Immediate", '
                '"WaitForFirstConsumer"',
            )
        ]
    return []


# --- the simulated PV controller and provisioner ------------------------------------------------


def _storage(qty: Any) -> int:
    try:
        return resource_value("storage", qty or 0)
    except ValueError:
        return 0


def _meta(obj: JSON) -> JSON:
    meta: JSON = obj["metadata"]
    return meta


def _claim_ref(pv: JSON) -> JSON:
    """A PV's claimRef, or {} (a malformed one must not break the scans of every claim)."""
    ref = (pv.get("spec") or {}).get("claimRef")
    return ref if isinstance(ref, dict) else {}


def _annotations(obj: JSON) -> dict[str, str]:
    return dict(_meta(obj).get("annotations") or {})


class VolumeController:
    """Binds claims and volumes and provisions volumes, reconciling after each batch of changes."""

    def __init__(self, *, store: Store, interval: float = 0.05) -> None:
        self.store = store
        self.interval = interval
        self._wake = asyncio.Event()
        self.errors = ObjectErrors("volume controller")
        store.add_listener(self._on_change)

    def _on_change(self, change: Change) -> None:
        if change.key in (PVS.key, PVCS.key, STORAGE_CLASSES.key):
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.reconcile()
            await asyncio.sleep(self.interval)

    def reconcile(self) -> int:
        """One pass over all claims and volumes; returns the number of writes made. An object
        that cannot be handled is skipped (and logged), the others are reconciled."""
        writes = 0
        for pv in list(self.store.items(PVS)):
            writes += self.errors.run(pv, self._sync_volume)
        for pvc in list(self.store.items(PVCS)):
            writes += self.errors.run(pvc, self._sync_claim)
        return writes

    # -- volumes --
    def _sync_volume(self, pv: JSON) -> int:
        if not isinstance((pv.get("spec") or {}).get("claimRef") or {}, dict):
            return 0  # malformed: never touched, never offered to a claim
        ref = _claim_ref(pv)
        phase = (pv.get("status") or {}).get("phase")
        if _meta(pv).get("deletionTimestamp"):
            return 0
        if not ref:
            return self._set_pv_phase(pv, "Available")
        claim = self.store.get(PVCS, str(ref.get("namespace") or ""), str(ref.get("name") or ""))
        if claim is None or (ref.get("uid") and ref["uid"] != _meta(claim)["uid"]):
            if phase == "Bound":
                return self._set_pv_phase(pv, "Released")
            return self._set_pv_phase(pv, "Available") if not ref.get("uid") else 0
        bound_to = (claim.get("spec") or {}).get("volumeName")
        if bound_to and bound_to != _meta(pv)["name"]:
            return 0  # the claim chose another volume; leave this one alone
        return self._bind(pv, claim)

    def _set_pv_phase(self, pv: JSON, phase: str) -> int:
        if (pv.get("status") or {}).get("phase") == phase:
            return 0
        self.store.replace(PVS, {**pv, "status": {**(pv.get("status") or {}), "phase": phase}}, pv)
        return 1

    def _bind(self, pv: JSON, claim: JSON) -> int:
        """Complete a binding both ways (upstream bindVolumeToClaim + bindClaimToVolume)."""
        writes = 0
        cmeta = _meta(claim)
        spec = dict(pv.get("spec") or {})
        ref = dict(spec.get("claimRef") or {})
        if ref.get("uid") != cmeta["uid"]:
            ref.update(
                kind="PersistentVolumeClaim",
                apiVersion="v1",
                namespace=cmeta["namespace"],
                name=cmeta["name"],
                uid=cmeta["uid"],
            )
            spec["claimRef"] = ref
        if spec != pv.get("spec") or (pv.get("status") or {}).get("phase") != "Bound":
            new = {**pv, "spec": spec, "status": {**(pv.get("status") or {}), "phase": "Bound"}}
            self.store.replace(PVS, new, pv)
            writes += 1
        name = _meta(pv)["name"]
        cspec = dict(claim.get("spec") or {})
        annotations = _annotations(claim)
        pv_spec = spec
        status = {
            **(claim.get("status") or {}),
            "phase": "Bound",
            "accessModes": list(pv_spec.get("accessModes") or []),
            "capacity": dict(pv_spec.get("capacity") or {}),
        }
        if (
            cspec.get("volumeName") == name
            and ANN_BIND_COMPLETED in annotations
            and claim.get("status") == status
        ):
            return writes
        if cspec.get("volumeName") != name:
            cspec["volumeName"] = name
            annotations[ANN_BOUND_BY_CONTROLLER] = "yes"
        annotations[ANN_BIND_COMPLETED] = "yes"
        new_claim = {
            **claim,
            "metadata": {**cmeta, "annotations": annotations},
            "spec": cspec,
            "status": status,
        }
        self.store.replace(PVCS, new_claim, claim)
        return writes + 1

    # -- claims --
    def _sync_claim(self, claim: JSON) -> int:
        cmeta = _meta(claim)
        if cmeta.get("deletionTimestamp"):
            return 0
        spec = claim.get("spec") or {}
        if spec.get("volumeName"):
            pv = self.store.get(PVS, "", str(spec["volumeName"]))
            if pv is None:
                if (claim.get("status") or {}).get("phase") == "Bound":
                    status = {**(claim.get("status") or {}), "phase": "Lost"}
                    self.store.replace(PVCS, {**claim, "status": status}, claim)
                    return 1
                return 0
            ref = _claim_ref(pv)
            if not ref or (ref.get("name"), ref.get("namespace")) == (
                cmeta["name"],
                cmeta["namespace"],
            ):
                return self._bind(pv, claim)
            return 0
        # A volume pre-bound to this claim (by a scheduler or a user) is bound in _sync_volume.
        for pv in self.store.items(PVS):
            ref = _claim_ref(pv)
            if (ref.get("name"), ref.get("namespace")) == (cmeta["name"], cmeta["namespace"]):
                return 0
        class_name = spec.get("storageClassName") or ""
        sc = self.store.get(STORAGE_CLASSES, "", class_name) if class_name else None
        delayed = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        selected = _annotations(claim).get(ANN_SELECTED_NODE)
        if delayed and not selected:
            return 0  # waits for a scheduler to pick a node
        if not delayed:
            match = self._find_available(claim)
            if match is not None:
                return self._bind(match, claim)
        if sc is None or not sc.get("provisioner") or sc["provisioner"] == NO_PROVISIONER:
            return 0
        return self._provision(claim, sc, selected)

    def _find_available(self, claim: JSON) -> JSON | None:
        """The smallest Available unclaimed PV of the claim's class, size and access modes."""
        spec = claim.get("spec") or {}
        want = _storage(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
        modes = set(spec.get("accessModes") or [])
        class_name = spec.get("storageClassName") or ""
        best: tuple[int, JSON] | None = None
        for pv in self.store.items(PVS):
            pspec = pv.get("spec") or {}
            if pspec.get("claimRef") or (pv.get("status") or {}).get("phase") != "Available":
                continue
            if (pspec.get("storageClassName") or "") != class_name:
                continue
            if not modes <= set(pspec.get("accessModes") or []):
                continue
            size = _storage((pspec.get("capacity") or {}).get("storage"))
            if size >= want and (best is None or size < best[0]):
                best = (size, pv)
        return best[1] if best else None

    def _provision(self, claim: JSON, sc: JSON, selected: str | None) -> int:
        cmeta = _meta(claim)
        name = f"pvc-{cmeta['uid']}"
        if self.store.get(PVS, "", name) is not None:
            return 0
        node = self.store.get(NODES, "", selected) if selected else None
        pv = provisioned_volume(claim, sc, selected=selected, node=node)
        pv["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now())
        pv["status"] = {"phase": "Bound"}
        self.store.create(PVS, pv)
        annotations = _annotations(claim)
        annotations[ANN_STORAGE_PROVISIONER] = sc["provisioner"]
        fresh = self.store.get(PVCS, cmeta["namespace"], cmeta["name"]) or claim
        new_claim = {**fresh, "metadata": {**_meta(fresh), "annotations": annotations}}
        self.store.replace(PVCS, new_claim, fresh)
        created = self.store.get(PVS, "", name)
        latest = self.store.get(PVCS, cmeta["namespace"], cmeta["name"])
        assert created is not None and latest is not None
        return 2 + self._bind(created, latest)


def provisioned_volume(claim: JSON, sc: JSON, *, selected: str | None, node: JSON | None) -> JSON:
    """The PV a CSI provisioner creates for `claim` of class `sc`: the claim's size and modes,
    pre-bound to it, pinned to the selected node's zone (or the node without a zone label)."""
    cmeta = _meta(claim)
    spec = claim.get("spec") or {}
    name = f"pvc-{cmeta['uid']}"
    affinity = None
    if selected:
        labels = (_meta(node).get("labels") or {}) if node is not None else {}
        key = ZONE_LABEL if ZONE_LABEL in labels else HOSTNAME_LABEL
        value = labels.get(key, selected)
        affinity = {
            "required": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}
                ]
            }
        }
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
    pv_spec: JSON = {
        "capacity": {"storage": storage},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
        "storageClassName": _meta(sc)["name"],
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "csi": {"driver": sc["provisioner"], "volumeHandle": name},
        "claimRef": {
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": cmeta["namespace"],
            "name": cmeta["name"],
            "uid": cmeta["uid"],
        },
    }
    if affinity is not None:
        pv_spec["nodeAffinity"] = affinity
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {ANN_PROVISIONED_BY: sc["provisioner"]}},
        "spec": pv_spec,
    }
