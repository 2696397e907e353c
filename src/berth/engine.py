"""The engine every front shares: cluster state plus one framework per configured profile.

Fronts (the live scheduler, the extender, the simulator) only adapt input and output; they all
build an Engine from the same configuration, so a plugin is written once and behaves the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any, cast

from berth.config.loader import Config, parse_config
from berth.config.plugins import ResolvedProfile
from berth.framework.algorithm import Scheduler
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
    ReservePlugin,
    ScorePlugin,
)
from berth.framework.ports import Ports
from berth.framework.runtime import Framework
from berth.metrics.refresher import Refresher
from berth.plugins.registry import registry
from berth.state.cluster import ClusterState


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
    )
    for plugin in instances.values():
        plugin.framework = fwk
    return fwk


class Engine:
    """Cluster state, the ports and a Scheduler per profile (keyed by schedulerName)."""

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

    def scheduler_for(self, scheduler_name: str) -> Scheduler | None:
        return self.schedulers.get(scheduler_name)

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

    def schedules(self, raw_pod: dict[str, Any]) -> bool:
        """Is the pod one of this engine's (its schedulerName names a profile)?"""
        spec = raw_pod.get("spec")
        name = spec.get("schedulerName") if isinstance(spec, dict) else None
        return (name or "default-scheduler") in self.schedulers
