"""Object validation: the subset of upstream's checks that clients and tests trip over.

Names (DNS-1123 subdomain or label), pods without containers, bad resource quantities, taint
effects, PDBs with both minAvailable and maxUnavailable. Failures become `422 Invalid` with
upstream's field paths, so a client sees the same error it would on a real cluster.
"""

from __future__ import annotations

import re
from typing import Any

from berth.cluster.errors import ApiError, invalid
from berth.cluster.resources import ResourceType
from berth.cluster.storage import pv_causes, pvc_causes, storage_class_causes
from berth.objects.names import qualified_name_errors

JSON = dict[str, Any]
Cause = tuple[str, str, str]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAMES = ("namespaces",)  # resources whose names must be DNS-1123 labels
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _quantity_ok(value: Any) -> bool:
    from kubernetes.utils.quantity import parse_quantity

    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return False
    try:
        parse_quantity(value)  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError):
        return False
    return True


def name_causes(rt: ResourceType, name: str) -> list[Cause]:
    if rt.group == "rbac.authorization.k8s.io":
        # upstream's ValidateRBACName is path.IsValidPathSegmentName (`system:discovery`).
        if name in (".", ".."):
            return [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f"Invalid value: \"{name}\": may not be '{name}'",
                )
            ]
        bad = [c for c in ("/", "%") if c in name]
        return [
            (
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: \"{name}\": may not contain '{c}'",
            )
            for c in bad
        ]
    if rt.plural in _LABEL_NAMES or rt.plural == "pods":
        ok = len(name) <= 63 and bool(_DNS1123_LABEL.match(name))
        what = "RFC 1123 label"
        if rt.plural == "pods":  # pods accept a subdomain (upstream), but 253 long at most
            ok = len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))
            what = "RFC 1123 subdomain"
    else:
        ok = len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))
        what = "RFC 1123 subdomain"
    if ok:
        return []
    return [
        (
            "FieldValueInvalid",
            "metadata.name",
            f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character",
        )
    ]


def _label_causes(meta: JSON) -> list[Cause]:
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        return [("FieldValueInvalid", "metadata.labels", "Invalid value: must be a map")]
    for k, v in labels.items():
        key_name = k.rsplit("/", 1)[-1]
        if not _QUALIFIED.match(key_name) or len(key_name) > 63:
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{k}": name part must '
                    "consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.labels",
                    f'Invalid value: "{v}": a valid label must be an empty string or consist '
                    "of alphanumeric characters, '-', '_' or '.'",
                )
            )
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict) or any(
        not isinstance(v, str) for v in annotations.values()
    ):
        causes.append(
            ("FieldValueInvalid", "metadata.annotations", "Invalid value: values must be strings")
        )
    elif isinstance(annotations, dict):
        # upstream ValidateAnnotations: keys are qualified names, case aside.
        for k in annotations:
            lower = str(k).lower()
            for code, path, msg in _qualified_name_causes("metadata.annotations", lower):
                causes.append((code, path, msg.replace(f'"{lower}"', f'"{k}"', 1)))
    return causes


def _resources_causes(path: str, resources: Any) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(resources, dict):
        return causes
    for part in ("requests", "limits"):
        values = resources.get(part) or {}
        if not isinstance(values, dict):
            causes.append(("FieldValueInvalid", f"{path}.{part}", "Invalid value: must be a map"))
            continue
        for res, q in values.items():
            if not _quantity_ok(q):
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"{path}.{part}[{res}]",
                        f'Invalid value: "{q}": quantities must match the regular expression '
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )
                )
    return causes


def _pod_causes(pod: JSON) -> list[Cause]:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return [("FieldValueRequired", "spec.containers", "Required value")]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        causes.append(("FieldValueRequired", "spec.containers", "Required value"))
        containers = []
    seen: set[str] = set()
    for kind in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(kind) or [] if kind != "containers" else containers):
            path = f"spec.{kind}[{i}]"
            if not isinstance(c, dict):
                causes.append(("FieldValueInvalid", path, "Invalid value: must be an object"))
                continue
            name = c.get("name")
            if not name or not isinstance(name, str):
                causes.append(("FieldValueRequired", f"{path}.name", "Required value"))
            elif not _DNS1123_LABEL.match(name):
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"{path}.name",
                        f'Invalid value: "{name}": a lowercase '
                        "RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                    )
                )
            elif name in seen:
                causes.append(("FieldValueDuplicate", f"{path}.name", f'Duplicate value: "{name}"'))
            else:
                seen.add(name)
            if not c.get("image"):
                causes.append(("FieldValueRequired", f"{path}.image", "Required value"))
            causes += _resources_causes(f"{path}.resources", c.get("resources"))
    gates = spec.get("schedulingGates")
    causes += scheduling_gate_causes(gates)
    if gates and spec.get("nodeName"):
        causes.append(
            (
                "FieldValueForbidden",
                "spec.nodeName",
                "Forbidden: cannot be set until all schedulingGates have been cleared",
            )
        )
    return causes


def _qualified_name_causes(path: str, value: str) -> list[Cause]:
    """upstream ValidateQualifiedName: one cause per problem IsQualifiedName finds."""
    return [
        ("FieldValueInvalid", path, f'Invalid value: "{value}": {msg}')
        for msg in qualified_name_errors(value)
    ]


def scheduling_gate_causes(gates: Any) -> list[Cause]:
    """upstream validateSchedulingGates: qualified names, no duplicates."""
    if gates is None:
        return []
    if not isinstance(gates, list):
        return [("FieldValueInvalid", "spec.schedulingGates", "Invalid value: must be a list")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, gate in enumerate(gates):
        path = f"spec.schedulingGates[{i}]"
        name = gate.get("name") if isinstance(gate, dict) else None
        if not isinstance(name, str):
            causes.append(("FieldValueRequired", f"{path}.name", "Required value"))
            continue
        causes += _qualified_name_causes(path, name)
        if name in seen:
            causes.append(("FieldValueDuplicate", path, f'Duplicate value: "{name}"'))
        seen.add(name)
    return causes


def _node_causes(node: JSON) -> list[Cause]:
    causes: list[Cause] = []
    spec = node.get("spec") or {}
    for i, taint in enumerate(spec.get("taints") or []):
        if not isinstance(taint, dict) or not taint.get("key"):
            causes.append(("FieldValueRequired", f"spec.taints[{i}].key", "Required value"))
        elif taint.get("effect") not in _TAINT_EFFECTS:
            causes.append(
                (
                    "FieldValueNotSupported",
                    f"spec.taints[{i}].effect",
                    f'Unsupported value: "{taint.get("effect")}": supported values: '
                    '"NoSchedule", "PreferNoSchedule", "NoExecute"',
                )
            )
    status = node.get("status") or {}
    for part in ("capacity", "allocatable"):
        for res, q in (status.get(part) or {}).items():
            if not _quantity_ok(q):
                causes.append(
                    ("FieldValueInvalid", f"status.{part}[{res}]", f'Invalid value: "{q}"')
                )
    return causes


def _pdb_causes(pdb: JSON) -> list[Cause]:
    spec = pdb.get("spec") or {}
    if "minAvailable" in spec and "maxUnavailable" in spec:
        return [
            (
                "FieldValueInvalid",
                "spec",
                "Invalid value: minAvailable and maxUnavailable cannot be both set",
            )
        ]
    return []


def _priority_class_causes(pc: JSON) -> list[Cause]:
    value = pc.get("value")
    if not isinstance(value, int) or isinstance(value, bool):
        return [("FieldValueRequired", "value", "Required value")]
    name = pc.get("metadata", {}).get("name", "")
    if value > 1_000_000_000 and not name.startswith("system-"):
        return [
            (
                "FieldValueForbidden",
                "value",
                "Forbidden: maximum allowed value of a user defined priority is 1000000000",
            )
        ]
    return []


def validate(rt: ResourceType, obj: JSON) -> None:
    """Raise 422 Invalid when `obj` would be rejected by upstream's validation."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise invalid(
            kind=rt.kind,
            group=rt.group,
            name="",
            causes=[("FieldValueRequired", "metadata", "Required value")],
        )
    name = meta.get("name") or ""
    causes: list[Cause] = []
    if not name:
        causes.append(
            (
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )
        )
    elif not isinstance(name, str):
        causes.append(("FieldValueInvalid", "metadata.name", "Invalid value: must be a string"))
        name = str(name)
    else:
        causes += name_causes(rt, name)
    causes += _label_causes(meta)
    checker = _CHECKS.get(rt.key)
    if checker is not None:
        causes += checker(obj)
    if causes:
        raise invalid(kind=rt.kind, group=rt.group, name=name, causes=causes)


_CHECKS = {
    "pods": _pod_causes,
    "nodes": _node_causes,
    "poddisruptionbudgets.policy": _pdb_causes,
    "priorityclasses.scheduling.k8s.io": _priority_class_causes,
    "persistentvolumes": pv_causes,
    "persistentvolumeclaims": pvc_causes,
    "storageclasses.storage.k8s.io": storage_class_causes,
}


def require_object(body: Any) -> JSON:
    """The request body as an object, or 400 as upstream when it is not one."""
    if not isinstance(body, dict):
        raise ApiError(
            code=400,
            reason="BadRequest",
            message="the object provided is unrecognized (must be a JSON object)",
        )
    return body
