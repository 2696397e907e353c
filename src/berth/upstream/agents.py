"""The helper process beside the real control plane that runs the simulated node-side agents
(`kubelet.py`, `provisioner.py`) on one event loop, and says when they have synced."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from berth.kube.client import connect
from berth.upstream.kubelet import SimulatedKubelet
from berth.upstream.provisioner import SimulatedProvisioner


async def serve(
    *, kubeconfig: str, kubelet: bool, provisioners: tuple[str, ...], ready: Path | None
) -> None:
    """Run until SIGTERM; write `ready` once every agent's informers have listed."""
    connection = await connect(kubeconfig=kubeconfig)
    events: list[asyncio.Event] = []
    tasks: list[asyncio.Task[None]] = []
    if kubelet:
        events.append(asyncio.Event())
        tasks.append(
            asyncio.create_task(SimulatedKubelet(connection=connection).run(synced=events[-1]))
        )
    if provisioners:
        events.append(asyncio.Event())
        agent = SimulatedProvisioner(connection=connection, names=provisioners)
        tasks.append(asyncio.create_task(agent.run(synced=events[-1])))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for event in events:
            await event.wait()
        if ready is not None:
            ready.write_text("ready\n")
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await connection.close()
