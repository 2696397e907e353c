"""NodeResourcesFit and NodeResourcesBalancedAllocation (fit_test.go, least_allocated_test.go,
most_allocated_test.go, requested_to_capacity_ratio_test.go, balanced_allocation_test.go)."""

from typing import Any

import pytest

from berth.framework.status import Code
from tests.builders import PluginHarness, make_state, node, pod


def containers(*reqs: tuple[str, str] | None) -> list[dict[str, Any]]:
    out = []
    for i, r in enumerate(reqs):
        res = {} if r is None else {"requests": {"cpu": r[0], "memory": r[1]}}
        out.append({"name": f"c{i}", "image": "x", "resources": res})
    return out


# --- Filter ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "wanted", "used", "reasons", "code"),
    [
        ("fits", ("1", "1Gi"), ("1", "1Gi"), [], None),
        ("too much cpu", ("3500m", "1Gi"), ("1", "1Gi"), ["Insufficient cpu"], Code.UNSCHEDULABLE),
        (
            "too much memory",
            ("1", "15Gi"),
            ("1", "2Gi"),
            ["Insufficient memory"],
            Code.UNSCHEDULABLE,
        ),
        (
            "both",
            ("3500m", "15Gi"),
            ("1", "2Gi"),
            ["Insufficient cpu", "Insufficient memory"],
            Code.UNSCHEDULABLE,
        ),
        (
            "more than the node has at all is unresolvable",
            ("5", "1Gi"),
            ("0", "0"),
            ["Insufficient cpu"],
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
        ),
        ("exactly full fits", ("3", "14Gi"), ("1", "2Gi"), [], None),
    ],
)
def test_fit_filter(
    name: str,
    wanted: tuple[str, str],
    used: tuple[str, str],
    reasons: list[str],
    code: Code | None,
) -> None:
    running = pod(node_name="n1", cpu=used[0], memory=used[1])
    h = PluginHarness(
        "NodeResourcesFit", make_state([node("n1", cpu="4", memory="16Gi")], [running])
    )
    status = h.filter(pod(cpu=wanted[0], memory=wanted[1]))["n1"]
    assert list(status.reasons) == reasons, name
    if code is not None:
        assert status.code == code


def test_too_many_pods() -> None:
    state = make_state([node("n1", pods=1)], [pod(node_name="n1")])
    h = PluginHarness("NodeResourcesFit", state)
    status = h.filter(pod())["n1"]
    assert status.reasons == ("Too many pods",)
    assert status.code == Code.UNSCHEDULABLE


def test_extended_resources_and_ignored() -> None:
    state = make_state([node("n1", extra={"example.com/foo": "1"}), node("n2")])
    want = pod(requests={"example.com/foo": "2"})
    h = PluginHarness("NodeResourcesFit", state)
    assert h.reasons(want) == {
        "n1": ["Insufficient example.com/foo"],
        "n2": ["Insufficient example.com/foo"],
    }
    ignored = PluginHarness("NodeResourcesFit", state, {"ignoredResources": ["example.com/foo"]})
    assert ignored.reasons(want) == {}
    groups = PluginHarness("NodeResourcesFit", state, {"ignoredResourceGroups": ["example.com"]})
    assert groups.reasons(want) == {}


def test_init_and_sidecar_containers_are_counted_as_upstream() -> None:
    # Regular init containers: max with the app containers; sidecars: added for the pod's life.
    state = make_state([node("n1", cpu="4")])
    h = PluginHarness("NodeResourcesFit", state)
    init_big = pod(
        cpu="1",
        spec={
            "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "5"}}}]
        },
    )
    assert h.reasons(init_big) == {"n1": ["Insufficient cpu"]}
    sidecar = pod(
        cpu="2",
        spec={
            "initContainers": [
                {
                    "name": "s",
                    "image": "x",
                    "restartPolicy": "Always",
                    "resources": {"requests": {"cpu": "2500m"}},
                }
            ]
        },
    )
    assert h.reasons(sidecar) == {"n1": ["Insufficient cpu"]}
    overhead = pod(cpu="3900m", spec={"overhead": {"cpu": "200m"}})
    assert h.reasons(overhead) == {"n1": ["Insufficient cpu"]}


def test_limits_stand_in_for_missing_requests() -> None:
    h = PluginHarness("NodeResourcesFit", make_state([node("n1", cpu="4")]))
    raw = pod(containers=[{"name": "c", "image": "x", "resources": {"limits": {"cpu": "8"}}}])
    assert h.reasons(raw) == {"n1": ["Insufficient cpu"]}


# --- LeastAllocated (least_allocated_test.go rows, cpu in millicores) --------------------------
def mnode(name: str, cpu: int, mem: int, **kw: Any) -> dict[str, Any]:
    return node(name, cpu=f"{cpu}m", memory=str(mem), **kw)


def mpod(*reqs: tuple[int, int], node_name: str = "") -> dict[str, Any]:
    return pod(
        node_name=node_name,
        containers=[
            {
                "name": f"c{i}",
                "image": "x",
                "resources": {"requests": {"cpu": f"{c}m", "memory": str(m)}},
            }
            for i, (c, m) in enumerate(reqs)
        ]
        or [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "0", "memory": "0"}}}],
    )


@pytest.mark.parametrize(
    ("name", "incoming", "nodes", "existing", "want", "args"),
    [
        (
            "nothing scheduled, nothing requested",
            [],
            [("n1", 4000, 10000), ("n2", 4000, 10000)],
            [],
            {"n1": 100, "n2": 100},
            None,
        ),
        (
            "nothing scheduled, resources requested, differently sized nodes",
            [(1000, 2000), (2000, 3000)],
            [("n1", 4000, 10000), ("n2", 6000, 10000)],
            [],
            {"n1": 37, "n2": 50},
            None,
        ),
        (
            "no resources requested, pods scheduled with resources",
            [],
            [("n1", 10000, 20000), ("n2", 10000, 20000)],
            [("n1", (3000, 0)), ("n1", (3000, 0)), ("n2", (3000, 0)), ("n2", (3000, 5000))],
            {"n1": 70, "n2": 57},
            None,
        ),
        (
            "resources requested, pods scheduled with resources",
            [(1000, 2000), (2000, 3000)],
            [("n1", 10000, 20000), ("n2", 10000, 20000)],
            [("n1", (3000, 0)), ("n2", (3000, 5000))],
            {"n1": 57, "n2": 45},
            None,
        ),
        (
            "requested cpu exceeds capacity scores 0 for cpu",
            [(3000, 0)],
            [("n1", 4000, 10000), ("n2", 4000, 10000)],
            [("n1", (3000, 0)), ("n2", (3000, 5000))],
            {"n1": 50, "n2": 25},
            None,
        ),
        (
            "resource weights",
            [(1000, 2000), (2000, 3000)],
            [("n1", 4000, 10000), ("n2", 6000, 10000)],
            [],
            {"n1": 41, "n2": 50},
            {
                "scoringStrategy": {
                    "type": "LeastAllocated",
                    "resources": [{"name": "memory", "weight": 2}, {"name": "cpu", "weight": 1}],
                }
            },
        ),
    ],
)
def test_least_allocated(
    name: str,
    incoming: list[tuple[int, int]],
    nodes: list[tuple[str, int, int]],
    existing: list[tuple[str, tuple[int, int]]],
    want: dict[str, int],
    args: dict[str, Any] | None,
) -> None:
    state = make_state(
        [mnode(n, c, m) for n, c, m in nodes], [mpod(r, node_name=n) for n, r in existing]
    )
    h = PluginHarness("NodeResourcesFit", state, args)
    assert h.score(mpod(*incoming)) == want, name


def test_nonzero_defaults_apply_to_containers_without_requests() -> None:
    # A container with no requests counts as 100m cpu / 200Mi memory when scoring.
    state = make_state([mnode("n1", 1000, 1000 * 1024 * 1024)])
    h = PluginHarness("NodeResourcesFit", state)
    empty = pod(containers=[{"name": "c", "image": "x"}])
    # cpu (1000-100)*100/1000 = 90, memory (1000Mi-200Mi)*100/1000Mi = 80 -> 85
    assert h.score(empty) == {"n1": 85}


def test_most_allocated() -> None:
    # most_allocated_test.go: "resources requested, pods scheduled with resources"
    state = make_state(
        [mnode("n1", 10000, 20000), mnode("n2", 10000, 20000)],
        [mpod((3000, 0), node_name="n1"), mpod((3000, 5000), node_name="n2")],
    )
    args = {"scoringStrategy": {"type": "MostAllocated"}}
    h = PluginHarness("NodeResourcesFit", state, args)
    # n1: cpu 6000/10000 = 60, mem 5000/20000 = 25 -> 42; n2: 60, 50 -> 55
    assert h.score(mpod((1000, 2000), (2000, 3000))) == {"n1": 42, "n2": 55}


def test_requested_to_capacity_ratio() -> None:
    shape = [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]
    args = {
        "scoringStrategy": {
            "type": "RequestedToCapacityRatio",
            "requestedToCapacityRatio": {"shape": shape},
        }
    }
    state = make_state([mnode("n1", 4000, 10000), mnode("n2", 6000, 10000)])
    h = PluginHarness("NodeResourcesFit", state, args)
    # Equivalent to LeastAllocated: n1 cpu 3000/4000=75% -> 25, mem 5000/10000=50% -> 50.
    assert h.score(mpod((1000, 2000), (2000, 3000))) == {"n1": 38, "n2": 50}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"scoringStrategy": {"type": "Bogus"}}, "type"),
        (
            {"scoringStrategy": {"resources": [{"name": "cpu", "weight": 101}]}},
            "resource weight of cpu not in valid range (0, 100]",
        ),
        (
            {"scoringStrategy": {"resources": [{"name": "memory", "weight": -1}]}},
            "resource weight of memory not in valid range",
        ),
        (
            {"scoringStrategy": {"type": "RequestedToCapacityRatio"}},
            "must be specified when type is RequestedToCapacityRatio",
        ),
        (
            {
                "scoringStrategy": {
                    "type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {
                        "shape": [{"utilization": 50, "score": 1}, {"utilization": 10, "score": 2}]
                    },
                }
            },
            "values must be sorted in increasing order",
        ),
        (
            {
                "scoringStrategy": {
                    "type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": [{"utilization": 10, "score": 11}]},
                }
            },
            "score",
        ),
        ({"ignoredResourceGroups": ["example.com/foo"]}, "resource group name can't contain '/'"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_fit_args_validation(args: dict[str, Any], fragment: str) -> None:
    from pydantic import ValidationError

    from berth.plugins.noderesources import NodeResourcesFitArgs

    with pytest.raises(ValidationError) as info:
        NodeResourcesFitArgs.model_validate(args)
    assert fragment in str(info.value)


# --- BalancedAllocation (balanced_allocation_test.go, 1.37: the change in balance) ------------
@pytest.mark.parametrize(
    ("name", "incoming", "alloc", "existing", "want"),
    [
        (
            "nothing scheduled, resources requested, differently sized nodes (node1)",
            (3000, 5000),
            (4000, 10000),
            None,
            68,
        ),
        (
            "nothing scheduled, resources requested, differently sized nodes (node2)",
            (3000, 5000),
            (6000, 10000),
            None,
            75,
        ),
        (
            "resources requested, pods scheduled with resources (node1)",
            (3000, 5000),
            (10000, 20000),
            (3000, 0),
            73,
        ),
        (
            "resources requested, pods scheduled with resources (node2)",
            (3000, 5000),
            (10000, 20000),
            (3000, 5000),
            74,
        ),
        (
            "resources requested, pods scheduled with resources, differently sized nodes (node2)",
            (3000, 5000),
            (10000, 50000),
            (3000, 5000),
            70,
        ),
        (
            "resources requested, pods scheduled with resources, nodes to reach min/max score "
            "(node1)",
            (0, 5000),
            (3000, 5000),
            (3000, 0),
            100,
        ),
        (
            "resources requested, pods scheduled with resources, nodes to reach min/max score "
            "(node2)",
            (0, 5000),
            (3000, 5000),
            None,
            50,
        ),
        ("requested resources at node capacity (node1)", (3000, 0), (6000, 10000), (3000, 0), 62),
        (
            "requested resources at node capacity (node2)",
            (3000, 0),
            (6000, 10000),
            (3000, 5000),
            62,
        ),
    ],
)
def test_balanced_allocation(
    name: str,
    incoming: tuple[int, int],
    alloc: tuple[int, int],
    existing: tuple[int, int] | None,
    want: int,
) -> None:
    pods = [mpod(existing, node_name="n1")] if existing else []
    state = make_state([mnode("n1", *alloc)], pods)
    h = PluginHarness("NodeResourcesBalancedAllocation", state)
    assert h.score(mpod(incoming)) == {"n1": want}, name


def test_balanced_allocation_skips_best_effort_pods() -> None:
    h = PluginHarness("NodeResourcesBalancedAllocation", make_state([mnode("n1", 4000, 10000)]))
    assert h.score(pod(containers=[{"name": "c", "image": "x"}])) == {}


def test_fit_scores_the_containers_requests_even_with_pod_level_resources() -> None:
    # NodeResourcesFit's scorer never turns PodLevelResources on (noderesources/fit.go:219
    # builds it without enablePodLevelResources, resource_allocation.go:242 then skips the
    # pod-level requests): two containers with no requests count 2 x (100m, 200Mi), not the
    # pod's 4 cpu and 8Gi, while its Filter and BalancedAllocation read the pod-level ones.
    # Found by the differential oracle.
    state = make_state([node("n1", cpu="4", memory="8Gi")])
    raw = pod(
        containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "x"}],
        spec={"resources": {"requests": {"cpu": "4", "memory": "8Gi"}}},
    )
    assert PluginHarness("NodeResourcesFit", state).score(raw) == {"n1": 95}
    assert PluginHarness("NodeResourcesFit", state).reasons(raw) == {}
    bigger = pod(
        containers=[{"name": "a", "image": "x"}],
        spec={"resources": {"requests": {"cpu": "5"}}},
    )
    assert PluginHarness("NodeResourcesFit", state).reasons(bigger) == {"n1": ["Insufficient cpu"]}


def test_balance_of_two_columns_is_the_matrix_balance_exactly() -> None:
    """The two-resource shortcut computes the same integers as the general matrix path,
    over requests below, at and above allocatable (fractions capped at 1)."""
    import numpy as np

    from berth.plugins.noderesources import _balance, _balance_of_two

    rng = np.random.default_rng(11)
    a0 = rng.integers(1, 64_000, 5_000)
    a1 = rng.integers(1, 2**36, 5_000)
    r0 = (a0 * rng.uniform(0, 1.3, 5_000)).astype(np.int64)
    r1 = (a1 * rng.uniform(0, 1.3, 5_000)).astype(np.int64)
    r0[:50], r1[50:100] = a0[:50], a1[50:100]  # exactly full
    want = _balance(np.stack([a0, a1], axis=1), np.stack([r0, r1], axis=1))
    assert np.array_equal(_balance_of_two(a0, r0, a1, r1), want)
