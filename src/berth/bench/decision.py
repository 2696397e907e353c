"""Decision latency: the engine alone, in-process, on a state loaded with a workload.

Nodes and running pods go through the engine's feed, as the live scheduler's informers'; then
each pod to schedule goes through the engine's scheduling cycle: the decision (timed) and the
assume, Reserve and Permit after it (untimed), so the state fills up as the run goes. No API
server is involved.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from berth.bench.errors import BenchError
from berth.config.loader import Config
from berth.engine import Engine
from berth.feed import Feed
from berth.framework.cycle import Reserved, Unschedulable
from berth.objects import parse_pod

JSON = dict[str, Any]
Progress = Callable[[int, int], None]
Verify = Callable[[Engine, dict[str, str]], tuple[int, list[str]]]


@dataclass
class DecisionResult:
    samples_ms: list[float]
    unschedulable: int
    build_s: float
    # The CPU time of this thread over each whole scheduling cycle (time.thread_time): what a
    # decision costs, without the time another process held the core (a shared machine).
    cpu_samples_ms: list[float] = field(default_factory=list)
    # generation-2 collections that ran during the cycles, and their CPU ms
    collections_in_cycles: int = 0
    collection_cpu_ms: float = 0.0
    # decisions-only workloads (DRA, volumes): checks of the final allocations, what broke
    checks: int = 0
    violations: list[str] = field(default_factory=list)

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


def load_engine(
    *,
    config: Config,
    nodes: list[JSON],
    running: list[JSON],
    namespaces: list[str],
    objects: list[JSON] = (),  # type: ignore[assignment]
) -> Engine:
    """An engine fed the workload's objects, its metric table sampled once (as the refresher
    would have before the first decision) and its plugins' set-up done (Engine.prepare)."""
    engine = Engine(config=config, seed=1)
    feed = Feed(state=engine.state, ports=engine.ports, responsible=engine.schedules)
    for raw in objects:
        feed.add(raw)  # DRA's devices and claims, storage classes, volumes and claims
    for ns in namespaces:
        feed.add({"kind": "Namespace", "metadata": {"name": ns, "labels": _ns_labels(ns)}})
    for raw in [*nodes, *running]:
        feed.add(raw)
    down = engine.sample_metrics()
    if down:
        raise BenchError(f"metric sources down: {', '.join(down)}")
    engine.prepare()  # as `berth run` does once its caches have synced
    return engine


def _ns_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}


def measure_decisions(
    *,
    config: Config,
    nodes: list[JSON],
    running: list[JSON],
    pending: list[JSON],
    namespaces: list[str],
    progress: Progress | None = None,
    objects: list[JSON] = (),  # type: ignore[assignment]
    verify: Verify | None = None,
) -> DecisionResult:
    """Decide every pod of `pending` in order; returns one latency sample per decision.
    `objects` (DRA's, storage) are fed in first; `verify(engine, placed)` checks the outcome
    (placed: pod uid -> node)."""
    t0 = time.perf_counter()
    engine = load_engine(
        config=config, nodes=nodes, running=running, namespaces=namespaces, objects=objects
    )
    build_s = time.perf_counter() - t0
    gc.freeze()  # as `berth run` does once its caches have synced
    samples: list[float] = []
    cpu_samples: list[float] = []
    in_cycle = False
    full_passes: list[float] = []  # CPU ms of each generation-2 pass inside a cycle
    pass_started = 0.0

    def watch_collector(phase: str, info: dict[str, int]) -> None:
        nonlocal pass_started
        if info["generation"] != 2 or not in_cycle:
            return
        if phase == "start":
            pass_started = time.thread_time()
        else:
            full_passes.append((time.thread_time() - pass_started) * 1000)

    gc.callbacks.append(watch_collector)
    unschedulable = 0
    placed: dict[str, str] = {}
    total = len(pending)
    next_report = time.monotonic() + 5.0
    for k, raw in enumerate(pending):
        pod = parse_pod(raw)
        assert engine.scheduler_for(pod.scheduler_name), f"no profile for {pod.scheduler_name!r}"
        # The engine's scheduling cycle; the sample is its decision (Reserve and Permit, and
        # the assume before them, are not timed: the binding cycle never runs here).
        cpu_started = time.thread_time()
        in_cycle = True
        outcome = engine.schedule(pod)
        in_cycle = False
        cpu_samples.append((time.thread_time() - cpu_started) * 1000)
        samples.append(outcome.seconds * 1000)
        if isinstance(outcome, Unschedulable):
            unschedulable += 1
            continue
        if isinstance(outcome, Reserved):
            placed[pod.uid] = outcome.node
        if progress is not None and time.monotonic() >= next_report:
            next_report = time.monotonic() + 5.0
            progress(k + 1, total)
    gc.callbacks.remove(watch_collector)
    out = DecisionResult(
        samples_ms=samples,
        unschedulable=unschedulable,
        build_s=build_s,
        cpu_samples_ms=cpu_samples,
        collections_in_cycles=len(full_passes),
        collection_cpu_ms=round(sum(full_passes), 2),
    )
    if verify is not None:
        out.checks, out.violations = verify(engine, placed)
    return out
