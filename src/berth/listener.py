"""Bounded HTTP listeners for every server Berth runs (the embedded API server, the extender, the
health and metrics endpoints): a cap on open connections, a header timeout and an idle timeout.

aiohttp bounds header sizes itself and closes an idle keep-alive connection after its
`keepalive_timeout` (which, from aiohttp 3.14, also runs before a connection's first request);
it has no cap on connections and no header timeout of its own, so a client that opens
connections and never finishes a request (slowloris) would keep them forever. Here each
connection is counted (one past the cap is closed at once) and must deliver its first request's
headers within the header timeout, as Go's `http.Server.ReadHeaderTimeout` does for
kube-apiserver; later requests on the connection are bounded by the idle timeout.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("berth.listener")


@dataclass(frozen=True)
class ListenerLimits:
    """Connection bounds; the defaults are kube-apiserver's (Go http.Server) timeouts."""

    max_connections: int = 1024
    header_timeout: float = 32.0
    idle_timeout: float = 90.0


@dataclass(eq=False)
class _Guard:
    limits: ListenerLimits
    open: int = 0
    refused: int = 0
    timed_out: int = 0
    waiting: dict[Any, asyncio.TimerHandle] = field(default_factory=dict)

    def served(self, transport: Any) -> None:
        timer = self.waiting.pop(transport, None)
        if timer is not None:
            timer.cancel()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted and held to the header timeout."""

    def __init__(self, inner: asyncio.Protocol, guard: _Guard) -> None:
        self._inner = inner
        self._guard = guard
        self._transport: asyncio.Transport | None = None
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        guard = self._guard
        if guard.open >= guard.limits.max_connections:
            guard.refused += 1
            transport.abort()
            return
        guard.open += 1
        self._counted = True
        self._transport = transport
        loop = asyncio.get_running_loop()
        guard.waiting[transport] = loop.call_later(guard.limits.header_timeout, self._too_slow)
        self._inner.connection_made(transport)

    def _too_slow(self) -> None:
        self._guard.waiting.pop(self._transport, None)
        self._guard.timed_out += 1
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._counted:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._counted else None

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._counted:
            return
        self._counted = False
        self._guard.open -= 1
        self._guard.served(self._transport)
        self._inner.connection_lost(exc)


class BoundedListener:
    """An aiohttp application served on a socket within `ListenerLimits`."""

    def __init__(self, runner: web.AppRunner, server: asyncio.Server, guard: _Guard) -> None:
        self.runner = runner
        self._server = server
        self._guard = guard

    @property
    def port(self) -> int:
        sockets = self._server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else 0

    @property
    def open_connections(self) -> int:
        return self._guard.open

    @property
    def refused_connections(self) -> int:
        return self._guard.refused

    @property
    def timed_out_connections(self) -> int:
        return self._guard.timed_out

    async def stop(self) -> None:
        self._server.close()
        await self.runner.cleanup()
        for timer in self._guard.waiting.values():
            timer.cancel()
        self._guard.waiting.clear()


class ListenError(OSError):
    """A server could not listen: the message names the address and the reason, in one line."""


_BIND_HINTS = {
    errno.EADDRINUSE: "another process listens there; choose another port",
    errno.EADDRNOTAVAIL: "not an address of this machine",
    errno.EACCES: "ports below 1024 need privileges",
}


class TLSFileError(ValueError):
    """A server's certificate, key or client CA that cannot be loaded: the message names the
    files and the reason, in one line."""


def server_tls(cert: str, key: str | None, *, client_ca: str | None = None) -> ssl.SSLContext:
    """HTTPS (TLS 1.2+) with `cert` and `key`; with `client_ca`, client certificates signed by
    it are verified when presented (health probes come without one). A file that is missing or
    not PEM is a TLSFileError naming it, before anything listens."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        files = f"{cert} / {key}" if key and key != cert else cert
        raise TLSFileError(
            f"{files}: cannot load the certificate and its private key: {_tls_reason(exc)} "
            "(both PEM, the key matching the certificate)"
        ) from None
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TLSFileError(
                f"{client_ca}: cannot load the client CA: {_tls_reason(exc)} (PEM certificates)"
            ) from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def _tls_reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        # OpenSSL's reason ("KEY_VALUES_MISMATCH"); none for a file that is not PEM at all
        reason = getattr(exc, "reason", None)
        return str(reason).replace("_", " ").lower() if reason else "not PEM"
    return str(exc.strerror or exc)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on `host:port` (IPv6 when `host` is an IPv6 address);
    raises ListenError when the address cannot be had."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:  # OverflowError: a port above 65535
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        code = exc.errno if isinstance(exc, OSError) else None
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        hint = _BIND_HINTS.get(code) if code is not None else None
        error = ListenError(
            f"cannot listen on {where}: {reason.lower()}" + (f" ({hint})" if hint else "")
        )
        error.errno = code
        raise error from exc
    return sock


async def start_listener(
    app: web.Application,
    *,
    sock: socket.socket,
    ssl_context: ssl.SSLContext | None = None,
    limits: ListenerLimits = ListenerLimits(),
    shutdown_timeout: float = 0.5,
) -> BoundedListener:
    """Serve `app` on `sock` within `limits` until `stop()`."""
    guard = _Guard(limits)

    @web.middleware
    async def headers_arrived(request: web.Request, handler: Handler) -> web.StreamResponse:
        guard.served(request.transport)
        return await handler(request)

    app.middlewares.insert(0, headers_arrived)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=limits.idle_timeout,
    )
    await runner.setup()
    factory = runner.server
    assert factory is not None
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Counted(factory(), guard),
        sock=sock,
        ssl=ssl_context,
        ssl_handshake_timeout=limits.header_timeout if ssl_context is not None else None,
    )
    return BoundedListener(runner, server, guard)
