"""`berth run`: wire config, client, informers, queue, leader election and health endpoints.

Every profile's schedulerName is served by this one process. Stopping (SIGTERM, or `stop` set by
the caller) stops taking pods, finishes binds in flight, releases the lease and returns 0; losing
the lease stops scheduling at once and returns 1, as kube-scheduler exits when it loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiolimiter import AsyncLimiter

from berth.config.loader import Config
from berth.engine import Engine
from berth.framework.ports import Ports
from berth.framework.status import Status
from berth.kube.binder import Binder
from berth.kube.claims import ApiClaimWriter
from berth.kube.client import Connection
from berth.kube.dispatcher import ApiDispatcher, DispatcherUnavailable
from berth.kube.events import EventRecorder, EventSink
from berth.kube.evictor import Evictor
from berth.kube.leader import LeaderElector
from berth.kube.listers import LISTERS, build_informers
from berth.kube.volumes import ApiVolumeBinder
from berth.objects.pod import PodInfo
from berth.run.loop import LiveScheduler
from berth.run.queue import SchedulingQueue
from berth.state.cluster import ClusterState
from berth.state.volumes import VolumeIndex
from berth.telemetry import HealthServer, SchedulerMetrics, parse_address

log = logging.getLogger("berth.run")


@dataclass
class RunOptions:
    leader_elect: bool = True
    bind_address: str | None = "127.0.0.1:10269"
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}")
    seed: int | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # the bearer token of /debug/explain (None: the endpoint is not served)
    debug_token: str | None = field(default=None, repr=False)
    # "process": bindings, events and conditions go through the API dispatcher's worker
    # process (a connection built by `connect` is needed); "inline": this process sends them
    api_dispatcher: str = "process"


class ThrottledBinder:
    """The binder port of `berth run`: the Binder's POSTs, at most `in_flight` at once and at
    the client's QPS (clientConnection.qps/burst), each timed for the binding latency metric."""

    def __init__(
        self,
        binder: Callable[[PodInfo, str], Awaitable[Status]],
        *,
        limiter: AsyncLimiter | None,
        in_flight: int,
        observe: Callable[[float], None],
    ) -> None:
        self._binder = binder
        self._limiter = limiter
        self._slots = asyncio.Semaphore(in_flight)
        self._observe = observe

    async def __call__(self, pod: PodInfo, node_name: str) -> Status:
        async with self._slots:
            if self._limiter is not None:
                await self._limiter.acquire()
            start = time.perf_counter()
            status = await self._binder(pod, node_name)
            self._observe(time.perf_counter() - start)
            return status


class Runner:
    """One scheduler process's parts; `run()` returns the exit code."""

    def __init__(self, *, config: Config, connection: Connection, options: RunOptions) -> None:
        self.config = config
        self.connection = connection
        self.options = options
        model = config.model
        self.metrics = SchedulerMetrics()
        qps, burst = model.clientConnection.qps, model.clientConnection.burst
        state = ClusterState()
        volumes = VolumeIndex()
        self.claim_writer = ApiClaimWriter(connection=connection)
        # Bindings, events and conditions: in the API dispatcher's worker process, or here.
        self.dispatcher: ApiDispatcher | None = None
        self.recorder: EventRecorder | None = None
        self.binder: Binder | ApiDispatcher
        events: EventSink
        if options.api_dispatcher not in ("process", "inline"):
            raise ValueError(f"api_dispatcher must be process or inline: {options.api_dispatcher}")
        if options.api_dispatcher == "process" and connection.spec is not None:
            self.dispatcher = ApiDispatcher(spec=connection.spec)
            self.binder = events = self.dispatcher
        else:
            self.binder = Binder(connection=connection)
            self.recorder = events = EventRecorder(connection=connection)
        self.events = events
        ports = Ports(
            volumes=volumes,
            binder=ThrottledBinder(
                self.binder,
                limiter=AsyncLimiter(burst, burst / qps),
                in_flight=burst,
                observe=self.metrics.binding_duration.observe,
            ),
            volume_binder=ApiVolumeBinder(
                connection=connection,
                volumes=volumes,
                state=state,
                pod_exists=lambda key: key in self.scheduler.pods,
            ),
            claim_writer=self.claim_writer,
            events=events.event,
        )
        self.engine = Engine(config=config, state=state, ports=ports, seed=options.seed)
        self.refresher = self.engine.refresher
        self.queue = SchedulingQueue(
            initial_backoff=model.podInitialBackoffSeconds,
            max_backoff=model.podMaxBackoffSeconds,
        )
        self.scheduler = LiveScheduler(
            engine=self.engine,
            queue=self.queue,
            recorder=events,
            metrics=self.metrics,
            evictor=Evictor(connection=connection, recorder=events),
        )
        self.informers = build_informers(connection, LISTERS, self.scheduler.handler)
        le = model.leaderElection
        self.elector: LeaderElector | None = None
        if options.leader_elect:
            self.elector = LeaderElector.configured(connection, le, options.identity)
        self.health = HealthServer(
            metrics=self.metrics,
            ready=self.ready,
            refresh=self._refresh_metrics,
            explain=self.explain,
            debug_token=options.debug_token,
        )
        self.stop_requested = asyncio.Event()
        self.lost_lease = False

    def _ssl_context(self) -> ssl.SSLContext | None:
        """HTTPS for /healthz, /readyz and /metrics when a certificate is given."""
        if not self.options.tls_cert_file:
            return None
        from berth.listener import server_tls

        return server_tls(self.options.tls_cert_file, self.options.tls_key_file)

    def explain(self, namespace: str, name: str, profile: str | None) -> dict[str, Any] | None:
        """The explanation of a pod on this scheduler's own state, between two decisions (the
        loop and this handler share one event loop); None when the pod is unknown. ValueError
        for a pod or profile it cannot explain."""
        from berth.explain import ExplainError, explain
        from berth.objects import ObjectError, parse_pod

        key = f"{namespace}/{name}"
        raw = self.scheduler.pods.get(key)
        if raw is None:
            return None
        try:
            pod = self.engine.state.pods.get(key) or parse_pod(raw)
            return explain(self.engine, pod, profile=profile).to_json()
        except (ObjectError, ExplainError) as exc:
            raise ValueError(str(exc)) from None

    def ready(self) -> bool:
        """Caches synced and, with the API dispatcher, its worker connected."""
        if self.dispatcher is not None and not self.dispatcher.up:
            return False
        return all(i.synced.is_set() for i in self.informers)

    def _refresh_metrics(self) -> None:
        self.scheduler.refresh_gauges()
        for i in self.informers:
            self.metrics.informer_relists.labels(i.name).set(i.relists)
        self.metrics.leader.set(1 if self.elector is None or self.elector.is_leader else 0)

    async def run(self) -> int:
        tasks: list[asyncio.Task[None]] = []
        dispatcher_up: asyncio.Task[None] | None = None
        if self.options.bind_address:
            host, port = parse_address(self.options.bind_address)
            await self.health.start(host=host, port=port, ssl_context=self._ssl_context())
            log.info("serving health and metrics", extra={"address": f"{host}:{self.health.port}"})
        try:
            # The worker process starts while the informers list (it imports for a second).
            dispatcher_up = (
                asyncio.create_task(self.dispatcher.start()) if self.dispatcher else None
            )
            tasks = [
                asyncio.create_task(i.run(), name=f"informer-{i.name}") for i in self.informers
            ]
            tasks.append(asyncio.create_task(self.queue.run_flushers(), name="queue-flush"))
            synced = asyncio.create_task(self._synced())
            stop_wait = asyncio.create_task(self.stop_requested.wait())
            done, _ = await asyncio.wait({synced, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if synced not in done:
                synced.cancel()
            if stop_wait in done:
                return 0
            log.info(
                "caches synced",
                extra={"nodes": self.engine.state.num_nodes, "pods": len(self.scheduler.pods)},
            )
            # The plugins' tables over the synced state, before the first decision needs them.
            self.engine.prepare()
            # The cache just built lives as long as the process: keep it out of the collector's
            # full passes, which otherwise land inside decisions as 100-200 ms pauses.
            gc.freeze()
            if dispatcher_up is not None:
                try:
                    await dispatcher_up
                except DispatcherUnavailable as exc:
                    log.error(
                        "cannot schedule without the API dispatcher", extra={"error": str(exc)}
                    )
                    return 1
            if self.recorder is not None:
                await self.recorder.start()
            if self.refresher is not None:
                await self.refresher.start()
            work = asyncio.create_task(self._work(), name="scheduling")
            await asyncio.wait({work, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if work.done() and not work.cancelled() and work.exception() is not None:
                log.error("scheduler stopped by an error", exc_info=work.exception())
                await self.scheduler.stop(timeout=5)
                return 1
            if not work.done():
                await self.scheduler.stop()
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
            await self.claim_writer.drain()
            if self.elector is not None and not self.lost_lease:
                await self.elector.release()
            return 1 if self.lost_lease else 0
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if self.refresher is not None:
                await self.refresher.stop()
            if self.recorder is not None:
                await self.recorder.close()
            if self.dispatcher is not None:
                if dispatcher_up is not None and not dispatcher_up.done():
                    with contextlib.suppress(Exception):
                        await dispatcher_up  # a worker half started must not be left behind
                await self.dispatcher.close()
            await self.health.stop()

    async def _synced(self) -> bool:
        for informer in self.informers:
            await informer.synced.wait()
        return True

    async def _work(self) -> None:
        if self.elector is None:
            await self.scheduler.run()
            return

        async def lost() -> None:
            self.lost_lease = True
            self.queue.close()

        await self.elector.run(on_started=self.scheduler.run, on_stopped=lost)


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}"
