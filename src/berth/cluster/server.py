"""Starting and stopping an embedded cluster: `AsyncEmbeddedCluster` on the caller's event loop,
`EmbeddedCluster` on its own thread and loop (for synchronous tests and tools), both context
managers that bind a loopback port, write a kubeconfig and clean up after themselves.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml

from berth.cluster.core import ClusterConfig, ClusterCore
from berth.cluster.faults import Faults
from berth.cluster.limits import LIMIT_NAMES
from berth.cluster.rbac import Denial, load_documents
from berth.cluster.store import Store
from berth.cluster.tls import Certificates, generate
from berth.listener import BoundedListener, ListenerLimits, bind_socket, start_listener
from berth.secretfile import write_private

T = TypeVar("T")


def kubeconfig(*, server: str, ca_pem: bytes | None, token: str | None, name: str = "berth") -> str:
    """A kubeconfig (YAML) for `server`, accepted by kubectl and the Python clients."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, Any] = {"token": token} if token else {}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def url_host(host: str) -> str:
    """`host` as it goes in a URL: an IPv6 address in brackets (RFC 3986)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _config(config: ClusterConfig | None, options: dict[str, Any]) -> ClusterConfig:
    """`config` with `options` applied: ClusterConfig fields, or Limits fields by name."""
    base = config or ClusterConfig()
    limits = {k: options.pop(k) for k in list(options) if k in LIMIT_NAMES}
    if limits:
        base.limits = dataclasses.replace(base.limits, **limits)
    for key, value in options.items():
        if not hasattr(base, key):
            raise TypeError(f"unknown cluster option {key!r}")
        if key in ("kubeconfig_out", "data_dir") and value is not None:
            value = Path(value)
        if key == "rbac" and value is not None:
            value = load_documents(value)
        setattr(base, key, value)
    return base


class AsyncEmbeddedCluster:
    """An embedded cluster on the running event loop: `async with AsyncEmbeddedCluster(...)`.

    Options are the fields of `ClusterConfig` (nodes, zones, node_cpu, tls, token, data_dir, ...).
    """

    def __init__(self, *, config: ClusterConfig | None = None, **options: Any) -> None:
        self.config = _config(config, options)
        self.core: ClusterCore | None = None
        self._listener: BoundedListener | None = None
        self._tmp: Path | None = None
        self.port = 0
        self.certificates: Certificates | None = None
        self.kubeconfig_path = Path()

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{url_host(self.config.host)}:{self.port}"

    @property
    def store(self) -> Store:
        assert self.core is not None, "cluster not started"
        return self.core.store

    @property
    def faults(self) -> Faults:
        return self.config.faults

    @property
    def token(self) -> str | None:
        return self.config.token

    @property
    def ca_path(self) -> Path | None:
        return self.certificates.ca_path if self.certificates else None

    @property
    def denials(self) -> list[Denial]:
        """The requests RBAC refused so far (empty when authorization is off)."""
        assert self.core is not None, "cluster not started"
        authorizer = self.core.authorizer
        return list(authorizer.denials) if authorizer is not None else []

    def requests_by(self, user: str) -> int:
        """How many requests `user` made (counted only when authorization is on)."""
        assert self.core is not None, "cluster not started"
        authorizer = self.core.authorizer
        return authorizer.requests[user] if authorizer is not None else 0

    async def start(self) -> None:
        c = self.config
        self.core = ClusterCore(config=c)
        sock = bind_socket(c.host, c.port)
        self.port = sock.getsockname()[1]
        self.core.settings.server_address = f"{url_host(c.host)}:{self.port}"
        ssl_context = None
        if c.tls:
            tls_dir = (c.data_dir / "tls") if c.data_dir else self._scratch()
            self.certificates = generate(directory=tls_dir, hosts=[c.host])
            ssl_context = self.certificates.server_context()
        limits = c.limits
        self._listener = await start_listener(
            self.core.make_app(),
            sock=sock,
            ssl_context=ssl_context,
            limits=ListenerLimits(
                max_connections=limits.max_connections,
                header_timeout=limits.header_timeout,
                idle_timeout=limits.idle_timeout,
            ),
        )
        self.core.start_background()
        path = c.kubeconfig_out or (self._scratch() / "kubeconfig")
        ca = self.certificates.ca_pem if self.certificates else None
        write_private(path, kubeconfig(server=self.url, ca_pem=ca, token=c.token))
        self.kubeconfig_path = path

    def _scratch(self) -> Path:
        """A private directory removed at stop, made only when something needs it: a server
        killed before stop leaves nothing behind unless it wrote there."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="berth-cluster-"))
        return self._tmp

    async def stop(self) -> None:
        """End watches, stop serving (requests in progress finish), then stop the controllers
        and commit the data directory, so no acknowledged write is left uncommitted."""
        try:
            if self._listener is not None:
                if self.core is not None and self.core.store.close_watches():
                    await asyncio.sleep(0.05)  # let each stream end its chunked body cleanly
                await self._listener.stop()
                self._listener = None
        finally:
            if self.core is not None:
                await self.core.stop_background()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def drop_watches(self) -> int:
        """End every open watch now; returns how many were open."""
        return self.store.close_watches()

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        """Write a kubeconfig for this cluster that authenticates with `token`."""
        ca = self.certificates.ca_pem if self.certificates else None
        return write_private(path, kubeconfig(server=self.url, ca_pem=ca, token=token))

    async def __aenter__(self) -> AsyncEmbeddedCluster:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


class EmbeddedCluster:
    """An embedded cluster on its own thread and event loop: `with EmbeddedCluster(...) as c`.

    `c.url`, `c.kubeconfig_path`, `c.faults` work from any thread; use `c.call(fn)` to run
    `fn(core)` on the cluster's loop when touching its store directly.
    """

    def __init__(self, *, config: ClusterConfig | None = None, **options: Any) -> None:
        self._inner = AsyncEmbeddedCluster(config=config, **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def config(self) -> ClusterConfig:
        return self._inner.config

    @property
    def url(self) -> str:
        return self._inner.url

    @property
    def port(self) -> int:
        return self._inner.port

    @property
    def kubeconfig_path(self) -> Path:
        return self._inner.kubeconfig_path

    @property
    def faults(self) -> Faults:
        return self._inner.faults

    @property
    def token(self) -> str | None:
        return self._inner.token

    @property
    def ca_path(self) -> Path | None:
        return self._inner.ca_path

    def start(self) -> None:
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def main() -> None:
            self._stopping = asyncio.Event()
            try:
                await self._inner.start()
            except BaseException as exc:
                started.set_exception(exc)
                await self._inner.stop()
                return
            started.set_result(None)
            await self._stopping.wait()
            await self._inner.stop()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(main())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="berth-cluster", daemon=True)
        self._thread.start()
        started.result(timeout=60)

    def stop(self) -> None:
        if self._loop is None or self._thread is None or self._stopping is None:
            return
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=30)
        self._thread = None

    def call(self, fn: Callable[[ClusterCore], T]) -> T:
        """Run `fn(core)` on the cluster's event loop and return its result."""
        assert self._loop is not None, "cluster not started"
        core = self._inner.core
        assert core is not None

        async def run() -> T:
            return fn(core)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def drop_watches(self) -> int:
        """End every open watch now; returns how many were open."""
        return self.call(lambda core: core.store.close_watches())

    @property
    def denials(self) -> list[Denial]:
        """The requests RBAC refused so far (empty when authorization is off)."""
        return self.call(lambda core: list(core.authorizer.denials) if core.authorizer else [])

    def requests_by(self, user: str) -> int:
        """How many requests `user` made (counted only when authorization is on)."""
        return self.call(lambda core: core.authorizer.requests[user] if core.authorizer else 0)

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        """Write a kubeconfig for this cluster that authenticates with `token`."""
        return self._inner.kubeconfig_for(token, path)

    def add_nodes(self, *, count: int) -> list[dict[str, Any]]:
        """Create `count` more generated nodes."""
        return self.call(lambda core: core.add_nodes(count=count))

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
