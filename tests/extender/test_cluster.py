"""The extender against the embedded cluster: nodeCacheCapable mode (NodeNames answered from
Berth's informers, bound pods counted) and the bind verb through Berth's Binder."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

from berth.cluster import EmbeddedCluster
from berth.config import parse_config
from berth.extender.server import ExtenderOptions, ExtenderProcess
from berth.kube.client import connect, read_json
from tests.extender.conftest import post
from tests.live.conftest import create, eventually, node_of, pod, pods


@pytest.fixture
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(nodes=3, zones=1, node_cpu="4", node_memory="16Gi") as c:
        yield c


BIND_TOKEN = "bind-s3cret"


@contextlib.asynccontextmanager
async def extender(
    cluster: EmbeddedCluster, *, cache: bool = True
) -> AsyncIterator[tuple[str, ExtenderProcess]]:
    conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
    process = ExtenderProcess(
        config=parse_config({}),
        connection=conn,
        options=ExtenderOptions(
            bind_address="127.0.0.1:0", node_cache_capable=cache, bind_token=BIND_TOKEN
        ),
    )
    task = asyncio.create_task(process.run())
    try:

        async def up() -> bool:
            return process.ready() and process.server.port != 0

        await eventually(up)
        yield f"http://127.0.0.1:{process.server.port}/berth", process
    finally:
        process.stop_requested.set()
        assert await asyncio.wait_for(task, timeout=10) == 0
        await conn.close()


def test_node_names_mode_counts_bound_pods(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with extender(cluster) as (url, process):
            conn = process.connection
            assert conn is not None
            names = sorted(process.engine.state.index)
            assert len(names) == 3
            busy = names[0]
            await create(conn, pod("hog", cpu="3", scheduler="default-scheduler", nodeName=busy))

            async def counted() -> bool:
                return process.engine.state.node_of("default/hog") == busy

            await eventually(counted)
            want = pod("want", cpu="2", scheduler="default-scheduler")
            code, out = await post(f"{url}/filter", {"Pod": want, "NodeNames": names[:2]})
            assert code == 200, out
            assert out["Nodes"] is None
            assert out["NodeNames"] == [names[1]]  # names[2] fits but was not sent
            assert out["FailedNodes"] == {busy: "Insufficient cpu"}
            code, scores = await post(f"{url}/prioritize", {"Pod": want, "NodeNames": names})
            assert code == 200
            by_host = {h["Host"]: h["Score"] for h in scores}
            assert set(by_host) == set(names)
            # Resource scores are 2 of 12 weight units by default: a small difference here.
            assert by_host[busy] <= by_host[names[1]]

    asyncio.run(main())


def test_bind_binds_once_and_reports_errors(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with extender(cluster, cache=False) as (url, process):
            conn = process.connection
            assert conn is not None
            await create(conn, pod("p", scheduler="default-scheduler"))
            created = (await pods(conn))["p"]
            uid = created["metadata"]["uid"]
            listed = await read_json(await conn.core.list_node_without_preload_content())
            first, second = sorted(n["metadata"]["name"] for n in listed["items"])[:2]
            args = {"PodName": "p", "PodNamespace": "default", "PodUID": uid, "Node": first}
            for token in (None, "wrong"):  # binding needs the bind token (or a client cert)
                code, out = await post(f"{url}/bind", args, token=token)
                assert code == 403 and "not authorized to bind" in out["Error"]
            assert node_of((await pods(conn))["p"]) is None
            code, out = await post(f"{url}/bind", args, token=BIND_TOKEN)
            assert (code, out) == (200, {"Error": ""})
            assert node_of((await pods(conn))["p"]) == first

            async def counted() -> bool:  # NodeList mode still watches pods for accounting
                return process.engine.state.node_of("default/p") == first

            await eventually(counted)
            # The same bind again is what a retry after a lost answer looks like: it succeeds.
            assert await post(f"{url}/bind", args, token=BIND_TOKEN) == (200, {"Error": ""})
            code, out = await post(f"{url}/bind", {**args, "Node": second}, token=BIND_TOKEN)
            assert code == 200
            assert out["Error"].startswith(f"binding default/p to {second}:")
            assert "already bound" in out["Error"]
            code, out = await post(f"{url}/bind", {**args, "PodUID": ""}, token=BIND_TOKEN)
            assert (code, out) == (400, {"Error": "PodUID: required"})
            other = {**args, "PodName": "missing", "PodUID": "0000"}
            code, out = await post(f"{url}/bind", other, token=BIND_TOKEN)
            assert code == 200 and out["Error"]
            assert node_of((await pods(conn))["p"]) == first

    asyncio.run(main())
