"""The engine every front shares: cluster state plus one framework per configured profile.

Fronts (the live scheduler, the extender, the simulator) only adapt input and output; they all
build an Engine from the same configuration, so a plugin is written once and behaves the same.
"""

from __future__ import annotations

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
from berth.framework.runtime import Framework
from berth.plugins.dynamicresources import DRA_SERVICE
from berth.plugins.podtopologyspread import DEFAULT_SELECTOR_SERVICE
from berth.plugins.registry import registry
from berth.plugins.storagehelpers import VOLUMES_SERVICE
from berth.state.cluster import ClusterState
from berth.state.dra import DRAIndex
from berth.state.volumes import VolumeIndex
from berth.state.workloads import WorkloadIndex


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
    """Cluster state and a Scheduler per profile (keyed by schedulerName)."""

    def __init__(
        self,
        *,
        config: Config | None = None,
        state: ClusterState | None = None,
        seed: int | None = None,
        services: dict[str, Any] | None = None,
    ) -> None:
        self.config = config or parse_config({})
        self.state = state or ClusterState()
        self.rng = random.Random(seed)
        self.workloads = WorkloadIndex()
        self.volumes = VolumeIndex()
        self.dra = DRAIndex()
        merged = {
            DEFAULT_SELECTOR_SERVICE: self.workloads.default_selector,
            VOLUMES_SERVICE: self.volumes,
            DRA_SERVICE: self.dra,
            **(services or {}),
        }
        self.handle = Handle(state=self.state, rng=self.rng, services=merged)
        self.schedulers: dict[str, Scheduler] = {
            name: Scheduler(framework=build_framework(resolved, self.handle), rng=self.rng)
            for name, resolved in self.config.profiles.items()
        }

    def scheduler_for(self, scheduler_name: str) -> Scheduler | None:
        return self.schedulers.get(scheduler_name)
