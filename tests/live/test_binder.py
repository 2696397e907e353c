"""The Binder against the embedded cluster: the retry policy around POST pods/NAME/binding."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from berth.cluster import EmbeddedCluster
from berth.cluster.faults import FaultRule
from berth.framework.status import Code
from berth.kube.binder import Binder, BindPolicy
from berth.kube.client import connect, read_json
from berth.objects import parse_pod
from tests.live.conftest import create, node_of, pod, pods
from tests.upstream import needs_faults


def _counting(binder: Binder, after_first: Any = None) -> list[float]:
    """Record the time of every attempt; run `after_first` once the first attempt returns."""
    times: list[float] = []
    original = binder._attempt

    async def attempt(p: Any, node: str) -> Any:
        times.append(time.monotonic())
        try:
            return await original(p, node)
        finally:
            if len(times) == 1 and after_first is not None:
                after_first()

    binder._attempt = attempt  # type: ignore[method-assign]
    return times


@needs_faults
def test_a_failing_first_attempt_backs_off_then_binds(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        try:
            await create(conn, pod("p"))
            raw = (await pods(conn))["p"]
            binder = Binder(connection=conn, policy=BindPolicy(attempts=3, initial_backoff=0.2))
            times = _counting(binder, after_first=cluster.faults.clear)
            cluster.faults.set_rules(FaultRule(verb="create", resource="pods/binding", rate=1.0))
            listed = await read_json(await conn.core.list_node_without_preload_content())
            node = sorted(n["metadata"]["name"] for n in listed["items"])[0]
            status = await binder.bind(parse_pod(raw), node)
            assert status.ok, status
            assert len(times) == 2 and binder.retries == 1
            assert times[1] - times[0] >= 0.2  # the policy's backoff before attempt 2
            assert node_of((await pods(conn))["p"]) == node
        finally:
            cluster.faults.clear()
            await conn.close()

    asyncio.run(main())


@needs_faults
def test_binding_gives_up_after_the_policys_attempts(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        try:
            await create(conn, pod("p"))
            raw = (await pods(conn))["p"]
            binder = Binder(connection=conn, policy=BindPolicy(attempts=3, initial_backoff=0.01))
            times = _counting(binder)
            cluster.faults.set_rules(
                FaultRule(verb="create", resource="pods/binding", rate=1.0, status=503)
            )
            status = await binder.bind(parse_pod(raw), "anything")
            assert status.code == Code.ERROR
            assert "binding failed after 3 attempts" in status.message
            assert len(times) == 3 and binder.retries == 2
            assert node_of((await pods(conn))["p"]) is None
        finally:
            cluster.faults.clear()
            await conn.close()

    asyncio.run(main())
