"""The API dispatcher process of `berth run` (`python -m berth.kube.dispatch_worker`): bindings,
events and PodScheduled conditions, with the Binder's retry and conflict rules and the
EventRecorder's series, sent from a second interpreter so that their HTTPS cost (more than half
of a pod's CPU in one process) runs on another core than the decisions (Python's GIL keeps one
process on one core). Fed by `berth.kube.dispatcher` over stdin, one `wire` line per call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import os
import time
from typing import Any

from berth.kube import wire
from berth.kube.binder import Binder
from berth.kube.client import connect
from berth.kube.events import EventRecorder

log = logging.getLogger("berth.dispatcher")

# Event and condition writes started at once (each a task with its coroutine and request);
# the rest wait as their compact messages. (The worker's peak RSS at 10,000 pods on the real
# API server was 170 MB with a task per event, 152 MB with this: most of it is not the queue.)
EVENT_TASKS = 64
# Messages waiting before the worker stops reading its input: the bound of its queue (the pipe
# and the parent's buffer hold the rest, and the parent drops events beyond its own bound, as
# client-go's broadcaster drops beyond 1,000 queued). Bindings are read past none of them.
MAX_QUEUED_EVENTS = 100_000
LINE_LIMIT = 1 << 20
# Connections to the API server, whatever the burst: over HTTP/1.1 each answers its requests one
# at a time (pipelined ones in turn), and each TLS connection holds asyncio's 256 kB read buffer
# (an aiohttp client with 256 TLS connections open grew by 77 MB, measured; the benchmark's burst
# is 256). Requests beyond wait for room on one.
MAX_CONNECTIONS = 32


class Worker:
    def __init__(
        self, *, binder: Binder, recorder: EventRecorder, write: Any, drain_timeout: float
    ) -> None:
        self.binder = binder
        self.recorder = recorder
        self.write = write
        self.drain_timeout = drain_timeout
        self.binds: set[asyncio.Task[None]] = set()
        # events and conditions not started yet: bindings never wait behind them
        self.queued: collections.deque[wire.Wire] = collections.deque()
        self._idle = asyncio.Event()
        self._idle.set()
        recorder.on_finished = self._pump

    async def handle(self, message: wire.Wire) -> bool:
        """One call; False when it was DRAIN."""
        op = message[0]
        if op == wire.BIND:
            _, call_id, pod, node = message
            task = asyncio.get_running_loop().create_task(
                self._bind(call_id, wire.pod_from_wire(pod), str(node))
            )
            self.binds.add(task)
            task.add_done_callback(self.binds.discard)
        elif op in (wire.EVENT, wire.CONDITION):
            self.queued.append(message)
            self._pump()
        elif op == wire.FLUSH:
            asyncio.get_running_loop().create_task(self._flush(message[1]))
        elif op == wire.DRAIN:
            return False
        else:
            log.error("unknown dispatcher call", extra={"op": op})
        return True

    def _pump(self) -> None:
        """Start queued event and condition writes while fewer than EVENT_TASKS run."""
        recorder, queued = self.recorder, self.queued
        while queued and recorder.pending < EVENT_TASKS:
            self._record(queued.popleft())
        if queued or recorder.pending:
            self._idle.clear()
        else:
            self._idle.set()

    def _record(self, message: wire.Wire) -> None:
        if message[0] == wire.EVENT:
            _, pod, type_, reason, action, note, related, controller, at = message
            self.recorder.event(
                wire.pod_from_wire(pod),
                type_=type_,
                reason=reason,
                action=action,
                message=note,
                related=wire.pod_from_wire(related) if related is not None else None,
                controller=controller,
                at=int(at),
            )
        else:
            _, pod, status, reason, note = message
            self.recorder.condition(
                wire.pod_from_wire(pod), status=status, reason=reason, message=note
            )

    async def _bind(self, call_id: int, pod: wire.PodRef, node: str) -> None:
        start = time.perf_counter()
        try:
            status = await self.binder.bind(pod, node)
            code, reasons = int(status.code), list(status.reasons)
        except Exception as exc:  # a bug here must come back as a failed bind, never hang one
            log.exception("bind crashed", extra={"pod": pod.key})
            code, reasons = 1, [f"binding crashed: {exc!r}"]
        seconds = time.perf_counter() - start
        self.write([wire.BOUND, call_id, code, reasons, seconds, self.binder.retries])

    async def _flush(self, call_id: int) -> None:
        await self.settle()
        self.write([wire.FLUSHED, call_id, self.recorder.sent, self.recorder.failed])

    async def settle(self) -> None:
        """Every bind and event write started so far finished (or the drain timeout passed)."""
        if self.binds:
            await asyncio.wait(set(self.binds), timeout=self.drain_timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=self.drain_timeout)
        await self.recorder.flush(timeout=self.drain_timeout)


async def serve(reader: asyncio.StreamReader, writer: asyncio.WriteTransport) -> int:
    first = await reader.readline()
    if not first:
        return 2
    spec = wire.decode(first)[1]
    try:
        conn = await connect(
            kubeconfig=spec["kubeconfig"],
            context=spec["context"],
            qps_burst=int(spec["qps_burst"]),
            request_timeout=float(spec["request_timeout"]),
            max_connections=min(max(int(spec["qps_burst"]), 10), MAX_CONNECTIONS),
            lean=True,
        )
    except Exception as exc:  # one line, as every berth command: berth run reports the exit
        log.error("API dispatcher cannot connect", extra={"error": str(exc) or repr(exc)})
        return 2

    def raw_write(data: bytes) -> None:
        if not writer.is_closing():
            writer.write(data)

    batcher = wire.Batcher(raw_write)

    def write(message: wire.Wire) -> None:
        batcher.send(wire.encode(message))

    recorder = EventRecorder(connection=conn, hostname=spec["hostname"])
    worker = Worker(
        binder=Binder(connection=conn),
        recorder=recorder,
        write=write,
        drain_timeout=float(spec["drain_timeout"]),
    )
    try:
        await recorder.start()
        # What is loaded now lives as long as the process: out of the collector's full passes,
        # which otherwise ran every few hundred calls over the client's modules.
        gc.freeze()
        write([wire.READY])
        while True:
            line = await reader.readline()
            if not line:  # berth run is gone: finish what was handed over, then exit
                log.warning("berth run closed the dispatcher's input: draining")
                break
            if not await worker.handle(wire.decode(line)):
                break
            while len(worker.queued) > MAX_QUEUED_EVENTS:
                await asyncio.sleep(0.01)
        await worker.settle()
        write([wire.DRAINED, recorder.sent, recorder.failed, worker.binder.retries])
        batcher.flush()
        return 0
    finally:
        await recorder.close()
        await conn.close()


async def _main() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0)
    )
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", buffering=0))
    try:
        return await serve(reader, transport)
    finally:
        # the last answers (DRAINED above all) must leave before the loop closes
        deadline = time.monotonic() + 5
        while transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        with contextlib.suppress(Exception):
            transport.close()


def main() -> None:
    from berth.telemetry import setup_logging

    setup_logging(
        fmt=os.environ.get("BERTH_DISPATCHER_LOG_FORMAT", "text"),
        level=os.environ.get("BERTH_DISPATCHER_LOG_LEVEL", "info"),
    )
    raise SystemExit(asyncio.run(_main()))


if __name__ == "__main__":
    main()
