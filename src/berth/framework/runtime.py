"""A profile's framework: its plugins per extension point, score weights, and how they run.

Built from one configured profile (after upstream's plugin-set merge and multiPoint expansion,
see `berth.config.plugins`). Running a point follows upstream's framework runtime: PreFilter
results are intersected, Filter stops at a node's first rejection, Score plugins are normalised to
[0, 100] and weighted.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np

from berth.framework.plugin import (
    MAX_NODE_SCORE,
    MIN_NODE_SCORE,
    BindPlugin,
    CycleState,
    FilterPlugin,
    Handle,
    PermitPlugin,
    PostFilterPlugin,
    PostFilterResult,
    PreBindPlugin,
    PreEnqueuePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    QueueSortPlugin,
    ReservePlugin,
    ScorePlugin,
)
from berth.framework.status import SKIP, SUCCESS, Code, Status, error, unresolvable, unschedulable
from berth.framework.waiting import WaitingPod
from berth.objects.pod import PodInfo
from berth.state.cluster import IndexArray, IntArray
from berth.state.whatif import what_if


class FrameworkError(RuntimeError):
    """A plugin broke its contract (an Error status, or a score outside [0, 100])."""


def outside_pre_filter_result(plugins: Iterable[str]) -> Status:
    """The status of a node outside the PreFilter results of `plugins` (upstream
    findNodesThatFitPod: "node(s) didn't satisfy plugin(s) [A B]")."""
    names = sorted(plugins)
    return unresolvable(f"node(s) didn't satisfy plugin(s) [{' '.join(names)}]", plugin=names[0])


# (extension point, upstream's status code name, seconds): upstream's
# scheduler_framework_extension_point_duration_seconds, fed by `berth run`
Observer = Callable[[str, str, float], None]
P = ParamSpec("P")
R = TypeVar("R")


def _status_of(out: Any) -> Status | None:
    if isinstance(out, Status):
        return out
    if isinstance(out, tuple):
        return next((x for x in out if isinstance(x, Status)), None)
    return None


def _timed(
    point: str,
) -> Callable[[Callable[Concatenate[Framework, P], R]], Callable[Concatenate[Framework, P], R]]:
    """Time one extension point for `Framework.observe` (None: nothing is measured)."""

    def wrap(run: Callable[Concatenate[Framework, P], R]) -> Callable[Concatenate[Framework, P], R]:
        @functools.wraps(run)
        def timed(self: Framework, /, *args: P.args, **kwargs: P.kwargs) -> R:
            observe = self.observe
            if observe is None:
                return run(self, *args, **kwargs)
            start = time.perf_counter()
            try:
                out = run(self, *args, **kwargs)
            except FrameworkError:
                observe(point, str(Code.ERROR), time.perf_counter() - start)
                raise
            status = _status_of(out)
            observe(
                point, str(status.code if status else Code.SUCCESS), time.perf_counter() - start
            )
            return out

        return timed

    return wrap


def _timed_async(
    point: str,
) -> Callable[
    [Callable[Concatenate[Framework, P], Awaitable[Status]]],
    Callable[Concatenate[Framework, P], Awaitable[Status]],
]:
    def wrap(
        run: Callable[Concatenate[Framework, P], Awaitable[Status]],
    ) -> Callable[Concatenate[Framework, P], Awaitable[Status]]:
        @functools.wraps(run)
        async def timed(self: Framework, /, *args: P.args, **kwargs: P.kwargs) -> Status:
            start = time.perf_counter()
            status = await run(self, *args, **kwargs)
            if self.observe is not None:
                self.observe(point, str(status.code), time.perf_counter() - start)
            return status

        return timed

    return wrap


@dataclass
class Framework:
    scheduler_name: str
    handle: Handle
    pre_enqueue: list[PreEnqueuePlugin] = field(default_factory=list)
    pre_filter: list[PreFilterPlugin] = field(default_factory=list)
    filter: list[FilterPlugin] = field(default_factory=list)
    post_filter: list[PostFilterPlugin] = field(default_factory=list)
    pre_score: list[PreScorePlugin] = field(default_factory=list)
    score: list[tuple[ScorePlugin, int]] = field(default_factory=list)
    reserve: list[ReservePlugin] = field(default_factory=list)
    permit: list[PermitPlugin] = field(default_factory=list)
    pre_bind: list[PreBindPlugin] = field(default_factory=list)
    bind: list[BindPlugin] = field(default_factory=list)
    percentage_of_nodes_to_score: int | None = None
    # The profile's QueueSort plugin (Coscheduling), None for upstream's PrioritySort.
    queue_sort: QueueSortPlugin | None = None
    observe: Observer | None = None

    # ----- PreEnqueue --------------------------------------------------------------------------
    def run_pre_enqueue(self, pod: PodInfo) -> Status:
        """upstream runPreEnqueuePlugins: Success, or the first rejection (with its plugin); the
        queue keeps a rejected pod out of the active queue. An Error status gates the pod too
        (upstream logs it and keeps the pod gated), so it is returned, not raised."""
        for plugin in self.pre_enqueue:
            status = plugin.pre_enqueue(pod)
            if not status.ok:
                return status.with_plugin(plugin.name)
        return SUCCESS

    # ----- PreFilter ---------------------------------------------------------------------------
    @_timed("PreFilter")
    def run_pre_filter(
        self, cycle: CycleState, pod: PodInfo
    ) -> tuple[frozenset[str] | None, Status, list[str]]:
        """Allowed node names (None: all), the status, and the plugins that restricted nodes."""
        return self._run_pre_filter(cycle, pod)

    def _run_pre_filter(
        self, cycle: CycleState, pod: PodInfo
    ) -> tuple[frozenset[str] | None, Status, list[str]]:
        allowed: frozenset[str] | None = None
        restricting: list[str] = []
        rejected: Status | None = None
        for plugin in self.pre_filter:
            result, status = plugin.pre_filter(cycle, pod)
            if status.is_skip:
                cycle.skip_filter.add(plugin.name)
                continue
            if status.code == Code.ERROR:
                raise FrameworkError(f"running PreFilter plugin {plugin.name!r}: {status.message}")
            if status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return None, status.with_plugin(plugin.name), restricting
            if not status.ok:
                # upstream keeps running the other PreFilters and reports this at the end.
                rejected = rejected or status.with_plugin(plugin.name)
                continue
            if result is not None:
                restricting.append(plugin.name)
                allowed = result.node_names if allowed is None else allowed & result.node_names
                if not allowed:
                    names = sorted(restricting)
                    msg = (
                        f"node(s) didn't satisfy plugin {names[0]}"
                        if len(names) == 1
                        else f"node(s) didn't satisfy plugin(s) [{' '.join(names)}] simultaneously"
                    )
                    return None, unresolvable(msg, plugin=plugin.name), restricting
        if rejected is not None:
            return None, rejected, restricting
        return allowed, SUCCESS, restricting

    # ----- Filter ------------------------------------------------------------------------------
    def run_filters(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray
    ) -> tuple[IndexArray, list[tuple[FilterPlugin, IndexArray]]]:
        """Feasible slots, and for each filter the slots it was first to reject."""
        rejected: list[tuple[FilterPlugin, IndexArray]] = []
        alive = nodes
        for plugin in self.filter:
            if not len(alive):
                break
            if plugin.name in cycle.skip_filter:
                continue
            ok = plugin.filter(cycle, pod, alive)
            if not ok.all():
                rejected.append((plugin, alive[~ok]))
                alive = alive[ok]
        return alive, rejected

    # ----- one node, from scratch (preemption, nominated pods) ---------------------------------
    def run_filters_on_node(self, pod: PodInfo, node: int) -> Status:
        """PreFilter + Filter for one node slot on the current state, with a fresh CycleState.

        Berth's plugins keep no incremental PreFilter state (upstream's AddPod/RemovePod
        extensions), so after the state changed (victims removed, nominated pods added) the
        whole PreFilter runs again; callers keep this to the few nodes that need it.
        """
        cycle = CycleState()
        # unmeasured: these re-runs (preemption, nominated pods) are not the cycle's PreFilter
        allowed, status, restricting = self._run_pre_filter(cycle, pod)
        if not status.ok:
            return status
        name = self.handle.state.names[node]
        if allowed is not None and name not in allowed:
            return outside_pre_filter_result(restricting)
        alive, rejected = self.run_filters(cycle, pod, np.array([node], dtype=np.intp))
        if len(alive):
            return SUCCESS
        plugin, _ = rejected[-1]
        return plugin.explain(cycle, pod, node).with_plugin(plugin.name)

    def nominated_pods_for(self, pod: PodInfo, node: int) -> list[PodInfo]:
        """Pods nominated to `node` that `pod` must yield to: equal or higher priority, not
        `pod` itself, not placed anywhere yet (upstream addNominatedPods)."""
        nominator = self.handle.ports.nominator
        if not len(nominator):
            return []
        state = self.handle.state
        return [
            p
            for p in nominator.pods_for_node(state.names[node])
            if p.priority >= pod.priority and p.key != pod.key and state.node_of(p.key) is None
        ]

    def run_filters_with_nominated(self, pod: PodInfo, node: int) -> Status:
        """upstream RunFilterPluginsWithNominatedPods for one node: first with the nominated pods
        of equal or higher priority counted on the node, then (if that passed and any were
        added) without them, so affinity to them cannot be what makes the pod fit."""
        nominated = self.nominated_pods_for(pod, node)
        if nominated:
            status = self.run_filters_with(nominated, pod, node)
            if not status.ok:
                return status
        return self.run_filters_on_node(pod, node)

    def run_filters_with(self, pods: list[PodInfo], pod: PodInfo, node: int) -> Status:
        """run_filters_on_node with `pods` (placed nowhere) counted on the node meanwhile."""
        state = self.handle.state
        with what_if(state) as hypothesis:
            for p in pods:
                hypothesis.add(p, state.names[node])
            return self.run_filters_on_node(pod, node)

    # ----- PostFilter --------------------------------------------------------------------------
    @_timed("PostFilter")
    def run_post_filter(
        self, cycle: CycleState, pod: PodInfo, diagnosis: Any
    ) -> tuple[PostFilterResult | None, Status]:
        """upstream RunPostFilterPlugins: stop at the first Success, Error or
        UnschedulableAndUnresolvable; otherwise run all and merge their reasons."""
        result: PostFilterResult | None = None
        reasons: list[str] = []
        rejector = ""
        for plugin in self.post_filter:
            r, s = plugin.post_filter(cycle, pod, diagnosis)
            if s.ok:
                return r, s.with_plugin(plugin.name)
            if s.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return r, s.with_plugin(plugin.name)
            if not s.is_rejected:
                return None, error(*s.reasons, plugin=plugin.name)
            if r is not None:
                result = r
            reasons.extend(s.reasons)
            rejector = rejector or plugin.name
        return result, unschedulable(*reasons, plugin=rejector)

    # ----- Score -------------------------------------------------------------------------------
    @_timed("PreScore")
    def run_pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> None:
        for plugin in self.pre_score:
            status = plugin.pre_score(cycle, pod, nodes)
            if status.is_skip:
                cycle.skip_score.add(plugin.name)
            elif not status.ok:
                raise FrameworkError(f"running PreScore plugin {plugin.name!r}: {status.message}")

    @_timed("Score")
    def run_score(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray
    ) -> tuple[IntArray, dict[str, IntArray]]:
        """The weighted total per node and each plugin's normalised (unweighted) scores."""
        total = np.zeros(len(nodes), dtype=np.int64)
        per_plugin: dict[str, IntArray] = {}
        for plugin, weight in self.score:
            if plugin.name in cycle.skip_score:
                continue
            raw = plugin.score(cycle, pod, nodes)
            scores = plugin.normalize(cycle, pod, nodes, raw)
            if len(scores) and (scores.min() < MIN_NODE_SCORE or scores.max() > MAX_NODE_SCORE):
                bad = scores[(scores < MIN_NODE_SCORE) | (scores > MAX_NODE_SCORE)][0]
                raise FrameworkError(
                    f"plugin {plugin.name!r} returns an invalid score {bad}, it should in the "
                    f"range of [{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing"
                )
            per_plugin[plugin.name] = scores
            total += scores * weight
        return total, per_plugin

    # ----- Reserve / Permit / Bind -------------------------------------------------------------
    @_timed("Reserve")
    def run_reserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        for i, plugin in enumerate(self.reserve):
            status = plugin.reserve(cycle, pod, node_name)
            if not status.ok:
                for done in reversed(self.reserve[: i + 1]):
                    done.unreserve(cycle, pod, node_name)
                return status.with_plugin(plugin.name)
        return SUCCESS

    @_timed("Unreserve")
    def run_unreserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> None:
        for plugin in reversed(self.reserve):
            plugin.unreserve(cycle, pod, node_name)

    @_timed("Permit")
    def run_permit(self, cycle: CycleState, pod: PodInfo, node_name: str) -> tuple[Status, float]:
        """Success, or Wait with the shortest timeout any plugin asked for, or a rejection.

        On Wait the pod is registered in the waiting-pods port (upstream RunPermitPlugins adds
        a waitingPod with one timer per waiting plugin); the binding cycle keeps it assumed and
        binds it only once every waiting plugin allowed it, or unreserves it on rejection or
        timeout.
        """
        waits: dict[str, float] = {}
        for plugin in self.permit:
            status, timeout = plugin.permit(cycle, pod, node_name)
            if status.code == Code.WAIT:
                waits[plugin.name] = timeout
            elif not status.ok:
                return status.with_plugin(plugin.name), 0.0
        if waits:
            self.handle.ports.waiting_pods.add(
                WaitingPod(pod=pod, node=node_name, cycle=cycle, pending=waits)
            )
            return Status(Code.WAIT), min(waits.values())
        return SUCCESS, 0.0

    def waiting_pod(self, key: str) -> WaitingPod | None:
        return self.handle.ports.waiting_pods.get(key)

    @_timed_async("PreBind")
    async def run_pre_bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        """upstream RunPreBindPlugins: stop at the first plugin that does not succeed (Skip
        counts as success); its status fails the binding cycle."""
        for plugin in self.pre_bind:
            status = await plugin.pre_bind(cycle, pod, node_name)
            if not status.ok and not status.is_skip:
                return status.with_plugin(plugin.name)
        return SUCCESS

    @_timed_async("Bind")
    async def run_bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        for plugin in self.bind:
            status = await plugin.bind(cycle, pod, node_name)
            if status.is_skip:
                continue
            return status.with_plugin(plugin.name)
        return error("no bind plugin bound the pod")

    def plugin_names(self) -> dict[str, list[str]]:
        """Enabled plugins per extension point, in run order (for `berth simulate` and docs)."""
        return {
            "preEnqueue": [p.name for p in self.pre_enqueue],
            "preFilter": [p.name for p in self.pre_filter],
            "filter": [p.name for p in self.filter],
            "postFilter": [p.name for p in self.post_filter],
            "preScore": [p.name for p in self.pre_score],
            "score": [f"{p.name}:{w}" for p, w in self.score],
            "reserve": [p.name for p in self.reserve],
            "permit": [p.name for p in self.permit],
            "preBind": [p.name for p in self.pre_bind],
            "bind": [p.name for p in self.bind],
        }


__all__ = ["SKIP", "Framework", "FrameworkError"]
