"""`berth rebalance` as a process: informers keep an engine's state current (as `berth run`'s),
the configuration's metric sources fill MetricScore's table, and every `interval` one sample is
taken and one pass planned (berth.rebalance.planner) and carried out through the Eviction API.

One-shot (the default) takes `consecutiveSamples` samples, an interval apart, then plans and acts
once; `loop` repeats for ever, behind leader election on its own Lease (two rebalancers never
act at once). With `dry_run` (the default) nothing is evicted: the plan is reported. Each
eviction gets an event on the pod (reason Rebalanced) and a count in
`berth_rebalance_evictions_total{result}`; a node evicted from starts its count of samples over,
so the next move waits until the metrics show the first one's effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from berth.config.loader import Config
from berth.engine import Engine
from berth.feed import Feed
from berth.kube.client import Connection
from berth.kube.events import EventRecorder
from berth.kube.eviction import Result, evict
from berth.kube.leader import LeaderElector
from berth.kube.listers import LISTERS, build_informers
from berth.rebalance.planner import Breaches, Move, Plan, plan, read, settings_of
from berth.run.listener import RawPods
from berth.telemetry import HealthServer, parse_address

log = logging.getLogger("berth.rebalance")
CONTROLLER = "berth-rebalance"
BLOCKED_SAMPLES = 10  # a pod whose eviction got 429 is not tried again for this many samples


class RebalanceMetrics:
    """The rebalancer's Prometheus series, on /metrics of its --bind-address."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.evictions = Counter(
            "berth_rebalance_evictions",
            "Pods the rebalancer evicted or planned to, by result (evicted, dry-run, blocked: a "
            "disruption budget refused it, gone, failed).",
            ["result", "namespace", "node"],
            registry=r,
        )
        self.skipped = Counter(
            "berth_rebalance_skipped",
            "Pods on hot nodes left where they are, by reason.",
            ["reason"],
            registry=r,
        )
        self.hot_nodes = Gauge(
            "berth_rebalance_hot_nodes",
            "Nodes over a high threshold for consecutiveSamples samples in the last pass.",
            registry=r,
        )
        self.over = Gauge(
            "berth_rebalance_node_samples_over",
            "Consecutive samples each node has been over a high threshold.",
            ["node"],
            registry=r,
        )
        self.passes = Histogram(
            "berth_rebalance_pass_duration_seconds",
            "Time to sample, plan and carry out one pass.",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.leader = Gauge("berth_rebalance_leader", "1 while this replica leads.", registry=r)

    def expose(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class RebalanceOptions:
    dry_run: bool = True
    loop: bool = False
    leader_elect: bool = True
    bind_address: str | None = None
    tls_cert_file: str | None = None  # HTTPS for the endpoints (else self-signed off loopback)
    tls_key_file: str | None = None
    identity: str = "berth-rebalance"
    # every pass's plan and outcome, for the caller (the command prints them)
    report: Callable[[Pass], None] = field(default=lambda p: None, repr=False)


@dataclass
class Outcome:
    move: Move
    result: str  # evicted, dry-run, blocked, gone, failed
    message: str = ""


@dataclass
class Pass:
    sample: int
    plan: Plan
    outcomes: list[Outcome]
    counts: dict[str, int]  # consecutive samples over, per node, when the pass was planned


class Rebalancer:
    """One rebalancer process's parts; `run()` returns the exit code."""

    def __init__(
        self, *, config: Config, connection: Connection, options: RebalanceOptions
    ) -> None:
        self.connection = connection
        self.options = options
        self.engine = Engine(config=config, seed=0)
        if self.engine.refresher is None:
            raise ValueError("rebalance needs metricSources: the live metrics it acts on")
        self.settings = settings_of(self.engine)
        self.pods: dict[str, Any] = {}
        self.feed = Feed(
            state=self.engine.state, ports=self.engine.ports, responsible=self.engine.schedules
        )

        def handler(kind: str) -> Any:
            if kind == "Pod":
                return RawPods(self.pods, self.feed.handler(kind))
            return self.feed.handler(kind)

        self.informers = build_informers(connection, LISTERS, handler)
        self.recorder = EventRecorder(connection=connection)
        self.metrics = RebalanceMetrics()
        self.breaches = Breaches()
        # pod key -> the sample its eviction was refused at (429): left alone for a while
        self.blocked: dict[str, int] = {}
        self.samples = 0
        self.passes: list[Pass] = []
        self.stop_requested = asyncio.Event()
        self.health = HealthServer(metrics=self.metrics, ready=self.ready)
        self.elector: LeaderElector | None = None
        le = self.settings.config.leaderElection
        if options.loop and options.leader_elect:
            self.elector = LeaderElector.configured(connection, le, options.identity)

    def ready(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    async def run(self) -> int:
        if self.options.bind_address:
            host, port = parse_address(self.options.bind_address)
            ssl_context = None
            if self.options.tls_cert_file:
                from berth.listener import server_tls

                ssl_context = server_tls(self.options.tls_cert_file, self.options.tls_key_file)
            await self.health.start(host=host, port=port, ssl_context=ssl_context)
        tasks = [asyncio.create_task(i.run(), name=f"informer-{i.name}") for i in self.informers]
        refresher = self.engine.refresher
        assert refresher is not None
        try:
            for informer in self.informers:
                await informer.synced.wait()
            await self.recorder.start()
            if not self.options.loop:
                await self._one_shot()
                return 0
            if self.elector is None:
                await self._loop()
                return 0

            async def lost() -> None:
                self.stop_requested.set()

            async def lead() -> None:
                self.metrics.leader.set(1)
                try:
                    await self._loop()
                finally:
                    self.metrics.leader.set(0)

            work = asyncio.create_task(self.elector.run(on_started=lead, on_stopped=lost))
            stop = asyncio.create_task(self.stop_requested.wait())
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            stop.cancel()
            await self.elector.release()
            return 0
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await refresher.stop()
            await self.recorder.flush()
            await self.recorder.close()
            await self.health.stop()

    async def _one_shot(self) -> None:
        interval = self.settings.config.interval
        for k in range(self.settings.config.consecutiveSamples):
            if k:
                await self._sleep(interval)
                if self.stop_requested.is_set():
                    return
            await self.sample()
        await self.act()

    async def _loop(self) -> None:
        interval = self.settings.config.interval
        while not self.stop_requested.is_set():
            started = time.monotonic()
            await self.sample()
            await self.act()
            await self._sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), timeout=seconds)

    async def sample(self) -> None:
        """One refresh of every metric source, then each node's count of samples over."""
        assert self.engine.refresher is not None
        down = [n for n, up in (await self.engine.refresher.refresh_once()).items() if not up]
        for source in down:
            log.warning("metric source down: its nodes count as not over", extra={"source": source})
        self.samples += 1
        self.breaches.observe(read(self.engine, self.settings))
        for node, count in self.breaches.counts.items():
            self.metrics.over.labels(node).set(count)

    async def act(self) -> Pass:
        """Plan a pass on the current state and carry it out."""
        started = time.perf_counter()
        readings = read(self.engine, self.settings)
        counts = dict(self.breaches.counts)
        self.blocked = {
            k: at for k, at in self.blocked.items() if self.samples - at < BLOCKED_SAMPLES
        }
        planned = plan(self.engine, self.settings, readings, self.breaches, self.pods, self.blocked)
        self.metrics.hot_nodes.set(len(planned.hot))
        for skip in planned.skips:
            self.metrics.skipped.labels(skip.why).inc()
        outcomes = [await self._carry_out(move) for move in planned.moves]
        for node in {o.move.source for o in outcomes if o.result in ("evicted", "dry-run")}:
            self.breaches.reset(node)
        done = Pass(sample=self.samples, plan=planned, outcomes=outcomes, counts=counts)
        self.passes.append(done)
        self.metrics.passes.observe(time.perf_counter() - started)
        self.options.report(done)
        return done

    async def _carry_out(self, move: Move) -> Outcome:
        pod = move.pod
        labels = (pod.namespace, move.source)
        if self.options.dry_run:
            self.metrics.evictions.labels("dry-run", *labels).inc()
            log.info(
                "would evict",
                extra={
                    "pod": pod.key,
                    "node": move.source,
                    "to": move.destination,
                    "why": move.why,
                },
            )
            return Outcome(move, "dry-run")
        config = self.settings.config
        answer = await evict(
            self.connection,
            namespace=pod.namespace,
            name=pod.name,
            uid=pod.uid,
            attempts=config.evictionAttempts,
            backoff=config.evictionBackoff,
        )
        result = answer.result.value
        self.metrics.evictions.labels(result, *labels).inc()
        if answer.result is Result.BLOCKED:
            self.blocked[pod.key] = self.samples
        if answer.result is Result.EVICTED:
            log.info(
                "evicted",
                extra={
                    "pod": pod.key,
                    "node": move.source,
                    "to": move.destination,
                    "why": move.why,
                },
            )
            self.recorder.event(
                pod,
                type_="Normal",
                reason="Rebalanced",
                action="Evicting",
                message=f"pod evicted from node {move.source} ({move.why}) by berth rebalance; "
                f"the scheduler's best node for it is {move.destination}",
                controller=CONTROLLER,
            )
        else:
            log.warning(
                "eviction not done",
                extra={"pod": pod.key, "result": result, "error": answer.message},
            )
        return Outcome(move, result, answer.message)


__all__ = ["CONTROLLER", "Outcome", "Pass", "RebalanceMetrics", "RebalanceOptions", "Rebalancer"]
