"""ClusterState's label columns: built ahead of decisions (`prepare_label_columns`) or on first
use, they stay equal to the nodes' labels through adds, relabels, status updates that keep the
labels, removals, slots reused and arrays grown; a key no node carries reads MISSING everywhere."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from berth.engine import Engine
from berth.framework.cycle import Reserved
from berth.objects import parse_node, parse_pod
from berth.state.cluster import MISSING, ClusterState
from tests.builders import node, pod

KEYS = ("zone", "rack", "disk", "gpu")


def assert_columns_match_labels(state: ClusterState, keys: tuple[str, ...]) -> None:
    """Each column's code of every slot is its node's value of the key (MISSING without it)."""
    for key in keys:
        col = state.label_column(key)
        assert len(col.codes) == len(state.present), key
        for idx in range(len(state.present)):
            n = state.nodes[idx]
            value = None if n is None else n.labels.get(key)
            want = MISSING if value is None else col.values[value]
            assert col.codes[idx] == want, (key, idx, value)


@dataclass
class Case:
    name: str
    nodes: dict[str, dict[str, str]]
    limit: int
    built: set[str]  # the columns prepare_label_columns builds


CASES = [
    Case("no nodes", {}, 32, set()),
    Case(
        "every key on some node",
        {"n1": {"zone": "a"}, "n2": {"zone": "b", "rack": "r1"}},
        32,
        {"kubernetes.io/hostname", "zone", "rack"},
    ),
    Case(
        "the keys most nodes carry first, up to the limit",
        {"n1": {"zone": "a", "rack": "r1"}, "n2": {"zone": "b"}, "n3": {"zone": "a"}},
        2,
        {"kubernetes.io/hostname", "zone"},
    ),
    Case("a limit of zero builds nothing", {"n1": {"zone": "a"}}, 0, set()),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_prepare_label_columns(case: Case) -> None:
    state = ClusterState(capacity=2)
    for name, labels in case.nodes.items():
        state.upsert_node(parse_node(node(name, labels=labels)))
    state.prepare_label_columns(limit=case.limit)
    assert set(state._label_cols) == case.built
    state.prepare_label_columns(limit=case.limit)  # once built, a no-op
    assert set(state._label_cols) == case.built
    assert_columns_match_labels(state, (*KEYS, "kubernetes.io/hostname"))


def test_a_key_no_node_carries_any_more_reads_missing() -> None:
    state = ClusterState()
    state.upsert_node(parse_node(node("n1", labels={"gpu": "a100"})))
    state.upsert_node(parse_node(node("n1")))  # relabelled: the key is gone
    state.upsert_node(parse_node(node("n2", labels={"zone": "a"})))
    state.remove_node("n2")
    assert (state.label_column("gpu").codes == MISSING).all()
    assert_columns_match_labels(state, ("gpu", "zone"))
    state.upsert_node(parse_node(node("n2", labels={"zone": "b"})))  # and back on a node
    assert_columns_match_labels(state, ("gpu", "zone"))


def test_random_node_churn_keeps_every_column_equal_to_the_labels() -> None:
    rng = random.Random(11)
    state = ClusterState(capacity=2)
    names = [f"n{i}" for i in range(12)]
    for _ in range(800):
        name = rng.choice(names)
        op = rng.random()
        if op < 0.6:
            labels = {k: rng.choice("ab") for k in KEYS if rng.random() < 0.5}
            current = state.nodes[state.index[name]] if name in state.index else None
            if current is not None and rng.random() < 0.3:
                labels = dict(current.labels)  # a status update: the same labels
                labels.pop("kubernetes.io/hostname")
            state.upsert_node(parse_node(node(name, labels=labels)))
        elif op < 0.8:
            state.remove_node(name)
        elif op < 0.9:
            state.prepare_label_columns(limit=rng.randrange(0, 4))
        else:
            state.label_column(rng.choice(KEYS))  # one built on first use, mid-way
        assert_columns_match_labels(state, tuple(state._label_cols))
    assert_columns_match_labels(state, KEYS)


def test_engine_prepare_builds_the_columns_a_node_selector_reads() -> None:
    """The columns come before the decisions: the first pod selecting on a node label builds
    none (a scan of every node inside that decision)."""
    engine = Engine(seed=1)
    for i in range(4):
        engine.state.upsert_node(parse_node(node(f"n{i}", labels={"zone": "ab"[i % 2]})))
    engine.prepare()
    built = set(engine.state._label_cols)
    assert {"zone", "kubernetes.io/hostname"} <= built
    outcome = engine.schedule(parse_pod(pod("p", spec={"nodeSelector": {"zone": "b"}})))
    assert isinstance(outcome, Reserved) and outcome.node in ("n1", "n3")
    assert set(engine.state._label_cols) == built
