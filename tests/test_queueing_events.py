"""Which cluster events move a pod back from unschedulable (upstream EventsToRegister,
isPodWorthRequeuing, QueueingHints): for each plugin and event, does a pod that plugin rejected
move?"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from berth.framework.events import (
    ASSIGNED_POD,
    CSI_NODE,
    NODE,
    PERSISTENT_VOLUME,
    PERSISTENT_VOLUME_CLAIM,
    POD_GROUP,
    STORAGE_CLASS,
    ActionType,
    ClusterEvent,
    node_changes,
    pod_changes,
)
from berth.framework.plugin import Handle
from berth.objects import parse_node, parse_pod
from berth.plugins.registry import registry
from berth.run.queue import ACTIVE, BACKOFF, UNSCHEDULABLE, SchedulingQueue
from berth.state.cluster import ClusterState
from tests.builders import node, pod

A = ActionType
EVENTS = {
    "NodeAdd": ClusterEvent(NODE, A.ADD),
    "NodeDelete": ClusterEvent(NODE, A.DELETE),
    "NodeUpdateNodeAllocatable": ClusterEvent(NODE, A.UPDATE_NODE_ALLOCATABLE),
    "NodeUpdateNodeLabel": ClusterEvent(NODE, A.UPDATE_NODE_LABEL),
    "NodeUpdateNodeTaint": ClusterEvent(NODE, A.UPDATE_NODE_TAINT),
    "AssignedPodAdd": ClusterEvent(ASSIGNED_POD, A.ADD),
    "AssignedPodDelete": ClusterEvent(ASSIGNED_POD, A.DELETE),
    "AssignedPodUpdatePodLabel": ClusterEvent(ASSIGNED_POD, A.UPDATE_POD_LABEL),
    "AssignedPodUpdatePodScaleDown": ClusterEvent(ASSIGNED_POD, A.UPDATE_POD_SCALE_DOWN),
    "AssignedPodUpdate": ClusterEvent(ASSIGNED_POD, A.UPDATE),
    "PersistentVolumeAdd": ClusterEvent(PERSISTENT_VOLUME, A.ADD),
    "PersistentVolumeDelete": ClusterEvent(PERSISTENT_VOLUME, A.DELETE),
    "PersistentVolumeClaimAdd": ClusterEvent(PERSISTENT_VOLUME_CLAIM, A.ADD),
    "PersistentVolumeClaimUpdate": ClusterEvent(PERSISTENT_VOLUME_CLAIM, A.UPDATE),
    "storage.k8s.io/StorageClassAdd": ClusterEvent(STORAGE_CLASS, A.ADD),
    "storage.k8s.io/StorageClassUpdate": ClusterEvent(STORAGE_CLASS, A.UPDATE),
    "storage.k8s.io/CSINodeAdd": ClusterEvent(CSI_NODE, A.ADD),
    "podgroups.v1alpha1.scheduling.x-k8s.ioAdd": ClusterEvent(POD_GROUP, A.ADD),
}
NODE_ADD = {"NodeAdd"}
VOLUMES = {"PersistentVolumeAdd", "PersistentVolumeClaimAdd", "PersistentVolumeClaimUpdate"}
# plugin -> the events (labels) that move a pod it rejected; every other event in EVENTS leaves
# the pod where it is.
WANT: dict[str, set[str]] = {
    "NodeUnschedulable": NODE_ADD | {"NodeUpdateNodeTaint"},
    "NodeName": NODE_ADD,
    "NodePorts": NODE_ADD | {"AssignedPodDelete"},
    "TaintToleration": NODE_ADD | {"NodeUpdateNodeTaint"},
    "NodeAffinity": NODE_ADD | {"NodeUpdateNodeLabel"},
    "NodeResourcesFit": NODE_ADD
    | {"NodeUpdateNodeAllocatable", "AssignedPodDelete", "AssignedPodUpdatePodScaleDown"},
    "InterPodAffinity": NODE_ADD
    | {"NodeUpdateNodeLabel", "AssignedPodAdd", "AssignedPodDelete", "AssignedPodUpdatePodLabel"},
    "PodTopologySpread": NODE_ADD
    | {
        "NodeDelete",
        "NodeUpdateNodeLabel",
        "NodeUpdateNodeTaint",
        "AssignedPodAdd",
        "AssignedPodDelete",
        "AssignedPodUpdatePodLabel",
    },
    "VolumeBinding": NODE_ADD
    | VOLUMES
    | {
        "NodeUpdateNodeLabel",
        "storage.k8s.io/StorageClassAdd",
        "storage.k8s.io/StorageClassUpdate",
        "storage.k8s.io/CSINodeAdd",
    },
    "VolumeZone": NODE_ADD | VOLUMES | {"NodeUpdateNodeLabel", "storage.k8s.io/StorageClassAdd"},
    "VolumeRestrictions": NODE_ADD
    | {"AssignedPodDelete", "PersistentVolumeClaimAdd", "PersistentVolumeClaimUpdate"},
    "NodeVolumeLimits": NODE_ADD
    | {"AssignedPodDelete", "PersistentVolumeClaimAdd", "storage.k8s.io/CSINodeAdd"},
    "Coscheduling": {"AssignedPodAdd", "podgroups.v1alpha1.scheduling.x-k8s.ioAdd"},
    "SchedulingGates": set(),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registrations() -> dict[str, Any]:
    handle = Handle(state=ClusterState())
    out = {}
    for name, spec in registry().items():
        args = spec.args_model() if spec.args_model else None
        out[name] = spec.cls(args=args, handle=handle).events_to_register()
    return out


def parked(plugins: set[str], clock: Clock | None = None) -> SchedulingQueue:
    """A queue holding pod `a` as unschedulable, rejected by `plugins`."""
    q = SchedulingQueue(clock=clock or Clock())
    q.set_registrations(registrations())
    q.add(parse_pod(pod("a", cpu="2")))

    async def fail() -> None:
        entry = await q.pop()
        assert entry is not None
        q.requeue_unschedulable(entry, plugins=plugins)

    asyncio.run(fail())
    assert q.get("default/a").where == UNSCHEDULABLE  # type: ignore[union-attr]
    return q


@pytest.mark.parametrize("label", sorted(EVENTS))
@pytest.mark.parametrize("plugin", sorted(WANT))
def test_a_pod_rejected_by_a_plugin_moves_only_on_its_events(plugin: str, label: str) -> None:
    q = parked({plugin})
    assert EVENTS[label].label == label  # upstream's label, as the metric shows it
    moved = q.move_all(EVENTS[label])
    want = label in WANT[plugin]
    assert moved == int(want), f"{plugin} on {label}"
    where = q.get("default/a").where  # type: ignore[union-attr]
    assert where == (BACKOFF if want else UNSCHEDULABLE)


def test_any_rejecting_plugin_registered_for_the_event_moves_the_pod() -> None:
    q = parked({"TaintToleration", "NodeResourcesFit"})
    assert q.move_all(EVENTS["AssignedPodDelete"]) == 1


def test_a_plugin_that_registers_nothing_takes_every_event() -> None:
    q = parked({"MetricScore"})  # no events_to_register: every event may help
    assert q.move_all(EVENTS["AssignedPodUpdate"]) == 1


def test_an_event_no_plugin_registered_is_dropped_without_a_move_request() -> None:
    q = SchedulingQueue(clock=Clock())
    q.set_registrations({k: v for k, v in registrations().items() if v is not None})
    q.add(parse_pod(pod("a")))

    async def run() -> None:
        entry = await q.pop()
        assert entry is not None
        assert q.move_all(EVENTS["PersistentVolumeDelete"]) == 0  # nobody registered it
        q.requeue_unschedulable(entry, plugins={"NodeResourcesFit"})
        assert entry.where == UNSCHEDULABLE  # not sent to backoff by a "move request"
        q.move_all(EVENTS["NodeAdd"])
        assert entry.where == BACKOFF

    asyncio.run(run())


def test_a_pod_with_no_rejecting_plugin_goes_to_backoff_and_any_event_moves_it() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.set_registrations(registrations())
    q.add(parse_pod(pod("a")))

    async def run() -> None:
        entry = await q.pop()
        assert entry is not None
        q.requeue_unschedulable(entry, plugins=set())  # upstream: straight to backoff
        assert entry.where == BACKOFF
        clock.now += 2
        q.flush_backoff()
        entry = await q.pop()
        assert entry is not None
        q.requeue_unschedulable(entry, plugins={"NodeName"})
        entry.unschedulable_plugins = set()  # e.g. parked by an older version
        q._place(entry, UNSCHEDULABLE)
        assert q.move_all(EVENTS["storage.k8s.io/CSINodeAdd"]) == 1

    asyncio.run(run())


def test_an_event_looks_only_at_the_pods_of_interested_plugins() -> None:
    q = SchedulingQueue(clock=Clock())
    q.set_registrations(registrations())
    for i in range(50):
        q.add(parse_pod(pod(f"p{i}")))

    async def run() -> None:
        for i in range(50):
            entry = await q.pop()
            assert entry is not None
            q.requeue_unschedulable(entry, plugins={"TaintToleration" if i else "NodePorts"})

    asyncio.run(run())
    looked: list[str] = []
    for bucket in q._by_plugin.values():
        for entry in bucket.values():
            entry.pod = _Spy(entry.pod, looked)  # type: ignore[assignment]
    assert q.move_all(EVENTS["AssignedPodDelete"]) == 1
    assert looked == ["default/p0"]


class _Spy:
    def __init__(self, pod: Any, looked: list[str]) -> None:
        self._pod, self._looked = pod, looked

    def __getattr__(self, name: str) -> Any:
        if name == "key" and self._pod.key not in self._looked:
            self._looked.append(self._pod.key)
        return getattr(self._pod, name)


# --- hints --------------------------------------------------------------------------------------
def _node(name: str = "n1", cpu: str = "4", **kw: Any) -> Any:
    return parse_node(node(name, cpu=cpu, **kw))


def test_fit_ignores_a_node_update_that_did_not_grow_allocatable() -> None:
    q = parked({"NodeResourcesFit"})
    old, smaller, bigger = _node(cpu="1"), _node(cpu="1", pods=200), _node(cpu="3")
    (event,) = node_changes(old, _node(cpu="500m"))
    assert event.label == "NodeUpdateNodeAllocatable"
    assert q.move_all(event, old=old, new=_node(cpu="500m")) == 0  # shrank
    assert q.move_all(event, old=old, new=smaller) == 0  # pods grew, the pod still cannot fit
    assert q.move_all(event, old=old, new=bigger) == 1  # 3 cpus now hold its 2


def test_fit_ignores_a_new_node_too_small_for_the_pod() -> None:
    q = parked({"NodeResourcesFit"})
    assert q.move_all(EVENTS["NodeAdd"], new=_node(cpu="1")) == 0
    assert q.move_all(EVENTS["NodeAdd"], new=_node(cpu="8")) == 1


def test_taint_toleration_moves_only_when_the_node_lost_its_untolerated_taint() -> None:
    q = parked({"TaintToleration"})
    taint = [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    tainted, other, clean = _node(taints=taint), _node(labels={"x": "y"}, taints=taint), _node()
    assert q.move_all(EVENTS["NodeAdd"], new=tainted) == 0
    assert node_changes(tainted, other) == [EVENTS["NodeUpdateNodeLabel"]]
    (event,) = node_changes(tainted, clean)
    assert event.label == "NodeUpdateNodeTaint"
    assert q.move_all(event, old=tainted, new=clean) == 1


def test_node_unschedulable_moves_when_the_node_is_uncordoned() -> None:
    q = parked({"NodeUnschedulable"})
    cordoned, open_ = _node(unschedulable=True), _node()
    assert node_changes(open_, cordoned) == []  # cordoning cannot help anyone
    (event,) = node_changes(cordoned, open_)
    assert event.label == "NodeUpdateNodeTaint"
    assert q.move_all(EVENTS["NodeAdd"], new=cordoned) == 0
    assert q.move_all(event, old=cordoned, new=open_) == 1


def test_node_ports_moves_only_when_a_deleted_pod_held_one_of_its_ports() -> None:
    q = SchedulingQueue(clock=Clock())
    q.set_registrations(registrations())
    ported = pod("a")
    ported["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    q.add(parse_pod(ported))

    async def fail() -> None:
        entry = await q.pop()
        assert entry is not None
        q.requeue_unschedulable(entry, plugins={"NodePorts"})

    asyncio.run(fail())
    other = parse_pod(pod("b", node_name="n1"))
    holder = pod("c", node_name="n1")
    holder["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    assert q.move_all(EVENTS["AssignedPodDelete"], old=other) == 0
    assert q.move_all(EVENTS["AssignedPodDelete"], old=parse_pod(holder)) == 1


def test_pod_changes_split_an_update_into_what_changed() -> None:
    old = parse_pod(pod("b", node_name="n1", cpu="2", labels={"app": "x"}))
    relabelled = parse_pod(pod("b", node_name="n1", cpu="2", labels={"app": "y"}))
    shrunk = parse_pod(pod("b", node_name="n1", cpu="1", labels={"app": "x"}))
    assert [e.label for e in pod_changes(old, relabelled)] == ["AssignedPodUpdatePodLabel"]
    assert [e.label for e in pod_changes(old, shrunk)] == ["AssignedPodUpdatePodScaleDown"]
    assert [e.label for e in pod_changes(old, old)] == ["AssignedPodUpdate"]


def test_incoming_pods_are_counted_with_upstream_event_labels() -> None:
    clock = Clock()
    q = SchedulingQueue(clock=clock)
    q.set_registrations(registrations())
    seen: list[tuple[str, str]] = []
    q.on_incoming = lambda queue, event: seen.append((queue, event))
    q.add(parse_pod(pod("a", cpu="2")))

    async def run() -> None:
        entry = await q.pop()
        assert entry is not None
        q.requeue_unschedulable(entry, plugins={"NodeResourcesFit"})
        clock.now += 5
        q.move_all(EVENTS["AssignedPodDelete"])
        assert entry.where == ACTIVE

    asyncio.run(run())
    assert seen == [
        ("active", "UnschedulablePodAdd"),
        ("unschedulable", "ScheduleAttemptFailure"),
        ("active", "AssignedPodDelete"),
    ]
