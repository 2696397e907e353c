"""PodTopologySpread: filter codes and reasons, scores, default constraints, args validation.

Rows named `upstream TestX: ...` are transcribed from kubernetes/kubernetes
pkg/scheduler/framework/plugins/podtopologyspread/filtering_test.go (wanted status codes per
node). Rows marked [derived] were computed by hand from the formulas in scoring.go / filtering.go.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import berth.plugins.podtopologyspread  # noqa: F401  (registers the plugin)
from berth.config.errors import format_validation_error
from berth.framework.plugin import CycleState
from berth.framework.status import Code
from berth.objects import parse_pod
from berth.plugins.podtopologyspread import (
    ERR_REASON_CONSTRAINTS_NOT_MATCH,
    ERR_REASON_NODE_LABEL_NOT_MATCH,
    PodTopologySpreadArgs,
)
from tests.builders import PluginHarness, make_state, node, pod

OK = Code.SUCCESS
UNSCHED = Code.UNSCHEDULABLE
UNRES = Code.UNSCHEDULABLE_AND_UNRESOLVABLE
HARD, SOFT = "DoNotSchedule", "ScheduleAnyway"
EXISTS_FOO = {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}


def tsc(
    max_skew: int,
    key: str,
    when: str = HARD,
    selector: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "maxSkew": max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": EXISTS_FOO if selector is None else selector,
        **extra,
    }


def spod(
    name: str,
    labels: dict[str, str] | None = None,
    *constraints: dict[str, Any],
    node_name: str = "",
    namespace: str = "default",
    terminating: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = dict(spec)
    if constraints:
        body["topologySpreadConstraints"] = list(constraints)
    p = pod(name, labels=labels, node_name=node_name, namespace=namespace, spec=body)
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return p


def foo_pods(**per_node: int) -> list[dict[str, Any]]:
    """`foo_pods(node_a=2)` -> two pods labelled foo on node-a."""
    out = []
    for n, count in per_node.items():
        for i in range(count):
            out.append(spod(f"p-{n}-{i}", {"foo": ""}, node_name=n.replace("_", "-")))
    return out


def zone_node(name: str, zone: str | None, **labels: str) -> dict[str, Any]:
    lbl = {"node": name, **labels}
    if zone is not None:
        lbl["zone"] = zone
    return node(name, labels=lbl)


FOUR = [
    zone_node("node-a", "zone1"),
    zone_node("node-b", "zone1"),
    zone_node("node-x", "zone2"),
    zone_node("node-y", "zone2"),
]
SPREAD_2_1_0_3 = foo_pods(node_a=2, node_b=1, node_y=3)

# (name, incoming pod, nodes, existing pods, wanted code per node)
FILTER_ROWS: list[tuple[str, Any, Any, Any, dict[str, Code]]] = [
    (
        "upstream TestSingleConstraint: no existing pods",
        spod("p", {"foo": ""}, tsc(1, "zone")),
        FOUR,
        [],
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
    ),
    (
        "upstream TestSingleConstraint: no existing pods, incoming pod doesn't match itself",
        spod(
            "p",
            {"foo": ""},
            tsc(1, "zone", selector={"matchExpressions": [{"key": "bar", "operator": "Exists"}]}),
        ),
        FOUR,
        [],
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
    ),
    (
        "upstream TestSingleConstraint: existing pods in a different namespace do not count",
        spod("p", {"foo": ""}, tsc(1, "zone")),
        FOUR,
        [
            spod("p-a1", {"foo": ""}, node_name="node-a", namespace="ns1"),
            spod("p-b1", {"foo": ""}, node_name="node-a", namespace="ns2"),
            *foo_pods(node_x=1, node_y=1),
        ],
        {"node-a": OK, "node-b": OK, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    (
        "upstream TestSingleConstraint: pods spread across zones as 3/3, all nodes fit",
        spod("p", {"foo": ""}, tsc(1, "zone")),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
    ),
    (
        "upstream TestSingleConstraint: spread 1/2 due to absence of label 'zone' on node-b",
        spod("p", {"foo": ""}, tsc(1, "zone")),
        [
            zone_node("node-a", "zone1"),
            zone_node("node-b", None, zon="zone1"),
            zone_node("node-x", "zone2"),
            zone_node("node-y", "zone2"),
        ],
        foo_pods(node_a=1, node_b=1, node_x=1, node_y=1),
        {"node-a": OK, "node-b": UNRES, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    (
        "upstream TestSingleConstraint: all nodes lack label 'rack'",
        spod("p", {"foo": ""}, tsc(1, "rack")),
        [zone_node("node-a", "zone1"), zone_node("node-x", "zone2")],
        [],
        {"node-a": UNRES, "node-x": UNRES},
    ),
    (
        "upstream TestSingleConstraint: spread across nodes as 2/1/0/3, only node-x fits",
        spod("p", {"foo": ""}, tsc(1, "node")),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "upstream TestSingleConstraint: 2/1/0/3, maxSkew is 2, node-b and node-x fit",
        spod("p", {"foo": ""}, tsc(2, "node")),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": UNSCHED, "node-b": OK, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "upstream TestSingleConstraint: 2/1/0/3, but pod doesn't match itself",
        spod("p", {"bar": ""}, tsc(1, "node")),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": UNSCHED, "node-b": OK, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "upstream TestSingleConstraint: incoming pod has nodeAffinity, spread 2/~1~/~0~/3",
        spod(
            "p",
            {"foo": ""},
            tsc(1, "node"),
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "node",
                                        "operator": "In",
                                        "values": ["node-a", "node-y"],
                                    }
                                ]
                            }
                        ]
                    }
                }
            },
        ),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "[derived] like the nodeAffinity row, but by matchFields metadata.name",
        spod(
            "p",
            {"foo": ""},
            tsc(1, "node"),
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": ["node-a"]}
                                ]
                            },
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": ["node-y"]}
                                ]
                            },
                        ]
                    }
                }
            },
        ),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "upstream TestSingleConstraint: terminating pods should be excluded",
        spod("p", {"foo": ""}, tsc(1, "node")),
        [node("node-a", labels={"node": "node-a"}), node("node-b", labels={"node": "node-b"})],
        [
            spod("p-a", {"foo": ""}, node_name="node-a", terminating=True),
            spod("p-b", {"foo": ""}, node_name="node-b"),
        ],
        {"node-a": OK, "node-b": UNSCHED},
    ),
    (
        "upstream TestMultipleConstraints: zone and node, spreads = [3/3, 2/1/0/3]",
        spod("p", {"foo": ""}, tsc(1, "zone"), tsc(1, "node")),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "upstream TestMultipleConstraints: zone and node, spreads = [3/4, 2/1/0/4]",
        spod("p", {"foo": ""}, tsc(1, "zone"), tsc(1, "node")),
        FOUR,
        foo_pods(node_a=2, node_b=1, node_y=4),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    # ----- [derived] rows -----
    (
        "[derived] ScheduleAnyway constraints do not filter",
        spod("p", {"foo": ""}, tsc(1, "node", SOFT)),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
    ),
    (
        "[derived] minDomains 3 with 2 zones: global minimum is 0",
        spod("p", {"foo": ""}, tsc(1, "zone", minDomains=3)),
        FOUR,
        foo_pods(node_a=1, node_x=1),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    (
        "[derived] minDomains 2 with 2 zones: normal minimum",
        spod("p", {"foo": ""}, tsc(1, "zone", minDomains=2)),
        FOUR,
        foo_pods(node_a=1, node_x=1),
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
    ),
    (
        "[derived] matchLabelKeys: only pods with the incoming pod's version count",
        spod(
            "p",
            {"app": "web", "version": "v2"},
            tsc(1, "node", selector={"matchLabels": {"app": "web"}}, matchLabelKeys=["version"]),
        ),
        FOUR[:3],
        [
            spod("v1-a", {"app": "web", "version": "v1"}, node_name="node-a"),
            spod("v1-a2", {"app": "web", "version": "v1"}, node_name="node-a"),
            spod("v2-b", {"app": "web", "version": "v2"}, node_name="node-b"),
        ],
        {"node-a": OK, "node-b": UNSCHED, "node-x": OK},
    ),
    (
        "[derived] without matchLabelKeys every version counts",
        spod(
            "p",
            {"app": "web", "version": "v2"},
            tsc(1, "node", selector={"matchLabels": {"app": "web"}}),
        ),
        FOUR[:3],
        [
            spod("v1-a", {"app": "web", "version": "v1"}, node_name="node-a"),
            spod("v1-a2", {"app": "web", "version": "v1"}, node_name="node-a"),
            spod("v2-b", {"app": "web", "version": "v2"}, node_name="node-b"),
        ],
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK},
    ),
    (
        "[derived] empty selector {} counts no pods, but the pod matches itself",
        spod("p", {"foo": ""}, tsc(1, "node", selector={})),
        FOUR,
        SPREAD_2_1_0_3,
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
    ),
    (
        "[derived] nodeTaintsPolicy Ignore (default): the tainted empty zone is the minimum",
        spod("p", {"foo": ""}, tsc(1, "zone")),
        [
            zone_node("node-a", "zone1"),
            zone_node("node-b", "zone2"),
            node(
                "node-c",
                labels={"zone": "zone3"},
                taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
            ),
        ],
        foo_pods(node_a=1, node_b=1),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-c": OK},
    ),
    (
        "[derived] nodeTaintsPolicy Honor: the untolerated tainted zone is not a domain",
        spod("p", {"foo": ""}, tsc(1, "zone", nodeTaintsPolicy="Honor")),
        [
            zone_node("node-a", "zone1"),
            zone_node("node-b", "zone2"),
            node(
                "node-c",
                labels={"zone": "zone3"},
                taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
            ),
        ],
        foo_pods(node_a=1, node_b=1),
        {"node-a": OK, "node-b": OK, "node-c": OK},
    ),
    (
        "[derived] nodeTaintsPolicy Honor: a tolerated taint keeps the zone",
        spod(
            "p",
            {"foo": ""},
            tsc(1, "zone", nodeTaintsPolicy="Honor"),
            tolerations=[{"key": "k", "operator": "Exists"}],
        ),
        [
            zone_node("node-a", "zone1"),
            zone_node("node-b", "zone2"),
            node(
                "node-c",
                labels={"zone": "zone3"},
                taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
            ),
        ],
        foo_pods(node_a=1, node_b=1),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-c": OK},
    ),
    (
        "[derived] nodeAffinityPolicy Honor (default): nodeSelector excludes zone3",
        spod("p", {"foo": ""}, tsc(1, "zone"), nodeSelector={"disk": "ssd"}),
        [
            zone_node("node-a", "zone1", disk="ssd"),
            zone_node("node-b", "zone2", disk="ssd"),
            zone_node("node-c", "zone3"),
        ],
        foo_pods(node_a=1, node_b=1),
        {"node-a": OK, "node-b": OK, "node-c": OK},
    ),
    (
        "[derived] nodeAffinityPolicy Ignore: zone3 counts despite the nodeSelector",
        spod(
            "p",
            {"foo": ""},
            tsc(1, "zone", nodeAffinityPolicy="Ignore"),
            nodeSelector={"disk": "ssd"},
        ),
        [
            zone_node("node-a", "zone1", disk="ssd"),
            zone_node("node-b", "zone2", disk="ssd"),
            zone_node("node-c", "zone3"),
        ],
        foo_pods(node_a=1, node_b=1),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-c": OK},
    ),
    (
        "[derived] a node lacking ANY constraint's key does not register domains",
        spod("p", {"foo": ""}, tsc(1, "zone"), tsc(5, "rack")),
        [
            zone_node("node-a", "zone1", rack="r1"),
            zone_node("node-b", "zone2"),
        ],
        foo_pods(node_a=1, node_b=3),
        {"node-a": OK, "node-b": UNRES},
    ),
]


@pytest.mark.parametrize(
    ("pod_", "nodes", "existing", "want"),
    [pytest.param(*row[1:], id=row[0]) for row in FILTER_ROWS],
)
def test_filter(
    pod_: dict[str, Any],
    nodes: list[dict[str, Any]],
    existing: list[dict[str, Any]],
    want: dict[str, Code],
) -> None:
    h = PluginHarness("PodTopologySpread", make_state(nodes, existing))
    statuses = h.filter(pod_)
    assert {n: s.code for n, s in statuses.items()} == want
    for s in statuses.values():
        if s.code == UNSCHED:
            assert s.reasons == (ERR_REASON_CONSTRAINTS_NOT_MATCH,)
        elif s.code == UNRES:
            assert s.reasons == (ERR_REASON_NODE_LABEL_NOT_MATCH,)


def test_reason_strings() -> None:
    assert (
        ERR_REASON_CONSTRAINTS_NOT_MATCH == "node(s) didn't match pod topology spread constraints"
    )
    assert ERR_REASON_NODE_LABEL_NOT_MATCH == (
        "node(s) didn't match pod topology spread constraints (missing required label)"
    )


def test_pre_filter_skips_without_hard_constraints() -> None:
    h = PluginHarness("PodTopologySpread", make_state(FOUR))
    for raw in (spod("p", {"foo": ""}), spod("p", {"foo": ""}, tsc(1, "zone", SOFT))):
        result, status = h.plugin.pre_filter(CycleState(), parse_pod(raw))
        assert result is None and status.is_skip


# ----- Score -------------------------------------------------------------------------------------
HOSTS = [node("n0"), node("n1"), node("n2")]
WEB = {"matchLabels": {"app": "web"}}


def web_pods(**per_node: int) -> list[dict[str, Any]]:
    return [
        spod(f"w-{n}-{i}", {"app": "web"}, node_name=n)
        for n, count in per_node.items()
        for i in range(count)
    ]


TAINTED_ZONES = [
    node("a", labels={"zone": "z1"}),
    node(
        "b",
        labels={"zone": "z2"},
        taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
    ),
    node("c", labels={"zone": "z2"}),
]

# (name, incoming pod, nodes, existing pods, wanted normalised scores; {} = PreScore Skip)
SCORE_ROWS: list[tuple[str, Any, Any, Any, dict[str, int]]] = [
    (
        "[derived] notes 5.6: hostname, maxSkew 1, counts 0/1/2 -> raw 0/2/3 -> 100/33/0",
        spod("p", {"app": "web"}, tsc(1, "kubernetes.io/hostname", SOFT, WEB)),
        HOSTS,
        web_pods(n1=1, n2=2),
        {"n0": 100, "n1": 33, "n2": 0},
    ),
    (
        "[derived] hostname, maxSkew 3: raw 2/4/5 (ln5 weight + 2) -> 100/60/40",
        spod("p", {"app": "web"}, tsc(3, "kubernetes.io/hostname", SOFT, WEB)),
        HOSTS,
        web_pods(n1=1, n2=2),
        {"n0": 100, "n1": 60, "n2": 40},
    ),
    (
        "[derived] no matching pods anywhere: all raw 0 -> all 100",
        spod("p", {"app": "web"}, tsc(1, "kubernetes.io/hostname", SOFT, WEB)),
        HOSTS,
        [],
        {"n0": 100, "n1": 100, "n2": 100},
    ),
    (
        "[derived] zone: node without the key is ignored (0); zones 2/1 -> raw 3/3/1",
        spod("p", {"app": "web"}, tsc(1, "zone", SOFT, WEB)),
        [
            node("a", labels={"zone": "z1"}),
            node("b", labels={"zone": "z1"}),
            node("c", labels={"zone": "z2"}),
            node("d"),
        ],
        web_pods(a=1, b=1, c=1, d=5),
        {"a": 33, "b": 33, "c": 100, "d": 0},
    ),
    (
        "[derived] DoNotSchedule constraints do not score -> Skip",
        spod("p", {"app": "web"}, tsc(1, "kubernetes.io/hostname", HARD, WEB)),
        HOSTS,
        web_pods(n1=1),
        {},
    ),
    (
        "[derived] no constraints and no default selector -> Skip",
        spod("p", {"app": "web"}),
        HOSTS,
        web_pods(n1=1),
        {},
    ),
    (
        "[derived] zone, nodeTaintsPolicy Ignore: tainted node's pods count -> 100/25/25",
        spod("p", {"app": "web"}, tsc(1, "zone", SOFT, WEB)),
        TAINTED_ZONES,
        web_pods(a=1, b=3),
        {"a": 100, "b": 25, "c": 25},
    ),
    (
        "[derived] zone, nodeTaintsPolicy Honor: tainted node's pods do not count -> 0/100/100",
        spod("p", {"app": "web"}, tsc(1, "zone", SOFT, WEB, nodeTaintsPolicy="Honor")),
        TAINTED_ZONES,
        web_pods(a=1, b=3),
        {"a": 0, "b": 100, "c": 100},
    ),
    (
        "[derived] pods of another namespace do not count",
        spod("p", {"app": "web"}, tsc(1, "kubernetes.io/hostname", SOFT, WEB)),
        HOSTS,
        [spod("w", {"app": "web"}, node_name="n1", namespace="other")],
        {"n0": 100, "n1": 100, "n2": 100},
    ),
]


@pytest.mark.parametrize(
    ("pod_", "nodes", "existing", "want"),
    [pytest.param(*row[1:], id=row[0]) for row in SCORE_ROWS],
)
def test_score(
    pod_: dict[str, Any],
    nodes: list[dict[str, Any]],
    existing: list[dict[str, Any]],
    want: dict[str, int],
) -> None:
    h = PluginHarness("PodTopologySpread", make_state(nodes, existing))
    assert h.score(pod_) == want


def test_score_only_feasible_nodes_size_the_hostname_weight() -> None:
    """[derived] scoring n0,n1 only: weight ln(2+2); raw 0/round(1.386)=1 -> 100/0."""
    h = PluginHarness("PodTopologySpread", make_state(HOSTS, web_pods(n1=1, n2=2)))
    pod_ = spod("p", {"app": "web"}, tsc(1, "kubernetes.io/hostname", SOFT, WEB))
    assert h.score(pod_, ["n0", "n1"]) == {"n0": 100, "n1": 0}


def test_pre_score_skips_without_nodes() -> None:
    h = PluginHarness("PodTopologySpread", make_state([]))
    p = parse_pod(spod("p", {"app": "web"}, tsc(1, "kubernetes.io/hostname", SOFT, WEB)))
    assert h.plugin.pre_score(CycleState(), p, np.array([], dtype=np.intp)).is_skip


# ----- default constraints -----------------------------------------------------------------------
# The Service that selects the web pods (the default selector of every pod labelled app=web).
WEB_SERVICE = {
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"selector": {"app": "web"}},
}


ZONED = [
    node("a", labels={"topology.kubernetes.io/zone": "z1"}),
    node("b", labels={"topology.kubernetes.io/zone": "z1"}),
    node("c", labels={"topology.kubernetes.io/zone": "z2"}),
    node("d"),
]


def test_system_defaults_score_with_default_selector() -> None:
    """[derived] hostname/3 (w ln6) + zone/5 (w ln5 over z1, z2 and "" for d):
    raw a=round(2*1.792+2 + 2*1.609+4)=13, b=round(2+7.219)=9, c=round(3.792+5.609)=9, d=2
    -> 100*(15-s)//13 = 15/46/46/100. Node d has no zone but is not ignored (system defaults)."""
    h = PluginHarness("PodTopologySpread", make_state(ZONED, web_pods(a=2, c=1)))
    h.plugin.ports.workloads.upsert(WEB_SERVICE)
    assert h.score(spod("p", {"app": "web"})) == {"a": 15, "b": 46, "c": 46, "d": 100}


def test_system_defaults_never_filter() -> None:
    h = PluginHarness("PodTopologySpread", make_state(ZONED, web_pods(a=5)))
    h.plugin.ports.workloads.upsert(WEB_SERVICE)
    assert h.reasons(spod("p", {"app": "web"})) == {}


def test_defaults_need_a_non_empty_default_selector() -> None:
    h = PluginHarness("PodTopologySpread", make_state(ZONED, web_pods(a=2)))
    assert h.score(spod("p", {"app": "web"})) == {}  # no Service: defaults do not apply
    h.plugin.ports.workloads.upsert(WEB_SERVICE)
    assert h.score(spod("p", {"app": "db"})) == {}  # no Service selects this pod


def test_defaults_ignored_when_pod_has_its_own_constraints() -> None:
    h = PluginHarness("PodTopologySpread", make_state(ZONED, web_pods(a=2)))
    h.plugin.ports.workloads.upsert(WEB_SERVICE)
    # Own hard constraint only: no soft constraints, and defaults are not consulted -> Skip.
    assert h.score(spod("p", {"app": "web"}, tsc(1, "kubernetes.io/hostname", HARD, WEB))) == {}


LIST_ARGS = {
    "defaultingType": "List",
    "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": HARD}
    ],
}


def test_list_defaults_filter_with_default_selector() -> None:
    h = PluginHarness("PodTopologySpread", make_state(ZONED, web_pods(a=2, b=1)), LIST_ARGS)
    h.plugin.ports.workloads.upsert(WEB_SERVICE)
    assert h.reasons(spod("p", {"app": "web"})) == {
        "a": [ERR_REASON_CONSTRAINTS_NOT_MATCH],
        "b": [ERR_REASON_CONSTRAINTS_NOT_MATCH],
    }


def test_list_defaults_require_all_topologies_in_scoring() -> None:
    """[derived] List defaults are not system defaults: nodes lacking a key are ignored (0)."""
    args = {
        "defaultingType": "List",
        "defaultConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": SOFT,
            }
        ],
    }
    h = PluginHarness("PodTopologySpread", make_state(ZONED, web_pods(a=2, c=1)), args)
    h.plugin.ports.workloads.upsert(WEB_SERVICE)
    # zones z1=2, z2=1, weight ln4: raw a=b=round(2.77)=3, c=round(1.39)=1 -> 33/33/100, d 0.
    assert h.score(spod("p", {"app": "web"})) == {"a": 33, "b": 33, "c": 100, "d": 0}


def test_list_with_no_constraints_means_no_defaults() -> None:
    h = PluginHarness(
        "PodTopologySpread", make_state(ZONED, web_pods(a=2)), {"defaultingType": "List"}
    )
    h.plugin.ports.workloads.upsert(WEB_SERVICE)
    assert h.score(spod("p", {"app": "web"})) == {}


# ----- args --------------------------------------------------------------------------------------
def test_args_defaults() -> None:
    a = PodTopologySpreadArgs.model_validate({})
    assert a.defaultingType == "System" and a.defaultConstraints == []
    assert PodTopologySpreadArgs.model_validate({"defaultingType": ""}).defaultingType == "System"


def _c(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "maxSkew": 1,
        "topologyKey": "zone",
        "whenUnsatisfiable": SOFT,
    }
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        pytest.param(LIST_ARGS, [], id="List with constraints is valid"),
        pytest.param(
            {"defaultingType": "Foo"},
            ['defaultingType: Unsupported value: "Foo": supported values: "System", "List"'],
            id="unknown defaultingType",
        ),
        pytest.param(
            {"defaultingType": "System", "defaultConstraints": [_c()]},
            ['defaultingType: Invalid value: "System": when .defaultConstraints are not empty'],
            id="System with constraints",
        ),
        pytest.param(
            {"defaultingType": "List", "defaultConstraints": [_c(maxSkew=0)]},
            ["defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf)"],
            id="maxSkew 0",
        ),
        pytest.param(
            {"defaultingType": "List", "defaultConstraints": [{"topologyKey": "zone"}]},
            [
                "defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf)",
                "defaultConstraints[0].whenUnsatisfiable: Required value: can not be empty",
            ],
            id="missing fields read as zero values",
        ),
        pytest.param(
            {"defaultingType": "List", "defaultConstraints": [_c(topologyKey="")]},
            ["defaultConstraints[0].topologyKey: Required value: can not be empty"],
            id="empty topologyKey",
        ),
        pytest.param(
            {"defaultingType": "List", "defaultConstraints": [_c(topologyKey="a/b/c")]},
            [
                'defaultConstraints[0].topologyKey: Invalid value: "a/b/c": a qualified name '
                "must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?"
                "[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. "
                "'example.com/MyName')"
            ],
            id="invalid label name",
        ),
        pytest.param(
            {"defaultingType": "List", "defaultConstraints": [_c(whenUnsatisfiable="Maybe")]},
            [
                'defaultConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": '
                'supported values: "DoNotSchedule", "ScheduleAnyway"'
            ],
            id="unknown whenUnsatisfiable",
        ),
        pytest.param(
            {"defaultingType": "List", "defaultConstraints": [_c(labelSelector={})]},
            [
                "defaultConstraints[0].labelSelector: Forbidden: constraint must not define a "
                "selector, as they deduced for each pod"
            ],
            id="labelSelector forbidden",
        ),
        pytest.param(
            {
                "defaultingType": "List",
                "defaultConstraints": [_c(), _c(maxSkew=3), _c(whenUnsatisfiable=HARD)],
            },
            ['defaultConstraints[1]: Duplicate value: "{zone, ScheduleAnyway}"'],
            id="duplicate key and action",
        ),
    ],
)
def test_args_validation(raw: dict[str, Any], want: list[str]) -> None:
    try:
        PodTopologySpreadArgs.model_validate(raw)
    except ValidationError as exc:
        assert format_validation_error(exc) == want
    else:
        assert want == []
