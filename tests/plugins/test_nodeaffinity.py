"""NodeAffinity: nodeSelector, required and preferred terms (node_affinity_test.go)."""

from typing import Any

import pytest

from berth.framework.status import Code
from tests.builders import PluginHarness, make_state, node, pod

REASON = "node(s) didn't match Pod's node affinity/selector"


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
            }
        }
    }


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


@pytest.mark.parametrize(
    ("name", "spec", "labels", "fits"),
    [
        ("no selector", {}, {}, True),
        ("nodeSelector matches", {"nodeSelector": {"foo": "bar"}}, {"foo": "bar"}, True),
        ("nodeSelector differs", {"nodeSelector": {"foo": "bar"}}, {"foo": "baz"}, False),
        ("nodeSelector key missing", {"nodeSelector": {"foo": "bar"}}, {}, False),
        (
            "In",
            required({"matchExpressions": [expr("foo", "In", "bar", "value2")]}),
            {"foo": "bar"},
            True,
        ),
        (
            "Gt",
            required({"matchExpressions": [expr("kernel-version", "Gt", "0204")]}),
            {"kernel-version": "0206"},
            True,
        ),
        (
            "NotIn",
            required({"matchExpressions": [expr("mem-type", "NotIn", "DDR", "DDR2")]}),
            {"mem-type": "DDR3"},
            True,
        ),
        (
            "Exists",
            required({"matchExpressions": [expr("GPU", "Exists")]}),
            {"GPU": "NVIDIA-GRID-K1"},
            True,
        ),
        (
            "DoesNotExist fails on present label",
            required({"matchExpressions": [expr("GPU", "DoesNotExist")]}),
            {"GPU": "x"},
            False,
        ),
        ("empty nodeSelectorTerms matches nothing", required(), {"foo": "bar"}, False),
        ("empty term matches nothing", required({}), {"foo": "bar"}, False),
        (
            "terms are ORed",
            required(
                {"matchExpressions": [expr("foo", "In", "x")]},
                {"matchExpressions": [expr("diffkey", "In", "wrong", "value2")]},
                {"matchExpressions": [expr("foo", "In", "bar")]},
            ),
            {"foo": "bar"},
            True,
        ),
        (
            "expressions in a term are ANDed",
            required({"matchExpressions": [expr("foo", "In", "bar"), expr("GPU", "Exists")]}),
            {"foo": "bar"},
            False,
        ),
        (
            "nodeSelector and affinity must both match",
            {
                "nodeSelector": {"foo": "bar"},
                **required({"matchExpressions": [expr("foo", "In", "bar")]}),
            },
            {"foo": "bar"},
            True,
        ),
        (
            "matchFields by name",
            required({"matchFields": [expr("metadata.name", "In", "n1")]}),
            {},
            True,
        ),
    ],
)
def test_filter(name: str, spec: dict[str, Any], labels: dict[str, str], fits: bool) -> None:
    h = PluginHarness("NodeAffinity", make_state([node("n1", labels=labels)]))
    status = h.filter(pod(spec=spec))["n1"]
    assert status.ok is fits, name
    if not fits:
        assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        assert status.reasons == (REASON,)


def test_match_fields_prefilter_restricts_nodes() -> None:
    h = PluginHarness("NodeAffinity", make_state([node("n1"), node("n2")]))
    result = h.filter(pod(spec=required({"matchFields": [expr("metadata.name", "In", "n2")]})))
    assert result["n2"].ok
    assert not result["n1"].ok


def test_conflicting_match_fields() -> None:
    h = PluginHarness("NodeAffinity", make_state([node("n1")]))
    spec = required(
        {
            "matchFields": [
                expr("metadata.name", "In", "n1"),
                expr("metadata.name", "In", "n2"),
            ]
        }
    )
    assert h.reasons(pod(spec=spec)) == {"n1": ["pod affinity terms conflict"]}


def test_added_affinity_is_enforced() -> None:
    args = {
        "addedAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [expr("pool", "In", "berth")]}]
            }
        }
    }
    state = make_state([node("n1", labels={"pool": "berth"}), node("n2")])
    h = PluginHarness("NodeAffinity", state, args)
    assert h.reasons(pod()) == {"n2": ["node(s) didn't match scheduler-enforced node affinity"]}


def preferred(*weighted: tuple[int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "affinity": {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": w, "preference": {"matchExpressions": e}} for w, e in weighted
                ]
            }
        }
    }


def test_score_sums_matching_weights_and_normalises() -> None:
    # node_affinity_test.go "all nodes are same priority as NodeAffinity is nil" and
    # "the node that satisfies the most preferences gets the highest score".
    state = make_state(
        [
            node("n1", labels={"foo": "bar"}),
            node("n2", labels={"foo": "bar", "key": "value"}),
            node("n3", labels={"az": "az1"}),
        ]
    )
    h = PluginHarness("NodeAffinity", state)
    assert h.score(pod()) == {}  # PreScore: Skip without preferred terms
    spec = preferred(
        (2, [expr("foo", "In", "bar")]),
        (4, [expr("key", "In", "value")]),
        (5, [expr("az", "In", "az9")]),
    )
    assert h.score(pod(spec=spec)) == {"n1": 33, "n2": 100, "n3": 0}


def test_score_all_zero_stays_zero() -> None:
    h = PluginHarness("NodeAffinity", make_state([node("n1"), node("n2")]))
    spec = preferred((3, [expr("nothing", "Exists")]))
    assert h.score(pod(spec=spec)) == {"n1": 0, "n2": 0}
