"""The fronts place a generated cluster the same way: one engine, one cycle, one feed.

`berth simulate` decides the cluster's pending pods offline; the same cluster is then given to
`berth run` on the embedded cluster, and to the extender as kube-scheduler would call it (filter
and prioritize for each pod, the bound pod seen by its pods informer). Clusters where some
decision has two best nodes are left out (each front breaks ties with its own random source).
With ties gone, every front must put every pod on simulate's node, or leave it pending with the
same reasons; the extender must also pass exactly simulate's feasible nodes and give simulate's
node its highest priority.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings

from berth.cluster import EmbeddedCluster
from berth.config import parse_config
from berth.dump import parse_dump
from berth.engine import Engine
from berth.extender.adapter import ExtenderAdapter
from berth.extender.wire import ExtenderArgs
from berth.kube.client import connect, read_json
from berth.simulate import Decision, Simulation
from tests.generated import Cluster, clusters
from tests.live.conftest import create, events, pods, running

JSON = dict[str, Any]
# One attempt per pod, as simulate makes: a pod moved back by a cluster event waits in backoff.
LIVE_CONFIG: JSON = {"podInitialBackoffSeconds": 600, "podMaxBackoffSeconds": 600}


def simulate(cluster: Cluster) -> list[Decision]:
    import json

    sim = Simulation(dump=parse_dump(json.dumps(cluster.dump())), config=parse_config({}), seed=1)
    assert not sim.load_errors, sim.load_errors
    return list(sim.run())


def without_ties(decisions: list[Decision]) -> bool:
    for d in decisions:
        if d.node is not None and d.scores:
            best = max(d.scores.values())
            if sum(1 for s in d.scores.values() if s == best) > 1:
                return False
    return True


def tally(decisions: list[Decision]) -> None:
    placed = sum(1 for d in decisions if d.node)
    event(f"{placed} of {len(decisions)} placed")


def feasible(decision: Decision, names: list[str]) -> list[str]:
    return [n for n in names if n not in decision.reasons]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster=clusters())
def test_the_extender_places_a_cluster_as_simulate_does(cluster: Cluster) -> None:
    decisions = simulate(cluster)
    assume(without_ties(decisions))
    tally(decisions)
    adapter = ExtenderAdapter(Engine(config=parse_config({}), seed=2), nodes_from_informer=True)
    feed = adapter.feed  # what the extender's informers would deliver
    for obj in [*cluster.nodes, *cluster.placed]:
        feed.add(obj)
    names = [n["metadata"]["name"] for n in cluster.nodes]
    for raw, want in zip(cluster.pending, decisions, strict=True):
        body = {"Pod": raw, "NodeNames": names}
        answer = adapter.filter(ExtenderArgs.from_wire(body))
        assert not answer.error, answer.error
        passed = answer.node_names or []
        failed = {**answer.failed_nodes, **answer.failed_and_unresolvable_nodes}
        assert passed == feasible(want, names), want.pod
        assert failed == {n: ", ".join(r) for n, r in want.reasons.items()}, want.pod
        if want.node is None:
            continue
        scores = {
            h.host: h.score
            for h in adapter.prioritize(ExtenderArgs.from_wire({**body, "NodeNames": passed}))
        }
        assert scores[want.node] == max(scores.values()), (want.pod, scores)
        feed.add({**raw, "spec": {**raw["spec"], "nodeName": want.node}})  # kube-scheduler binds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster=clusters())
def test_berth_run_places_a_cluster_as_simulate_does(cluster: Cluster) -> None:
    decisions = simulate(cluster)
    assume(without_ties(decisions))
    tally(decisions)
    asyncio.run(_live(cluster, decisions))


async def _live(cluster: Cluster, decisions: list[Decision]) -> None:
    with EmbeddedCluster(nodes=0, kubelet=False) as embedded:
        conn = await connect(kubeconfig=str(embedded.kubeconfig_path))
        try:  # the whole cluster first, so the scheduler's first list holds it all
            for obj in cluster.nodes:
                response = await conn.core.create_node_without_preload_content(body=obj)
                assert response.status == 201, await read_json(response)
            for obj in [*cluster.placed, *cluster.pending]:
                await create(conn, obj)
        finally:
            await conn.close()
        async with running(embedded, LIVE_CONFIG) as (_, conn):
            want = {d.pod.split("/", 1)[1]: d for d in decisions}
            deadline = time.monotonic() + 30
            while True:
                live = await pods(conn)
                reported = {
                    e["regarding"]["name"]: e["note"]
                    for e in await events(conn)
                    if e.get("reason") == "FailedScheduling"
                }
                if time.monotonic() > deadline or all(
                    live[name]["spec"].get("nodeName") or name in reported for name in want
                ):
                    break
                await asyncio.sleep(0.1)
            for name, decision in want.items():
                assert live[name]["spec"].get("nodeName") == decision.node, (name, decision)
                if decision.node is None:
                    assert reported.get(name) == decision.message, name
