"""The rebalancer's decisions offline (upstream-style rows): a node is acted on only after
consecutiveSamples samples over; low-priority pods first; only pods the scheduler's profile
places on a better node (never one that fits nowhere else, never one a tie could put back);
DefaultEvictor's protections; the per-node, per-namespace and total limits; the room a move
reserves is seen by the next one; the engine's state is left as it was."""

from __future__ import annotations

from typing import Any

import pytest

from berth.config import parse_config
from berth.config.rebalance import RebalanceConfig
from berth.engine import Engine
from berth.feed import Feed
from berth.rebalance.evictable import protection, qos_class
from berth.rebalance.planner import Breaches, plan, read, settings_of
from tests.builders import node, pod

CPU = "sim.berth.io/cpu-utilization"


def config(**rebalance: Any) -> dict[str, Any]:
    return {
        "metricSources": [{"name": "ann", "type": "node-annotation"}],
        "profiles": [
            {
                "plugins": {"multiPoint": {"enabled": [{"name": "MetricScore", "weight": 5}]}},
                "pluginConfig": [
                    {
                        "name": "MetricScore",
                        "args": {"metrics": [{"name": "cpu", "source": "ann", "query": CPU}]},
                    }
                ],
            }
        ],
        "rebalance": {"metrics": [{"metric": "cpu", "high": 80, "low": 50}], **rebalance},
    }


def owned(raw: dict[str, Any], kind: str = "ReplicaSet") -> dict[str, Any]:
    raw["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": kind, "name": "rs", "uid": "rs-uid", "controller": True}
    ]
    return raw


def budget(name: str, app: str, allowed: int, disrupted: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}},
        "status": {
            "disruptionsAllowed": allowed,
            "disruptedPods": {p: "2026-01-01T00:00:00Z" for p in disrupted},
        },
    }


def hot_cluster(
    load: dict[str, float],
    pods: list[dict[str, Any]],
    objects: tuple[dict[str, Any], ...] = (),
    **rebalance: Any,
):
    engine = Engine(config=parse_config(config(**rebalance)), seed=0)
    feed = Feed(state=engine.state, ports=engine.ports, responsible=engine.schedules)
    for name, value in load.items():
        raw = node(name, cpu="4")
        raw["metadata"]["annotations"] = {CPU: str(value)}
        feed.add(raw)
    raws = {}
    for raw in pods:
        feed.add(raw)
        raws[f"{raw['metadata']['namespace']}/{raw['metadata']['name']}"] = raw
    for obj in objects:
        feed.add(obj)
    assert not engine.sample_metrics()
    return engine, raws


def run(engine: Engine, raws: dict[str, Any], samples: int, blocked: tuple[str, ...] = ()):
    settings = settings_of(engine)
    breaches = Breaches()
    for _ in range(samples):
        breaches.observe(read(engine, settings))
    return plan(engine, settings, read(engine, settings), breaches, raws, blocked)


def web(name: str, node_name: str = "hot", **kw: Any) -> dict[str, Any]:
    return owned(pod(name, cpu=kw.pop("cpu", "500m"), node_name=node_name, **kw))


@pytest.mark.parametrize(("samples", "moves"), [(1, 0), (2, 0), (3, 1), (5, 1)])
def test_a_node_is_acted_on_after_consecutive_samples(samples: int, moves: int) -> None:
    engine, raws = hot_cluster({"hot": 95, "cool": 20}, [web("w1")])
    planned = run(engine, raws, samples)
    assert len(planned.moves) == moves
    if moves:
        (move,) = planned.moves
        assert (move.source, move.destination) == ("hot", "cool")
        assert move.why == f"cpu 95 above 80 for {samples} samples"


def test_one_sample_under_starts_the_count_again() -> None:
    engine, _ = hot_cluster({"hot": 95, "cool": 20}, [])
    settings = settings_of(engine)
    breaches = Breaches()
    breaches.observe(read(engine, settings))
    breaches.observe(read(engine, settings))
    assert breaches.counts["hot"] == 2
    engine.ports.metrics.update(settings.thresholds[0].spec.key, {"hot": 60, "cool": 20})
    breaches.observe(read(engine, settings))
    assert breaches.counts["hot"] == 0


def test_low_priority_first_then_best_effort() -> None:
    pods = [
        web("high", priority=100),
        web(
            "low-guaranteed",
            priority=1,
            containers=[
                {
                    "name": "c",
                    "image": "x",
                    "resources": {
                        "requests": {"cpu": "1", "memory": "1Gi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                }
            ],
        ),
        web("low-besteffort", priority=1, containers=[{"name": "c", "image": "x"}]),
    ]
    engine, raws = hot_cluster({"hot": 95, "cool": 20}, pods, maxEvictionsPerNode=3)
    planned = run(engine, raws, 3)
    assert [m.pod.name for m in planned.moves] == ["low-besteffort", "low-guaranteed", "high"]
    assert qos_class(raws["default/low-besteffort"]) == "BestEffort"


def test_a_pod_that_fits_nowhere_else_stays() -> None:
    pinned = web("pinned", spec={"nodeSelector": {"kubernetes.io/hostname": "hot"}})
    too_big = web("big", cpu="3500m")
    engine, raws = hot_cluster(
        {"hot": 95, "cool": 20},
        [pinned, too_big, web("filler", node_name="cool", cpu="1")],
        maxEvictionsPerNode=5,
    )
    planned = run(engine, raws, 3)
    assert not planned.moves
    kept = {s.pod: s.why for s in planned.skips}
    assert kept["default/pinned"] == "fits on no other node"
    assert kept["default/big"] == "fits on no other node"


def test_no_move_to_a_node_that_is_not_under_the_low_threshold() -> None:
    engine, raws = hot_cluster({"hot": 95, "warm": 70}, [web("w1")])
    planned = run(engine, raws, 3)
    assert not planned.moves
    assert planned.note.startswith("0 nodes under every low threshold")


def test_the_room_a_move_takes_is_reserved_for_the_pass() -> None:
    """The cool node holds one more of these; the second candidate sees the first there."""
    pods = [web("a", cpu="2"), web("b", cpu="2"), web("filler", node_name="cool", cpu="1500m")]
    engine, raws = hot_cluster({"hot": 95, "cool": 20}, pods, maxEvictionsPerNode=5)
    before = {k: engine.state.node_of(k) for k in raws}
    planned = run(engine, raws, 3)
    assert [m.pod.name for m in planned.moves] == ["a"]
    assert any(s.pod == "default/b" and s.why == "fits on no other node" for s in planned.skips)
    assert {k: engine.state.node_of(k) for k in raws} == before  # the plan changed nothing


@pytest.mark.parametrize(
    ("limits", "count"),
    [
        ({"maxEvictionsPerNode": 1}, 1),
        ({"maxEvictionsPerNode": 3}, 3),
        ({"maxEvictionsPerNode": 3, "maxEvictionsTotal": 2}, 2),
        ({"maxEvictionsPerNode": 3, "maxEvictionsPerNamespace": 1}, 1),
    ],
)
def test_limits(limits: dict[str, int], count: int) -> None:
    engine, raws = hot_cluster({"hot": 95, "cool": 20}, [web(f"w{i}") for i in range(4)], **limits)
    assert len(run(engine, raws, 3).moves) == count


def test_a_tie_with_its_own_node_is_no_move() -> None:
    """Both nodes equally hot is no reason to move (and the scheduler could pick either)."""
    engine, raws = hot_cluster({"hot": 95, "other": 95}, [web("w1")])
    planned = run(engine, raws, 3)
    assert not planned.moves


def labelled(name: str, app: str) -> dict[str, Any]:
    raw = web(name)
    raw["metadata"]["labels"] = {"app": app}
    return raw


@pytest.mark.parametrize(
    ("name", "allowed", "disrupted", "moved"),
    [
        ("a budget at zero keeps every pod it covers", 0, (), []),
        ("a budget of one lets one go in a pass", 1, (), ["d0"]),
        ("a budget of two lets both go", 2, (), ["d0", "d1"]),
        # a pod the disruption controller already counts as disrupted is not counted again
        ("a pod already disrupted is not counted twice", 0, ("d0",), ["d0"]),
    ],
)
def test_disruption_budgets_are_counted_across_the_pass(
    name: str, allowed: int, disrupted: tuple[str, ...], moved: list[str]
) -> None:
    engine, raws = hot_cluster(
        {"hot": 95, "cool": 20},
        [labelled("d0", "db"), labelled("d1", "db"), labelled("other", "web")],
        (budget("db", "db", allowed, disrupted),),
        maxEvictionsPerNode=5,
    )
    planned = run(engine, raws, 3)
    assert sorted(m.pod.name for m in planned.moves) == sorted([*moved, "other"]), name
    kept = {s.pod: s.why for s in planned.skips}
    for pod_name in {"d0", "d1"} - set(moved):
        assert kept[f"default/{pod_name}"] == "a PodDisruptionBudget allows no disruption now"


def test_a_pod_whose_eviction_was_refused_lately_is_left_alone() -> None:
    engine, raws = hot_cluster({"hot": 95, "cool": 20}, [web("w0"), web("w1")])
    planned = run(engine, raws, 3, blocked=("default/w0",))
    assert [m.pod.name for m in planned.moves] == ["w1"]
    assert {s.pod: s.why for s in planned.skips}["default/w0"] == (
        "its eviction was refused lately (429)"
    )


PROTECTED = [
    ("bare", pod("bare", node_name="hot"), {}, "does not have any ownerRefs"),
    ("daemonset", owned(pod("ds", node_name="hot"), kind="DaemonSet"), {}, "daemonset"),
    (
        "mirror",
        owned(pod("m", node_name="hot")),
        {"annotations": {"kubernetes.io/config.mirror": "x"}},
        "mirror",
    ),
    (
        "static",
        owned(pod("s", node_name="hot")),
        {"annotations": {"kubernetes.io/config.source": "file"}},
        "static",
    ),
    ("critical", owned(pod("c", node_name="hot", priority=2_000_000_000)), {}, "system critical"),
    (
        "emptyDir",
        owned(pod("e", node_name="hot", spec={"volumes": [{"name": "v", "emptyDir": {}}]})),
        {},
        "local storage",
    ),
    (
        "hostPath",
        owned(
            pod("h", node_name="hot", spec={"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]})
        ),
        {},
        "local storage",
    ),
    (
        "terminating",
        owned(pod("t", node_name="hot")),
        {"deletionTimestamp": "2026-01-01T00:00:00Z"},
        "terminating",
    ),
]


@pytest.mark.parametrize(
    ("name", "raw", "meta", "reason"), PROTECTED, ids=[p[0] for p in PROTECTED]
)
def test_default_evictor_protections(
    name: str, raw: dict[str, Any], meta: dict[str, Any], reason: str
) -> None:
    raw["metadata"].update(meta)
    settings = RebalanceConfig(metrics=[{"metric": "cpu", "high": 80}])
    assert reason in (protection(raw, settings) or "")
    if name not in ("terminating",):
        raw["metadata"].setdefault("annotations", {})["descheduler.alpha.kubernetes.io/evict"] = ""
        assert protection(raw, settings) is None


def test_options_lift_protections_and_namespaces_narrow_them() -> None:
    lifted = RebalanceConfig(
        metrics=[{"metric": "cpu", "high": 80}],
        evictLocalStoragePods=True,
        evictDaemonSetPods=True,
        evictSystemCriticalPods=True,
    )
    for _, raw, meta, _ in PROTECTED[1:2] + PROTECTED[4:7]:
        assert protection({**raw, "metadata": {**raw["metadata"], **meta}}, lifted) is None
    pvc = owned(
        pod("p", spec={"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]})
    )
    assert protection(pvc, RebalanceConfig(metrics=[{"metric": "cpu", "high": 80}])) is None
    assert "PVC" in protection(
        pvc, RebalanceConfig(metrics=[{"metric": "cpu", "high": 80}], ignorePvcPods=True)
    )
    only = RebalanceConfig(
        metrics=[{"metric": "cpu", "high": 80}], evictableNamespaces={"include": ["shop"]}
    )
    assert protection(owned(pod("x")), only) == "namespace is not evictable"
    assert protection(
        owned(pod("x", priority=10)),
        RebalanceConfig(metrics=[{"metric": "cpu", "high": 80}], priorityThreshold=10),
    )


def test_protected_pods_are_reported_kept() -> None:
    engine, raws = hot_cluster({"hot": 95, "cool": 20}, [pod("bare", node_name="hot"), web("w")])
    planned = run(engine, raws, 3)
    assert [m.pod.name for m in planned.moves] == ["w"]
    assert {s.pod: s.why for s in planned.skips}[
        "default/bare"
    ] == "pod does not have any ownerRefs"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"metrics": [{"metric": "latency", "high": 1}]}, "'latency' is not a MetricScore metric"),
        ({"metrics": [{"metric": "cpu", "high": 80, "low": 90}]}, "must be better than high"),
        ({"profile": "other", "metrics": [{"metric": "cpu", "high": 80}]}, "no such profile"),
        ({"metrics": []}, "rebalance.metrics"),
        (
            {
                "metrics": [{"metric": "cpu", "high": 8}],
                "evictableNamespaces": {"include": ["a"], "exclude": ["b"]},
            },
            "not both",
        ),
    ],
)
def test_configuration_errors_name_the_field(section: dict[str, Any], message: str) -> None:
    from berth.config import ConfigError

    data = config()
    data["rebalance"] = section
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value)
