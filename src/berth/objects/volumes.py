"""Volumes as the scheduler sees them: a pod's volume references, and compact views of
PersistentVolumes, PersistentVolumeClaims, StorageClasses and CSINodes.

What the volume plugins need and nothing more, parsed once per object change. Each view keeps its
raw object, which VolumeBinding's PreBind writes back (with its resourceVersion) to bind a claim.
Helpers mirror component-helpers/storage/volume (GetPersistentVolumeClaimClass, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from berth.objects.csitranslation import Attach, TranslationError, inline_attach, pv_attach
from berth.objects.errors import ObjectError, reports_malformed
from berth.objects.quantity import resource_value
from berth.objects.selectors import (
    LabelSelector,
    NodeSelectorTerm,
    parse_label_selector,
    parse_node_selector_term,
)

ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
NOT_SUPPORTED_PROVISIONER = "kubernetes.io/no-provisioner"
READ_WRITE_ONCE_POD = "ReadWriteOncePod"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PodVolume:
    """One entry of `spec.volumes` that a volume plugin cares about.

    `claim` is the PVC name (for `persistentVolumeClaim`, or `<pod>-<volume>` for a generic
    ephemeral volume); `disk` identifies an inline GCE PD / AWS EBS / RBD / iSCSI volume, whose
    same-volume conflicts VolumeRestrictions checks; `attach` is the (CSI driver, volume handle)
    an inline AWS EBS / GCE PD / Azure Disk / Cinder volume migrated to, which NodeVolumeLimits
    counts (`attach_error` when csi-translation-lib would refuse it).
    """

    name: str
    claim: str = ""
    ephemeral: bool = False
    disk_kind: str = ""  # "gce", "aws", "rbd", "iscsi" or ""
    disk: tuple[str, ...] = ()  # pdName / volumeID / iqn / (pool, image)
    monitors: frozenset[str] = frozenset()
    read_only: bool = False
    attach: Attach | None = None
    attach_error: str = ""


def parse_pod_volumes(spec: dict[str, Any], pod_name: str) -> tuple[PodVolume, ...]:
    """The pod's PVC-backed and conflict-checked volumes; others (emptyDir, ...) are dropped."""
    raw = spec.get("volumes")
    if not raw or not isinstance(raw, list):
        return ()
    out: list[PodVolume] = []
    for v in raw:
        if not isinstance(v, dict):
            continue
        name = str(v.get("name") or "")
        src = v.get("persistentVolumeClaim")
        if isinstance(src, dict):
            out.append(PodVolume(name, claim=str(src.get("claimName") or "")))
            continue
        if isinstance(v.get("ephemeral"), dict):
            out.append(PodVolume(name, claim=f"{pod_name}-{name}", ephemeral=True))
            continue
        disk = _disk(v)
        attach: Attach | None = None
        problem = ""
        try:
            attach = inline_attach(v)
        except TranslationError as exc:
            problem = str(exc)
        if disk is not None:
            if attach is not None or problem:
                disk = replace(disk, attach=attach, attach_error=problem)
            out.append(disk)
        elif attach is not None or problem:
            out.append(PodVolume(name, attach=attach, attach_error=problem))
    return tuple(out)


def _disk(v: dict[str, Any]) -> PodVolume | None:
    name = str(v.get("name") or "")
    for key, kind, ident in (
        ("gcePersistentDisk", "gce", ("pdName",)),
        ("awsElasticBlockStore", "aws", ("volumeID",)),
        ("iscsi", "iscsi", ("iqn",)),
        ("rbd", "rbd", ("pool", "image")),
    ):
        src = v.get(key)
        if not isinstance(src, dict):
            continue
        values = tuple(str(src.get(f) or "") for f in ident)
        if kind == "rbd":
            # upstream defaults RBDPool to "rbd"
            values = (values[0] or "rbd", values[1])
        monitors = frozenset(str(m) for m in src.get("monitors") or [])
        return PodVolume(
            name,
            disk_kind=kind,
            disk=values,
            monitors=monitors,
            read_only=bool(src.get("readOnly")),
        )
    return None


def _storage(raw: Any) -> int:
    if raw is None:
        return 0
    try:
        return resource_value("storage", raw)
    except ValueError:
        return 0


def _rv(meta: JSON) -> int:
    try:
        return int(meta.get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def _meta(raw: Any, kind: str) -> tuple[JSON, str]:
    if not isinstance(raw, dict) or not isinstance(raw.get("metadata"), dict):
        raise ObjectError(kind=kind, name="?", field="metadata", reason="must be an object")
    meta = raw["metadata"]
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ObjectError(kind=kind, name="?", field="metadata.name", reason="Required value")
    return meta, name


@dataclass(slots=True, eq=False)
class PVInfo:
    name: str
    labels: dict[str, str]
    capacity: int
    access_modes: frozenset[str]
    storage_class: str
    volume_mode: str
    claim_ref: tuple[str, str, str] | None  # namespace, name, uid ("" when unset)
    phase: str
    deleting: bool
    node_terms: tuple[NodeSelectorTerm, ...] | None  # spec.nodeAffinity.required; None: any
    resource_version: int
    raw: JSON = field(repr=False)
    # (CSI driver, volume handle): `spec.csi`, or a migrated in-tree source translated
    attach: Attach | None = None


@reports_malformed("PersistentVolume")
def parse_pv(raw: Any) -> PVInfo:
    meta, name = _meta(raw, "PersistentVolume")
    spec = raw.get("spec") or {}
    ref = spec.get("claimRef")
    claim_ref = None
    if isinstance(ref, dict):
        claim_ref = (
            str(ref.get("namespace") or ""),
            str(ref.get("name") or ""),
            str(ref.get("uid") or ""),
        )
    terms = None
    required = ((spec.get("nodeAffinity") or {}).get("required")) or None
    if isinstance(required, dict):
        terms = tuple(
            parse_node_selector_term(
                t,
                where=f"spec.nodeAffinity.required.nodeSelectorTerms[{i}]",
                kind="PersistentVolume",
                name=name,
            )
            for i, t in enumerate(required.get("nodeSelectorTerms") or [])
        )
    annotations = meta.get("annotations") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return PVInfo(
        name=name,
        labels=labels,
        capacity=_storage((spec.get("capacity") or {}).get("storage")),
        access_modes=frozenset(spec.get("accessModes") or ()),
        storage_class=str(annotations.get(ANN_BETA_CLASS) or spec.get("storageClassName") or ""),
        volume_mode=str(spec.get("volumeMode") or "Filesystem"),
        claim_ref=claim_ref,
        phase=str((raw.get("status") or {}).get("phase") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        node_terms=terms,
        resource_version=_rv(meta),
        raw=raw,
        attach=pv_attach(spec, labels),
    )


@dataclass(slots=True, eq=False)
class PVCInfo:
    namespace: str
    name: str
    uid: str
    annotations: dict[str, str]
    storage_class: str  # upstream GetPersistentVolumeClaimClass: beta annotation, then spec
    volume_name: str
    phase: str
    deleting: bool
    access_modes: frozenset[str]
    request: int
    volume_mode: str
    selector: LabelSelector | None
    controller_uid: str  # the uid of the controlling owner (generic ephemeral volumes)
    resource_version: int
    raw: JSON = field(repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def fully_bound(self) -> bool:
        """upstream isPVCFullyBound: a volume name and the bind-completed annotation."""
        return bool(self.volume_name) and ANN_BIND_COMPLETED in self.annotations


@reports_malformed("PersistentVolumeClaim")
def parse_pvc(raw: Any) -> PVCInfo:
    meta, name = _meta(raw, "PersistentVolumeClaim")
    namespace = str(meta.get("namespace") or "default")
    spec = raw.get("spec") or {}
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    selector = None
    if spec.get("selector") is not None:
        selector = parse_label_selector(
            spec["selector"],
            where="spec.selector",
            kind="PersistentVolumeClaim",
            name=f"{namespace}/{name}",
        )
    controller_uid = ""
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            controller_uid = str(ref.get("uid") or "")
    cls = annotations.get(ANN_BETA_CLASS)
    if cls is None:
        cls = str(spec.get("storageClassName") or "")
    return PVCInfo(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid") or ""),
        annotations=annotations,
        storage_class=cls,
        volume_name=str(spec.get("volumeName") or ""),
        phase=str((raw.get("status") or {}).get("phase") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        access_modes=frozenset(spec.get("accessModes") or ()),
        request=_storage(((spec.get("resources") or {}).get("requests") or {}).get("storage")),
        volume_mode=str(spec.get("volumeMode") or "Filesystem"),
        selector=selector,
        controller_uid=controller_uid,
        resource_version=_rv(meta),
        raw=raw,
    )


@dataclass(frozen=True, slots=True)
class StorageClassInfo:
    name: str
    provisioner: str
    binding_mode: str | None  # None when unset (upstream then errors)
    # allowedTopologies: ORed terms of ANDed (key, values) requirements; () allows every node
    allowed_topologies: tuple[tuple[tuple[str, frozenset[str]], ...], ...]

    @property
    def wait_for_first_consumer(self) -> bool:
        return self.binding_mode == WAIT_FOR_FIRST_CONSUMER


@reports_malformed("StorageClass")
def parse_storage_class(raw: Any) -> StorageClassInfo:
    _, name = _meta(raw, "StorageClass")
    terms = []
    for t in raw.get("allowedTopologies") or []:
        if isinstance(t, dict):
            terms.append(
                tuple(
                    (str(e.get("key") or ""), frozenset(str(v) for v in e.get("values") or ()))
                    for e in t.get("matchLabelExpressions") or []
                    if isinstance(e, dict)
                )
            )
    mode = raw.get("volumeBindingMode")
    return StorageClassInfo(
        name=name,
        provisioner=str(raw.get("provisioner") or ""),
        binding_mode=str(mode) if mode is not None else None,
        allowed_topologies=tuple(terms),
    )


@dataclass(frozen=True, slots=True)
class CSINodeInfo:
    name: str
    # driver name -> allocatable.count (None when the driver reports no limit)
    drivers: dict[str, int | None]


@reports_malformed("CSINode")
def parse_csinode(raw: Any) -> CSINodeInfo:
    _, name = _meta(raw, "CSINode")
    drivers: dict[str, int | None] = {}
    for d in (raw.get("spec") or {}).get("drivers") or []:
        if isinstance(d, dict) and d.get("name"):
            count = (d.get("allocatable") or {}).get("count")
            drivers[str(d["name"])] = count if isinstance(count, int) else None
    return CSINodeInfo(name=name, drivers=drivers)
