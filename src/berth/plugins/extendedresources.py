"""Extended resources backed by DRA: the pod-side half of DynamicResources for container requests
such as `example.com/gpu: 1` that a DeviceClass serves (`spec.extendedResourceName`, or the
implicit `deviceclass.resource.kubernetes.io/<class>`).

Upstream: pkg/scheduler/framework/plugins/dynamicresources/extendeddynamicresources.go (1.37).
The scheduler makes one special ResourceClaim per pod, in memory first (named
`<extended-resources>`), with one request per container and resource for the nodes that do not
advertise the resource in their allocatable; PreBind creates it (`<pod>-extended-resources-`,
annotated, owned by the pod) and records its requests in the pod's
`status.extendedResourceClaimStatus`. This module builds those claims and mappings.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from berth.dra.allocator import DeviceID
from berth.objects.dra import (
    ALLOCATION_MODE_EXACT_COUNT,
    EXTENDED_RESOURCE_CLAIM_ANNOTATION,
    ClaimInfo,
    DeviceClassInfo,
    is_dra_extended_resource,
    parse_resource_claim,
)
from berth.objects.pod import PodInfo
from berth.state.cluster import ClusterState, IntArray
from berth.state.dra import DRAIndex
from berth.state.nodemasks import terms_mask

# not a valid object name, so it never collides with a claim of the API (specialClaimInMemName)
SPECIAL_CLAIM_NAME = "<extended-resources>"
ERR_STALE_CLAIM = "cannot schedule extended resource claim"
ERR_CANNOT_FIT = "cannot fit resource"

Mapping = dict[str, str]  # v1.ContainerExtendedResourceRequest


def extended_requests(pod: PodInfo, index: DRAIndex) -> dict[str, int] | None:
    """upstream preFilterExtendedResources' test: the pod's non-zero requests of extended
    resource names, when at least one of them maps to a DeviceClass; None otherwise."""
    if not pod.extended_containers or not index.extended:
        return None
    wanted = {
        r: amount
        for r, amount in pod.requests.items()
        if amount > 0 and is_dra_extended_resource(r)
    }
    if not any(index.device_class_for(r) is not None for r in wanted):
        return None
    return wanted


def special_claim(pod: PodInfo) -> ClaimInfo:
    """The in-memory claim of a pod with no special claim yet: no requests, a temporary uid."""
    raw: dict[str, Any] = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "namespace": pod.namespace,
            "name": SPECIAL_CLAIM_NAME,
            "uid": str(uuid.uuid4()),
            "generateName": pod.name + "-extended-resources-",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod.name,
                    "uid": pod.uid,
                    "controller": True,
                }
            ],
            "annotations": {EXTENDED_RESOURCE_CLAIM_ANNOTATION: "true"},
        },
        "spec": {},
    }
    return parse_resource_claim(raw)


def with_requests(claim: ClaimInfo, requests: list[dict[str, Any]]) -> ClaimInfo:
    """The node's variant of the special claim: the same object with these requests."""
    raw = dict(claim.raw)
    raw["spec"] = {"devices": {"requests": requests}} if requests else {}
    parsed = parse_resource_claim(raw)
    return dataclasses.replace(parsed, namespace=claim.namespace)


def for_create(claim: ClaimInfo) -> dict[str, Any]:
    """What PreBind creates: the node's claim without name, uid and status
    (createExtendedResourceClaimInAPI)."""
    meta = {k: v for k, v in (claim.raw.get("metadata") or {}).items() if k not in ("name", "uid")}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": meta,
        "spec": claim.raw.get("spec") or {},
    }


def requests_and_mappings(
    pod: PodInfo, resources: set[str], index: DRAIndex
) -> tuple[list[dict[str, Any]], list[Mapping]]:
    """upstream createRequestsAndMappings: one ExactCount request per container and resource
    (`container-<i>-request-<j>`, i the container's index among initContainers + containers,
    j the resource's among the container's sorted request names), where short-lived init
    containers reuse what later long-lived containers ask for and share the largest of their own
    requests; the requests sorted by name, the mappings long-lived first."""
    requests: list[dict[str, Any]] = []
    mappings: list[Mapping] = []
    containers = pod.extended_containers
    for resource in sorted(resources):
        cls = index.device_class_for(resource)
        if cls is None:
            continue
        long_lived: dict[int, dict[str, Any]] = {}  # container index -> its request
        long_maps: list[Mapping] = []
        for c in containers:
            if c.short_lived:
                continue
            request, maps = _container_request(c, resource, cls.name, [])
            if request is not None:
                long_lived[c.index] = request
            long_maps.extend(maps)
        largest: dict[str, Any] | None = None
        short_names: set[str] = set()
        short_maps: list[Mapping] = []
        for c in containers:
            if not c.short_lived:
                continue
            later = [long_lived[i] for i in sorted(long_lived) if i >= c.index]
            request, maps = _container_request(c, resource, cls.name, later)
            if request is not None:
                short_names.add(request["name"])
                if largest is None or largest["exactly"]["count"] < request["exactly"]["count"]:
                    largest = request
            short_maps.extend(maps)
        if largest is not None and len(short_names) > 1:
            short_names.discard(largest["name"])
            for m in short_maps:
                if m["requestName"] in short_names:
                    m["requestName"] = largest["name"]
        if largest is not None:
            requests.append(largest)
        requests.extend(long_lived[i] for i in sorted(long_lived))
        mappings.extend(long_maps)
        mappings.extend(short_maps)
    requests.sort(key=lambda r: str(r["name"]))
    return requests, mappings


def _container_request(
    container: Any, resource: str, class_name: str, reusable: list[dict[str, Any]]
) -> tuple[dict[str, Any] | None, list[Mapping]]:
    """upstream createResourceRequestAndMappings for one container and resource."""
    found = next(((rank, count) for r, rank, count in container.requests if r == resource), None)
    if found is None:
        return None, []
    rank, count = found
    mappings: list[Mapping] = []
    total = 0
    for r in reusable:
        total += int(r["exactly"]["count"])
        mappings.append(
            {"containerName": container.name, "resourceName": resource, "requestName": r["name"]}
        )
        if total >= count:
            return None, mappings
    name = f"container-{container.index}-request-{rank}"
    request = {
        "name": name,
        "exactly": {
            "deviceClassName": class_name,
            "allocationMode": ALLOCATION_MODE_EXACT_COUNT,
            "count": count - total,
        },
    }
    mappings.append(
        {"containerName": container.name, "resourceName": resource, "requestName": name}
    )
    return request, mappings


# ----- NodeResourcesFit / BalancedAllocation scoring (resource_allocation.go:314) ---------------
@dataclass(slots=True)
class _ClassDevices:
    """The devices of one class per node: how many each node sees, and where each one is."""

    version: tuple[int, int, int]
    capacity: IntArray  # per node slot
    where: dict[DeviceID, IntArray]  # device -> the node slots that see it


def class_device_counts(
    cluster: ClusterState, index: DRAIndex, cls: DeviceClassInfo
) -> tuple[IntArray, IntArray]:
    """upstream calculateDRAResourceTotals for every node: the devices matching the class's
    selectors that each node can use (node-local, `allNodes`, a node selector, per device
    where the slice says so), and how many of them are allocated (in-flight ones included)."""
    version = (index.slices_version, index.classes_version, cluster.slots_version)
    found = index.class_devices.get(cls.name)
    if not isinstance(found, _ClassDevices) or found.version != version:
        found = _class_devices(cluster, index, cls, version)
        index.class_devices[cls.name] = found
    taken = np.zeros(len(found.capacity), dtype=np.int64)
    # upstream IsDeviceAllocated: a device held by one claim or shared by some
    if len(index.allocated) + len(index.share_counts) < len(found.where):
        for device in {*index.allocated, *index.share_counts}:
            slots = found.where.get(device)
            if slots is not None:
                taken[slots] += 1
    else:
        for device, slots in found.where.items():
            if index.is_allocated(device) or device in index.share_counts:
                taken[slots] += 1
    return found.capacity, taken


def _class_devices(
    cluster: ClusterState, index: DRAIndex, cls: DeviceClassInfo, version: tuple[int, int, int]
) -> _ClassDevices:
    n = len(cluster.present)
    everywhere = np.flatnonzero(cluster.present)
    capacity = np.zeros(n, dtype=np.int64)
    where: dict[DeviceID, IntArray] = {}

    def slots_of(node_name: str, all_nodes: bool, selector: Any) -> IntArray:
        if all_nodes:
            return everywhere
        if node_name:
            slot = cluster.index.get(node_name)
            return np.array([] if slot is None else [slot], dtype=np.intp)
        if selector is not None:
            return everywhere[terms_mask(cluster, selector.terms, everywhere)]
        return np.zeros(0, dtype=np.intp)

    cache = index.match_cache
    for sl in index.slices.values():
        shared = (
            None
            if sl.per_device_node_selection
            else slots_of(sl.node_name, sl.all_nodes, sl.node_selector)
        )
        for device in sl.devices:
            if not all(cache.matches(e, device, sl.driver) is True for e in cls.selectors):
                continue
            slots = shared
            if slots is None:
                slots = slots_of(device.node_name, device.all_nodes, device.node_selector)
            if not len(slots):
                continue
            capacity[slots] += 1
            where[(sl.driver, sl.pool, device.name)] = slots
    return _ClassDevices(version=version, capacity=capacity, where=where)


__all__ = [
    "ERR_CANNOT_FIT",
    "ERR_STALE_CLAIM",
    "SPECIAL_CLAIM_NAME",
    "class_device_counts",
    "extended_requests",
    "for_create",
    "requests_and_mappings",
    "special_claim",
    "with_requests",
]
