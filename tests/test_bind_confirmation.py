"""The watch event of our own bind: the assumed pod is confirmed in place when only the binding
changed the pod, and parsed again otherwise. Either way the state must equal what parsing the
bound pod gives."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from typing import Any

import pytest

from berth.config import parse_config
from berth.engine import Engine
from berth.objects import parse_node, parse_pod
from berth.run.loop import LiveScheduler
from berth.run.queue import SchedulingQueue
from berth.telemetry import SchedulerMetrics
from tests.builders import node, pod


def _live() -> LiveScheduler:
    engine = Engine(config=parse_config({}), seed=1)
    for name in ("n1", "n2"):
        engine.state.upsert_node(parse_node(node(name)))
    return LiveScheduler(
        engine=engine,
        queue=SchedulingQueue(),
        recorder=None,  # type: ignore[arg-type]  # not reached by informer events
        metrics=SchedulerMetrics(),
    )


def _pending() -> dict[str, Any]:
    raw = pod("web", cpu="1", labels={"app": "web"})
    raw["metadata"]["resourceVersion"] = "5"
    raw["status"] = {"phase": "Pending"}
    return raw


def _bound(raw: dict[str, Any], node_name: str = "n1") -> dict[str, Any]:
    out = copy.deepcopy(raw)
    out["spec"]["nodeName"] = node_name
    out["metadata"]["resourceVersion"] = "6"
    out["metadata"]["managedFields"] = [{"manager": "berth", "operation": "Update"}]
    out["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    return out


def _changed_label(raw: dict[str, Any]) -> dict[str, Any]:
    raw["metadata"]["labels"]["tier"] = "front"
    return raw


def _topology_labels(raw: dict[str, Any]) -> dict[str, Any]:
    """What kube-apiserver's PodTopologyLabelsAdmission adds at binding (on since 1.35)."""
    raw["metadata"]["labels"]["topology.kubernetes.io/zone"] = "zone-a"
    raw["metadata"]["labels"]["topology.kubernetes.io/region"] = "region-1"
    return raw


def _topology_labels_and_another(raw: dict[str, Any]) -> dict[str, Any]:
    return _changed_label(_topology_labels(raw))


def _changed_request(raw: dict[str, Any]) -> dict[str, Any]:
    raw["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "2"
    return raw


def _preempted(raw: dict[str, Any]) -> dict[str, Any]:
    raw["status"]["conditions"].append(
        {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
    )
    return raw


def _fields(p: Any) -> dict[str, Any]:
    """PodInfo compares by identity; what the state holds must equal a fresh parse."""
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p) if f.compare}


@pytest.mark.parametrize(
    ("name", "change", "assumed_from_older", "fast"),
    [
        ("only the binding changed", None, False, True),
        ("a label changed too", _changed_label, False, False),
        ("the binding added the node's topology labels", _topology_labels, False, False),
        ("topology labels and another label", _topology_labels_and_another, False, False),
        ("a request changed too", _changed_request, False, False),
        ("a status field the parse reads changed", _preempted, False, False),
        ("assumed from an older version", None, True, False),
    ],
)
def test_our_bind_is_confirmed_exactly(
    name: str, change: Any, assumed_from_older: bool, fast: bool
) -> None:
    async def run() -> None:
        s = _live()
        state = s.engine.state
        pending = _pending()
        s.handler("Pod").on_add(pending)
        assumed_raw = copy.deepcopy(pending)
        if assumed_from_older:
            assumed_raw["metadata"]["resourceVersion"] = "4"
        assumed = parse_pod(assumed_raw)
        state.assume_pod(assumed, "n1")
        bound = _bound(pending)
        if change is not None:
            bound = change(bound)
        s.handler("Pod").on_update(pending, bound)

        key = "default/web"
        assert not state.is_assumed(key)
        assert state.node_of(key) == "n1"
        assert (state.pods[key] is assumed) is fast, name
        want = parse_pod(bound)
        assert _fields(dataclasses.replace(state.pods[key], node_name="n1")) == _fields(want)
        idx = state.index["n1"]
        assert list(state.node_pods[idx]) == [key]
        assert key not in s.queue
        fresh = Engine(config=parse_config({}), seed=1).state
        for n in ("n1", "n2"):
            fresh.upsert_node(parse_node(node(n)))
        fresh.add_pod(want)
        assert (state.requested == fresh.requested).all()
        assert (state.nonzero == fresh.nonzero).all()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("name", "change", "parsed"),
    [
        ("the binding added the node's topology labels", _topology_labels, False),
        ("topology labels and another label", _topology_labels_and_another, True),
        ("a request changed too", _changed_request, True),
    ],
)
def test_topology_labels_from_binding_need_no_parse(
    name: str, change: Any, parsed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run() -> None:
        s = _live()
        state = s.engine.state
        pending = _pending()
        s.handler("Pod").on_add(pending)
        state.assume_pod(parse_pod(copy.deepcopy(pending)), "n1")
        calls: list[str] = []
        import berth.feed

        def counting(raw: dict[str, Any]) -> Any:
            calls.append(raw["metadata"]["name"])
            return parse_pod(raw)

        monkeypatch.setattr(berth.feed, "parse_pod", counting)
        bound = change(_bound(pending))
        s.handler("Pod").on_update(pending, bound)
        assert bool(calls) is parsed, name
        key = "default/web"
        got = state.pods[key]
        assert _fields(got) == _fields(parse_pod(bound))
        # re-indexed under its labels: found by the zone label the binding added
        by_label = state.pods_by_label["default"]
        for pair in bound["metadata"]["labels"].items():
            assert key in by_label[pair], pair

    asyncio.run(run())
