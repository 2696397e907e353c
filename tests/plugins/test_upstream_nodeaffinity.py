"""NodeAffinity scoring rows from upstream's node_affinity_test.go TestNodeAffinityPriority
(kubernetes/kubernetes pkg/scheduler/framework/plugins/nodeaffinity), including addedAffinity."""

from typing import Any

import pytest

from tests.builders import PluginHarness, make_state, node, pod

LABEL1 = {"foo": "bar"}
LABEL2 = {"key": "value"}
LABEL3 = {"az": "az1"}
LABEL4 = {"abc": "az11", "def": "az22"}
LABEL5 = {"foo": "bar", "key": "value", "az": "az1"}


def is_in(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": [value]}


def preferred(*weighted: tuple[int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": w, "preference": {"matchExpressions": e}} for w, e in weighted
        ]
    }


AFFINITY1 = preferred((2, [is_in("foo", "bar")]))
AFFINITY2 = preferred(
    (2, [is_in("foo", "bar")]),
    (4, [is_in("key", "value")]),
    (5, [is_in("foo", "bar"), is_in("key", "value"), is_in("az", "az1")]),
)


@pytest.mark.parametrize(
    ("name", "affinity", "nodes", "args", "want"),
    [
        (
            "no node matches preferred scheduling requirements in NodeAffinity of pod so all "
            "nodes' priority is zero",
            AFFINITY1,
            {"node1": LABEL4, "node2": LABEL2, "node3": LABEL3},
            {},
            {"node1": 0, "node2": 0, "node3": 0},
        ),
        (
            "only node1 matches the preferred scheduling requirements of pod",
            AFFINITY1,
            {"node1": LABEL1, "node2": LABEL2, "node3": LABEL3},
            {},
            {"node1": 100, "node2": 0, "node3": 0},
        ),
        (
            "all nodes matches the preferred scheduling requirements of pod but with different "
            "priorities",
            AFFINITY2,
            {"node1": LABEL1, "node5": LABEL5, "node2": LABEL2},
            {},
            {"node1": 18, "node5": 100, "node2": 36},
        ),
        (
            "added affinity",
            None,
            {"node1": LABEL1, "node2": LABEL2},
            {"addedAffinity": AFFINITY1},
            {"node1": 100, "node2": 0},
        ),
        (
            "added affinity and pod has default affinity",
            AFFINITY1,
            {"node1": LABEL1, "node2": LABEL2, "node3": LABEL5},
            {"addedAffinity": preferred((3, [is_in("key", "value")]))},
            {"node1": 40, "node2": 60, "node3": 100},
        ),
    ],
)
def test_node_affinity_priority(
    name: str,
    affinity: dict[str, Any] | None,
    nodes: dict[str, dict[str, str]],
    args: dict[str, Any],
    want: dict[str, int],
) -> None:
    state = make_state([node(n, labels=labels) for n, labels in nodes.items()])
    h = PluginHarness("NodeAffinity", state, args)
    spec = {"affinity": {"nodeAffinity": affinity}} if affinity else {}
    assert h.score(pod(spec=spec)) == want, name


def test_skip_in_prescore_when_node_affinity_is_nil() -> None:
    """ "Skip is returned in PreScore when NodeAffinity is nil": the plugin contributes nothing."""
    h = PluginHarness("NodeAffinity", make_state([node("node1", labels=LABEL1)]))
    assert h.score(pod()) == {}
