"""Queueing hints live: an unschedulable pod is retried only on events that could help it."""

from __future__ import annotations

import asyncio
from typing import Any

from berth.cluster import EmbeddedCluster
from berth.kube.client import Connection, read_json
from berth.run import Runner
from tests.live.conftest import create, eventually, node_of, pod, pods, running

TAINT = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}


async def _patch_node(conn: Connection, name: str, body: dict[str, Any]) -> None:
    response = await conn.core.patch_node_without_preload_content(name=name, body=body)
    answer = await read_json(response)
    assert response.status == 200, answer


def _incoming(runner: Runner, queue: str, event: str) -> float:
    registry = runner.scheduler.metrics.registry
    value = registry.get_sample_value(
        "scheduler_queue_incoming_pods_total", {"queue": queue, "event": event}
    )
    return value or 0.0


def test_taint_rejected_pod_waits_for_a_taint_change_not_a_pod_deletion(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        async with running(cluster) as (runner, conn):
            state = runner.scheduler.engine.state
            names = sorted(state.index)
            assert len(names) == 3
            for name in names:
                await _patch_node(conn, name, {"spec": {"taints": [TAINT]}})

            async def tainted() -> bool:
                return all(state.nodes[state.index[n]].taints for n in names)

            await eventually(tainted)
            # Someone else's pod, bound to a node: its deletion frees room, nothing more.
            await create(conn, pod("other", scheduler="someone-else", nodeName=names[0]))
            await eventually(lambda: _known(runner, "default/other"))

            await create(conn, pod("waiting"))

            async def parked() -> bool:
                entry = runner.queue.get("default/waiting")
                return entry is not None and entry.where == "unschedulable"

            await eventually(parked)
            entry = runner.queue.get("default/waiting")
            assert entry is not None
            assert entry.unschedulable_plugins == {"TaintToleration"}
            assert entry.attempts == 1

            # An unrelated bound pod is deleted: no plugin that rejected it cares.
            response = await conn.core.delete_namespaced_pod_without_preload_content(
                name="other", namespace="default"
            )
            assert response.status == 200
            response.release()

            async def forgotten() -> bool:
                return state.node_of("default/other") is None

            await eventually(forgotten)
            await asyncio.sleep(1.5)  # longer than the 1 s backoff: a move would show
            assert entry.where == "unschedulable" and entry.attempts == 1
            for queue in ("active", "backoff"):
                assert _incoming(runner, queue, "AssignedPodDelete") == 0

            # The taint goes from one node: TaintToleration registered that; the pod is bound.
            await _patch_node(conn, names[1], {"spec": {"taints": []}})

            async def bound() -> bool:
                return node_of((await pods(conn))["waiting"]) == names[1]

            await eventually(bound)
            assert entry.attempts == 2
            moved = sum(
                _incoming(runner, queue, "NodeUpdateNodeTaint") for queue in ("active", "backoff")
            )
            assert moved == 1

    asyncio.run(main())


async def _known(runner: Runner, key: str) -> bool:
    return runner.scheduler.engine.state.node_of(key) is not None
