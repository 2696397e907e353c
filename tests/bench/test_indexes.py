"""The ClusterState label indexes the affinity plugins use must never miss a pod: whatever they
return is a superset of what a full scan matches, and removing pods leaves no trace."""

from __future__ import annotations

import random

import pytest

from berth.objects import parse_pod
from berth.objects.pod import PodInfo
from berth.objects.selectors import parse_label_selector
from berth.state.cluster import ClusterState

KEYS = ["app", "tier", "zone"]
VALUES = ["a", "b", "c"]


def _selector(rng: random.Random) -> dict[str, object]:
    labels = {k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randint(0, 2))}
    exprs = []
    for k in rng.sample(KEYS, rng.randint(0, 2)):
        op = rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
        values = rng.sample(VALUES, 2) if op in ("In", "NotIn") else []
        exprs.append({"key": k, "operator": op, "values": values})
    return {"matchLabels": labels, "matchExpressions": exprs}


def _term(rng: random.Random) -> dict[str, object]:
    term: dict[str, object] = {"labelSelector": _selector(rng), "topologyKey": "zone"}
    if rng.random() < 0.3:
        term["namespaces"] = ["ns-0", "ns-1"]
    return term


def _pod(rng: random.Random, i: int) -> PodInfo:
    labels = {k: rng.choice(VALUES) for k in KEYS if rng.random() < 0.7}
    affinity: dict[str, object] = {}
    if rng.random() < 0.5:
        affinity["podAntiAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [_term(rng)],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 3, "podAffinityTerm": _term(rng)}
            ],
        }
    if rng.random() < 0.5:
        affinity["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [_term(rng)],
        }
    return parse_pod(
        {
            "metadata": {"name": f"p{i}", "namespace": f"ns-{i % 2}", "labels": labels},
            "spec": {
                "nodeName": "n1",
                "affinity": affinity,
                "containers": [{"name": "c", "image": "x"}],
            },
        }
    )


@pytest.mark.parametrize("seed", range(5))
def test_indexes_return_supersets_of_what_a_scan_matches(seed: int) -> None:
    rng = random.Random(seed)
    state = ClusterState()
    pods = [_pod(rng, i) for i in range(150)]
    for p in pods:
        state.add_pod(p)
    for p in pods[::3]:  # removals must clean every index
        state.remove_pod(p.key)
    placed = list(state.pods.values())
    ns_labels: dict[str, dict[str, str]] = {}
    for _ in range(40):
        sel = parse_label_selector(_selector(rng), where="s", kind="Pod", name="x")
        for ns in ("ns-0", "ns-1"):
            got = {p.key for p in state.pods_selected_in(ns, sel)}
            want = {p.key for p in placed if p.namespace == ns and sel.matches(p.labels)}
            assert want <= got
            assert got <= {p.key for p in placed if p.namespace == ns}
    for incoming in [_pod(rng, 1000 + i) for i in range(40)]:
        anti = {p.key for p in state.anti_affinity_holders(incoming)}
        want_anti = {
            p.key
            for p in placed
            if any(t.matches_pod(incoming, ns_labels) for t in p.required_anti_affinity)
        }
        assert want_anti <= anti <= set(state.pods_with_required_anti_affinity)
        scored = {p.key for p in state.affinity_holders(incoming)}
        want_scored = {
            p.key
            for p in placed
            if any(t.matches_pod(incoming, ns_labels) for t in p.required_affinity)
            or any(t.matches_pod(incoming, ns_labels) for _, t in p.preferred_affinity)
            or any(t.matches_pod(incoming, ns_labels) for _, t in p.preferred_anti_affinity)
        }
        assert want_scored <= scored <= set(state.pods_with_affinity)
    for p in placed:
        state.remove_pod(p.key)
    assert not state.pods_by_label
    assert not state.anti_affinity_by_label
    assert not state.affinity_by_label
