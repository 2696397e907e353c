"""The benchmark's placement verification on hand-made final states: valid states pass, and each
kind of violation is caught and named (workload, pod, node, rule)."""

from __future__ import annotations

from typing import Any

import pytest

from berth.bench.errors import BenchError
from berth.bench.verify import PlacementError, Verification, pod_requests, verify_placements

JSON = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def node(name: str, zone: str = "a", *, cpu: str = "4", pods: str = "110", **spec: Any) -> JSON:
    labels = {HOST: name, ZONE: f"zone-{zone}", **spec.pop("labels", {})}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": pods}},
    }


def pod(name: str, on: str, *, cpu: str = "100m", labels: JSON | None = None, **spec: Any) -> JSON:
    return {
        "metadata": {"name": name, "namespace": "bench", "labels": labels or {}},
        "spec": {
            "nodeName": on,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
            **spec,
        },
    }


def verify(nodes: list[JSON], running: list[JSON], placed: list[JSON], **kw: Any) -> Verification:
    """`placed` pods are the ones the scheduler bound (once each, to their node)."""
    bindings = {("bench", p["metadata"]["name"]): [p["spec"]["nodeName"]] for p in placed}
    return verify_placements(
        workload="W",
        nodes=nodes,
        pods=running + placed,
        expected=list(bindings),
        bindings=kw.pop("bindings", bindings),
        **kw,
    )


def violations(*args: Any, **kw: Any) -> list[str]:
    with pytest.raises(PlacementError) as err:
        verify(*args, **kw)
    assert isinstance(err.value, BenchError)
    assert str(err.value).startswith("W: ")
    return err.value.violations


def anti(app: str, key: str = HOST) -> JSON:
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}
            ]
        }
    }


def spread(app: str, max_skew: int = 1, **extra: Any) -> list[JSON]:
    return [
        {
            "maxSkew": max_skew,
            "topologyKey": ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": app}},
            **extra,
        }
    ]


THREE_ZONES = [node("n1", "a"), node("n2", "b"), node("n3", "c")]


def test_a_valid_state_passes_and_counts_its_checks() -> None:
    placed = [
        pod(
            "p1",
            "n1",
            labels={"app": "x"},
            affinity=anti("x"),
            topologySpreadConstraints=spread("x"),
        ),
        pod(
            "p2",
            "n2",
            labels={"app": "x"},
            affinity=anti("x"),
            topologySpreadConstraints=spread("x"),
        ),
    ]
    result = verify(THREE_ZONES, [pod("r1", "n3", cpu="3")], placed)
    assert result.violations == [] and result.checks > 10
    assert (result.spread_groups, result.spread_groups_skipped) == (1, 0)


def test_an_over_committed_node_is_caught() -> None:
    found = violations([node("n1")], [pod("r1", "n1", cpu="3")], [pod("p1", "n1", cpu="1500m")])
    assert found == [
        "node n1: requests of cpu 4500 > allocatable 4000 (cpu in millicores; placed there "
        "asking for it: pod bench/p1 on n1)"
    ]


def test_over_commitment_the_placed_pods_do_not_ask_for_is_not_theirs() -> None:
    # upstream's Fit skips resources a pod does not request: a best-effort pod may join a node
    # that its running pods already over-commit.
    best_effort = pod("p1", "n1")
    best_effort["spec"]["containers"][0]["resources"] = {}
    assert verify([node("n1")], [pod("r1", "n1", cpu="5")], [best_effort]).violations == []


def test_too_many_pods_on_a_node_is_caught() -> None:
    found = violations(
        [node("n1", pods="2")], [pod("r1", "n1")], [pod("p1", "n1"), pod("p2", "n1")]
    )
    assert found == ["node n1: 3 pods > allocatable pods 2 (last placed: pod bench/p2 on n1)"]


def test_effective_requests_follow_upstream_init_container_sidecar_and_overhead_rule() -> None:
    raw = pod("p", "n1", cpu="1")
    raw["spec"]["initContainers"] = [
        {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
        {"name": "init", "resources": {"limits": {"cpu": "2", "example.com/gpu": "1"}}},
    ]
    raw["spec"]["overhead"] = {"cpu": "10m"}
    # max(1 + 0.5 sidecar, 2 + 0.5 sidecar before it) + overhead; limits default the requests
    assert pod_requests(raw) == {"cpu": 2510, "example.com/gpu": 1}
    found = violations([node("n1", cpu="2")], [], [raw])
    assert any("cpu 2510 > allocatable 2000" in v for v in found)
    assert any("example.com/gpu 1 > allocatable 0" in v for v in found)


def test_required_anti_affinity_is_caught_in_both_directions() -> None:
    # the placed pod's own term against a running pod
    found = violations(
        [node("n1")], [pod("r1", "n1", labels={"app": "x"})], [pod("p1", "n1", affinity=anti("x"))]
    )
    assert found == [
        "pod bench/p1 on n1: required pod anti-affinity (kubernetes.io/hostname=n1, selector "
        '{"matchLabels":{"app":"x"}}) violated by pod bench/r1 on n1'
    ]
    # a running pod's term against the placed pod (the symmetric check)
    found = violations(
        [node("n1")], [pod("r1", "n1", affinity=anti("x"))], [pod("p1", "n1", labels={"app": "x"})]
    )
    assert found[0].startswith("pod bench/r1 on n1: required pod anti-affinity")
    assert found[0].endswith("violated by pod bench/p1 on n1")


def test_anti_affinity_among_running_pods_only_is_not_blamed_on_the_scheduler() -> None:
    running = [pod(f"r{i}", "n1", labels={"app": "x"}, affinity=anti("x")) for i in range(2)]
    assert verify([node("n1"), node("n2")], running, [pod("p1", "n2")]).violations == []


def test_zone_anti_affinity_and_required_affinity() -> None:
    nodes = [node("n1", "a"), node("n2", "a"), node("n3", "b")]
    found = violations(
        nodes, [pod("r1", "n1", labels={"app": "x"})], [pod("p1", "n2", affinity=anti("x", ZONE))]
    )
    assert "topology.kubernetes.io/zone=zone-a" in found[0]
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": ZONE}
            ]
        }
    }
    running = [pod("db", "n1", labels={"app": "db"})]
    assert verify(nodes, running, [pod("p1", "n2", affinity=affinity)]).violations == []
    found = violations(nodes, running, [pod("p1", "n3", affinity=affinity)])
    assert found == [
        "pod bench/p1 on n3: required pod affinity: no matching pod in the topology domain"
    ]
    # the first of a series that matches its own term is allowed (upstream's exception)
    first = pod("p1", "n3", labels={"app": "db"}, affinity=affinity)
    assert verify(nodes, [], [first]).violations == []


def test_skew_beyond_max_skew_is_caught() -> None:
    placed = [
        pod(f"p{i}", "n1", labels={"app": "x"}, topologySpreadConstraints=spread("x"))
        for i in range(2)
    ]
    found = violations(THREE_ZONES, [], placed)
    assert found == [
        "pod bench/p1 on n1: topology spread (topology.kubernetes.io/zone, maxSkew 1, selector "
        "{\"matchLabels\":{\"app\":\"x\"}}, counts {'zone-a': 2, 'zone-b': 0, 'zone-c': 0}): "
        "skew 2 > 1 (maxSkew, or the skew of the pods already running: 0)"
    ]


def test_skew_the_running_pods_already_had_is_tolerated_but_not_increased() -> None:
    running = [pod(f"r{i}", "n1", labels={"app": "x"}) for i in range(3)]  # skew 3 before
    balanced = [
        pod(f"p{i}", on, labels={"app": "x"}, topologySpreadConstraints=spread("x"))
        for i, on in enumerate(["n2", "n3", "n2", "n3"])
    ]
    assert verify(THREE_ZONES, running, balanced).violations == []
    worse = [
        pod(f"p{i}", on, labels={"app": "x"}, topologySpreadConstraints=spread("x"))
        for i, on in enumerate(["n1", "n2"])
    ]
    found = violations(THREE_ZONES, running, worse)
    assert "skew 4 > 3" in found[0]


def test_spread_counts_only_eligible_domains_and_skips_groups_it_cannot_judge() -> None:
    nodes = [
        node("n1", "a", labels={"pool": "p"}),
        node("n2", "b", labels={"pool": "p"}),
        node("n3", "c"),
    ]
    only_pool = {"nodeSelector": {"pool": "p"}}
    placed = [
        pod(f"p{i}", on, labels={"app": "x"}, topologySpreadConstraints=spread("x"), **only_pool)
        for i, on in enumerate(["n1", "n2"])
    ]
    assert verify(nodes, [], placed).violations == []  # zone-c is not eligible: skew 0
    # a placed pod matching the selector without the constraint: no guarantee, skipped
    result = verify(nodes, [], [*placed, pod("other", "n1", labels={"app": "x"})])
    assert (result.spread_groups, result.spread_groups_skipped) == (1, 1)


def test_an_untolerated_taint_and_a_mismatched_node_selector_are_caught() -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    nodes = [node("n1", taints=[taint])]
    found = violations(nodes, [], [pod("p1", "n1")])
    assert found == [
        'pod bench/p1 on n1: taint {"effect":"NoSchedule","key":"dedicated","value":"gpu"} '
        "of the node is not tolerated"
    ]
    tolerating = pod("p1", "n1", tolerations=[{"key": "dedicated", "operator": "Exists"}])
    assert verify(nodes, [], [tolerating]).violations == []
    prefer_no = [node("n1", taints=[{**taint, "effect": "PreferNoSchedule"}])]
    assert verify(prefer_no, [], [pod("p1", "n1")]).violations == []
    found = violations([node("n1")], [], [pod("p1", "n1", nodeSelector={"pool": "gpu"})])
    assert found == [
        "pod bench/p1 on n1: nodeSelector / required node affinity does not match the node"
    ]
    cordoned = [node("n1", unschedulable=True)]
    assert violations(cordoned, [], [pod("p1", "n1")]) == [
        "pod bench/p1 on n1: the node is cordoned (spec.unschedulable)"
    ]


def test_bindings_are_checked_once_each_and_to_existing_nodes() -> None:
    placed = [pod("p1", "n1"), pod("p2", "nope")]
    found = violations(
        [node("n1")],
        [],
        placed,
        bindings={("bench", "p1"): ["n9", "n1"], ("bench", "p2"): ["nope"]},
    )
    assert found == [
        "pod bench/p1: bound 2 times ['n9', 'n1']",
        "pod bench/p2 on nope: bound to a node that does not exist",
    ]
    found = violations([node("n1")], [], [pod("p1", "n1")], bindings={}, deleted=[("bench", "r")])
    assert found == [
        "pod bench/p1: never bound",
        "pod bench/r: deleted during the run (nothing here preempts)",
    ]


def test_a_violation_fails_berth_bench_with_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from berth.bench import runner
    from berth.cli import main

    def bad(*args: Any, **kwargs: Any) -> JSON:
        raise PlacementError(
            "SchedulingBasic", ["node n1: requests of cpu 5000 > allocatable 4000"]
        )

    monkeypatch.setattr(runner, "run_workload", bad)
    result = CliRunner().invoke(main, ["bench", "--size", "tiny", "-w", "SchedulingBasic"])
    assert result.exit_code == 1
    assert "SchedulingBasic: 1 placement violation(s):" in result.output
    assert "node n1: requests of cpu 5000 > allocatable 4000" in result.output


def test_one_selector_matcher_serves_the_api_server_and_the_verifier() -> None:
    """`label_selector_matches`: the embedded API server passes over an operator it does not
    know (its PDBs are not validated); the verifier, which must not pass what it cannot read,
    fails the match."""
    from berth.cluster.selectors import label_selector_matches

    labels = {"app": "web", "tier": "front"}
    odd = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "x", "operator": "Near"}]}
    assert label_selector_matches(odd, labels)
    assert not label_selector_matches(odd, labels, unknown_operator=False)
    for selector, want in (
        (None, False),
        ({}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, False),
        ({"matchExpressions": [{"key": "db", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "db", "operator": "Exists"}]}, False),
    ):
        assert label_selector_matches(selector, labels) is want, selector
        assert label_selector_matches(selector, labels, unknown_operator=False) is want, selector
