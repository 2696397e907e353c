"""The API dispatcher's worker process and its failure paths: a conflicting bind resolved by
reading the pod, 5xx answers retried with backoff, the worker killed mid-bind (its pods requeued
and bound once, none lost), a clean stop that drains the events handed over, a worker that
cannot start, a worker whose parent went away, and the worker's bound on its connections; and
the lean HTTP/1.1 path's pipelined requests, answered in order by both API servers."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from berth.cluster import EmbeddedCluster
from berth.cluster.faults import FaultRule
from berth.framework.status import Code
from berth.kube.client import Connection, ConnectSpec, connect, read_json
from berth.kube.dispatch_worker import MAX_CONNECTIONS
from berth.kube.dispatcher import ApiDispatcher, DispatcherUnavailable
from berth.kube.http1 import PIPELINE
from berth.kube.wire import PodRef
from tests.live.conftest import create, events, eventually, node_of, pod, pods, running
from tests.upstream import needs_faults


async def _node_names(conn: Connection) -> list[str]:
    listed = await read_json(await conn.core.list_node_without_preload_content())
    return sorted(n["metadata"]["name"] for n in listed["items"])


async def _ref(conn: Connection, name: str) -> PodRef:
    raw = (await pods(conn))[name]
    meta = raw["metadata"]
    return PodRef("default", name, meta["uid"], meta["resourceVersion"], "berth")


def _dispatcher(conn: Connection) -> ApiDispatcher:
    assert conn.spec is not None
    return ApiDispatcher(spec=conn.spec, hostname="host-a", drain_timeout=10)


def test_pipelined_binds_and_events_are_answered_in_order_by_the_api_server(
    cluster: EmbeddedCluster,
) -> None:
    """PIPELINE binds and as many event writes issued at once go out pipelined on the lean path,
    two connections in all, and each gets its own answer (the embedded cluster and
    kube-apiserver both serve pipelined HTTP/1.1 requests in order)."""

    async def main() -> None:
        plain = await connect(kubeconfig=str(cluster.kubeconfig_path))
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path), lean=True)
        assert conn.lean is not None
        try:
            names = [f"p{i}" for i in range(PIPELINE)]
            for name in names:
                await create(plain, pod(name, scheduler="nobody"))
            node = (await _node_names(plain))[0]
            refs = [await _ref(plain, name) for name in names]
            binds = [
                conn.call(
                    "POST",
                    f"/api/v1/namespaces/default/pods/{ref.name}/binding",
                    {
                        "apiVersion": "v1",
                        "kind": "Binding",
                        "metadata": {"name": ref.name, "uid": ref.uid},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                    },
                )
                for ref in refs
            ]
            notes = [
                conn.call(
                    "POST",
                    "/apis/events.k8s.io/v1/namespaces/default/events",
                    {
                        "apiVersion": "events.k8s.io/v1",
                        "kind": "Event",
                        "metadata": {"name": f"{ref.name}.pipelined", "namespace": "default"},
                        "eventTime": "2026-12-02T00:00:00.000000Z",
                        "reportingController": "berth",
                        "reportingInstance": "berth-host-a",
                        "action": "Binding",
                        "reason": "Scheduled",
                        "regarding": {"kind": "Pod", "namespace": "default", "name": ref.name},
                        "note": f"note of {ref.name}",
                        "type": "Normal",
                    },
                )
                for ref in refs
            ]
            answers = await asyncio.gather(*binds, *notes)
            assert [code for code, _ in answers] == [201] * PIPELINE * 2, answers
            written = answers[PIPELINE:]
            assert [body["note"] for _, body in written] == [f"note of {n}" for n in names]
            assert conn.lean.pool.opened == 2
            bound = await pods(plain)
            assert all(node_of(bound[name]) == node for name in names)
        finally:
            await conn.close()
            await plain.close()

    asyncio.run(main())


def test_a_conflicting_bind_is_resolved_by_reading_the_pod(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        dispatcher = _dispatcher(conn)
        try:
            await create(conn, pod("p", scheduler="nobody"))
            first, second = (await _node_names(conn))[:2]
            await dispatcher.start()
            ref = await _ref(conn, "p")
            assert (await dispatcher.bind(ref, first)).ok
            # A repeat of the same bind (its answer lost) is our own earlier attempt: success.
            assert (await dispatcher.bind(ref, first)).ok
            # Another node: refused by the API server, and never retried elsewhere.
            moved = await dispatcher.bind(ref, second)
            assert moved.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
            assert f"already bound to {first!r}" in moved.message
            assert node_of((await pods(conn))["p"]) == first
        finally:
            await dispatcher.close()
            await conn.close()

    asyncio.run(main())


@needs_faults
def test_5xx_answers_are_retried_with_backoff_then_bound(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        dispatcher = _dispatcher(conn)
        try:
            await create(conn, pod("p", scheduler="nobody"))
            node = (await _node_names(conn))[0]
            await dispatcher.start()
            cluster.faults.set_rules(
                FaultRule(verb="create", resource="pods/binding", rate=1.0, status=503)
            )
            bind = asyncio.create_task(dispatcher.bind(await _ref(conn, "p"), node))
            await asyncio.sleep(0.3)  # the first attempt and at least one retry meet the 503
            cluster.faults.clear()
            status = await asyncio.wait_for(bind, timeout=30)
            assert status.ok, status
            assert dispatcher.retries >= 1
            assert node_of((await pods(conn))["p"]) == node
        finally:
            cluster.faults.clear()
            await dispatcher.close()
            await conn.close()

    asyncio.run(main())


@needs_faults
def test_the_worker_killed_mid_bind_requeues_its_pods_and_loses_none(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        # Slow bindings, so that the worker dies holding some.
        cluster.faults.set_rules(FaultRule(verb="create", resource="pods/binding", latency=1.5))
        try:
            async with running(cluster) as (runner, conn):
                dispatcher = runner.dispatcher
                assert dispatcher is not None and dispatcher.pid is not None
                first_pid = dispatcher.pid
                for i in range(10):
                    await create(conn, pod(f"p{i}"))

                async def holding() -> bool:
                    return dispatcher.in_flight >= 3

                await eventually(holding, timeout=20)
                os.kill(first_pid, signal.SIGKILL)

                async def restarted() -> bool:
                    return dispatcher.restarts == 1 and dispatcher.up

                await eventually(restarted, timeout=30)
                assert dispatcher.pid != first_pid
                cluster.faults.clear()

                async def all_bound() -> bool:
                    return all(node_of(p) for p in (await pods(conn)).values())

                await eventually(all_bound, timeout=60)
                assert runner.scheduler.bind_failures >= 1
                listed = await pods(conn)
                assert len(listed) == 10
                state = runner.engine.state

                async def settled() -> bool:
                    return all(
                        state.node_of(f"default/{name}") == node_of(p)
                        and not state.is_assumed(f"default/{name}")
                        for name, p in listed.items()
                    )

                # Each pod counted once, on the node the API server has, and none left queued.
                await eventually(settled, timeout=30)
                assert not any(f"default/{name}" in runner.queue for name in listed)
        finally:
            cluster.faults.clear()

    asyncio.run(main())


def test_stopping_drains_the_events_handed_over(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        dispatcher = _dispatcher(conn)
        try:
            for i in range(20):
                await create(conn, pod(f"e{i}", scheduler="nobody"))
            refs = [await _ref(conn, f"e{i}") for i in range(20)]
            await dispatcher.start()
            for ref in refs:
                dispatcher.event(
                    ref, type_="Normal", reason="Scheduled", action="Binding", message="m"
                )
            await dispatcher.close()  # at once: the worker must finish all 20 before it exits
            assert dispatcher.sent == 20 and dispatcher.failed == 0
            written = await events(conn)
            assert sorted(e["regarding"]["name"] for e in written) == sorted(
                f"e{i}" for i in range(20)
            )
            assert {e["reportingInstance"] for e in written} == {"berth-host-a"}
        finally:
            await conn.close()

    asyncio.run(main())


def test_a_worker_that_cannot_connect_fails_start_clearly(tmp_path: Path) -> None:
    async def main() -> None:
        spec = ConnectSpec(
            kubeconfig=str(tmp_path / "missing"), context=None, qps_burst=10, request_timeout=5
        )
        dispatcher = ApiDispatcher(spec=spec)
        with pytest.raises(DispatcherUnavailable, match="did not start"):
            await dispatcher.start()
        assert not dispatcher.up

    asyncio.run(main())


def test_the_worker_drains_and_exits_when_berth_run_goes_away(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        dispatcher = _dispatcher(conn)
        try:
            await create(conn, pod("orphan", scheduler="nobody"))
            await dispatcher.start()
            proc = dispatcher._proc
            assert proc is not None and proc.stdin is not None
            dispatcher.event(
                await _ref(conn, "orphan"),
                type_="Normal",
                reason="Scheduled",
                action="Binding",
                message="m",
            )
            await asyncio.sleep(0.1)  # the batched line leaves at the end of the iteration
            proc.stdin.close()  # what the worker sees when berth run dies
            assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
            assert [e["regarding"]["name"] for e in await events(conn)] == ["orphan"]
        finally:
            await dispatcher.close()
            await conn.close()

    asyncio.run(main())


def _tcp_connections(pid: int) -> int:
    """The TCP sockets process `pid` holds open (its connections to the API server; not the
    event loop's own socket pair)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    tcp = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            tcp.update(line.split()[9] for line in list(f)[1:])
    return len(inodes & tcp)


@needs_faults
def test_the_worker_holds_at_most_max_connections_whatever_the_burst(
    cluster: EmbeddedCluster,
) -> None:
    # more binds in flight than the connections carry pipelined, so the cap is reached
    binds = MAX_CONNECTIONS * PIPELINE + 30

    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        assert conn.spec is not None
        spec = ConnectSpec(
            kubeconfig=conn.spec.kubeconfig, context=None, qps_burst=256, request_timeout=30
        )
        dispatcher = ApiDispatcher(spec=spec, hostname="host-a", drain_timeout=10)
        try:
            for i in range(binds):
                await create(conn, pod(f"p{i}", scheduler="nobody"))
            node = (await _node_names(conn))[0]
            refs = [await _ref(conn, f"p{i}") for i in range(binds)]
            await dispatcher.start()
            assert dispatcher.pid is not None
            # every bind waits 0.2 s in the API server: all of them are in flight at once, more
            # than the worker's connections may carry
            cluster.faults.set_rules(FaultRule(verb="create", resource="pods/binding", latency=0.2))
            tasks = [asyncio.create_task(dispatcher.bind(ref, node)) for ref in refs]
            peak = 0
            while not all(t.done() for t in tasks):
                peak = max(peak, _tcp_connections(dispatcher.pid))
                await asyncio.sleep(0.02)
            assert all(t.result().ok for t in tasks)
            assert MAX_CONNECTIONS // 2 < peak <= MAX_CONNECTIONS, peak
            bound = await pods(conn)
            assert all(node_of(bound[f"p{i}"]) == node for i in range(binds))
        finally:
            cluster.faults.clear()
            await dispatcher.close()
            await conn.close()

    asyncio.run(main())
