"""`berth webhook`: the HTTPS server kube-apiserver calls for every new pod it sends (POST
/mutate, an AdmissionReview), with /healthz, /readyz and /metrics beside it.

Admission never waits on the network: the verdict comes from the background health check
(health.py), so an answer costs a few JSON operations. The server is the project's bounded
listener (connection cap, header and idle timeouts); bodies are bounded in size and depth. The
serving certificate is re-read when its files change (a rotated Secret), without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from berth.config.loader import Config
from berth.kube.client import Connection
from berth.listener import BoundedListener, ListenerLimits, bind_socket, start_listener
from berth.safeload import nesting_depth_exceeds
from berth.telemetry import parse_address
from berth.webhook import review
from berth.webhook.health import REASONS, LeaderHealth
from berth.webhook.routing import DEFAULT_SCHEDULER, route

log = logging.getLogger("berth.webhook")
# An AdmissionReview carries the object (at most kube-apiserver's 3 MiB request) and, on
# updates, the old one too.
MAX_REVIEW_BYTES = 7 * 1024 * 1024
MAX_DEPTH = 100
CERT_RELOAD_SECONDS = 10.0


@dataclass
class WebhookOptions:
    bind_address: str = "127.0.0.1:9443"
    path: str = "/mutate"
    tls_cert_file: str = ""
    tls_key_file: str = ""
    listener: ListenerLimits = field(default_factory=ListenerLimits)


class WebhookMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.routed = Counter(
            "berth_webhook_routed",
            "Selected pods routed at admission, by the scheduler they were given and why "
            "(dry runs not counted).",
            ["to", "reason"],
            registry=r,
        )
        self.requests = Counter(
            "berth_webhook_requests",
            "AdmissionReviews answered: routed (a selected pod), unchanged (not Berth's "
            "business) or malformed (not an AdmissionReview: answered 400).",
            ["result"],
            registry=r,
        )
        self.duration = Histogram(
            "berth_webhook_admission_duration_seconds",
            "Time to answer an AdmissionReview, from its body read to the answer.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.healthy = Gauge(
            "berth_webhook_berth_healthy",
            "1 while the Berth leader counts as healthy (fresh Lease, /readyz answering).",
            registry=r,
        )
        self.lease_age = Gauge(
            "berth_webhook_lease_age_seconds",
            "Seconds since the Berth leader last renewed its Lease, as last read.",
            registry=r,
        )


class _ReloadingCertificate:
    """A server context whose certificate is loaded again when its files change."""

    def __init__(self, cert: str, key: str) -> None:
        self.cert, self.key = cert, key
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp = self._mtimes()
        self.context.load_cert_chain(cert, key)

    def _mtimes(self) -> tuple[float, float]:
        return os.stat(self.cert).st_mtime, os.stat(self.key).st_mtime

    def reload_if_changed(self) -> bool:
        try:
            stamp = self._mtimes()
            if stamp == self._stamp:
                return False
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            # Mid-rotation (the key written before the certificate): keep serving the old one.
            log.warning("serving certificate not reloaded", extra={"error": str(exc)})
            return False
        self._stamp = stamp
        log.info("serving certificate reloaded", extra={"cert": self.cert})
        return True


class WebhookServer:
    """The admission endpoint and its health, metrics and routing decisions."""

    def __init__(
        self,
        *,
        config: Config,
        connection: Connection | None,
        options: WebhookOptions,
        health: LeaderHealth | None = None,
    ) -> None:
        model = config.model
        self.settings = model.webhook
        self.profiles = frozenset(p.schedulerName for p in model.profiles)
        self.options = options
        le = model.leaderElection
        self.health = health or LeaderHealth(
            connection=connection,
            namespace=le.resourceNamespace,
            name=le.resourceName,
            settings=self.settings,
        )
        self.metrics = WebhookMetrics()
        for reason in REASONS:  # every series exists from the start, at zero
            self.metrics.routed.labels(self.settings.schedulerName or "berth", reason)
            self.metrics.routed.labels(DEFAULT_SCHEDULER, reason)
        self._listener: BoundedListener | None = None
        self._certificate: _ReloadingCertificate | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0
        self.stop_requested = asyncio.Event()

    # -- HTTP ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REVIEW_BYTES)
        app.router.add_post(self.options.path, self._mutate)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        # Ready once one check has completed, whatever it found: answering "Berth is down"
        # is this server doing its job.
        if self.health.checks:
            return web.Response(text="ok")
        return web.Response(text="not ready: no health check completed yet", status=503)

    async def _metrics(self, request: web.Request) -> web.Response:
        self._refresh_gauges()
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    def _refresh_gauges(self) -> None:
        verdict = self.health.verdict()
        self.metrics.healthy.set(1 if verdict.healthy else 0)
        if verdict.lease_age is not None and verdict.lease_age != float("inf"):
            self.metrics.lease_age.set(verdict.lease_age)

    async def _mutate(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            raw = await request.read()
            body = orjson.loads(raw)
            if nesting_depth_exceeds(body, MAX_DEPTH, encoded=raw):
                raise review.ReviewError(f"nested deeper than {MAX_DEPTH} levels")
            req = review.parse_request(body)
        except (orjson.JSONDecodeError, review.ReviewError) as exc:
            self.metrics.requests.labels("malformed").inc()
            log.warning("malformed AdmissionReview", extra={"error": str(exc)})
            return web.Response(text=f"not an AdmissionReview: {exc}", status=400)
        answer = self.review(req)
        self.metrics.duration.observe(time.perf_counter() - started)
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    def review(self, req: review.Request) -> dict[str, Any]:
        """The answer to one AdmissionReview request."""
        decided = None
        if req.is_pod_create and isinstance(req.object, dict):
            decided = route(
                req.object,
                namespace=req.namespace,
                settings=self.settings,
                profiles=self.profiles,
                verdict=self.health.verdict(),
            )
        if decided is None:
            self.metrics.requests.labels("unchanged").inc()
            return review.response(req.uid)
        self.metrics.requests.labels("routed").inc()
        if not req.dry_run:
            self.metrics.routed.labels(decided.to, decided.reason).inc()
        meta = req.object.get("metadata") or {}
        name = req.name or f"{meta.get('generateName', '')}*"
        log.info(
            "routed pod",
            extra={
                "pod": f"{req.namespace}/{name}",
                "to": decided.to,
                "reason": decided.reason,
                "detail": decided.detail,
                "dry_run": req.dry_run,
            },
        )
        return review.response(req.uid, patch=decided.patch)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        host, port = parse_address(self.options.bind_address)
        self._certificate = _ReloadingCertificate(
            self.options.tls_cert_file, self.options.tls_key_file
        )
        sock = bind_socket(host, port)
        self._listener = await start_listener(
            self.app(),
            sock=sock,
            ssl_context=self._certificate.context,
            limits=self.options.listener,
        )
        self.port = sock.getsockname()[1]
        if self.health.connection is not None:
            self._tasks.append(asyncio.create_task(self.health.run(), name="berth-health"))
        self._tasks.append(asyncio.create_task(self._reload_certificates(), name="cert-reload"))
        log.info(
            "admission webhook serving",
            extra={
                "address": f"https://{host}:{self.port}{self.options.path}",
                "lease": self.health.lease,
                "profile": self.settings.schedulerName,
            },
        )

    async def _reload_certificates(self) -> None:
        while True:
            await asyncio.sleep(CERT_RELOAD_SECONDS)
            if self._certificate is not None:
                self._certificate.reload_if_changed()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        await self.health.close()

    async def run(self) -> int:
        await self.start()
        try:
            await self.stop_requested.wait()
            return 0
        finally:
            await self.stop()


def certificate_files(*, cert_dir: Path, hosts: list[str]) -> tuple[str, str, Path]:
    """(cert, key, CA) generated in `cert_dir` for `hosts` (kept and reused while valid), as
    kube-scheduler's --cert-dir: the CA is what the MutatingWebhookConfiguration's caBundle
    holds."""
    from berth.cluster.tls import generate

    made = generate(directory=cert_dir, hosts=hosts)
    return str(made.cert_path), str(made.key_path), made.ca_path


async def serve(*, config: Config, kubeconfig: str | None, options: WebhookOptions) -> int:
    """`berth webhook`'s body: connect, serve until SIGTERM (exit 0)."""
    import signal

    from berth.inputs import connect_or_fail

    model = config.model
    connection = await connect_or_fail(
        kubeconfig or model.clientConnection.kubeconfig or None,
        timeout=model.clientConnection.timeout,
        qps_burst=10,
        no_cluster="no cluster configured (no --kubeconfig, $KUBECONFIG or ~/.kube/config, "
        "and not in a pod): the webhook reads Berth's Lease from the API server",
    )
    server = WebhookServer(config=config, connection=connection, options=options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop_requested.set)
    try:
        return await server.run()  # a taken address: ListenError, one line from the CLI
    finally:
        await connection.close()
