"""Extension-point interfaces and the per-decision cycle state.

Upstream's points, with one Berth twist: Filter and Score take an array of node slots and answer
for all of them at once, so a plugin can use the columnar state instead of a per-node Python loop.
`explain` is asked only for the nodes a filter rejected, and only when someone needs the reasons.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from berth.framework.events import ClusterEventWithHint
from berth.framework.ports import Ports
from berth.framework.status import SUCCESS, Status
from berth.objects.pod import PodInfo
from berth.state.cluster import BoolArray, ClusterState, IndexArray, IntArray

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


class CycleState:
    """Data a plugin computes once per pod (PreFilter/PreScore) and reads per node later."""

    __slots__ = ("_data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def read(self, key: str) -> Any:
        return self._data.get(key)


@dataclass
class Handle:
    """What plugins may reach beyond the pod (upstream framework.Handle): the cluster state, the
    engine's ports (stores, shared maps, I/O) and the random source of tie-breaks."""

    state: ClusterState
    ports: Ports = field(default_factory=Ports)
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True, slots=True)
class PreFilterResult:
    """Restricts the nodes worth filtering (upstream PreFilterResult.NodeNames)."""

    node_names: frozenset[str]


class Plugin(abc.ABC):
    """A named plugin built from its args; `handle` gives access to the cluster state."""

    name: ClassVar[str]

    def __init__(self, *, args: Any, handle: Handle) -> None:
        self.args = args
        self.handle = handle
        # The profile's Framework (upstream's framework.Handle runs filters for a node); set by
        # `berth.engine.build_framework`. Preemption uses it to re-run PreFilter + Filter.
        self.framework: Any = None

    @property
    def state(self) -> ClusterState:
        return self.handle.state

    @property
    def ports(self) -> Ports:
        return self.handle.ports

    def prepare(self) -> None:
        """Set-up the first decision after a change would otherwise pay (tables and columns
        derived from the cluster state), done ahead of it: the fronts call it once the caches
        have synced and whenever they are idle. Cheap when nothing changed. Default: none."""
        return None

    def events_to_register(self) -> Sequence[ClusterEventWithHint] | None:
        """upstream EnqueueExtensions.EventsToRegister: the cluster events that can make a pod
        this plugin rejected schedulable. None (the default): every event may (upstream's
        treatment of a plugin without EnqueueExtensions); an empty list: none does."""
        return None


class QueueSortPlugin(Plugin):
    @abc.abstractmethod
    def sort_key(self, pod: PodInfo, queued_at: float) -> tuple[Any, ...]:
        """upstream QueueSort's Less as a key: the pod with the smaller key is tried first.
        Without such a plugin the order is upstream PrioritySort's (priority, then time)."""


class PreEnqueuePlugin(Plugin):
    @abc.abstractmethod
    def pre_enqueue(self, pod: PodInfo) -> Status:
        """Before the pod enters the active queue: anything but Success keeps it out (gated)
        until an event for the pod itself lets it through. Pod-only, no cycle state."""


class PreFilterPlugin(Plugin):
    @abc.abstractmethod
    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        """Pod-only work; Skip disables this plugin's Filter for the cycle."""


class FilterPlugin(Plugin):
    @abc.abstractmethod
    def filter(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> BoolArray:
        """True for each node slot in `nodes` where the pod fits as far as this plugin knows."""

    @abc.abstractmethod
    def explain(self, cycle: CycleState, pod: PodInfo, node: int) -> Status:
        """The rejection status for one node `filter` turned down, with upstream's reasons."""


@dataclass(frozen=True, slots=True)
class PostFilterResult:
    """What a PostFilter plugin proposes (upstream PostFilterResult + the victims to evict).

    `nominated_node` "" means "clear the pod's nomination" (upstream ModeOverride with "").
    """

    nominated_node: str
    victims: tuple[PodInfo, ...] = ()


class PostFilterPlugin(Plugin):
    @abc.abstractmethod
    def post_filter(
        self, cycle: CycleState, pod: PodInfo, diagnosis: Any
    ) -> tuple[PostFilterResult | None, Status]:
        """Runs when no node fits; may nominate a node and name victims (preemption).

        The plugin only decides; the front evicts the victims (in memory offline, through the
        API live), so the engine stays front-agnostic.
        """


class PreScorePlugin(Plugin):
    @abc.abstractmethod
    def pre_score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> Status:
        """Pod-only scoring work; Skip drops this plugin's Score for the cycle."""


class ScorePlugin(Plugin):
    @abc.abstractmethod
    def score(self, cycle: CycleState, pod: PodInfo, nodes: IndexArray) -> IntArray:
        """A raw score for each node slot in `nodes`."""

    def normalize(
        self, cycle: CycleState, pod: PodInfo, nodes: IndexArray, scores: IntArray
    ) -> IntArray:
        """Map raw scores into [0, 100]; the default leaves them as they are."""
        del cycle, pod, nodes
        return scores


class ReservePlugin(Plugin):
    @abc.abstractmethod
    def reserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status: ...

    @abc.abstractmethod
    def unreserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> None: ...


class PermitPlugin(Plugin):
    @abc.abstractmethod
    def permit(self, cycle: CycleState, pod: PodInfo, node_name: str) -> tuple[Status, float]:
        """Success, Wait (with a timeout in seconds) or a rejection."""


class PreBindPlugin(Plugin):
    @abc.abstractmethod
    async def pre_bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        """Work before binding, off the decision path (e.g. binding the pod's volumes); a
        non-Success status fails the bind: the pod is unreserved and retried."""


class BindPlugin(Plugin):
    @abc.abstractmethod
    async def bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        """Bind; Skip hands the pod to the next bind plugin."""


EXTENSION_POINTS: dict[str, type[Plugin]] = {
    "preEnqueue": PreEnqueuePlugin,
    "preFilter": PreFilterPlugin,
    "filter": FilterPlugin,
    "postFilter": PostFilterPlugin,
    "preScore": PreScorePlugin,
    "score": ScorePlugin,
    "reserve": ReservePlugin,
    "permit": PermitPlugin,
    "preBind": PreBindPlugin,
    "bind": BindPlugin,
}

# Upstream's interface names, used in configuration error messages ("FilterPlugin \"X\" ...").
POINT_INTERFACE_NAMES = {
    "preEnqueue": "PreEnqueuePlugin",
    "preFilter": "PreFilterPlugin",
    "filter": "FilterPlugin",
    "postFilter": "PostFilterPlugin",
    "preScore": "PreScorePlugin",
    "score": "ScorePlugin",
    "reserve": "ReservePlugin",
    "permit": "PermitPlugin",
    "preBind": "PreBindPlugin",
    "bind": "BindPlugin",
}

__all__ = [
    "EXTENSION_POINTS",
    "MAX_NODE_SCORE",
    "MIN_NODE_SCORE",
    "SUCCESS",
    "BindPlugin",
    "CycleState",
    "FilterPlugin",
    "Handle",
    "PermitPlugin",
    "Plugin",
    "PostFilterPlugin",
    "PostFilterResult",
    "PreBindPlugin",
    "PreEnqueuePlugin",
    "PreFilterPlugin",
    "PreFilterResult",
    "PreScorePlugin",
    "QueueSortPlugin",
    "ReservePlugin",
    "ScorePlugin",
]
