"""Starting and stopping an embedded cluster: `AsyncEmbeddedCluster` on the caller's event loop,
`EmbeddedCluster` on its own thread and loop (for synchronous tests and tools), both context
managers that bind a loopback port, write a kubeconfig and clean up after themselves.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml
from aiohttp import web

from berth.cluster.core import ClusterConfig, ClusterCore
from berth.cluster.faults import Faults
from berth.cluster.rbac import Denial, load_documents
from berth.cluster.store import Store
from berth.cluster.tls import Certificates, generate

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


def _config(config: ClusterConfig | None, options: dict[str, Any]) -> ClusterConfig:
    base = config or ClusterConfig()
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
        self._runner: web.AppRunner | None = None
        self._tmp: Path | None = None
        self.port = 0
        self.certificates: Certificates | None = None
        self.kubeconfig_path = Path()

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

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
        self._tmp = Path(tempfile.mkdtemp(prefix="berth-cluster-"))
        self.core = ClusterCore(config=c)
        sock = socket.socket(socket.AF_INET6 if ":" in c.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((c.host, c.port))
        self.port = sock.getsockname()[1]
        self.core.settings.server_address = f"{c.host}:{self.port}"
        ssl_context = None
        if c.tls:
            tls_dir = (c.data_dir / "tls") if c.data_dir else self._tmp
            self.certificates = generate(directory=tls_dir, hosts=[c.host])
            ssl_context = self.certificates.server_context()
        self._runner = web.AppRunner(
            self.core.make_app(), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        self.core.start_background()
        path = c.kubeconfig_out or (self._tmp / "kubeconfig")
        path.parent.mkdir(parents=True, exist_ok=True)
        ca = self.certificates.ca_pem if self.certificates else None
        path.write_text(kubeconfig(server=self.url, ca_pem=ca, token=c.token))
        self.kubeconfig_path = path

    async def stop(self) -> None:
        if self.core is not None:
            await self.core.stop_background()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def drop_watches(self) -> int:
        """End every open watch now; returns how many were open."""
        return self.store.close_watches()

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        """Write a kubeconfig for this cluster that authenticates with `token`."""
        ca = self.certificates.ca_pem if self.certificates else None
        path.write_text(kubeconfig(server=self.url, ca_pem=ca, token=token))
        return path

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
