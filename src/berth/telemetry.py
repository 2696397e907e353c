"""Prometheus metrics (upstream kube-scheduler names where they exist), health endpoints, logs.

Metric names follow pkg/scheduler/metrics so existing dashboards work:
`scheduler_schedule_attempts_total{result,profile}`,
`scheduler_scheduling_attempt_duration_seconds{result,profile}`,
`scheduler_scheduling_algorithm_duration_seconds`, `scheduler_pending_pods{queue}`,
`scheduler_queue_incoming_pods_total{queue,event}`; Berth's own are prefixed `berth_`.
"""

from __future__ import annotations

import bisect
import collections
import hmac
import ipaddress
import json
import logging
import re
import ssl
import sys
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from berth.listener import BoundedListener, bind_socket, start_listener

# Observations a deferred series keeps before adding them itself (bounds its memory when
# nothing scrapes /metrics).
DEFERRED_MAX = 4096


class DeferredSeries:
    """One histogram series whose observations are kept as numbers and added in bulk when the
    metrics are exposed: prometheus_client's observe takes a lock for the sum and one for the
    bucket and walks the buckets, ~1.5 µs a value, and each scheduled pod makes about a dozen
    (the extension points, the attempt, the SLI, the binding). The exposed values are the same;
    only the sum's float additions are grouped."""

    __slots__ = ("_bounds", "_child", "_values")

    def __init__(self, child: Any) -> None:
        self._child = child
        bounds: list[float] | None = getattr(child, "_upper_bounds", None)
        usable = bounds is not None and hasattr(child, "_buckets") and hasattr(child, "_sum")
        self._bounds = list(bounds) if bounds is not None and usable else None
        self._values: list[float] = []

    def observe(self, amount: float) -> None:
        values = self._values
        values.append(amount)
        if len(values) >= DEFERRED_MAX:
            self.flush()

    def flush(self) -> None:
        values = self._values
        if not values:
            return
        self._values = []
        child = self._child
        if self._bounds is None:  # another prometheus_client: its own observe, value by value
            for v in values:
                child.observe(v)
            return
        # observe's bucket is the first upper bound >= the value
        for i, n in collections.Counter(
            bisect.bisect_left(self._bounds, v) for v in values
        ).items():
            child._buckets[i].inc(n)
        child._sum.inc(sum(values))


class DeferredHistogram:
    """A Histogram whose series are `DeferredSeries`; `flush` adds what they hold."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self._series: dict[tuple[str, ...], DeferredSeries] = {}
        if not histogram._labelnames:
            self._series[()] = DeferredSeries(histogram)

    def labels(self, *values: str) -> DeferredSeries:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = DeferredSeries(self.histogram.labels(*values))
        return series

    def observe(self, amount: float) -> None:
        self._series[()].observe(amount)

    def flush(self) -> None:
        for series in self._series.values():
            series.flush()


_BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048)


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._histograms: list[DeferredHistogram] = []
        self.attempts = Counter(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result.",
            ["result", "profile"],
            registry=r,
        )
        self.attempt_duration = self._deferred(
            Histogram(
                "scheduler_scheduling_attempt_duration_seconds",
                "Scheduling attempt latency in seconds (scheduling algorithm + binding).",
                ["result", "profile"],
                buckets=_BUCKETS,
                registry=r,
            )
        )
        self.algorithm_duration = self._deferred(
            Histogram(
                "scheduler_scheduling_algorithm_duration_seconds",
                "Scheduling algorithm latency in seconds.",
                buckets=_BUCKETS,
                registry=r,
            )
        )
        self.pending = Gauge(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; "
            "'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in "
            "unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is "
            "the number of unschedulable pods that the scheduler never attempted to schedule "
            "because they are gated.",
            ["queue"],
            registry=r,
        )
        self.incoming = Counter(
            "scheduler_queue_incoming_pods",
            "Number of pods added to scheduling queues by event and queue type.",
            ["queue", "event"],
            registry=r,
        )
        # upstream's SLI: from the pod's first scheduling attempt to its successful binding,
        # through any number of attempts (label "15+" from 15 on), exponential buckets 10 ms x 2^k
        self.sli_duration = self._deferred(
            Histogram(
                "scheduler_pod_scheduling_sli_duration_seconds",
                "E2e latency for a pod being scheduled, from the time the pod enters the "
                "scheduling queue and might involve multiple scheduling attempts.",
                ["attempts"],
                buckets=tuple(0.01 * 2**i for i in range(20)),
                registry=r,
            )
        )
        self.scheduling_attempts = self._deferred(
            Histogram(
                "scheduler_pod_scheduling_attempts",
                "Number of attempts to successfully schedule a pod.",
                buckets=(1, 2, 4, 8, 16),
                registry=r,
            )
        )
        self.unschedulable_pods = Gauge(
            "scheduler_unschedulable_pods",
            "The number of unschedulable pods broken down by plugin name. A pod will increment "
            "the gauge for all plugins that caused it to not schedule and so this metric have "
            "meaning only when broken down by plugin.",
            ["plugin", "profile"],
            registry=r,
        )
        self.extension_point_duration = self._deferred(
            Histogram(
                "scheduler_framework_extension_point_duration_seconds",
                "Latency for running all plugins of a specific extension point.",
                ["extension_point", "status", "profile"],
                buckets=tuple(0.0001 * 2**i for i in range(12)),
                registry=r,
            )
        )
        self.preemption_attempts = Counter(
            "scheduler_preemption_attempts",
            "Total preemption attempts in the cluster till now",
            registry=r,
        )
        self.preemption_victims = self._deferred(
            Histogram(
                "scheduler_preemption_victims",
                "Number of selected preemption victims",
                buckets=(1, 2, 4, 8, 16, 32, 64),
                registry=r,
            )
        )
        self.binding_duration = self._deferred(
            Histogram(
                "berth_binding_duration_seconds",
                "Binding latency in seconds, retries included.",
                buckets=_BUCKETS,
                registry=r,
            )
        )
        self.binding_errors = Counter(
            "berth_binding_errors", "Bindings that failed after all retries.", registry=r
        )
        self.informer_relists = Gauge(
            "berth_informer_relists",
            "Relists after 410 Gone, per resource.",
            ["resource"],
            registry=r,
        )
        self.leader = Gauge(
            "berth_leader", "1 while this replica holds the leader lease.", registry=r
        )

    def _deferred(self, histogram: Histogram) -> DeferredHistogram:
        deferred = DeferredHistogram(histogram)
        self._histograms.append(deferred)
        return deferred

    def flush(self) -> None:
        """Add the deferred observations to their series (done before every exposition)."""
        for histogram in self._histograms:
            histogram.flush()

    def expose(self) -> bytes:
        self.flush()
        # The process-wide registry holds the metric sources' series (berth_metric_source_up,
        # ...) and the process collectors; this instance's own series come first.
        return generate_latest(self.registry) + generate_latest(REGISTRY)


class Exposes(Protocol):
    """What /metrics serves: a process's series in the Prometheus text format."""

    def expose(self) -> bytes: ...


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` on a configurable address, TLS optional."""

    def __init__(
        self,
        *,
        metrics: Exposes,
        ready: Callable[[], bool],
        healthy: Callable[[], bool] = lambda: True,
        refresh: Callable[[], None] = lambda: None,
        explain: Callable[[str, str, str | None], dict[str, Any] | None] | None = None,
        debug_token: str | None = None,
    ) -> None:
        self.metrics = metrics
        self.ready = ready
        self.healthy = healthy
        self.refresh = refresh
        # GET /debug/explain/{namespace}/{name}: `explain(namespace, name, profile)` (None: no
        # such pod), served only with a bearer token configured and sent
        self.explain = explain
        self.debug_token = debug_token
        self._listener: BoundedListener | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/livez", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        if self.explain is not None and self.debug_token:
            app.router.add_get("/debug/explain/{namespace}/{name}", self._explain)
        return app

    def _authorized(self, request: web.Request) -> bool:
        assert self.debug_token
        sent = request.headers.get("Authorization", "")
        scheme, _, token = sent.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.debug_token.encode()
        )

    async def _explain(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(
                text="unauthorized", status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        assert self.explain is not None
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        try:
            doc = self.explain(namespace, name, request.query.get("profile"))
        except ValueError as exc:
            return web.Response(text=str(exc), status=400)
        if doc is None:
            return web.Response(text=f"pod {namespace}/{name}: not found", status=404)
        return web.json_response(doc)

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = self.healthy()
        return web.Response(text="ok" if ok else "unhealthy", status=200 if ok else 500)

    async def _readyz(self, request: web.Request) -> web.Response:
        ok = self.ready()
        return web.Response(text="ok" if ok else "not ready", status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        self.refresh()
        return web.Response(
            body=self.metrics.expose(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def start(
        self, *, host: str, port: int, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """Serve on `host:port`. Beyond loopback without a certificate, HTTPS with a
        self-signed one generated in memory, as kube-scheduler does without --tls-cert-file:
        /metrics is never plain HTTP on a reachable address."""
        if ssl_context is None and not is_loopback(host):
            from berth.cluster.tls import self_signed_context

            ssl_context = self_signed_context(hosts=[host])
            logging.getLogger("berth").warning(
                "serving health and metrics over HTTPS with a self-signed certificate "
                "(give --tls-cert-file and --tls-private-key-file for your own)",
                extra={"address": f"{host}:{port}"},
            )
        sock = bind_socket(host, port)
        self._listener = await start_listener(self.app(), sock=sock, ssl_context=ssl_context)
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or `localhost`) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def check_host(host: str) -> str:
    """`host` if it is an IP address or a host name; a ValueError saying why not otherwise."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
        return bare
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", bare) or ":" in bare:
        raise ValueError(f"{host!r} is not a valid IP address")
    if not _HOSTNAME.match(bare):
        raise ValueError(f"{host!r} is not an IP address or host name")
    return bare


def parse_address(address: str) -> tuple[str, int]:
    """`host:port`, `[::1]:port` or `:port` (all interfaces is never the default)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{address!r}: expected host:port")
    if int(port) > 65535:
        raise ValueError(f"{address!r}: port {int(port)} is out of range (0-65535)")
    host = check_host(host) if host else "0.0.0.0"
    return host, int(port)


class JsonFormatter(logging.Formatter):
    _skip = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in self._skip:
                out[k] = v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


class TextFormatter(logging.Formatter):
    _skip = JsonFormatter._skip

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in self._skip)
        base = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname[0]} {record.name}: "
        text = base + record.getMessage() + (f" {extra}" if extra else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(*, fmt: str = "text", level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The client's own retry/debug chatter would drown ours.
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
