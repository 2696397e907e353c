"""The `rebalance` section of a BerthConfiguration (Berth's own): when `berth rebalance` calls a
node hot, which pods it may evict, and how many.

Thresholds are on MetricScore's metrics (by name, in the profile the rebalancer places pods
with), so the rebalancer reads the same sources, the same node table and the same freshness
rule (each metric's maxAge) as the scheduler. Names follow descheduler's LowNodeUtilization and
DefaultEvictor and koordinator's LowNodeLoad where they mean the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from berth.config.durations import Duration
from berth.config.model import LeaderElection

SYSTEM_CRITICAL_PRIORITY = 2_000_000_000  # upstream scheduling.SystemCriticalPriority


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RebalanceMetric(_Strict):
    """A node is over when `metric` is worse than `high` (above it for a metric where lower is
    better, below it where higher is), under when better than `low`."""

    metric: str = Field(min_length=1)
    high: float
    low: float | None = None


class Namespaces(_Strict):
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one(self) -> Namespaces:
        if self.include and self.exclude:
            raise ValueError("include: set include or exclude, not both")
        return self

    def allows(self, namespace: str) -> bool:
        if self.include:
            return namespace in self.include
        return namespace not in self.exclude


def _rebalance_lease() -> LeaderElection:
    return LeaderElection(resourceName="berth-rebalance")


class RebalanceConfig(_Strict):
    # the profile whose plugins decide where an evicted pod would go (default: the first)
    profile: str | None = None
    metrics: list[RebalanceMetric] = Field(min_length=1)
    # koordinator anomalyCondition.consecutiveAbnormalities: samples in a row a node must be
    # over before it is acted on (one spike is not a trend)
    consecutiveSamples: int = Field(default=3, ge=1)
    # one sample (a refresh of every metric source) and one pass per interval
    interval: Duration = 60.0
    # descheduler numberOfNodes: act only when more nodes than this are under every low
    numberOfNodes: int = Field(default=0, ge=0)
    maxEvictionsPerNode: int = Field(default=1, ge=1)
    maxEvictionsPerNamespace: int | None = Field(default=None, ge=1)
    maxEvictionsTotal: int | None = Field(default=10, ge=1)
    evictableNamespaces: Namespaces = Field(default_factory=Namespaces)
    # DefaultEvictor: pods at or above this priority are never evicted
    priorityThreshold: int | None = None
    evictSystemCriticalPods: bool = False
    evictLocalStoragePods: bool = False
    evictDaemonSetPods: bool = False
    ignorePvcPods: bool = False
    minPodAge: Duration | None = None
    # the Eviction API: 429 (a PodDisruptionBudget forbids it now) and 5xx are retried
    evictionAttempts: int = Field(default=4, ge=1)
    evictionBackoff: Duration = 1.0
    leaderElection: LeaderElection = Field(default_factory=_rebalance_lease)

    @model_validator(mode="after")
    def _checks(self) -> RebalanceConfig:
        if self.interval <= 0:
            raise ValueError("interval: must be greater than zero")
        if self.evictionBackoff <= 0:
            raise ValueError("evictionBackoff: must be greater than zero")
        seen: set[str] = set()
        for i, m in enumerate(self.metrics):
            if m.metric in seen:
                raise ValueError(f"metrics[{i}].metric: Duplicate value: {m.metric!r}")
            seen.add(m.metric)
        return self


def check_rebalance(
    rebalance: RebalanceConfig | None,
    profiles: list[Any],
    resolved_args: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """Problems (`rebalance.field: reason`) with the profile and metrics the section names."""
    if rebalance is None:
        return []
    names = [p.schedulerName for p in profiles]
    profile = rebalance.profile or (names[0] if names else "")
    if profile not in names:
        return [f"rebalance.profile: no such profile {profile!r} (profiles: {', '.join(names)})"]
    args = resolved_args.get(profile, {}).get("MetricScore")
    metrics = {m.name: m for m in getattr(args, "metrics", ())}
    problems = []
    for i, m in enumerate(rebalance.metrics):
        spec = metrics.get(m.metric)
        if spec is None:
            problems.append(
                f"rebalance.metrics[{i}].metric: {m.metric!r} is not a MetricScore metric of "
                f"profile {profile} (metrics: {', '.join(metrics) or 'none'})"
            )
            continue
        if m.low is not None:
            worse = m.low > m.high if spec.direction == "lower" else m.low < m.high
            if worse:
                problems.append(
                    f"rebalance.metrics[{i}].low: must be better than high for a metric where "
                    f"{spec.direction} is better"
                )
    return problems


__all__ = [
    "SYSTEM_CRITICAL_PRIORITY",
    "Namespaces",
    "RebalanceConfig",
    "RebalanceMetric",
    "check_rebalance",
]
