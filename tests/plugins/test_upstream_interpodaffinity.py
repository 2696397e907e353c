"""InterPodAffinity scoring rows from upstream's scoring_test.go TestPreferredAffinity
(kubernetes/kubernetes pkg/scheduler/framework/plugins/interpodaffinity): the incoming pod's
preferred terms, existing pods' preferred and required terms (symmetry), namespaceSelector.
Upstream's pods have no namespace (""); here they live in "default" unless a row says otherwise."""

from typing import Any

import pytest

from tests.builders import PluginHarness, make_state, node, pod

CHINA = {"region": "China"}
INDIA = {"region": "India"}
AZ1 = {"az": "az1"}
CHINA_AZ1 = {"region": "China", "az": "az1"}
S1 = {"security": "S1"}
S2 = {"security": "S2"}
NAMESPACES = {
    "subteam1.team1": {"team": "team1"},
    "subteam2.team1": {"team": "team1"},
    "subteam1.team2": {"team": "team2"},
    "subteam2.team2": {"team": "team2"},
}


def sel(*exprs: tuple[str, str, list[str]]) -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": k, "operator": op, **({"values": v} if v else {})} for k, op, v in exprs
        ]
    }


def weighted(weight: int, selector: dict[str, Any], key: str, **extra: Any) -> dict[str, Any]:
    return {
        "weight": weight,
        "podAffinityTerm": {"labelSelector": selector, "topologyKey": key, **extra},
    }


def prefer(kind: str, *terms: dict[str, Any]) -> dict[str, Any]:
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": list(terms)}}


STAY_S1_REGION = prefer("podAffinity", weighted(5, sel(("security", "In", ["S1"])), "region"))
STAY_S2_REGION = prefer("podAffinity", weighted(6, sel(("security", "In", ["S2"])), "region"))
AFFINITY3 = prefer(
    "podAffinity",
    weighted(8, sel(("security", "NotIn", ["S1"]), ("security", "In", ["S2"])), "region"),
    weighted(2, sel(("security", "Exists", []), ("wrongkey", "DoesNotExist", [])), "region"),
)
HARD_AFFINITY = {
    "podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": sel(("security", "In", ["S1", "value2"])), "topologyKey": "region"},
            {
                "labelSelector": sel(("security", "Exists", []), ("wrongkey", "DoesNotExist", [])),
                "topologyKey": "region",
            },
        ]
    }
}
AWAY_S1_AZ = prefer("podAntiAffinity", weighted(5, sel(("security", "In", ["S1"])), "az"))
AWAY_S2_AZ = prefer("podAntiAffinity", weighted(5, sel(("security", "In", ["S2"])), "az"))
NS_TERM = {
    "namespaces": ["subteam2.team2"],
    "namespaceSelector": sel(("team", "In", ["team1"])),
}
AFFINITY_NS = prefer(
    "podAffinity", weighted(5, sel(("security", "In", ["S1"])), "region", **NS_TERM)
)
ANTI_NS = prefer(
    "podAntiAffinity", weighted(5, sel(("security", "In", ["S1"])), "region", **NS_TERM)
)
THREE = {"node1": CHINA, "node2": INDIA, "node3": AZ1}

ROWS = [
    (
        "Affinity: pod that matches topology key & pods in nodes will get high score comparing "
        "to others which doesn't match either pods in nodes or in topology key",
        (S1, STAY_S1_REGION, "default"),
        [("node1", S1, None), ("node2", S2, None), ("node3", S1, None)],
        THREE,
        {"node1": 100, "node2": 0, "node3": 0},
    ),
    (
        "All the nodes that have the same topology key & label value with one of them has an "
        "existing pod that match the affinity rules, have the same score",
        ({}, STAY_S1_REGION, "default"),
        [("node1", S1, None)],
        {"node1": CHINA, "node2": CHINA_AZ1, "node3": INDIA},
        {"node1": 100, "node2": 100, "node3": 0},
    ),
    (
        "Affinity: nodes in one region has more matching pods comparing to other region, so the "
        "region which has more matches will get high score",
        (S1, STAY_S2_REGION, "default"),
        [(n, S2, None) for n in ("node1", "node1", "node2", "node3", "node4", "node5")],
        {"node1": CHINA, "node2": INDIA, "node3": CHINA, "node4": CHINA, "node5": INDIA},
        {"node1": 100, "node2": 0, "node3": 100, "node4": 100, "node5": 0},
    ),
    (
        "Affinity: different Label operators and values for pod affinity scheduling preference, "
        "including some match failures",
        (S1, AFFINITY3, "default"),
        [("node1", S1, None), ("node2", S2, None), ("node3", S1, None)],
        THREE,
        {"node1": 20, "node2": 100, "node3": 0},
    ),
    (
        "Affinity symmetry: considered only the preferredDuringSchedulingIgnoredDuringExecution "
        "in pod affinity symmetry",
        (S2, None, "default"),
        [("node1", S1, STAY_S1_REGION), ("node2", S2, STAY_S2_REGION)],
        THREE,
        {"node1": 0, "node2": 100, "node3": 0},
    ),
    (
        "Affinity symmetry with namespace selector",
        (S1, None, "subteam1.team1"),
        [("node1", S1, AFFINITY_NS), ("node2", S2, STAY_S2_REGION)],
        THREE,
        {"node1": 100, "node2": 0, "node3": 0},
    ),
    (
        "AntiAffinity symmetry with namespace selector",
        (S1, None, "subteam1.team1"),
        [("node1", S1, ANTI_NS), ("node2", S2, STAY_S2_REGION)],
        THREE,
        {"node1": 0, "node2": 100, "node3": 100},
    ),
    (
        "Affinity symmetry: considered RequiredDuringSchedulingIgnoredDuringExecution in pod "
        "affinity symmetry",
        (S1, None, "default"),
        [("node1", S1, HARD_AFFINITY), ("node2", S2, HARD_AFFINITY)],
        THREE,
        {"node1": 100, "node2": 100, "node3": 0},
    ),
    (
        "Anti Affinity: pod that does not match existing pods in node will get high score",
        (S1, AWAY_S1_AZ, "default"),
        [("node1", S1, None), ("node2", S2, None)],
        {"node1": AZ1, "node2": CHINA},
        {"node1": 0, "node2": 100},
    ),
    (
        "Anti Affinity: pod that does not match topology key & match the pods in nodes will get "
        "higher score comparing to others",
        (S1, AWAY_S1_AZ, "default"),
        [("node1", S1, None), ("node2", S1, None)],
        {"node1": AZ1, "node2": CHINA},
        {"node1": 0, "node2": 100},
    ),
    (
        "Anti Affinity: one node has more matching pods comparing to other node, so the node "
        "which has more unmatches will get high score",
        (S1, AWAY_S1_AZ, "default"),
        [("node1", S1, None), ("node1", S1, None), ("node2", S2, None)],
        {"node1": AZ1, "node2": INDIA},
        {"node1": 0, "node2": 100},
    ),
    (
        "Anti Affinity symmetry: the existing pods in node which has anti affinity match will "
        "get high score",
        (S2, None, "default"),
        [("node1", S1, AWAY_S2_AZ), ("node2", S2, AWAY_S1_AZ)],
        {"node1": AZ1, "node2": INDIA},
        {"node1": 0, "node2": 100},
    ),
]


@pytest.mark.parametrize(("name", "incoming", "existing", "nodes", "want"), ROWS)
def test_preferred_affinity(
    name: str,
    incoming: tuple[dict[str, str], dict[str, Any] | None, str],
    existing: list[tuple[str, dict[str, str], dict[str, Any] | None]],
    nodes: dict[str, dict[str, str]],
    want: dict[str, int],
) -> None:
    running = [
        pod(node_name=n, labels=labels, spec={"affinity": aff} if aff else None)
        for n, labels, aff in existing
    ]
    # Node labels only: upstream's test nodes carry no kubernetes.io/hostname label.
    raw_nodes = [node(n, labels=labels) for n, labels in nodes.items()]
    for raw in raw_nodes:
        raw["metadata"]["labels"].pop("kubernetes.io/hostname")
    state = make_state(raw_nodes, running, namespaces=NAMESPACES)
    labels, affinity, namespace = incoming
    h = PluginHarness("InterPodAffinity", state)
    spec = {"affinity": affinity} if affinity else None
    assert h.score(pod(labels=labels, namespace=namespace, spec=spec)) == want, name


def test_all_nodes_are_same_priority_as_affinity_is_nil() -> None:
    """ "all nodes are same priority as Affinity is nil": PreScore answers Skip."""
    state = make_state([node(n, labels=lab) for n, lab in THREE.items()])
    assert PluginHarness("InterPodAffinity", state).score(pod(labels=S1)) == {}
