"""InterPodAffinity: filter reasons and codes, score normalisation, args validation.

Rows named `upstream TestX: ...` are transcribed from kubernetes/kubernetes
pkg/scheduler/framework/plugins/interpodaffinity/filtering_test.go (namespace "" there is
"default" here; terms upstream wrote without a topologyKey get "region", which the API requires).
Rows marked [derived] were computed by hand from the upstream formulas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import berth.plugins.interpodaffinity  # noqa: F401  (registers the plugin)
from berth.config.errors import format_validation_error
from berth.framework.plugin import CycleState
from berth.framework.status import Code
from berth.objects import parse_pod
from berth.plugins.interpodaffinity import (
    ERR_REASON_AFFINITY_RULES_NOT_MATCH as AFF,
)
from berth.plugins.interpodaffinity import (
    ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH as ANTI,
)
from berth.plugins.interpodaffinity import (
    ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH as EXISTING,
)
from berth.plugins.interpodaffinity import InterPodAffinityArgs
from tests.builders import PluginHarness, make_state, node, pod

UNSCHED = Code.UNSCHEDULABLE
UNRES = Code.UNSCHEDULABLE_AND_UNRESOLVABLE

POD_LABEL = {"service": "securityscan"}
POD_LABEL2 = {"security": "S1"}


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


def term(
    *exprs: dict[str, Any],
    key: str = "region",
    match: dict[str, str] | None = None,
    namespaces: list[str] | None = None,
    ns_selector: dict[str, Any] | None = None,
) -> dict[str, Any]:
    sel: dict[str, Any] = {}
    if exprs:
        sel["matchExpressions"] = list(exprs)
    if match:
        sel["matchLabels"] = match
    t: dict[str, Any] = {"labelSelector": sel, "topologyKey": key}
    if namespaces is not None:
        t["namespaces"] = namespaces
    if ns_selector is not None:
        t["namespaceSelector"] = ns_selector
    return t


def apod(
    name: str,
    labels: dict[str, str] | None = None,
    *,
    node_name: str = "",
    namespace: str = "default",
    affinity: tuple[dict[str, Any], ...] = (),
    anti: tuple[dict[str, Any], ...] = (),
    pref_affinity: tuple[tuple[int, dict[str, Any]], ...] = (),
    pref_anti: tuple[tuple[int, dict[str, Any]], ...] = (),
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    a: dict[str, Any] = {}
    if affinity or pref_affinity:
        a["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": list(affinity),
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": w, "podAffinityTerm": t} for w, t in pref_affinity
            ],
        }
    if anti or pref_anti:
        a["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": list(anti),
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": w, "podAffinityTerm": t} for w, t in pref_anti
            ],
        }
    if a:
        spec["affinity"] = a
    return pod(name, labels=labels, node_name=node_name, namespace=namespace, spec=spec)


MACHINE1 = [node("machine1", labels={"region": "r1", "zone": "z11"})]
# Multi-node topology: two regions, three zones, one node without a zone label.
CLUSTER = [
    node("n1", labels={"region": "r1", "zone": "z1"}),
    node("n2", labels={"region": "r1", "zone": "z2"}),
    node("n3", labels={"region": "r2", "zone": "z3"}),
    node("n4", labels={"region": "r2"}),
]

# (name, incoming pod, nodes, existing pods, namespaces, {node: (code, reason)} for rejections)
FILTER_ROWS: list[tuple[str, Any, Any, Any, Any, dict[str, tuple[Code, str]]]] = [
    (
        "upstream TestRequiredAffinitySingleNode: no required pod affinity, no existing pods",
        apod("p"),
        MACHINE1,
        [],
        None,
        {},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: In operator matches the existing pod",
        apod("p", POD_LABEL2, affinity=(term(expr("service", "In", "securityscan", "value2")),)),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine1")],
        None,
        {},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: NotIn operator matches the existing pod",
        apod("p", POD_LABEL2, affinity=(term(expr("service", "NotIn", "securityscan3", "v3")),)),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine1")],
        None,
        {},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: does not satisfy because of diff namespace",
        apod(
            "p",
            POD_LABEL2,
            affinity=(
                term(expr("service", "In", "securityscan", "value2"), namespaces=["DiffNameSpace"]),
            ),
        ),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine1", namespace="ns")],
        None,
        {"machine1": (UNRES, AFF)},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: unmatching labelSelector with the existing pod",
        apod("p", POD_LABEL, affinity=(term(expr("service", "In", "antivirusscan", "value2")),)),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine1")],
        None,
        {"machine1": (UNRES, AFF)},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: different operators in multiple terms",
        apod(
            "p",
            POD_LABEL2,
            affinity=(
                term(expr("service", "Exists"), expr("wrongkey", "DoesNotExist")),
                term(expr("service", "In", "securityscan"), expr("service", "NotIn", "WrongValue")),
            ),
        ),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine1")],
        None,
        {},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: matchExpressions are ANDed, one does not match",
        apod(
            "p",
            POD_LABEL2,
            affinity=(
                term(expr("service", "Exists"), expr("wrongkey", "DoesNotExist")),
                term(
                    expr("service", "In", "securityscan2"), expr("service", "NotIn", "WrongValue")
                ),
            ),
        ),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine1")],
        None,
        {"machine1": (UNRES, AFF)},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: satisfies PodAffinity and PodAntiAffinity",
        apod(
            "p",
            POD_LABEL2,
            affinity=(term(expr("service", "In", "securityscan", "value2")),),
            anti=(term(expr("service", "In", "antivirusscan", "value2"), key="node"),),
        ),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine1")],
        None,
        {},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: affinity, anti-affinity and symmetry satisfied",
        apod(
            "p",
            POD_LABEL2,
            affinity=(term(expr("service", "In", "securityscan", "value2")),),
            anti=(term(expr("service", "In", "antivirusscan", "value2"), key="node"),),
        ),
        MACHINE1,
        [
            apod(
                "e",
                POD_LABEL,
                node_name="machine1",
                anti=(term(expr("service", "In", "antivirusscan", "value2"), key="node"),),
            )
        ],
        None,
        {},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: satisfies PodAffinity but not PodAntiAffinity",
        apod(
            "p",
            POD_LABEL2,
            affinity=(term(expr("service", "In", "securityscan", "value2")),),
            anti=(term(expr("service", "In", "securityscan", "value2"), key="zone"),),
        ),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine1")],
        None,
        {"machine1": (UNSCHED, ANTI)},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: doesn't satisfy PodAntiAffinity symmetry",
        apod(
            "p",
            POD_LABEL,
            affinity=(term(expr("service", "In", "securityscan", "value2")),),
            anti=(term(expr("service", "In", "antivirusscan", "value2"), key="node"),),
        ),
        MACHINE1,
        [
            apod(
                "e",
                POD_LABEL,
                node_name="machine1",
                anti=(term(expr("service", "In", "securityscan", "value2"), key="zone"),),
            )
        ],
        None,
        {"machine1": (UNSCHED, EXISTING)},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: pod matches its own label, matching pod on an "
        "unknown node",
        apod("p", POD_LABEL, affinity=(term(expr("service", "NotIn", "securityscan", "value2")),)),
        MACHINE1,
        [apod("e", POD_LABEL, node_name="machine2")],
        None,
        {"machine1": (UNRES, AFF)},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: existing anti-affinity respected when the pod "
        "has none",
        apod("p", POD_LABEL),
        MACHINE1,
        [
            apod(
                "e",
                POD_LABEL,
                node_name="machine1",
                anti=(term(expr("service", "In", "securityscan", "value2"), key="zone"),),
            )
        ],
        None,
        {"machine1": (UNSCHED, EXISTING)},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: existing anti-affinity (NotIn) satisfied",
        apod("p", POD_LABEL),
        MACHINE1,
        [
            apod(
                "e",
                POD_LABEL,
                node_name="machine1",
                anti=(term(expr("service", "NotIn", "securityscan", "value2"), key="zone"),),
            )
        ],
        None,
        {},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: satisfies existing anti-affinity but not the "
        "incoming pod's",
        apod(
            "p",
            POD_LABEL,
            anti=(term(expr("service", "Exists")), term(expr("security", "Exists"))),
        ),
        MACHINE1,
        [
            apod(
                "e",
                POD_LABEL2,
                node_name="machine1",
                anti=(term(expr("security", "Exists"), key="zone"),),
            )
        ],
        None,
        {"machine1": (UNSCHED, ANTI)},
    ),
    (
        "upstream TestRequiredAffinitySingleNode: symmetry a1, pods partially match each other",
        apod(
            "p",
            POD_LABEL,
            anti=(
                term(expr("service", "Exists"), key="zone"),
                term(expr("security", "Exists"), key="zone"),
            ),
        ),
        MACHINE1,
        [
            apod(
                "e",
                POD_LABEL2,
                node_name="machine1",
                anti=(term(expr("security", "Exists"), key="zone"),),
            )
        ],
        None,
        {"machine1": (UNSCHED, ANTI)},
    ),
    # ----- multi-node rows [derived] -----
    (
        "affinity by zone: only the matching pod's zone; a node without the key is unresolvable",
        apod("p", affinity=(term(key="zone", match={"app": "db"}),)),
        CLUSTER,
        [apod("db", {"app": "db"}, node_name="n1")],
        None,
        {"n2": (UNRES, AFF), "n3": (UNRES, AFF), "n4": (UNRES, AFF)},
    ),
    (
        "affinity by region: every node of the matching pod's region",
        apod("p", affinity=(term(key="region", match={"app": "db"}),)),
        CLUSTER,
        [apod("db", {"app": "db"}, node_name="n4")],
        None,
        {"n1": (UNRES, AFF), "n2": (UNRES, AFF)},
    ),
    (
        "first pod of a self-affine group may go to any node having the topology key",
        apod("p", {"app": "web"}, affinity=(term(key="zone", match={"app": "web"}),)),
        CLUSTER,
        [apod("other", {"app": "db"}, node_name="n1")],
        None,
        {"n4": (UNRES, AFF)},
    ),
    (
        "first-pod exception does not apply once a matching pod exists elsewhere",
        apod("p", {"app": "web"}, affinity=(term(key="zone", match={"app": "web"}),)),
        CLUSTER,
        [apod("web", {"app": "web"}, node_name="n3")],
        None,
        {"n1": (UNRES, AFF), "n2": (UNRES, AFF), "n4": (UNRES, AFF)},
    ),
    (
        "first-pod exception needs the pod to match all of its own terms",
        apod("p", {"app": "web"}, affinity=(term(key="zone", match={"app": "db"}),)),
        CLUSTER,
        [],
        None,
        {n: (UNRES, AFF) for n in ("n1", "n2", "n3", "n4")},
    ),
    (
        "an existing pod must match ALL affinity terms to count",
        apod(
            "p",
            affinity=(term(key="zone", match={"app": "db"}), term(key="region", match={"t": "1"})),
        ),
        CLUSTER,
        [
            apod("db", {"app": "db"}, node_name="n1"),
            apod("t1", {"t": "1"}, node_name="n2"),
        ],
        None,
        {n: (UNRES, AFF) for n in ("n1", "n2", "n3", "n4")},
    ),
    (
        "anti-affinity by region rejects the whole region; node without zone still fine for zone",
        apod("p", anti=(term(key="region", match={"app": "db"}),)),
        CLUSTER,
        [apod("db", {"app": "db"}, node_name="n3")],
        None,
        {"n3": (UNSCHED, ANTI), "n4": (UNSCHED, ANTI)},
    ),
    (
        "existing pod's anti-affinity (symmetry) rejects its whole zone only",
        apod("p", {"app": "web"}),
        CLUSTER,
        [apod("db", {"app": "db"}, node_name="n2", anti=(term(key="zone", match={"app": "web"}),))],
        None,
        {"n2": (UNSCHED, EXISTING)},
    ),
    (
        "existing pod's anti-affinity defaults to its own namespace",
        apod("p", {"app": "web"}),
        CLUSTER,
        [
            apod(
                "db",
                {"app": "db"},
                node_name="n2",
                namespace="other",
                anti=(term(key="zone", match={"app": "web"}),),
            )
        ],
        None,
        {},
    ),
    (
        "existing pod's anti-affinity namespaceSelector matches the incoming pod's namespace",
        apod("p", {"app": "web"}, namespace="team-a"),
        CLUSTER,
        [
            apod(
                "db",
                {"app": "db"},
                node_name="n2",
                namespace="other",
                anti=(
                    term(key="zone", match={"app": "web"}, ns_selector={"matchLabels": {"t": "a"}}),
                ),
            )
        ],
        {"team-a": {"t": "a"}},
        {"n2": (UNSCHED, EXISTING)},
    ),
    (
        "incoming affinity namespaceSelector picks pods in labelled namespaces",
        apod(
            "p",
            affinity=(
                term(key="zone", match={"app": "db"}, ns_selector={"matchLabels": {"t": "a"}}),
            ),
        ),
        CLUSTER,
        [
            apod("db1", {"app": "db"}, node_name="n1", namespace="team-a"),
            apod("db2", {"app": "db"}, node_name="n2", namespace="team-b"),
        ],
        {"team-a": {"t": "a"}, "team-b": {"t": "b"}},
        {"n2": (UNRES, AFF), "n3": (UNRES, AFF), "n4": (UNRES, AFF)},
    ),
    (
        "incoming affinity with an empty namespaceSelector matches every namespace",
        apod("p", affinity=(term(key="zone", match={"app": "db"}, ns_selector={}),)),
        CLUSTER,
        [apod("db", {"app": "db"}, node_name="n3", namespace="anywhere")],
        None,
        {"n1": (UNRES, AFF), "n2": (UNRES, AFF), "n4": (UNRES, AFF)},
    ),
    (
        "incoming anti-affinity namespaceSelector: pods of unlisted namespaces are ignored",
        apod(
            "p",
            anti=(term(key="zone", match={"app": "db"}, ns_selector={"matchLabels": {"t": "a"}}),),
        ),
        CLUSTER,
        [
            apod("db1", {"app": "db"}, node_name="n1", namespace="team-a"),
            apod("db2", {"app": "db"}, node_name="n2", namespace="team-b"),
        ],
        {"team-a": {"t": "a"}, "team-b": {"t": "b"}},
        {"n1": (UNSCHED, ANTI)},
    ),
    (
        "affinity failure wins over anti-affinity failure on the same node",
        apod(
            "p",
            affinity=(term(key="zone", match={"app": "db"}),),
            anti=(term(key="region", match={"app": "cache"}),),
        ),
        CLUSTER,
        [
            apod("db", {"app": "db"}, node_name="n1"),
            apod("cache", {"app": "cache"}, node_name="n3"),
        ],
        None,
        {"n2": (UNRES, AFF), "n3": (UNRES, AFF), "n4": (UNRES, AFF)},
    ),
]


@pytest.mark.parametrize(
    ("pod_", "nodes", "existing", "namespaces", "want"),
    [pytest.param(*row[1:], id=row[0]) for row in FILTER_ROWS],
)
def test_filter(
    pod_: dict[str, Any],
    nodes: list[dict[str, Any]],
    existing: list[dict[str, Any]],
    namespaces: dict[str, dict[str, str]] | None,
    want: dict[str, tuple[Code, str]],
) -> None:
    h = PluginHarness("InterPodAffinity", make_state(nodes, existing, namespaces))
    got = {
        name: (status.code, status.message)
        for name, status in h.filter(pod_).items()
        if not status.ok
    }
    assert got == want


def test_pre_filter_skips_when_nothing_to_check() -> None:
    state = make_state(CLUSTER, [apod("db", {"app": "db"}, node_name="n1")])
    h = PluginHarness("InterPodAffinity", state)
    result, status = h.plugin.pre_filter(CycleState(), parse_pod(apod("p", {"app": "web"})))
    assert result is None and status.is_skip


def test_pre_filter_runs_for_existing_anti_affinity() -> None:
    existing = apod("db", node_name="n1", anti=(term(key="zone", match={"app": "web"}),))
    h = PluginHarness("InterPodAffinity", make_state(CLUSTER, [existing]))
    _, status = h.plugin.pre_filter(CycleState(), parse_pod(apod("p", {"app": "web"})))
    assert status.ok


def test_explain_matches_filter_for_every_node() -> None:
    state = make_state(
        CLUSTER,
        [
            apod("db", {"app": "db"}, node_name="n1"),
            apod("x", node_name="n3", anti=(term(key="zone", match={"app": "web"}),)),
        ],
    )
    h = PluginHarness("InterPodAffinity", state)
    incoming = parse_pod(
        apod("p", {"app": "web"}, affinity=(term(key="region", match={"app": "db"}),))
    )
    cycle = CycleState()
    h.plugin.pre_filter(cycle, incoming)
    nodes = state.node_indices()
    ok = h.plugin.filter(cycle, incoming, nodes)
    for idx, passed in zip(nodes, ok, strict=True):
        assert h.plugin.explain(cycle, incoming, int(idx)).ok == bool(passed)


# ----- Score -----------------------------------------------------------------------------------
ZONES = [
    node("n1", labels={"zone": "a"}),
    node("n2", labels={"zone": "c"}),
    node("n3", labels={"zone": "b"}),
]

# (name, incoming pod, nodes, existing pods, args, wanted normalised scores; {} = PreScore Skip)
SCORE_ROWS: list[tuple[str, Any, Any, Any, dict[str, Any], dict[str, int]]] = [
    (
        "[derived] preferred affinity: the matching pod's zone gets 100",
        apod("p", pref_affinity=((5, term(key="zone", match={"app": "db"})),)),
        ZONES,
        [apod("db", {"app": "db"}, node_name="n1")],
        {},
        {"n1": 100, "n2": 0, "n3": 0},
    ),
    (
        "[derived] preferred anti-affinity: the matching pod's zone gets 0",
        apod("p", pref_anti=((5, term(key="zone", match={"app": "db"})),)),
        ZONES,
        [apod("db", {"app": "db"}, node_name="n1")],
        {},
        {"n1": 0, "n2": 100, "n3": 100},
    ),
    (
        "[derived] notes 5.7: raw [5, 0, -3] -> [100, 37, 0]",
        apod(
            "p",
            pref_affinity=((5, term(key="zone", match={"app": "db"})),),
            pref_anti=((3, term(key="zone", match={"app": "cache"})),),
        ),
        ZONES,
        [
            apod("db", {"app": "db"}, node_name="n1"),
            apod("cache", {"app": "cache"}, node_name="n3"),
        ],
        {},
        {"n1": 100, "n2": 37, "n3": 0},
    ),
    (
        "[derived] min-max uses the real minimum: raw [5, 2, 2] -> [100, 0, 0]",
        apod(
            "p",
            pref_affinity=(
                (3, term(key="zone", match={"app": "db"})),
                (2, term(key="all", match={"app": "db"})),
            ),
        ),
        [
            node("n1", labels={"zone": "a", "all": "x"}),
            node("n2", labels={"zone": "b", "all": "x"}),
            node("n3", labels={"zone": "c", "all": "x"}),
        ],
        [apod("db", {"app": "db"}, node_name="n1")],
        {},
        {"n1": 100, "n2": 0, "n3": 0},
    ),
    (
        "[derived] all raw scores equal -> all 0",
        apod("p", pref_affinity=((5, term(key="all", match={"app": "db"})),)),
        [node("n1", labels={"all": "x"}), node("n2", labels={"all": "x"})],
        [apod("db", {"app": "db"}, node_name="n1")],
        {},
        {"n1": 0, "n2": 0},
    ),
    (
        "[derived] existing pod's required affinity counts with hardPodAffinityWeight",
        apod("p", {"app": "web"}),
        ZONES,
        [apod("db", node_name="n3", affinity=(term(key="zone", match={"app": "web"}),))],
        {"hardPodAffinityWeight": 10},
        {"n1": 0, "n2": 0, "n3": 100},
    ),
    (
        "[derived] hardPodAffinityWeight 0 ignores existing required affinity (Skip)",
        apod("p", {"app": "web"}),
        ZONES,
        [apod("db", node_name="n3", affinity=(term(key="zone", match={"app": "web"}),))],
        {"hardPodAffinityWeight": 0},
        {},
    ),
    (
        "[derived] existing pod's preferred anti-affinity pushes the incoming pod away",
        apod("p", {"app": "web"}),
        ZONES,
        [apod("db", node_name="n2", pref_anti=((7, term(key="zone", match={"app": "web"})),))],
        {},
        {"n1": 100, "n2": 0, "n3": 100},
    ),
    (
        "[derived] existing pods' required anti-affinity does not score",
        apod("p", {"app": "web"}),
        ZONES,
        [apod("db", node_name="n2", anti=(term(key="zone", match={"app": "web"}),))],
        {},
        {},
    ),
    (
        "[derived] ignorePreferredTermsOfExistingPods with no preferred terms -> Skip",
        apod("p", {"app": "web"}),
        ZONES,
        [apod("db", node_name="n2", pref_affinity=((7, term(key="zone", match={"app": "web"})),))],
        {"ignorePreferredTermsOfExistingPods": True},
        {},
    ),
    (
        "[derived] ignorePreferredTermsOfExistingPods keeps the incoming pod's own terms",
        apod("p", {"app": "web"}, pref_affinity=((4, term(key="zone", match={"app": "db"})),)),
        ZONES,
        [apod("db", {"app": "db"}, node_name="n2")],
        {"ignorePreferredTermsOfExistingPods": True},
        {"n1": 0, "n2": 100, "n3": 0},
    ),
    (
        "[derived] preferred terms that cancel out still score (entry exists) -> all 0",
        apod(
            "p",
            pref_affinity=((4, term(key="zone", match={"app": "db"})),),
            pref_anti=((4, term(key="zone", match={"app": "db"})),),
        ),
        ZONES,
        [apod("db", {"app": "db"}, node_name="n2")],
        {},
        {"n1": 0, "n2": 0, "n3": 0},
    ),
    (
        "[derived] no matching pod anywhere -> Skip",
        apod("p", pref_affinity=((4, term(key="zone", match={"app": "db"})),)),
        ZONES,
        [apod("web", {"app": "web"}, node_name="n2")],
        {},
        {},
    ),
    (
        "[derived] preferred term's namespaceSelector restricts the pods it counts",
        apod(
            "p",
            pref_affinity=(
                (4, term(key="zone", match={"app": "db"}, ns_selector={"matchLabels": {"t": "a"}})),
            ),
        ),
        ZONES,
        [
            apod("db1", {"app": "db"}, node_name="n2", namespace="team-a"),
            apod("db2", {"app": "db"}, node_name="n3", namespace="team-b"),
        ],
        {},
        {"n1": 0, "n2": 100, "n3": 0},
    ),
]


@pytest.mark.parametrize(
    ("pod_", "nodes", "existing", "args", "want"),
    [pytest.param(*row[1:], id=row[0]) for row in SCORE_ROWS],
)
def test_score(
    pod_: dict[str, Any],
    nodes: list[dict[str, Any]],
    existing: list[dict[str, Any]],
    args: dict[str, Any],
    want: dict[str, int],
) -> None:
    namespaces = {"team-a": {"t": "a"}, "team-b": {"t": "b"}}
    h = PluginHarness("InterPodAffinity", make_state(nodes, existing, namespaces), args)
    assert h.score(pod_) == want


def test_pre_score_skips_with_no_nodes() -> None:
    h = PluginHarness("InterPodAffinity", make_state(ZONES))
    p = parse_pod(apod("p", pref_affinity=((4, term(key="zone", match={"app": "db"})),)))
    assert h.plugin.pre_score(CycleState(), p, np.array([], dtype=np.intp)).is_skip


# ----- args --------------------------------------------------------------------------------------
def test_args_defaults() -> None:
    a = InterPodAffinityArgs.model_validate({})
    assert a.hardPodAffinityWeight == 1
    assert a.ignorePreferredTermsOfExistingPods is False


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        pytest.param({"hardPodAffinityWeight": 0}, [], id="0 is allowed"),
        pytest.param({"hardPodAffinityWeight": 100}, [], id="100 is allowed"),
        pytest.param(
            {"hardPodAffinityWeight": 101},
            ["hardPodAffinityWeight: Invalid value: 101: not in valid range [0, 100]"],
            id="above range",
        ),
        pytest.param(
            {"hardPodAffinityWeight": -1},
            ["hardPodAffinityWeight: Invalid value: -1: not in valid range [0, 100]"],
            id="below range",
        ),
        pytest.param(
            {"hardPodAffinityWeigth": 2}, ["hardPodAffinityWeigth: unknown field"], id="typo"
        ),
    ],
)
def test_args_validation(raw: dict[str, Any], want: list[str]) -> None:
    try:
        InterPodAffinityArgs.model_validate(raw)
    except ValidationError as exc:
        assert format_validation_error(exc) == want
    else:
        assert want == []
