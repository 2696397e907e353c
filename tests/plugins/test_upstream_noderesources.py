"""NodeResourcesFit and NodeResourcesBalancedAllocation rows transcribed from upstream's tables.

Sources (kubernetes/kubernetes, pkg/scheduler/framework/plugins/noderesources/): fit_test.go
(TestEnoughRequests, TestNotEnoughRequests, TestStorageRequests, TestFitScore),
most_allocated_test.go (TestMostAllocatedScoringStrategy), least_allocated_test.go
(TestLeastAllocatedScoringStrategy). Upstream's quantities are raw: MilliCPU 1 is "1m", Memory 1
is one byte; st.MakeNode().Capacity({"cpu": "4000"}) is 4000 cores.

Version note: the stored fit_test.go predates the `Unresolvable` field of InsufficientResource.
Today's fitsRequest marks a resource whose request exceeds the node's allocatable (not merely
its free amount) unresolvable, and Filter then answers UnschedulableAndUnresolvable. Rows where
that applies expect UNSCHEDULABLE_AND_UNRESOLVABLE and say so.
"""

from typing import Any

import pytest

from berth.framework.status import Code
from tests.builders import PluginHarness, make_state, node, pod

EXT_A = "example.com/aaa"
EXT_B = "example.com/bbb"
K8S_A = "kubernetes.io/something"
K8S_B = "subdomain.kubernetes.io/something"
HUGE = "hugepages-2Mi"
U = Code.UNSCHEDULABLE
UU = Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def r(cpu: int | None = None, mem: int | None = None, **scalar: int) -> dict[str, str]:
    """framework.Resource{MilliCPU, Memory, ScalarResources} as a requests map."""
    out: dict[str, str] = {}
    if cpu is not None:
        out["cpu"] = f"{cpu}m"
    if mem is not None:
        out["memory"] = str(mem)
    names = {"a": EXT_A, "b": EXT_B, "k8s_a": K8S_A, "k8s_b": K8S_B, "huge": HUGE, "eph": None}
    for key, amount in scalar.items():
        name = names[key] or "ephemeral-storage"
        out[name] = str(amount)
    return out


def ctrs(*reqs: dict[str, str], prefix: str = "c") -> list[dict[str, Any]]:
    # Names are unique across containers and init containers, as API validation wants.
    return [
        {"name": f"{prefix}{i}", "image": "x", "resources": {"requests": q} if q else {}}
        for i, q in enumerate(reqs)
    ]


def resource_pod(
    *containers: dict[str, str],
    init: tuple[dict[str, str], ...] = (),
    overhead: dict[str, str] | None = None,
    node_name: str = "",
) -> dict[str, Any]:
    """newResourcePod / newResourceInitPod / newResourceOverheadPod. Upstream's `&v1.Pod{}` has
    no container at all; Berth needs one, so an empty container stands in for it."""
    spec: dict[str, Any] = {}
    if init:
        spec["initContainers"] = ctrs(*init, prefix="init")
    if overhead:
        spec["overhead"] = overhead
    return pod(containers=ctrs(*(containers or ({},))), spec=spec, node_name=node_name)


def fit_node(pods: int = 32) -> dict[str, Any]:
    """makeAllocatableResources(10, 20, 32, 5, 20, 5)."""
    return node(
        "n1",
        cpu="10m",
        memory="20",
        pods=pods,
        extra={EXT_A: "5", "ephemeral-storage": "20", HUGE: "5"},
    )


# --- TestEnoughRequests ------------------------------------------------------------------------
ENOUGH = [
    ("no resources requested always fits", resource_pod(), r(10, 20), {}, [], None),
    (
        "too many resources fails",
        resource_pod(r(1, 1)),
        r(10, 20),
        {},
        ["Insufficient cpu", "Insufficient memory"],
        U,
    ),
    (
        "too many resources fails due to init container cpu",
        resource_pod(r(1, 1), init=(r(3, 1),)),
        r(8, 19),
        {},
        ["Insufficient cpu"],
        U,
    ),
    (
        "too many resources fails due to highest init container cpu",
        resource_pod(r(1, 1), init=(r(3, 1), r(2, 1))),
        r(8, 19),
        {},
        ["Insufficient cpu"],
        U,
    ),
    (
        "too many resources fails due to init container memory",
        resource_pod(r(1, 1), init=(r(1, 3),)),
        r(9, 19),
        {},
        ["Insufficient memory"],
        U,
    ),
    (
        "too many resources fails due to highest init container memory",
        resource_pod(r(1, 1), init=(r(1, 3), r(1, 2))),
        r(9, 19),
        {},
        ["Insufficient memory"],
        U,
    ),
    (
        "init container fits because it's the max, not sum, of containers and init containers",
        resource_pod(r(1, 1), init=(r(1, 1),)),
        r(9, 19),
        {},
        [],
        None,
    ),
    (
        "multiple init containers fit because it's the max, not sum, of containers and init "
        "containers",
        resource_pod(r(1, 1), init=(r(1, 1), r(1, 1))),
        r(9, 19),
        {},
        [],
        None,
    ),
    ("both resources fit", resource_pod(r(1, 1)), r(5, 5), {}, [], None),
    ("one resource memory fits", resource_pod(r(2, 1)), r(9, 5), {}, ["Insufficient cpu"], U),
    ("one resource cpu fits", resource_pod(r(1, 2)), r(5, 19), {}, ["Insufficient memory"], U),
    ("equal edge case", resource_pod(r(5, 1)), r(5, 19), {}, [], None),
    (
        "equal edge case for init container",
        resource_pod(r(4, 1), init=(r(5, 1),)),
        r(5, 19),
        {},
        [],
        None,
    ),
    ("extended resource fits", resource_pod(r(a=1)), {}, {}, [], None),
    ("extended resource fits for init container", resource_pod(init=(r(a=1),)), {}, {}, [], None),
    (
        "extended resource capacity enforced (10 > allocatable 5: unresolvable today)",
        resource_pod(r(1, 1, a=10)),
        r(0, 0, a=0),
        {},
        [f"Insufficient {EXT_A}"],
        UU,
    ),
    (
        "extended resource capacity enforced for init container (unresolvable today)",
        resource_pod(init=(r(1, 1, a=10),)),
        r(0, 0, a=0),
        {},
        [f"Insufficient {EXT_A}"],
        UU,
    ),
    (
        "extended resource allocatable enforced",
        resource_pod(r(1, 1, a=1)),
        r(0, 0, a=5),
        {},
        [f"Insufficient {EXT_A}"],
        U,
    ),
    (
        "extended resource allocatable enforced for init container",
        resource_pod(init=(r(1, 1, a=1),)),
        r(0, 0, a=5),
        {},
        [f"Insufficient {EXT_A}"],
        U,
    ),
    (
        "extended resource allocatable enforced for multiple containers (6 > 5: unresolvable)",
        resource_pod(r(1, 1, a=3), r(1, 1, a=3)),
        r(0, 0, a=2),
        {},
        [f"Insufficient {EXT_A}"],
        UU,
    ),
    (
        "extended resource allocatable admits multiple init containers",
        resource_pod(init=(r(1, 1, a=3), r(1, 1, a=3))),
        r(0, 0, a=2),
        {},
        [],
        None,
    ),
    (
        "extended resource allocatable enforced for multiple init containers (unresolvable)",
        resource_pod(init=(r(1, 1, a=6), r(1, 1, a=3))),
        r(0, 0, a=2),
        {},
        [f"Insufficient {EXT_A}"],
        UU,
    ),
    (
        "extended resource allocatable enforced for unknown resource (unresolvable)",
        resource_pod(r(1, 1, b=1)),
        r(0, 0),
        {},
        [f"Insufficient {EXT_B}"],
        UU,
    ),
    (
        "extended resource allocatable enforced for unknown resource for init container",
        resource_pod(init=(r(1, 1, b=1),)),
        r(0, 0),
        {},
        [f"Insufficient {EXT_B}"],
        UU,
    ),
    (
        "kubernetes.io resource capacity enforced (unresolvable)",
        resource_pod(r(1, 1, k8s_a=10)),
        r(0, 0),
        {},
        [f"Insufficient {K8S_A}"],
        UU,
    ),
    (
        "kubernetes.io resource capacity enforced for init container (unresolvable)",
        resource_pod(init=(r(1, 1, k8s_b=10),)),
        r(0, 0),
        {},
        [f"Insufficient {K8S_B}"],
        UU,
    ),
    (
        "hugepages resource capacity enforced (unresolvable)",
        resource_pod(r(1, 1, huge=10)),
        r(0, 0, huge=0),
        {},
        [f"Insufficient {HUGE}"],
        UU,
    ),
    (
        "hugepages resource capacity enforced for init container (unresolvable)",
        resource_pod(init=(r(1, 1, huge=10),)),
        r(0, 0, huge=0),
        {},
        [f"Insufficient {HUGE}"],
        UU,
    ),
    (
        "hugepages resource allocatable enforced for multiple containers (unresolvable)",
        resource_pod(r(1, 1, huge=3), r(1, 1, huge=3)),
        r(0, 0, huge=2),
        {},
        [f"Insufficient {HUGE}"],
        UU,
    ),
    (
        "skip checking ignored extended resource",
        resource_pod(r(1, 1, b=1)),
        r(0, 0),
        {"ignoredResources": [EXT_B]},
        [],
        None,
    ),
    (
        "resources + pod overhead fits",
        resource_pod(r(1, 1), overhead={"cpu": "3m", "memory": "13"}),
        r(5, 5),
        {},
        [],
        None,
    ),
    (
        "requests + overhead does not fit for memory",
        resource_pod(r(1, 1), overhead={"cpu": "1m", "memory": "15"}),
        r(5, 5),
        {},
        ["Insufficient memory"],
        U,
    ),
    (
        "skip checking ignored extended resource via resource groups (unresolvable)",
        resource_pod(r(1, 1, b=1, k8s_a=1)),
        r(0, 0),
        {"ignoredResourceGroups": ["example.com"]},
        [f"Insufficient {K8S_A}"],
        UU,
    ),
    (
        "skip checking extended resource request with quantity zero via resource groups",
        resource_pod(r(1, 1, a=0)),
        r(0, 0, a=6),
        {},
        [],
        None,
    ),
    (
        "skip checking resource request with quantity zero",
        resource_pod(r(a=1)),
        r(20, 30, a=1),
        {},
        [],
        None,
    ),
]


@pytest.mark.parametrize(("name", "want", "used", "args", "reasons", "code"), ENOUGH)
def test_enough_requests(
    name: str,
    want: dict[str, Any],
    used: dict[str, str],
    args: dict[str, Any],
    reasons: list[str],
    code: Code | None,
) -> None:
    running = resource_pod(used, node_name="n1")
    h = PluginHarness("NodeResourcesFit", make_state([fit_node()], [running]), args)
    status = h.filter(want)["n1"]
    assert list(status.reasons) == reasons, name
    if code is None:
        assert status.ok, name
    else:
        assert status.code == code, name


# --- TestNotEnoughRequests: node allows 1 pod and already runs one -------------------------------
@pytest.mark.parametrize(
    ("name", "want", "used"),
    [
        (
            "even without specified resources, predicate fails when there's no space for "
            "additional pod",
            resource_pod(),
            r(10, 20),
        ),
        (
            "even if both resources fit, predicate fails when there's no space for additional pod",
            resource_pod(r(1, 1)),
            r(5, 5),
        ),
        (
            "even for equal edge case, predicate fails when there's no space for additional pod",
            resource_pod(r(5, 1)),
            r(5, 19),
        ),
        (
            "even for equal edge case, predicate fails when there's no space for additional pod "
            "due to init container",
            resource_pod(r(5, 1), init=(r(5, 1),)),
            r(5, 19),
        ),
    ],
)
def test_not_enough_requests(name: str, want: dict[str, Any], used: dict[str, str]) -> None:
    state = make_state(
        [node("n1", cpu="10m", memory="20", pods=1)], [resource_pod(used, node_name="n1")]
    )
    status = PluginHarness("NodeResourcesFit", state).filter(want)["n1"]
    assert status.reasons == ("Too many pods",), name
    assert status.code == U, name


# --- TestStorageRequests -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "want", "used", "reasons", "code"),
    [
        ("empty storage requested, and pod fits", resource_pod(r(1, 1)), r(2, 10), [], None),
        (
            "storage ephemeral local storage request exceeds allocatable (25 > 20: unresolvable)",
            resource_pod(r(eph=25)),
            r(2, 2),
            ["Insufficient ephemeral-storage"],
            UU,
        ),
        (
            "ephemeral local storage is sufficient",
            resource_pod(r(eph=5)),
            r(2, 2, eph=10),
            [],
            None,
        ),
        ("pod fits", resource_pod(r(eph=10)), r(2, 2), [], None),
    ],
)
def test_storage_requests(
    name: str,
    want: dict[str, Any],
    used: dict[str, str],
    reasons: list[str],
    code: Code | None,
) -> None:
    state = make_state([fit_node()], [resource_pod(used, node_name="n1")])
    status = PluginHarness("NodeResourcesFit", state).filter(want)["n1"]
    assert list(status.reasons) == reasons, name
    if code is not None:
        assert status.code == code, name


# --- Scoring: TestFitScore, TestMostAllocatedScoringStrategy, TestLeastAllocatedScoringStrategy --
def req(*containers: tuple[str, str], extra: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """st.MakePod().Req(...): one container per call, requests as given (explicit zeros kept)."""
    out = []
    for i, (cpu, mem) in enumerate(containers):
        q = {"cpu": cpu, "memory": mem}
        if i == 0 and extra:
            q.update(extra)
        out.append({"name": f"c{i}", "image": "x", "resources": {"requests": q}})
    return out


# st.MakePod().Obj() has no container, so no non-zero defaults apply; explicit zero requests
# are the same for upstream's NonMissingContainerRequests ("explicitly set, even if zero").
NOTHING = [("0", "0")]
DEFAULT = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
EXT = "abc.com/xyz"
EXT_SET = [*DEFAULT, {"name": EXT, "weight": 1}]
RTC_DOWN = {"shape": [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]}
RTC_UP = {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}


def cap(name: str, cpu: str, mem: str, ext: str | None = None) -> dict[str, Any]:
    return node(name, cpu=cpu, memory=mem, extra={EXT: ext} if ext else None)


FIT_NODES = [cap("node1", "4000", "10000"), cap("node2", "6000", "10000")]
FIT_EXISTING = [("node1", [("2000", "4000")]), ("node2", [("1000", "2000")])]

SCORE_ROWS = [
    # fit_test.go TestFitScore
    (
        "TestFitScore: RequestedToCapacityRatio case1",
        {
            "type": "RequestedToCapacityRatio",
            "resources": DEFAULT,
            "requestedToCapacityRatio": RTC_DOWN,
        },
        req(("3000", "5000")),
        FIT_NODES,
        FIT_EXISTING,
        {"node1": 10, "node2": 32},
    ),
    (
        "TestFitScore: RequestedToCapacityRatio case2",
        {
            "type": "RequestedToCapacityRatio",
            "resources": DEFAULT,
            "requestedToCapacityRatio": RTC_UP,
        },
        req(("3000", "5000")),
        FIT_NODES,
        FIT_EXISTING,
        {"node1": 95, "node2": 68},
    ),
    (
        "TestFitScore: MostAllocated",
        {"type": "MostAllocated", "resources": DEFAULT},
        req(("1000", "2000")),
        FIT_NODES,
        FIT_EXISTING,
        {"node1": 67, "node2": 36},
    ),
    (
        "TestFitScore: LeastAllocated",
        {"type": "LeastAllocated", "resources": DEFAULT},
        req(("1000", "2000")),
        FIT_NODES,
        FIT_EXISTING,
        {"node1": 32, "node2": 63},
    ),
    # most_allocated_test.go
    (
        "MostAllocated: nothing scheduled, nothing requested",
        {"type": "MostAllocated"},
        req(*NOTHING),
        [cap("node1", "4000", "10000"), cap("node2", "4000", "10000")],
        [],
        {"node1": 0, "node2": 0},
    ),
    (
        "MostAllocated: nothing scheduled, resources requested, differently sized nodes",
        {"type": "MostAllocated"},
        req(("1000", "2000"), ("2000", "3000")),
        FIT_NODES,
        [],
        {"node1": 62, "node2": 50},
    ),
    (
        "MostAllocated: no resources requested, pods scheduled with resources",
        {"type": "MostAllocated"},
        req(*NOTHING),
        [cap("node1", "10000", "20000"), cap("node2", "10000", "20000")],
        [
            ("node1", [("3000", "0")]),
            ("node1", [("3000", "0")]),
            ("node2", [("3000", "0")]),
            ("node2", [("3000", "5000")]),
        ],
        {"node1": 30, "node2": 42},
    ),
    (
        "MostAllocated: resources requested, pods scheduled with resources",
        {"type": "MostAllocated"},
        req(("1000", "2000"), ("2000", "3000")),
        [cap("node1", "10000", "20000"), cap("node2", "10000", "20000")],
        [("node1", [("3000", "0")]), ("node2", [("3000", "5000")])],
        {"node1": 42, "node2": 55},
    ),
    (
        "MostAllocated: resources requested equal node capacity",
        {"type": "MostAllocated"},
        req(("2000", "4000"), ("3000", "5000")),
        [cap("node1", "5000", "10000"), cap("node2", "10000", "9000")],
        [],
        {"node1": 95, "node2": 75},
    ),
    (
        "MostAllocated: nothing scheduled, resources requested, differently sized nodes, "
        "memory weight 2",
        {"type": "MostAllocated", "resources": [{"name": "memory", "weight": 2}, {"name": "cpu"}]},
        req(("1000", "2000"), ("2000", "3000")),
        FIT_NODES,
        [],
        {"node1": 58, "node2": 50},
    ),
    (
        "MostAllocated: bypass extended resource if the pod does not request",
        {"type": "MostAllocated", "resources": EXT_SET},
        req(("1000", "2000"), ("2000", "3000")),
        [cap("node1", "6000", "10000"), cap("node2", "6000", "10000", ext="4")],
        [],
        {"node1": 50, "node2": 50},
    ),
    (
        "MostAllocated: honor extended resource if the pod request",
        {"type": "MostAllocated", "resources": EXT_SET},
        req(("3000", "5000"), extra={EXT: "2"}),
        [cap("node1", "6000", "10000", ext="4"), cap("node2", "6000", "10000", ext="10")],
        [],
        {"node1": 50, "node2": 40},
    ),
    (
        "MostAllocated: if the node doesn't have a resource",
        {
            "type": "MostAllocated",
            "resources": [{"name": EXT, "weight": 2}, {"name": "cpu"}, {"name": "memory"}],
        },
        req(("3000", "4000")),
        [cap("node1", "6000", "10000"), cap("node2", "6000", "10000", ext="4")],
        [],
        {"node1": 45, "node2": 45},
    ),
]


@pytest.mark.parametrize(
    ("name", "strategy", "containers", "nodes", "existing", "want"), SCORE_ROWS
)
def test_fit_score(
    name: str,
    strategy: dict[str, Any],
    containers: list[dict[str, Any]],
    nodes: list[dict[str, Any]],
    existing: list[tuple[str, list[tuple[str, str]]]],
    want: dict[str, int],
) -> None:
    running = [pod(node_name=n, containers=req(*c)) for n, c in existing]
    h = PluginHarness("NodeResourcesFit", make_state(nodes, running), {"scoringStrategy": strategy})
    assert h.score(pod(containers=containers)) == want, name


def test_most_allocated_nonzero_request_for_resource() -> None:
    """most_allocated_test.go: "no resources requested, pods scheduled, nonzero request for
    resource" -- containers without requests count as 100m / 200Mi when scoring."""
    nodes = [node("node1", cpu="250m", memory="1000Mi"), node("node2", cpu="250m", memory="1000Mi")]
    running = [pod(node_name="node1"), pod(node_name="node1")]
    h = PluginHarness(
        "NodeResourcesFit",
        make_state(nodes, running),
        {"scoringStrategy": {"type": "MostAllocated"}},
    )
    assert h.score(pod()) == {"node1": 80, "node2": 30}


def test_score_leaves_out_resources_that_are_neither_native_nor_scalar() -> None:
    """resource_allocation.go calculateResourceAllocatableRequest: only cpu, memory,
    ephemeral-storage and scalar resources have an allocatable; `pods` (listed in upstream's
    benchmarkResourceSet in fit_test.go) and `storage` give (0, 0) and are skipped."""
    nodes = [node("a", cpu="4", memory="8Gi", pods=10), node("b", cpu="4", memory="8Gi", pods=100)]
    extra = [{"name": "pods"}, {"name": "storage"}]
    h = PluginHarness(
        "NodeResourcesFit",
        make_state(nodes),
        {"scoringStrategy": {"type": "LeastAllocated", "resources": [*DEFAULT, *extra]}},
    )
    # cpu (4-1)/4 = 75, memory (8-1)/8 = 87 -> (75 + 87) / 2 = 81 on both nodes
    assert h.score(pod(cpu="1", memory="1Gi")) == {"a": 81, "b": 81}
    h = PluginHarness(
        "NodeResourcesBalancedAllocation", make_state(nodes), {"resources": [*DEFAULT, *extra]}
    )
    # fractions .25 and .125 only: std .0625 -> 93, from 100 without the pod -> 50 + 43 / 2
    assert h.score(pod(cpu="1", memory="1Gi")) == {"a": 71, "b": 71}


# --- NodeResourcesBalancedAllocation -------------------------------------------------------------
FOO = "example.com/foo"


@pytest.mark.parametrize(
    ("name", "resources", "want"),
    [
        # [derived] balanced_allocation.go balancedResourceScore, len(fractions) > 2:
        # std = sqrt(sum((f - mean)^2) / n), balance = int((1 - std) * 100); the score is
        # 50 + (50 + balance with the pod - balance without it) / 2 (balancedResourceScorer).
        (
            "[derived] three resources: fractions .25 .25 .75 -> std .2357 -> 76 (100 before) "
            "-> 63; node without the scalar resource scores cpu and memory only -> 100 (100 "
            "before) -> 75; .25 .25 .375 -> 94 -> 72",
            [*DEFAULT, {"name": FOO}],
            {"n1": 63, "n2": 75, "n3": 72},
        ),
        (
            "[derived] the scalar resource not configured: cpu and memory only",
            DEFAULT,
            {"n1": 75, "n2": 75, "n3": 75},
        ),
    ],
)
def test_balanced_allocation_more_than_two_resources(
    name: str, resources: list[dict[str, Any]], want: dict[str, int]
) -> None:
    nodes = [
        node("n1", cpu="4", memory="8Gi", extra={FOO: "4"}),
        node("n2", cpu="4", memory="8Gi"),
        node("n3", cpu="4", memory="8Gi", extra={FOO: "8"}),
    ]
    h = PluginHarness(
        "NodeResourcesBalancedAllocation", make_state(nodes), {"resources": resources}
    )
    assert h.score(pod(requests={"cpu": "1", "memory": "2Gi", FOO: "3"})) == want, name


# --- Pod requests: sidecars, pod-level resources, overhead (component-helpers resource) ---------
def cpu_ctr(name: str, cpu: str, *, sidecar: bool = False) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": "x", "resources": {"requests": {"cpu": cpu}}}
    if sidecar:
        c["restartPolicy"] = "Always"
    return c


@pytest.mark.parametrize(
    ("name", "spec", "cpu_needed"),
    [
        (
            "[derived] sidecars accumulate: sidecar 1, init 2, sidecar 3, container 1 -> "
            "max(1 + 1 + 3, 1 + 2, 1 + 3) = 5",
            {
                "containers": [cpu_ctr("c", "1")],
                "initContainers": [
                    cpu_ctr("s1", "1", sidecar=True),
                    cpu_ctr("i2", "2"),
                    cpu_ctr("s3", "3", sidecar=True),
                ],
            },
            "5",
        ),
        (
            "[derived] a regular init container after sidecars runs beside them: "
            "sidecar 2, init 4 -> max(1 + 2, 2 + 4) = 6",
            {
                "containers": [cpu_ctr("c", "1")],
                "initContainers": [cpu_ctr("s1", "2", sidecar=True), cpu_ctr("i2", "4")],
            },
            "6",
        ),
        (
            "[derived] pod-level requests replace the container sum (PodRequests "
            "applyPodLevelResources), overhead is added on top",
            {
                "containers": [cpu_ctr("c", "1")],
                "resources": {"requests": {"cpu": "3"}},
                "overhead": {"cpu": "500m"},
            },
            "3500m",
        ),
        (
            "[derived] pod-level limits stand in for missing pod-level requests",
            {"containers": [cpu_ctr("c", "1")], "resources": {"limits": {"cpu": "2"}}},
            "2",
        ),
        (
            "[derived] only cpu, memory and hugepages are pod-level resources "
            "(IsSupportedPodLevelResource): ephemeral-storage there is ignored",
            {
                "containers": [
                    {
                        "name": "c",
                        "image": "x",
                        "resources": {"requests": {"cpu": "1", "ephemeral-storage": "1Gi"}},
                    }
                ],
                "resources": {"requests": {"cpu": "2", "ephemeral-storage": "100Gi"}},
            },
            "2",
        ),
    ],
)
def test_pod_requests_edge_semantics(name: str, spec: dict[str, Any], cpu_needed: str) -> None:
    from berth.objects.quantity import resource_value

    milli = resource_value("cpu", cpu_needed)
    nodes = [
        node("exact", cpu=f"{milli}m", extra={"ephemeral-storage": "10Gi"}),
        node("short", cpu=f"{milli - 1}m", extra={"ephemeral-storage": "10Gi"}),
    ]
    h = PluginHarness("NodeResourcesFit", make_state(nodes))
    raw = pod()
    raw["spec"].update(spec)
    assert h.reasons(raw) == {"short": ["Insufficient cpu"]}, name
