"""Event recording: repeats are aggregated into one Event, and a failed create is not
aggregated into (the next repeat creates the event instead of patching a missing one)."""

from __future__ import annotations

import asyncio

from berth.cluster import EmbeddedCluster, FaultRule
from berth.kube.client import connect
from berth.kube.events import EventRecorder
from berth.objects import parse_pod
from tests.live.conftest import events, eventually
from tests.live.conftest import pod as pod_body


def test_repeats_bump_count_and_failed_creates_are_retried_as_creates(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        recorder = EventRecorder(connection=conn, instance="test")
        pod = parse_pod(pod_body("p") | {"metadata": {"name": "p", "namespace": "default"}})
        cluster.faults.set_rules(FaultRule(verb="create", resource="events", rate=1.0))
        recorder.event(
            pod,
            type_="Warning",
            reason="FailedScheduling",
            action="Scheduling",
            message="0/3 nodes are available: 3 Insufficient cpu.",
        )
        await recorder.flush()
        assert recorder.failed == 1
        cluster.faults.clear()
        for _ in range(3):
            recorder.event(
                pod,
                type_="Warning",
                reason="FailedScheduling",
                action="Scheduling",
                message="0/3 nodes are available: 3 Insufficient cpu.",
            )
            await recorder.flush()

        async def one_event_counted_three_times() -> bool:
            evs = [e for e in await events(conn) if e["involvedObject"]["name"] == "p"]
            return len(evs) == 1 and evs[0]["count"] == 3

        await eventually(one_event_counted_three_times)
        assert recorder.failed == 1
        await conn.close()

    asyncio.run(main())
