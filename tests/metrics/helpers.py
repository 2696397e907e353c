"""Shared pieces of the metrics tests: local HTTP servers on 127.0.0.1, node dicts with
annotations, and placing pods the way a front does (schedule, assume, reserve)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiohttp import web

from berth.engine import Engine
from berth.metrics.base import NodeDirectory, NodeRecord
from berth.objects import parse_pod
from tests.builders import node as make_node
from tests.builders import pod as make_pod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(app: web.Application) -> Any:
    """Serve `app` on 127.0.0.1 (a free port) in the running loop; yields its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def json_app(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], *, path: str, method: str
) -> web.Application:
    app = web.Application()
    app.router.add_route(method, path, handler)
    return app


class LoopThread:
    """An event loop on its own thread, for servers that must outlive one test's loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@contextmanager
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    try:
        yield lt
    finally:
        lt.close()


def node(
    name: str,
    *,
    annotations: dict[str, str] | None = None,
    address: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    raw = make_node(name, **kw)
    if annotations:
        raw["metadata"]["annotations"] = dict(annotations)
    if address:
        raw["status"]["addresses"] = [
            {"type": "InternalIP", "address": address},
            {"type": "Hostname", "address": name},
        ]
    return raw


def directory(*names: str, addresses: dict[str, str] | None = None) -> NodeDirectory:
    return NodeDirectory(
        NodeRecord(name=n, addresses=((addresses or {})[n],) if n in (addresses or {}) else ())
        for n in names
    )


def place(engine: Engine, *, count: int = 1, scheduler: str = "berth", **pod_kw: Any) -> list[str]:
    """Schedule `count` pods one after the other as a front does; returns the chosen nodes."""
    sched = engine.scheduler_for(scheduler)
    assert sched is not None
    chosen = []
    for _ in range(count):
        pod = parse_pod(make_pod(cpu=pod_kw.get("cpu", "100m"), memory="64Mi"))
        result = sched.schedule(pod)
        engine.state.assume_pod(pod, result.node)
        status = sched.framework.run_reserve(result.cycle, pod, result.node)
        assert status.ok, status
        chosen.append(result.node)
    return chosen
