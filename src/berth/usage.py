"""How full each node is, in the two senses the reports show: requested resources as a share
of allocatable (what the filters count) and the live metrics MetricScore reads (what the
monitoring says), both from the engine, so a report shows the numbers the decisions used."""

from __future__ import annotations

from berth.engine import Engine
from berth.state.cluster import CPU, MEMORY, PODS, ClusterState


def requested_share(state: ClusterState) -> dict[str, dict[str, float]]:
    """Per node: requested cpu, memory and pods as fractions of allocatable."""
    idx = state.node_indices()
    alloc = state.alloc[idx]
    req = state.requested[idx]
    out: dict[str, dict[str, float]] = {}
    for k, i in enumerate(idx.tolist()):
        row = {}
        for name, col in (("cpu", CPU), ("memory", MEMORY), ("pods", PODS)):
            a = int(alloc[k, col])
            row[name] = round(int(req[k, col]) / a, 4) if a > 0 else 0.0
        out[state.names[i]] = row
    return out


def metric_values(engine: Engine) -> dict[str, dict[str, float]]:
    """Per MetricScore metric of any profile (by its name): node -> the last value sampled."""
    table = engine.ports.metrics
    if table is None:
        return {}
    out: dict[str, dict[str, float]] = {}
    for scheduler in engine.schedulers.values():
        for plugin, _ in scheduler.framework.score:
            for metric in getattr(plugin, "metrics", ()):
                series = table.series(metric.key)
                if series is not None and metric.name not in out:
                    out[metric.name] = {n: float(v) for n, v in series.values.items()}
    return out


__all__ = ["metric_values", "requested_share"]
