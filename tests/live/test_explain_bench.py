"""`berth explain` against every decision of a live `berth run` over a bench workload (Mixed:
node pools, a tainted GPU pool, node affinity, required pod anti-affinity, zone spreading,
tolerations, preferred pod affinity), on the embedded cluster and the real control plane.

The running scheduler's decisions are recorded as it makes them: the pod, the node, its own
totals and per-plugin scores, its scan position and node order, and where every pod of its
state was at that moment. The cluster has 120 nodes, so most decisions score only a share of
the feasible nodes (percentageOfNodesToScore), from where the previous scan stopped. The run's
objects are then read back from the API server and replayed in decision order on a fresh
engine fed as `berth explain --dump` feeds one: before each decision the replayed state must be
the one the scheduler had (pods, nodes, scan order); explain, at the scheduler's scan position,
must name the nodes the scheduler scored with its totals and its node among the best (a tie is
drawn at random), and where every feasible node was scored, the same plugin scores; then the
pod is bound where the scheduler put it and the next one replayed.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.bench.workload import NAMESPACE, Size, builtin_workloads
from berth.config import parse_config
from berth.dump import dump_of
from berth.engine import Engine
from berth.explain import Explanation, explain
from berth.feed import Feed
from berth.framework.cycle import Reserved, Unschedulable
from berth.kube.client import Connection, read_json
from berth.objects import parse_pod
from berth.snapshot import from_dump
from tests.live.conftest import eventually, running
from tests.upstream import SERVERS, clusters

WORKLOAD = "Mixed"
SIZE = Size("live", nodes=120, running=120, pods=300)


@pytest.fixture(params=SERVERS)
def empty_cluster(request: pytest.FixtureRequest) -> Iterator[Any]:
    """No nodes: the workload brings its own."""
    yield from clusters(request, nodes=0)


@dataclass
class Decision:
    pod: str
    node: str | None  # None: no node fit
    totals: dict[str, int]  # the scheduler's weighted totals of the nodes it scored
    plugins: dict[str, dict[str, int]]  # plugin -> node -> normalised score
    seen: dict[str, str | None]  # every pod of the scheduler's state -> its node, at that moment
    start: int  # the scheduler's scan position before the decision
    order: list[str]  # the nodes in its scan order
    message: str = ""


def record_decisions(engine: Engine) -> list[Decision]:
    """Every scheduling cycle the live loop runs on `engine`, with its scores (explain_scores
    keeps them; the decision itself is the same)."""
    decisions: list[Decision] = []
    schedule = engine.schedule

    def recording(pod: Any, **kwargs: Any) -> Any:
        state = engine.state
        seen = {key: state.node_of(key) for key in state.pods}
        scheduler = engine.scheduler_for(pod.scheduler_name)
        assert scheduler is not None
        start = scheduler.next_start_index
        order = [state.names[i] for i in state.node_indices().tolist()]
        outcome = schedule(pod, **{**kwargs, "explain_scores": True})
        if isinstance(outcome, Reserved):
            result = outcome.result
            assert result is not None
            names = state.names
            totals: dict[str, int] = {}
            if result.scored is not None and result.totals is not None:
                totals = {
                    names[i]: int(t)
                    for i, t in zip(result.scored.tolist(), result.totals.tolist(), strict=True)
                }
            decisions.append(
                Decision(pod.key, outcome.node, totals, result.plugin_scores, seen, start, order)
            )
        elif isinstance(outcome, Unschedulable):
            decisions.append(
                Decision(pod.key, None, {}, {}, seen, start, order, outcome.fit.message)
            )
        return outcome

    engine.schedule = recording  # type: ignore[method-assign]
    return decisions


async def post(conn: Connection, path: str, body: dict[str, Any]) -> None:
    response = await conn.request("POST", path, body)
    answer = await read_json(response)
    assert response.status == 201, (path, answer)


async def listed(conn: Connection, path: str, kind: str) -> list[dict[str, Any]]:
    """The objects of a list, each naming its kind as a dump's do (kube-apiserver's list items
    do not)."""
    response = await conn.request("GET", path)
    answer = await read_json(response)
    assert response.status == 200, (path, answer)
    return [{"apiVersion": "v1", "kind": kind, **item} for item in answer["items"]]


def pending_version(raw: dict[str, Any]) -> dict[str, Any]:
    """The pod as the scheduler first saw it: no node, no status."""
    out = copy.deepcopy(raw)
    out["spec"].pop("nodeName", None)
    out["status"] = {"phase": "Pending"}
    return out


def test_explain_agrees_with_every_decision_of_a_bench_run(
    empty_cluster: Any, tmp_path: Path
) -> None:
    workload = builtin_workloads()[WORKLOAD]
    nodes = workload.nodes(SIZE)
    running_pods = workload.running_pods(SIZE, nodes)
    pending = workload.pending_pods(SIZE)
    config = {**workload.config}
    for p in [*running_pods, *pending]:
        p["metadata"]["namespace"] = NAMESPACE
    for p in pending:
        p["spec"]["schedulerName"] = "berth"

    async def main() -> tuple[list[Decision], list[dict[str, Any]], list[dict[str, Any]]]:
        from berth.kube.client import connect

        conn = await connect(kubeconfig=str(empty_cluster.kubeconfig_path))
        try:
            await post(
                conn,
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            )
            for n in nodes:
                await post(conn, "/api/v1/nodes", n)
            for p in running_pods:
                await post(conn, f"/api/v1/namespaces/{NAMESPACE}/pods", p)
        finally:
            await conn.close()
        async with running(empty_cluster, config) as (runner, conn):

            async def loaded() -> bool:
                state = runner.engine.state
                mine = sum(1 for key in state.pods if key.startswith(f"{NAMESPACE}/"))
                return state.num_nodes == len(nodes) and mine == len(running_pods)

            await eventually(loaded, timeout=60)
            decisions = record_decisions(runner.engine)
            for p in pending:
                await post(conn, f"/api/v1/namespaces/{NAMESPACE}/pods", p)

            async def all_bound() -> bool:
                items = await listed(conn, f"/api/v1/namespaces/{NAMESPACE}/pods", "Pod")
                bound = sum(1 for p in items if p["spec"].get("nodeName"))
                return bound == len(running_pods) + len(pending)

            await eventually(all_bound, timeout=180, every=0.5)
            final_nodes = await listed(conn, "/api/v1/nodes", "Node")
            final_pods = await listed(conn, "/api/v1/pods", "Pod")  # every namespace: all it saw
            return decisions, final_nodes, final_pods

    decisions, final_nodes, final_pods = asyncio.run(main())

    by_key = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in final_pods}
    placed = [d for d in decisions if d.node is not None]
    # every pod of the workload decided once, bound where the scheduler decided
    assert sorted(d.pod for d in placed) == sorted(
        f"{NAMESPACE}/{p['metadata']['name']}" for p in pending
    )
    for d in placed:
        assert by_key[d.pod]["spec"]["nodeName"] == d.node, d.pod

    # the replay: a fresh engine fed from the API server's objects, as `explain --dump` is
    decided = {d.pod for d in placed}
    start = [by_key[k] if k not in decided else pending_version(by_key[k]) for k in by_key]
    engine = Engine(config=parse_config(config), seed=0)
    from_dump(engine, dump_of([*final_nodes, *start]))
    feed = Feed(state=engine.state, ports=engine.ports, responsible=engine.schedules)
    scheduler = engine.scheduler_for("berth")
    assert scheduler is not None
    ties = sampled = 0
    for k, d in enumerate(decisions):
        state = engine.state
        assert {key: state.node_of(key) for key in state.pods} == d.seen, (k, d.pod)
        assert [state.names[i] for i in state.node_indices().tolist()] == d.order
        scheduler.next_start_index = d.start  # where the scheduler's scan stood
        expl = explain(engine, parse_pod(pending_version(by_key[d.pod])))
        if d.node is None:
            assert expl.winners == [] and d.message.startswith(expl.message), (d.pod, expl.message)
            continue
        if expl.scored_by_scheduler < len(expl.feasible):
            # it scored a share of the feasible nodes from its scan position: explain names
            # the same nodes in the same order, with the scheduler's totals, and its pick
            sampled += 1
            assert list(expl.sampled.items()) == list(d.totals.items()), d.pod
            assert d.node in expl.sampled_winners, (k, d.pod, d.node, expl.sampled_winners)
            ties += len(expl.sampled_winners) > 1
        else:
            assert d.node in expl.winners, (k, d.pod, d.node, expl.winners)
            ties += len(expl.winners) > 1
            assert set(expl.feasible) == set(d.totals), (d.pod, expl.feasible, d.totals)
            totals = {v.node: v.total for v in expl.nodes if v.feasible}
            assert totals == d.totals, d.pod
            for plugin, scores in d.plugins.items():
                mine = {v.node: v.scores[plugin].normalized for v in expl.nodes if v.feasible}
                assert mine == scores, (d.pod, plugin)
        if d is placed[-1]:
            check_the_command(tmp_path, final_nodes, by_key, d, expl)
        feed.apply("Pod", pending_version(by_key[d.pod]), by_key[d.pod])
    assert len(placed) == len(pending)
    # both kinds of decision were met: a share of the nodes scored (the cluster starts with
    # more than 100 nodes to fit on) and all of them (once fewer than 100 had room), and
    # draws among equal totals (Mixed's plain pods on identical nodes)
    assert 0 < sampled < len(placed) and 0 < ties < len(placed), (sampled, ties)


def check_the_command(
    tmp_path: Path,
    nodes: list[dict[str, Any]],
    pods: dict[str, dict[str, Any]],
    last: Decision,
    expl: Explanation,
) -> None:
    """`berth explain --dump` on the state of the last decision (every other pod bound) says
    what the library said."""
    items = [pending_version(raw) if key == last.pod else raw for key, raw in pods.items()]
    dump = tmp_path / "state.yaml"
    dump.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": nodes + items}))
    ns, name = last.pod.split("/")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "berth",
            "explain",
            f"{ns}/{name}",
            "--dump",
            str(dump),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["winners"] == expl.winners
    assert doc["scoredByScheduler"] == expl.scored_by_scheduler
    assert {n: v["total"] for n, v in doc["nodes"].items() if v["feasible"]} == {
        v.node: v.total for v in expl.nodes if v.feasible
    }
