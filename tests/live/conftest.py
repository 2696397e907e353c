"""Fixtures for the live scheduler's integration tests: a cluster per test (the embedded one, and
the real control plane reset to the same nodes), a Berth Runner on it (in-process, over HTTP
with the official client), and small async helpers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from berth.cluster import EmbeddedCluster
from berth.config import parse_config
from berth.kube.client import Connection, connect, read_json
from berth.kube.informer import Informer
from berth.run import Runner, RunOptions
from tests.upstream import SERVERS, clusters


@pytest.fixture(params=SERVERS)
def cluster(request: pytest.FixtureRequest) -> Iterator[EmbeddedCluster]:
    """3 nodes of 4 cpu and 16Gi in 2 zones, on the embedded cluster and on the real one."""
    yield from clusters(request, nodes=3, zones=2, cpu="4", memory="16Gi")


def pod(name: str, *, cpu: str = "100m", scheduler: str = "berth", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schedulerName": scheduler,
        "containers": [
            {"name": "c", "image": "busybox:1.36", "resources": {"requests": {"cpu": cpu}}}
        ],
    }
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": body}


async def create(conn: Connection, body: dict[str, Any], namespace: str = "default") -> None:
    response = await conn.core.create_namespaced_pod_without_preload_content(
        namespace=namespace, body=body
    )
    answer = await read_json(response)
    assert response.status == 201, answer


async def pods(conn: Connection, namespace: str = "default") -> dict[str, dict[str, Any]]:
    response = await conn.core.list_namespaced_pod_without_preload_content(namespace=namespace)
    body = await read_json(response)
    return {p["metadata"]["name"]: p for p in body["items"]}


async def events(conn: Connection, namespace: str = "default") -> list[dict[str, Any]]:
    """The events in `namespace` as Berth writes them: events.k8s.io/v1 (`regarding`, `note`)."""
    response = await conn.request("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events")
    body = await read_json(response)
    assert response.status == 200, body
    return list(body["items"])


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout:.1f}s")


def node_of(p: dict[str, Any]) -> str | None:
    value = (p.get("spec") or {}).get("nodeName")
    return str(value) if value else None


@contextlib.asynccontextmanager
async def running(
    cluster: EmbeddedCluster,
    config: dict[str, Any] | None = None,
    *,
    qps_burst: int = 100,
    **options: Any,
) -> AsyncIterator[tuple[Runner, Connection]]:
    """A Berth Runner against `cluster` for the duration of the block; stops it cleanly.
    `qps_burst`: the connection's, as `berth run` takes it from clientConnection.burst;
    `options`: more RunOptions (a debug token, ...)."""
    conn = await connect(kubeconfig=str(cluster.kubeconfig_path), qps_burst=qps_burst)
    cfg = {
        "leaderElection": {"leaderElect": False},
        "podInitialBackoffSeconds": 1,
        "podMaxBackoffSeconds": 2,
        **(config or {}),
    }
    runner = Runner(
        config=parse_config(cfg),
        connection=conn,
        options=RunOptions(leader_elect=False, bind_address="127.0.0.1:0", seed=1, **options),
    )
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: _ready(runner), timeout=10)
        yield runner, conn
    finally:
        runner.stop_requested.set()
        code = await asyncio.wait_for(task, timeout=20)
        await conn.close()
        assert code == 0


class _Versions:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_add(self, obj: dict[str, Any]) -> None:
        self.seen.append(obj)

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.seen.append(new)

    def on_delete(self, obj: dict[str, Any]) -> None:
        pass


@contextlib.asynccontextmanager
async def pod_versions(
    conn: Connection, name: str, namespace: str = "default"
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every version of pod `name` a watch delivers while the block runs (for states that do
    not last, such as a nomination the binding clears)."""
    versions = _Versions()
    informer = Informer(
        name="pods",
        call=conn.core.list_namespaced_pod_without_preload_content,
        handler=versions,
        extra={"namespace": namespace, "field_selector": f"metadata.name={name}"},
    )
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), timeout=10)
        yield versions.seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _ready(runner: Runner) -> bool:
    return runner.ready()
