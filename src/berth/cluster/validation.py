"""Object validation: the subset of upstream's checks that clients and tests trip over.

Names (DNS-1123 subdomain or label), pods without containers, bad resource quantities, taint
effects, PDBs with both minAvailable and maxUnavailable. Failures become `422 Invalid` with
upstream's field paths, so a client sees the same error it would on a real cluster.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import orjson

from berth.cluster.errors import ApiError, invalid
from berth.cluster.resources import ResourceType
from berth.cluster.storage import pv_causes, pvc_causes, storage_class_causes
from berth.cluster.webhooks import configuration_causes
from berth.objects.names import (
    DNS1123_LABEL_MESSAGE,
    DNS1123_SUBDOMAIN_MESSAGE,
    qualified_name_errors,
)

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


def _quantity(value: Any) -> Decimal | None:
    """The value of a quantity, or None when it does not parse."""
    from kubernetes.utils.quantity import parse_quantity

    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        parsed: Decimal = parse_quantity(value)  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError):
        return None
    return parsed


def _quantity_ok(value: Any) -> bool:
    return _quantity(value) is not None


_NEGATIVE = "must be greater than or equal to 0"


def invalid_value(v: Any) -> str:
    """A bad value as field.Invalid renders it: %v for numbers, %q for strings, else JSON."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


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
    if rt.plural in _LABEL_NAMES:
        ok = len(name) <= 63 and bool(_DNS1123_LABEL.match(name))
        message = DNS1123_LABEL_MESSAGE
    else:  # pods accept a subdomain (upstream), but 253 long at most
        ok = len(name) <= 253 and bool(_DNS1123_SUBDOMAIN.match(name))
        message = DNS1123_SUBDOMAIN_MESSAGE
    if ok:
        return []
    return [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {message}')]


def label_causes(meta: JSON, prefix: str = "metadata") -> list[Cause]:
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        return [("FieldValueInvalid", f"{prefix}.labels", "Invalid value: must be a map")]
    for k, v in labels.items():
        key_name = k.rsplit("/", 1)[-1]
        if not _QUALIFIED.match(key_name) or len(key_name) > 63:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{prefix}.labels",
                    f'Invalid value: "{k}": name part must '
                    "consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{prefix}.labels",
                    f'Invalid value: "{v}": a valid label must be an empty string or consist '
                    "of alphanumeric characters, '-', '_' or '.'",
                )
            )
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict) or any(
        not isinstance(v, str) for v in annotations.values()
    ):
        causes.append(
            ("FieldValueInvalid", f"{prefix}.annotations", "Invalid value: values must be strings")
        )
    elif isinstance(annotations, dict):
        # upstream ValidateAnnotations: keys are qualified names, case aside.
        for k in annotations:
            lower = str(k).lower()
            for code, path, msg in _qualified_name_causes(f"{prefix}.annotations", lower):
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
            value = _quantity(q)
            if value is None:
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"{path}.{part}[{res}]",
                        f'Invalid value: "{q}": quantities must match the regular expression '
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )
                )
            elif value < 0:  # upstream ValidateNonnegativeQuantity
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"{path}.{part}[{res}]",
                        f'Invalid value: "{q}": {_NEGATIVE}',
                    )
                )
    return causes


_TOLERATION_OPERATORS = ("Equal", "Exists")


def _toleration_causes(tolerations: Any, prefix: str = "spec") -> list[Cause]:
    """upstream ValidateTolerations (without the gated Lt/Gt operators)."""
    causes: list[Cause] = []
    for i, t in enumerate(tolerations if isinstance(tolerations, list) else []):
        if not isinstance(t, dict):
            continue
        path = f"{prefix}.tolerations[{i}]"
        key, op = t.get("key") or "", t.get("operator") or ""
        value, effect = t.get("value") or "", t.get("effect") or ""
        if key:
            causes += [(r, f"{path}.key", m) for r, _, m in _qualified_name_causes(path, key)]
        elif op != "Exists":
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.operator",
                    f'Invalid value: "{op}": operator must be Exists when `key` is empty, which '
                    'means "match all values and all keys"',
                )
            )
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.effect",
                    f"Invalid value: \"{effect}\": effect must be 'NoExecute' when "
                    "`tolerationSeconds` is set",
                )
            )
        if op in ("", "Equal"):
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"{path}.operator",
                        f'Invalid value: "{value}": a valid label must be an empty string or '
                        "consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
        elif op == "Exists":
            if value:
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"{path}.operator",
                        f'Invalid value: "{value}": value must be empty when `operator` is '
                        "'Exists'",
                    )
                )
        else:
            supported = (
                (*_TOLERATION_OPERATORS, "Lt", "Gt")
                if op in ("Lt", "Gt")
                else (_TOLERATION_OPERATORS)
            )
            causes.append(_not_supported(f"{path}.operator", op, supported))
        if effect and effect not in _TAINT_EFFECTS:
            causes.append(_not_supported(f"{path}.effect", effect, _TAINT_EFFECTS))
    return causes


def _not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    """upstream field.NotSupported."""
    values = ", ".join(f'"{v}"' for v in supported)
    return (
        "FieldValueNotSupported",
        path,
        f'Unsupported value: "{value}": supported values: {values}',
    )


def _pod_causes(pod: JSON) -> list[Cause]:
    return pod_spec_causes(pod.get("spec"), "spec")


def pod_spec_causes(spec: Any, prefix: str) -> list[Cause]:
    """upstream ValidatePodSpec's checks Berth makes, at `prefix` (`spec`, or
    `spec.template.spec` in a workload's pod template)."""
    if not isinstance(spec, dict):
        return [("FieldValueRequired", f"{prefix}.containers", "Required value")]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        causes.append(("FieldValueRequired", f"{prefix}.containers", "Required value"))
        containers = []
    seen: set[str] = set()
    for kind in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(kind) or [] if kind != "containers" else containers):
            path = f"{prefix}.{kind}[{i}]"
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
    for field, supported in (
        ("restartPolicy", ("Always", "OnFailure", "Never")),
        ("dnsPolicy", ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")),
    ):
        value = spec.get(field)
        if value is not None and value not in supported:
            causes.append(_not_supported(f"{prefix}.{field}", value, supported))
    causes += _node_affinity_causes(spec.get("affinity"), f"{prefix}.affinity.nodeAffinity")
    gates = spec.get("schedulingGates")
    causes += scheduling_gate_causes(gates, prefix)
    causes += _toleration_causes(spec.get("tolerations"), prefix)
    if gates and spec.get("nodeName"):
        causes.append(
            (
                "FieldValueForbidden",
                f"{prefix}.nodeName",
                "Forbidden: cannot be set until all schedulingGates have been cleared",
            )
        )
    return causes


def _requirement_causes(rq: Any, path: str, *, fields: bool) -> list[Cause]:
    """upstream ValidateNodeSelectorRequirement (`fields`: ValidateNodeFieldSelectorRequirement)."""
    if not isinstance(rq, dict):
        return []
    op, values = rq.get("operator"), rq.get("values") or []
    causes: list[Cause] = []
    if fields:
        if op in ("In", "NotIn"):
            if len(values) != 1:
                causes.append(
                    (
                        "FieldValueRequired",
                        f"{path}.values",
                        "Required value: must be only one value when `operator` is 'In' or "
                        "'NotIn' for node field selector",
                    )
                )
        else:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.operator",
                    f'Invalid value: "{op or ""}": not a valid selector operator',
                )
            )
        if rq.get("key") != "metadata.name":
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{path}.key",
                    f'Invalid value: "{rq.get("key") or ""}": not a valid field selector key',
                )
            )
        return causes
    if op in ("In", "NotIn"):
        if not values:
            causes.append(
                (
                    "FieldValueRequired",
                    f"{path}.values",
                    "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                )
            )
    elif op in ("Exists", "DoesNotExist"):
        if values:
            causes.append(
                (
                    "FieldValueForbidden",
                    f"{path}.values",
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            causes.append(
                (
                    "FieldValueRequired",
                    f"{path}.values",
                    "Required value: must be specified single value when `operator` is 'Lt' "
                    "or 'Gt'",
                )
            )
    else:
        causes.append(
            (
                "FieldValueInvalid",
                f"{path}.operator",
                f'Invalid value: "{op or ""}": not a valid selector operator',
            )
        )
    key = rq.get("key")
    causes += [(r, f"{path}.key", m) for r, _, m in _qualified_name_causes(path, str(key or ""))]
    return causes


def _term_causes(term: Any, path: str) -> list[Cause]:
    if not isinstance(term, dict):
        return []
    causes: list[Cause] = []
    for j, rq in enumerate(term.get("matchExpressions") or []):
        causes += _requirement_causes(rq, f"{path}.matchExpressions[{j}]", fields=False)
    for j, rq in enumerate(term.get("matchFields") or []):
        causes += _requirement_causes(rq, f"{path}.matchFields[{j}]", fields=True)
    return causes


def _node_affinity_causes(affinity: Any, path: str) -> list[Cause]:
    """upstream validateNodeAffinity: required terms (at least one) and preferred ones."""
    node = (affinity or {}).get("nodeAffinity") if isinstance(affinity, dict) else None
    if not isinstance(node, dict):
        return []
    causes: list[Cause] = []
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(required, dict):
        where = f"{path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        terms = required.get("nodeSelectorTerms") or []
        if not terms:
            causes.append(
                (
                    "FieldValueRequired",
                    where,
                    "Required value: must have at least one node selector term",
                )
            )
        for i, term in enumerate(terms):
            causes += _term_causes(term, f"{where}[{i}]")
    for i, pref in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        if not isinstance(pref, dict):
            continue
        where = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
        weight = pref.get("weight")
        if not isinstance(weight, int) or not 1 <= weight <= 100:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{where}.weight",
                    f"Invalid value: {weight}: must be in the range 1-100",
                )
            )
        causes += _term_causes(pref.get("preference"), f"{where}.preference")
    return causes


def _qualified_name_causes(path: str, value: str) -> list[Cause]:
    """upstream ValidateQualifiedName: one cause per problem IsQualifiedName finds."""
    return [
        ("FieldValueInvalid", path, f'Invalid value: "{value}": {msg}')
        for msg in qualified_name_errors(value)
    ]


def scheduling_gate_causes(gates: Any, prefix: str = "spec") -> list[Cause]:
    """upstream validateSchedulingGates: qualified names, no duplicates."""
    if gates is None:
        return []
    if not isinstance(gates, list):
        return [("FieldValueInvalid", f"{prefix}.schedulingGates", "Invalid value: must be a list")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, gate in enumerate(gates):
        path = f"{prefix}.schedulingGates[{i}]"
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


_PERCENT = re.compile(r"^[0-9]+%$")
_PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
    "'93%',  regex used for validation is '[0-9]+%')"
)
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _int_or_percent_causes(path: str, value: Any) -> list[Cause]:
    """upstream ValidatePositiveIntOrPercent and IsNotMoreThan100Percent."""
    if isinstance(value, str):
        if not _PERCENT.match(value):
            return [("FieldValueInvalid", path, f'Invalid value: "{value}": {_PERCENT_MSG}')]
        if int(value[:-1]) > 100:
            return [
                (
                    "FieldValueInvalid",
                    path,
                    f'Invalid value: "{value}": must not be greater than 100%',
                )
            ]
    elif isinstance(value, int) and value < 0:
        return [("FieldValueInvalid", path, f"Invalid value: {value}: {_NEGATIVE}")]
    return []


def label_selector_causes(path: str, selector: Any) -> list[Cause]:
    """upstream ValidateLabelSelector: known operators, values as each operator wants."""
    causes: list[Cause] = []
    if not isinstance(selector, dict):
        return causes
    for i, e in enumerate(selector.get("matchExpressions") or []):
        if not isinstance(e, dict):
            continue
        where = f"{path}.matchExpressions[{i}]"
        op, values = e.get("operator"), e.get("values") or []
        if op in ("In", "NotIn") and not values:
            causes.append(
                (
                    "FieldValueRequired",
                    f"{where}.values",
                    "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                )
            )
        elif op in ("Exists", "DoesNotExist") and values:
            causes.append(
                (
                    "FieldValueForbidden",
                    f"{where}.values",
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
        elif op not in _SELECTOR_OPERATORS:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{where}.operator",
                    f'Invalid value: "{op}": not a valid selector operator',
                )
            )
        key = e.get("key")
        if not isinstance(key, str) or not key:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{where}.key",
                    'Invalid value: "": name part must be non-empty',
                )
            )
        else:
            causes += [(r, f"{where}.key", m) for r, _, m in _qualified_name_causes(where, key)]
    return causes


def _pdb_causes(pdb: JSON) -> list[Cause]:
    spec = pdb.get("spec") or {}
    causes: list[Cause] = []
    if "minAvailable" in spec and "maxUnavailable" in spec:
        causes.append(
            (
                "FieldValueInvalid",
                "spec",
                "Invalid value: minAvailable and maxUnavailable cannot be both set",
            )
        )
    for part in ("minAvailable", "maxUnavailable"):
        if spec.get(part) is not None:
            causes += _int_or_percent_causes(f"spec.{part}", spec[part])
    causes += label_selector_causes("spec.selector", spec.get("selector"))
    return causes


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
    causes += label_causes(meta)
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
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": configuration_causes,
}


def register_checks(checks: dict[str, Any]) -> None:
    """Add per-resource checks (resource key -> obj -> causes) to what `validate` runs."""
    _CHECKS.update(checks)


def require_object(body: Any) -> JSON:
    """The request body as an object, or 400 as upstream when it is not one."""
    if not isinstance(body, dict):
        raise ApiError(
            code=400,
            reason="BadRequest",
            message="the object provided is unrecognized (must be a JSON object)",
        )
    return body
