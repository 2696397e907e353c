"""NodeResourcesFit (LeastAllocated, MostAllocated) and NodeResourcesBalancedAllocation scores,
vectorised, against a line-by-line transcription of upstream's per-node Go code
(least_allocated.go, most_allocated.go, balanced_allocation.go, resource_allocation.go of 1.37) on
random clusters: nodes lacking a resource, extended resources, pods with and without requests.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from berth.objects import parse_node, parse_pod
from berth.objects.pod import PodInfo
from tests.builders import PluginHarness, make_state, node, pod

GPU = "example.com/gpu"
NATIVE = ("cpu", "memory", "ephemeral-storage")


def _go_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _alloc_req(
    raw_node: dict[str, Any], placed: list[PodInfo], p: PodInfo, name: str, non_zero: bool
) -> tuple[int, int]:
    """upstream calculateResourceAllocatableRequest for one node and resource."""
    info = parse_node(raw_node)
    alloc = info.allocatable.get(name, 0)
    if name not in NATIVE and "/" not in name:
        return 0, 0
    if non_zero and name == "cpu":
        return alloc, sum(q.nonzero_cpu for q in placed) + p.nonzero_cpu
    if non_zero and name == "memory":
        return alloc, sum(q.nonzero_memory for q in placed) + p.nonzero_memory
    want = p.requests.get(name, 0)
    if name not in NATIVE and want == 0:
        return 0, 0
    return alloc, sum(q.requests.get(name, 0) for q in placed) + want


def _fit_score(strategy: str, pairs: list[tuple[int, int, int]]) -> int:
    node_score = weight_sum = 0
    for alloc, req, weight in pairs:
        if alloc == 0:
            continue
        if strategy == "LeastAllocated":
            s = 0 if req > alloc else _go_div((alloc - req) * 100, alloc)
        else:
            s = _go_div(min(req, alloc) * 100, alloc)
        node_score += s * weight
        weight_sum += weight
    return 0 if weight_sum == 0 else _go_div(node_score, weight_sum)


def _balance(pairs: list[tuple[int, int]]) -> int:
    fractions = []
    total = 0.0
    for alloc, req in pairs:
        if alloc == 0:
            continue
        f = min(req / alloc, 1.0)
        total += f
        fractions.append(f)
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = total / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    return int((1 - std) * 100)


def _balanced(with_pod: list[tuple[int, int]], without: list[tuple[int, int]]) -> int:
    """balancedResourceScorer (1.37): the change in balance the pod makes, in [50, 100]."""
    return 50 + _go_div(50 + _balance(with_pod) - _balance(without), 2)


def _cluster(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = []
    for i in range(rng.randrange(1, 12)):
        extra: dict[str, str] = {}
        if rng.random() < 0.4:
            extra[GPU] = str(rng.randrange(0, 5))
        if rng.random() < 0.5:
            extra["ephemeral-storage"] = f"{rng.randrange(0, 100)}Gi"
        cpu = str(rng.choice([0, 1, 2, 4, 16]))
        nodes.append(node(f"n{i}", cpu=cpu, memory=f"{rng.randrange(0, 64)}Gi", extra=extra))
    placed = []
    for j in range(rng.randrange(0, 25)):
        target = rng.choice(nodes)["metadata"]["name"]
        placed.append(_random_pod(rng, f"p{j}", node_name=target))
    return nodes, placed


def _random_pod(rng: random.Random, name: str, node_name: str = "") -> dict[str, Any]:
    requests: dict[str, str] = {}
    if rng.random() < 0.8:
        requests["cpu"] = f"{rng.randrange(0, 3000)}m"
    if rng.random() < 0.8:
        requests["memory"] = f"{rng.randrange(0, 8000)}Mi"
    if rng.random() < 0.3:
        requests[GPU] = str(rng.randrange(0, 3))
    if rng.random() < 0.3:
        requests["ephemeral-storage"] = f"{rng.randrange(0, 10)}Gi"
    return pod(name, requests=requests, node_name=node_name)


@pytest.mark.parametrize("strategy", ["LeastAllocated", "MostAllocated"])
def test_fit_scores_equal_upstreams_per_node_code(strategy: str) -> None:
    rng = random.Random(11)
    resources = [
        {"name": "cpu", "weight": 1},
        {"name": "memory", "weight": 1},
        {"name": "ephemeral-storage", "weight": 2},
        {"name": GPU, "weight": 3},
        {"name": "pods", "weight": 1},  # not a scored resource upstream: ignored
    ]
    checked = 0
    for _ in range(150):
        nodes, placed = _cluster(rng)
        weights = rng.choice([resources[:2], resources])
        args = {"scoringStrategy": {"type": strategy, "resources": weights}}
        harness = PluginHarness("NodeResourcesFit", make_state(nodes, placed), args)
        incoming = _random_pod(rng, "incoming")
        got = harness.score(incoming)
        p = parse_pod(incoming)
        for raw_node in nodes:
            name = raw_node["metadata"]["name"]
            on_node = [parse_pod(q) for q in placed if q["spec"]["nodeName"] == name]
            pairs = [
                (*_alloc_req(raw_node, on_node, p, r["name"], True), r["weight"]) for r in weights
            ]
            assert got[name] == _fit_score(strategy, pairs), (strategy, name, pairs)
            checked += 1
    assert checked > 500


def test_balanced_allocation_equals_upstreams_per_node_code() -> None:
    rng = random.Random(12)
    checked = 0
    for _ in range(150):
        nodes, placed = _cluster(rng)
        resources = rng.choice(
            [
                [{"name": "cpu"}, {"name": "memory"}],
                [{"name": "cpu"}, {"name": "memory"}, {"name": GPU}],
                [{"name": "cpu"}, {"name": "memory"}, {"name": "ephemeral-storage"}, {"name": GPU}],
            ]
        )
        args = {"resources": [{**r, "weight": 1} for r in resources]}
        harness = PluginHarness("NodeResourcesBalancedAllocation", make_state(nodes, placed), args)
        incoming = _random_pod(rng, "incoming")
        got = harness.score(incoming)
        p = parse_pod(incoming)
        if all(p.requests.get(r["name"], 0) == 0 for r in resources):
            assert got == {}  # PreScore: Skip for a pod requesting none of them
            continue
        for raw_node in nodes:
            name = raw_node["metadata"]["name"]
            on_node = [parse_pod(q) for q in placed if q["spec"]["nodeName"] == name]
            pairs = [_alloc_req(raw_node, on_node, p, r["name"], False) for r in resources]
            without = [
                (a, q - p.requests.get(r["name"], 0))
                for (a, q), r in zip(pairs, resources, strict=True)
            ]
            assert got[name] == _balanced(pairs, without), (name, pairs)
            checked += 1
    assert checked > 500
