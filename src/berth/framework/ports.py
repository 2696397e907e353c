"""What plugins and the cycle reach beyond the pod, by type: the engine's ports.

Upstream's framework.Handle hands plugins typed listers, a client and shared maps; Berth's
`Ports` is that, built by the front and given to the engine. Two kinds:

- stores: indexes of raw objects (volumes, workloads, disruption budgets, PodGroups, DRA) the feed
  keeps current from whatever the front reads (informers, a dump), plus the shared maps of
  nominated and waiting pods;
- I/O: where the engine's work leaves the process, which a front without a cluster leaves None
  (the binder, the volume binder, the claim writer, events) or fills from its own loop (the metric
  table).

A plugin that needs new objects adds a store here (the feed then feeds it on every front); one
that writes to the API in PreBind adds an I/O port, filled by `berth run`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Protocol

from berth.framework.nominator import Nominator
from berth.framework.status import Status
from berth.framework.waiting import WaitingPods
from berth.metrics.table import MetricTable
from berth.objects.pod import PodInfo
from berth.state.budgets import DisruptionBudgets
from berth.state.dra import ClaimWriter, DRAIndex
from berth.state.podgroups import PodGroupIndex
from berth.state.store import Store
from berth.state.volumes import PodVolumes, VolumeIndex
from berth.state.workloads import WorkloadIndex

# DefaultBinder's port: POST the Binding (berth run) or record the placement (berth simulate).
Binder = Callable[[PodInfo, str], Awaitable[Status]]


class EventPort(Protocol):
    """Record an event about a pod (berth run: events.k8s.io, as kube-scheduler's recorder);
    never blocks."""

    def __call__(
        self, pod: PodInfo, *, type_: str, reason: str, action: str, message: str
    ) -> None: ...


# VolumeBinding's PreBind port: write the claim bindings and wait for them; an error or None.
VolumeBinder = Callable[[PodInfo, str, PodVolumes, float], Awaitable[str | None]]


@dataclass(frozen=True, eq=False)
class Ports:
    volumes: VolumeIndex = field(default_factory=VolumeIndex)
    workloads: WorkloadIndex = field(default_factory=WorkloadIndex)
    disruption_budgets: DisruptionBudgets = field(default_factory=DisruptionBudgets)
    pod_groups: PodGroupIndex = field(default_factory=PodGroupIndex)
    dra: DRAIndex = field(default_factory=DRAIndex)  # resource.k8s.io objects, devices in use
    # Pods nominated by preemption (upstream PodNominator) and pods waiting at Permit.
    nominator: Nominator = field(default_factory=Nominator)
    waiting_pods: WaitingPods = field(default_factory=WaitingPods)
    # MetricScore's per-node metric table (None: no metric sources, metric scores are skipped).
    metrics: MetricTable | None = None
    binder: Binder | None = None
    volume_binder: VolumeBinder | None = None
    # DynamicResources' claim writes (None: offline, the allocations stay in the state)
    claim_writer: ClaimWriter | None = None
    # Events a plugin itself records (upstream fh.EventRecorder(); None: nowhere to write them)
    events: EventPort | None = None

    def stores(self) -> list[Store]:
        """Every store, for the feed to route objects to by kind."""
        return [v for f in fields(self) if isinstance(v := getattr(self, f.name), Store)]
