"""The cycle every front runs (berth.framework.cycle), as a table: each way a pod can go through
the scheduling cycle and the binding cycle, the typed outcome it ends in, and the state after it
(assumed, forgotten, bound, nominated). The fronts' tests check what each says about these."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from berth.config import parse_config
from berth.engine import Engine
from berth.framework.algorithm import Scheduler
from berth.framework.cycle import (
    BIND,
    PRE_BIND,
    BindFailed,
    Bound,
    Error,
    Nominated,
    PermitRejected,
    Scheduled,
    Unschedulable,
    Waiting,
    binding_cycle,
    scheduling_cycle,
)
from berth.framework.plugin import (
    CycleState,
    Handle,
    PermitPlugin,
    PreBindPlugin,
    PreFilterPlugin,
    PreFilterResult,
    ReservePlugin,
)
from berth.framework.ports import Ports
from berth.framework.runtime import Framework
from berth.framework.status import SUCCESS, Code, Status, error, unschedulable
from berth.objects import parse_pod
from berth.objects.pod import PodInfo
from tests.builders import make_state, node, pod


# ----- plugins that do one thing, for the rows that need a plugin to misbehave -----------------
class Broken(PreFilterPlugin):
    name = "Broken"

    def pre_filter(self, cycle: CycleState, pod: PodInfo) -> tuple[PreFilterResult | None, Status]:
        return None, error("lost its marbles")


class Refuses(ReservePlugin):
    name = "Refuses"
    unreserved = 0

    def reserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        return unschedulable("no room in the ledger")

    def unreserve(self, cycle: CycleState, pod: PodInfo, node_name: str) -> None:
        Refuses.unreserved += 1


class Holds(PermitPlugin):
    name = "Holds"

    def permit(self, cycle: CycleState, pod: PodInfo, node_name: str) -> tuple[Status, float]:
        return Status(Code.WAIT), 30.0


class PreBindFails(PreBindPlugin):
    name = "PreBindFails"

    async def pre_bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        return error("volumes did not bind")


async def _refusing_binder(pod: PodInfo, node_name: str) -> Status:
    return error("409: already bound elsewhere")


@dataclass
class Row:
    name: str
    nodes: list[dict[str, Any]]
    placed: list[dict[str, Any]]
    pod: dict[str, Any]
    scheduling: type
    binding: type | None = None
    # a profile of its own: the plugins at each point (None: the default profile)
    points: dict[str, list[type]] | None = None
    binder: Callable[..., Any] | None = None
    then: Callable[[Any, Any, Engine | Scheduler], None] = lambda *_: None
    act: Callable[[Any], None] = lambda _: None  # between the two cycles (e.g. reject a wait)
    extra: dict[str, Any] = field(default_factory=dict)


async def _recording_binder(pod: PodInfo, node_name: str) -> Status:
    return SUCCESS


def _assumed(outcome: Any, binding: Any, sched: Any) -> None:
    state = sched.framework.handle.state
    if binding is None:
        assert state.is_assumed(outcome.pod.key)


def _forgotten(outcome: Any, binding: Any, sched: Any) -> None:
    assert sched.framework.handle.state.node_of(outcome.pod.key) is None


def _unschedulable_cpu(outcome: Any, binding: Any, sched: Any) -> None:
    assert outcome.fit.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 Preemption is not helpful for scheduling."
    )
    assert outcome.rejectors == {"NodeResourcesFit"}
    _forgotten(outcome, binding, sched)


def _nominated(outcome: Any, binding: Any, sched: Any) -> None:
    handle = sched.framework.handle
    assert outcome.node == "n1" and [v.name for v in outcome.victims] == ["low"]
    assert handle.ports.nominator.node_of("default/high") == "n1"
    assert handle.state.pods["default/low"].terminating  # until the front has it deleted
    assert outcome.pod.nominated_node == "n1"


def _broken(outcome: Any, binding: Any, sched: Any) -> None:
    assert outcome.status.code == Code.ERROR and not outcome.status.plugin
    assert "lost its marbles" in outcome.status.message
    assert outcome.result is None


def _refused(outcome: Any, binding: Any, sched: Any) -> None:
    assert outcome.status.plugin == "Refuses" and outcome.result.node == "n1"
    assert Refuses.unreserved >= 1
    _forgotten(outcome, binding, sched)


def _released(outcome: Any, binding: Any, sched: Any) -> None:
    _forgotten(outcome, binding, sched)
    assert not len(sched.framework.handle.ports.waiting_pods)


def _bound(outcome: Any, binding: Any, sched: Any) -> None:
    assert binding.node == "n1"
    assert sched.framework.handle.state.is_assumed(outcome.pod.key)  # the watch confirms it


ROWS = [
    Row(
        "a pod that fits is scheduled, then bound",
        [node("n1")],
        [],
        pod("p", cpu="1"),
        Scheduled,
        Bound,
        binder=_recording_binder,
        then=_bound,
    ),
    Row(
        "a pod that fits nowhere is unschedulable, with upstream's message",
        [node("n1", cpu="1")],
        [],
        pod("p", cpu="2"),
        Unschedulable,
        then=_unschedulable_cpu,
    ),
    Row(
        "preemption nominates the pod and counts its victims terminating",
        [node("n1", cpu="2")],
        [pod("low", cpu="2", node_name="n1", priority=0)],
        pod("high", cpu="2", priority=100),
        Nominated,
        then=_nominated,
    ),
    Row(
        "a plugin that breaks its contract is an error, no node reserved",
        [node("n1")],
        [],
        pod("p"),
        Error,
        points={"pre_filter": [Broken]},
        then=_broken,
    ),
    Row(
        "Reserve rejecting the node is an error naming the plugin; the pod is forgotten",
        [node("n1")],
        [],
        pod("p"),
        Error,
        points={"reserve": [Refuses]},
        then=_refused,
    ),
    Row(
        "Permit holding the pod: waiting, assumed",
        [node("n1")],
        [],
        pod("p"),
        Waiting,
        points={"permit": [Holds]},
        then=_assumed,
    ),
    Row(
        "a wait rejected at Permit releases the pod's room",
        [node("n1")],
        [],
        pod("p"),
        Waiting,
        PermitRejected,
        points={"permit": [Holds]},
        act=lambda outcome: outcome.waiting.reject("Holds", "group incomplete"),
        then=_released,
    ),
    Row(
        "PreBind failing fails the binding cycle at PreBind",
        [node("n1")],
        [],
        pod("p"),
        Scheduled,
        BindFailed,
        points={"pre_bind": [PreBindFails]},
        binder=_recording_binder,
        then=_forgotten,
        extra={"stage": PRE_BIND},
    ),
    Row(
        "the binder refusing fails the binding cycle at Bind",
        [node("n1")],
        [],
        pod("p"),
        Scheduled,
        BindFailed,
        binder=_refusing_binder,
        then=_forgotten,
        extra={"stage": BIND},
    ),
]


def _scheduler(row: Row) -> Scheduler:
    state = make_state(row.nodes, row.placed)
    ports = Ports(binder=row.binder)
    if row.points is None:
        return Engine(config=parse_config({}), state=state, ports=ports, seed=1).schedulers["berth"]
    handle = Handle(state=state, ports=ports)
    plugins = {
        point: [cls(args=None, handle=handle) for cls in classes]
        for point, classes in row.points.items()
    }
    if "bind" not in plugins:
        from berth.plugins.defaultbinder import DefaultBinder

        plugins["bind"] = [DefaultBinder(args=None, handle=handle)]
    fwk = Framework(scheduler_name="berth", handle=handle, **plugins)
    return Scheduler(framework=fwk)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_the_cycle(row: Row) -> None:
    sched = _scheduler(row)
    outcome = scheduling_cycle(sched, parse_pod(row.pod))
    assert type(outcome) is row.scheduling, row.name
    binding = None
    if row.binding is not None:
        row.act(outcome)
        assert isinstance(outcome, Scheduled | Waiting)
        binding = asyncio.run(binding_cycle(outcome))
        assert type(binding) is row.binding, (row.name, binding)
        for key, value in row.extra.items():
            assert getattr(binding, key) == value, row.name
    row.then(outcome, binding, sched)
