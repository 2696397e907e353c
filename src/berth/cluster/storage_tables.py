"""Server-side printing of storage objects: upstream's columns for `kubectl get` of
PersistentVolumes, PersistentVolumeClaims, StorageClasses and CSINodes
(pkg/printers/internalversion/printers.go), with their wide cells.

A StorageClass list marks its effective default (the newest class annotated as default, ties
to the smaller name) with " (default)"; a single class read by name is printed without it, as
upstream's printStorageClass does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from berth.cluster.tables import Column, Row, _age, _name

JSON = dict[str, Any]

_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
_DEFAULT_CLASS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def _meta(obj: JSON) -> JSON:
    return obj.get("metadata") or {}


def _spec(obj: JSON) -> JSON:
    return obj.get("spec") or {}


def _status(obj: JSON) -> JSON:
    return obj.get("status") or {}


def access_modes(modes: Any) -> str:
    """helper.GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order, each once."""
    given = set(modes) if isinstance(modes, list) else set()
    return ",".join(short for mode, short in _MODES if mode in given)


def _phase(obj: JSON) -> str:
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    return str(_status(obj).get("phase", ""))


def _storage(resources: Any) -> str:
    return str((resources or {}).get("storage", "0")) if isinstance(resources, dict) else "0"


def _pv(pv: JSON) -> list[Any]:
    spec = _spec(pv)
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if isinstance(ref, dict) else ""
    annotations = _meta(pv).get("annotations") or {}
    storage_class = annotations.get(_BETA_CLASS, spec.get("storageClassName", ""))
    return [
        _name(pv),
        _storage(spec.get("capacity")),
        access_modes(spec.get("accessModes")),
        str(spec.get("persistentVolumeReclaimPolicy", "")),
        _phase(pv),
        claim,
        storage_class,
        spec.get("volumeAttributesClassName", "<unset>"),
        str(_status(pv).get("reason", "")),
        _age(pv),
        spec.get("volumeMode", "<unset>"),
    ]


def _pvc(pvc: JSON) -> list[Any]:
    spec = _spec(pvc)
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(_status(pvc).get("accessModes"))
        capacity = _storage(_status(pvc).get("capacity"))
    annotations = _meta(pvc).get("annotations") or {}
    storage_class = annotations.get(_BETA_CLASS, spec.get("storageClassName") or "")
    return [
        _name(pvc),
        _phase(pvc),
        str(spec.get("volumeName", "")),
        capacity,
        modes,
        storage_class,
        spec.get("volumeAttributesClassName", "<unset>"),
        _age(pvc),
        spec.get("volumeMode", "<unset>"),
    ]


def _class_cells(sc: JSON, effective_default: str) -> list[Any]:
    name = _name(sc)
    if effective_default and name == effective_default:
        name += " (default)"
    return [
        name,
        str(sc.get("provisioner", "")),
        str(sc.get("reclaimPolicy", "Delete")),
        str(sc.get("volumeBindingMode", "Immediate")),
        bool(sc.get("allowVolumeExpansion", False)),
        _age(sc),
    ]


def effective_default_class(classes: list[JSON]) -> str:
    """getEffectiveDefaultStorageClass: the newest class annotated as default (RFC 3339
    timestamps of one format compare as strings), ties to the smaller name; '' when none is."""
    best: JSON | None = None
    for sc in classes:
        annotations = _meta(sc).get("annotations") or {}
        if not any(annotations.get(key) == "true" for key in _DEFAULT_CLASS):
            continue
        if best is None:
            best = sc
            continue
        made, best_made = (str(_meta(x).get("creationTimestamp", "")) for x in (sc, best))
        if made > best_made or (made == best_made and _name(sc) < _name(best)):
            best = sc
    return _name(best) if best is not None else ""


def _class_list(classes: list[JSON]) -> list[list[Any]]:
    default = effective_default_class(classes)
    return [_class_cells(sc, default) for sc in classes]


_NAME: Column = ("Name", "string", 0)
_AGE: Column = ("Age", "string", 0)
_VOLUME_MODE: Column = ("VolumeMode", "string", 1)

TABLES: dict[str, tuple[list[Column], Row]] = {
    "persistentvolumes": (
        [
            _NAME,
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("Reclaim Policy", "string", 0),
            ("Status", "string", 0),
            ("Claim", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Reason", "string", 0),
            _AGE,
            _VOLUME_MODE,
        ],
        _pv,
    ),
    "persistentvolumeclaims": (
        [
            _NAME,
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            _AGE,
            _VOLUME_MODE,
        ],
        _pvc,
    ),
    "storageclasses.storage.k8s.io": (
        [
            _NAME,
            ("Provisioner", "string", 0),
            ("ReclaimPolicy", "string", 0),
            ("VolumeBindingMode", "string", 0),
            ("AllowVolumeExpansion", "string", 0),
            _AGE,
        ],
        lambda sc: _class_cells(sc, ""),
    ),
    "csinodes.storage.k8s.io": (
        [_NAME, ("Drivers", "integer", 0), _AGE],
        lambda n: [_name(n), len(_spec(n).get("drivers") or []), _age(n)],
    ),
}

# Kinds whose list is printed as a whole (a cell depends on the other items).
LIST_ROWS: dict[str, Callable[[list[JSON]], list[list[Any]]]] = {
    "storageclasses.storage.k8s.io": _class_list
}
