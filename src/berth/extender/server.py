"""`berth extender`: the HTTP server kube-scheduler calls, and the process around it.

Routes: `POST {urlPrefix}/filter`, `/prioritize`, `/preempt`, `/bind` (upstream appends the
configured verb to urlPrefix), plus `/healthz`, `/livez`, `/readyz` and `/metrics` from
`berth.telemetry`. Every failure is an HTTP status kube-scheduler treats as an error (it accepts
only 200) with a JSON body whose `Error` field says why: 400 for a body that is not JSON or not
the verb's type, 413 above `max_body_bytes`, 404 for an unknown verb, 500 for a plugin that broke
its contract. A filter that cannot judge the pod answers 200 with `Error` set, which is what
upstream's client reads.

Bodies are decoded with orjson (a 1,000-node NodeList is megabytes) and the engine work is
synchronous on the event loop, so informer updates never interleave with a decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import Counter, Histogram

from berth.config.loader import Config
from berth.engine import Engine
from berth.extender.adapter import ExtenderAdapter, PodError, describe
from berth.extender.wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderPreemptionArgs,
    WireError,
    host_priority_list,
)
from berth.framework.runtime import FrameworkError
from berth.kube.binder import Binder, BindPolicy
from berth.kube.client import Connection
from berth.kube.informer import Informer
from berth.kube.listers import build_informers
from berth.telemetry import HealthServer, SchedulerMetrics, parse_address

log = logging.getLogger("berth.extender")

VERBS = ("filter", "prioritize", "preempt", "bind")
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class ExtenderOptions:
    bind_address: str = "127.0.0.1:8888"
    url_prefix: str = "/berth"
    node_cache_capable: bool = False
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


class ExtenderMetrics(SchedulerMetrics):
    """The scheduler's registry (binding latency and errors apply to the bind verb) plus
    per-verb request counters and latency."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = Counter(
            "berth_extender_requests",
            "Extender requests by verb and HTTP status code.",
            ["verb", "code"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "berth_extender_request_duration_seconds",
            "Extender request latency (body read, decode, decision, encode) by verb.",
            ["verb"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.nodes_parsed = Counter(
            "berth_extender_nodes_parsed",
            "Nodes of NodeList payloads parsed (new name or resourceVersion).",
            registry=self.registry,
        )
        self.nodes_reused = Counter(
            "berth_extender_nodes_reused",
            "Nodes of NodeList payloads whose resourceVersion was already parsed.",
            registry=self.registry,
        )


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(message: str, status: int) -> web.Response:
    return _json({"Error": message}, status)


class ExtenderServer:
    """The aiohttp application for one adapter."""

    def __init__(
        self,
        *,
        adapter: ExtenderAdapter,
        options: ExtenderOptions,
        metrics: ExtenderMetrics | None = None,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self.adapter = adapter
        self.options = options
        self.metrics = metrics or ExtenderMetrics()
        self.health = HealthServer(metrics=self.metrics, ready=ready, refresh=self._refresh)
        self.prefix = "/" + options.url_prefix.strip("/") if options.url_prefix.strip("/") else ""
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._seen = (0, 0)

    def _refresh(self) -> None:
        parsed, reused = self.adapter.stats.parsed, self.adapter.stats.reused
        self.metrics.nodes_parsed.inc(parsed - self._seen[0])
        self.metrics.nodes_reused.inc(reused - self._seen[1])
        self._seen = (parsed, reused)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.options.max_body_bytes)
        # /healthz, /livez, /readyz and /metrics exactly as `berth run` serves them.
        for route in self.health.app().router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path")
            if path and route.method == "GET":
                app.router.add_get(path, route.handler)
        app.router.add_post(f"{self.prefix}/{{verb}}", self._verb)
        return app

    async def _verb(self, request: web.Request) -> web.Response:
        verb = request.match_info["verb"]
        label = verb if verb in VERBS else "unknown"
        start = time.perf_counter()
        try:
            response = await self._answer(verb, request)
        except Exception as exc:  # never a traceback page: kube-scheduler wants JSON
            log.exception("extender request failed", extra={"verb": verb})
            response = _error(f"internal error: {exc}", 500)
        self.metrics.requests.labels(label, str(response.status)).inc()
        self.metrics.duration.labels(label).observe(time.perf_counter() - start)
        return response

    async def _answer(self, verb: str, request: web.Request) -> web.Response:
        handler = self._handlers().get(verb)
        if handler is None:
            return _error(f"unknown verb {verb!r}; this extender serves {', '.join(VERBS)}", 404)
        limit = self.options.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _error(f"request body of {request.content_length} bytes is over {limit}", 413)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(f"request body is over {limit} bytes", 413)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _error(f"malformed JSON: {exc}", 400)
        try:
            return await handler(body)
        except (WireError, PodError) as exc:
            return _error(str(exc), 400)
        except FrameworkError as exc:
            return _error(str(exc), 500)

    def _handlers(self) -> dict[str, Callable[[Any], Awaitable[web.Response]]]:
        return {
            "filter": self._filter,
            "prioritize": self._prioritize,
            "preempt": self._preempt,
            "bind": self._bind,
        }

    async def _filter(self, body: Any) -> web.Response:
        return _json(self.adapter.filter(ExtenderArgs.from_wire(body)).to_wire())

    async def _prioritize(self, body: Any) -> web.Response:
        return _json(host_priority_list(self.adapter.prioritize(ExtenderArgs.from_wire(body))))

    async def _preempt(self, body: Any) -> web.Response:
        return _json(self.adapter.preempt(ExtenderPreemptionArgs.from_wire(body)).to_wire())

    async def _bind(self, body: Any) -> web.Response:
        start = time.perf_counter()
        result = await self.adapter.bind(ExtenderBindingArgs.from_wire(body))
        self.metrics.binding_duration.observe(time.perf_counter() - start)
        if result.error:
            self.metrics.binding_errors.inc()
        return _json(result.to_wire())

    async def start(
        self, *, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host=host, port=port, ssl_context=ssl_context)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def watched_kinds(*, nodes: bool) -> list[str]:
    """What the extender watches: bound pods (kube-scheduler sends nodes, never the pods on
    them, and fit, ports, affinity and spreading count them), namespaces, the workloads default
    spreading selects by, and nodes when it answers NodeNames from its own cache."""
    kinds = ["Pod", "Namespace", "Service", "ReplicationController", "ReplicaSet", "StatefulSet"]
    return ["Node", *kinds] if nodes else kinds


def ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """HTTPS (TLS 1.2+) when a certificate is given (kube-scheduler's `enableHTTPS`)."""
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class ExtenderProcess:
    """Engine, adapter, informers and server for `berth extender`; `run()` returns the exit
    code. `connection` is None when no cluster is reachable (Nodes mode only)."""

    def __init__(
        self, *, config: Config, connection: Connection | None, options: ExtenderOptions
    ) -> None:

        if options.node_cache_capable and connection is None:
            raise ValueError("--node-cache-capable needs a cluster to watch nodes from")
        self.options = options
        self.connection = connection
        self.engine = Engine(config=config)
        self.refresher = self.engine.refresher
        # kube-scheduler runs the volume plugins itself before asking; the extender does not
        # watch storage, so its volume plugins stand aside.
        self.engine.ports.volumes.tracked = False
        # Likewise kube-scheduler's own DynamicResources allocates devices: Berth's skips.
        self.engine.ports.dra.tracked = False
        binder = None
        if connection is not None:
            # Short retries: the whole bind must answer within kube-scheduler's httpTimeout.
            binder = Binder(
                connection=connection,
                policy=BindPolicy(attempts=3, initial_backoff=0.1, max_backoff=1.0),
            )
        self.adapter = ExtenderAdapter(
            self.engine, binder=binder, nodes_from_informer=options.node_cache_capable
        )
        self.informers: list[Informer] = []
        if connection is not None:
            self.informers = build_informers(
                connection,
                watched_kinds(nodes=options.node_cache_capable),
                self.adapter.feed.handler,
            )
        self.server = ExtenderServer(adapter=self.adapter, options=options, ready=self.ready)
        self.stop_requested = asyncio.Event()

    def ready(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    async def run(self) -> int:
        host, port = parse_address(self.options.bind_address)
        tasks = [asyncio.create_task(i.run(), name=f"informer-{i.name}") for i in self.informers]
        try:
            if self.refresher is not None:
                await self.refresher.start()
            await self.server.start(
                host=host,
                port=port,
                ssl_context=ssl_context(self.options.tls_cert_file, self.options.tls_key_file),
            )
            log.info(
                "extender serving",
                extra={
                    "address": f"{host}:{self.server.port}",
                    "prefix": self.server.prefix or "/",
                    "node_cache_capable": self.options.node_cache_capable,
                    "informers": ",".join(i.name for i in self.informers) or "none",
                },
            )
            await self.stop_requested.wait()
            return 0
        finally:
            await self.server.stop()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if self.refresher is not None:
                await self.refresher.stop()
            log.info("extender stopped", extra=describe(self.adapter))


async def serve(*, config: Config, kubeconfig: str | None, options: ExtenderOptions) -> int:
    """`berth extender`'s body: connect (if a cluster is configured), serve until SIGTERM."""
    import signal

    import yaml
    from kubernetes.aio.config.config_exception import ConfigException

    from berth.kube.client import NoClusterConfigured, connect

    model = config.model
    connection: Connection | None = None
    try:
        connection = await connect(
            kubeconfig=kubeconfig or model.clientConnection.kubeconfig or None,
            qps_burst=model.clientConnection.burst,
            request_timeout=model.clientConnection.timeout,
        )
    except (FileNotFoundError, ConfigException, yaml.YAMLError) as exc:
        log.error("cannot connect", extra={"error": str(exc)})
        return 2
    except NoClusterConfigured:
        if options.node_cache_capable:
            log.error("--node-cache-capable needs a cluster (kubeconfig or in-cluster) to watch")
            return 2
        log.warning(
            "no cluster configured: answering from the sent NodeLists alone; bound pods are "
            "not counted (resource fit sees empty nodes) and the bind verb answers an Error"
        )
    process = ExtenderProcess(config=config, connection=connection, options=options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, process.stop_requested.set)
    try:
        return await process.run()
    finally:
        if connection is not None:
            await connection.close()
