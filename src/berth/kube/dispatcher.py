"""`berth run`'s asynchronous API dispatcher: bindings, events and PodScheduled conditions handed
to a worker process (`berth.kube.dispatch_worker`), as upstream 1.34 hands its API calls to
pkg/scheduler/backend/api_dispatcher, so a decision costs a pipe write per call instead of an
HTTPS request, and the requests' CPU runs on another core.

The worker keeps the Binder's rules (retries with backoff on 429/5xx/timeouts, a 409 resolved by
reading the pod, never a second node) and the EventRecorder's series. If the worker dies, every
bind it had not answered fails as a bind does (the binding cycle forgets the pod and requeues
it with backoff; a bind that had landed is seen on the watch, and a repeat is refused by the API
server with 409), events written meanwhile wait in a bounded backlog, and a new worker is
started with backoff.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import sys
import time
from typing import Any

from berth.framework.status import Code, Status
from berth.kube import wire
from berth.kube.client import ConnectSpec
from berth.kube.events import truncate_note

log = logging.getLogger("berth.dispatcher")

LINE_LIMIT = 1 << 20
START_TIMEOUT = 60.0  # a cold interpreter importing the client on a loaded machine
BACKLOG_LIMIT = 10_000  # event lines kept while no worker runs; more are dropped, counted
MAX_BUFFER = 16 << 20  # bytes waiting in the pipe to the worker beyond which events are dropped


class DispatcherUnavailable(Exception):
    """The worker process could not be started."""


class ApiDispatcher:
    """The binder port and the event recorder of `berth run`, backed by the worker process."""

    def __init__(
        self,
        *,
        spec: ConnectSpec,
        hostname: str | None = None,
        drain_timeout: float = 5.0,
        restart_backoff: float = 0.5,
        max_restart_backoff: float = 10.0,
        max_buffer: int = MAX_BUFFER,
    ) -> None:
        self.spec = spec
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self.drain_timeout = drain_timeout
        self.restart_backoff = restart_backoff
        self.max_restart_backoff = max_restart_backoff
        self.max_buffer = max_buffer
        self.pid: int | None = None
        self.restarts = 0  # workers started after the first one died
        self.dropped = 0  # events not handed over: the pipe or the backlog was full
        self.sent = 0  # events written, as of the last flush or drain
        self.failed = 0
        self._earlier_retries = 0  # bind retries of workers that are gone
        self._worker_retries = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._out: wire.Batcher | None = None  # the running worker's input, batched
        self._pending: dict[int, asyncio.Future[Status]] = {}
        self._flushes: dict[int, asyncio.Future[None]] = {}
        self._backlog: collections.deque[bytes] = collections.deque()
        self._next_id = 0
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def retries(self) -> int:
        """Bind attempts after a first one failed, over every worker so far."""
        return self._earlier_retries + self._worker_retries

    @property
    def up(self) -> bool:
        return self._proc is not None

    @property
    def in_flight(self) -> int:
        """Binds handed to the worker and not answered yet."""
        return len(self._pending)

    # ----- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the worker and wait until it is connected; DispatcherUnavailable if it fails."""
        if self._supervisor is not None:
            return
        await self._spawn()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name="api-dispatcher"
        )

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every call handed over so far has finished (at most `timeout`)."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        call_id = self._call_id()
        done = asyncio.get_running_loop().create_future()
        self._flushes[call_id] = done
        self._send(wire.encode([wire.FLUSH, call_id]))
        try:
            await asyncio.wait_for(done, timeout=timeout)
        except (TimeoutError, ConnectionError):
            log.warning("API dispatcher flush timed out", extra={"timeout": timeout})
        finally:
            self._flushes.pop(call_id, None)

    async def close(self, timeout: float | None = None) -> None:
        """Hand the worker DRAIN: it finishes every call it holds, then exits; killed if it
        has not within `timeout` (default: twice the drain timeout)."""
        self._closing = True
        proc = self._proc
        if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            self._send(wire.encode([wire.DRAIN]))
            if self._out is not None:
                self._out.flush()
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), timeout=timeout or 2 * self.drain_timeout + 5)
            except TimeoutError:
                log.warning("API dispatcher did not drain in time: killed", extra={"pid": proc.pid})
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._supervisor is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        if self.dropped:
            log.warning("events dropped by the API dispatcher", extra={"count": self.dropped})

    async def _spawn(self) -> None:
        env = dict(os.environ)
        root = logging.getLogger()
        env["BERTH_DISPATCHER_LOG_LEVEL"] = logging.getLevelName(root.getEffectiveLevel())
        from berth.telemetry import JsonFormatter

        json_logs = any(isinstance(h.formatter, JsonFormatter) for h in root.handlers)
        env["BERTH_DISPATCHER_LOG_FORMAT"] = "json" if json_logs else "text"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "berth.kube.dispatch_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        spec = self.spec
        # the connection's arguments on the pipe, never on argv; credentials are read there
        proc.stdin.write(
            wire.encode(
                [
                    "spec",
                    {
                        "kubeconfig": spec.kubeconfig,
                        "context": spec.context,
                        "qps_burst": spec.qps_burst,
                        "request_timeout": spec.request_timeout,
                        "hostname": self.hostname,
                        "drain_timeout": self.drain_timeout,
                    },
                ]
            )
        )
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=START_TIMEOUT)
        except TimeoutError:
            line = b""
        if not line or wire.decode(line)[0] != wire.READY:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            code = await proc.wait()
            raise DispatcherUnavailable(f"the API dispatcher process did not start (exit {code})")
        self._proc = proc
        self._out = wire.Batcher(proc.stdin.write)
        self.pid = proc.pid
        self._worker_retries = 0
        while self._backlog:
            self._out.send(self._backlog.popleft())
        log.debug("API dispatcher started", extra={"pid": proc.pid})

    async def _supervise(self) -> None:
        while True:
            proc = self._proc
            assert proc is not None
            await self._read(proc)
            code = await proc.wait()
            self._proc = self._out = None
            self._earlier_retries += self._worker_retries
            self._worker_retries = 0
            lost = len(self._pending)
            self._fail_pending(f"the API dispatcher process exited (code {code})")
            if self._closing:
                return
            log.error(
                "API dispatcher process exited: its unanswered binds are requeued",
                extra={"code": code, "binds": lost},
            )
            delay = self.restart_backoff
            while True:
                await asyncio.sleep(delay)
                if self._closing:
                    return
                try:
                    await self._spawn()
                    break
                except (DispatcherUnavailable, OSError) as exc:
                    log.error("API dispatcher restart failed", extra={"error": str(exc)})
                    delay = min(2 * delay, self.max_restart_backoff)
            self.restarts += 1

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except (ValueError, ConnectionError):  # an overlong line: the worker is broken
                log.exception("API dispatcher answer unreadable")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                return
            if not line:
                return
            try:
                self._answer(wire.decode(line))
            except (ValueError, TypeError, KeyError):
                log.exception("API dispatcher answer malformed", extra={"line": line[:200]})

    def _answer(self, message: wire.Wire) -> None:
        op = message[0]
        if op == wire.BOUND:
            _, call_id, code, reasons, _seconds, retries = message
            self._worker_retries = int(retries)
            bound = self._pending.pop(call_id, None)
            if bound is not None and not bound.done():
                bound.set_result(Status(Code(code), tuple(str(r) for r in reasons)))
        elif op == wire.FLUSHED:
            _, call_id, self.sent, self.failed = message
            flushed = self._flushes.pop(call_id, None)
            if flushed is not None and not flushed.done():
                flushed.set_result(None)
        elif op == wire.DRAINED:
            _, self.sent, self.failed, retries = message
            self._worker_retries = int(retries)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for bound in pending.values():
            if not bound.done():
                bound.set_result(Status(Code.ERROR, (reason,)))
        flushes, self._flushes = self._flushes, {}
        for flushed in flushes.values():
            if not flushed.done():
                flushed.set_result(None)

    def _send(self, line: bytes) -> None:
        if self._out is not None:
            self._out.send(line)

    def _call_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # ----- the calls ----------------------------------------------------------------------------
    async def bind(self, pod: wire.PodIdentity, node_name: str) -> Status:
        """POST pods/NAME/binding in the worker; its Status (an error if the worker died)."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return Status(Code.ERROR, ("the API dispatcher process is restarting",))
        call_id = self._call_id()
        bound: asyncio.Future[Status] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = bound
        self._send(wire.encode([wire.BIND, call_id, wire.pod_wire(pod), node_name]))
        return await bound

    async def __call__(self, pod: wire.PodIdentity, node_name: str) -> Status:
        return await self.bind(pod, node_name)

    def event(
        self,
        pod: wire.PodIdentity,
        *,
        type_: str,
        reason: str,
        action: str,
        message: str,
        related: wire.PodIdentity | None = None,
        controller: str = "",
    ) -> None:
        """EventRecorder.event, recorded (series and all) in the worker; never blocks."""
        self._send_best_effort(
            [
                wire.EVENT,
                wire.pod_wire(pod),
                type_,
                reason,
                action,
                truncate_note(message),
                wire.pod_wire(related) if related is not None else None,
                controller,
                time.time_ns(),  # the event's time is when it happened, not when it was sent
            ]
        )

    def condition(self, pod: wire.PodIdentity, *, status: str, reason: str, message: str) -> None:
        """EventRecorder.condition (the PodScheduled condition), written by the worker."""
        self._send_best_effort([wire.CONDITION, wire.pod_wire(pod), status, reason, message])

    def _send_best_effort(self, message: list[Any]) -> None:
        line = wire.encode(message)
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            if len(self._backlog) >= BACKLOG_LIMIT or self._closing:
                self._drop()
            else:
                self._backlog.append(line)
            return
        waiting = proc.stdin.transport.get_write_buffer_size()
        if self._out is not None:
            waiting += self._out.size
        if waiting > self.max_buffer:
            self._drop()
            return
        self._send(line)

    def _drop(self) -> None:
        self.dropped += 1
        if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
            log.warning(
                "event dropped: the API dispatcher is behind", extra={"count": self.dropped}
            )
