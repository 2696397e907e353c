"""ClusterState.matching_pods_per_node: the incremental per-(namespace, selector) counters equal a
full scan of every pod after random adds, removes, assumes, forgets, relabels, terminations and
node churn (slots freed and reused, arrays grown, counters evicted)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

import berth.state.cluster as cluster
from berth.objects import parse_node, parse_pod
from berth.objects.pod import PodInfo
from berth.objects.selectors import LabelSelector, parse_label_selector
from berth.state.cluster import ClusterState, IntArray
from tests.builders import node, pod

NAMESPACES = ("default", "other")
SELECTORS: list[dict[str, Any] | None] = [
    {"matchLabels": {"app": "a"}},
    {"matchLabels": {"app": "b", "tier": "web"}},
    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]},
    {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},  # no anchor: every pod
    {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["a"]}]},
    {  # an anchor plus a condition the anchor does not imply
        "matchLabels": {"tier": "db"},
        "matchExpressions": [{"key": "app", "operator": "DoesNotExist"}],
    },
    {},  # empty: counts nothing
    None,  # null: matches nothing
]


def compile_selectors() -> list[LabelSelector]:
    return [parse_label_selector(s, where="s", kind="Test", name="t") for s in SELECTORS]


def full_scan(state: ClusterState, namespace: str, selector: LabelSelector) -> IntArray:
    """What the plugin computed before the counters: every pod, upstream's rules."""
    out = np.zeros(len(state.present), dtype=np.int64)
    if selector.is_everything or selector.matches_nothing:
        return out
    for p in state.pods.values():
        if p.namespace != namespace or p.terminating or not selector.matches(p.labels):
            continue
        idx = state.index.get(state.pod_node[p.key])
        if idx is not None:
            out[idx] += 1
    return out


def random_pod(rng: random.Random, key: int) -> PodInfo:
    labels: dict[str, str] = {}
    if rng.random() < 0.8:
        labels["app"] = rng.choice("abc")
    if rng.random() < 0.6:
        labels["tier"] = rng.choice(["web", "db"])
    raw = pod(f"p{key}", namespace=rng.choice(NAMESPACES), labels=labels)
    if rng.random() < 0.15:
        raw["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return parse_pod(raw)


def check(state: ClusterState, selectors: list[LabelSelector]) -> None:
    for ns in NAMESPACES:
        for sel in selectors:
            got = state.matching_pods_per_node(ns, sel)
            np.testing.assert_array_equal(got, full_scan(state, ns, sel), err_msg=f"{ns} {sel}")


@pytest.mark.parametrize("seed", range(6))
def test_incremental_counts_equal_a_full_scan(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    if seed % 2:  # fewer counters than selectors x namespaces: eviction and rebuilds
        monkeypatch.setattr(cluster, "MAX_SELECTOR_COUNTS", 5)
    selectors = compile_selectors()
    state = ClusterState(capacity=4)  # grows as nodes arrive
    names = [f"n{i}" for i in range(12)]
    for name in names[:6]:
        state.upsert_node(parse_node(node(name)))
    pods: dict[str, PodInfo] = {}
    used: list[LabelSelector] = []  # counters are created lazily, as the plugin would
    for step in range(500):
        op = rng.random()
        if op < 0.35:  # a new pod, or a new version of a known one (labels, termination)
            key = rng.randrange(60)
            p = random_pod(rng, key)
            node_name = rng.choice(names)  # sometimes a node the state does not know (yet)
            if rng.random() < 0.5:
                state.assume_pod(p, node_name)
            else:
                state.add_pod(p, node_name)
            pods[p.key] = p
        elif op < 0.5 and pods:
            state.remove_pod(rng.choice(list(pods)))
        elif op < 0.6 and pods:
            state.forget_pod(rng.choice(list(pods)))
        elif op < 0.7 and pods:  # confirm an assumed pod where it was assumed
            key = rng.choice(list(pods))
            where = state.node_of(key)
            if where is not None:
                state.add_pod(state.pods[key], where)
        elif op < 0.78:
            state.remove_node(rng.choice(names))
        elif op < 0.88:
            labels = {"zone": rng.choice("xy")} if rng.random() < 0.5 else {}
            state.upsert_node(parse_node(node(rng.choice(names), labels=labels)))
        elif op < 0.95:
            sel = rng.choice(selectors)
            state.matching_pods_per_node(rng.choice(NAMESPACES), sel)
            used.append(sel)
        if step % 25 == 0 or op >= 0.95:
            check(state, used or selectors[:1])
    check(state, selectors)


def test_the_empty_and_null_selectors_keep_no_counter() -> None:
    state = ClusterState()
    state.upsert_node(parse_node(node("n1")))
    state.add_pod(parse_pod(pod("p", labels={"app": "a"}, node_name="n1")))
    for raw in ({}, None):
        sel = parse_label_selector(raw, where="s", kind="Test", name="t")
        assert not state.matching_pods_per_node("default", sel).any()
    assert not state._selector_counts


def _indexes(state: ClusterState) -> dict[str, Any]:
    """Every structure a relabel may touch, by keys, with each held copy checked to be the
    state's current one."""
    for bucket in [*state.pods_by_namespace.values(), *state.node_pods]:
        for key, held in bucket.items():
            assert held is state.pods[key]
    by_label = {}
    for ns, pairs in state.pods_by_label.items():
        for pair, bucket in pairs.items():
            assert all(held is state.pods[key] for key, held in bucket.items())
            by_label[(ns, pair)] = sorted(bucket)
    return {
        "by_label": by_label,
        "namespaces": {ns: sorted(b) for ns, b in state.pods_by_namespace.items()},
        "node_pods": [sorted(b) for b in state.node_pods],
        "assumed": sorted(state.assumed),
        "pod_node": dict(state.pod_node),
        "requested": state.requested.tolist(),
        "nonzero": state.nonzero.tolist(),
    }


@pytest.mark.parametrize("seed", range(4))
def test_relabel_leaves_the_state_as_add_pod_does(seed: int) -> None:
    """relabel_pod (a bound pod given the node's topology labels) against the whole
    remove-and-add: the same indexes, counters and accounting, relabel after relabel."""
    import dataclasses

    rng = random.Random(seed)
    selectors = compile_selectors()
    states = [ClusterState(), ClusterState()]
    names = [f"n{i}" for i in range(5)]
    for state in states:
        for name in names:
            state.upsert_node(parse_node(node(name)))
    for key in range(40):
        p = dataclasses.replace(random_pod(rng, key), requests={"cpu": 100 + key})
        where = rng.choice(names)
        for state in states:
            (state.assume_pod if key % 2 else state.add_pod)(p, where)
            if key == 20:  # counters exist for half the pods' arrival
                for sel in selectors:
                    state.matching_pods_per_node(rng.choice(NAMESPACES), sel)
    for _ in range(150):
        key = rng.choice(list(states[0].pods))
        current = states[0].pods[key]
        labels = dict(current.labels)
        for k in ("topology.kubernetes.io/zone", "app", "tier"):
            if rng.random() < 0.4:
                labels[k] = rng.choice("abcxy")
            elif rng.random() < 0.2:
                labels.pop(k, None)
        copy = dataclasses.replace(
            current, labels=labels, node_name=states[0].pod_node[key], resource_version="9"
        )
        states[0].relabel_pod(copy)
        states[1].add_pod(copy)
        assert _indexes(states[0]) == _indexes(states[1])
    for state in states:
        check(state, selectors)
    assert _indexes(states[0]) == _indexes(states[1])
