"""A lean HTTP/1.1 client for the API dispatcher's per-pod writes (bindings, events, conditions):
persistent keep-alive connections, the requests of one event-loop iteration written together
(pipelined), answers parsed by llhttp (`httptools`, the parser uvicorn uses), one timeout sweep
per pool instead of a timer per request. aiohttp's per-request machinery was 42% of the worker's
samples; everything else (watches, lists, leader election) stays on aiohttp.

What may be sent again: a request never written, and one written behind an answer that said
`Connection: close` (RFC 9112 §9.6: the server processes nothing after it). A request written on
a connection that then failed, or that timed out, may have reached the server: it fails with
`ConnectionLost` or `TimeoutError`, and the caller's rules decide (the Binder resolves a 409 by
reading the pod; an event is retried only when it was not answered).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
from dataclasses import dataclass

import httptools

# An answer's headers and body together; the worker's answers are a few kB (a Binding's Status,
# an Event, a Pod read after a 409).
MAX_ANSWER_BYTES = 16 << 20
# A connection unused this long is closed rather than reused: aiohttp's keep-alive default,
# well inside both API servers' idle timeouts (90 s), so a reuse rarely races the server's close.
KEEPALIVE = 15.0
# Requests written on one connection before its answers arrive (and before another connection
# opens): those of one event-loop iteration go out in one write, their answers come back in few
# reads. Measured over 3,000 POSTs to the embedded cluster, 64 in flight, the client's CPU per
# request: aiohttp 0.155 ms, this path 0.063 ms unpipelined (one request per connection at a
# time), 0.047 ms with 8.
PIPELINE = 8
# Times a request written behind a `Connection: close` answer may be written again.
MAX_REPLAYS = 3


class ConnectionLost(Exception):
    """No complete answer was read: the connection failed or closed, or could not be opened.
    The request may have reached the server."""


Answer = tuple[int, bytes]  # status code, body


@dataclass(slots=True, eq=False)
class _Request:
    data: bytes  # the request line, headers and body
    future: asyncio.Future[Answer]
    deadline: float  # time.monotonic()
    replays: int = 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests are answered in the order they were written."""

    def __init__(self, pool: Http1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.written: collections.deque[_Request] = collections.deque()
        self.unwritten: list[_Request] = []
        self.closed = False
        self.idle_since = time.monotonic()
        self._flush_scheduled = False
        self._status = 0
        self._body: list[bytes] = []
        self._size = 0
        self._framed = False  # Content-Length or Transfer-Encoding: not delimited by the close
        self._in_answer = False
        self._error: str | None = None

    @property
    def in_flight(self) -> int:
        return len(self.written) + len(self.unwritten)

    # ----- writing ------------------------------------------------------------------------------
    def send(self, request: _Request) -> None:
        self.unwritten.append(request)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or self.transport is None or not self.unwritten:
            return
        batch = [r for r in self.unwritten if not r.future.done()]  # cancelled meanwhile
        self.unwritten.clear()
        if batch:
            self.written.extend(batch)
            self.transport.write(b"".join(r.data for r in batch))

    # ----- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._error = "the server switched protocols"
        except httptools.HttpParserError as exc:
            self._error = f"malformed answer: {exc}"
        if self._error is not None:
            self.fail(ConnectionLost(self._error))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        if self._in_answer and not self._framed and self._status:
            self._complete(keep_alive=False)  # an answer delimited by the close (RFC 9112 §6.3)
        reason = f"connection closed: {exc}" if exc else "the server closed the connection"
        self.fail(ConnectionLost(reason))

    # ----- httptools callbacks ------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_answer = True
        self._status = 0
        self._body = []
        self._size = 0
        self._framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._size += len(name) + len(value)
        if self._size > MAX_ANSWER_BYTES:
            self._error = f"answer over {MAX_ANSWER_BYTES} bytes"
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_ANSWER_BYTES:
            self._error = f"answer over {MAX_ANSWER_BYTES} bytes"
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._error is not None:
            return
        if 100 <= self._status < 200:  # interim (100 Continue): the answer follows
            self._in_answer = False
            return
        self._complete(keep_alive=self.parser.should_keep_alive())

    # ----- answers and failures -----------------------------------------------------------------
    def _complete(self, *, keep_alive: bool) -> None:
        self._in_answer = False
        if not self.written:
            self._error = "an answer to no request"
            return
        request = self.written.popleft()
        if not request.future.done():
            request.future.set_result((self._status, b"".join(self._body)))
        self._body = []
        if not keep_alive:
            self._closing()
            return
        if not self.in_flight:
            self.idle_since = time.monotonic()
        self.pool._freed(self)

    def _closing(self) -> None:
        """The server said `Connection: close`: it processes nothing written after that answer,
        so what was written behind it goes on another connection."""
        self.closed = True
        again, self.written = list(self.written), collections.deque()
        again += self.unwritten
        self.unwritten = []
        if self.transport is not None:
            self.transport.close()
        self.pool._dropped(self)
        for request in again:
            request.replays += 1
            if request.replays > MAX_REPLAYS:
                if not request.future.done():
                    request.future.set_exception(
                        ConnectionLost("the server closed the connection before answering")
                    )
            else:
                self.pool._submit(request)

    def fail(self, error: BaseException) -> None:
        """Close at once: what was written fails with `error`; what was not goes elsewhere."""
        if self.closed:
            return
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        written, self.written = self.written, collections.deque()
        unwritten, self.unwritten = self.unwritten, []
        self.pool._dropped(self)
        for request in written:
            if not request.future.done():
                request.future.set_exception(error)
        for request in unwritten:
            self.pool._submit(request)

    def oldest_deadline(self) -> float | None:
        if self.written:
            return self.written[0].deadline
        if self.unwritten:
            return self.unwritten[0].deadline
        return None


class Http1Pool:
    """Up to `max_connections` keep-alive connections to one server. A request goes on the
    first open connection with fewer than `pipeline` requests in flight; a new connection opens
    only when none has room; at the cap, requests wait their turn (within their timeout)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None = None,
        max_connections: int = 32,
        pipeline: int = PIPELINE,
        timeout: float = 30.0,
    ) -> None:
        if max_connections < 1 or pipeline < 1 or timeout <= 0:
            raise ValueError("max_connections and pipeline must be at least 1, timeout above 0")
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.max_connections = max_connections
        self.pipeline = pipeline
        self.timeout = timeout
        self.opened = 0  # connections opened so far (for tests and the log)
        self._open: list[_Connection] = []
        self._opening = 0
        self._waiting: collections.deque[_Request] = collections.deque()
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def connections(self) -> int:
        return len(self._open) + self._opening

    async def request(self, data: bytes) -> Answer:
        """Send one complete request (`data`: request line, headers, body); its status and
        body. Raises ConnectionLost or TimeoutError when no answer was read in time."""
        if self._closed:
            raise ConnectionLost("the client is closed")
        loop = asyncio.get_running_loop()
        request = _Request(data, loop.create_future(), time.monotonic() + self.timeout)
        self._submit(request)
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        return await request.future

    def _submit(self, request: _Request) -> None:
        if request.future.done():
            return
        if self._closed:
            request.future.set_exception(ConnectionLost("the client is closed"))
            return
        if request.deadline <= time.monotonic():
            request.future.set_exception(TimeoutError("the API request timed out"))
            return
        conn = self._pick()
        if conn is not None:
            conn.send(request)
            return
        self._waiting.append(request)
        self._grow()

    def _grow(self) -> None:
        """Open a connection for the waiting requests the opening ones will not carry."""
        if (
            self._waiting
            and self.connections < self.max_connections
            and len(self._waiting) > self._opening * self.pipeline
        ):
            self._opening += 1
            task = asyncio.get_running_loop().create_task(self._connect())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _pick(self) -> _Connection | None:
        """The first open connection with room: requests issued together share one write."""
        stale = time.monotonic() - KEEPALIVE
        for conn in list(self._open):
            if not conn.in_flight and conn.idle_since < stale:
                conn.fail(ConnectionLost("idle"))  # nothing in flight: nothing fails
                continue
            if conn.in_flight < self.pipeline:
                return conn
        return None

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.server_hostname if self.ssl_context else None,
                ),
                timeout=self.timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self._opening -= 1
            if not self._open and not self._opening:
                error = ConnectionLost(f"cannot connect to {self.host}:{self.port}: {exc!r}")
                waiting, self._waiting = self._waiting, collections.deque()
                for request in waiting:
                    if not request.future.done():
                        request.future.set_exception(error)
            return
        self._opening -= 1
        if self._closed:
            conn.fail(ConnectionLost("the client is closed"))
            return
        self.opened += 1
        self._open.append(conn)
        self._freed(conn)

    def _freed(self, conn: _Connection) -> None:
        """`conn` can take more: hand it waiting requests up to the pipeline depth."""
        waiting = self._waiting
        while waiting and not conn.closed and conn.in_flight < self.pipeline:
            request = waiting.popleft()
            if not request.future.done():
                conn.send(request)
        self._grow()

    def _dropped(self, conn: _Connection) -> None:
        with contextlib.suppress(ValueError):
            self._open.remove(conn)

    async def _sweep(self) -> None:
        """Fail what passed its deadline: a connection whose oldest request is overdue is
        closed (what was written behind it waits on it), a waiting request is dropped."""
        tick = min(0.25, self.timeout / 4)
        try:
            while self._open or self._waiting or self._opening:
                await asyncio.sleep(tick)
                now = time.monotonic()
                for conn in list(self._open):
                    deadline = conn.oldest_deadline()
                    if deadline is not None and deadline <= now:
                        conn.fail(TimeoutError("the API request timed out"))
                if self._waiting:
                    keep: collections.deque[_Request] = collections.deque()
                    for request in self._waiting:
                        if request.future.done():
                            continue
                        if request.deadline <= now:
                            request.future.set_exception(TimeoutError("the API request timed out"))
                        else:
                            keep.append(request)
                    self._waiting = keep
                if not self._waiting and not any(c.in_flight for c in self._open):
                    return
        finally:
            self._sweeper = None

    async def close(self) -> None:
        self._closed = True
        for conn in list(self._open):
            conn.fail(ConnectionLost("the client is closed"))
        waiting, self._waiting = self._waiting, collections.deque()
        for request in waiting:
            if not request.future.done():
                request.future.set_exception(ConnectionLost("the client is closed"))
        for task in [*self._tasks, *([self._sweeper] if self._sweeper else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
