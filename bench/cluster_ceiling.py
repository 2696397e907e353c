"""How fast can the embedded cluster go? Pod creates and bindings per second from one client.

Starts `berth cluster` in a child process (so client and server do not share a GIL), attaches a
pod watcher that counts every event, then creates N pods and binds each to a node with C requests
in flight, over aiohttp with keep-alive. The simulated kubelet stays on, so each binding also
causes a Running status write and a second watch event, as in a real benchmark.

    python bench/cluster_ceiling.py --pods 5000 --concurrency 32 --nodes 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp


@asynccontextmanager
async def cluster_process(*, nodes: int, kubelet: bool) -> AsyncIterator[str]:
    """Run `berth cluster` in a child process; yields its URL."""
    kubeconfig = tempfile.mktemp(suffix=".kubeconfig")
    args = [
        sys.executable,
        "-c",
        "from berth.cli import main; main()",
        "cluster",
        "--port",
        "0",
        "--nodes",
        str(nodes),
        "--kubeconfig-out",
        kubeconfig,
        "--kubelet" if kubelet else "--no-kubelet",
    ]
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        match = re.search(r"(https?://\S+)", line)
        if not match:
            raise RuntimeError(f"unexpected output from berth cluster: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        await proc.wait()


async def _run(total: int, concurrency: int, step: Callable[[int], Awaitable[None]]) -> float:
    queue = iter(range(total))

    async def worker() -> None:
        for i in queue:
            await step(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def measure(*, url: str, pods: int, concurrency: int, nodes: int) -> dict[str, Any]:
    """Create `pods` pods, then bind them; returns rates and the watch event count."""
    ns = "bench"
    events = 0
    connector = aiohttp.TCPConnector(limit=concurrency + 2)
    async with aiohttp.ClientSession(url, connector=connector) as http:
        await http.post("/api/v1/namespaces", json={"metadata": {"name": ns}})
        listed = await (await http.get(f"/api/v1/namespaces/{ns}/pods")).json()
        rv = listed["metadata"]["resourceVersion"]

        async def watch() -> None:
            nonlocal events
            params = {"watch": "true", "resourceVersion": rv}
            async with http.get(f"/api/v1/namespaces/{ns}/pods", params=params) as resp:
                async for _line in resp.content:
                    events += 1

        watcher = asyncio.create_task(watch())

        async def create(i: int) -> None:
            body = {
                "metadata": {"name": f"p-{i}"},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "x", "resources": {"requests": {"cpu": "10m"}}}
                    ]
                },
            }
            async with http.post(f"/api/v1/namespaces/{ns}/pods", json=body) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create failed: {resp.status} {await resp.text()}")
                await resp.read()

        async def bind(i: int) -> None:
            node = f"node-{i % nodes + 1:0{max(3, len(str(nodes)))}d}"
            body = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": f"p-{i}"},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            async with http.post(f"/api/v1/namespaces/{ns}/pods/p-{i}/binding", json=body) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"bind failed: {resp.status} {await resp.text()}")
                await resp.read()

        create_s = await _run(pods, concurrency, create)
        bind_s = await _run(pods, concurrency, bind)
        deadline = time.monotonic() + 30
        while events < 3 * pods and time.monotonic() < deadline:  # ADDED, bound, Running
            await asyncio.sleep(0.05)
        watcher.cancel()
        running = await (
            await http.get(
                f"/api/v1/namespaces/{ns}/pods", params={"fieldSelector": "status.phase=Running"}
            )
        ).json()
    return {
        "pods": pods,
        "concurrency": concurrency,
        "nodes": nodes,
        "creates_per_s": round(pods / create_s),
        "bindings_per_s": round(pods / bind_s),
        "watch_events": events,
        "running_pods": len(running["items"]),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--no-kubelet", action="store_true")
    args = parser.parse_args()
    async with cluster_process(nodes=args.nodes, kubelet=not args.no_kubelet) as url:
        result = await measure(
            url=url, pods=args.pods, concurrency=args.concurrency, nodes=args.nodes
        )
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
