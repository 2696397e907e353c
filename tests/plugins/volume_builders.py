"""Builders for storage objects and a harness that gives a plugin a VolumeIndex, for the volume
plugins' tables (upstream's tests build the same objects with listers)."""

from __future__ import annotations

from typing import Any

from berth.state.volumes import VolumeIndex
from tests.builders import PluginHarness, make_state, pod

_rv = iter(range(1, 1_000_000))


def pv(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    size: str = "10Gi",
    cls: str = "",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    phase: str = "Available",
    claim: tuple[str, str] | tuple[str, str, str] | None = None,
    affinity: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": list(modes),
        "storageClassName": cls,
        **spec,
    }
    if claim is not None:
        ref = {"namespace": claim[0], "name": claim[1]}
        if len(claim) == 3:
            ref["uid"] = claim[2]
        body["claimRef"] = ref
    if affinity is not None:
        body["nodeAffinity"] = {"required": {"nodeSelectorTerms": affinity}}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": labels or {}, "resourceVersion": str(next(_rv))},
        "spec": body,
        "status": {"phase": phase},
    }


def pvc(
    name: str,
    *,
    volume: str = "",
    cls: str | None = None,
    size: str = "5Gi",
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    bound: bool | None = None,
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
    phase: str = "",
    owner_uid: str = "",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accessModes": list(modes),
        "resources": {"requests": {"storage": size}},
        **spec,
    }
    if volume:
        body["volumeName"] = volume
    if cls is not None:
        body["storageClassName"] = cls
    ann = dict(annotations or {})
    if bound or (bound is None and volume):
        ann["pv.kubernetes.io/bind-completed"] = "yes"
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}",
        "annotations": ann,
        "resourceVersion": str(next(_rv)),
    }
    if owner_uid:
        meta["ownerReferences"] = [
            {"kind": "Pod", "name": "p", "uid": owner_uid, "controller": True, "apiVersion": "v1"}
        ]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        "spec": body,
        "status": {"phase": phase or ("Bound" if volume else "Pending")},
    }


def storage_class(
    name: str,
    *,
    mode: str | None = "WaitForFirstConsumer",
    provisioner: str = "example.com/csi",
    topologies: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
    }
    if mode is not None:
        obj["volumeBindingMode"] = mode
    if topologies is not None:
        obj["allowedTopologies"] = [
            {"matchLabelExpressions": [{"key": k, "values": v} for k, v in t.items()]}
            for t in topologies
        ]
    return obj


def pod_with_claims(*claims: str, name: str | None = None, **kw: Any) -> dict[str, Any]:
    volumes = [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
    ]
    return pod(name, spec={"volumes": volumes}, **kw)


def pod_with_volumes(*volumes: dict[str, Any], name: str | None = None, **kw: Any) -> Any:
    return pod(name, spec={"volumes": list(volumes)}, **kw)


def harness(
    plugin: str,
    nodes: list[dict[str, Any]],
    objects: list[dict[str, Any]] = (),  # type: ignore[assignment]
    pods: list[dict[str, Any]] = (),  # type: ignore[assignment]
    args: dict[str, Any] | None = None,
) -> tuple[PluginHarness, VolumeIndex]:
    h = PluginHarness(plugin, make_state(nodes, pods), args)
    index = h.plugin.ports.volumes
    for o in objects:
        index.upsert(o)
    return h, index
