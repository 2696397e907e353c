"""PodTopologySpread's system default constraints, with the selector upstream builds from the
pod's Services and controller (helper.DefaultSelector)."""

from __future__ import annotations

from typing import Any

from berth.config import parse_config
from berth.engine import Engine
from berth.objects import parse_pod
from berth.state.workloads import WorkloadIndex
from tests.builders import make_state, node, pod


def owned(name: str, *, node_name: str = "", labels: dict[str, str] | None = None) -> Any:
    p = pod(name, node_name=node_name, labels=labels or {"app": "web", "pod-template-hash": "h"})
    p["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-h",
            "uid": "u",
            "controller": True,
        }
    ]
    return p


REPLICASET = {
    "apiVersion": "apps/v1",
    "kind": "ReplicaSet",
    "metadata": {"name": "web-h", "namespace": "default"},
    "spec": {"selector": {"matchLabels": {"app": "web", "pod-template-hash": "h"}}},
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"selector": {"app": "web"}},
}


def test_default_selector_merges_services_and_controller() -> None:
    index = WorkloadIndex()
    index.upsert(REPLICASET)
    index.upsert(SERVICE)
    index.upsert(
        {
            "kind": "Service",
            "metadata": {"name": "other", "namespace": "default"},
            "spec": {"selector": {"app": "db"}},
        }
    )
    selector = index.default_selector(parse_pod(owned("p")))
    assert selector is not None
    assert {(r.key, r.operator, tuple(r.values)) for r in selector.requirements} == {
        ("app", "In", ("web",)),
        ("pod-template-hash", "In", ("h",)),
    }
    # A pod no Service selects and nothing controls gets the empty selector: no defaults.
    lone = index.default_selector(parse_pod(pod("lone", labels={"x": "y"})))
    assert lone is not None and lone.is_everything


def test_replicaset_pods_are_spread_by_default() -> None:
    nodes = [node("n1"), node("n2"), node("n3")]
    running = [owned("web-0", node_name="n1"), owned("web-1", node_name="n1")]
    engine = Engine(config=parse_config({}), state=make_state(nodes, running), seed=1)
    engine.ports.workloads.upsert(REPLICASET)
    result = engine.schedulers["berth"].schedule(parse_pod(owned("web-2")), explain_scores=True)
    spread = result.plugin_scores["PodTopologySpread"]
    assert spread["n1"] < spread["n2"] == spread["n3"]
    assert result.node in ("n2", "n3")


def test_without_the_controller_known_there_is_no_default_spreading() -> None:
    nodes = [node("n1"), node("n2")]
    engine = Engine(config=parse_config({}), state=make_state(nodes, [owned("a", node_name="n1")]))
    result = engine.schedulers["berth"].schedule(parse_pod(owned("b")), explain_scores=True)
    assert "PodTopologySpread" not in result.plugin_scores  # PreScore: Skip


def test_simulate_reads_controllers_from_the_dump() -> None:
    import json

    import yaml
    from click.testing import CliRunner

    from berth.cli import main

    items = [node("n1"), node("n2"), REPLICASET, owned("web-0", node_name="n1"), owned("web-1")]
    result = CliRunner().invoke(
        main,
        ["simulate", "-", "-o", "json"],
        input=yaml.safe_dump({"kind": "List", "items": items}),
    )
    decision = json.loads(result.output.splitlines()[-1])
    spread = decision["pluginScores"]["PodTopologySpread"]
    assert spread["n1"] < spread["n2"] == 100
    assert decision["node"] == "n2"
