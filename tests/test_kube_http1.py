"""The API dispatcher's lean HTTP/1.1 path (`berth.kube.http1`, `LeanPath`) against scripted
servers on 127.0.0.1: status codes, answer framings, pipelining, connections closed mid-answer,
`Connection: close` behind pipelined requests, timeouts, the connection cap and TLS; then the
Binder's rules over it against the embedded cluster (plain HTTP and TLS with a token)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from berth.cluster import EmbeddedCluster
from berth.cluster.tls import generate
from berth.framework.status import Code
from berth.kube import http1
from berth.kube.binder import Binder, BindPolicy
from berth.kube.client import connect
from berth.kube.http1 import ConnectionLost, Http1Pool
from berth.objects import parse_pod
from tests.live.conftest import create, node_of, pod, pods

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


async def read_request(reader: Reader) -> tuple[str, str, bytes]:
    """One request off the stream: method, target, body (Content-Length framed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return method, target, body


def answer(status: int, body: bytes = b"{}", *, close: bool = False) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass
class Server:
    """A scripted server: `handle(reader, writer, index)` runs per connection (index from 0)."""

    handle: Callable[[Reader, Writer, int], Awaitable[None]]
    ssl_context: ssl.SSLContext | None = None
    connections: int = 0
    open_now: int = 0
    peak: int = 0
    requests: list[tuple[int, str, str]] = field(default_factory=list)  # (conn, method, target)

    async def _serve(self, reader: Reader, writer: Writer) -> None:
        index = self.connections
        self.connections += 1
        self.open_now += 1
        self.peak = max(self.peak, self.open_now)
        try:
            await self.handle(reader, writer, index)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@contextlib.asynccontextmanager
async def serving(
    handle: Callable[[Reader, Writer, int], Awaitable[None]],
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[Server, int]]:
    server = Server(handle, ssl_context)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=ssl_context)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, port
    finally:
        listener.close()
        await listener.wait_closed()


def request(target: str, body: bytes = b"") -> bytes:
    return (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def echo(status: int = 200) -> Callable[[Reader, Writer, int], Awaitable[None]]:
    """Answer every request with `status` and its own target as the body."""

    async def handle(reader: Reader, writer: Writer, index: int) -> None:
        while True:
            _, target, _ = await read_request(reader)
            writer.write(answer(status, target.encode()))
            await writer.drain()

    return handle


def run(coro: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout=30)

    return asyncio.run(bounded())


# ----- status codes and framings ---------------------------------------------------------------
@pytest.mark.parametrize("status", [200, 201, 404, 409, 422, 429, 500, 503])
def test_every_status_code_comes_back_with_its_body(status: int) -> None:
    async def main() -> None:
        async with serving(echo(status)) as (_, port):
            pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None)
            try:
                assert await pool.request(request("/a")) == (status, b"/a")
            finally:
                await pool.close()

    run(main())


FRAMINGS = [
    ("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", (200, b"hello"), True),
    (
        "chunked",
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
        (201, b"hello"),
        True,
    ),
    ("no body", b"HTTP/1.1 204 No Content\r\n\r\n", (204, b""), True),
    ("interim 100 first", b"HTTP/1.1 100 Continue\r\n\r\n" + answer(200, b"x"), (200, b"x"), True),
    # neither length nor chunked: the body ends where the connection does
    ("delimited by the close", b"HTTP/1.1 200 OK\r\n\r\nhello", (200, b"hello"), False),
]


@pytest.mark.parametrize(
    ("name", "raw", "want", "keeps_connection"), FRAMINGS, ids=[f[0] for f in FRAMINGS]
)
def test_answer_framings(
    name: str, raw: bytes, want: tuple[int, bytes], keeps_connection: bool
) -> None:
    async def handle(reader: Reader, writer: Writer, index: int) -> None:
        while True:
            await read_request(reader)
            writer.write(raw)
            await writer.drain()
            if not keeps_connection:
                return  # closed by Server._serve

    async def main() -> None:
        async with serving(handle) as (server, port):
            pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None)
            try:
                assert await pool.request(request("/a")) == want
                assert await pool.request(request("/b")) == want
                assert server.connections == (1 if keeps_connection else 2)
            finally:
                await pool.close()

    run(main())


# ----- pipelining ------------------------------------------------------------------------------
def test_requests_issued_together_share_one_write_and_get_their_own_answers() -> None:
    reads: list[int] = []

    async def handle(reader: Reader, writer: Writer, index: int) -> None:
        # read what arrived in one go, then answer everything in one write
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            reads.append(data.count(b"HTTP/1.1\r\n"))
            inner = asyncio.StreamReader()
            inner.feed_data(data)
            inner.feed_eof()
            out = b""
            for _ in range(reads[-1]):
                _, target, _ = await read_request(inner)
                out += answer(200, target.encode())
            writer.write(out)

    async def main() -> None:
        async with serving(handle) as (server, port):
            pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None, pipeline=8)
            try:
                await pool.request(request("/warm"))  # the connection is open
                got = await asyncio.gather(*(pool.request(request(f"/p{i}")) for i in range(8)))
                assert got == [(200, f"/p{i}".encode()) for i in range(8)]
                assert server.connections == 1 and reads[1:] == [8]
            finally:
                await pool.close()

    run(main())


def test_beyond_the_pipeline_depth_a_new_connection_opens() -> None:
    async def main() -> None:
        async with serving(echo()) as (server, port):
            pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None, pipeline=4)
            try:
                await pool.request(request("/warm"))
                got = await asyncio.gather(*(pool.request(request(f"/p{i}")) for i in range(10)))
                assert got == [(200, f"/p{i}".encode()) for i in range(10)]
                assert server.connections == 3  # 4 + 4 + 2
            finally:
                await pool.close()

    run(main())


def test_requests_behind_a_connection_close_answer_go_again_on_a_new_connection() -> None:
    """RFC 9112 §9.6: a server that answers `Connection: close` processes nothing after it, so
    the requests written behind it are sent again (and answered once each)."""

    async def handle(reader: Reader, writer: Writer, index: int) -> None:
        while True:
            _, target, _ = await read_request(reader)
            server.requests.append((index, "POST", target))
            if index == 0:
                writer.write(answer(200, target.encode(), close=True))
                await writer.drain()
                return
            writer.write(answer(200, target.encode()))
            await writer.drain()

    async def main() -> None:
        nonlocal server
        async with serving(handle) as (srv, port):
            server = srv
            pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None, pipeline=8)
            try:
                got = await asyncio.gather(*(pool.request(request(f"/p{i}")) for i in range(5)))
                assert got == [(200, f"/p{i}".encode()) for i in range(5)]
                served = [t for _, _, t in server.requests]
                assert sorted(served) == [f"/p{i}" for i in range(5)]  # each processed once
                assert server.requests[0] == (0, "POST", "/p0")
            finally:
                await pool.close()

    server: Server
    run(main())


# ----- failures --------------------------------------------------------------------------------
async def _partial_headers(reader: Reader, writer: Writer, index: int) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Len")
    await writer.drain()


async def _partial_body(reader: Reader, writer: Writer, index: int) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{"kind":')
    await writer.drain()


async def _closed_without_answer(reader: Reader, writer: Writer, index: int) -> None:
    await read_request(reader)


async def _malformed(reader: Reader, writer: Writer, index: int) -> None:
    await read_request(reader)
    writer.write(b"SPDY/9 what\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(5)


async def _oversized(reader: Reader, writer: Writer, index: int) -> None:
    await read_request(reader)
    writer.write(answer(200, b"x" * 5000))
    await writer.drain()
    await asyncio.sleep(5)


FAILURES = [
    ("closed mid-headers", _partial_headers),
    ("closed mid-body", _partial_body),
    ("closed without an answer", _closed_without_answer),
    ("malformed answer", _malformed),
    ("answer over the size bound", _oversized),
]


@pytest.mark.parametrize(("name", "handle"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_request_without_a_complete_answer_fails_as_connection_lost(
    name: str, handle: Callable[[Reader, Writer, int], Awaitable[None]], monkeypatch: Any
) -> None:
    monkeypatch.setattr(http1, "MAX_ANSWER_BYTES", 4096)

    async def main() -> None:
        async with serving(handle) as (_, port):
            pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None)
            try:
                with pytest.raises(ConnectionLost):
                    await pool.request(request("/a"))
            finally:
                await pool.close()

    run(main())


def test_a_written_request_fails_with_its_connection_and_the_next_one_reconnects() -> None:
    async def handle(reader: Reader, writer: Writer, index: int) -> None:
        while True:
            _, target, _ = await read_request(reader)
            if target == "/lost":
                return  # closed: the written request's fate is unknown to the client
            writer.write(answer(200, target.encode()))
            await writer.drain()

    async def main() -> None:
        async with serving(handle) as (server, port):
            pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None, pipeline=1)
            try:
                assert await pool.request(request("/a")) == (200, b"/a")
                with pytest.raises(ConnectionLost):
                    await pool.request(request("/lost"))
                assert await pool.request(request("/b")) == (200, b"/b")
                assert server.connections == 2
            finally:
                await pool.close()

    run(main())


def test_a_refused_connection_fails_as_connection_lost() -> None:
    async def main() -> None:
        async with serving(echo()) as (_, port):
            pass  # closed: nothing listens there now
        pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None)
        try:
            with pytest.raises(ConnectionLost, match="cannot connect"):
                await pool.request(request("/a"))
        finally:
            await pool.close()

    run(main())


@pytest.mark.parametrize("pipelined", [1, 3], ids=["alone", "three pipelined"])
def test_an_unanswered_request_times_out_within_its_bound(pipelined: int) -> None:
    async def silent(reader: Reader, writer: Writer, index: int) -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        async with serving(silent) as (_, port):
            pool = Http1Pool(host="127.0.0.1", port=port, ssl_context=None, timeout=0.4)
            try:
                start = time.monotonic()
                results = await asyncio.gather(
                    *(pool.request(request(f"/p{i}")) for i in range(pipelined)),
                    return_exceptions=True,
                )
                took = time.monotonic() - start
                assert all(isinstance(r, TimeoutError) for r in results), results
                assert 0.4 <= took < 0.4 + 2.0  # the deadline plus the sweep's tick, generously
                assert pool.connections == 0  # the stuck connection was closed
            finally:
                await pool.close()

    run(main())


def test_at_most_max_connections_are_open_and_the_rest_wait_their_turn() -> None:
    async def slow(reader: Reader, writer: Writer, index: int) -> None:
        while True:
            _, target, _ = await read_request(reader)
            await asyncio.sleep(0.1)
            writer.write(answer(200, target.encode()))
            await writer.drain()

    async def main() -> None:
        async with serving(slow) as (server, port):
            pool = Http1Pool(
                host="127.0.0.1", port=port, ssl_context=None, max_connections=3, pipeline=1
            )
            try:
                got = await asyncio.gather(*(pool.request(request(f"/p{i}")) for i in range(12)))
                assert got == [(200, f"/p{i}".encode()) for i in range(12)]
                assert server.peak == 3 and server.connections == 3
            finally:
                await pool.close()

    run(main())


# ----- TLS -------------------------------------------------------------------------------------
def test_tls_on_loopback_verifies_the_server_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    certs = generate(directory=tmp_path / "a", hosts=["127.0.0.1"])
    other = generate(directory=tmp_path / "b", hosts=["127.0.0.1"])

    async def main() -> None:
        async with serving(echo(), ssl_context=certs.server_context()) as (server, port):
            trusted = ssl.create_default_context(cafile=str(certs.ca_path))
            pool = Http1Pool(
                host="127.0.0.1", port=port, ssl_context=trusted, server_hostname="127.0.0.1"
            )
            try:
                assert await pool.request(request("/a")) == (200, b"/a")
                assert await pool.request(request("/b")) == (200, b"/b")
                assert server.connections == 1
            finally:
                await pool.close()
            stranger = ssl.create_default_context(cafile=str(other.ca_path))
            pool = Http1Pool(
                host="127.0.0.1", port=port, ssl_context=stranger, server_hostname="127.0.0.1"
            )
            try:
                with pytest.raises(ConnectionLost, match="CERTIFICATE_VERIFY_FAILED"):
                    await pool.request(request("/a"))
            finally:
                await pool.close()

    run(main())


# ----- the Binder's rules on the lean path, against the embedded cluster ------------------------
BIND_CASES = [
    # (name, pre-bound to, want code) — a 409 is "already bound" only on our own node
    ("unbound pod binds", None, Code.SUCCESS),
    ("409 bound to this node is our earlier bind", "node-000", Code.SUCCESS),
    ("409 bound to another node is refused", "node-001", Code.UNSCHEDULABLE_AND_UNRESOLVABLE),
]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https with a token"])
def test_binder_over_the_lean_path(tls: bool) -> None:
    options: dict[str, Any] = {"tls": True, "token": "s3cret-token"} if tls else {}
    with EmbeddedCluster(nodes=2, **options) as cluster:

        async def main() -> None:
            conn = await connect(kubeconfig=str(cluster.kubeconfig_path), lean=True)
            plain = await connect(kubeconfig=str(cluster.kubeconfig_path))
            assert conn.lean is not None
            try:
                binder = Binder(connection=conn, policy=BindPolicy(attempts=2))
                for i, (_, before, want) in enumerate(BIND_CASES):
                    await create(plain, pod(f"p{i}"))
                    raw = (await pods(plain))[f"p{i}"]
                    if before is not None:
                        assert (await Binder(connection=plain).bind(parse_pod(raw), before)).ok
                    status = await binder.bind(parse_pod(raw), "node-000")
                    assert status.code == want, (BIND_CASES[i][0], status)
                listed = await pods(plain)
                placed = [node_of(listed[f"p{i}"]) for i in range(3)]
                assert placed == ["node-000", "node-000", "node-001"]
                assert conn.lean.pool.opened == 1  # every call on one kept-alive connection
            finally:
                await conn.close()
                await plain.close()

        run(main())


def test_a_wrong_token_is_refused_on_the_lean_path(tmp_path: Path) -> None:
    with EmbeddedCluster(nodes=1, tls=True, token="right-token") as cluster:
        text = cluster.kubeconfig_path.read_text().replace("right-token", "wrong-token")
        wrong = tmp_path / "kubeconfig"
        wrong.write_text(text)

        async def main() -> None:
            conn = await connect(kubeconfig=str(wrong), lean=True)
            try:
                code, body = await conn.call("GET", "/api/v1/namespaces/default/pods/x")
                assert code == 401, body
            finally:
                await conn.close()

        run(main())


def test_the_token_is_read_from_the_clients_auth_settings_on_every_call() -> None:
    """A token the client library refreshes (exec plugins, service-account rotation) is the one
    the next call sends, as on the library's own path."""
    with EmbeddedCluster(nodes=1, tls=True, token="right-token") as cluster:

        async def main() -> None:
            conn = await connect(kubeconfig=str(cluster.kubeconfig_path), lean=True)
            keys = conn.api.configuration.api_key
            path = "/api/v1/namespaces/default/pods"
            try:
                assert (await conn.call("GET", path))[0] == 200
                keys["BearerToken"] = keys["BearerToken"].replace("right", "stale")
                assert (await conn.call("GET", path))[0] == 401
                keys["BearerToken"] = keys["BearerToken"].replace("stale", "right")
                assert (await conn.call("GET", path))[0] == 200
            finally:
                await conn.close()

        run(main())


def test_a_proxy_keeps_the_client_librarys_own_request_layer(tmp_path: Path) -> None:
    with EmbeddedCluster(nodes=1) as cluster:

        async def main() -> None:
            direct = await connect(kubeconfig=str(cluster.kubeconfig_path), lean=True)
            assert direct.lean is not None
            await direct.close()
            with pytest.MonkeyPatch.context() as env:
                env.setenv("HTTP_PROXY", "http://127.0.0.1:9")
                env.setenv("NO_PROXY", "")
                proxied = await connect(kubeconfig=str(cluster.kubeconfig_path), lean=True)
            try:
                assert proxied.lean is None and proxied.api.configuration.proxy
            finally:
                await proxied.close()

        run(main())


@pytest.mark.parametrize(
    "path", ["/api/v1/a b", "/api/v1/a\r\nX-Injected: 1", "/api/v1/\u00e9", "/api/v1/a\x7f"]
)
def test_a_target_that_is_not_a_quoted_path_is_refused_before_sending(path: str) -> None:
    with EmbeddedCluster(nodes=1) as cluster:

        async def main() -> None:
            conn = await connect(kubeconfig=str(cluster.kubeconfig_path), lean=True)
            try:
                with pytest.raises(ValueError, match="not a quoted URL path"):
                    await conn.call("GET", path)
                assert conn.lean is not None and conn.lean.pool.opened == 0
            finally:
                await conn.close()

        run(main())
