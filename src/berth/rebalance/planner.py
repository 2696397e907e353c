"""What the rebalancer decides, with no I/O: which nodes are hot, which pods go, and where.

Each sample reads MetricScore's metric table: a node is over when a metric is worse than its
`high` (fresh values only, each metric's own maxAge: no data is never a reason to evict), and
hot once over for `consecutiveSamples` samples in a row. Pods on hot nodes (hottest node first)
are taken low priority first, then BestEffort before Burstable before Guaranteed, and each is
decided again by the scheduler's own profile with the pod taken off its node: it goes only if
the best node is another one, not over, under every `low` that is set, and the pod's own node is
not among the best (a tie could put it back: the scheduler and the rebalancer must not
ping-pong), and no PodDisruptionBudget covering it is at zero disruptions allowed (counting this
pass's moves; the Eviction API stays the judge). The pod is then counted on that node for the rest
of the pass (reserve, then evict), so the next candidates see the room it takes; the hypothesis
is undone when the pass is planned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from berth.config.rebalance import RebalanceConfig
from berth.engine import Engine
from berth.framework.algorithm import Scheduler
from berth.objects.pod import PodInfo
from berth.plugins.metricscore import MetricSpec
from berth.rebalance.evictable import QOS_ORDER, protection, qos_class
from berth.state.whatif import what_if

Obj = dict[str, Any]


@dataclass(frozen=True)
class Threshold:
    """A rebalance metric joined with the MetricScore metric it names."""

    spec: MetricSpec
    high: float
    low: float | None

    def worse(self, value: float, than: float) -> bool:
        return value > than if self.spec.direction == "lower" else value < than

    def excess(self, value: float) -> float:
        """How far past `high`, in units of |high| (to rank hot nodes)."""
        gap = value - self.high if self.spec.direction == "lower" else self.high - value
        return gap / (abs(self.high) or 1.0)


@dataclass
class Settings:
    config: RebalanceConfig
    profile: str
    thresholds: list[Threshold]


def settings_of(engine: Engine) -> Settings:
    """The rebalance section resolved against the engine's profiles (the configuration's
    loader has checked that the profile and the metrics exist)."""
    config = engine.config.model.rebalance
    if config is None:
        raise ValueError("the configuration has no rebalance section")
    profile = config.profile or next(iter(engine.config.profiles))
    args = engine.config.profiles[profile].args.get("MetricScore")
    specs = {m.name: m for m in getattr(args, "metrics", ())}
    return Settings(
        config=config,
        profile=profile,
        thresholds=[Threshold(specs[m.metric], m.high, m.low) for m in config.metrics],
    )


@dataclass
class Reading:
    """One node in one sample."""

    node: str
    values: dict[str, float | None]  # metric -> fresh value (None: no fresh value)
    over: list[str]  # the metrics worse than their high
    under: bool  # better than every low that is set (and fresh)
    excess: float = 0.0


def read(engine: Engine, settings: Settings) -> dict[str, Reading]:
    """Every node's fresh values of the rebalance metrics, from the engine's metric table."""
    table = engine.ports.metrics
    state = engine.state
    now = table.clock() if table is not None else 0.0
    names = [state.names[i] for i in state.node_indices().tolist()]
    out = {n: Reading(node=n, values={}, over=[], under=True) for n in names}
    for t in settings.thresholds:
        series = table.series(t.spec.key) if table is not None else None
        for n in names:
            value = None
            fresh = series is not None and now - series.times.get(n, -np.inf) <= t.spec.maxAge
            if series is not None and fresh and n in series.values:
                value = float(series.values[n])
            r = out[n]
            r.values[t.spec.name] = value
            if value is None:
                r.under = False if t.low is not None else r.under
                continue
            if t.worse(value, t.high):
                r.over.append(t.spec.name)
                r.excess = max(r.excess, t.excess(value))
            if t.low is not None and t.worse(value, t.low):
                r.under = False
    for r in out.values():
        if r.over:
            r.under = False
    return out


@dataclass
class Breaches:
    """Samples in a row each node has been over (koordinator's consecutive abnormalities)."""

    counts: dict[str, int] = field(default_factory=dict)

    def observe(self, readings: Mapping[str, Reading]) -> None:
        self.counts = {n: (self.counts.get(n, 0) + 1 if r.over else 0) for n, r in readings.items()}

    def reset(self, node: str) -> None:
        """After evictions from `node`: its next samples must show it is still over."""
        self.counts[node] = 0


@dataclass
class Move:
    pod: PodInfo
    source: str
    destination: str
    why: str  # the source's breach, e.g. "cpu 95 above 80 for 3 samples"
    total: int  # the destination's score
    source_total: int | None  # the pod's own node's score (None: it no longer fits there)


@dataclass
class Skip:
    pod: str
    node: str
    why: str


@dataclass
class Plan:
    hot: list[str]
    moves: list[Move]
    skips: list[Skip]
    note: str = ""  # why nothing is planned, when nothing is


def plan(
    engine: Engine,
    settings: Settings,
    readings: Mapping[str, Reading],
    breaches: Breaches,
    raw_pods: Mapping[str, Obj],
    blocked: Collection[str] = (),
) -> Plan:
    """This pass's evictions (the engine's state is left as it was). `blocked`: pods whose
    eviction the API server refused lately (429), left alone for now."""
    config = settings.config
    needed = config.consecutiveSamples
    hot = sorted(
        (n for n, r in readings.items() if r.over and breaches.counts.get(n, 0) >= needed),
        key=lambda n: (-readings[n].excess, n),
    )
    out = Plan(hot=hot, moves=[], skips=[])
    if not hot:
        out.note = "no node has been over a high threshold for enough samples"
        return out
    if any(t.low is not None for t in settings.thresholds):
        under = sum(1 for r in readings.values() if r.under)
        if under <= config.numberOfNodes:
            out.note = (
                f"{under} nodes under every low threshold, numberOfNodes is {config.numberOfNodes}"
            )
            return out
    scheduler = engine.scheduler_for(settings.profile)
    assert scheduler is not None
    state = engine.state
    per_namespace: dict[str, int] = {}
    budgets = engine.ports.disruption_budgets.all()
    allowed = [b.disruptions_allowed for b in budgets]
    with what_if(state) as reserved:
        for node in hot:
            idx = state.index.get(node)
            if idx is None:
                continue
            why = _breach(readings[node], settings, breaches.counts.get(node, 0))
            evicted = 0
            for pod in _candidates(engine, settings, state.node_pods[idx].values(), raw_pods, out):
                if (
                    config.maxEvictionsTotal is not None
                    and len(out.moves) >= config.maxEvictionsTotal
                ):
                    out.note = f"maxEvictionsTotal {config.maxEvictionsTotal} reached"
                    return out
                if evicted >= config.maxEvictionsPerNode:
                    break
                limit = config.maxEvictionsPerNamespace
                if limit is not None and per_namespace.get(pod.namespace, 0) >= limit:
                    out.skips.append(
                        Skip(pod.key, node, f"maxEvictionsPerNamespace {limit} reached")
                    )
                    continue
                if pod.key in blocked:
                    out.skips.append(Skip(pod.key, node, "its eviction was refused lately (429)"))
                    continue
                covering = [
                    i
                    for i, b in enumerate(budgets)
                    if b.namespace == pod.namespace
                    and pod.name not in b.disrupted_pods
                    and b.selector.matches(pod.labels)
                ]
                if any(allowed[i] <= 0 for i in covering):
                    out.skips.append(
                        Skip(pod.key, node, "a PodDisruptionBudget allows no disruption now")
                    )
                    continue
                move, reason = _place_elsewhere(scheduler, pod, node, readings, settings)
                if move is None:
                    out.skips.append(Skip(pod.key, node, reason))
                    continue
                move = dataclasses.replace(move, why=why)
                # reserve: counted on its destination for the rest of the pass
                reserved.remove(pod.key)
                reserved.add(dataclasses.replace(pod, node_name=""), move.destination)
                out.moves.append(move)
                for i in covering:
                    allowed[i] -= 1
                evicted += 1
                per_namespace[pod.namespace] = per_namespace.get(pod.namespace, 0) + 1
    return out


def _breach(reading: Reading, settings: Settings, samples: int) -> str:
    parts = []
    for t in settings.thresholds:
        if t.spec.name in reading.over:
            word = "above" if t.spec.direction == "lower" else "below"
            parts.append(f"{t.spec.name} {reading.values[t.spec.name]:g} {word} {t.high:g}")
    return f"{', '.join(parts)} for {samples} samples"


def _candidates(
    engine: Engine,
    settings: Settings,
    pods: Any,
    raw_pods: Mapping[str, Obj],
    out: Plan,
) -> list[PodInfo]:
    """The node's evictable pods, low priority first, then by QoS class (descheduler's
    SortPodsBasedOnPriorityLowToHigh)."""
    state = engine.state
    keep: list[tuple[int, int, str, PodInfo]] = []
    for pod in list(pods):
        raw = raw_pods.get(pod.key)
        if raw is None or state.is_assumed(pod.key):
            continue  # not bound yet (its binding is in flight), or unknown
        why = protection(raw, settings.config)
        if why is not None:
            out.skips.append(Skip(pod.key, state.node_of(pod.key) or "", why))
            continue
        keep.append((pod.priority, QOS_ORDER.get(qos_class(raw), 1), pod.key, pod))
    keep.sort(key=lambda t: t[:3])
    return [t[3] for t in keep]


def _place_elsewhere(
    scheduler: Scheduler,
    pod: PodInfo,
    source: str,
    readings: Mapping[str, Reading],
    settings: Settings,
) -> tuple[Move | None, str]:
    """Decide `pod` again without it on `source`: the move, or why there is none."""
    state = scheduler.state
    fwk = scheduler.framework
    needs_under = any(t.low is not None for t in settings.thresholds)
    with what_if(state) as hypothesis:
        hypothesis.remove(pod.key)
        pending = dataclasses.replace(pod, node_name="")
        start = scheduler.next_start_index
        feasible, diagnosis = scheduler.find_feasible(pending, state.node_indices())
        scheduler.next_start_index = start
        if not len(feasible):
            return None, "fits on no node (the scheduler would leave it pending)"
        fwk.run_pre_score(diagnosis.cycle, pending, feasible)
        totals, _ = fwk.run_score(diagnosis.cycle, pending, feasible)
    names = [state.names[i] for i in feasible.tolist()]
    if names == [source]:
        return None, "fits on no other node"
    best = int(totals.max())
    winners = sorted(n for n, t in zip(names, totals.tolist(), strict=True) if t == best)
    by_name = dict(zip(names, totals.tolist(), strict=True))
    if source in winners:
        return None, "the scheduler would place it back on its node"
    for w in winners:
        r = readings.get(w)
        if r is None or r.over:
            return None, f"the scheduler's best node {w} is over a threshold too"
        if needs_under and not r.under:
            return None, f"the scheduler's best node {w} is not under the low thresholds"
    return (
        Move(
            pod=pod,
            source=source,
            destination=winners[0],
            why="",
            total=best,
            source_total=by_name.get(source),
        ),
        "",
    )


__all__ = [
    "Breaches",
    "Move",
    "Plan",
    "Reading",
    "Settings",
    "Skip",
    "Threshold",
    "plan",
    "read",
    "settings_of",
]
