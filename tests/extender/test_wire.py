"""The wire types: upstream's exact Go field names out, any case in (Go decodes
case-insensitively), nulls where Go writes nil."""

from __future__ import annotations

import orjson
import pytest

from berth.extender.wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
    ExtenderPreemptionArgs,
    ExtenderPreemptionResult,
    HostPriority,
    MetaVictims,
    WireError,
    get_field,
    host_priority_list,
)
from tests.builders import node, pod


def test_filter_result_has_exactly_upstreams_keys() -> None:
    result = ExtenderFilterResult(
        node_names=["a"], failed_nodes={"b": "Insufficient cpu"}, error=""
    ).to_wire()
    assert list(result) == [
        "Nodes",
        "NodeNames",
        "FailedNodes",
        "FailedAndUnresolvableNodes",
        "Error",
    ]
    assert result["Nodes"] is None
    again = ExtenderFilterResult.from_wire(orjson.loads(orjson.dumps(result)))
    assert again.node_names == ["a"]
    assert again.failed_nodes == {"b": "Insufficient cpu"}


def test_args_round_trip_and_any_case() -> None:
    p, n = pod("p"), node("n1")
    sent = {"pod": p, "NODES": {"metadata": {"resourceVersion": "7"}, "items": [n]}}
    args = ExtenderArgs.from_wire(sent)
    assert args.pod == p
    assert args.nodes is not None and args.nodes.items == [n]
    assert args.node_names is None
    wire = args.to_wire()
    assert list(wire) == ["Pod", "Nodes", "NodeNames"]
    assert wire["Nodes"] == {"metadata": {"resourceVersion": "7"}, "items": [n]}
    names = ExtenderArgs.from_wire({"Pod": p, "Nodes": None, "nodenames": ["a", "b"]})
    assert names.nodes is None and names.node_names == ["a", "b"]


def test_exact_key_wins_over_other_case() -> None:
    assert get_field({"error": "lower", "Error": "exact"}, "Error") == "exact"
    assert get_field({"eRrOr": "x"}, "Error") == "x"


def test_host_priority_and_binding() -> None:
    assert host_priority_list([HostPriority("a", 7)]) == [{"Host": "a", "Score": 7}]
    assert HostPriority.from_wire({"host": "a", "SCORE": 3}) == HostPriority("a", 3)
    b = ExtenderBindingArgs.from_wire(
        {"podname": "p", "PodNamespace": "ns", "poduid": "u", "NODE": "n"}
    )
    assert b.to_wire() == {"PodName": "p", "PodNamespace": "ns", "PodUID": "u", "Node": "n"}
    assert ExtenderBindingResult("boom").to_wire() == {"Error": "boom"}


def test_preemption_both_forms() -> None:
    p = pod("p")
    victim = pod("v")
    full = ExtenderPreemptionArgs.from_wire(
        {"Pod": p, "NodeNameToVictims": {"n1": {"Pods": [victim], "NumPDBViolations": 1}}}
    )
    assert full.victims == {"n1": MetaVictims(uids=["uid-v"], num_pdb_violations=1)}
    assert full.pods_by_uid == {"uid-v": victim}
    meta = ExtenderPreemptionArgs.from_wire(
        {"pod": p, "nodeNameToMetaVictims": {"n1": {"pods": [{"uid": "u1"}]}}}
    )
    assert meta.victims == {"n1": MetaVictims(uids=["u1"], num_pdb_violations=0)}
    out = ExtenderPreemptionResult(meta.victims).to_wire()
    assert out == {
        "NodeNameToMetaVictims": {"n1": {"Pods": [{"UID": "u1"}], "NumPDBViolations": 0}}
    }


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"Nodes": {"items": []}},
        {"Pod": "x"},
        {"Pod": {}, "NodeNames": "a"},
        {"Pod": {}, "Nodes": {"items": ["x"]}},
    ],
)
def test_wrong_shapes_are_wire_errors(body: object) -> None:
    with pytest.raises(WireError):
        ExtenderArgs.from_wire(body)
