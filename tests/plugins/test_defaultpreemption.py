"""DefaultPreemption, table-driven from upstream's default_preemption_test.go where the rows fit.

Rows read like upstream's: the preemptor, the pods already placed, the nodes, the filter status
of each node (what PostFilter is given), and the nominated node, victims or message wanted.
Sizes and priorities are upstream's: small/medium/large/veryLarge = 100m/200m/300m/500m cpu.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from berth.config import parse_config
from berth.config.errors import ConfigError
from berth.engine import Engine
from berth.framework.algorithm import FitError
from berth.framework.plugin import CycleState
from berth.framework.ports import Ports
from berth.framework.status import Code, Status
from berth.objects import parse_pod
from berth.plugins.defaultpreemption import (
    DefaultPreemption,
    DefaultPreemptionArgs,
)
from tests.builders import make_state, node, pod

NEG, LOW, MID, HIGH, VERY_HIGH = -100, 0, 100, 1000, 10000
SMALL, MEDIUM, LARGE, VERY_LARGE = "100m", "200m", "300m", "500m"
MEM = {SMALL: "100", MEDIUM: "200", LARGE: "300", VERY_LARGE: "500", "1": "100"}
VIOLATING = {"test.kubernetes.io/is-violating-pdb": "violating"}
NON_VIOLATING = {"test.kubernetes.io/is-violating-pdb": "non-violating"}


def placed(
    name: str,
    on: str,
    *,
    priority: int = 0,
    size: str | None = None,
    start: int | None = 0,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    raw = pod(
        name,
        node_name=on,
        priority=priority,
        cpu=size,
        memory=MEM[size] if size else None,
        labels=labels,
    )
    if start is not None:  # upstream's epochTime + start seconds
        raw["status"] = {"startTime": f"1970-01-01T00:00:{start:02d}+00:00"}
    return raw


def preemptor(
    name: str = "p", *, priority: int = 0, size: str | None = None, **spec: Any
) -> dict[str, Any]:
    return pod(name, priority=priority, cpu=size, memory=MEM[size] if size else None, spec=spec)


def pdb(name: str, labels: dict[str, str], allowed: int) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": labels}},
        "status": {"disruptionsAllowed": allowed},
    }


def one_pod_node(name: str) -> dict[str, Any]:
    return node(name, pods=1)


def sized_node(name: str) -> dict[str, Any]:
    return node(name, cpu=VERY_LARGE, memory="500")


@dataclass
class FakeDiagnosis:
    """What PostFilter reads from the Diagnosis: each node's filter status."""

    statuses: dict[str, Status] = field(default_factory=dict)

    def node_statuses(self) -> dict[str, Status]:
        return self.statuses


def engine(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    *,
    pdbs: list[dict[str, Any]] | None = None,
    args: dict[str, Any] | None = None,
) -> Engine:
    cfg: dict[str, Any] = {}
    if args is not None:
        cfg = {"profiles": [{"pluginConfig": [{"name": "DefaultPreemption", "args": args}]}]}
    ports = Ports()
    for raw in pdbs or []:
        ports.disruption_budgets.upsert(raw)
    return Engine(config=parse_config(cfg), state=make_state(nodes, pods), seed=1, ports=ports)


def plugin_of(e: Engine) -> DefaultPreemption:
    (p,) = [p for p in e.schedulers["berth"].framework.post_filter if p.name == "DefaultPreemption"]
    assert isinstance(p, DefaultPreemption)
    return p


U = Status(Code.UNSCHEDULABLE)
UU = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


# ----- TestPostFilter ---------------------------------------------------------------------------
POST_FILTER_ROWS = [
    pytest.param(
        preemptor(priority=HIGH),
        [placed("p1", "node1")],
        [one_pod_node("node1")],
        {"node1": U},
        None,
        ("node1", ["default/p1"], Code.SUCCESS, ""),
        id="pod with higher priority can be made schedulable",
    ),
    pytest.param(
        preemptor(),
        [placed("p1", "node1")],
        [one_pod_node("node1")],
        {"node1": U},
        None,
        (
            "",
            [],
            Code.UNSCHEDULABLE,
            "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
        ),
        id="pod with tied priority is still unschedulable",
    ),
    pytest.param(
        preemptor(priority=HIGH),
        [placed("p1", "node1")],
        [one_pod_node("node1")],
        {"node1": UU},
        None,
        (
            "",
            [],
            Code.UNSCHEDULABLE,
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
        ),
        id="preemption should respect filteredNodesStatuses",
    ),
    pytest.param(
        preemptor(priority=HIGH),
        [placed("p1", "node1")],
        [one_pod_node("node1")],
        {},
        None,
        (
            "",
            [],
            Code.UNSCHEDULABLE,
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
        ),
        id="an absent node status means UnschedulableAndUnresolvable",
    ),
    pytest.param(
        preemptor(priority=MID),
        [placed("p1", "node1", priority=HIGH), placed("p2", "node2", priority=LOW)],
        [one_pod_node("node1"), one_pod_node("node2")],
        {"node1": U, "node2": U},
        None,
        ("node2", ["default/p2"], Code.SUCCESS, ""),
        id="pod can be made schedulable on one node",
    ),
    pytest.param(
        preemptor(priority=VERY_HIGH),
        [
            placed("p1", "node1", priority=HIGH, labels=NON_VIOLATING),
            placed("p2", "node1", priority=LOW, labels=VIOLATING),
            placed("p3", "node2", priority=MID, labels=VIOLATING),
        ],
        [one_pod_node("node1"), one_pod_node("node2")],
        {"node1": U, "node2": U},
        [pdb("violating-pdb", VIOLATING, 0), pdb("non-violating-pdb", NON_VIOLATING, 2**31 - 1)],
        ("node2", ["default/p3"], Code.SUCCESS, ""),
        id="pod can be made schedulable on minHighestPriority node",
    ),
    pytest.param(
        preemptor(priority=HIGH, size=LARGE),
        [placed("p1", "node1"), placed("p2", "node2")],
        [node("node1", cpu="200m", memory="400"), node("node2", cpu="200m", memory="400")],
        {"node1": U, "node2": U},
        None,
        ("", [], Code.UNSCHEDULABLE, "preemption: 0/2 nodes are available: 2 Insufficient cpu."),
        id="no candidate nodes found, no enough resource after removing low priority pods",
    ),
    pytest.param(
        preemptor(priority=HIGH, size=LARGE),
        [placed("p1", "node1", priority=HIGH), placed("p2", "node2")],
        [node("node1", cpu="200m", memory="400"), node("node2", cpu="200m", memory="400")],
        {"node1": U, "node2": U},
        None,
        (
            "",
            [],
            Code.UNSCHEDULABLE,
            "preemption: 0/2 nodes are available: 1 Insufficient cpu, "
            "1 No preemption victims found for incoming pod.",
        ),
        id="no candidate nodes found with mixed reasons",
    ),
    pytest.param(
        preemptor(priority=HIGH, size=LARGE),
        [placed("p1", "node1"), placed("p2", "node2")],
        [
            node("node1", cpu="200m", memory="400"),
            node("node2", cpu="200m", memory="400"),
            node("node3", cpu="200m", memory="400"),
        ],
        {"node1": U, "node2": U, "node3": UU},
        None,
        (
            "",
            [],
            Code.UNSCHEDULABLE,
            # upstream sorts the "count reason" strings as a whole
            "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
            "2 Insufficient cpu.",
        ),
        id="no candidate nodes found with mixed reason, 2 nodes not tried",
    ),
    pytest.param(
        preemptor(priority=HIGH, preemptionPolicy="Never"),
        [placed("p1", "node1")],
        [one_pod_node("node1")],
        {"node1": U},
        None,
        ("", [], Code.UNSCHEDULABLE, "preemption: not eligible due to preemptionPolicy=Never."),
        id="preemptionPolicy Never",
    ),
]


@pytest.mark.parametrize(("raw", "pods", "nodes", "statuses", "pdbs", "want"), POST_FILTER_ROWS)
def test_post_filter(
    raw: dict[str, Any],
    pods: list[dict[str, Any]],
    nodes: list[dict[str, Any]],
    statuses: dict[str, Status],
    pdbs: list[dict[str, Any]] | None,
    want: tuple[str, list[str], Code, str],
) -> None:
    e = engine(nodes, pods, pdbs=pdbs)
    pl = plugin_of(e)
    before = {k: (e.state.node_of(k), e.state.is_assumed(k)) for k in e.state.pods}
    result, status = pl.post_filter(CycleState(), parse_pod(raw), FakeDiagnosis(statuses))
    node_name, victims, code, message = want
    if code == Code.SUCCESS or node_name or message.startswith("preemption: 0/"):
        assert result is not None
        assert result.nominated_node == node_name
        assert [v.key for v in result.victims] == victims
    else:
        assert result is None  # not eligible: leave any nomination alone
    assert status.code == code
    assert status.message == message
    # The dry runs never leave the state modified.
    assert {k: (e.state.node_of(k), e.state.is_assumed(k)) for k in e.state.pods} == before


# ----- TestSelectBestCandidate / pickOneNodeForPreemption ---------------------------------------
PICK_ROWS = [
    pytest.param(
        [("m1.1", "machine1", MID, LARGE, 0), ("m2.1", "machine2", MID, LARGE, 0)],
        ["machine1", "machine2"],
        LARGE,
        {"machine1", "machine2"},
        id="a pod that fits on both nodes when lower priority pods are preempted",
    ),
    pytest.param(
        [
            ("m1.1", "machine1", MID, MEDIUM, 0),
            ("m1.2", "machine1", MID, LARGE, 0),
            ("m2.1", "machine2", MID, MEDIUM, 0),
            ("m2.2", "machine2", LOW, MEDIUM, 0),
            ("m3.1", "machine3", LOW, MEDIUM, 0),
            ("m3.2", "machine3", LOW, MEDIUM, 0),
        ],
        ["machine1", "machine2", "machine3"],
        VERY_LARGE,
        {"machine3"},
        id="node with min highest priority pod is picked",
    ),
    pytest.param(
        [
            ("m1.1", "machine1", MID, MEDIUM, 0),
            ("m1.2", "machine1", MID, LARGE, 0),
            ("m2.1", "machine2", MID, LARGE, 0),
            ("m2.2", "machine2", LOW, MEDIUM, 0),
            ("m3.1", "machine3", MID, MEDIUM, 0),
            ("m3.2", "machine3", MID, MEDIUM, 0),
        ],
        ["machine1", "machine2", "machine3"],
        VERY_LARGE,
        {"machine2"},
        id="when highest priorities are the same, minimum sum of priorities is picked",
    ),
    pytest.param(
        [
            ("m1.1", "machine1", MID, SMALL, 0),
            ("m1.2", "machine1", NEG, SMALL, 0),
            ("m1.3", "machine1", MID, SMALL, 0),
            ("m1.4", "machine1", NEG, SMALL, 0),
            ("m2.1", "machine2", MID, LARGE, 0),
            ("m2.2", "machine2", NEG, MEDIUM, 0),
            ("m3.1", "machine3", MID, MEDIUM, 0),
            ("m3.2", "machine3", NEG, SMALL, 0),
            ("m3.3", "machine3", LOW, SMALL, 0),
        ],
        ["machine1", "machine2", "machine3"],
        VERY_LARGE,
        {"machine2"},
        id="when highest priority and sum are the same, minimum number of pods is picked",
    ),
    pytest.param(
        [
            ("m1.1", "machine1", MID, SMALL, 0),
            ("m1.2", "machine1", NEG, SMALL, 0),
            ("m1.3", "machine1", NEG, SMALL, 0),
            ("m2.1", "machine2", MID, LARGE, 0),
            ("m2.2", "machine2", NEG, MEDIUM, 0),
            ("m3.1", "machine3", MID, MEDIUM, 0),
            ("m3.2", "machine3", NEG, SMALL, 0),
            ("m3.3", "machine3", LOW, SMALL, 0),
        ],
        ["machine1", "machine2", "machine3"],
        VERY_LARGE,
        {"machine2"},
        id="sum of adjusted priorities is considered",
    ),
    pytest.param(
        [
            ("m1.1", "machine1", MID, MEDIUM, 1),
            ("m1.2", "machine1", MID, LARGE, 1),
            ("m2.1", "machine2", MID, MEDIUM, 2),
            ("m2.2", "machine2", MID, LARGE, 3),
            ("m3.1", "machine3", MID, MEDIUM, 4),
            ("m3.2", "machine3", MID, LARGE, 5),
        ],
        ["machine1", "machine2", "machine3"],
        VERY_LARGE,
        {"machine3"},
        id="same priority and victims, the latest start time of the earliest victim wins",
    ),
    pytest.param(
        [
            ("m1.1", "machine1", MID, MEDIUM, 1),
            ("m1.2", "machine1", HIGH, LARGE, 5),
            ("m2.1", "machine2", MID, MEDIUM, 2),
            ("m2.2", "machine2", HIGH, LARGE, 3),
        ],
        ["machine1", "machine2"],
        VERY_LARGE,
        {"machine1"},
        id="start time is compared among the highest-priority victims only",
    ),
]


@pytest.mark.parametrize(("pods", "nodes", "size", "want"), PICK_ROWS)
def test_pick_one_node_for_preemption(
    pods: list[tuple[str, str, int, str, int]], nodes: list[str], size: str, want: set[str]
) -> None:
    e = engine(
        [sized_node(n) for n in nodes],
        [placed(n, on, priority=prio, size=s, start=start) for n, on, prio, s, start in pods],
    )
    with pytest.raises(FitError) as info:
        e.schedulers["berth"].schedule(parse_pod(preemptor(priority=VERY_HIGH, size=size)))
    assert info.value.nominated_node in want


def test_a_pod_that_fits_is_not_preempting() -> None:
    e = engine(
        [sized_node("machine1"), sized_node("machine2"), sized_node("machine3")],
        [
            placed("m1.1", "machine1", priority=MID, size=LARGE),
            placed("m2.1", "machine2", priority=MID, size=LARGE),
        ],
    )
    result = e.schedulers["berth"].schedule(parse_pod(preemptor(priority=HIGH, size=LARGE)))
    assert result.node == "machine3"


# ----- SelectVictimsOnNode: reprieves -----------------------------------------------------------
VICTIM_ROWS = [
    pytest.param(
        [("a", LOW, SMALL, 0), ("b", MID, SMALL, 0), ("c", LOW, LARGE, 0)],
        LARGE,
        [],
        ["default/c"],
        0,
        id="the largest lower-priority pod alone is evicted; the others are reprieved",
    ),
    pytest.param(
        [("a", LOW, MEDIUM, 0), ("b", MID, MEDIUM, 0), ("c", NEG, SMALL, 0)],
        LARGE,
        [],
        ["default/a", "default/c"],
        0,
        id="higher priority victims are reprieved first",
    ),
    pytest.param(
        [("a", LOW, MEDIUM, 1), ("b", LOW, MEDIUM, 2)],
        LARGE,
        [],
        ["default/b"],
        0,
        id="equal priority: the pod started earlier is more important and reprieved",
    ),
    pytest.param(
        [("a", LOW, MEDIUM, 1), ("b", LOW, MEDIUM, 2)],
        LARGE,
        [pdb("pdb", VIOLATING, 0)],
        ["default/b"],
        1,
        id="PDB-violating victims are reprieved first and counted",
    ),
    pytest.param(
        [("a", LOW, MEDIUM, 1), ("b", LOW, MEDIUM, 2)],
        LARGE,
        [pdb("pdb", VIOLATING, 1)],
        ["default/a"],
        0,
        # the budget is spent in importance order: a uses it, so b would violate it and is
        # reprieved first; a is then evicted within the budget
        id="a PDB allowing one disruption: the less important pod is the violating one",
    ),
]


@pytest.mark.parametrize(("pods", "size", "pdbs", "victims", "violations"), VICTIM_ROWS)
def test_select_victims_on_node(
    pods: list[tuple[str, int, str, int]],
    size: str,
    pdbs: list[dict[str, Any]],
    victims: list[str],
    violations: int,
) -> None:
    e = engine(
        [sized_node("n1")],
        [placed(n, "n1", priority=p, size=s, start=t, labels=VIOLATING) for n, p, s, t in pods],
        pdbs=pdbs,
    )
    e.state.assume_pod(e.state.pods["default/a"], "n1")  # assumed pods stay assumed
    order = list(e.state.node_pods[0])
    pl = plugin_of(e)
    got, n, status = pl.select_victims_on_node(
        parse_pod(preemptor(priority=HIGH, size=size)), 0, pl.pdbs()
    )
    assert status.ok
    assert [v.key for v in got] == victims
    assert n == violations
    assert list(e.state.node_pods[0]) == order
    assert e.state.is_assumed("default/a")
    assert int(e.state.requested[0, 0]) == sum(int(s.removesuffix("m")) for _, _, s, _ in pods)


# ----- the engine: a higher-priority pod preempts, an equal one does not ------------------------
def test_engine_higher_priority_preempts_on_full_node() -> None:
    e = engine(
        [node("n1", cpu="1"), node("n2", cpu="1")],
        [
            placed("low-1", "n1", priority=LOW, size=VERY_LARGE),
            placed("low-2", "n1", priority=LOW, size=VERY_LARGE),
            placed("mid", "n2", priority=MID, size=VERY_LARGE),
            placed("mid-2", "n2", priority=MID, size=VERY_LARGE),
        ],
    )
    with pytest.raises(FitError) as info:
        e.schedulers["berth"].schedule(parse_pod(preemptor("big", priority=MID, size="1")))
    fit = info.value
    assert fit.nominated_node == "n1"
    assert sorted(v.key for v in fit.victims) == ["default/low-1", "default/low-2"]
    assert fit.message == "0/2 nodes are available: 2 Insufficient cpu."
    # The state is untouched: evicting is the front's job.
    assert sorted(e.state.node_pods[0]) == ["default/low-1", "default/low-2"]


def test_engine_equal_priority_does_not_preempt() -> None:
    e = engine(
        [node("n1", cpu="1")],
        [placed("a", "n1", priority=MID, size="1")],
    )
    with pytest.raises(FitError) as info:
        e.schedulers["berth"].schedule(parse_pod(preemptor("b", priority=MID, size="1")))
    assert info.value.nominated_node == ""
    assert info.value.victims == ()
    assert info.value.message == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


def test_nominated_pod_keeps_the_room_from_lower_priority_pods() -> None:
    e = engine([node("n1", cpu="1")], [])
    high = parse_pod(preemptor("high", priority=HIGH, size="1"))
    e.handle.ports.nominator.add(high, "n1")
    with pytest.raises(FitError) as info:
        e.schedulers["berth"].schedule(parse_pod(preemptor("low", priority=LOW, size=SMALL)))
    assert info.value.diagnosis.node_statuses()["n1"].reasons == ("Insufficient cpu",)
    assert e.state.node_pods[0] == {}  # the nominated pod was only counted for the check
    # Equal or higher priority pods are not held back, and the nominee itself fits.
    assert e.schedulers["berth"].schedule(parse_pod(preemptor("h2", priority=HIGH))).node == "n1"
    assert e.schedulers["berth"].schedule(high).node == "n1"


def test_nominated_node_with_terminating_victims_waits() -> None:
    victim = placed("v", "n1", priority=LOW, size="1")
    victim["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    victim["status"]["conditions"] = [
        {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
    ]
    e = engine([node("n1", cpu="1"), node("n2", cpu="1")], [victim, placed("w", "n2", size="1")])
    raw = preemptor("p", priority=HIGH, size="1")
    raw["status"] = {"nominatedNodeName": "n1"}
    with pytest.raises(FitError) as info:
        e.schedulers["berth"].schedule(parse_pod(raw))
    assert info.value.post_filter is None
    assert info.value.message.endswith(
        "preemption: not eligible due to a terminating pod on the nominated node."
    )


def test_num_candidates() -> None:
    pl = plugin_of(engine([node("n")], [], args={"minCandidateNodesAbsolute": 3}))
    assert [pl.num_candidates(n) for n in (1, 5, 100)] == [1, 3, 10]


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (
            {"minCandidateNodesPercentage": -1},
            "minCandidateNodesPercentage: Invalid value: -1: not in valid range [0, 100]",
        ),
        (
            {"minCandidateNodesPercentage": 101},
            "minCandidateNodesPercentage: Invalid value: 101: not in valid range [0, 100]",
        ),
        (
            {"minCandidateNodesAbsolute": -1},
            "minCandidateNodesAbsolute: Invalid value: -1: not in valid range [0, inf)",
        ),
        (
            {"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0},
            "minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time "
            "as minCandidateNodesAbsolute",
        ),
    ],
)
def test_args_validation(args: dict[str, Any], want: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"profiles": [{"pluginConfig": [{"name": "DefaultPreemption", "args": args}]}]}
        )
    assert info.value.problems == [f"profiles[0].pluginConfig[0].args.{want}"]


def test_args_defaults() -> None:
    assert DefaultPreemptionArgs() == DefaultPreemptionArgs(
        minCandidateNodesPercentage=10, minCandidateNodesAbsolute=100
    )
