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
import concurrent.futures
import contextlib
import hmac
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
from berth.listener import (
    BoundedListener,
    ListenerLimits,
    bind_socket,
    server_tls,
    start_listener,
)
from berth.safeload import DEFAULT_MAX_DEPTH, nesting_depth_exceeds
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
    # TLS client authentication: a CA whose client certificates may call bind.
    client_ca_file: str | None = None
    # A bearer token that may call bind (read from a file or the environment).
    bind_token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_requests_inflight: int = 100
    request_timeout: float = 30.0
    listener: ListenerLimits = field(default_factory=ListenerLimits)


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
    """The extender's HTTP front for one adapter.

    HTTP is served on its own thread and event loop: connections, bodies, limits, JSON
    decoding, authentication and the health and metrics endpoints live there, so `/healthz`
    answers while a long decision holds the engine's loop. Each verb's work is handed to the
    engine's loop (the one `start` is called on), so decisions and informer updates never
    interleave, as before."""

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
        self.port = 0
        self.inflight = 0
        self._seen = (0, 0)
        self._engine_loop: asyncio.AbstractEventLoop | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: BoundedListener | None = None

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
        limit = self.options.max_requests_inflight
        if self.inflight >= limit:
            response = _error(f"too many requests in flight (limit {limit}); retry", 429)
        else:
            self.inflight += 1
            try:
                response = await self._answer(verb, request)
            except Exception:  # never a traceback page: kube-scheduler wants JSON
                log.exception("extender request failed", extra={"verb": verb})
                response = _error("internal error (the extender's log has the details)", 500)
            finally:
                self.inflight -= 1
        self.metrics.requests.labels(label, str(response.status)).inc()
        self.metrics.duration.labels(label).observe(time.perf_counter() - start)
        return response

    async def _answer(self, verb: str, request: web.Request) -> web.Response:
        if verb not in VERBS:
            return _error(f"unknown verb {verb!r}; this extender serves {', '.join(VERBS)}", 404)
        if verb == "bind":
            refusal = self._bind_refusal(request)
            if refusal is not None:
                return _error(refusal, 403)
        limit = self.options.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _error(f"request body of {request.content_length} bytes is over {limit}", 413)
        try:
            async with asyncio.timeout(self.options.request_timeout):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(f"request body is over {limit} bytes", 413)
        except TimeoutError:
            return _error(f"request body not received within {self.options.request_timeout}s", 408)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _error(
                f"malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", 400
            )
        if nesting_depth_exceeds(body, self.options.max_depth, encoded=raw):
            return _error(f"the body nests deeper than {self.options.max_depth} levels", 400)
        loop = self._engine_loop
        if loop is None or loop is asyncio.get_running_loop():
            result = await self._decide(verb, body)
        else:
            result = await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._decide(verb, body), loop)
            )
        return _json(result[0], result[1])

    def _bind_refusal(self, request: web.Request) -> str | None:
        """Why this request may not bind (None: it may). Binding is behind TLS client
        authentication (a certificate the --client-ca-file CA signed) or the bind token."""
        o = self.options
        transport = request.transport
        if o.client_ca_file and transport is not None and transport.get_extra_info("peercert"):
            return None  # the TLS handshake verified it against the client CA
        if o.bind_token:
            offered = request.headers.get("Authorization", "")
            if hmac.compare_digest(offered.encode(), f"Bearer {o.bind_token}".encode()):
                return None
        if not (o.client_ca_file or o.bind_token):
            return (
                "the bind verb is disabled: start berth extender with --client-ca-file (and "
                "kube-scheduler's tlsConfig client certificate) or --bind-token-file"
            )
        return "not authorized to bind: a client certificate or the bind token is required"

    async def _decide(self, verb: str, body: Any) -> tuple[Any, int]:
        """The verb's answer and HTTP status, computed on the engine's loop."""
        try:
            if verb == "filter":
                return self.adapter.filter(ExtenderArgs.from_wire(body)).to_wire(), 200
            if verb == "prioritize":
                args = ExtenderArgs.from_wire(body)
                return host_priority_list(self.adapter.prioritize(args)), 200
            if verb == "preempt":
                preemption = ExtenderPreemptionArgs.from_wire(body)
                return self.adapter.preempt(preemption).to_wire(), 200
            return (await self._bind(body)), 200
        except (WireError, PodError) as exc:
            return {"Error": str(exc)}, 400
        except FrameworkError as exc:
            return {"Error": str(exc)}, 500

    async def _bind(self, body: Any) -> Any:
        start = time.perf_counter()
        result = await self.adapter.bind(ExtenderBindingArgs.from_wire(body))
        self.metrics.binding_duration.observe(time.perf_counter() - start)
        if result.error:
            self.metrics.binding_errors.inc()
        return result.to_wire()

    async def start(
        self, *, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """Serve on `host:port` from the HTTP thread; verbs run on the calling loop."""
        self._engine_loop = asyncio.get_running_loop()
        sock = bind_socket(host, port)
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._http_loop = loop

            async def serve() -> None:
                self._listener = await start_listener(
                    self.app(), sock=sock, ssl_context=ssl_context, limits=self.options.listener
                )

            try:
                loop.run_until_complete(serve())
            except BaseException as exc:
                ready.set_exception(exc)
                loop.close()
                return
            ready.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="berth-extender-http", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(ready)
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        loop, thread, listener = self._http_loop, self._thread, self._listener
        if loop is None or thread is None:
            return
        if listener is not None and not loop.is_closed():
            done = asyncio.run_coroutine_threadsafe(listener.stop(), loop)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(done), timeout=10)
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
        self._thread = self._http_loop = self._listener = None


def watched_kinds(*, nodes: bool) -> list[str]:
    """What the extender watches: bound pods (kube-scheduler sends nodes, never the pods on
    them, and fit, ports, affinity and spreading count them), namespaces, the workloads default
    spreading selects by, and nodes when it answers NodeNames from its own cache."""
    kinds = ["Pod", "Namespace", "Service", "ReplicationController", "ReplicaSet", "StatefulSet"]
    return ["Node", *kinds] if nodes else kinds


def ssl_context(
    cert: str | None, key: str | None, *, client_ca: str | None = None
) -> ssl.SSLContext | None:
    """HTTPS (TLS 1.2+) when a certificate is given (kube-scheduler's `enableHTTPS`); with
    `client_ca`, client certificates signed by it are verified when presented (kube-scheduler's
    `tlsConfig.certFile`), which is what authorises the bind verb."""
    if not cert:
        return None
    return server_tls(cert, key, client_ca=client_ca)


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
                ssl_context=ssl_context(
                    self.options.tls_cert_file,
                    self.options.tls_key_file,
                    client_ca=self.options.client_ca_file,
                ),
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

    from berth.clierrors import BadInput
    from berth.inputs import connect_or_fail
    from berth.kube.client import NoClusterConfigured

    model = config.model
    connection: Connection | None = None
    try:
        # An unusable kubeconfig is BadInput: one line and exit 2, as every command.
        connection = await connect_or_fail(
            kubeconfig or model.clientConnection.kubeconfig or None,
            qps_burst=model.clientConnection.burst,
            timeout=model.clientConnection.timeout,
            no_cluster=None,
        )
    except NoClusterConfigured:
        if options.node_cache_capable:
            raise BadInput(
                "--node-cache-capable needs a cluster (kubeconfig or in-cluster) to watch"
            ) from None
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
