"""`berth run` and scheduling gates (upstream SchedulingGates at PreEnqueue) against the embedded
cluster: a gated pod is held out of the queue (`scheduler_pending_pods{queue="gated"}`), never
tried, gets no FailedScheduling event, and is bound once an update removes its last gate."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from berth.cluster import EmbeddedCluster
from berth.kube.client import Connection, read_json
from tests.live.conftest import create, events, eventually, node_of, pod, pods, running


async def _patch(conn: Connection, name: str, ops: list[dict[str, Any]]) -> None:
    response = await conn.core.patch_namespaced_pod_without_preload_content(
        name=name, namespace="default", body=ops
    )
    answer = await read_json(response)
    assert response.status == 200, answer


async def _metrics(port: int) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as r,
    ):
        return await r.text()


def test_gated_pod_waits_for_its_last_gate(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (runner, conn):
            gates = [{"name": "example.com/quota"}, {"name": "example.com/arch"}]
            await create(conn, pod("gated", schedulingGates=gates))
            await create(conn, pod("free"))

            async def free_bound() -> bool:
                return node_of((await pods(conn))["free"]) is not None

            await eventually(free_bound)
            await asyncio.sleep(0.5)
            listed = await pods(conn)
            assert node_of(listed["gated"]) is None
            (cond,) = listed["gated"]["status"]["conditions"]
            assert (cond["reason"], cond["status"]) == ("SchedulingGated", "False")
            entry = runner.scheduler.queue.get("default/gated")
            assert entry is not None and entry.where == "gated" and entry.attempts == 0
            assert entry.gate is not None
            assert entry.gate.message == (
                "waiting for scheduling gates: [example.com/quota example.com/arch]"
            )
            text = await _metrics(runner.health.port)
            assert 'scheduler_pending_pods{queue="gated"} 1.0' in text
            assert 'scheduler_pending_pods{queue="unschedulable"} 0.0' in text
            assert 'result="unschedulable"' not in text  # never attempted

            # One gate removed: still gated.
            await _patch(conn, "gated", [{"op": "remove", "path": "/spec/schedulingGates/0"}])

            async def one_gate_seen() -> bool:
                e = runner.scheduler.queue.get("default/gated")
                return e is not None and e.pod.scheduling_gates == ("example.com/arch",)

            await eventually(one_gate_seen)
            await asyncio.sleep(0.3)
            assert node_of((await pods(conn))["gated"]) is None
            assert runner.scheduler.queue.counts()["gated"] == 1

            # The last gate removed: the pod enters the active queue and is bound.
            await _patch(conn, "gated", [{"op": "remove", "path": "/spec/schedulingGates"}])

            async def gated_bound() -> bool:
                return node_of((await pods(conn))["gated"]) is not None

            await eventually(gated_bound)
            p = (await pods(conn))["gated"]
            conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
            assert conds["PodScheduled"] == "True"
            evs = [e for e in await events(conn) if e["regarding"]["name"] == "gated"]
            assert [e["reason"] for e in evs] == ["Scheduled"]  # no FailedScheduling, ever
            text = await _metrics(runner.health.port)
            assert 'scheduler_pending_pods{queue="gated"} 0.0' in text

    asyncio.run(main())


def test_gates_disabled_in_the_profile_leave_the_pod_to_the_api_server(
    cluster: EmbeddedCluster,
) -> None:
    """With SchedulingGates disabled Berth tries the pod; the API server refuses the binding
    (409, the pod has gates), so the pod stays unbound and is retried after backoff."""

    async def main() -> None:
        config = {
            "profiles": [
                {
                    "schedulerName": "berth",
                    "plugins": {"preEnqueue": {"disabled": [{"name": "SchedulingGates"}]}},
                }
            ]
        }
        async with running(cluster, config) as (runner, conn):
            await create(conn, pod("g", schedulingGates=[{"name": "x"}]))

            async def refused() -> bool:
                return any(
                    e["reason"] == "FailedScheduling" and e["regarding"]["name"] == "g"
                    for e in await events(conn)
                )

            await eventually(refused)
            ev = next(e for e in await events(conn) if e["reason"] == "FailedScheduling")
            assert "pod g has non-empty .spec.schedulingGates" in ev["note"]
            assert node_of((await pods(conn))["g"]) is None
            assert runner.scheduler.queue.counts()["gated"] == 0

    asyncio.run(main())
