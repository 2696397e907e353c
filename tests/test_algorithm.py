"""The decision: numFeasibleNodesToFind, scan rotation, tie-breaks, FitError messages."""

from typing import Any

import pytest

from berth.config import parse_config
from berth.engine import Engine
from berth.framework.algorithm import FitError, num_feasible_nodes_to_find
from berth.objects import parse_pod
from tests.builders import make_state, node, pod


@pytest.mark.parametrize(
    ("percentage", "nodes", "want"),
    [
        (None, 10, 10),
        (None, 99, 99),
        (None, 150, 100),  # 49% of 150 = 73 -> at least 100
        (None, 500, 230),  # 50 - 500/125 = 46%
        (None, 1000, 420),  # 42%
        (None, 5000, 500),  # 10%
        (None, 6000, 300),  # 2% -> floor 5%
        (50, 1000, 500),
        (100, 1000, 1000),
        (1, 1000, 100),
    ],
)
def test_num_feasible_nodes_to_find(percentage: int | None, nodes: int, want: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == want


def engine(nodes: list[dict[str, Any]], pods: list[dict[str, Any]] = (), **cfg: Any) -> Engine:  # type: ignore[assignment]
    return Engine(config=parse_config(cfg), state=make_state(nodes, pods), seed=7)


def test_fit_error_message_counts_reasons_sorted() -> None:
    e = engine(
        [
            node("n1", cpu="1", memory="1Gi"),
            node("n2", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
            node("n3", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
        ]
    )
    with pytest.raises(FitError) as info:
        e.schedulers["berth"].schedule(parse_pod(pod(cpu="2", memory="2Gi")))
    assert info.value.message == (
        "0/3 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "2 node(s) had untolerated taint(s). "
        # DefaultPreemption's PostFilter message: a request above allocatable and an
        # untolerated taint are UnschedulableAndUnresolvable, so no node is worth trying.
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_no_nodes() -> None:
    with pytest.raises(FitError, match="no nodes available to schedule pods"):
        engine([]).schedulers["berth"].schedule(parse_pod(pod()))


def test_first_failing_filter_wins_per_node() -> None:
    # Cordoned and too small: only NodeUnschedulable's reason is reported, as upstream.
    e = engine([node("n1", cpu="1", unschedulable=True)])
    with pytest.raises(FitError) as info:
        e.schedulers["berth"].schedule(parse_pod(pod(cpu="2")))
    assert info.value.message == (
        "0/1 nodes are available: 1 node(s) were unschedulable. "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )


def test_prefilter_restriction_reports_absent_nodes() -> None:
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": ["n1"]}
                            ]
                        }
                    ]
                }
            }
        }
    }
    e = engine([node("n1", cpu="1"), node("n2"), node("n3")])
    with pytest.raises(FitError) as info:
        e.schedulers["berth"].schedule(parse_pod(pod(cpu="2", spec=spec)))
    assert info.value.message == (
        "0/3 nodes are available: 1 Insufficient cpu, "
        "2 node(s) didn't satisfy plugin(s) [NodeAffinity]. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_picks_the_best_scored_node() -> None:
    e = engine([node("small", cpu="2"), node("big", cpu="64", memory="256Gi")])
    result = e.schedulers["berth"].schedule(parse_pod(pod(cpu="1", memory="1Gi")))
    assert result.node == "big"
    assert result.scores["big"] > result.scores["small"]


def test_ties_are_broken_at_random_but_reproducibly() -> None:
    nodes = [node(f"n{i}") for i in range(8)]

    def picks(seed: int) -> list[str]:
        e = Engine(config=parse_config({}), state=make_state(nodes), seed=seed)
        return [e.schedulers["berth"].schedule(parse_pod(pod())).node for _ in range(20)]

    assert picks(1) == picks(1)
    assert len(set(picks(1))) > 1


def test_percentage_limits_scored_nodes_and_rotates() -> None:
    nodes = [node(f"n{i:03d}") for i in range(200)]
    e = engine(nodes, percentageOfNodesToScore=50)
    sched = e.schedulers["berth"]
    first = sched.schedule(parse_pod(pod()))
    assert set(first.scores) == {f"n{i:03d}" for i in range(100)}
    second = sched.schedule(parse_pod(pod()))
    assert set(second.scores) == {f"n{i:03d}" for i in range(100, 200)}


def test_one_feasible_node_is_not_scored() -> None:
    e = engine([node("n1"), node("n2", unschedulable=True)])
    result = e.schedulers["berth"].schedule(parse_pod(pod()))
    assert result.node == "n1"
    assert result.scores == {}


def test_assumed_pods_count_for_the_next_decision() -> None:
    e = engine([node("n1", cpu="2")])
    sched = e.schedulers["berth"]
    first = parse_pod(pod(cpu="1500m"))
    assert sched.schedule(first).node == "n1"
    e.state.assume_pod(first, "n1")
    with pytest.raises(FitError, match="Insufficient cpu"):
        sched.schedule(parse_pod(pod(cpu="1")))
    e.state.forget_pod(first.key)
    assert sched.schedule(parse_pod(pod(cpu="1"))).node == "n1"


def test_take_feasible_matches_upstreams_scan_from_next_start_index() -> None:
    """upstream findNodesThatPassFilters walks the nodes from nextStartNodeIndex, wrapping,
    until it has numFeasibleNodesToFind, then advances the index by the nodes it processed.
    Berth filters all nodes at once and picks the same K; compare against that walk, over
    candidates in any order (the node tree's scan order is not slot order)."""
    import random

    import numpy as np

    rng = random.Random(3)
    sched = engine([node("n0")]).schedulers["berth"]
    for _ in range(400):
        total = rng.randrange(1, 300)
        slots = rng.sample(range(total * 2), total)  # slots with holes, in a scan order
        if rng.random() < 0.3:
            slots.sort()
        candidates = np.array(slots, dtype=np.intp)
        feasible_set = {s for s in slots if rng.random() < rng.choice([0.05, 0.5, 1.0])}
        # filters keep the scan order: the feasible nodes are a subsequence of the candidates
        feasible = np.array([s for s in slots if s in feasible_set], dtype=np.intp)
        sched.next_start_index = rng.randrange(total * 3)
        start_index = sched.next_start_index
        k = num_feasible_nodes_to_find(sched.framework.percentage_of_nodes_to_score, total)

        want: list[int] = []
        processed = total
        for j in range(total):
            slot = slots[(start_index + j) % total]
            if slot in feasible_set:
                if len(want) == k:  # feasible node k+1: cancel; it is not counted
                    processed = j
                    break
                want.append(slot)
        got = sched._take_feasible(feasible, candidates, total)
        assert got.tolist() == want
        assert sched.next_start_index == (start_index + processed) % total


def test_extension_points_are_timed_once_per_cycle_when_observed() -> None:
    """`Framework.observe` (berth run's scheduler_framework_extension_point_duration_seconds)
    sees each point of a decision once, with upstream's status names; PreFilter re-runs for
    single nodes (preemption, nominated pods) are not the cycle's and are not counted."""
    e = engine([node("a"), node("b", cpu="1")])
    sched = e.schedulers["berth"]
    seen: list[tuple[str, str]] = []
    sched.framework.observe = lambda point, code, seconds: seen.append((point, code))
    result = sched.schedule(parse_pod(pod(cpu="100m")))
    assert seen == [("PreFilter", "Success"), ("PreScore", "Success"), ("Score", "Success")]
    sched.framework.run_filters_on_node(parse_pod(pod()), 0)
    assert len(seen) == 3
    with pytest.raises(FitError):
        sched.schedule(parse_pod(pod(cpu="64")))
    assert seen[3:] == [("PreFilter", "Success"), ("PostFilter", "Unschedulable")]
    sched.framework.run_reserve(result.cycle, parse_pod(pod()), "a")
    assert seen[-1] == ("Reserve", "Success")
    sched.framework.observe = None
    sched.schedule(parse_pod(pod(cpu="100m")))
    assert len(seen) == 6


@pytest.mark.parametrize(
    ("nodes", "percentage", "fits", "seed"),
    [
        (400, None, 0.9, 1),  # K = 100 of 400 (the floor)
        (1500, None, 0.95, 2),  # adaptive: 38%
        (1500, 10, 0.5, 3),  # half the nodes too small: windows grow
        (1500, 10, 0.05, 4),  # few fit: the walk goes round
        (2000, 5, 0.3, 5),
        (150, 30, 0.7, 6),  # K + 1 above half the nodes: every node is filtered at once
    ],
)
def test_windowed_walk_matches_filtering_every_node(
    nodes: int, percentage: int | None, fits: float, seed: int
) -> None:
    """The windowed walk picks the same nodes, reports the same walked nodes and reasons, and
    advances the scan index as filtering every candidate and taking K does, decision after
    decision (each pod assumed on its node, so feasibility changes as nodes fill)."""
    import random

    rng = random.Random(seed)
    spec = []
    for i in range(nodes):
        big = rng.random() < fits
        taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
        taints = [taint] if rng.random() < 0.05 else None
        spec.append(
            node(
                f"n{i:04d}",
                cpu="4" if big else "500m",
                labels={"topology.kubernetes.io/zone": f"z{i % 3}"},
                taints=taints,
                unschedulable=rng.random() < 0.02,
            )
        )
    cfg: dict[str, Any] = {} if percentage is None else {"percentageOfNodesToScore": percentage}
    windowed, full = engine(spec, **cfg), engine(spec, **cfg)
    full.schedulers["berth"].windowed = False
    names = [f"n{i:04d}" for i in range(nodes)]

    def by_name(name: str) -> dict[str, Any]:
        return {"key": "metadata.name", "operator": "In", "values": [name]}

    for j in range(60):
        spec_pod = pod(name=f"p{j}", cpu=rng.choice(["1", "1500m", "2"]))
        if j % 7 == 3:  # a PreFilter result: only some nodes by name
            allowed = rng.sample(names, nodes // 3)
            spec_pod["spec"]["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchFields": [by_name(n)]} for n in allowed]
                    }
                }
            }
        outcomes = []
        for e in (windowed, full):
            sched = e.schedulers["berth"]
            p = parse_pod(spec_pod)
            try:
                result = sched.schedule(p)
            except FitError as fit:
                outcomes.append(("unschedulable", fit.message, sched.next_start_index))
                continue
            walked = result.diagnosis.walked
            outcomes.append(
                (
                    result.node,
                    sorted(result.scores),
                    sched.next_start_index,
                    None if walked is None else walked.tolist(),
                    result.diagnosis.walked_statuses(),
                )
            )
            e.state.assume_pod(p, result.node)
        assert outcomes[0] == outcomes[1], f"pod {j}"
