"""The two processes the live benchmark starts: Berth's scheduler and the bare binding client.

    python -m berth.bench.child scheduler PLAN.json
    python -m berth.bench.child ceiling PLAN.json

Each runs in its own interpreter, so its CPU and its peak RSS are its own (the cluster lives in
the parent). Both speak the same line protocol: they print `{"event": "ready", ...}` once set up,
start the timed part when a `go` line arrives on stdin (printing `{"event": "started", "t": T}`
with T on the system-wide monotonic clock), stop on `stop`, and print `{"event": "done", ...}`
with their peak RSS and the CPU time they used between `go` and `stop` before exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

JSON = dict[str, Any]


def _say(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, the high-water mark of its own address space. (Not
    getrusage's ru_maxrss: Linux carries the parent's peak over fork and exec into it.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # not Linux


async def _read_line() -> str:
    line: str = await asyncio.to_thread(sys.stdin.readline)
    return line.strip()


async def _wait_for(command: str) -> None:
    while True:
        line = await _read_line()
        if line == command:
            return
        if line == "" or line == "abort":
            raise SystemExit(3)


# ----- the scheduler -----------------------------------------------------------------------------
async def run_scheduler(plan: JSON) -> None:
    from berth.bench.measure import peak_rss_mb, tree_cpu_seconds
    from berth.config import parse_config
    from berth.kube.client import connect
    from berth.run import Runner, RunOptions

    config = parse_config(plan["config"])
    client = config.model.clientConnection
    conn = await connect(
        kubeconfig=plan["kubeconfig"], qps_burst=client.burst, request_timeout=client.timeout
    )
    # /metrics on a free loopback port when the benchmark scrapes it (the upstream comparison)
    bind_address = "127.0.0.1:0" if plan.get("metrics") else None
    runner = Runner(
        config=config,
        connection=conn,
        options=RunOptions(
            leader_elect=False,
            bind_address=bind_address,
            seed=plan.get("seed", 1),
            api_dispatcher=plan.get("api_dispatcher", "process"),
        ),
    )
    go = asyncio.Event()
    scheduler = runner.scheduler
    original = scheduler.run

    async def gated() -> None:  # the Runner syncs its caches, then waits here for `go`
        await go.wait()
        await original()

    setattr(scheduler, "run", gated)  # noqa: B010 - the gate is the benchmark's, not the Runner's
    task = asyncio.create_task(runner.run())
    while not runner.ready():
        if task.done():
            raise RuntimeError(f"scheduler exited before syncing: {task.result()}")
        await asyncio.sleep(0.05)
    expected = int(plan["expect"])
    deadline = time.monotonic() + 120
    while runner.queue.counts()["active"] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    dispatcher = runner.dispatcher.pid if runner.dispatcher is not None else None
    _say(
        event="ready",
        queued=runner.queue.counts()["active"],
        nodes=runner.engine.state.num_nodes,
        pods=len(runner.scheduler.pods),
        rss_mb=_peak_rss_mb(),
        # the API dispatcher's peak so far: connected, no call made yet
        dispatcher_rss_mb=peak_rss_mb(dispatcher) if dispatcher is not None else 0.0,
        metrics_port=runner.health.port,
    )
    await _wait_for("go")
    started = time.monotonic()
    cpu_started = time.process_time()
    # with the API dispatcher's worker (and any it replaced: reaped children count too)
    tree_started = tree_cpu_seconds(os.getpid())
    go.set()
    _say(event="started", t=started)
    await _wait_for("stop")
    cpu_seconds = time.process_time() - cpu_started
    worker_cpu = max(0.0, tree_cpu_seconds(os.getpid()) - tree_started - cpu_seconds)
    worker = runner.dispatcher.pid if runner.dispatcher is not None else None
    worker_rss = peak_rss_mb(worker) if worker is not None else 0.0
    runner.stop_requested.set()
    code = await asyncio.wait_for(task, timeout=60)
    await conn.close()
    _say(
        event="done",
        exit_code=code,
        scheduled=scheduler.scheduled,
        bind_failures=scheduler.bind_failures,
        bind_retries=runner.binder.retries,
        dispatcher_restarts=runner.dispatcher.restarts if runner.dispatcher is not None else 0,
        cpu_seconds=round(cpu_seconds, 4),
        dispatcher_cpu_seconds=round(worker_cpu, 4),
        dispatcher_rss_mb=worker_rss,
        rss_mb=_peak_rss_mb(),
    )


# ----- the bare binding client ------------------------------------------------------------
async def run_ceiling(plan: JSON) -> None:
    """Bind pre-chosen nodes with `concurrency` requests in flight, over aiohttp keep-alive, while
    a watch on all pods (what a scheduler's informer holds) receives every change."""
    url: str = plan["url"]
    namespace: str = plan["namespace"]
    names: list[str] = plan["pods"]
    nodes: list[str] = plan["nodes"]
    concurrency = int(plan["concurrency"])
    tls = plan.get("tls")  # the real API server: its CA and a client certificate
    context: ssl.SSLContext | bool = True
    if tls:
        context = ssl.create_default_context(cafile=tls["ca"])
        context.load_cert_chain(tls["cert"], tls["key"])
    connector = aiohttp.TCPConnector(limit=concurrency + 2, ssl=context)
    async with aiohttp.ClientSession(url, connector=connector) as http:
        async with http.get("/api/v1/pods", params={"limit": "1"}) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        events = 0

        async def watch() -> None:
            nonlocal events
            params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true"}
            async with http.get("/api/v1/pods", params=params) as resp:
                async for _line in resp.content:
                    events += 1

        watcher = asyncio.create_task(watch())
        failures = 0

        async def bind(i: int) -> None:
            nonlocal failures
            name = names[i]
            body = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": nodes[i % len(nodes)]},
            }
            path = f"/api/v1/namespaces/{namespace}/pods/{name}/binding"
            async with http.post(path, json=body) as resp:
                await resp.read()
                if resp.status != 201:
                    failures += 1

        work = iter(range(len(names)))

        async def worker() -> None:
            for i in work:
                await bind(i)

        _say(event="ready", rss_mb=_peak_rss_mb())
        await _wait_for("go")
        started = time.monotonic()
        cpu_started = time.process_time()
        _say(event="started", t=started)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        finished = time.monotonic()
        cpu_seconds = time.process_time() - cpu_started
        await _wait_for("stop")
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    _say(
        event="done",
        bind_failures=failures,
        client_seconds=round(finished - started, 4),
        cpu_seconds=round(cpu_seconds, 4),
        watch_events=events,
        rss_mb=_peak_rss_mb(),
    )


def main(argv: list[str]) -> None:
    role, plan_path = argv
    plan = json.loads(Path(plan_path).read_text())
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if role == "scheduler":
        asyncio.run(run_scheduler(plan))
    elif role == "ceiling":
        asyncio.run(run_ceiling(plan))
    else:
        raise SystemExit(f"unknown role {role!r}: scheduler or ceiling")


if __name__ == "__main__":
    main(sys.argv[1:])
