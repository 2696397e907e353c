"""ClusterState bookkeeping that decisions rely on: pods seen before their node, nodes that go
away and come back, assume/forget."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from berth.objects import parse_node, parse_pod
from berth.objects.selectors import parse_label_selector
from berth.state.cluster import CPU, PODS, ClusterState
from berth.state.whatif import what_if
from tests.builders import node, pod


def test_pods_seen_before_their_node_are_counted_when_it_arrives() -> None:
    state = ClusterState()
    state.add_pod(parse_pod(pod("early", cpu="1", node_name="n1")))
    state.upsert_node(parse_node(node("n1")))
    idx = state.index["n1"]
    assert state.requested[idx, CPU] == 1000 and state.requested[idx, PODS] == 1
    state.upsert_node(parse_node(node("n1", labels={"x": "y"})))  # an update counts nothing twice
    assert state.requested[idx, PODS] == 1


def test_removed_node_keeps_its_pods_for_when_it_returns() -> None:
    state = ClusterState()
    state.upsert_node(parse_node(node("n1")))
    state.add_pod(parse_pod(pod("p", cpu="1", node_name="n1")))
    state.remove_node("n1")
    state.upsert_node(parse_node(node("n1")))
    assert state.requested[state.index["n1"], CPU] == 1000
    state.remove_node("n1")
    state.remove_pod("default/p")
    state.upsert_node(parse_node(node("n1")))
    assert state.requested[state.index["n1"], PODS] == 0


def test_random_operations_keep_requested_equal_to_the_pods_placed() -> None:
    rng = random.Random(7)
    state = ClusterState(capacity=4)
    names = [f"n{i}" for i in range(6)]
    live: set[str] = set()
    for step in range(600):
        op = rng.random()
        name = rng.choice(names)
        if op < 0.25:
            state.upsert_node(parse_node(node(name)))
        elif op < 0.35:
            state.remove_node(name)
        elif op < 0.7:
            key = f"p{rng.randrange(40)}"
            raw = pod(key, cpu=f"{rng.randrange(1, 5)}00m", node_name=name)
            if rng.random() < 0.5:
                state.assume_pod(parse_pod(raw), name)
            else:
                state.add_pod(parse_pod(raw))
            live.add(f"default/{key}")
        else:
            key = f"default/p{rng.randrange(40)}"
            if rng.random() < 0.5:
                state.forget_pod(key)
            else:
                state.remove_pod(key)
        for n, idx in state.index.items():
            want = [p for k, p in state.pods.items() if state.pod_node[k] == n]
            assert state.requested[idx, PODS] == len(want), step
            assert state.requested[idx, CPU] == sum(p.requests.get("cpu", 0) for p in want), step


def test_label_column_has_equals_isin() -> None:
    """`LabelColumn.has` (a lookup table) against np.isin, with missing labels, unknown
    values (code -2) and repeats."""
    import random

    import numpy as np

    from berth.state.cluster import MISSING, LabelColumn

    rng = random.Random(5)
    for _ in range(300):
        n_values = rng.randrange(0, 12)
        col = LabelColumn(
            np.array(
                [rng.choice([MISSING, *range(n_values)]) for _ in range(rng.randrange(0, 60))],
                dtype=np.int32,
            ),
            {f"v{i}": i for i in range(n_values)},
        )
        wanted = [rng.choice([-2, MISSING, *range(n_values)]) for _ in range(rng.randrange(0, 5))]
        want = np.isin(col.codes, [w for w in wanted if w >= 0])
        assert col.has(col.codes, wanted).tolist() == want.tolist()


def _fingerprint(state: ClusterState) -> tuple[object, ...]:
    """Everything a decision reads of the placed pods, node order included."""
    return (
        state.requested.tolist(),
        state.nonzero.tolist(),
        [list(pods) for pods in state.node_pods],
        sorted(state.assumed),
        sorted(state.pod_node.items()),
        {ns: sorted(p) for ns, p in state.pods_by_namespace.items()},
        {ns: {k: sorted(v) for k, v in idx.items()} for ns, idx in state.pods_by_label.items()},
        {i: dict(c) for i, c in state.node_ports.items()},
        state.matching_pods_per_node("default", SELECT_APP_A).tolist(),
    )


SELECT_APP_A = parse_label_selector({"matchLabels": {"app": "a"}}, where="", kind="", name="")


@settings(max_examples=200, deadline=None)
@given(
    placed=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["a", "b"]), st.booleans()), max_size=12
    ),
    steps=st.lists(
        st.tuples(st.sampled_from(["remove", "restore", "add"]), st.integers(0, 15)), max_size=20
    ),
)
def test_a_what_if_leaves_the_state_as_it_found_it(
    placed: list[tuple[int, str, bool]], steps: list[tuple[str, int]]
) -> None:
    state = ClusterState(capacity=2)
    for i in range(4):
        state.upsert_node(parse_node(node(f"n{i}")))
    for k, (n, app, assumed) in enumerate(placed):
        raw = pod(f"p{k}", cpu="100m", labels={"app": app}, node_name=f"n{n}")
        raw["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8000 + k % 3}]
        if assumed:
            state.assume_pod(parse_pod(raw), f"n{n}")
        else:
            state.add_pod(parse_pod(raw))
    state.matching_pods_per_node("default", SELECT_APP_A)  # built first: kept current after
    before = _fingerprint(state)
    with what_if(state) as hypothesis:
        for op, k in steps:
            key = f"default/p{k}"
            if op == "remove":
                hypothesis.remove(key)
            elif op == "restore":
                hypothesis.restore(key)
            elif key not in state.pods:
                hypothesis.add(parse_pod(pod(f"p{k}", cpu="1", labels={"app": "a"})), f"n{k % 4}")
    assert _fingerprint(state) == before
