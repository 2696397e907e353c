"""Gang scheduling live: `berth run` with Coscheduling on the embedded cluster, PodGroups created
through the CustomObjectsApi. A group is bound whole or not at all."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes.aio.client import CustomObjectsApi

from berth.cluster import EmbeddedCluster
from berth.kube.client import Connection, read_json
from berth.objects.pod import POD_GROUP_LABEL
from tests.live.conftest import create, events, eventually, node_of, pod, pods, running

GANG = {
    "profiles": [
        {
            "schedulerName": "berth",
            "plugins": {"multiPoint": {"enabled": [{"name": "Coscheduling"}]}},
        }
    ]
}


async def podgroup(conn: Connection, name: str, min_member: int, *, timeout: int = 30) -> None:
    body: dict[str, Any] = {
        "apiVersion": "scheduling.x-k8s.io/v1alpha1",
        "kind": "PodGroup",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"minMember": min_member, "scheduleTimeoutSeconds": timeout},
    }
    api = CustomObjectsApi(conn.api)
    response = await api.create_namespaced_custom_object_without_preload_content(
        group="scheduling.x-k8s.io",
        version="v1alpha1",
        namespace="default",
        plural="podgroups",
        body=body,
    )
    answer = await read_json(response)
    assert response.status == 201, answer


def member(name: str, group: str, cpu: str) -> dict[str, Any]:
    body = pod(name, cpu=cpu)
    body["metadata"]["labels"] = {POD_GROUP_LABEL: group}
    return body


async def bound(conn: Connection, prefix: str) -> dict[str, str | None]:
    listed = await pods(conn)
    return {n: node_of(p) for n, p in listed.items() if n.startswith(prefix)}


def test_group_is_bound_together(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster, GANG) as (runner, conn):
            await podgroup(conn, "trio", 3)
            for i in range(3):
                await create(conn, member(f"trio-{i}", "trio", "1"))

            async def all_bound() -> bool:
                got = await bound(conn, "trio-")
                return len(got) == 3 and all(got.values())

            await eventually(all_bound, timeout=15)
            assert len(runner.scheduler.engine.handle.ports.waiting_pods) == 0

    asyncio.run(main())


def test_group_that_cannot_fit_binds_nothing_until_a_node_is_added(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        async with running(cluster, GANG) as (_runner, conn):
            # 3 nodes x 4 cpu; a group of 4 pods of 3 cpu needs a 4th node.
            await podgroup(conn, "quad", 4)
            for i in range(4):
                await create(conn, member(f"quad-{i}", "quad", "3"))

            async def all_failed() -> bool:
                failed = {
                    e["regarding"]["name"]
                    for e in await events(conn)
                    if e.get("reason") == "FailedScheduling"
                }
                return {f"quad-{i}" for i in range(4)} <= failed

            await eventually(all_failed, timeout=15)
            for _ in range(10):  # never partially bound while it cannot complete
                assert not any((await bound(conn, "quad-")).values())
                await asyncio.sleep(0.2)
            messages = {
                e["note"] for e in await events(conn) if e.get("reason") == "FailedScheduling"
            }
            assert "Coscheduling: optimistic rejection in PostFilter" in messages
            assert any("PodGroup default/quad gets rejected" in m for m in messages)

            cluster.add_nodes(count=1)

            async def all_bound() -> bool:
                got = await bound(conn, "quad-")
                return len(got) == 4 and all(got.values())

            await eventually(all_bound, timeout=30)
            nodes = set((await bound(conn, "quad-")).values())
            assert len(nodes) == 4

    asyncio.run(main())


def test_waiting_members_time_out_and_release_their_room(cluster: EmbeddedCluster) -> None:
    """The third member belongs to another scheduler: it counts as a sibling but Berth never
    places it, so the two members waiting at Permit time out (scheduleTimeoutSeconds) with
    upstream's message, and are never bound."""

    async def main() -> None:
        async with running(cluster, GANG) as (runner, conn):
            await podgroup(conn, "stuck", 3, timeout=1)
            for i in range(2):
                await create(conn, member(f"stuck-{i}", "stuck", "1"))
            await asyncio.sleep(0.5)  # they lack a sibling: unschedulable until it appears
            other = member("stuck-x", "stuck", "1")
            other["spec"]["schedulerName"] = "someone-else"
            await create(conn, other)

            async def timed_out() -> bool:
                # The PodScheduled condition carries the message. The FailedScheduling event
                # may not: as client-go, a repeat for the same pod resourceVersion joins the
                # earlier event's series whatever its note.
                return any(
                    c.get("type") == "PodScheduled"
                    and c.get("message")
                    == (
                        "Coscheduling: rejected due to timeout after waiting 1s at plugin "
                        "Coscheduling"
                    )
                    for p in (await pods(conn)).values()
                    for c in (p.get("status") or {}).get("conditions") or []
                )

            await eventually(timed_out, timeout=15)
            assert not any((await bound(conn, "stuck-")).values())
            assert runner.scheduler.engine.state.assumed <= {
                "default/stuck-0",
                "default/stuck-1",
            }

    asyncio.run(main())
