"""`berth run` against the embedded cluster over HTTP: binding, events, conditions, retries."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import pytest

from berth.cluster import EmbeddedCluster, FaultRule
from berth.cluster.resources import PODS
from tests.live.conftest import create, events, eventually, node_of, pod, pods, running
from tests.upstream import needs_faults


async def _scheduled_counts(conn) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(e["regarding"]["name"] for e in await events(conn) if e["reason"] == "Scheduled")


def test_binds_our_pod_and_leaves_others_alone(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            await create(conn, pod("mine"))
            await create(conn, pod("theirs", scheduler="default-scheduler"))

            async def bound() -> bool:
                return node_of((await pods(conn))["mine"]) is not None

            await eventually(bound)
            await asyncio.sleep(0.3)
            listed = await pods(conn)
            assert node_of(listed["theirs"]) is None
            evs = [e for e in await events(conn) if e["regarding"]["name"] == "mine"]
            scheduled = [e for e in evs if e["reason"] == "Scheduled"]
            assert len(scheduled) == 1
            node = node_of(listed["mine"])
            assert scheduled[0]["note"] == f"Successfully assigned default/mine to {node}"
            assert scheduled[0]["type"] == "Normal"
            # client-go's events.k8s.io/v1 Event; no deprecated core/v1 fields
            assert scheduled[0]["action"] == "Binding"
            assert scheduled[0]["reportingController"] == "berth"  # the profile's schedulerName
            assert scheduled[0]["reportingInstance"].startswith("berth-")
            assert scheduled[0]["regarding"]["uid"] == listed["mine"]["metadata"]["uid"]
            assert scheduled[0]["regarding"]["kind"] == "Pod"
            assert scheduled[0]["regarding"]["resourceVersion"]
            assert scheduled[0]["eventTime"].endswith("Z") and "." in scheduled[0]["eventTime"]
            # not written by Berth (the real server answers an empty deprecatedSource: {})
            assert not scheduled[0].get("deprecatedSource")
            assert not [e for e in await events(conn) if e["regarding"]["name"] == "theirs"]

    asyncio.run(main())


def test_a_burst_below_the_watched_kinds_still_syncs_and_binds(cluster: EmbeddedCluster) -> None:
    # Every informer's watch holds a connection; with the connection limit at the burst, a
    # burst of 5 left most informers waiting for one and the runner never became ready.
    async def main() -> None:
        config = {"clientConnection": {"qps": 5, "burst": 5}}
        async with running(cluster, config, qps_burst=5) as (_, conn):
            await create(conn, pod("small-burst"))

            async def bound() -> bool:
                return node_of((await pods(conn))["small-burst"]) is not None

            await eventually(bound)

    asyncio.run(main())


def test_unschedulable_pod_gets_event_and_condition_then_fits_on_a_new_node(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        async with running(cluster) as (runner, conn):
            await create(conn, pod("big", cpu="6"))

            async def failed() -> bool:
                evs = await events(conn)
                return any(e["reason"] == "FailedScheduling" for e in evs)

            await eventually(failed)
            ev = next(e for e in await events(conn) if e["reason"] == "FailedScheduling")
            assert ev["type"] == "Warning"
            # 6 cpu is above every node's allocatable: preemption cannot help either.
            want = (
                "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                "available: 3 Preemption is not helpful for scheduling."
            )
            assert ev["note"] == want

            async def condition() -> bool:
                conds = (await pods(conn))["big"].get("status", {}).get("conditions") or []
                return any(
                    c["type"] == "PodScheduled"
                    and c["status"] == "False"
                    and c["reason"] == "Unschedulable"
                    and c["message"] == want
                    for c in conds
                )

            await eventually(condition)
            assert runner.queue.counts()["unschedulable"] == 1
            # A bigger node arrives: the node event moves the pod back and it is placed.
            response = await conn.core.create_node_without_preload_content(
                body={
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": "big-node",
                        "labels": {"kubernetes.io/hostname": "big-node"},
                    },
                    "status": {
                        "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                        "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                    },
                }
            )
            assert response.status == 201
            response.release()

            async def placed() -> bool:
                return node_of((await pods(conn))["big"]) == "big-node"

            await eventually(placed)

    asyncio.run(main())


@needs_faults
def test_injected_binding_errors_are_retried_then_bound(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        cluster.faults.set_rules(FaultRule(verb="create", resource="pods/binding", rate=0.5))
        try:
            async with running(cluster) as (runner, conn):
                for i in range(20):
                    await create(conn, pod(f"p{i}"))

                async def all_bound() -> bool:
                    return all(node_of(p) for p in (await pods(conn)).values())

                await eventually(all_bound, timeout=30)
                assert runner.binder.retries > 0

                async def all_reported() -> bool:  # events are written after the binding
                    return len(await _scheduled_counts(conn)) == 20

                await eventually(all_reported, timeout=30)
                await asyncio.sleep(0.5)  # a second event for a pod would come by now
                counts = await _scheduled_counts(conn)
                assert all(counts[f"p{i}"] == 1 for i in range(20)), counts
        finally:
            cluster.faults.clear()

    asyncio.run(main())


@needs_faults
def test_someone_else_binds_first_and_berth_moves_on(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        # Slow bindings down so another binder can win the race.
        cluster.faults.set_rules(FaultRule(verb="create", resource="pods/binding", latency=1.0))
        try:
            async with running(cluster) as (runner, conn):
                await create(conn, pod("contested"))

                async def assumed() -> bool:
                    return runner.engine.state.is_assumed("default/contested")

                await eventually(assumed)
                chosen = runner.engine.state.node_of("default/contested")
                other = next(n for n in ("node-001", "node-002", "node-003") if n != chosen)
                body = {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": "contested"},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": other},
                }
                cluster.call(
                    lambda core: core.api.bind(namespace="default", name="contested", body=body)
                )

                async def settled() -> bool:
                    return (
                        runner.scheduler.bind_failures == 1
                        and "default/contested" not in runner.queue
                    )

                await eventually(settled, timeout=10)
                assert node_of((await pods(conn))["contested"]) == other
                # Accounted on the winner's node, and never requeued.
                assert runner.engine.state.node_of("default/contested") == other
                assert not runner.engine.state.is_assumed("default/contested")
                assert (await _scheduled_counts(conn))["contested"] == 0
        finally:
            cluster.faults.clear()

    asyncio.run(main())


@pytest.mark.embedded_only(
    "drops watches and forces 410 Gone on demand, which only the embedded server can"
)
def test_dropped_watches_and_forced_410_lose_no_pod(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (runner, conn):
            for batch in range(5):
                for i in range(10):
                    await create(conn, pod(f"b{batch}-{i}"))
                cluster.faults.expire_next_watch(2)
                cluster.drop_watches()
                await asyncio.sleep(0.2)

            async def all_bound() -> bool:
                return len(await pods(conn)) == 50 and all(
                    node_of(p) for p in (await pods(conn)).values()
                )

            await eventually(all_bound, timeout=30)
            await asyncio.sleep(0.5)
            counts = await _scheduled_counts(conn)
            assert set(counts.values()) == {1} and len(counts) == 50, counts
            assert sum(i.relists for i in runner.informers) >= 1
            # The cache agrees with the API server about every pod's node.
            listed = await pods(conn)
            for name, p in listed.items():
                assert runner.engine.state.node_of(f"default/{name}") == node_of(p)

    asyncio.run(main())


@pytest.mark.embedded_only(
    "the real API server refuses this pod (422); the embedded one stores it (a known difference)"
)
def test_malformed_pod_gets_failed_scheduling_event(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            # A term the scheduler cannot honour (an unsupported operator for matchFields).
            # The API server refuses it, as kube-apiserver does, so it is written into the
            # store behind the API: what an object stored by an older or laxer server looks like.
            term = {"matchFields": [{"key": "metadata.name", "operator": "Exists"}]}
            affinity = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
                }
            }
            bad = pod("odd", affinity=affinity)
            response = await conn.core.create_namespaced_pod_without_preload_content(
                namespace="default", body=bad
            )
            assert response.status == 422
            good = pod("odd")
            good["spec"]["schedulerName"] = "nobody"  # not Berth's until it is made odd below
            await create(conn, good)

            def make_odd(core: Any) -> None:
                old = core.store.get(PODS, "default", "odd")
                spec = {**old["spec"], "affinity": affinity, "schedulerName": "berth"}
                core.store.replace(PODS, {**old, "spec": spec}, old)

            cluster.call(make_odd)
            await create(conn, pod("fine"))

            async def reported() -> bool:
                return any(
                    e["reason"] == "FailedScheduling" and e["regarding"]["name"] == "odd"
                    for e in await events(conn)
                )

            await eventually(reported)
            ev = next(e for e in await events(conn) if e["regarding"]["name"] == "odd")
            assert "invalid pod spec" in ev["note"] and "matchFields" in ev["note"]

            async def fine_bound() -> bool:
                return node_of((await pods(conn))["fine"]) is not None

            await eventually(fine_bound)

    asyncio.run(main())


def test_health_and_metrics_endpoints(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (runner, conn):
            await create(conn, pod("m"))
            await create(conn, pod("huge", cpu="100"))  # fits nowhere: NodeResourcesFit

            async def bound() -> bool:
                # the binding cycle's end (the answer from the API dispatcher), which can come
                # after the bound pod is visible through the API
                return (
                    node_of((await pods(conn))["m"]) is not None and runner.scheduler.scheduled > 0
                )

            await eventually(bound)

            async def parked() -> bool:
                entry = runner.queue.get("default/huge")
                return entry is not None and entry.where == "unschedulable"

            await eventually(parked)
            base = f"http://127.0.0.1:{runner.health.port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/healthz") as r:
                    assert r.status == 200
                async with http.get(f"{base}/readyz") as r:
                    assert r.status == 200
                async with http.get(f"{base}/metrics") as r:
                    text = await r.text()
            assert (
                'scheduler_schedule_attempts_total{profile="berth",result="scheduled"} 1.0' in text
            )
            assert 'scheduler_pending_pods{queue="active"}' in text
            assert "scheduler_scheduling_attempt_duration_seconds_bucket" in text
            # upstream's SLI and attempts histograms: one pod scheduled at its first attempt
            assert 'scheduler_pod_scheduling_sli_duration_seconds_count{attempts="1"} 1.0' in text
            assert "scheduler_pod_scheduling_attempts_count 1.0" in text
            assert (
                'scheduler_unschedulable_pods{plugin="NodeResourcesFit",profile="berth"} 1.0'
                in text
            )
            # upstream's per-extension-point latency, with the status each point ended with
            for point, status in (
                ("PreFilter", "Success"),
                ("Score", "Success"),
                ("Reserve", "Success"),
                ("Permit", "Success"),
                ("Bind", "Success"),
                ("PostFilter", "Unschedulable"),  # the huge pod: preemption cannot help
            ):
                line = (
                    "scheduler_framework_extension_point_duration_seconds_count"
                    f'{{extension_point="{point}",profile="berth",status="{status}"}}'
                )
                assert line in text, (line, [x for x in text.splitlines() if "extension" in x])

    asyncio.run(main())
