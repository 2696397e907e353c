"""Cluster events and what each plugin registers for (upstream EnqueueExtensions).

Upstream: staging/src/k8s.io/kube-scheduler/framework/types.go (ActionType, EventResource,
ClusterEvent, ClusterEventWithHint), pkg/scheduler/framework/types.go (MatchClusterEvents, the
internal AssignedPod / UnschedulablePod resources) and pkg/scheduler/framework/events.go (how a node
or pod update is split into the specific update actions that changed).

A plugin that can reject a pod says, through `events_to_register()`, which cluster events can make
a pod it rejected schedulable; the queue moves an unschedulable pod back only on such an event for
one of the plugins that rejected it. A plugin that does not say (returns None) is interested in
every event, as upstream treats a plugin without EnqueueExtensions. An optional hint function
(upstream's QueueingHintFn) may look at the event's objects and answer False (QueueSkip) for a
given pod; without one the answer is always True (Queue).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from berth.objects.node import NodeInfo
from berth.objects.pod import PodInfo


class ActionType(enum.IntFlag):
    ADD = 1
    DELETE = 1 << 1
    UPDATE_NODE_ALLOCATABLE = 1 << 2
    UPDATE_NODE_LABEL = 1 << 3
    UPDATE_NODE_TAINT = 1 << 4  # taints, or spec.unschedulable turned off
    UPDATE_NODE_CONDITION = 1 << 5
    UPDATE_NODE_ANNOTATION = 1 << 6
    UPDATE_POD_LABEL = 1 << 7
    UPDATE_POD_SCALE_DOWN = 1 << 8
    UPDATE_POD_TOLERATION = 1 << 9
    UPDATE_POD_SCHEDULING_GATES_ELIMINATED = 1 << 10
    UPDATE_POD_GENERATED_RESOURCE_CLAIM = 1 << 11
    UPDATE_NODE_DECLARED_FEATURE = 1 << 12
    ALL = (1 << 13) - 1
    UPDATE = ALL & ~(ADD | DELETE)


# upstream ActionType.String()
_ACTION_NAMES = {
    ActionType.ADD: "Add",
    ActionType.DELETE: "Delete",
    ActionType.UPDATE_NODE_ALLOCATABLE: "UpdateNodeAllocatable",
    ActionType.UPDATE_NODE_LABEL: "UpdateNodeLabel",
    ActionType.UPDATE_NODE_TAINT: "UpdateNodeTaint",
    ActionType.UPDATE_NODE_CONDITION: "UpdateNodeCondition",
    ActionType.UPDATE_NODE_ANNOTATION: "UpdateNodeAnnotation",
    ActionType.UPDATE_POD_LABEL: "UpdatePodLabel",
    ActionType.UPDATE_POD_SCALE_DOWN: "UpdatePodScaleDown",
    ActionType.UPDATE_POD_TOLERATION: "UpdatePodToleration",
    ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED: "UpdatePodSchedulingGatesEliminated",
    ActionType.UPDATE_POD_GENERATED_RESOURCE_CLAIM: "UpdatePodGeneratedResourceClaim",
    ActionType.UPDATE_NODE_DECLARED_FEATURE: "UpdateNodeDeclaredFeature",
    ActionType.ALL: "All",
    ActionType.UPDATE: "Update",
}

# Event resources (upstream EventResource values).
POD = "Pod"  # registered by plugins; matches the two below
ASSIGNED_POD = "AssignedPod"  # incoming events only: a pod bound to a node
UNSCHEDULABLE_POD = "UnschedulablePod"  # incoming events only: a pod not bound yet
NODE = "Node"
PERSISTENT_VOLUME = "PersistentVolume"
PERSISTENT_VOLUME_CLAIM = "PersistentVolumeClaim"
CSI_NODE = "storage.k8s.io/CSINode"
CSI_DRIVER = "storage.k8s.io/CSIDriver"
CSI_STORAGE_CAPACITY = "storage.k8s.io/CSIStorageCapacity"
STORAGE_CLASS = "storage.k8s.io/StorageClass"
RESOURCE_CLAIM = "resource.k8s.io/ResourceClaim"
RESOURCE_SLICE = "resource.k8s.io/ResourceSlice"
DEVICE_CLASS = "resource.k8s.io/DeviceClass"
DEVICE_TAINT_RULE = "resource.k8s.io/DeviceTaintRule"
# scheduler-plugins' Coscheduling registers its CRD as "<plural>.<version>.<group>".
POD_GROUP = "podgroups.v1alpha1.scheduling.x-k8s.io"
WILDCARD = "*"

# The event resource of each kind of object the engine's stores hold; changes to kinds not listed
# raise no event (no plugin registers for them).
RESOURCE_OF_KIND = {
    "PersistentVolume": PERSISTENT_VOLUME,
    "PersistentVolumeClaim": PERSISTENT_VOLUME_CLAIM,
    "StorageClass": STORAGE_CLASS,
    "CSINode": CSI_NODE,
    "PodGroup": POD_GROUP,
    "ResourceClaim": RESOURCE_CLAIM,
    "ResourceSlice": RESOURCE_SLICE,
    "DeviceClass": DEVICE_CLASS,
    "DeviceTaintRule": DEVICE_TAINT_RULE,
}

# Labels of the queue's own moves (upstream pkg/scheduler/framework/events.go).
SCHEDULE_ATTEMPT_FAILURE = "ScheduleAttemptFailure"
BACKOFF_COMPLETE = "BackoffComplete"
UNSCHEDULABLE_TIMEOUT = "UnschedulableTimeout"
FORCE_ACTIVATE = "ForceActivate"


@dataclass(frozen=True, slots=True)
class ClusterEvent:
    resource: str
    action: ActionType
    custom_label: str = ""

    @property
    def label(self) -> str:
        """upstream ClusterEvent.Label(): the metric and log label, e.g. `NodeUpdateNodeTaint`."""
        if self.custom_label:
            return self.custom_label
        return f"{self.resource}{_ACTION_NAMES.get(self.action, str(int(self.action)))}"

    @property
    def is_wildcard(self) -> bool:
        return self.resource == WILDCARD and self.action == ActionType.ALL

    def matches(self, incoming: ClusterEvent) -> bool:
        """upstream MatchClusterEvents(self, incoming): `self` is a registered event; `incoming`
        is the same event or a more specific one."""
        if self.is_wildcard:
            return True
        if self.resource != incoming.resource and not (
            self.resource == POD and incoming.resource in (ASSIGNED_POD, UNSCHEDULABLE_POD)
        ):
            return False
        return bool(self.action & incoming.action) and incoming.action <= self.action


# upstream QueueingHintFn(pod, oldObj, newObj): True is Queue, False is QueueSkip.
QueueingHint = Callable[[PodInfo, Any, Any], bool]


@dataclass(frozen=True, slots=True)
class ClusterEventWithHint:
    event: ClusterEvent
    hint: QueueingHint | None = None


def on(resource: str, action: ActionType, hint: QueueingHint | None = None) -> ClusterEventWithHint:
    return ClusterEventWithHint(ClusterEvent(resource, action), hint)


# Plugin name -> its registrations; None: the plugin did not say (every event concerns it).
Registrations = Mapping[str, tuple[ClusterEventWithHint, ...] | None]

ASSIGNED_POD_ADD = ClusterEvent(ASSIGNED_POD, ActionType.ADD)
ASSIGNED_POD_DELETE = ClusterEvent(ASSIGNED_POD, ActionType.DELETE)
UNSCHEDULABLE_POD_ADD = ClusterEvent(UNSCHEDULABLE_POD, ActionType.ADD)
UNSCHEDULABLE_POD_UPDATE = ClusterEvent(UNSCHEDULABLE_POD, ActionType.UPDATE)
NODE_ADD = ClusterEvent(NODE, ActionType.ADD)
NODE_DELETE = ClusterEvent(NODE, ActionType.DELETE)
UNSCHEDULABLE_TIMEOUT_EVENT = ClusterEvent(WILDCARD, ActionType.ALL, UNSCHEDULABLE_TIMEOUT)


def node_changes(old: NodeInfo, new: NodeInfo) -> list[ClusterEvent]:
    """upstream NodeSchedulingPropertiesChange, over what Berth parses from a node: conditions
    and annotations are not parsed (heartbeats change them), so they raise no event."""
    actions: list[ActionType] = []
    if old.unschedulable and not new.unschedulable:
        actions.append(ActionType.UPDATE_NODE_TAINT)  # (upstream has no action of its own)
    if old.allocatable != new.allocatable:
        actions.append(ActionType.UPDATE_NODE_ALLOCATABLE)
    if old.labels != new.labels:
        actions.append(ActionType.UPDATE_NODE_LABEL)
    if old.taints != new.taints and ActionType.UPDATE_NODE_TAINT not in actions:
        actions.append(ActionType.UPDATE_NODE_TAINT)
    if old.declared_features != new.declared_features:
        actions.append(ActionType.UPDATE_NODE_DECLARED_FEATURE)
    return [ClusterEvent(NODE, a) for a in actions]


def pod_changes(old: PodInfo, new: PodInfo) -> list[ClusterEvent]:
    """upstream PodSchedulingPropertiesChange for a bound pod (labels, scale down, tolerations);
    a change that is none of these is a general Update."""
    resource = ASSIGNED_POD if new.node_name else UNSCHEDULABLE_POD
    out: list[ClusterEvent] = []
    if old.labels != new.labels:
        out.append(ClusterEvent(resource, ActionType.UPDATE_POD_LABEL))
    if any(new.requests.get(name, 0) < qty for name, qty in old.requests.items()):
        out.append(ClusterEvent(resource, ActionType.UPDATE_POD_SCALE_DOWN))
    if len(new.tolerations) != len(old.tolerations):
        out.append(ClusterEvent(resource, ActionType.UPDATE_POD_TOLERATION))
    if old.scheduling_gates and not new.scheduling_gates:
        out.append(ClusterEvent(resource, ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED))
    return out or [ClusterEvent(resource, ActionType.UPDATE)]


def collect_registrations(
    plugins: Iterable[Any],
) -> dict[str, tuple[ClusterEventWithHint, ...] | None]:
    """Plugin name -> registrations, over the plugin instances of every profile (a plugin's
    registrations do not depend on its profile)."""
    out: dict[str, tuple[ClusterEventWithHint, ...] | None] = {}
    for plugin in plugins:
        if plugin.name in out:
            continue
        events = plugin.events_to_register()
        out[plugin.name] = None if events is None else tuple(events)
    return out
