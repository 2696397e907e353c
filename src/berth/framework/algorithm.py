"""One scheduling decision: feasible nodes, scores, and the chosen host (schedule_one.go).

Filters are evaluated for all nodes at once (they are array operations), then upstream's
`percentageOfNodesToScore` picks which feasible nodes are scored: the first K feasible nodes in
scan order starting where the previous decision stopped, so successive pods look at different
parts of a large cluster exactly as kube-scheduler's do.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from berth.framework.plugin import MAX_NODE_SCORE, CycleState, FilterPlugin, PostFilterResult
from berth.framework.runtime import Framework, outside_pre_filter_result
from berth.framework.status import Code, Status
from berth.objects.pod import PodInfo
from berth.state.cluster import ClusterState, IndexArray, IntArray

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50
# the fewest nodes a windowed walk filters at once (each window runs every filter once)
MIN_WINDOW = 64
# the kinds of pod whose feasible share a scheduler remembers
MAX_POD_KINDS = 64
NO_NODES_AVAILABLE = "no nodes available to schedule pods"


def num_feasible_nodes_to_find(percentage: int | None, num_all_nodes: int) -> int:
    """How many feasible nodes to find before scoring (upstream numFeasibleNodesToFind)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    adaptive = percentage or 0
    if adaptive >= 100:
        return num_all_nodes
    if adaptive <= 0:
        adaptive = BASE_PERCENTAGE_OF_NODES_TO_SCORE - num_all_nodes // 125
        adaptive = max(adaptive, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    num = num_all_nodes * adaptive // 100
    return max(num, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass
class Diagnosis:
    """Why nodes were rejected; statuses are built lazily from the rejecting filter."""

    state: ClusterState
    cycle: CycleState
    pod: PodInfo
    num_all_nodes: int
    rejected: list[tuple[FilterPlugin, IndexArray]] = field(default_factory=list)
    absent: tuple[IndexArray, Status] | None = None
    pre_filter_status: Status | None = None
    # The nodes considered (None: every node of the state), which a PreFilter rejection covers.
    nodes: IndexArray | None = None
    # Nodes whose filters passed but not with the pods nominated there counted (their status
    # was computed while those pods were counted, so it is kept rather than explained later).
    explicit: dict[int, Status] = field(default_factory=dict)
    post_filter_message: str = ""
    # The candidates the scan reached before it stopped (percentageOfNodesToScore), None when
    # it went through all of them: upstream's diagnosis only holds the nodes it filtered.
    walked: IndexArray | None = None
    _statuses: dict[str, Status] | None = None

    def node_statuses(self) -> dict[str, Status]:
        """Node name -> rejection status, for every node that was rejected."""
        if self._statuses is None:
            out: dict[str, Status] = {}
            names = self.state.names
            if self.pre_filter_status is not None:
                nodes = self.state.node_indices() if self.nodes is None else self.nodes
                for idx in nodes:
                    out[names[idx]] = self.pre_filter_status
            if self.absent is not None:
                nodes, status = self.absent
                for idx in nodes:
                    out[names[idx]] = status
            for plugin, nodes in self.rejected:
                for idx in nodes:
                    out[names[idx]] = plugin.explain(self.cycle, self.pod, int(idx)).with_plugin(
                        plugin.name
                    )
            for idx, status in self.explicit.items():
                out[names[idx]] = status
            self._statuses = out
        return self._statuses

    def walked_statuses(self) -> dict[str, Status]:
        """node_statuses() of the nodes the scan reached, and of those outside a PreFilter
        result (rejected before the scan): what upstream reports of a placed pod whose scan
        stopped early."""
        statuses = self.node_statuses()
        if self.walked is None:
            return statuses
        names = self.state.names
        reached = {names[int(i)] for i in self.walked}
        if self.absent is not None:
            reached.update(names[int(i)] for i in self.absent[0])
        return {node: status for node, status in statuses.items() if node in reached}

    def unschedulable_plugins(self) -> set[str]:
        plugins = {p.name for p, nodes in self.rejected if len(nodes)}
        if self.pre_filter_status is not None:
            plugins.add(self.pre_filter_status.plugin)
        if self.absent is not None:
            plugins.add(self.absent[1].plugin)
        plugins.update(s.plugin for s in self.explicit.values())
        return plugins


class FitError(Exception):
    """The pod fits on no node; str() is upstream's FailedScheduling message."""

    def __init__(
        self, *, pod: PodInfo, diagnosis: Diagnosis, post_filter: PostFilterResult | None = None
    ) -> None:
        self.pod = pod
        self.diagnosis = diagnosis
        # What PostFilter (preemption) proposed: a node to nominate and the victims to evict
        # there; nominated_node "" asks to clear an earlier nomination; None changes nothing.
        self.post_filter = post_filter
        super().__init__(self.message)

    @property
    def nominated_node(self) -> str:
        return self.post_filter.nominated_node if self.post_filter is not None else ""

    @property
    def victims(self) -> tuple[PodInfo, ...]:
        return self.post_filter.victims if self.post_filter is not None else ()

    @property
    def message(self) -> str:
        d = self.diagnosis
        if d.num_all_nodes == 0:
            return NO_NODES_AVAILABLE
        msg = f"0/{d.num_all_nodes} nodes are available:"
        if d.pre_filter_status is not None:
            msg += f" {d.pre_filter_status.message}."
        else:
            histogram: Counter[str] = Counter()
            for status in d.node_statuses().values():
                histogram.update(status.reasons)
            reasons = sorted(f"{count} {reason}" for reason, count in histogram.items())
            if reasons:
                msg += f" {', '.join(reasons)}."
        if d.post_filter_message:
            msg += f" {d.post_filter_message}"
        return msg


@dataclass
class ScheduleResult:
    node: str
    diagnosis: Diagnosis
    cycle: CycleState
    # The scored slots and their weighted totals; `scores` names them on demand, since the live
    # loop never reads them (a 500-entry dict per decision was ~15% of its decision time).
    scored: IndexArray | None = None
    totals: IntArray | None = None
    # Each plugin's (unweighted, normalised) scores of the scored slots, kept when explaining;
    # `plugin_scores` names them on demand (every node's, 1.5 ms a decision at 2,000 nodes).
    per_plugin: dict[str, IntArray] = field(default_factory=dict)

    @property
    def plugin_scores(self) -> dict[str, dict[str, int]]:
        """Every plugin's score of every scored node, by plugin and node name."""
        return self.plugin_scores_of(None)

    def plugin_scores_of(self, nodes: Collection[str] | None) -> dict[str, dict[str, int]]:
        """Every plugin's score of the scored nodes among `nodes` (None: all of them)."""
        if self.scored is None or not self.per_plugin:
            return {}
        names = self.diagnosis.state.names
        slots = self.scored.tolist()
        picked = [(k, names[i]) for k, i in enumerate(slots) if nodes is None or names[i] in nodes]
        out: dict[str, dict[str, int]] = {}
        for plugin, scores in self.per_plugin.items():
            values = scores.tolist()
            out[plugin] = {name: values[k] for k, name in picked}
        return out

    @property
    def scores(self) -> dict[str, int]:
        """The final weighted score of every scored node, by node name (read it before the
        cluster's node set changes: slots are named from the current state)."""
        if self.scored is None or self.totals is None:
            return {}
        names = self.diagnosis.state.names
        return {
            names[i]: s for i, s in zip(self.scored.tolist(), self.totals.tolist(), strict=True)
        }


class Scheduler:
    """Runs decisions for one framework; keeps the scan position between decisions."""

    def __init__(self, *, framework: Framework, rng: random.Random | None = None) -> None:
        self.framework = framework
        self.rng = rng or framework.handle.rng
        self.next_start_index = 0
        # the share of the nodes the last windowed walk found feasible, per kind of pod (the
        # filters its PreFilter left to run, and whether a PreFilter result narrowed the
        # nodes): sizes the next walk's first window. Pods with claims fit far fewer nodes
        # than the pods between them.
        self._feasible_share: dict[tuple[frozenset[str], bool], float] = {}

    # filter a window of the scan order at a time (False: every candidate, then take K)
    windowed = True

    @property
    def state(self) -> ClusterState:
        return self.framework.handle.state

    def schedule(self, pod: PodInfo, *, explain_scores: bool = False) -> ScheduleResult:
        """Pick a node for `pod` or raise FitError (or FrameworkError for a broken plugin)."""
        fwk = self.framework
        state = self.state
        cycle = CycleState()
        all_nodes = state.node_indices()
        diagnosis = Diagnosis(state=state, cycle=cycle, pod=pod, num_all_nodes=len(all_nodes))
        if not len(all_nodes):
            raise FitError(pod=pod, diagnosis=diagnosis)
        allowed, status, restricting = fwk.run_pre_filter(cycle, pod)
        if not status.ok:
            diagnosis.pre_filter_status = status
            raise self._fit_error(cycle, pod, diagnosis)
        nominated_node = pod.nominated_node or fwk.handle.ports.nominator.node_of(pod.key) or ""
        if nominated_node and nominated_node in state.index:
            # upstream evaluates the nominated node (set by preemption) first, and alone if it fits.
            nominated = np.array([state.index[nominated_node]], dtype=np.intp)
            if allowed is None or nominated_node in allowed:
                fits, _ = fwk.run_filters(cycle, pod, nominated)
                if len(fits):
                    fits = self._yield_to_nominated(pod, fits, diagnosis)
                    diagnosis.explicit.clear()  # the full pass below decides what to report
                if len(fits):
                    return ScheduleResult(
                        node=nominated_node,
                        diagnosis=diagnosis,
                        cycle=cycle,
                    )
        feasible = self._scan(cycle, pod, all_nodes, allowed, restricting, diagnosis)
        if not len(feasible):
            raise self._fit_error(cycle, pod, diagnosis)
        if len(feasible) == 1 and not explain_scores:
            return ScheduleResult(
                node=state.names[int(feasible[0])],
                diagnosis=diagnosis,
                cycle=cycle,
            )
        fwk.run_pre_score(cycle, pod, feasible)
        total, per_plugin = fwk.run_score(cycle, pod, feasible)
        chosen = self._select_host(feasible, total)
        return ScheduleResult(
            node=state.names[chosen],
            diagnosis=diagnosis,
            cycle=cycle,
            scored=feasible,
            totals=total,
            per_plugin=per_plugin if explain_scores else {},
        )

    def find_feasible(self, pod: PodInfo, nodes: IndexArray) -> tuple[IndexArray, Diagnosis]:
        """PreFilter, Filter and the nominated pods' check over exactly `nodes` (the extender's:
        every node kube-scheduler sent, no scan limit, no nominated-node shortcut, no
        PostFilter): the feasible slots, and the diagnosis of the others."""
        fwk = self.framework
        state = self.state
        cycle = CycleState()
        diagnosis = Diagnosis(
            state=state, cycle=cycle, pod=pod, num_all_nodes=len(nodes), nodes=nodes
        )
        allowed, status, restricting = fwk.run_pre_filter(cycle, pod)
        if not status.ok:
            diagnosis.pre_filter_status = status
            return nodes[:0], diagnosis
        feasible, _ = self._fitting(cycle, pod, nodes, allowed, restricting, diagnosis)
        return feasible, diagnosis

    def prioritize(self, pod: PodInfo, nodes: IndexArray) -> tuple[IntArray, int]:
        """PreScore and Score over exactly `nodes` (after PreFilter, whose cycle state some
        scores read): the weighted totals, and the highest total there could be (100 times the
        weights of the plugins that scored)."""
        fwk = self.framework
        cycle = CycleState()
        fwk.run_pre_filter(cycle, pod)
        fwk.run_pre_score(cycle, pod, nodes)
        total, _ = fwk.run_score(cycle, pod, nodes)
        best = MAX_NODE_SCORE * sum(w for p, w in fwk.score if p.name not in cycle.skip_score)
        return total, best

    def _candidates(
        self,
        nodes: IndexArray,
        allowed: frozenset[str] | None,
        restricting: list[str],
        diagnosis: Diagnosis,
    ) -> IndexArray:
        """`nodes` within the PreFilter result (all of them without one); those outside it
        go in the diagnosis."""
        if allowed is None:
            return nodes
        names = self.state.names
        mask = np.fromiter((names[i] in allowed for i in nodes), dtype=bool, count=len(nodes))
        diagnosis.absent = (nodes[~mask], outside_pre_filter_result(restricting))
        inside: IndexArray = nodes[mask]
        return inside

    def _fitting(
        self,
        cycle: CycleState,
        pod: PodInfo,
        nodes: IndexArray,
        allowed: frozenset[str] | None,
        restricting: list[str],
        diagnosis: Diagnosis,
    ) -> tuple[IndexArray, IndexArray]:
        """upstream findNodesThatPassFilters over `nodes` after PreFilter, then the nominated
        pods' check: the feasible slots and the candidates (the PreFilter result's nodes)."""
        candidates = self._candidates(nodes, allowed, restricting, diagnosis)
        return self._filter_all(cycle, pod, candidates, diagnosis), candidates

    def _filter_all(
        self, cycle: CycleState, pod: PodInfo, candidates: IndexArray, diagnosis: Diagnosis
    ) -> IndexArray:
        """Every filter over every candidate, then the nominated pods' check."""
        feasible, rejected = self.framework.run_filters(cycle, pod, candidates)
        diagnosis.rejected = rejected
        return self._yield_to_nominated(pod, feasible, diagnosis)

    def _scan(
        self,
        cycle: CycleState,
        pod: PodInfo,
        nodes: IndexArray,
        allowed: frozenset[str] | None,
        restricting: list[str],
        diagnosis: Diagnosis,
    ) -> IndexArray:
        """upstream findNodesThatPassFilters' walk: the first K feasible candidates in scan
        order from `next_start_index`, which it advances by the nodes processed.

        When K is well below the candidates, the filters run over the rotated scan order a
        window at a time, sized from the share of nodes found feasible (by the last walk for
        the same kind of pod, then by this one so far; each window at least twice the last),
        and stop once feasible node K+1 is found (at 5,000 nodes K is 500: filtering every
        node was a third of a decision). Same result as filtering them all and taking K
        (`_take_feasible`).
        """
        candidates = self._candidates(nodes, allowed, restricting, diagnosis)
        n = len(candidates)
        k = num_feasible_nodes_to_find(self.framework.percentage_of_nodes_to_score, n)
        if not self.framework.score:
            k = 1
        if not self.windowed or n < 2 * MIN_WINDOW or 2 * (k + 1) > n:
            feasible = self._filter_all(cycle, pod, candidates, diagnosis)
            return self._take_feasible(feasible, candidates, len(nodes), diagnosis)
        start = self.next_start_index % n
        order = np.concatenate((candidates[start:], candidates[:start])) if start else candidates
        found: list[IndexArray] = []
        count = 0
        pos = 0
        processed = n
        kind = (frozenset(cycle.skip_filter), allowed is not None)
        share = self._feasible_share.get(kind, 1.0)
        size = 0
        while pos < n:
            want = k + 1 - count
            if pos:  # the share this walk has seen so far; at least double the last window
                share = max(count, 1) / pos
            size = max(MIN_WINDOW, 2 * size, int(want / share * 1.1) + 16)
            part = order[pos : pos + size]
            feasible, rejected = self.framework.run_filters(cycle, pod, part)
            diagnosis.rejected.extend(rejected)
            feasible = self._yield_to_nominated(pod, feasible, diagnosis)
            if len(feasible) >= want:
                # feasible node K+1 stops the walk; it and the nodes after it are not processed
                processed = pos + int(np.flatnonzero(part == feasible[want - 1])[0])
                found.append(feasible[: want - 1])
                count = k
                break
            found.append(feasible)
            count += len(feasible)
            pos += len(part)
        if len(self._feasible_share) >= MAX_POD_KINDS and kind not in self._feasible_share:
            self._feasible_share.clear()
        self._feasible_share[kind] = min(1.0, max(count, 1) / max(processed, 1))
        feasible = found[0] if len(found) == 1 else np.concatenate(found)
        if processed < n:
            diagnosis.walked = order[:processed]
        self.next_start_index = (self.next_start_index + processed) % len(nodes)
        return feasible

    def _yield_to_nominated(
        self, pod: PodInfo, feasible: IndexArray, diagnosis: Diagnosis
    ) -> IndexArray:
        """Drop feasible nodes where `pod` no longer fits once the pods nominated there with
        equal or higher priority are counted (upstream RunFilterPluginsWithNominatedPods, run
        only for the few nodes that have such pods; the pass without them is the one above)."""
        fwk = self.framework
        nominator = fwk.handle.ports.nominator
        if not len(nominator) or not len(feasible):
            return feasible
        state = self.state
        drop: list[int] = []
        alive = set(feasible.tolist())
        for name in nominator.nodes():
            idx = state.index.get(name)
            if idx is None or idx not in alive:
                continue
            pods = fwk.nominated_pods_for(pod, idx)
            if not pods:
                continue
            status = fwk.run_filters_with(pods, pod, idx)
            if not status.ok:
                diagnosis.explicit[idx] = status
                drop.append(idx)
        if not drop:
            return feasible
        return feasible[~np.isin(feasible, np.array(drop, dtype=np.intp))]

    def _fit_error(self, cycle: CycleState, pod: PodInfo, diagnosis: Diagnosis) -> FitError:
        """The FitError for `pod`, after running PostFilter (preemption) as upstream's
        schedulingCycle does; its message goes after the filters' reasons."""
        fwk = self.framework
        result: PostFilterResult | None = None
        if fwk.post_filter:
            result, status = fwk.run_post_filter(cycle, pod, diagnosis)
            diagnosis.post_filter_message = status.message
        return FitError(pod=pod, diagnosis=diagnosis, post_filter=result)

    def _take_feasible(
        self,
        feasible: IndexArray,
        candidates: IndexArray,
        num_all_nodes: int,
        diagnosis: Diagnosis | None = None,
    ) -> IndexArray:
        """The first K feasible nodes in scan order from `next_start_index` (and advance it)."""
        n = len(candidates)
        if not n or not len(feasible):
            self.next_start_index = (self.next_start_index + n) % max(num_all_nodes, 1)
            return feasible
        k = num_feasible_nodes_to_find(self.framework.percentage_of_nodes_to_score, n)
        if not self.framework.score:
            k = 1  # nothing to compare: the first feasible node is as good as any
        start = self.next_start_index % n
        # `feasible` is a subsequence of `candidates` (filters keep their input's order, the
        # scan order), so its positions there come from a mask, ascending; the rotated scan is
        # those from the start position on, then those before it: a split, not a sort.
        is_feasible = np.zeros(int(candidates.max()) + 1, dtype=bool)
        is_feasible[feasible] = True
        positions = np.flatnonzero(is_feasible[candidates])
        cut = int(np.searchsorted(positions, start))
        if cut:
            positions = np.concatenate((positions[cut:], positions[:cut]))
            feasible = candidates[positions]
        if len(feasible) > k:
            # upstream stops the walk when it meets feasible node k+1 and counts the nodes it
            # processed before it (feasible and rejected), which is where the next walk starts.
            processed = (int(positions[k]) - start) % n
            feasible = feasible[:k]
            if diagnosis is not None:
                diagnosis.walked = candidates[(start + np.arange(processed)) % n]
        else:
            processed = n
        self.next_start_index = (self.next_start_index + processed) % num_all_nodes
        return feasible

    def _select_host(self, nodes: IndexArray, total: IntArray) -> int:
        """Highest total score; ties broken uniformly at random (upstream's reservoir sampling)."""
        best = total.max()
        ties = np.flatnonzero(total == best)
        pick = ties[0] if len(ties) == 1 else ties[self.rng.randrange(len(ties))]
        return int(nodes[pick])


__all__ = ["Code", "Diagnosis", "FitError", "ScheduleResult", "Scheduler", "Status"]
