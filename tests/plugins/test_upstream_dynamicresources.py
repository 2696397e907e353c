"""DynamicResources, transcribed from upstream's TestPlugin table (dynamicresources_test.go, 1.37),
with upstream's row names and fixtures: a pod `default/my-pod` (uid 1234) with one claim
`my-pod-my-resource` asking for one device of class `my-resource-class` from driver
`some-driver`, node `worker` publishing `instance-1`.

Rows about PodGroups (beta, off) and node-allocatable resources (alpha) are left out:
Berth does not support them (docs/configuration.md). The extended-resource rows are in
test_upstream_extendedresources.py, consumable capacity in
test_dynamicresources_consumable_capacity.py.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import numpy as np
import pytest

from berth.framework.plugin import CycleState, Handle
from berth.framework.ports import Ports
from berth.framework.runtime import FrameworkError
from berth.framework.status import Code, Status
from berth.objects import parse_node, parse_pod
from berth.plugins.dynamicresources import DynamicResources, DynamicResourcesArgs
from berth.state.cluster import ClusterState
from berth.state.dra import DRAIndex

NODE = "worker"
DRIVER = "some-driver"
POD = "my-pod"
POD_UID = "1234"
CLAIM = f"{POD}-my-resource"
CLASS = "my-resource-class"
ATTR = "healthy"


def worker(name: str = NODE) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
    }


def device_class(selectors: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if selectors:
        spec["selectors"] = [{"cel": {"expression": e}} for e in selectors]
    return {"kind": "DeviceClass", "metadata": {"name": CLASS}, "spec": spec}


def node_slice(node: str = NODE, *devices: dict[str, Any]) -> dict[str, Any]:
    """st.MakeResourceSlice(node, driver).Device(...)."""
    return {
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{DRIVER}"},
        "spec": {
            "driver": DRIVER,
            "nodeName": node,
            "pool": {"name": node, "generation": 0, "resourceSliceCount": 1},
            "devices": list(devices) or [{"name": "instance-1"}],
        },
    }


def allocation(
    node: str = NODE, device: str = "instance-1", request: str = "req-1"
) -> dict[str, Any]:
    return {
        "devices": {
            "results": [{"driver": DRIVER, "pool": node, "device": device, "request": request}]
        },
        "nodeSelector": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
        },
    }


def claim(
    name: str = CLAIM,
    *,
    owner: str = POD_UID,
    requests: list[dict[str, Any]] | None = None,
    alloc: dict[str, Any] | None = None,
    reserved_for: list[dict[str, Any]] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "resourceVersion": "1",
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": POD, "uid": owner, "controller": True}
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: dict[str, Any] = {}
    if alloc is not None:
        status["allocation"] = alloc
    if reserved_for:
        status["reservedFor"] = reserved_for
    return {
        "kind": "ResourceClaim",
        "metadata": meta,
        "spec": {
            "devices": {
                "requests": requests
                or [{"name": "req-1", "exactly": {"deviceClassName": CLASS, "count": 1}}]
            }
        },
        "status": status,
    }


def other_claim(**kw: Any) -> dict[str, Any]:
    return claim("not-my-claim", owner="other", **kw)


def pod_with_claim_name() -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": POD, "namespace": "default", "uid": POD_UID},
        "spec": {
            "schedulerName": "berth",
            "containers": [{"name": "c", "image": "x"}],
            "resourceClaims": [{"name": "my-resource", "resourceClaimName": CLAIM}],
        },
    }


def pod_with_claim_template(in_status: bool = True) -> dict[str, Any]:
    raw = pod_with_claim_name()
    raw["spec"]["resourceClaims"] = [{"name": "my-resource", "resourceClaimTemplateName": CLAIM}]
    if in_status:
        raw["status"] = {
            "resourceClaimStatuses": [{"name": "my-resource", "resourceClaimName": CLAIM}]
        }
    return raw


class Harness:
    def __init__(self, nodes: list[dict[str, Any]], objs: list[dict[str, Any]]) -> None:
        self.state = ClusterState()
        for n in nodes:
            self.state.upsert_node(parse_node(n))
        self.dra = DRAIndex()
        for o in objs:
            self.dra.upsert(copy.deepcopy(o))
        handle = Handle(state=self.state, ports=Ports(dra=self.dra))
        self.plugin = DynamicResources(args=DynamicResourcesArgs(), handle=handle)
        self.cycle = CycleState()

    def pre_filter(self, raw_pod: dict[str, Any]) -> Status:
        self.pod = parse_pod(raw_pod)
        return self.plugin.pre_filter(self.cycle, self.pod)[1]

    def filter(self) -> dict[str, Status]:
        nodes = self.state.node_indices()
        ok = self.plugin.filter(self.cycle, self.pod, nodes)
        out = {}
        for i, passed in zip(nodes.tolist(), ok.tolist(), strict=True):
            out[self.state.names[i]] = (
                Status() if passed else self.plugin.explain(self.cycle, self.pod, int(i))
            )
        return out

    def reserve(self, node: str = NODE) -> Status:
        return self.plugin.reserve(self.cycle, self.pod, node)

    def pre_bind(self, node: str = NODE) -> Status:
        return asyncio.run(self.plugin.pre_bind(self.cycle, self.pod, node))

    def post_filter(self) -> Status:
        return self.plugin.post_filter(self.cycle, self.pod, None)[1]


UNRESOLVABLE = Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_empty() -> None:
    h = Harness([worker()], [])
    raw = pod_with_claim_name()
    raw["spec"].pop("resourceClaims")
    assert h.pre_filter(raw).code == Code.SKIP


@pytest.mark.parametrize(
    ("row", "raw_pod", "objs", "message"),
    [
        (
            "missing-claim",
            pod_with_claim_template(in_status=False),
            [claim(alloc=allocation())],
            'pod "default/my-pod": ResourceClaim not created yet',
        ),
        (
            "deleted-claim",
            pod_with_claim_template(),
            [claim(alloc=allocation(), deleting=True)],
            'resourceclaim "my-pod-my-resource" is being deleted',
        ),
        (
            "wrong-claim",
            pod_with_claim_template(),
            [claim(alloc=allocation(), owner="1234123")],
            "ResourceClaim default/my-pod-my-resource was not created for Pod default/my-pod "
            "(Pod is not owner)",
        ),
        (
            "missing-class",
            pod_with_claim_name(),
            [claim()],
            "request req-1: device class my-resource-class does not exist",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "-" in v and " " not in v else "",
)
def test_prefilter_rejections(
    row: str, raw_pod: dict[str, Any], objs: list[dict[str, Any]], message: str
) -> None:
    h = Harness([worker()], objs)
    status = h.pre_filter(raw_pod)
    assert (status.code, status.reasons) == (UNRESOLVABLE, (message,)), row


def test_claim_reference() -> None:
    """claim-reference: an allocated claim is reserved for the pod in PreBind."""
    h = Harness([worker()], [claim(alloc=allocation()), other_claim()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok
    assert h.pre_bind().ok
    stored = h.dra.claim("default", CLAIM)
    assert stored is not None
    assert [r.uid for r in stored.reserved_for] == [POD_UID]


def test_claim_template() -> None:
    h = Harness([worker()], [claim(alloc=allocation()), other_claim()])
    assert h.pre_filter(pod_with_claim_template()).ok
    assert h.filter()[NODE].ok


def test_no_resources() -> None:
    h = Harness([worker()], [claim(), device_class()])
    assert h.pre_filter(pod_with_claim_name()).ok
    status = h.filter()[NODE]
    assert (status.code, status.reasons) == (UNRESOLVABLE, ("cannot allocate all claims",))
    assert h.post_filter().code == Code.UNSCHEDULABLE


def test_with_resources() -> None:
    """with-resources: Reserve allocates instance-1 on worker; PreBind writes the finalizer,
    the allocation and the reservation."""
    h = Harness([worker()], [claim(), device_class(), node_slice()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok
    assert h.dra.is_allocated((DRIVER, NODE, "instance-1"))  # in flight already
    assert h.pre_bind().ok
    stored = h.dra.claim("default", CLAIM)
    assert stored is not None and stored.allocation is not None
    assert stored.allocation.raw == allocation() | {
        "allocationTimestamp": stored.allocation.raw["allocationTimestamp"]
    }
    assert "resource.kubernetes.io/delete-protection" in stored.finalizers
    assert [(r.resource, r.name, r.uid) for r in stored.reserved_for] == [("pods", POD, POD_UID)]
    assert not h.dra.in_flight


def test_exhausted_resources_in_informer_cache() -> None:
    h = Harness(
        [worker()],
        [claim(), other_claim(alloc=allocation()), device_class(), node_slice()],
    )
    assert h.pre_filter(pod_with_claim_name()).ok
    status = h.filter()[NODE]
    assert (status.code, status.reasons) == (UNRESOLVABLE, ("cannot allocate all claims",))
    assert h.post_filter().code == Code.UNSCHEDULABLE


def test_exhausted_resources_in_flight_claim() -> None:
    h = Harness([worker()], [claim(), other_claim(), device_class(), node_slice()])
    other = h.dra.claim("default", "not-my-claim")
    assert other is not None
    from berth.plugins.dynamicresources import _with_status

    h.dra.signal_pending_allocation(_with_status(other, allocation=allocation()))
    assert h.pre_filter(pod_with_claim_name()).ok
    status = h.filter()[NODE]
    assert (status.code, status.reasons) == (UNRESOLVABLE, ("cannot allocate all claims",))


def test_other_resources_in_flight_claim() -> None:
    h = Harness(
        [worker()],
        [
            claim(),
            other_claim(),
            device_class(),
            node_slice(NODE, {"name": "instance-1"}, {"name": "instance-1-other"}),
        ],
    )
    other = h.dra.claim("default", "not-my-claim")
    assert other is not None
    from berth.plugins.dynamicresources import _with_status

    h.dra.signal_pending_allocation(
        _with_status(other, allocation=allocation(device="instance-1-other"))
    )
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok


def test_tainted_device_enabled() -> None:
    tainted = {
        "name": "instance-1",
        "taints": [{"key": "taint-key", "value": "taint-value", "effect": "NoExecute"}],
    }
    h = Harness([worker()], [claim(), device_class(), node_slice(NODE, tainted)])
    assert h.pre_filter(pod_with_claim_name()).ok
    status = h.filter()[NODE]
    assert (status.code, status.reasons) == (UNRESOLVABLE, ("cannot allocate all claims",))


def test_request_admin_access_with_DRAAdminAccess_featuregate() -> None:
    admin = claim(
        requests=[
            {
                "name": "req-1",
                "exactly": {"deviceClassName": CLASS, "count": 1, "adminAccess": True},
            }
        ]
    )
    h = Harness([worker()], [admin, other_claim(alloc=allocation()), device_class(), node_slice()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok


def test_structured_ignore_allocated_admin_access() -> None:
    alloc = allocation()
    alloc["devices"]["results"][0]["adminAccess"] = True
    h = Harness([worker()], [claim(), other_claim(alloc=alloc), device_class(), node_slice()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok


def _broken(raw: dict[str, Any], where: str) -> dict[str, Any]:
    selector = f'device.attributes["{DRIVER}"].{ATTR}'
    if where == "claim":
        raw["spec"]["devices"]["requests"][0]["exactly"]["selectors"] = [
            {"cel": {"expression": selector}}
        ]
    else:
        raw["spec"]["selectors"] = [{"cel": {"expression": selector}}]
    return raw


@pytest.mark.parametrize(
    ("row", "objs", "owner"),
    [
        (
            "claim-parameters-CEL-runtime-error",
            [_broken(claim(), "claim"), device_class(), node_slice()],
            "claim default/my-pod-my-resource",
        ),
        (
            "class-parameters-CEL-runtime-error",
            [claim(), _broken(device_class(), "class"), node_slice()],
            "class my-resource-class",
        ),
    ],
)
def test_cel_runtime_error(row: str, objs: list[dict[str, Any]], owner: str) -> None:
    h = Harness([worker()], objs)
    assert h.pre_filter(pod_with_claim_name()).ok
    with pytest.raises(FrameworkError) as exc:
        h.filter()
    assert (
        f"{owner}: selector #0 on device some-driver/worker/instance-1: CEL runtime error"
        in str(exc.value)
    ), row


def test_CEL_runtime_error_for_one_of_two_nodes() -> None:
    """The device of worker-2 has the attribute: upstream still fails on worker (Error)."""
    healthy = {"name": "instance-1", "attributes": {ATTR: {"bool": True}}}
    h = Harness(
        [worker(), worker("worker-2")],
        [_broken(claim(), "claim"), device_class(), node_slice(), node_slice("worker-2", healthy)],
    )
    assert h.pre_filter(pod_with_claim_name()).ok
    with pytest.raises(FrameworkError):
        h.filter()


def test_wrong_topology() -> None:
    wrong = {
        "devices": {},
        "nodeSelector": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "no-such-label", "operator": "In", "values": ["no-such-value"]}
                    ]
                }
            ]
        },
    }
    h = Harness([worker()], [claim(alloc=wrong), device_class()])
    assert h.pre_filter(pod_with_claim_name()).ok
    status = h.filter()[NODE]
    assert (status.code, status.reasons) == (
        UNRESOLVABLE,
        ("resourceclaim not available on the node",),
    )
    status = h.post_filter()
    assert (status.code, status.reasons) == (
        Code.UNSCHEDULABLE,
        ("deallocation of ResourceClaim completed",),
    )
    stored = h.dra.claim("default", CLAIM)
    assert stored is not None and stored.allocation is None


def test_good_topology() -> None:
    good = {
        "devices": {},
        "nodeSelector": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": [NODE]}
                    ]
                }
            ]
        },
    }
    h = Harness([worker()], [claim(alloc=good), device_class()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok
    assert h.pre_bind().ok


def test_reserved_okay() -> None:
    reserved = claim(
        alloc=allocation(), reserved_for=[{"resource": "pods", "name": POD, "uid": POD_UID}]
    )
    h = Harness([worker()], [reserved])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.pre_bind().ok


def test_claim_with_request_with_unknown_device_class() -> None:
    h = Harness(
        [worker()],
        [claim(requests=[{"name": "req-1", "exactly": {"deviceClassName": "does-not-exist"}}])],
    )
    status = h.pre_filter(pod_with_claim_name())
    assert (status.code, status.reasons) == (
        UNRESOLVABLE,
        ("request req-1: device class does-not-exist does not exist",),
    )


def test_claim_with_prioritized_list_unknown_device_class() -> None:
    requests = [
        {
            "name": "req-1",
            "firstAvailable": [{"name": "subreq-0", "deviceClassName": "does-not-exist"}],
        }
    ]
    h = Harness([worker()], [claim(requests=requests)])
    status = h.pre_filter(pod_with_claim_name())
    assert (status.code, status.reasons) == (
        UNRESOLVABLE,
        ("request req-1/subreq-0: device class does-not-exist does not exist",),
    )


def _prioritized(*subs: tuple[str, int, str | None]) -> list[dict[str, Any]]:
    out = []
    for name, count, selector in subs:
        sub: dict[str, Any] = {"name": name, "deviceClassName": CLASS, "count": count}
        if selector:
            sub["selectors"] = [{"cel": {"expression": selector}}]
        out.append(sub)
    return [{"name": "req-1", "firstAvailable": out}]


def test_claim_with_prioritized_list() -> None:
    requests = _prioritized(("subreq-0", 4, None), ("subreq-1", 1, None))
    h = Harness([worker()], [claim(requests=requests), device_class(), node_slice()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok
    assert h.pre_bind().ok
    stored = h.dra.claim("default", CLAIM)
    assert stored is not None and stored.allocation is not None
    assert [r.request for r in stored.allocation.results] == ["req-1/subreq-1"]


def test_single_claim_prioritized_list_scoring() -> None:
    """The node that can give the first subrequest scores 100, the other (second choice) 87."""
    requests = _prioritized(("subreq-0", 2, None), ("subreq-1", 1, None))
    big = node_slice(NODE, {"name": "instance-1"}, {"name": "instance-2"})
    small = node_slice("worker-2")
    h = Harness(
        [worker(), worker("worker-2")], [claim(requests=requests), device_class(), big, small]
    )
    assert h.pre_filter(pod_with_claim_name()).ok
    assert all(s.ok for s in h.filter().values())
    nodes = h.state.node_indices()
    raw = h.plugin.score(h.cycle, h.pod, nodes)
    scores = h.plugin.normalize(h.cycle, h.pod, nodes, raw)
    got = dict(zip((h.state.names[i] for i in nodes.tolist()), scores.tolist(), strict=True))
    assert got == {NODE: 100, "worker-2": 87}


def test_bind_failure_keeps_nothing_in_flight_after_unreserve() -> None:
    """bind-failure: Unreserve after Reserve gives the device back."""
    h = Harness([worker()], [claim(), device_class(), node_slice()])
    assert h.pre_filter(pod_with_claim_name()).ok
    assert h.filter()[NODE].ok
    assert h.reserve().ok
    h.plugin.unreserve(h.cycle, h.pod, NODE)
    assert not h.dra.in_flight
    assert not h.dra.is_allocated((DRIVER, NODE, "instance-1"))


def test_vectorised_filter_agrees_with_the_search() -> None:
    """The counting path and the allocator's search decide the same nodes."""
    slices = [
        node_slice(f"n{i}", *({"name": f"d{j}"} for j in range(i % 3))) for i in range(12) if i % 3
    ]
    taken = other_claim(alloc=allocation("n4", "d0"))
    objs = [
        claim(requests=[{"name": "req-1", "exactly": {"deviceClassName": CLASS, "count": 1}}]),
        device_class(),
        taken,
        *slices,
    ]
    h = Harness([worker(f"n{i}") for i in range(12)], objs)
    assert h.pre_filter(pod_with_claim_name()).ok
    fast = {n: s.ok for n, s in h.filter().items()}
    h2 = Harness([worker(f"n{i}") for i in range(12)], objs)
    assert h2.pre_filter(pod_with_claim_name()).ok
    state = h2.cycle.read("DynamicResources")
    state.fast = None
    slow = {n: s.ok for n, s in h2.filter().items()}
    assert fast == slow
    assert fast == {f"n{i}": (i % 3) >= 1 and i != 4 for i in range(12)}
    assert np.count_nonzero(list(fast.values())) == 7
