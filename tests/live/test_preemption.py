"""`berth run` preempting on the embedded cluster: a full cluster, a high-priority pod arrives,
victims are deleted with `Preempted` events, the preemptor is nominated and then bound there."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes.aio.client import PolicyV1Api, SchedulingV1Api

from berth.cluster import EmbeddedCluster
from berth.kube.client import Connection, read_json
from tests.live.conftest import (
    create,
    events,
    eventually,
    node_of,
    pod,
    pod_versions,
    pods,
    running,
)


async def priority_class(conn: Connection, name: str, value: int) -> None:
    body: dict[str, Any] = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
    }
    api = SchedulingV1Api(conn.api)
    response = await api.create_priority_class_without_preload_content(body=body)
    answer = await read_json(response)
    assert response.status == 201, answer


def nominations(versions: list[dict[str, Any]]) -> list[str]:
    """The distinct nominated nodes of a pod's unbound versions, in order."""
    out: list[str] = []
    for v in versions:
        nominated = (v.get("status") or {}).get("nominatedNodeName")
        if nominated and not node_of(v) and nominated not in out:
            out.append(nominated)
    return out


def test_high_priority_pod_preempts_on_a_full_cluster(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (runner, conn):
            await priority_class(conn, "low", 10)
            await priority_class(conn, "high", 1000)
            # Fill every node (3 x 4 cpu) with low-priority pods of 2 cpu.
            for i in range(6):
                await create(conn, pod(f"low-{i}", cpu="2", priorityClassName="low"))

            async def all_bound() -> bool:
                listed = await pods(conn)
                return sum(1 for p in listed.values() if node_of(p)) == 6

            await eventually(all_bound)
            async with pod_versions(conn, "vip") as versions:
                await create(conn, pod("vip", cpu="3", priorityClassName="high"))

                async def vip_bound() -> bool:
                    listed = await pods(conn)
                    return "vip" in listed and node_of(listed["vip"]) is not None

                await eventually(vip_bound, timeout=20)
            listed = await pods(conn)
            vip = listed["vip"]
            node = node_of(vip)
            assert vip["spec"]["priority"] == 1000
            # nominated while unbound, then bound there; the binding clears the nomination
            assert nominations(versions) == [node]
            assert "nominatedNodeName" not in vip["status"]
            gone = sorted(f"low-{i}" for i in range(6) if f"low-{i}" not in listed)
            assert len(gone) == 2  # both pods of one node, and nothing else
            evs = await events(conn)
            preempted = [e for e in evs if e["reason"] == "Preempted"]
            assert sorted(e["regarding"]["name"] for e in preempted) == gone
            for e in preempted:
                assert e["type"] == "Normal"
                assert e["note"] == f"Preempted by pod {vip['metadata']['uid']} on node {node}"
                assert e["action"] == "Preempting" and e["reportingController"] == "berth"
                # upstream Eventf(victim, preemptor, ...): the preemptor is `related`
                assert e["related"]["name"] == "vip"
                assert e["related"]["uid"] == vip["metadata"]["uid"]
            assert runner.scheduler.evictor is not None
            assert runner.scheduler.evictor.evicted == 2
            assert not runner.engine.handle.ports.nominator.node_of("default/vip")

    asyncio.run(main())


def test_equal_priority_pod_does_not_preempt(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            await priority_class(conn, "same", 10)
            for i in range(6):
                await create(conn, pod(f"a-{i}", cpu="2", priorityClassName="same"))

            async def all_bound() -> bool:
                return sum(1 for p in (await pods(conn)).values() if node_of(p)) == 6

            await eventually(all_bound)
            await create(conn, pod("b", cpu="2", priorityClassName="same"))

            async def failed() -> bool:
                return any(
                    e["reason"] == "FailedScheduling" and e["regarding"]["name"] == "b"
                    for e in await events(conn)
                )

            await eventually(failed)
            ev = next(e for e in await events(conn) if e["reason"] == "FailedScheduling")
            assert ev["note"] == (
                "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                "available: 3 No preemption victims found for incoming pod."
            )
            listed = await pods(conn)
            assert len(listed) == 7 and node_of(listed["b"]) is None
            assert not [e for e in await events(conn) if e["reason"] == "Preempted"]

    asyncio.run(main())


async def pdb(conn: Connection, name: str, app: str, min_available: int) -> None:
    body: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
    }
    response = await PolicyV1Api(
        conn.api
    ).create_namespaced_pod_disruption_budget_without_preload_content(
        namespace="default", body=body
    )
    answer = await read_json(response)
    assert response.status == 201, answer


async def allowed(conn: Connection, name: str) -> int | None:
    response = await PolicyV1Api(
        conn.api
    ).read_namespaced_pod_disruption_budget_without_preload_content(name=name, namespace="default")
    body = await read_json(response)
    value = (body.get("status") or {}).get("disruptionsAllowed")
    return None if value is None else int(value)


def test_preemption_picks_victims_whose_budget_allows_it(cluster: EmbeddedCluster) -> None:
    """Every node is full; only node-001's pods may be disrupted (their PDB allows 2, the
    others' allows 0, as the disruption controller computes it): the preemptor goes there."""

    async def main() -> None:
        async with running(cluster) as (runner, conn):
            await priority_class(conn, "low", 10)
            await priority_class(conn, "high", 1000)
            placed = {"node-001": "free", "node-002": "kept", "node-003": "kept"}
            for i, (node, app) in enumerate(p for p in placed.items() for _ in range(2)):
                body = pod(f"low-{i}", cpu="2", priorityClassName="low", nodeName=node)
                body["metadata"]["labels"] = {"app": app}
                await create(conn, body)
            await pdb(conn, "free", "free", 0)
            await pdb(conn, "kept", "kept", 4)

            async def budgets() -> bool:
                return await allowed(conn, "free") == 2 and await allowed(conn, "kept") == 0

            await eventually(budgets, timeout=20)
            await create(conn, pod("vip", cpu="3", priorityClassName="high"))

            async def vip_bound() -> bool:
                listed = await pods(conn)
                return node_of(listed["vip"]) is not None

            await eventually(vip_bound, timeout=30)
            listed = await pods(conn)
            assert node_of(listed["vip"]) == "node-001"
            assert sorted(n for n in listed if n.startswith("low-")) == [
                "low-2",
                "low-3",
                "low-4",
                "low-5",
            ]
            assert runner.scheduler.evictor is not None
            assert runner.scheduler.evictor.evicted == 2

    asyncio.run(main())
