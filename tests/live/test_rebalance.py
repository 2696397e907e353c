"""`berth rebalance --apply --loop` on a live cluster (the embedded one and the real control
plane), reading the simulated exporter through a real Prometheus, beside `berth run`.

Berth first places every pod on the coolest node; then the load moves (the exporter's gauges
follow node annotations, as `berth annotate` sets them) and that node is hot. The rebalancer
evicts only once the node has been over for consecutiveSamples samples; never a pod a
PodDisruptionBudget protects; never a pod that fits on no other node; and the pods it evicts are
recreated (by a small stand-in for their controller) and placed elsewhere by Berth."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as sync_client
from kubernetes import config as sync_config
from kubernetes.aio.client import PolicyV1Api

from berth.cluster import EmbeddedCluster
from berth.config import parse_config
from berth.kube.client import Connection, connect, read_json
from berth.kube.eviction import Result, evict
from berth.metrics.exporter import start_exporter
from berth.metrics.table import MetricKey
from berth.rebalance.runner import Pass, RebalanceOptions, Rebalancer
from tests.live.conftest import create, eventually, node_of, pod, pods, running
from tests.metrics.helpers import LoopThread
from tests.metrics.test_prometheus_integration import Prometheus, prometheus_binary

CPU = "sim.berth.io/cpu-utilization"
QUERY = "max by (node) (berth_sim_cpu_utilization)"
SAMPLES = 3
KEY = MetricKey("prom", QUERY, "node", "auto")


def config(prometheus: str) -> dict[str, Any]:
    return {
        "metricSources": [
            {
                "name": "prom",
                "type": "prometheus",
                "url": prometheus,
                "refreshInterval": "1s",
                "timeout": "2s",
            }
        ],
        "profiles": [
            {
                "schedulerName": "berth",
                "plugins": {"multiPoint": {"enabled": [{"name": "MetricScore", "weight": 20}]}},
                "pluginConfig": [
                    {
                        "name": "MetricScore",
                        "args": {
                            "metrics": [
                                {
                                    "name": "cpu",
                                    "source": "prom",
                                    "query": QUERY,
                                    "maxAge": "10s",
                                    "filter": {"max": 80},
                                }
                            ]
                        },
                    }
                ],
            }
        ],
        "rebalance": {
            "metrics": [{"metric": "cpu", "high": 80, "low": 50}],
            "consecutiveSamples": SAMPLES,
            "interval": "1s",
            "maxEvictionsPerNode": 2,
            "evictionAttempts": 2,
            "evictionBackoff": "200ms",
        },
    }


class NodeLister:
    """The cluster's nodes for the exporter, through its API (any server)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api = sync_client.CoreV1Api(sync_config.new_client_from_config(str(kubeconfig)))

    def __call__(self) -> list[dict[str, Any]]:
        response = self.api.list_node(_preload_content=False, _request_timeout=5)
        return list(json.loads(response.data)["items"])


@pytest.fixture
def monitoring(cluster: EmbeddedCluster, tmp_path: Path) -> Iterator[str]:
    """The simulated exporter over the cluster's nodes, scraped by Prometheus every second."""
    binary = prometheus_binary()
    thread = LoopThread()
    exporter = thread.run(start_exporter(nodes=NodeLister(cluster.kubeconfig_path), port=0))
    prom = Prometheus(binary, tmp_path, f"127.0.0.1:{exporter.port}")
    prom.start()
    try:
        yield prom.url
    finally:
        prom.stop()
        thread.run(exporter.stop())
        thread.close()


async def set_load(conn: Connection, load: dict[str, float]) -> None:
    for name, value in load.items():
        response = await conn.core.patch_node_without_preload_content(
            name=name, body={"metadata": {"annotations": {CPU: str(value)}}}
        )
        answer = await read_json(response)
        assert response.status == 200, answer


def annotation_config(rebalance: dict[str, Any]) -> dict[str, Any]:
    """MetricScore on the node annotation CPU, and this rebalance section."""
    return {
        "metricSources": [{"name": "ann", "type": "node-annotation"}],
        "profiles": [
            {
                "schedulerName": "berth",
                "plugins": {"multiPoint": {"enabled": [{"name": "MetricScore", "weight": 20}]}},
                "pluginConfig": [
                    {
                        "name": "MetricScore",
                        "args": {"metrics": [{"name": "cpu", "source": "ann", "query": CPU}]},
                    }
                ],
            }
        ],
        "rebalance": rebalance,
    }


async def make_owner(conn: Connection) -> dict[str, Any]:
    """A ConfigMap for the managed pods to name as their owner (DefaultEvictor keeps bare pods)."""
    response = await conn.core.create_namespaced_config_map_without_preload_content(
        namespace="default", body={"metadata": {"name": "owner"}}
    )
    owner: dict[str, Any] = await read_json(response)
    assert response.status == 201, owner
    return owner


def managed(name: str, app: str, owner: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = pod(name, cpu="500m", terminationGracePeriodSeconds=0, **spec)
    body["metadata"]["labels"] = {"app": app, "managed": "yes"}
    body["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
    ]
    return body


async def controller(
    conn: Connection, templates: dict[str, dict[str, Any]], made: list[str]
) -> None:
    """A stand-in for the pods' ReplicaSet: a managed pod that is gone is made again."""
    generation = 0
    while True:
        listed = await pods(conn)
        present = {p["metadata"]["labels"].get("slot") for p in listed.values()}
        for slot, template in templates.items():
            if slot not in present:
                generation += 1
                body = json.loads(json.dumps(template))
                body["metadata"]["name"] = f"{slot}-r{generation}"
                body["metadata"]["labels"]["slot"] = slot
                await create(conn, body)
                made.append(body["metadata"]["name"])
        await asyncio.sleep(0.2)


def test_rebalance_moves_load_off_the_hot_node_safely(
    cluster: EmbeddedCluster, monitoring: str
) -> None:
    cfg = config(monitoring)

    async def main() -> None:
        async with running(cluster, cfg) as (runner, conn):
            names = sorted(n["metadata"]["name"] for n in NodeLister(cluster.kubeconfig_path)())
            hot, *others = names
            # Berth follows the metric: everything lands on the coolest node.
            await set_load(conn, {hot: 10, **{n: 60 for n in others}})
            owner = await make_owner(conn)
            pdb = {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "db"},
                "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}},
            }
            response = await PolicyV1Api(
                conn.api
            ).create_namespaced_pod_disruption_budget_without_preload_content(
                namespace="default", body=pdb
            )
            assert response.status == 201, await read_json(response)
            templates = {
                "web-0": managed("web-0", "web", owner),
                "web-1": managed("web-1", "web", owner),
                "db-0": managed("db-0", "db", owner),
                "db-1": managed("db-1", "db", owner),
                "pinned": managed(
                    "pinned", "pinned", owner, nodeSelector={"kubernetes.io/hostname": hot}
                ),
            }
            for slot, body in templates.items():
                body["metadata"]["labels"]["slot"] = slot

            async def metric_seen(value: float) -> bool:
                # the scheduler's own table, not only Prometheus: its refresher may lag a second
                series = (
                    runner.engine.refresher.table.series(KEY) if runner.engine.refresher else None
                )
                return series is not None and series.values.get(hot) == value

            await eventually(lambda: metric_seen(10), timeout=40)
            for body in templates.values():
                await create(conn, body)

            async def all_on_hot() -> bool:
                listed = await pods(conn)
                return len(listed) == 5 and all(node_of(p) == hot for p in listed.values())

            await eventually(all_on_hot, timeout=60)
            before = {k: v["metadata"]["uid"] for k, v in (await pods(conn)).items()}
            made: list[str] = []
            recreate = asyncio.create_task(controller(conn, templates, made))
            # The load moves: the node they are on is hot, the others cool.
            await set_load(conn, {hot: 95, **{n: 20 for n in others}})
            await eventually(lambda: metric_seen(95), timeout=40)
            passes: list[Pass] = []
            rebalancer = Rebalancer(
                config=parse_config({**cfg, "leaderElection": {"leaderElect": False}}),
                connection=conn,
                options=RebalanceOptions(
                    dry_run=False, loop=True, leader_elect=False, report=passes.append
                ),
            )
            work = asyncio.create_task(rebalancer.run())
            try:

                async def webs_moved() -> bool:
                    listed = await pods(conn)
                    webs = [p for p in listed.values() if p["metadata"]["labels"]["app"] == "web"]
                    return (
                        len(webs) == 2
                        and all(p["metadata"]["name"] not in before for p in webs)
                        and all(node_of(p) in others for p in webs)
                    )

                await eventually(webs_moved, timeout=90, every=0.2)
                await asyncio.sleep(3)  # a few more passes: nothing else may go
            finally:
                rebalancer.stop_requested.set()
                assert await asyncio.wait_for(work, timeout=20) == 0
                recreate.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recreate

            acted = [p for p in passes if p.outcomes]
            assert acted, [p.plan.note for p in passes]
            for p in acted:
                # only after SAMPLES samples in a row over the threshold
                assert p.counts[hot] >= SAMPLES, p.counts
                assert all(o.move.source == hot for o in p.outcomes)
            evicted = [o.move.pod.name for p in acted for o in p.outcomes if o.result == "evicted"]
            assert sorted(evicted) == ["web-0", "web-1"]
            # never a pod the budget protects, nor one that fits on no other node
            final = await pods(conn)
            for name in ("db-0", "db-1", "pinned"):
                assert final[name]["metadata"]["uid"] == before[name]
                assert node_of(final[name]) == hot
            kept = {s.pod: s.why for p in passes for s in p.plan.skips}
            # its only node is the hot one, which MetricScore's filter (max 80) now refuses
            assert (
                kept["default/pinned"] == "fits on no node (the scheduler would leave it pending)"
            )
            assert "PodDisruptionBudget" in kept["default/db-0"]
            # the evicted pods are back, placed elsewhere by Berth
            replacements = [final[n] for n in made if n in final]
            assert len(replacements) == 2
            assert all(node_of(p) in others for p in replacements)
            assert all(p["spec"]["schedulerName"] == "berth" for p in replacements)

    asyncio.run(main())


def test_an_eviction_a_budget_forbids_is_retried_then_reported_blocked(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            body = pod("guarded", cpu="100m", terminationGracePeriodSeconds=0)
            body["metadata"]["labels"] = {"app": "guarded"}
            await create(conn, body)
            pdb = {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "guarded"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
            }
            policy = PolicyV1Api(conn.api)
            response = await policy.create_namespaced_pod_disruption_budget_without_preload_content(
                namespace="default", body=pdb
            )
            assert response.status == 201

            async def running_and_counted() -> bool:
                listed = await pods(conn)
                response = (
                    await policy.read_namespaced_pod_disruption_budget_without_preload_content(
                        name="guarded", namespace="default"
                    )
                )
                status = (await read_json(response)).get("status") or {}
                return node_of(listed["guarded"]) is not None and status.get("currentHealthy") == 1

            await eventually(running_and_counted, timeout=60)
            uid = (await pods(conn))["guarded"]["metadata"]["uid"]
            answer = await evict(
                conn, namespace="default", name="guarded", uid=uid, attempts=3, backoff=0.1
            )
            assert answer.result is Result.BLOCKED and answer.attempts == 3
            assert "429" in answer.message
            assert (await pods(conn))["guarded"]["metadata"]["uid"] == uid
            # with the budget gone, the same call evicts
            response = await policy.delete_namespaced_pod_disruption_budget_without_preload_content(
                name="guarded", namespace="default"
            )
            assert response.status == 200
            answer = await evict(conn, namespace="default", name="guarded", uid=uid)
            assert answer.result is Result.EVICTED

            # an eviction of a pod still terminating succeeds again (kube-apiserver's answer);
            # once it is gone, the eviction says so
            async def gone() -> bool:
                return "guarded" not in await pods(conn)

            await eventually(gone, timeout=60)
            answer = await evict(conn, namespace="default", name="guarded", uid=uid)
            assert answer.result is Result.GONE

    asyncio.run(main())


def test_the_loop_acts_only_while_it_leads(cluster: EmbeddedCluster) -> None:
    """Two `--loop` rebalancers on one Lease: only the leader plans and reports (its /metrics
    say so); when it stops and releases the Lease, the other takes over."""
    cfg = annotation_config(
        {
            "metrics": [{"metric": "cpu", "high": 80}],
            "consecutiveSamples": 2,
            "interval": "300ms",
            "leaderElection": {
                "resourceName": "berth-rebalance-test",
                "leaseDuration": "4s",
                "renewDeadline": "3s",
                "retryPeriod": "1s",
            },
        }
    )

    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        try:
            names = sorted(n["metadata"]["name"] for n in NodeLister(cluster.kubeconfig_path)())
            hot, *others = names
            await set_load(conn, {hot: 95, **{n: 20 for n in others}})
            owner = await make_owner(conn)
            await create(conn, managed("w", "web", owner, nodeName=hot))
            replicas: dict[str, tuple[Rebalancer, list[Pass]]] = {}
            for identity in ("a", "b"):
                passes: list[Pass] = []
                replicas[identity] = (
                    Rebalancer(
                        config=parse_config(cfg),
                        connection=conn,
                        options=RebalanceOptions(
                            dry_run=True,
                            loop=True,
                            identity=identity,
                            bind_address="127.0.0.1:0",
                            report=passes.append,
                        ),
                    ),
                    passes,
                )
            tasks = {k: asyncio.create_task(r.run()) for k, (r, _) in replicas.items()}

            async def one_acts() -> bool:
                return any(len(p) >= 3 for _, p in replicas.values())

            await eventually(one_acts, timeout=30)
            leader = next(k for k, (_, p) in replicas.items() if p)
            follower = "b" if leader == "a" else "a"
            await asyncio.sleep(1.5)
            assert replicas[follower][1] == []  # the other never planned a pass
            moves = [m.pod.name for p in replicas[leader][1] for m in p.plan.moves]
            assert moves and set(moves) == {"w"}
            exposed = {k: await scrape(r.health.port) for k, (r, _) in replicas.items()}
            assert "berth_rebalance_leader 1.0" in exposed[leader]
            assert "berth_rebalance_leader 0.0" in exposed[follower]
            assert f'berth_rebalance_node_samples_over{{node="{hot}"}}' in exposed[leader]
            assert "berth_rebalance_node_samples_over{" not in exposed[follower]
            assert (
                'berth_rebalance_evictions_total{namespace="default",node="' + hot
                in (exposed[leader])
            )
            # the leader stops and releases the Lease: the other takes over
            replicas[leader][0].stop_requested.set()
            assert await asyncio.wait_for(tasks[leader], timeout=20) == 0

            async def follower_acts() -> bool:
                return len(replicas[follower][1]) >= 1

            await eventually(follower_acts, timeout=20)
            replicas[follower][0].stop_requested.set()
            assert await asyncio.wait_for(tasks[follower], timeout=20) == 0
            # dry runs: the pod is still there
            assert (await pods(conn))["w"]["metadata"]["name"] == "w"
        finally:
            await conn.close()

    asyncio.run(main())


def test_the_endpoints_over_https_with_a_given_certificate(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    """--tls-cert-file/--tls-private-key-file: /metrics answers over HTTPS with that certificate
    (verified against its CA) and not over plain HTTP."""
    import ssl

    import aiohttp

    from berth.cluster.tls import generate

    certs = generate(directory=tmp_path / "tls", hosts=["127.0.0.1"])
    cfg = annotation_config({"metrics": [{"metric": "cpu", "high": 80}], "interval": "300ms"})

    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        try:
            rebalancer = Rebalancer(
                config=parse_config(cfg),
                connection=conn,
                options=RebalanceOptions(
                    loop=True,
                    leader_elect=False,
                    bind_address="127.0.0.1:0",
                    tls_cert_file=str(certs.cert_path),
                    tls_key_file=str(certs.key_path),
                ),
            )
            task = asyncio.create_task(rebalancer.run())

            async def serving() -> bool:
                return rebalancer.health.port != 0

            await eventually(serving, timeout=20)
            port = rebalancer.health.port
            trusted = ssl.create_default_context(cafile=str(certs.ca_path))
            assert "berth_rebalance_leader" in await scrape(port, ssl_context=trusted)
            with pytest.raises(aiohttp.ClientError):
                await scrape(port)
            rebalancer.stop_requested.set()
            assert await asyncio.wait_for(task, timeout=20) == 0
        finally:
            await conn.close()

    asyncio.run(main())


async def scrape(port: int, *, ssl_context: Any = None) -> str:
    import aiohttp

    scheme = "https" if ssl_context is not None else "http"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{scheme}://127.0.0.1:{port}/metrics", ssl=ssl_context) as response,
    ):
        return await response.text()
