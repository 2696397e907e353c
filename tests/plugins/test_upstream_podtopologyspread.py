"""PodTopologySpread: upstream table rows not covered by test_podtopologyspread.py.

Every row names its upstream test and case, from kubernetes/kubernetes
pkg/scheduler/framework/plugins/podtopologyspread/filtering_test.go (TestSingleConstraint,
TestMultipleConstraints: wanted status code per node) and scoring_test.go
(TestPodTopologySpreadScore: normalised scores of the candidate nodes; TestPreScoreSkip).
Nodes carry exactly upstream's labels (no implicit hostname label). Upstream's feature gates are
taken at their defaults (node inclusion policies and matchLabelKeys on), so rows that only exist
to show a gate switched off are left out (noted where they would be).

The stored scoring_test.go predates today's scoring.go (its preScoreState still has
TopologyPairToPodCounts; the code keys counts by constraint index, TopologyValueToPodCounts), and
the stored filtering_test.go predates today's filtering.go (TpKeyToCriticalPaths keyed by topology
key; the code keeps MinMatchNum / TpValueToMatchNum per constraint). The Filter/Score outcomes of
the rows below are the same under both; where they would differ (two constraints sharing a
topology key), the rows follow today's code: see the [today's code] rows.
"""

from __future__ import annotations

from typing import Any

import pytest

import berth.plugins.podtopologyspread  # noqa: F401  (registers the plugin)
from berth.framework.status import Code
from tests.builders import PluginHarness, make_state, node, pod

OK = Code.SUCCESS
UNSCHED = Code.UNSCHEDULABLE
UNRES = Code.UNSCHEDULABLE_AND_UNRESOLVABLE
HARD, SOFT = "DoNotSchedule", "ScheduleAnyway"
HOST = "kubernetes.io/hostname"
FOO = {"matchExpressions": [{"key": "foo", "operator": "Exists"}]}  # upstream fooSelector
BAR = {"matchExpressions": [{"key": "bar", "operator": "Exists"}]}  # upstream barSelector
NULL = None  # a constraint without labelSelector: labels.Nothing()
# upstream `taints`: node.kubernetes.io/unschedulable:NoSchedule, not tolerated by the pods
TAINTS = [{"key": "node.kubernetes.io/unschedulable", "value": "", "effect": "NoSchedule"}]


def n(name: str, taints: list[dict[str, str]] | None = None, **labels: str) -> dict[str, Any]:
    """st.MakeNode().Name(name).Label(...): exactly these labels."""
    raw = node(name, taints=taints)
    raw["metadata"]["labels"] = dict(labels)
    return raw


def c(
    max_skew: int,
    key: str,
    when: str,
    selector: dict[str, Any] | None,
    *,
    min_domains: int | None = None,
    affinity_policy: str | None = None,
    taints_policy: str | None = None,
    match_label_keys: list[str] | None = None,
) -> dict[str, Any]:
    """st.SpreadConstraint(maxSkew, key, when, selector, minDomains, nap, ntp, matchLabelKeys)."""
    out: dict[str, Any] = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when}
    if selector is not None:
        out["labelSelector"] = selector
    if min_domains is not None:
        out["minDomains"] = min_domains
    if affinity_policy is not None:
        out["nodeAffinityPolicy"] = affinity_policy
    if taints_policy is not None:
        out["nodeTaintsPolicy"] = taints_policy
    if match_label_keys is not None:
        out["matchLabelKeys"] = match_label_keys
    return out


def p(
    name: str,
    *labels: str,
    on: str = "",
    namespace: str = "default",
    constraints: tuple[dict[str, Any], ...] = (),
    terminating: bool = False,
    **spec: Any,
) -> dict[str, Any]:
    """st.MakePod().Name(name).Label(l, "")...Node(on): labels given by key, value ""."""
    body = dict(spec)
    if constraints:
        body["topologySpreadConstraints"] = list(constraints)
    raw = pod(name, labels={k: "" for k in labels}, node_name=on, namespace=namespace, spec=body)
    if terminating:
        raw["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return raw


def spread_pod(
    *constraints: dict[str, Any], labels: tuple[str, ...] = ("foo",), **spec: Any
) -> Any:
    return p("p", *labels, constraints=constraints, **spec)


def placed(spec: str, *labels: str) -> list[dict[str, Any]]:
    """placed("a=2 b=1", "foo") -> pods labelled foo: two on node-a, one on node-b."""
    out = []
    for part in spec.split():
        short, count = part.split("=")
        for i in range(int(count)):
            out.append(p(f"p-{'-'.join(labels)}-{short}{i}", *labels, on=f"node-{short}"))
    return out


def node_selector(**labels: str) -> dict[str, Any]:
    return {"nodeSelector": dict(labels)}


def affinity(key: str, op: str, values: list[str]) -> dict[str, Any]:
    term = {"matchExpressions": [{"key": key, "operator": op, "values": values}]}
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }
    }


ZONE_NODES = [
    n("node-a", zone="zone1", node="node-a"),
    n("node-b", zone="zone1", node="node-b"),
    n("node-x", zone="zone2", node="node-x"),
    n("node-y", zone="zone2", node="node-y"),
]
FOO_NODES = [  # NodeInclusionPolicy rows: node-y lacks label foo
    n("node-a", node="node-a", foo=""),
    n("node-b", node="node-b", foo=""),
    n("node-x", node="node-x", foo=""),
    n("node-y", node="node-y"),
]
FOO_TAINTED = [*FOO_NODES[:3], n("node-y", TAINTS, node="node-y")]
ABC = [n("node-a", node="node-a"), n("node-b", node="node-b"), n("node-c", node="node-c")]

# (name, incoming pod, nodes, existing pods, wanted code per node)
FILTER_ROWS: list[tuple[str, Any, Any, Any, dict[str, Code]]] = [
    (
        "TestSingleConstraint: existing pods do not match null selector",
        spread_pod(c(1, "zone", HARD, NULL)),
        ZONE_NODES,
        placed("x=1 y=1", "foo"),
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
    ),
    (
        "TestSingleConstraint: incoming pod has nodeAffinity, pods spread as 0/~2~/0/1, "
        "hence node-a fits",
        spread_pod(c(1, "zone", HARD, FOO), **affinity("node", "NotIn", ["node-b"])),
        ZONE_NODES,
        placed("b=2 y=1", "foo"),
        # node-b: Success here, Unschedulable in a real cycle (NodeAffinity is not run)
        {"node-a": OK, "node-b": OK, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    (
        "TestSingleConstraint: pods spread across nodes as 2/2/1, maxSkew is 2, and the number "
        "of domains < minDomains, then the third node fits",
        spread_pod(c(2, "node", HARD, FOO, min_domains=4)),
        ABC,
        placed("a=2 b=2 c=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-c": OK},
    ),
    (
        "TestSingleConstraint: pods spread across nodes as 2/2/1, maxSkew is 2, and the number "
        "of domains > minDomains, then the all nodes fit",
        spread_pod(c(2, "node", HARD, FOO, min_domains=2)),
        ABC,
        placed("a=2 b=2 c=1", "foo"),
        {"node-a": OK, "node-b": OK, "node-c": OK},
    ),
    (
        "TestSingleConstraint: pods spread across zone as 2/1, maxSkew is 2 and the number of "
        "domains < minDomains, then the third and fourth nodes fit",
        spread_pod(c(2, "zone", HARD, FOO, min_domains=3)),
        ZONE_NODES,
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": OK},
    ),
    (
        "TestSingleConstraint: pods spread across zone as 2/1, maxSkew is 2 and the number of "
        "domains > minDomains, then the all nodes fit",
        spread_pod(c(2, "zone", HARD, FOO, min_domains=1)),
        ZONE_NODES,
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": OK, "node-b": OK, "node-x": OK, "node-y": OK},
    ),
    (
        "TestSingleConstraint: NodeAffinityPolicy honored with labelSelectors (1/1/0/~0~)",
        spread_pod(c(1, "node", HARD, FOO), **node_selector(foo="")),
        FOO_NODES,
        placed("a=1 b=1 y=1", "foo"),
        # node-y: Success here (its domain is not counted); NodeAffinity rejects it in a cycle
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": OK},
    ),
    (
        "TestSingleConstraint: NodeAffinityPolicy ignored with labelSelectors (1/1/0/~1~)",
        spread_pod(c(1, "node", HARD, FOO, affinity_policy="Ignore"), **node_selector(foo="")),
        FOO_NODES,
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "TestSingleConstraint: NodeAffinityPolicy honored with nodeAffinity (1/1/0/~0~)",
        spread_pod(c(1, "node", HARD, FOO), **affinity("foo", "In", [""])),
        FOO_NODES,
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": OK},
    ),
    (
        "TestSingleConstraint: NodeAffinityPolicy ignored with nodeAffinity (1/1/0/~1~)",
        spread_pod(
            c(1, "node", HARD, FOO, affinity_policy="Ignore"), **affinity("foo", "In", [""])
        ),
        FOO_NODES,
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "TestSingleConstraint: NodeTaintsPolicy honored (1/1/0/~0~)",
        spread_pod(c(1, "node", HARD, FOO, taints_policy="Honor")),
        FOO_TAINTED,
        placed("a=1 b=1 y=1", "foo"),
        # node-y: Success here; TaintToleration rejects it in a cycle
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": OK},
    ),
    (
        "TestSingleConstraint: NodeTaintsPolicy ignored (1/1/0/~1~)",
        spread_pod(c(1, "node", HARD, FOO)),
        FOO_TAINTED,
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: Constraints hold different labelSelectors, "
        "spreads = [1/0, 1/0/0/1]",
        spread_pod(c(1, "zone", HARD, FOO), c(1, "node", HARD, BAR), labels=("foo", "bar")),
        ZONE_NODES,
        [*placed("a=1", "foo"), *placed("y=1", "bar")],
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: Constraints hold different labelSelectors, "
        "spreads = [1/0, 0/0/1/1]",
        spread_pod(c(1, "zone", HARD, FOO), c(1, "node", HARD, BAR), labels=("foo", "bar")),
        ZONE_NODES,
        [*placed("a=1", "foo"), *placed("x=1 y=1", "bar")],
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: Constraints hold different labelSelectors, "
        "spreads = [2/3, 1/0/0/1]",
        spread_pod(c(1, "zone", HARD, FOO), c(1, "node", HARD, BAR), labels=("foo", "bar")),
        ZONE_NODES,
        [*placed("a=1 y=2", "foo"), *placed("a=1 y=1", "foo", "bar")],
        {"node-a": UNSCHED, "node-b": OK, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: Constraints hold different labelSelectors but pod doesn't "
        "match itself on 'zone' constraint",
        spread_pod(c(1, "zone", HARD, FOO), c(1, "node", HARD, BAR), labels=("bar",)),
        ZONE_NODES,
        [*placed("a=1", "foo"), *placed("x=1 y=1", "bar")],
        {"node-a": OK, "node-b": OK, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: two Constraints on zone and node, absence of label 'node' on "
        "node-x, spreads = [1/1, 1/0/0/1]",
        spread_pod(c(1, "zone", HARD, FOO), c(1, "node", HARD, FOO)),
        [*ZONE_NODES[:2], n("node-x", zone="zone2"), ZONE_NODES[3]],
        placed("a=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": OK, "node-x": UNRES, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: two node inclusion Constraints, zone: honor/ignore, "
        "node: ignore/ignore",
        spread_pod(
            c(1, "zone", HARD, FOO),
            c(1, "node", HARD, FOO, affinity_policy="Ignore"),
            **node_selector(foo=""),
        ),
        [
            n("node-a", zone="zone1", node="node-a", foo=""),
            n("node-b", zone="zone1", node="node-b", foo=""),
            n("node-x", zone="zone2", node="node-x", foo=""),
            n("node-y", zone="zone2", node="node-y"),
        ],
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: two node inclusion Constraints, zone: honor/honor, "
        "node: honor/ignore",
        spread_pod(c(1, "zone", HARD, FOO, taints_policy="Honor"), c(1, "node", HARD, FOO)),
        [
            n("node-a", zone="zone1", node="node-a", foo=""),
            n("node-b", zone="zone1", node="node-b", foo=""),
            n("node-x", zone="zone2", node="node-x", foo=""),
            n("node-y", TAINTS, zone="zone2", node="node-y"),
        ],
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: two node inclusion Constraints, zone: honor/ignore, "
        "node: honor/ignore",
        spread_pod(c(1, "zone", HARD, FOO), c(1, "node", HARD, FOO), **node_selector(foo="")),
        [
            n("node-a", zone="zone1", node="node-a", foo=""),
            n("node-b", zone="zone1", node="node-b"),
            n("node-x", zone="zone2", node="node-x", foo=""),
            n("node-y", TAINTS, zone="zone2", node="node-y", foo=""),
        ],
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": OK, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "TestMultipleConstraints: two node inclusion Constraints, zone: honor/honor, "
        "node: ignore/ignore",
        spread_pod(
            c(1, "zone", HARD, FOO, taints_policy="Honor"),
            c(1, "node", HARD, FOO, affinity_policy="Ignore"),
            **node_selector(foo=""),
        ),
        [
            n("node-a", zone="zone1", node="node-a", foo=""),
            n("node-b", zone="zone1", node="node-b"),
            n("node-x", zone="zone2", node="node-x", foo=""),
            n("node-y", TAINTS, zone="zone2", node="node-y", foo=""),
        ],
        placed("a=1 b=1 y=1", "foo"),
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": OK, "node-y": UNSCHED},
    ),
    (
        "[today's code] filtering.go keeps TpValueToMatchNum per constraint: two constraints "
        "on the same key with different selectors do not add up (stored test: keyed by pair)",
        spread_pod(c(1, "zone", HARD, FOO), c(1, "zone", HARD, BAR), labels=("foo", "bar")),
        ZONE_NODES,
        # foo: zone1 1, zone2 0; bar: zone1 0, zone2 1 -> each zone is too full for one of them
        [*placed("a=1", "foo"), *placed("y=1", "bar")],
        {"node-a": UNSCHED, "node-b": UNSCHED, "node-x": UNSCHED, "node-y": UNSCHED},
    ),
    (
        "[today's code] same key, same domains: foo 2/0 with maxSkew 3 passes everywhere, "
        "bar 0/1 with maxSkew 1 keeps the pod out of zone2",
        spread_pod(c(3, "zone", HARD, FOO), c(1, "zone", HARD, BAR), labels=("foo", "bar")),
        ZONE_NODES,
        [*placed("a=2", "foo"), *placed("y=1", "bar")],
        {"node-a": OK, "node-b": OK, "node-x": UNSCHED, "node-y": UNSCHED},
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
    assert {name: s.code for name, s in h.filter(pod_).items()} == want


# ----- Score ---------------------------------------------------------------------------------
HOSTS_ABCD = [n(f"node-{x}", **{HOST: f"node-{x}"}) for x in "abcd"]
HOSTS_ABXY = [n(f"node-{x}", **{HOST: f"node-{x}"}) for x in "abxy"]
ZONE_HOSTS = [
    n("node-a", zone="zone1", **{HOST: "node-a"}),
    n("node-b", zone="zone1", **{HOST: "node-b"}),
    n("node-x", zone="zone2", **{HOST: "node-x"}),
    n("node-y", zone="zone2", **{HOST: "node-y"}),
]
ZONE_HOSTS_ABCD = [
    n("node-a", zone="zone1", **{HOST: "node-a"}),
    n("node-b", zone="zone1", **{HOST: "node-b"}),
    n("node-c", zone="zone2", **{HOST: "node-c"}),
    n("node-d", zone="zone2", **{HOST: "node-d"}),
]
SPREAD_4321 = placed("a=4 b=3 c=2 d=1", "foo")
SPREAD_2103 = placed("a=2 b=1 d=3", "foo")
SPREAD_4213 = placed("a=4 b=2 x=1 y=3", "foo")
FOO_ABC = [n("node-a", node="node-a", foo=""), n("node-b", node="node-b", foo=""), ABC[2]]
TAINTED_ABC = [ABC[0], ABC[1], n("node-c", TAINTS, node="node-c")]

# (name, incoming pod, all nodes, existing pods, wanted scores of the candidate nodes; the
# other nodes are upstream's failedNodes: in the snapshot, not scored)
SCORE_ROWS: list[tuple[str, Any, Any, Any, dict[str, int]]] = [
    (
        "TestPodTopologySpreadScore: one constraint on node, no existing pods",
        spread_pod(c(1, HOST, SOFT, FOO)),
        HOSTS_ABCD[:2],
        [],
        {"node-a": 100, "node-b": 100},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on node, only one node is candidate",
        spread_pod(c(1, HOST, SOFT, FOO)),
        HOSTS_ABCD[:2],
        placed("a=2 b=1", "foo"),
        {"node-a": 100},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on node, all nodes have the same number of "
        "matching pods",
        spread_pod(c(1, HOST, SOFT, FOO)),
        HOSTS_ABCD[:2],
        placed("a=1 b=1", "foo"),
        {"node-a": 100, "node-b": 100},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on node, all 4 nodes are candidates",
        spread_pod(c(1, HOST, SOFT, FOO)),
        HOSTS_ABCD,
        SPREAD_2103,
        {"node-a": 20, "node-b": 60, "node-c": 100, "node-d": 0},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on node, null selector",
        spread_pod(c(1, HOST, SOFT, NULL)),
        HOSTS_ABCD,
        SPREAD_2103,
        {"node-a": 100, "node-b": 100, "node-c": 100, "node-d": 100},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on node, all 4 nodes are candidates, maxSkew=2",
        spread_pod(c(2, HOST, SOFT, FOO)),
        HOSTS_ABCD,
        SPREAD_2103,
        {"node-a": 33, "node-b": 66, "node-c": 100, "node-d": 16},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on node, all 4 nodes are candidates, maxSkew=3",
        spread_pod(c(3, HOST, SOFT, FOO)),
        HOSTS_ABCD,
        SPREAD_4321,
        {"node-a": 44, "node-b": 66, "node-c": 77, "node-d": 100},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on node, 3 out of 4 nodes are candidates",
        spread_pod(c(1, HOST, SOFT, FOO)),
        HOSTS_ABXY,
        SPREAD_4213,
        {"node-a": 33, "node-b": 83, "node-x": 100},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on node, 3 out of 4 nodes are candidates, "
        "one node doesn't match topology key",
        spread_pod(c(1, HOST, SOFT, FOO)),
        [HOSTS_ABXY[0], n("node-b", n="node-b"), *HOSTS_ABXY[2:]],
        SPREAD_4213,
        {"node-a": 16, "node-b": 0, "node-x": 100},
    ),
    (
        "TestPodTopologySpreadScore: one constraint on zone, 3 out of 4 nodes are candidates",
        spread_pod(c(1, "zone", SOFT, FOO)),
        ZONE_HOSTS,
        SPREAD_4213,
        {"node-a": 75, "node-b": 75, "node-x": 100},
    ),
    (
        "TestPodTopologySpreadScore: two Constraints on zone and node, 2 out of 4 nodes are "
        "candidates",
        spread_pod(c(1, "zone", SOFT, FOO), c(1, HOST, SOFT, FOO)),
        ZONE_HOSTS,
        placed("a=2 b=1 x=2 y=4", "foo"),
        {"node-a": 100, "node-x": 63},
    ),
    (
        "TestPodTopologySpreadScore: two Constraints on zone and node, with different "
        "labelSelectors",
        spread_pod(c(1, "zone", SOFT, FOO), c(1, HOST, SOFT, BAR), labels=("foo", "bar")),
        ZONE_HOSTS,
        [*placed("a=1 y=1", "foo"), *placed("b=1", "foo", "bar"), *placed("y=1", "bar")],
        {"node-a": 60, "node-b": 20, "node-x": 100, "node-y": 60},
    ),
    (
        "TestPodTopologySpreadScore: two Constraints on zone and node, with different "
        "labelSelectors, some nodes have 0 pods",
        spread_pod(c(1, "zone", SOFT, FOO), c(1, HOST, SOFT, BAR), labels=("foo", "bar")),
        ZONE_HOSTS,
        [*placed("b=1", "bar"), *placed("x=1", "foo"), *placed("y=1", "foo", "bar")],
        {"node-a": 100, "node-b": 60, "node-x": 40, "node-y": 0},
    ),
    (
        "TestPodTopologySpreadScore: two Constraints on zone and node, with different "
        "labelSelectors, 3 out of 4 nodes are candidates",
        spread_pod(c(1, "zone", SOFT, FOO), c(1, HOST, SOFT, BAR), labels=("foo", "bar")),
        ZONE_HOSTS,
        [*placed("a=1 y=1", "foo"), *placed("b=1", "foo", "bar"), *placed("y=1", "bar")],
        {"node-a": 50, "node-b": 25, "node-x": 100},
    ),
    (
        "TestPodTopologySpreadScore: existing pods in a different namespace do not count",
        spread_pod(c(1, HOST, SOFT, FOO)),
        HOSTS_ABCD[:2],
        [p("p-a1", "foo", on="node-a", namespace="ns1"), *placed("a=1 b=2", "foo")],
        {"node-a": 100, "node-b": 33},
    ),
    (
        "TestPodTopologySpreadScore: terminating Pods should be excluded",
        spread_pod(c(1, HOST, SOFT, FOO)),
        HOSTS_ABCD[:2],
        [p("p-a", "foo", on="node-a", terminating=True), *placed("b=1", "foo")],
        {"node-a": 100, "node-b": 0},
    ),
    # "minDomains has no effect when ScheduleAnyway" is left out: upstream calls it artificial
    # (the API server rejects such a pod), and Berth's pod parser rejects it the same way.
    (
        "TestPodTopologySpreadScore: NodeAffinityPolicy honoed with labelSelectors",
        spread_pod(c(1, "node", SOFT, FOO), **node_selector(foo="")),
        FOO_ABC,
        placed("a=2 b=1 c=1", "foo"),
        {"node-a": 0, "node-b": 33, "node-c": 100},
    ),
    (
        "TestPodTopologySpreadScore: NodeAffinityPolicy ignored with labelSelectors",
        spread_pod(c(1, "node", SOFT, FOO, affinity_policy="Ignore"), **node_selector(foo="")),
        FOO_ABC,
        placed("a=2 b=1 c=1", "foo"),
        {"node-a": 66, "node-b": 100, "node-c": 100},
    ),
    (
        "TestPodTopologySpreadScore: NodeAffinityPolicy honoed with nodeAffinity",
        spread_pod(c(1, "node", SOFT, FOO), **affinity("foo", "In", [""])),
        FOO_ABC,
        placed("a=2 b=1 c=1", "foo"),
        {"node-a": 0, "node-b": 33, "node-c": 100},
    ),
    (
        "TestPodTopologySpreadScore: NodeAffinityPolicy ignored with nodeAffinity",
        spread_pod(
            c(1, "node", SOFT, FOO, affinity_policy="Ignore"), **affinity("foo", "In", [""])
        ),
        FOO_ABC,
        placed("a=2 b=1 c=1", "foo"),
        {"node-a": 66, "node-b": 100, "node-c": 100},
    ),
    (
        "TestPodTopologySpreadScore: NodeTaintsPolicy honored",
        spread_pod(c(1, "node", SOFT, FOO, taints_policy="Honor")),
        TAINTED_ABC,
        placed("a=2 b=1 c=1", "foo"),
        {"node-a": 0, "node-b": 33, "node-c": 100},
    ),
    (
        "TestPodTopologySpreadScore: NodeTaintsPolicy ignored",
        spread_pod(c(1, "node", SOFT, FOO)),
        TAINTED_ABC,
        placed("a=2 b=1 c=1", "foo"),
        {"node-a": 66, "node-b": 100, "node-c": 100},
    ),
    # "matchLabelKeys ignored when feature gate disabled" is left out: the gate is on by default
    # and Berth has no switch for it.
    (
        "TestPodTopologySpreadScore: matchLabelKeys ANDed with LabelSelector when LabelSelector "
        "is empty",
        spread_pod(
            c(1, "zone", SOFT, {}, match_label_keys=["foo"]),
            c(1, HOST, SOFT, {}, match_label_keys=["bar"]),
            labels=("foo", "bar"),
        ),
        ZONE_HOSTS_ABCD,
        [*placed("a=1 c=1", "foo"), *placed("b=1", "foo", "bar"), *placed("c=1", "bar")],
        {"node-a": 60, "node-b": 20, "node-c": 60, "node-d": 100},
    ),
    (
        "TestPodTopologySpreadScore: matchLabelKeys ANDed with LabelSelector when LabelSelector "
        "isn't empty",
        spread_pod(
            c(1, "zone", SOFT, FOO),
            c(1, HOST, SOFT, BAR, match_label_keys=["baz"]),
            labels=("foo", "bar", "baz"),
        ),
        ZONE_HOSTS_ABCD,
        [
            *placed("a=1 c=1", "foo"),
            *placed("b=1", "foo", "bar", "baz"),
            *placed("c=1", "bar"),
            *placed("c=1", "bar", "baz"),
        ],
        {"node-a": 60, "node-b": 20, "node-c": 60, "node-d": 100},
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
    assert h.score(pod_, list(want)) == want


# ----- default constraints (the selector comes from the workloads store) ------------------------
def with_workloads(h: PluginHarness, *objects: dict[str, Any]) -> None:
    for obj in objects:
        h.plugin.ports.workloads.upsert(obj)


def test_system_defaulting_nodes_without_zone_pods_match_service() -> None:
    """TestPodTopologySpreadScore: system defaulting, nodes don't have zone, pods match service.
    Same scores as one hostname constraint with maxSkew 3: the zone constraint registers the ""
    domain but a node without the label gets no zone term."""
    h = PluginHarness("PodTopologySpread", make_state(HOSTS_ABCD, SPREAD_4321))
    service = {
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"selector": {"foo": ""}},
    }
    with_workloads(h, service)
    assert h.score(p("p", "foo")) == {"node-a": 44, "node-b": 66, "node-c": 77, "node-d": 100}


def test_pre_score_skip_default_constraints_and_a_replicaset_that_does_not_match() -> None:
    """TestPreScoreSkip: default constraints and a replicaset that doesn't match (the pod's
    controller rs2 is unknown, so DefaultSelector is empty: Skip)."""
    args = {
        "defaultingType": "List",
        "defaultConstraints": [{"maxSkew": 2, "topologyKey": "planet", "whenUnsatisfiable": SOFT}],
    }
    h = PluginHarness("PodTopologySpread", make_state([n("node-a", planet="mars")]), args)
    rs1 = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "rs1", "namespace": "default"},
        "spec": {"selector": {"matchExpressions": [{"key": "tar", "operator": "Exists"}]}},
    }
    with_workloads(h, rs1)
    incoming = pod("p", labels={"foo": "bar", "baz": "sup"})
    incoming["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "rs2",
            "uid": "u",
            "controller": True,
        }
    ]
    assert h.score(incoming) == {}


def test_pre_score_skip_without_soft_constraints_list_defaulting() -> None:
    """TestPreScoreSkip: the pod doesn't have soft topology spread Constraints."""
    nodes = [n("node-a", **{HOST: "node-a"}), n("node-b", **{HOST: "node-b"})]
    h = PluginHarness("PodTopologySpread", make_state(nodes), {"defaultingType": "List"})
    assert h.score(p("p")) == {}
