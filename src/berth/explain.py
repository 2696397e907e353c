"""`berth explain`: why a pod is where it is, or pending, in the engine's own numbers.

For every node, each filter's verdict with upstream's reasons (every filter is asked, not only
up to the first rejection, so a user sees all that stands in the way; the scheduler's own status
is the first rejection, as upstream reports it); for the feasible nodes, every score plugin's raw,
normalised and weighted score; the winner and its margin; and, where the scheduler scores only
a share of the feasible nodes (percentageOfNodesToScore), that share from its scan position and
its pick among them. A bound pod is explained as of now: it
is taken off its node inside a what-if, decided again and put back ("would it still go there?").
Nothing is assumed, reserved, bound or preempted and the scheduler's scan position is left as it
was, so a running scheduler can explain on its own state between two decisions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from berth.engine import Engine
from berth.framework.algorithm import FitError, Scheduler, num_feasible_nodes_to_find
from berth.framework.plugin import CycleState
from berth.framework.status import Status
from berth.objects.pod import PodInfo
from berth.state.whatif import what_if
from berth.usage import metric_values, requested_share

PASSED = "passed"  # kube-scheduler-simulator's word for a filter a node passed
ANNOTATION_PREFIX = "kube-scheduler-simulator.sigs.k8s.io/"
FILTER_RESULT = ANNOTATION_PREFIX + "filter-result"
SCORE_RESULT = ANNOTATION_PREFIX + "score-result"
FINAL_SCORE_RESULT = ANNOTATION_PREFIX + "finalscore-result"
SELECTED_NODE = ANNOTATION_PREFIX + "selected-node"


class ExplainError(Exception):
    """The pod cannot be explained with this configuration (one line for users)."""


@dataclass
class PluginScore:
    raw: int
    normalized: int
    weighted: int


@dataclass
class NodeVerdict:
    node: str
    feasible: bool
    # the scheduler's status for a rejected node: the first rejecting filter (or PreFilter, or
    # the pods nominated there), with upstream's reasons
    plugin: str = ""
    reasons: tuple[str, ...] = ()
    # every filter asked: plugin -> "passed" or its reasons; absent when upstream would not
    # have filtered the node at all (PreFilter rejected the pod, or left the node out)
    filters: dict[str, str] = field(default_factory=dict)
    scores: dict[str, PluginScore] = field(default_factory=dict)
    total: int | None = None


@dataclass
class Explanation:
    pod: str
    profile: str
    node: str | None  # where the pod is bound (or assumed) now; None: pending
    nodes: list[NodeVerdict]
    filters: list[str]  # the profile's filter plugins, in run order
    score_plugins: list[tuple[str, int]]  # (plugin, weight), in run order
    skipped_scores: list[str]  # score plugins whose PreScore skipped them for this pod
    winners: list[str]  # the nodes with the best total (more than one: a tie)
    margin: int | None  # best total minus the runner-up's
    runner_up: str | None
    message: str  # upstream's FailedScheduling message when no node fits
    gated: str = ""  # a PreEnqueue plugin holds the pod back (scheduling gates)
    pre_filter: str = ""  # PreFilter's rejection, "Plugin: reasons"
    scored_by_scheduler: int = 0  # how many feasible nodes the scheduler itself would score
    # When that is fewer than the feasible nodes (percentageOfNodesToScore): the ones it would
    # score from its scan position `start_index` now, and the best of them as it totals them
    # (NormalizeScore over those nodes only), which is the scheduler's own pick.
    start_index: int = 0
    sampled: dict[str, int] = field(default_factory=dict)  # node -> total, in scan order
    sampled_winners: list[str] = field(default_factory=list)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)  # node -> requested share
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> node -> value

    @property
    def feasible(self) -> list[str]:
        return [v.node for v in self.nodes if v.feasible]

    @property
    def winner(self) -> str | None:
        return self.winners[0] if self.winners else None

    @property
    def would_stay(self) -> bool | None:
        """For a bound pod: would the scheduler pick its node again now (a best total)?"""
        if self.node is None:
            return None
        return self.node in self.winners

    def to_json(self) -> dict[str, Any]:
        return {
            "pod": self.pod,
            "profile": self.profile,
            "node": self.node,
            "gated": self.gated or None,
            "preFilter": self.pre_filter or None,
            "message": self.message,
            "filters": self.filters,
            "scorePlugins": [{"name": n, "weight": w} for n, w in self.score_plugins],
            "skippedScores": self.skipped_scores,
            "feasible": self.feasible,
            "winners": self.winners,
            "winner": self.winner,
            "margin": self.margin,
            "runnerUp": self.runner_up,
            "wouldStay": self.would_stay,
            "scoredByScheduler": self.scored_by_scheduler,
            "startIndex": self.start_index,
            "sampled": self.sampled,
            "sampledWinners": self.sampled_winners,
            "nodes": {
                v.node: {
                    "feasible": v.feasible,
                    "plugin": v.plugin or None,
                    "reasons": list(v.reasons),
                    "filters": v.filters,
                    "total": v.total,
                    "scores": {
                        p: {"raw": s.raw, "normalized": s.normalized, "weighted": s.weighted}
                        for p, s in v.scores.items()
                    },
                }
                for v in self.nodes
            },
            "usage": self.usage,
            "metrics": self.metrics,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Explanation:
        """The inverse of `to_json` (an explanation `berth run` answered with)."""
        nodes = [
            NodeVerdict(
                node=name,
                feasible=bool(v["feasible"]),
                plugin=v.get("plugin") or "",
                reasons=tuple(v.get("reasons") or ()),
                filters=dict(v.get("filters") or {}),
                scores={p: PluginScore(**s) for p, s in (v.get("scores") or {}).items()},
                total=v.get("total"),
            )
            for name, v in doc["nodes"].items()
        ]
        return cls(
            pod=doc["pod"],
            profile=doc["profile"],
            node=doc.get("node"),
            nodes=nodes,
            filters=list(doc["filters"]),
            score_plugins=[(p["name"], int(p["weight"])) for p in doc["scorePlugins"]],
            skipped_scores=list(doc.get("skippedScores") or ()),
            winners=list(doc.get("winners") or ()),
            margin=doc.get("margin"),
            runner_up=doc.get("runnerUp"),
            message=doc.get("message") or "",
            gated=doc.get("gated") or "",
            pre_filter=doc.get("preFilter") or "",
            scored_by_scheduler=int(doc.get("scoredByScheduler") or 0),
            start_index=int(doc.get("startIndex") or 0),
            sampled={n: int(t) for n, t in (doc.get("sampled") or {}).items()},
            sampled_winners=list(doc.get("sampledWinners") or ()),
            usage=dict(doc.get("usage") or {}),
            metrics=dict(doc.get("metrics") or {}),
        )


def profile_for(engine: Engine, pod: PodInfo, profile: str | None = None) -> Scheduler:
    """The scheduler of `profile`, else of the pod's schedulerName, else the only profile."""
    if profile is not None:
        scheduler = engine.scheduler_for(profile)
        if scheduler is None:
            raise ExplainError(
                f"--profile {profile}: no such profile (profiles: {', '.join(engine.schedulers)})"
            )
        return scheduler
    scheduler = engine.scheduler_for(pod.scheduler_name)
    if scheduler is not None:
        return scheduler
    if len(engine.schedulers) == 1:
        return next(iter(engine.schedulers.values()))
    raise ExplainError(
        f"pod {pod.key}: schedulerName {pod.scheduler_name!r} is none of the configuration's "
        f"profiles ({', '.join(engine.schedulers)}); choose one with --profile"
    )


def explain(engine: Engine, pod: PodInfo, *, profile: str | None = None) -> Explanation:
    """Explain `pod` on the engine's current state (a bound pod: as if it were pending now)."""
    scheduler = profile_for(engine, pod, profile)
    state = engine.state
    current = state.node_of(pod.key)
    with what_if(state) as hypothesis:
        if current is not None:
            hypothesis.remove(pod.key)
            # decided as if pending: spec.nodeName is the binding's, not a request
            pod = dataclasses.replace(pod, node_name="")
        out = _explain(scheduler, pod, current)
    out.metrics = metric_values(engine)
    gate = engine.pre_enqueue(pod)
    if current is None and not gate.ok:
        out.gated = f"{gate.plugin}: {gate.message or gate.code}"
    return out


def _explain(scheduler: Scheduler, pod: PodInfo, current: str | None) -> Explanation:
    fwk = scheduler.framework
    state = scheduler.state
    names = state.names
    nodes = state.node_indices()
    start = scheduler.next_start_index  # find_feasible keeps it, but never trust a side effect
    feasible, diagnosis = scheduler.find_feasible(pod, nodes)
    scheduler.next_start_index = start
    rejected = diagnosis.node_statuses()
    verdicts = {names[i]: _verdict(names[i], rejected.get(names[i])) for i in nodes.tolist()}
    pre_filter = ""
    if diagnosis.pre_filter_status is not None:
        s = diagnosis.pre_filter_status
        pre_filter = f"{s.plugin}: {s.message}"
    else:
        _every_filter(scheduler, pod, nodes, diagnosis.absent, verdicts)
    out = Explanation(
        pod=pod.key,
        profile=fwk.scheduler_name,
        node=current,
        nodes=[],
        filters=[p.name for p in fwk.filter],
        score_plugins=[(p.name, w) for p, w in fwk.score],
        skipped_scores=[],
        winners=[],
        margin=None,
        runner_up=None,
        message="",
        pre_filter=pre_filter,
        usage=requested_share(state),
    )
    if len(feasible):
        candidates = _candidates(nodes, diagnosis.absent)
        out.scored_by_scheduler = min(
            len(feasible),
            num_feasible_nodes_to_find(fwk.percentage_of_nodes_to_score, len(candidates)),
        )
        _score(scheduler, pod, feasible, diagnosis.cycle, verdicts, out)
        if out.scored_by_scheduler < len(feasible):
            _sample(scheduler, pod, feasible, candidates, len(nodes), out)
    else:
        out.message = FitError(pod=pod, diagnosis=diagnosis).message
    order = sorted(
        verdicts.values(),
        key=lambda v: (not v.feasible, -(v.total or 0), v.node),
    )
    out.nodes = order
    return out


def _candidates(nodes: Any, absent: Any) -> Any:
    """The nodes the scan walks: all, less those PreFilter's result leaves out."""
    if absent is not None and len(absent[0]):
        return nodes[~np.isin(nodes, absent[0])]
    return nodes


def _sample(
    scheduler: Scheduler,
    pod: PodInfo,
    feasible: Any,
    candidates: Any,
    num_all_nodes: int,
    out: Explanation,
) -> None:
    """The feasible nodes the scheduler would score from its scan position now (its own walk,
    its position restored after), and its pick among them: scored on their own, as it scores
    them, since NormalizeScore depends on the nodes scored together."""
    start = scheduler.next_start_index
    try:
        sampled = scheduler._take_feasible(feasible, candidates, num_all_nodes)
    finally:
        scheduler.next_start_index = start
    names = scheduler.state.names
    totals, _ = scheduler.prioritize(pod, sampled)
    best = int(totals.max())
    out.start_index = start
    out.sampled = {names[i]: int(t) for i, t in zip(sampled.tolist(), totals.tolist(), strict=True)}
    out.sampled_winners = sorted(
        names[i] for i, t in zip(sampled.tolist(), totals.tolist(), strict=True) if t == best
    )


def _verdict(node: str, status: Status | None) -> NodeVerdict:
    if status is None:
        return NodeVerdict(node=node, feasible=True)
    return NodeVerdict(node=node, feasible=False, plugin=status.plugin, reasons=status.reasons)


def _every_filter(
    scheduler: Scheduler,
    pod: PodInfo,
    nodes: Any,
    absent: Any,
    verdicts: dict[str, NodeVerdict],
) -> None:
    """Each filter's verdict on every node PreFilter left in (a fresh cycle, so the decision's
    own cycle state is only read by the scores)."""
    fwk = scheduler.framework
    names = scheduler.state.names
    cycle = CycleState()
    fwk.run_pre_filter(cycle, pod)
    candidates = _candidates(nodes, absent)
    for plugin in fwk.filter:
        if plugin.name in cycle.skip_filter:
            for idx in candidates.tolist():
                verdicts[names[idx]].filters[plugin.name] = PASSED
            continue
        ok = plugin.filter(cycle, pod, candidates)
        for idx, passed in zip(candidates.tolist(), ok.tolist(), strict=True):
            if passed:
                verdicts[names[idx]].filters[plugin.name] = PASSED
            else:
                verdicts[names[idx]].filters[plugin.name] = plugin.explain(cycle, pod, idx).message


def _score(
    scheduler: Scheduler,
    pod: PodInfo,
    feasible: Any,
    cycle: CycleState,
    verdicts: dict[str, NodeVerdict],
    out: Explanation,
) -> None:
    """PreScore and every Score plugin over all feasible nodes, as upstream's RunScorePlugins
    (raw, then NormalizeScore, then the weight), keeping each stage."""
    fwk = scheduler.framework
    names = scheduler.state.names
    fwk.run_pre_score(cycle, pod, feasible)
    totals = np.zeros(len(feasible), dtype=np.int64)
    slots = feasible.tolist()
    for plugin, weight in fwk.score:
        if plugin.name in cycle.skip_score:
            out.skipped_scores.append(plugin.name)
            continue
        raw = plugin.score(cycle, pod, feasible)
        raw_kept = raw.copy()
        normalized = plugin.normalize(cycle, pod, feasible, raw)
        totals += normalized * weight
        for k, idx in enumerate(slots):
            verdicts[names[idx]].scores[plugin.name] = PluginScore(
                raw=int(raw_kept[k]),
                normalized=int(normalized[k]),
                weighted=int(normalized[k]) * weight,
            )
    for k, idx in enumerate(slots):
        verdicts[names[idx]].total = int(totals[k])
    best = int(totals.max())
    out.winners = sorted(names[idx] for k, idx in enumerate(slots) if totals[k] == best)
    if len(out.winners) > 1:
        out.margin, out.runner_up = 0, out.winners[1]
    elif len(slots) > 1:
        rest = [(int(totals[k]), names[idx]) for k, idx in enumerate(slots) if totals[k] != best]
        second, runner = min(rest, key=lambda t: (-t[0], t[1]))
        out.margin, out.runner_up = best - second, runner


# ----- kube-scheduler-simulator's annotations --------------------------------------------------
def simulator_annotations(expl: Explanation) -> dict[str, str]:
    """The result as kube-scheduler-simulator writes it onto a pod: JSON maps of node -> plugin
    -> "passed" or the filter's message (the filters upstream ran: up to a node's first
    rejection), the raw scores and the final (normalised, weighted) scores as strings, and the
    selected node ("" when none fits; with a tie, the first by name)."""
    import json

    filters: dict[str, dict[str, str]] = {}
    scores: dict[str, dict[str, str]] = {}
    final: dict[str, dict[str, str]] = {}
    for v in expl.nodes:
        if v.filters:
            ran: dict[str, str] = {}
            for plugin in expl.filters:
                verdict = v.filters.get(plugin)
                if verdict is None:
                    continue
                ran[plugin] = verdict
                if verdict != PASSED:
                    break
            filters[v.node] = ran
        if v.scores:
            scores[v.node] = {p: str(s.raw) for p, s in v.scores.items()}
            final[v.node] = {p: str(s.weighted) for p, s in v.scores.items()}
    selected = expl.node if expl.node is not None else (expl.winner or "")
    return {
        FILTER_RESULT: json.dumps(filters, separators=(",", ":")),
        SCORE_RESULT: json.dumps(scores, separators=(",", ":")),
        FINAL_SCORE_RESULT: json.dumps(final, separators=(",", ":")),
        SELECTED_NODE: selected,
    }


# ----- for people -------------------------------------------------------------------------------
def format_table(expl: Explanation) -> str:
    """One line per node (feasible first, by total), the weighted score of each plugin, and
    the conclusion."""
    where = f"bound to {expl.node}" if expl.node else "pending"
    head = (
        f"pod {expl.pod} ({where}), profile {expl.profile}: "
        f"{len(expl.feasible)} of {len(expl.nodes)} nodes feasible"
    )
    lines = [head]
    if expl.gated:
        lines.append(f"gated: {expl.gated} (the scheduler does not try it until the gates go)")
    if expl.pre_filter:
        lines.append(f"PreFilter rejects the pod on every node: {expl.pre_filter}")
    plugins = [n for n, _ in expl.score_plugins if n not in expl.skipped_scores]
    header = ["NODE", "TOTAL", *plugins, "VERDICT"]
    rows = [header]
    for v in expl.nodes:
        if v.feasible:
            cells = [str(v.scores[p].weighted) if p in v.scores else "" for p in plugins]
            verdict = "feasible" + (" (winner)" if v.node in expl.winners else "")
            if v.node == expl.node:
                verdict += " (current)"
            rows.append([v.node, str(v.total), *cells, verdict])
        else:
            verdict = f"{v.plugin}: {', '.join(v.reasons)}"
            others = [p for p, r in v.filters.items() if r != PASSED and p != v.plugin]
            if others:
                verdict += f" (also {', '.join(others)})"
            if v.node == expl.node:
                verdict += " (current)"
            rows.append([v.node, "", *["" for _ in plugins], verdict])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        text = "  ".join(r[i].ljust(widths[i]) for i in range(len(widths))) + "  " + r[-1]
        lines.append(text.rstrip())
    lines.append("")
    lines.append(conclusion(expl))
    return "\n".join(lines)


def conclusion(expl: Explanation) -> str:
    if not expl.winners:
        return f"no node fits: {expl.message}"
    if len(expl.winners) > 1:
        text = f"tie at the best total between {', '.join(expl.winners)} (the scheduler draws one)"
    else:
        text = f"winner {expl.winner}"
        if expl.margin is not None and expl.runner_up is not None:
            text += f", {expl.margin} ahead of {expl.runner_up}"
    if expl.node is not None:
        text += "; it would stay" if expl.would_stay else f"; it would not stay on {expl.node}"
    if expl.scored_by_scheduler < len(expl.feasible):
        text += (
            f" (the scheduler itself scores {expl.scored_by_scheduler} of the "
            f"{len(expl.feasible)} feasible nodes, percentageOfNodesToScore"
        )
        if expl.sampled_winners:
            text += (
                f"; from its scan position {expl.start_index} its best is "
                f"{' or '.join(expl.sampled_winners)}"
            )
        text += ")"
    return text


__all__ = [
    "FILTER_RESULT",
    "FINAL_SCORE_RESULT",
    "SCORE_RESULT",
    "SELECTED_NODE",
    "ExplainError",
    "Explanation",
    "NodeVerdict",
    "PluginScore",
    "conclusion",
    "explain",
    "format_table",
    "profile_for",
    "simulator_annotations",
]
