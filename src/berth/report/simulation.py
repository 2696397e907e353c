"""`berth simulate --report`: a simulation's decisions, the final state of its nodes and, with
`--compare`, a second configuration's placements of the same dump, as a `SimulationReport`."""

from __future__ import annotations

from berth.report.html import PodResult, SimulationReport
from berth.simulate import Decision, Simulation
from berth.usage import metric_values, requested_share


def pod_results(sim: Simulation, decisions: list[Decision]) -> list[PodResult]:
    """Each decision with its per-plugin scores weighted by the pod's profile."""
    profiles = {key: pod.scheduler_name for key, pod, _ in sim.pending if pod is not None}
    weights = {
        name: {p.name: w for p, w in scheduler.framework.score}
        for name, scheduler in sim.engine.schedulers.items()
    }
    out = []
    for d in decisions:
        w = weights.get(profiles.get(d.pod, ""), {})
        scores: dict[str, dict[str, int]] = {}
        for plugin, per_node in d.plugin_scores.items():
            for node, normalized in per_node.items():
                scores.setdefault(node, {})[plugin] = normalized * w.get(plugin, 1)
        out.append(
            PodResult(
                pod=d.pod,
                node=d.node,
                message=d.error or d.message,
                reasons=d.reasons if not d.node else {},
                scores=scores,
                totals=dict(d.scores),
                preempted=list(d.preempted),
            )
        )
    return out


def score_plugins(sim: Simulation) -> tuple[list[str], dict[str, int]]:
    """Every profile's score plugins in order (first profile first) and the first weight seen."""
    plugins: list[str] = []
    weights: dict[str, int] = {}
    for scheduler in sim.engine.schedulers.values():
        for plugin, weight in scheduler.framework.score:
            if plugin.name not in weights:
                plugins.append(plugin.name)
                weights[plugin.name] = weight
    return plugins, weights


def differences(
    ours: list[Decision], theirs: list[Decision]
) -> list[tuple[str, str | None, str | None]]:
    """The pods the two runs leave on different nodes (or pending in one only), in our order."""
    other = {d.pod: d.node for d in theirs}
    return [(d.pod, d.node, other.get(d.pod)) for d in ours if other.get(d.pod) != d.node]


def build_report(
    sim: Simulation,
    decisions: list[Decision],
    *,
    title: str,
    compare: tuple[str, list[Decision]] | None = None,
    label: str = "this configuration",
    warnings: list[str] | None = None,
) -> SimulationReport:
    plugins, weights = score_plugins(sim)
    report = SimulationReport(
        title=title,
        results=pod_results(sim, decisions),
        plugins=plugins,
        weights=weights,
        usage=requested_share(sim.engine.state),
        metrics=metric_values(sim.engine),
        warnings=list(warnings or ()),
    )
    if compare is not None:
        other_label, other = compare
        report.compare = differences(decisions, other)
        report.compare_labels = (label, other_label)
    return report


__all__ = ["build_report", "differences", "pod_results", "score_plugins"]
