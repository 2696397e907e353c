"""MetricScore: place pods by live node metrics (latency, error rate, I/O, price, ...).

Reads the engine's metric table (the `metrics` port); never does network I/O. One
snapshot per cycle turns each configured metric into arrays over the node slots: the value plus
the herd estimate (pods placed on the node since its sample, times `estimatePerPod`) and whether
it is fresh (younger than `maxAge`). Score: each metric normalised to [0, 100] (`minmax` across
the scored nodes, or `target`: an absolute objective), combined by weight. Filter (only for
metrics with `filter: {max|min}`): rejects nodes over the limit; a node with no fresh value
passes (fail open, as crane-scheduler does). Reserve records the placement for the estimate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from berth.config.durations import Duration
from berth.framework.plugin import (
    MAX_NODE_SCORE,
    CycleState,
    FilterPlugin,
    PreScorePlugin,
    ReservePlugin,
    ScorePlugin,
)
from berth.framework.status import SKIP, SUCCESS, Status, unresolvable
from berth.metrics.table import MetricKey, MetricTable, Series
from berth.objects.pod import PodInfo
from berth.plugins.registry import register
from berth.state.cluster import PODS, BoolArray, ClusterState, IndexArray, IntArray

NAME = "MetricScore"
REASON_ABOVE = "node(s) had metric {name} above {limit}"
REASON_BELOW = "node(s) had metric {name} below {limit}"
NEUTRAL_SCORE = MAX_NODE_SCORE // 2
_SNAPSHOT = f"{NAME}/snapshot"

FloatArray = npt.NDArray[np.float64]
log = logging.getLogger("berth.metrics")


class MetricLimits(BaseModel):
    """Hard limits: nodes whose (fresh, estimated) value is above `max` or below `min` fail."""

    model_config = ConfigDict(extra="forbid")
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _some(self) -> MetricLimits:
        if self.max is None and self.min is None:
            raise ValueError("set max, min or both")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError("min: must not be greater than max")
        return self


class MetricSpec(BaseModel):
    """One metric of MetricScore: where it comes from and how it turns into a score."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*)$")
    source: str = Field(min_length=1)
    query: str = Field(min_length=1)
    nodeLabel: str = Field(default="node", min_length=1)
    nodeMatch: Literal["auto", "name", "address"] = "auto"
    direction: Literal["lower", "higher"] = "lower"
    weight: float = Field(default=1.0, gt=0, le=100)
    normalization: Literal["minmax", "target"] = "minmax"
    target: float | None = None
    span: float | None = Field(default=None, gt=0)
    maxAge: Duration = 60.0
    missing: Literal["worst", "best", "ignore"] | int = "worst"
    estimatePerPod: float = Field(default=0.0, ge=0)
    filter: MetricLimits | None = None

    @model_validator(mode="after")
    def _checks(self) -> MetricSpec:
        if self.maxAge <= 0:
            raise ValueError("maxAge: must be greater than zero")
        if self.normalization == "target" and self.target is None:
            raise ValueError("target: Required value when normalization is target")
        if self.normalization != "target" and (self.target is not None or self.span is not None):
            raise ValueError("target: only used when normalization is target")
        if isinstance(self.missing, int) and not 0 <= self.missing <= MAX_NODE_SCORE:
            raise ValueError(f"missing: a fixed score must be in [0, {MAX_NODE_SCORE}]")
        return self

    @property
    def key(self) -> MetricKey:
        return MetricKey(self.source, self.query, self.nodeLabel, self.nodeMatch)

    @property
    def span_value(self) -> float:
        """How far past the target the score falls to 0 (default: |target|, or 1 for 0)."""
        if self.span is not None:
            return self.span
        return abs(self.target or 0.0) or 1.0


class MetricScoreArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metrics: list[MetricSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> MetricScoreArgs:
        seen: set[str] = set()
        for i, m in enumerate(self.metrics):
            if m.name in seen:
                raise ValueError(f"metrics[{i}].name: Duplicate value: {m.name!r}")
            seen.add(m.name)
        return self


@dataclass
class _Column:
    """One metric over all node slots, kept between cycles and rebuilt when its series or the
    node layout changes. `noted` counts placements after each node's sample; `base_pods` is the
    pod count per slot when the series was first used."""

    generation: int
    names: list[str]
    values: FloatArray
    times: FloatArray
    noted: IntArray
    base_pods: IntArray
    cursor: int = 0


@dataclass
class _Snapshot:
    """One cycle's view: per metric, estimated values and freshness over all slots (None: the
    metric has no fresh value anywhere and drops out)."""

    values: list[FloatArray | None]
    fresh: list[BoolArray | None]


class MetricScore(FilterPlugin, PreScorePlugin, ScorePlugin, ReservePlugin):
    name = NAME

    def __init__(self, *, args: Any, handle: Any) -> None:
        super().__init__(args=args, handle=handle)
        parsed: MetricScoreArgs = args if isinstance(args, MetricScoreArgs) else MetricScoreArgs()
        self.metrics = parsed.metrics
        self.limited = [i for i, m in enumerate(self.metrics) if m.filter is not None]
        self._columns: list[_Column | None] = [None] * len(self.metrics)
        self._active: list[bool | None] = [None] * len(self.metrics)
        self._warned_no_table = False

    # ----- the table and one snapshot per cycle ------------------------------------------------
    @property
    def table(self) -> MetricTable | None:
        table = self.ports.metrics
        if table is None and self.metrics and not self._warned_no_table:
            self._warned_no_table = True
            log.warning(
                "%s: no metric table (no metricSources configured); metric scores and limits "
                "are skipped",
                NAME,
            )
        return table

    def prepare(self) -> None:
        """Each metric's column over the node slots, built between decisions: at 5,000 nodes
        the first decision after each refresh of the table otherwise builds it (~2 ms)."""
        table = self.ports.metrics
        if table is None:
            return
        for i, metric in enumerate(self.metrics):
            series = table.series(metric.key)
            if series is not None:
                self._column(i, series, table, self.state)

    def _snapshot(self, cycle: CycleState) -> _Snapshot | None:
        snap: _Snapshot | None = cycle.read(_SNAPSHOT)
        if snap is not None:
            return snap
        table = self.table
        if table is None or not self.metrics:
            return None
        now = table.clock()
        state = self.state
        present = state.present
        values: list[FloatArray | None] = []
        fresh: list[BoolArray | None] = []
        for i, metric in enumerate(self.metrics):
            series = table.series(metric.key)
            col = self._column(i, series, table, state) if series is not None else None
            if col is None:
                values.append(None)
                fresh.append(None)
                self._set_active(i, False, table)
                continue
            ok: BoolArray = ~np.isnan(col.values) & (now - col.times <= metric.maxAge) & present
            if not ok.any():
                values.append(None)
                fresh.append(None)
                self._set_active(i, False, table)
                continue
            value = col.values
            if metric.estimatePerPod > 0:
                grown = np.maximum(state.requested[:, PODS] - col.base_pods, 0)
                placed = np.maximum(np.maximum(col.noted, 0), grown)
                value = value + placed * metric.estimatePerPod
            values.append(value)
            fresh.append(ok)
            self._set_active(i, True, table)
        snap = _Snapshot(values=values, fresh=fresh)
        cycle.write(_SNAPSHOT, snap)
        return snap

    def _column(self, i: int, series: Series, table: MetricTable, state: ClusterState) -> _Column:
        col = self._columns[i]
        names = state.names
        index = state.index
        if (
            col is None
            or col.generation != series.generation
            or len(col.names) != len(names)
            or col.names != names
        ):
            cap = len(names)
            values = np.full(cap, np.nan)
            times = np.full(cap, -np.inf)
            for node, value in series.values.items():
                slot = index.get(node)
                if slot is not None:
                    values[slot] = value
                    times[slot] = series.times[node]
            col = _Column(
                generation=series.generation,
                names=list(names),
                values=values,
                times=times,
                noted=np.zeros(cap, dtype=np.int64),
                base_pods=state.requested[:, PODS].copy(),
            )
            self._columns[i] = col
        events, end, trimmed = table.events_since(col.cursor)
        if trimmed:
            col.noted[:] = 0
        for event in events:
            slot = index.get(event.node)
            if slot is not None and event.at > col.times[slot]:
                col.noted[slot] += event.sign
        col.cursor = end
        return col

    def _set_active(self, i: int, active: bool, table: MetricTable) -> None:
        before = self._active[i]
        self._active[i] = active
        if before == active:
            return
        metric = self.metrics[i]
        if active:
            if before is not None:
                log.info("%s: metric %s has fresh values again", NAME, metric.name)
            return
        source = table.source_state(metric.source)
        why = f"source down: {source.last_error}" if source.up is False else "no recent data"
        log.warning(
            "%s: metric %s has no value younger than maxAge %gs (%s); it drops out of the score",
            NAME,
            metric.name,
            metric.maxAge,
            why,
        )

    # ----- Filter ------------------------------------------------------------------------------
    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        ok = np.ones(len(nodes), dtype=bool)
        if not self.limited:
            return ok
        snap = self._snapshot(cycle)
        if snap is None:
            return ok
        for i in self.limited:
            ok &= ~self._over_limit(snap, i, nodes)
        return ok

    def _over_limit(self, snap: _Snapshot, i: int, nodes: IndexArray) -> BoolArray:
        values, fresh = snap.values[i], snap.fresh[i]
        limits = self.metrics[i].filter
        out = np.zeros(len(nodes), dtype=bool)
        if values is None or fresh is None or limits is None:
            return out  # no fresh value: fail open
        v = values[nodes]
        if limits.max is not None:
            out |= v > limits.max
        if limits.min is not None:
            out |= v < limits.min
        result: BoolArray = out & fresh[nodes]
        return result

    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        snap = self._snapshot(cycle)
        if snap is None:
            return SUCCESS
        one = np.array([node], dtype=np.intp)
        reasons = []
        for i in self.limited:
            if not self._over_limit(snap, i, one)[0]:
                continue
            metric = self.metrics[i]
            values = snap.values[i]
            assert values is not None and metric.filter is not None
            lim = metric.filter
            if lim.max is not None and values[node] > lim.max:
                reasons.append(REASON_ABOVE.format(name=metric.name, limit=f"{lim.max:g}"))
            else:
                reasons.append(REASON_BELOW.format(name=metric.name, limit=f"{lim.min:g}"))
        # Preemption cannot lower a measured value within this cycle: unresolvable.
        return unresolvable(*reasons) if reasons else SUCCESS

    # ----- Score -------------------------------------------------------------------------------
    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        snap = self._snapshot(cycle)
        if snap is None or all(v is None for v in snap.values):
            return SKIP
        return SUCCESS

    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        snap = self._snapshot(cycle)
        n = len(nodes)
        if snap is None or not n:
            return np.zeros(n, dtype=np.int64)
        num = np.zeros(n)
        den = np.zeros(n)
        used = False
        for i, metric in enumerate(self.metrics):
            values, fresh = snap.values[i], snap.fresh[i]
            if values is None or fresh is None:
                continue
            ok = fresh[nodes]
            if not ok.any():
                continue
            used = True
            s = _normalise(metric, values[nodes], ok)
            if metric.missing == "ignore":
                weight = np.where(ok, metric.weight, 0.0)
            else:
                weight = np.full(n, metric.weight)
                s = np.where(ok, s, _missing_score(metric))
            num += weight * s
            den += weight
        if not used:
            return np.zeros(n, dtype=np.int64)
        combined = np.where(den > 0, num / np.where(den > 0, den, 1.0), NEUTRAL_SCORE)
        # round half up (np.rint rounds half to even), ignoring float noise such as 62.4999999
        out: IntArray = np.clip(np.floor(np.round(combined, 6) + 0.5), 0, MAX_NODE_SCORE).astype(
            np.int64
        )
        return out

    # ----- Reserve -----------------------------------------------------------------------------
    def reserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        table = self.table
        if table is not None and any(m.estimatePerPod > 0 for m in self.metrics):
            table.note_placement(node_name, pod.key)
        return SUCCESS

    def unreserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> None:
        table = self.table
        if table is not None:
            table.forget_placement(pod.key)


def _missing_score(metric: MetricSpec) -> float:
    if metric.missing == "best":
        return float(MAX_NODE_SCORE)
    if metric.missing == "worst":
        return 0.0
    return float(metric.missing) if isinstance(metric.missing, int) else 0.0


def _normalise(metric: MetricSpec, v: FloatArray, ok: BoolArray) -> FloatArray:
    """Scores in [0, 100] for the fresh values `v[ok]` (others are replaced by the caller)."""
    lower = metric.direction == "lower"
    if metric.normalization == "target":
        target = float(metric.target or 0.0)
        gap = (v - target) if lower else (target - v)
        frac = 1.0 - np.clip(gap / metric.span_value, 0.0, 1.0)
    else:
        seen = v[ok]
        lo, hi = float(seen.min()), float(seen.max())
        if hi > lo:
            frac = (v - lo) / (hi - lo)
            if lower:
                frac = 1.0 - frac
            frac = np.clip(frac, 0.0, 1.0)
        else:
            frac = np.ones(len(v))
    out: FloatArray = np.where(ok, frac * MAX_NODE_SCORE, 0.0)
    return out


register(MetricScore, MetricScoreArgs)

__all__ = [
    "NAME",
    "REASON_ABOVE",
    "REASON_BELOW",
    "MetricLimits",
    "MetricScore",
    "MetricScoreArgs",
    "MetricSpec",
]
