"""Extended resources backed by DRA, transcribed from upstream's tables (1.37): TestPlugin's
extended-resource rows (dynamicresources_test.go, upstream's row names and fixtures: a pod
`default/my-pod` asking for `example.com/gpu`, DeviceClass `my-resource-class` naming it, node
`worker` publishing `instance-1`) and Test_createRequestsAndMappings_requests
(extendeddynamicresources_test.go); NodeResourcesFit's side (shouldDelegateResourceToDRA).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import numpy as np
import pytest

from berth.framework.plugin import CycleState, Handle
from berth.framework.ports import Ports
from berth.framework.status import Code, Status
from berth.objects import parse_node, parse_pod
from berth.plugins.dynamicresources import DynamicResources, DynamicResourcesArgs
from berth.plugins.extendedresources import requests_and_mappings
from berth.plugins.noderesources import NodeResourcesFit
from berth.state.cluster import ClusterState
from berth.state.dra import DRAIndex

NODE = "worker"
DRIVER = "some-driver"
POD = "my-pod"
POD_UID = "1234"
CLASS = "my-resource-class"
GPU = "example.com/gpu"
GPU2 = "example.com/gpu2"
IMPLICIT = "deviceclass.resource.kubernetes.io/my-resource-class"
ANNOTATION = "resource.kubernetes.io/extended-resource-claim"
UNRESOLVABLE = Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def worker(extra: dict[str, str] | None = None) -> dict[str, Any]:
    allocatable = {"cpu": "4", "memory": "8Gi", "pods": "110", **(extra or {})}
    return {
        "kind": "Node",
        "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
        "status": {"allocatable": allocatable},
    }


def device_class(name: str = CLASS, extended: str | None = GPU) -> dict[str, Any]:
    spec = {"extendedResourceName": extended} if extended else {}
    return {"kind": "DeviceClass", "metadata": {"name": name}, "spec": spec}


def node_slice(devices: int = 1) -> dict[str, Any]:
    return {
        "kind": "ResourceSlice",
        "metadata": {"name": f"{NODE}-{DRIVER}"},
        "spec": {
            "driver": DRIVER,
            "nodeName": NODE,
            "pool": {"name": NODE, "generation": 0, "resourceSliceCount": 1},
            "devices": [{"name": f"instance-{i + 1}"} for i in range(devices)],
        },
    }


def pod(*containers: dict[str, str], inits: tuple[tuple[dict[str, str], bool], ...] = ()) -> Any:
    """st.MakePod().Req(...) per container (named con<i>); init containers (sidecar or not)."""
    spec: dict[str, Any] = {
        "schedulerName": "berth",
        "containers": [
            {"name": f"con{i}", "image": "x", "resources": {"requests": r}}
            for i, r in enumerate(containers)
        ]
        or [{"name": "con0", "image": "x"}],
    }
    if inits:
        spec["initContainers"] = [
            {"name": f"init-con{i}", "image": "x", "resources": {"requests": r}}
            | ({"restartPolicy": "Always"} if sidecar else {})
            for i, (r, sidecar) in enumerate(inits)
        ]
    return {
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": "default", "uid": POD_UID},
        "spec": spec,
    }


def extended_claim(node: str = NODE) -> dict[str, Any]:
    """extendedResourceClaim (or ...Node2): the special claim of an earlier cycle, allocated."""
    return {
        "kind": "ResourceClaim",
        "metadata": {
            "name": "my-pod-extended-resources-0",
            "generateName": "my-pod-extended-resources-",
            "namespace": "default",
            "uid": "uid-ext",
            "resourceVersion": "1",
            "annotations": {ANNOTATION: "true"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": POD, "uid": POD_UID, "controller": True}
            ],
        },
        "spec": {
            "devices": {
                "requests": [
                    {"name": "container-0-request-0", "exactly": {"deviceClassName": CLASS}}
                ]
            }
        },
        "status": {
            "allocation": {
                "devices": {
                    "results": [
                        {
                            "driver": DRIVER,
                            "pool": NODE,
                            "device": "instance-1",
                            "request": "container-0-request-0",
                        }
                    ]
                },
                "nodeSelector": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                },
            }
        },
    }


class FakeWriter:
    """The live claim writer's port, recording what PreBind, Unreserve and PostFilter write."""

    def __init__(self, *, fail_create: str = "", fail_patch: str = "") -> None:
        self.fail_create, self.fail_patch = fail_create, fail_patch
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.pod_status: list[dict[str, Any]] = []

    async def create_claim(self, body: dict[str, Any]) -> dict[str, Any] | str:
        if self.fail_create:
            return self.fail_create
        raw = copy.deepcopy(body)
        raw["metadata"] |= {"name": raw["metadata"]["generateName"] + "abcde", "uid": "uid-new"}
        raw["metadata"]["resourceVersion"] = "1"
        self.created.append(raw)
        return raw

    async def bind_claim(
        self, claim: Any, allocation: dict[str, Any] | None, consumer: dict[str, Any]
    ) -> dict[str, Any] | str:
        raw = copy.deepcopy(claim.raw)
        raw["metadata"]["finalizers"] = ["resource.kubernetes.io/delete-protection"]
        raw["status"] = {"allocation": allocation, "reservedFor": [consumer]}
        return raw

    async def patch_pod_status(
        self, namespace: str, name: str, status: dict[str, Any]
    ) -> str | None:
        if self.fail_patch:
            return self.fail_patch
        self.pod_status.append(status)
        return None

    def delete_claim(self, claim: Any) -> None:
        self.deleted.append(claim.name)

    def unreserve(self, claim: Any, pod_uid: str) -> None:
        raise AssertionError("no user claim to unreserve")

    def deallocate(self, claim: Any) -> None:
        raise AssertionError("no user claim to deallocate")


class Harness:
    def __init__(
        self, node: dict[str, Any], objs: list[dict[str, Any]], writer: Any = None
    ) -> None:
        self.state = ClusterState()
        self.state.upsert_node(parse_node(node))
        self.dra = DRAIndex()
        for o in objs:
            self.dra.upsert(copy.deepcopy(o))
        self.handle = Handle(state=self.state, ports=Ports(dra=self.dra, claim_writer=writer))
        self.plugin = DynamicResources(args=DynamicResourcesArgs(), handle=self.handle)
        self.cycle = CycleState()

    def pre_filter(self, raw_pod: dict[str, Any]) -> Status:
        self.pod = parse_pod(raw_pod)
        return self.plugin.pre_filter(self.cycle, self.pod)[1]

    def filter(self) -> Status:
        nodes = self.state.node_indices()
        if self.plugin.filter(self.cycle, self.pod, nodes)[0]:
            return Status()
        return self.plugin.explain(self.cycle, self.pod, int(nodes[0]))

    def schedule(self) -> Status:
        """PreFilter has run: Filter, Reserve and PreBind on the node."""
        status = self.filter()
        if not status.ok:
            return status
        status = self.plugin.reserve(self.cycle, self.pod, NODE)
        if not status.ok:
            return status
        return self.pre_bind()

    def pre_bind(self) -> Status:
        return asyncio.run(self.plugin.pre_bind(self.cycle, self.pod, NODE))

    def extended_claims(self) -> list[Any]:
        """The special claims as the scheduler sees them (PreBind's writes included)."""
        return [
            self.dra.claim(c.namespace, c.name)
            for c in self.dra.claims.values()
            if c.extended_for is not None
        ]


def _results(claim: Any) -> list[tuple[str, str]]:
    return [(r.request, r.device) for r in claim.allocation.results]


def test_empty_with_extended_resources_enabled() -> None:
    h = Harness(worker(), [device_class()])
    assert h.pre_filter(pod()).code == Code.SKIP


def test_non_DRA_extended_resource_name_with_zero_allocatable() -> None:
    h = Harness(worker({GPU: "0"}), [device_class(extended=None), node_slice()])
    assert h.pre_filter(pod({GPU: "1"})).code == Code.SKIP


def test_extended_resource_name_with_node_resource() -> None:
    """The node's allocatable serves the resource: nothing allocated, no claim created."""
    writer = FakeWriter()
    h = Harness(worker({GPU: "1"}), [device_class()], writer)
    assert h.pre_filter(pod({GPU: "1"})).ok
    assert h.schedule().ok
    assert writer.created == [] and writer.pod_status == []
    assert not h.dra.in_flight


@pytest.mark.parametrize(
    ("row", "node", "raw_pod", "classes", "devices", "want"),
    [
        (
            "extended-resource-one-device-plugin-one-dra",
            worker({GPU: "1"}),
            pod({GPU: "1", GPU2: "1"}),
            [device_class(), device_class(CLASS + "2", GPU2)],
            1,
            [("container-0-request-1", "instance-1")],
        ),
        (
            "extended-resource-name-with-zero-allocatable",
            worker({GPU: "0"}),
            pod({GPU: "1"}),
            [device_class()],
            1,
            [("container-0-request-0", "instance-1")],
        ),
        (
            "extended-resource-name-with-resources",
            worker(),
            pod({GPU: "1"}),
            [device_class()],
            1,
            [("container-0-request-0", "instance-1")],
        ),
        (
            "implicit-extended-resource-name-with-resources",
            worker(),
            pod({IMPLICIT: "1", GPU: "2"}),
            [device_class()],
            4,
            [
                ("container-0-request-0", "instance-1"),
                ("container-0-request-1", "instance-2"),
                ("container-0-request-1", "instance-3"),
            ],
        ),
        (
            "implicit-extended-resource-name-two-containers-with-resources",
            worker(),
            pod({IMPLICIT: "1"}, {GPU: "2"}),
            [device_class()],
            4,
            [
                ("container-0-request-0", "instance-1"),
                ("container-1-request-0", "instance-2"),
                ("container-1-request-0", "instance-3"),
            ],
        ),
    ],
)
def test_allocated_through_the_special_claim(
    row: str,
    node: dict[str, Any],
    raw_pod: dict[str, Any],
    classes: list[dict[str, Any]],
    devices: int,
    want: list[tuple[str, str]],
) -> None:
    """Reserve puts the node's variant in flight; PreBind creates it (generated name, the
    annotation, the pod as controller), allocates and reserves it, and writes the pod's
    status.extendedResourceClaimStatus."""
    writer = FakeWriter()
    h = Harness(node, [*classes, node_slice(devices)], writer)
    assert h.pre_filter(raw_pod).ok, row
    assert h.filter().ok, row
    assert h.plugin.reserve(h.cycle, h.pod, NODE).ok
    (flying,) = h.dra.in_flight.values()
    assert flying.name == "<extended-resources>"
    assert [r.name for r in flying.spec.requests] == sorted({r for r, _ in want})
    assert h.pre_bind().ok, row
    (created,) = writer.created
    meta = created["metadata"]
    assert meta["name"].startswith("my-pod-extended-resources-")
    assert meta["annotations"] == {ANNOTATION: "true"}
    assert meta["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": POD, "uid": POD_UID, "controller": True}
    ]
    stored = h.dra.claim("default", meta["name"])
    assert stored is not None and stored.allocation is not None
    assert _results(stored) == want, row
    assert [r.uid for r in stored.reserved_for] == [POD_UID]
    (status,) = writer.pod_status
    ext = status["extendedResourceClaimStatus"]
    assert ext["resourceClaimName"] == meta["name"]
    assert {m["requestName"] for m in ext["requestMappings"]} == {r for r, _ in want}
    assert not h.dra.in_flight


def test_extended_resource_name_no_resource() -> None:
    h = Harness(worker(), [device_class()])
    assert h.pre_filter(pod({GPU: "1"})).ok
    status = h.filter()
    assert (status.code, status.reasons) == (UNRESOLVABLE, ("cannot allocate all claims",))
    assert h.plugin.post_filter(h.cycle, h.pod, None)[1].code == Code.UNSCHEDULABLE


@pytest.mark.parametrize(
    ("row", "node"),
    [
        ("extended-resource-name-with-resources-has-claim", NODE),
        ("extended-resource-name-with-resources-delete-claim", "worker-2"),
    ],
)
def test_claim_of_an_earlier_cycle(row: str, node: str) -> None:
    """The special claim of an earlier cycle fails every node; PostFilter deletes it."""
    writer = FakeWriter()
    h = Harness(worker(), [device_class(), node_slice(), extended_claim(node)], writer)
    assert h.pre_filter(pod({GPU: "1"})).ok
    status = h.filter()
    assert (status.code, status.reasons) == (
        UNRESOLVABLE,
        ("cannot schedule extended resource claim",),
    ), row
    status = h.plugin.post_filter(h.cycle, h.pod, None)[1]
    assert (status.code, status.reasons) == (
        Code.UNSCHEDULABLE,
        ("deletion of ResourceClaim completed",),
    )
    assert writer.deleted == ["my-pod-extended-resources-0"]


def test_claim_of_an_earlier_cycle_offline() -> None:
    h = Harness(worker(), [device_class(), node_slice(), extended_claim()])
    assert h.pre_filter(pod({GPU: "1"})).ok
    assert not h.filter().ok
    assert h.plugin.post_filter(h.cycle, h.pod, None)[1].reasons == (
        "deletion of ResourceClaim completed",
    )
    assert h.extended_claims() == []
    assert not h.dra.is_allocated((DRIVER, NODE, "instance-1"))


def test_extended_resource_name_with_resources_fail_patch() -> None:
    writer = FakeWriter(fail_patch="patch error")
    h = Harness(worker(), [device_class(), node_slice()], writer)
    assert h.pre_filter(pod({GPU: "1"})).ok
    status = h.schedule()
    assert status.code == Code.ERROR
    assert status.reasons == ("update pod default/my-pod ExtendedResourceClaimStatus: patch error",)
    assert len(writer.created) == 1


def test_extended_resource_name_bind_failure() -> None:
    """Unreserve after PreBind deletes the claim PreBind created."""
    writer = FakeWriter()
    h = Harness(worker(), [device_class(), node_slice()], writer)
    assert h.pre_filter(pod({GPU: "1"})).ok
    assert h.schedule().ok
    h.plugin.unreserve(h.cycle, h.pod, NODE)
    assert writer.deleted == [writer.created[0]["metadata"]["name"]]


def test_extended_resource_name_skip_bind() -> None:
    """Unreserve before PreBind: the allocation leaves flight, nothing is created."""
    writer = FakeWriter()
    h = Harness(worker(), [device_class(), node_slice()], writer)
    assert h.pre_filter(pod({GPU: "1"})).ok
    assert h.filter().ok
    assert h.plugin.reserve(h.cycle, h.pod, NODE).ok
    assert h.dra.is_allocated((DRIVER, NODE, "instance-1"))
    h.plugin.unreserve(h.cycle, h.pod, NODE)
    assert not h.dra.in_flight and not h.dra.is_allocated((DRIVER, NODE, "instance-1"))
    assert writer.created == [] and writer.deleted == []


def test_extended_resource_name_claim_creation_failure() -> None:
    writer = FakeWriter(fail_create="claim creation errors")
    h = Harness(worker(), [device_class(), node_slice()], writer)
    assert h.pre_filter(pod({GPU: "1"})).ok
    status = h.schedule()
    assert (status.code, status.reasons) == (
        Code.ERROR,
        ("create claim for extended resources default/: claim creation errors",),
    )
    h.plugin.unreserve(h.cycle, h.pod, NODE)
    assert not h.dra.in_flight and writer.deleted == []


def test_offline_prebind_creates_the_claim_in_the_state() -> None:
    """berth simulate: the claim PreBind creates lives in the state, its device taken."""
    h = Harness(worker(), [device_class(), node_slice()])
    assert h.pre_filter(pod({GPU: "1"})).ok
    assert h.schedule().ok
    (stored,) = h.extended_claims()
    assert stored.name.startswith("my-pod-extended-resources-")
    assert _results(stored) == [("container-0-request-0", "instance-1")]
    assert h.dra.is_allocated((DRIVER, NODE, "instance-1"))
    # the next pod asking for the same resource finds no device left
    h2 = DynamicResources(args=DynamicResourcesArgs(), handle=h.handle)
    other = pod({GPU: "1"})
    other["metadata"] |= {"name": "other", "uid": "5678"}
    cycle = CycleState()
    assert h2.pre_filter(cycle, parse_pod(other))[1].ok
    assert not h2.filter(cycle, parse_pod(other), h.state.node_indices())[0]


# ----- Test_createRequestsAndMappings_requests ------------------------------------------------
def _mapping_index(mapping: dict[str, str]) -> DRAIndex:
    index = DRAIndex()
    for resource, cls in mapping.items():
        index.upsert(device_class(cls, resource))
    return index


_GPU1, _INIT = GPU + "1", GPU + "init"


@pytest.mark.parametrize(
    ("row", "raw_pod", "resources", "mapping", "want"),
    [
        ("nil", pod({GPU: "1", _GPU1: "2"}), set(), {}, []),
        (
            "one resource match",
            pod({GPU: "1", _GPU1: "2"}),
            {GPU},
            {GPU: "class"},
            [("container-0-request-0", "class", 1)],
        ),
        (
            "one resource match, one resource not match",
            pod({GPU: "1", _GPU1: "2"}),
            {GPU, _GPU1},
            {GPU: "class"},
            [("container-0-request-0", "class", 1)],
        ),
        (
            "two resources match",
            pod({GPU: "1", _GPU1: "2"}),
            {GPU, _GPU1},
            {GPU: "class", _GPU1: "class1"},
            [("container-0-request-0", "class", 1), ("container-0-request-1", "class1", 2)],
        ),
        (
            "two containers match",
            pod({GPU: "1"}, {_GPU1: "2"}),
            {GPU, _GPU1},
            {GPU: "class", _GPU1: "class1"},
            [("container-0-request-0", "class", 1), ("container-1-request-0", "class1", 2)],
        ),
        (
            "one init container, one regular container",
            pod({GPU: "1"}, inits=(({_INIT: "2"}, False),)),
            {GPU, _INIT},
            {GPU: "class", _INIT: "classInit"},
            [("container-0-request-0", "classInit", 2), ("container-1-request-0", "class", 1)],
        ),
        (
            "two init containers, one regular container",
            pod({GPU: "1"}, inits=(({_INIT: "1"}, False), ({_INIT: "2"}, False))),
            {GPU, _INIT},
            {GPU: "class", _INIT: "classInit"},
            [("container-1-request-0", "classInit", 2), ("container-2-request-0", "class", 1)],
        ),
        (
            "three init containers, one sidecar, one regular container",
            pod(
                {GPU: "1"},
                inits=(({_INIT: "1"}, False), ({_INIT: "1"}, True), ({_INIT: "2"}, False)),
            ),
            {GPU, _INIT},
            {GPU: "class", _INIT: "classInit"},
            [
                ("container-1-request-0", "classInit", 1),
                ("container-2-request-0", "classInit", 2),
                ("container-3-request-0", "class", 1),
            ],
        ),
    ],
)
def test_createRequestsAndMappings_requests(
    row: str,
    raw_pod: dict[str, Any],
    resources: set[str],
    mapping: dict[str, str],
    want: list[tuple[str, str, int]],
) -> None:
    requests, _ = requests_and_mappings(parse_pod(raw_pod), resources, _mapping_index(mapping))
    got = [(r["name"], r["exactly"]["deviceClassName"], r["exactly"]["count"]) for r in requests]
    assert got == want, row
    assert all(r["exactly"]["allocationMode"] == "ExactCount" for r in requests)


# ----- NodeResourcesFit: shouldDelegateResourceToDRA -------------------------------------------
@pytest.mark.parametrize(
    ("row", "allocatable", "classes", "want"),
    [
        ("extended resource backed by DRA", {}, [device_class()], None),
        ("extended resource backed by DRA, zero allocatable", {GPU: "0"}, [device_class()], None),
        ("extended resource NOT backed by DRA", {}, [device_class(extended=None)], "Insufficient"),
        ("node advertises the resource: checked", {GPU: "1"}, [device_class()], "Insufficient"),
    ],
)
def test_fit_leaves_dra_backed_resources_to_dynamic_resources(
    row: str, allocatable: dict[str, str], classes: list[dict[str, Any]], want: str | None
) -> None:
    state = ClusterState()
    state.upsert_node(parse_node(worker(allocatable)))
    dra = DRAIndex()
    for c in classes:
        dra.upsert(c)
    fit = NodeResourcesFit(args=None, handle=Handle(state=state, ports=Ports(dra=dra)))
    p = parse_pod(pod({GPU: "2"}))
    cycle = CycleState()
    fit.pre_filter(cycle, p)
    nodes = state.node_indices()
    passed = bool(fit.filter(cycle, p, nodes)[0])
    status = fit.explain(cycle, p, int(nodes[0]))
    assert passed == (want is None), row
    if want is None:
        assert status.ok
    else:
        assert status.reasons == (f"Insufficient {GPU}",)
    assert np.all(fit.filter(cycle, p, nodes) == passed)


def test_fit_queues_the_pod_when_a_class_starts_serving_its_resource() -> None:
    fit = NodeResourcesFit(args=None, handle=Handle(state=ClusterState(), ports=Ports()))
    p = parse_pod(pod({GPU: "1"}))
    assert fit._after_device_class(p, None, device_class())
    assert not fit._after_device_class(p, device_class(), device_class())
    assert not fit._after_device_class(p, None, device_class(extended="example.com/other"))
    implicit = parse_pod(pod({IMPLICIT: "1"}))
    assert fit._after_device_class(implicit, None, device_class(extended=None))


# ----- scoring: calculateDRAExtendedResourceAllocatableRequest --------------------------------
def test_include_DRA_resource_on_a_node_for_balanced_resource_allocation() -> None:
    """balanced_allocation_test.go: node1 has 8 devices of the class (DRA 0 -> 1/8), node2
    none (the resource does not count there)."""
    dra_name = "extended.resource.dra.io/something"

    def mnode(name: str) -> dict[str, Any]:
        return {
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "3500m", "memory": "40000", "pods": "32"}},
        }

    def bound(name: str, node: str, *reqs: dict[str, str]) -> Any:
        raw = pod(*reqs)
        raw["metadata"] |= {"name": name, "uid": name}
        raw["spec"]["nodeName"] = node
        return parse_pod(raw)

    state = ClusterState()
    for n in ("node1", "node2"):
        state.upsert_node(parse_node(mnode(n)))
    state.add_pod(bound("a", "node1", {"cpu": "1000m"}, {"cpu": "2000m"}))
    state.add_pod(
        bound("b", "node2", {"cpu": "1000m", "memory": "2000"}, {"cpu": "2000m", "memory": "3000"})
    )
    dra = DRAIndex()
    dra.upsert(device_class("device-class-name", dra_name))
    devices = node_slice(8)
    devices["metadata"]["name"] = "node1-test-driver"
    devices["spec"] |= {"nodeName": "node1", "driver": "test-driver"}
    devices["spec"]["pool"]["name"] = "node1"
    dra.upsert(devices)
    args = {"resources": [{"name": "cpu"}, {"name": "memory"}, {"name": dra_name}]}
    from berth.plugins.noderesources import BalancedAllocationArgs, NodeResourcesBalancedAllocation

    plugin = NodeResourcesBalancedAllocation(
        args=BalancedAllocationArgs.model_validate(args),
        handle=Handle(state=state, ports=Ports(dra=dra)),
    )
    incoming = parse_pod(pod({dra_name: "1"}))
    nodes = state.node_indices()
    scores = plugin.score(CycleState(), incoming, nodes)
    got = dict(zip((state.names[i] for i in nodes.tolist()), scores.tolist(), strict=True))
    assert got == {"node1": 76, "node2": 75}
