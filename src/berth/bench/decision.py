"""Decision latency: the engine alone, in-process, on a state loaded with a workload.

Nodes and running pods go into an Engine exactly as the live scheduler's informers would put
them; then each pod to schedule is decided (`Scheduler.schedule`, the timed part), assumed on its
node and reserved (untimed), so the state fills up as the run goes. No API server is involved.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from berth.config.loader import Config
from berth.engine import Engine
from berth.framework.algorithm import FitError
from berth.objects import parse_node, parse_pod

JSON = dict[str, Any]
Progress = Callable[[int, int], None]


@dataclass
class DecisionResult:
    samples_ms: list[float]
    unschedulable: int
    build_s: float
    # DRA workloads: device checks made on the final allocations, and what broke them
    device_checks: int = 0
    device_violations: list[str] | None = None

    def percentiles(self) -> dict[str, float]:
        return percentiles(self.samples_ms)


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p90, p99 (nearest rank) and max, rounded to 0.01 ms; zeros for no samples."""
    if not samples:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        k = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))
        return round(ordered[k], 2)

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": round(ordered[-1], 2)}


def attach_metric_table(engine: Engine, config: Config) -> None:
    """Fill a metric table from the configured sources once, as the refresher would, and give
    it to MetricScore (only when the profile reads metrics and no table is there yet)."""
    from berth.metrics.refresher import Refresher, keys_from_config
    from berth.plugins.metricscore import SERVICE

    if not keys_from_config(config) or SERVICE in engine.handle.services:
        return
    refresher = Refresher.from_config(config, state=engine.state)

    async def once() -> None:
        try:
            up = await refresher.refresh_once()
        finally:
            await refresher.stop()
        down = [name for name, ok in up.items() if not ok]
        if down:
            raise RuntimeError(f"metric sources down: {', '.join(down)}")

    asyncio.run(once())
    engine.handle.services[SERVICE] = refresher.table


def load_engine(
    *,
    config: Config,
    nodes: list[JSON],
    running: list[JSON],
    namespaces: list[str],
    objects: list[JSON] = (),  # type: ignore[assignment]
) -> Engine:
    engine = Engine(config=config, seed=1)
    for raw in objects:
        engine.dra.upsert(raw)  # DeviceClasses, ResourceSlices, ResourceClaims
    state = engine.state
    for ns in namespaces:
        state.set_namespace(ns, {"kubernetes.io/metadata.name": ns})
    for raw in nodes:
        state.upsert_node(parse_node(raw))
    for raw in running:
        state.add_pod(parse_pod(raw))
    attach_metric_table(engine, config)
    return engine


def measure_decisions(
    *,
    config: Config,
    nodes: list[JSON],
    running: list[JSON],
    pending: list[JSON],
    namespaces: list[str],
    progress: Progress | None = None,
    objects: list[JSON] = (),  # type: ignore[assignment]
) -> DecisionResult:
    """Decide every pod of `pending` in order; returns one latency sample per decision.
    `objects` are resource.k8s.io objects (DRA workloads); their final allocations are checked."""
    t0 = time.perf_counter()
    engine = load_engine(
        config=config, nodes=nodes, running=running, namespaces=namespaces, objects=objects
    )
    build_s = time.perf_counter() - t0
    gc.freeze()  # as `berth run` does once its caches have synced
    samples: list[float] = []
    unschedulable = 0
    placed: dict[str, str] = {}
    total = len(pending)
    next_report = time.monotonic() + 5.0
    for k, raw in enumerate(pending):
        pod = parse_pod(raw)
        scheduler = engine.scheduler_for(pod.scheduler_name)
        assert scheduler is not None, f"no profile for schedulerName {pod.scheduler_name!r}"
        start = time.perf_counter()
        try:
            result = scheduler.schedule(pod)
        except FitError:
            samples.append((time.perf_counter() - start) * 1000)
            unschedulable += 1
            continue
        samples.append((time.perf_counter() - start) * 1000)
        engine.state.assume_pod(pod, result.node)
        scheduler.framework.run_reserve(result.cycle, pod, result.node)
        placed[pod.uid] = result.node
        if progress is not None and time.monotonic() >= next_report:
            next_report = time.monotonic() + 5.0
            progress(k + 1, total)
    out = DecisionResult(samples_ms=samples, unschedulable=unschedulable, build_s=build_s)
    if objects:
        from berth.bench.dra import verify_devices

        dra = engine.dra
        claims = {c.uid: c for c in dra.claims.values()}
        claims.update(dra.in_flight)  # Reserve's allocations, as PreBind would write them
        owners = {c.uid: c.controller[2] if c.controller else "" for c in claims.values()}
        out.device_checks, out.device_violations = verify_devices(
            (c.key, placed.get(owners[c.uid], ""), c.allocation.raw)
            for c in claims.values()
            if c.allocation is not None
        )
    return out
