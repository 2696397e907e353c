"""The engine every front shares: the cluster state, the ports, one framework per profile, and
the cycle.

Fronts (`berth run`, the extender, the simulator, the benchmark) only adapt input and output:
they feed objects in (`berth.feed`), call `schedule` and `bind`, and say what the outcomes mean
to them. They all build an Engine from the same configuration, so a plugin is written once and
behaves the same everywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import random
from collections.abc import Callable
from typing import Any, cast

from berth.config.loader import Config, parse_config
from berth.config.plugins import ResolvedProfile
from berth.framework.algorithm import Scheduler
from berth.framework.cycle import (
    BindingOutcome,
    Reserved,
    SchedulingOutcome,
    binding_cycle,
    scheduling_cycle,
)
from berth.framework.events import Registrations, collect_registrations
from berth.framework.plugin import (
    BindPlugin,
    FilterPlugin,
    Handle,
    PermitPlugin,
    Plugin,
    PostFilterPlugin,
    PreBindPlugin,
    PreEnqueuePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    QueueSortPlugin,
    ReservePlugin,
    ScorePlugin,
)
from berth.framework.ports import Ports
from berth.framework.runtime import Framework
from berth.framework.status import SUCCESS, Status
from berth.logthrottle import Throttle
from berth.metrics.refresher import Refresher
from berth.objects.pod import PodInfo
from berth.plugins.registry import registry
from berth.state.cluster import ClusterState

log = logging.getLogger("berth.engine")


def build_framework(resolved: ResolvedProfile, handle: Handle) -> Framework:
    """Instantiate a profile's plugins once each and place them at their extension points."""
    known = registry()
    instances: dict[str, Plugin] = {}
    for names in resolved.points.values():
        for name in names:
            if name not in instances:
                spec = known[name]
                instances[name] = spec.cls(args=resolved.args.get(name), handle=handle)

    def at(point: str) -> list[Any]:
        return [instances[n] for n in resolved.points[point]]

    fwk = Framework(
        scheduler_name=resolved.scheduler_name,
        handle=handle,
        pre_enqueue=cast(list[PreEnqueuePlugin], at("preEnqueue")),
        pre_filter=cast(list[PreFilterPlugin], at("preFilter")),
        filter=cast(list[FilterPlugin], at("filter")),
        post_filter=cast(list[PostFilterPlugin], at("postFilter")),
        pre_score=cast(list[PreScorePlugin], at("preScore")),
        score=[
            (cast(ScorePlugin, instances[n]), resolved.weights.get(n, 1))
            for n in resolved.points["score"]
        ],
        reserve=cast(list[ReservePlugin], at("reserve")),
        permit=cast(list[PermitPlugin], at("permit")),
        pre_bind=cast(list[PreBindPlugin], at("preBind")),
        bind=cast(list[BindPlugin], at("bind")),
        percentage_of_nodes_to_score=resolved.percentage_of_nodes_to_score,
        queue_sort=next((p for p in instances.values() if isinstance(p, QueueSortPlugin)), None),
    )
    for plugin in instances.values():
        plugin.framework = fwk
    return fwk


def priority_sort(pod: PodInfo, queued_at: float) -> tuple[Any, ...]:
    """upstream PrioritySort: higher priority first, then the earlier queued."""
    return (-pod.priority, queued_at)


def scheduler_name(raw_pod: dict[str, Any]) -> str:
    """The scheduler a raw pod names (the API server's default when it names none)."""
    spec = raw_pod.get("spec")
    name = spec.get("schedulerName") if isinstance(spec, dict) else None
    return str(name) if name else "default-scheduler"


class Engine:
    """Cluster state, the ports, a Scheduler per profile (keyed by schedulerName), and the one
    scheduling and binding cycle every front runs (`berth.framework.cycle`)."""

    def __init__(
        self,
        *,
        config: Config | None = None,
        state: ClusterState | None = None,
        ports: Ports | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config or parse_config({})
        self.state = state or ClusterState()
        ports = ports or Ports()
        # The metric sources of the configuration fill MetricScore's table: in the background
        # for `berth run` and the extender (`refresher.start()`), once for simulate and bench.
        self.refresher: Refresher | None = None
        if ports.metrics is None and self.config.model.metricSources:
            self.refresher = Refresher.from_config(self.config, state=self.state)
            ports = dataclasses.replace(ports, metrics=self.refresher.table)
        self.ports = ports
        self.rng = random.Random(seed)
        self.handle = Handle(state=self.state, ports=self.ports, rng=self.rng)
        self.schedulers: dict[str, Scheduler] = {
            name: Scheduler(framework=build_framework(resolved, self.handle), rng=self.rng)
            for name, resolved in self.config.profiles.items()
        }
        # Upstream requires every profile to sort the queue alike; the first QueueSort wins.
        sorter = next(
            (s.framework.queue_sort for s in self.schedulers.values() if s.framework.queue_sort),
            None,
        )
        self.queue_order: Callable[[PodInfo, float], tuple[Any, ...]] = (
            sorter.sort_key if sorter is not None else priority_sort
        )
        self._prepare_failures = Throttle(interval=60.0)

    def scheduler_for(self, scheduler_name: str) -> Scheduler | None:
        return self.schedulers.get(scheduler_name)

    def schedules(self, raw_pod: dict[str, Any]) -> bool:
        """Is the pod one of this engine's (its schedulerName names a profile)?"""
        return scheduler_name(raw_pod) in self.schedulers

    # ----- the cycle ---------------------------------------------------------------------------
    def pre_enqueue(self, pod: PodInfo) -> Status:
        """The pod's profile's PreEnqueue plugins (SchedulingGates), before it may be tried."""
        scheduler = self.schedulers.get(pod.scheduler_name)
        if scheduler is None or not scheduler.framework.pre_enqueue:
            return SUCCESS
        return scheduler.framework.run_pre_enqueue(pod)

    def schedule(
        self, pod: PodInfo, *, explain_scores: bool = False, explain_reasons: bool | None = None
    ) -> SchedulingOutcome:
        """The scheduling cycle for a pod of one of the profiles (see `schedules`)."""
        # The cyclic collector never runs inside a cycle: a generation-2 pass that lands there
        # (over every object made since the caches were frozen) was the decision max, 12-37 ms
        # at 5,000 nodes. Disabled for the cycle, it runs at the next allocation after it.
        scheduler = self.schedulers[pod.scheduler_name]
        if not gc.isenabled():
            return scheduling_cycle(
                scheduler, pod, explain_scores=explain_scores, explain_reasons=explain_reasons
            )
        gc.disable()
        try:
            return scheduling_cycle(
                scheduler, pod, explain_scores=explain_scores, explain_reasons=explain_reasons
            )
        finally:
            gc.enable()

    def prepare(self) -> None:
        """Every plugin's set-up ahead of decisions (Plugin.prepare), between them: a front calls
        it once its caches have synced and when it has nothing to decide."""
        self.state.node_indices()  # the scan order (upstream's node tree list)
        self.state.prepare_label_columns()  # what node selectors and topology keys read
        seen: set[int] = set()
        for sch in self.schedulers.values():
            fwk = sch.framework
            for plugin in (*fwk.pre_filter, *fwk.filter, *(p for p, _ in fwk.score)):
                if id(plugin) not in seen:
                    seen.add(id(plugin))
                    try:
                        plugin.prepare()
                    except Exception:  # the decision does it itself; never stop a front here
                        # prepare runs at every idle moment: a set-up that keeps failing is
                        # logged once per interval, with the count of the lines left out
                        suppressed = self._prepare_failures.admit(plugin.name)
                        if suppressed is not None:
                            log.exception(
                                "plugin set-up failed",
                                extra={"plugin": plugin.name, "suppressed": suppressed},
                            )

    async def bind(self, reserved: Reserved) -> BindingOutcome:
        """The binding cycle of a pod the scheduling cycle reserved a node for."""
        return await binding_cycle(reserved)

    def registrations(self) -> Registrations:
        """What each plugin that can reject a pod registered (upstream builds this from the
        PreEnqueue, PreFilter, Filter, Reserve and Permit plugins of every profile)."""
        return collect_registrations(
            plugin
            for sch in self.schedulers.values()
            for point in ("pre_enqueue", "pre_filter", "filter", "reserve", "permit")
            for plugin in getattr(sch.framework, point)
        )

    def sample_metrics(self) -> list[str]:
        """One refresh of every metric source, for a front without the background loop (offline,
        the benchmark); the names of the sources that did not answer. Not on an event loop."""
        refresher = self.refresher
        if refresher is None:
            return []

        async def once() -> dict[str, bool]:
            try:
                return await refresher.refresh_once()
            finally:
                await refresher.stop()

        return [name for name, up in asyncio.run(once()).items() if not up]
