"""A node as the scheduler sees it: allocatable resources, labels, taints, images."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from berth.objects.errors import ObjectError, go_quote, object_meta, reports_malformed
from berth.objects.names import label_map_error
from berth.objects.quantity import resource_value

_KIND = "Node"
TAINT_EFFECTS = frozenset({"NoSchedule", "PreferNoSchedule", "NoExecute"})


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        # upstream formats the untolerated taint as `{key: value}` (fmt of a Go struct-ish map).
        return f"{{{self.key}: {self.value}}}"


@dataclass(slots=True, eq=False)
class NodeInfo:
    name: str
    labels: dict[str, str]
    allocatable: dict[str, int]
    taints: tuple[Taint, ...]
    unschedulable: bool
    images: tuple[tuple[tuple[str, ...], int], ...]  # (names, sizeBytes)
    addresses: tuple[tuple[str, str], ...]  # (type, address)
    annotations: dict[str, str] = field(default_factory=dict)  # for metric sources, not decisions
    declared_features: frozenset[str] = frozenset()  # status.declaredFeatures


def _entries(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _err(node: str, where: str, reason: str) -> ObjectError:
    return ObjectError(kind=_KIND, name=node, field=where, reason=reason)


@reports_malformed("Node")
def parse_node(raw: Any) -> NodeInfo:
    """Parse a v1 Node; raise ObjectError naming the field for anything malformed."""
    meta, name = object_meta(raw, kind=_KIND)
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise _err(name, "metadata.labels", "must be a map of strings")
    problem = label_map_error(labels)
    if problem is not None:
        raise _err(name, f"metadata.labels.{problem[0]}", problem[1])
    raw_annotations = meta.get("annotations") or {}
    # Only metric sources read annotations: keep the string ones, never reject a node for them.
    annotations = (
        {k: v for k, v in raw_annotations.items() if isinstance(v, str)}
        if isinstance(raw_annotations, dict)
        else {}
    )
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    if not isinstance(spec, dict) or not isinstance(status, dict):
        raise _err(name, "spec" if not isinstance(spec, dict) else "status", "must be an object")
    source_field = "status.allocatable" if status.get("allocatable") else "status.capacity"
    source = status.get("allocatable") or status.get("capacity") or {}
    if not isinstance(source, dict):
        raise _err(name, source_field, "must be a map")
    allocatable: dict[str, int] = {}
    for res, qty in source.items():
        try:
            allocatable[res] = resource_value(res, qty)
        except ValueError as exc:
            raise _err(name, f"{source_field}.{res}", str(exc)) from None
    taints = []
    raw_taints = spec.get("taints") or []
    if not isinstance(raw_taints, list):
        raise _err(name, "spec.taints", "must be a list")
    for i, t in enumerate(raw_taints):
        if not isinstance(t, dict) or not isinstance(t.get("key"), str) or not t["key"]:
            raise _err(name, f"spec.taints[{i}].key", "Required value")
        effect = t.get("effect")
        if not isinstance(effect, str) or effect not in TAINT_EFFECTS:
            raise _err(
                name,
                f"spec.taints[{i}].effect",
                f"Unsupported value: {go_quote(effect)}: supported values: "
                '"NoExecute", "NoSchedule", "PreferNoSchedule"',
            )
        taints.append(Taint(t["key"], str(t.get("value") or ""), effect))
    images = []
    # status.images and status.addresses are informational: malformed entries are skipped,
    # never a reason to drop the node
    for img in _entries(status.get("images")):
        if isinstance(img, dict):
            names = tuple(n for n in _entries(img.get("names")) if isinstance(n, str))
            size = img.get("sizeBytes") or 0
            if names and isinstance(size, int):
                images.append((names, size))
    addresses = tuple(
        (str(a.get("type")), str(a.get("address")))
        for a in _entries(status.get("addresses"))
        if isinstance(a, dict)
    )
    return NodeInfo(
        name=name,
        labels=dict(labels),
        allocatable=allocatable,
        taints=tuple(taints),
        unschedulable=bool(spec.get("unschedulable")),
        images=tuple(images),
        addresses=addresses,
        annotations=annotations,
        declared_features=frozenset(
            f for f in _entries(status.get("declaredFeatures")) if isinstance(f, str)
        ),
    )
