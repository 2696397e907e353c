"""The node tree and the scan order, as upstream's pkg/scheduler/backend/cache/node_tree_test.go
(its nodes and row names), then the snapshot's rebuild rule (cache.go UpdateSnapshot)."""

from __future__ import annotations

import pytest

from berth.objects.node import NodeInfo
from berth.state.cluster import ClusterState
from berth.state.nodetree import (
    BETA_REGION,
    BETA_ZONE,
    TOPOLOGY_REGION,
    TOPOLOGY_ZONE,
    NodeTree,
    zone_key,
)

R1, R2 = "region-1", "region-2"
# upstream's allNodes: node-i has these labels
ALL_NODES: list[dict[str, str]] = [
    {},  # node-0: no region-zone label
    {TOPOLOGY_REGION: R1},  # node-1: region only
    {TOPOLOGY_ZONE: "zone-2"},  # node-2: zone only
    {TOPOLOGY_REGION: R1, TOPOLOGY_ZONE: "zone-2"},
    {TOPOLOGY_REGION: R1, TOPOLOGY_ZONE: "zone-2"},
    {TOPOLOGY_REGION: R1, TOPOLOGY_ZONE: "zone-3"},  # node-5: another zone, same region
    {TOPOLOGY_REGION: R2, TOPOLOGY_ZONE: "zone-2"},  # node-6: a new region and zone
    {TOPOLOGY_REGION: R2, TOPOLOGY_ZONE: "zone-2"},
    {TOPOLOGY_REGION: R2, TOPOLOGY_ZONE: "zone-2"},
    {  # node-9: the topology labels and the deprecated ones
        TOPOLOGY_REGION: R2,
        TOPOLOGY_ZONE: "zone-2",
        BETA_REGION: R2,
        BETA_ZONE: "zone-2",
    },
    {BETA_REGION: R2, BETA_ZONE: "zone-3"},  # node-10: only the deprecated labels
]


def add(nt: NodeTree, nodes: list[int]) -> None:
    for i in nodes:
        nt.add(i, zone_key(ALL_NODES[i]))


def tree_of(nt: NodeTree) -> dict[str, list[str]]:
    """upstream verifyNodeTree: the tree by zone, its zones and node count agreeing."""
    tree = {z: [f"node-{i}" for i in slots] for z, slots in nt.tree.items()}
    assert sorted(nt.zones) == sorted(tree)
    assert nt.num_nodes == sum(len(v) for v in tree.values())
    return tree


@pytest.mark.parametrize(
    ("name", "nodes_to_add", "expected"),
    [
        ("single node no labels", [0], {"": ["node-0"]}),
        ("same node specified twice", [0, 0], {"": ["node-0"]}),
        (
            "mix of nodes with and without proper labels",
            [0, 1, 2, 3],
            {
                "": ["node-0"],
                "region-1:\x00:": ["node-1"],
                ":\x00:zone-2": ["node-2"],
                "region-1:\x00:zone-2": ["node-3"],
            },
        ),
        (
            "mix of nodes with and without proper labels and some zones with multiple nodes",
            list(range(7)),
            {
                "": ["node-0"],
                "region-1:\x00:": ["node-1"],
                ":\x00:zone-2": ["node-2"],
                "region-1:\x00:zone-2": ["node-3", "node-4"],
                "region-1:\x00:zone-3": ["node-5"],
                "region-2:\x00:zone-2": ["node-6"],
            },
        ),
        (
            "nodes also using deprecated zone/region label",
            [9, 10],
            {"region-2:\x00:zone-2": ["node-9"], "region-2:\x00:zone-3": ["node-10"]},
        ),
    ],
)
def test_node_tree_add_node(
    name: str, nodes_to_add: list[int], expected: dict[str, list[str]]
) -> None:
    nt = NodeTree()
    add(nt, nodes_to_add)
    assert tree_of(nt) == expected, name


@pytest.mark.parametrize(
    ("name", "existing", "to_remove", "expected", "expect_error"),
    [
        (
            "remove a single node with no labels",
            list(range(7)),
            [0],
            {
                "region-1:\x00:": ["node-1"],
                ":\x00:zone-2": ["node-2"],
                "region-1:\x00:zone-2": ["node-3", "node-4"],
                "region-1:\x00:zone-3": ["node-5"],
                "region-2:\x00:zone-2": ["node-6"],
            },
            False,
        ),
        (
            "remove a few nodes including one from a zone with multiple nodes",
            list(range(7)),
            [1, 2, 3],
            {
                "": ["node-0"],
                "region-1:\x00:zone-2": ["node-4"],
                "region-1:\x00:zone-3": ["node-5"],
                "region-2:\x00:zone-2": ["node-6"],
            },
            False,
        ),
        ("remove all nodes", list(range(7)), list(range(7)), {}, False),
        ("remove non-existing node", [], list(range(5)), {}, True),
    ],
)
def test_node_tree_remove_node(
    name: str,
    existing: list[int],
    to_remove: list[int],
    expected: dict[str, list[str]],
    expect_error: bool,
) -> None:
    nt = NodeTree()
    add(nt, existing)
    for i in to_remove:
        assert nt.remove(i) is not expect_error, name
    assert tree_of(nt) == expected, name


NEW = 11  # upstream's "node-new"


@pytest.mark.parametrize(
    ("name", "existing", "node", "expected"),
    [
        (
            "update a node without label",
            list(range(7)),
            0,
            {
                "region-1:\x00:": ["node-1"],
                ":\x00:zone-2": ["node-2"],
                "region-1:\x00:zone-2": ["node-3", "node-4", "node-0"],
                "region-1:\x00:zone-3": ["node-5"],
                "region-2:\x00:zone-2": ["node-6"],
            },
        ),
        ("update the only existing node", [0], 0, {"region-1:\x00:zone-2": ["node-0"]}),
        (
            "update non-existing node",
            [0],
            NEW,
            {"": ["node-0"], "region-1:\x00:zone-2": [f"node-{NEW}"]},
        ),
    ],
)
def test_node_tree_update_node(
    name: str, existing: list[int], node: int, expected: dict[str, list[str]]
) -> None:
    nt = NodeTree()
    add(nt, existing)
    nt.update(node, zone_key({TOPOLOGY_REGION: R1, TOPOLOGY_ZONE: "zone-2"}))
    assert tree_of(nt) == expected, name


@pytest.mark.parametrize(
    ("name", "nodes_to_add", "expected"),
    [
        ("empty tree", [], []),
        ("one node", [0], ["node-0"]),
        ("four nodes", [0, 1, 2, 3], ["node-0", "node-1", "node-2", "node-3"]),
        (
            "all nodes",
            list(range(9)),
            [
                "node-0",
                "node-1",
                "node-2",
                "node-3",
                "node-5",
                "node-6",
                "node-4",
                "node-7",
                "node-8",
            ],
        ),
    ],
)
def test_node_tree_list(name: str, nodes_to_add: list[int], expected: list[str]) -> None:
    nt = NodeTree()
    add(nt, nodes_to_add)
    assert [f"node-{i}" for i in nt.list().tolist()] == expected, name


@pytest.mark.parametrize(
    ("name", "to_add", "to_remove", "operations", "expected"),
    [
        (
            "add and remove all nodes",
            list(range(2, 9)),
            list(range(2, 9)),
            ["add", "add", "add", "remove", "remove", "remove"],
            [],
        ),
        (
            "add and remove some nodes",
            list(range(2, 9)),
            list(range(2, 9)),
            ["add", "add", "add", "remove"],
            ["node-3", "node-4"],
        ),
        (
            "remove three nodes",
            list(range(2, 9)),
            list(range(2, 9)),
            ["add", "add", "add", "remove", "remove", "remove", "add"],
            ["node-5"],
        ),
        (
            "add more nodes to an exhausted zone",
            [4, 5, 6, 7, 8, 3],
            [],
            ["add"] * 6,
            ["node-4", "node-5", "node-6", "node-3", "node-7", "node-8"],
        ),
        (
            "remove zone and add new",
            [3, 4, 6, 7],
            [3, 4],
            ["add", "add", "remove", "add", "add", "remove"],
            ["node-6", "node-7"],
        ),
    ],
)
def test_node_tree_multi_operations(
    name: str, to_add: list[int], to_remove: list[int], operations: list[str], expected: list[str]
) -> None:
    nt = NodeTree()
    adds, removes = iter(to_add), iter(to_remove)
    for op in operations:
        if op == "add":
            add(nt, [next(adds)])
        else:
            nt.remove(next(removes))
    assert [f"node-{i}" for i in nt.list().tolist()] == expected, name


# ----- the scan order of the state: the tree's list, taken again as upstream's snapshot ------


def node(i: int | str, labels: dict[str, str] | None = None) -> NodeInfo:
    name = i if isinstance(i, str) else f"node-{i}"
    return NodeInfo(
        name=name,
        labels=dict(ALL_NODES[i]) if labels is None and isinstance(i, int) else (labels or {}),
        allocatable={"cpu": 1000, "pods": 110},
        taints=(),
        unschedulable=False,
        images=(),
        addresses=(),
    )


def scan(state: ClusterState) -> list[str]:
    return [state.names[i] for i in state.node_indices().tolist()]


def test_scan_order_is_the_node_tree_list() -> None:
    state = ClusterState(capacity=4)  # grows on the way: slots are not the order
    for i in range(9):
        state.upsert_node(node(i))
    assert scan(state) == [f"node-{i}" for i in (0, 1, 2, 3, 5, 6, 4, 7, 8)]
    with pytest.raises(ValueError):
        state.node_indices()[0] = 0  # the cached order is read-only


def test_a_removed_node_leaves_the_scan_and_a_new_one_joins_its_zone() -> None:
    state = ClusterState()
    for i in (3, 5, 4):
        state.upsert_node(node(i))
    assert scan(state) == ["node-3", "node-5", "node-4"]
    state.remove_node("node-3")
    assert scan(state) == ["node-4", "node-5"]  # the rounds are taken again
    state.upsert_node(node(6))
    assert scan(state) == ["node-4", "node-5", "node-6"]


def test_a_node_back_before_the_next_snapshot_keeps_its_place() -> None:
    """Removed and added again between two decisions: the snapshot still has its name, so
    upstream keeps the list (cache.go UpdateSnapshot rebuilds only when the set changed),
    though the tree now has it last in its zone."""
    state = ClusterState()
    for i in (3, 4, 5):
        state.upsert_node(node(i))
    assert scan(state) == ["node-3", "node-5", "node-4"]
    state.remove_node("node-3")
    state.upsert_node(node(3))
    assert scan(state) == ["node-3", "node-5", "node-4"]
    state.upsert_node(node(7))  # a new node: the list is taken from the tree again
    assert scan(state) == ["node-4", "node-5", "node-7", "node-3"]


def test_a_zone_change_moves_the_node_at_the_next_rebuild() -> None:
    state = ClusterState()
    for i in (3, 4, 5):
        state.upsert_node(node(i))
    state.node_indices()
    state.upsert_node(node("node-3", {TOPOLOGY_REGION: R1, TOPOLOGY_ZONE: "zone-3"}))
    assert scan(state) == ["node-3", "node-5", "node-4"]  # upstream: not an add or a remove
    state.upsert_node(node(8))
    assert scan(state) == ["node-4", "node-5", "node-8", "node-3"]


def test_a_node_added_and_removed_between_snapshots_changes_nothing() -> None:
    state = ClusterState()
    for i in (3, 4, 5):
        state.upsert_node(node(i))
    state.node_indices()
    state.remove_node("node-4")
    state.upsert_node(node(4))  # back at the end of its zone in the tree, not in the list
    state.upsert_node(node(6))
    state.remove_node("node-6")
    assert scan(state) == ["node-3", "node-5", "node-4"]
