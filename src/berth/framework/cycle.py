"""One pod through the scheduling cycle and the binding cycle (upstream schedule_one.go).

The scheduling cycle is synchronous and CPU-only: decide (`Scheduler.schedule`); on a node,
assume the pod there, Reserve and Permit; on none, act on PostFilter's proposal in the engine's
state (nominate the pod, count its victims as terminating, clear lower-priority nominations on
that node). The binding cycle awaits Permit's wait, PreBind and Bind through the ports; any
failure unreserves and forgets the assumed pod. Each cycle returns a small typed outcome, and a
front only says what an outcome means in its own terms (events, the queue and API calls for
`berth run`; JSON lines for `berth simulate`), so every front runs the same cycle.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from berth.framework.algorithm import FitError, Scheduler, ScheduleResult
from berth.framework.plugin import CycleState
from berth.framework.runtime import Framework, FrameworkError
from berth.framework.status import Code, Status, error
from berth.framework.waiting import WaitingPod
from berth.objects.pod import PodInfo


# ----- scheduling cycle outcomes ---------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Outcome:
    pod: PodInfo
    framework: Framework  # the pod's profile
    seconds: float  # the decision's (Scheduler.schedule, PostFilter included)


@dataclass(frozen=True, eq=False)
class Reserved(Outcome):
    """A node was chosen: the pod is assumed there and reserved; the binding cycle finishes.
    `result` (the scores and every node's reasons) is kept only when they were asked for: a
    binding cycle can wait a long time, and the live loop has many in flight."""

    node: str
    cycle: CycleState
    result: ScheduleResult | None


@dataclass(frozen=True, eq=False)
class Scheduled(Reserved):
    """Permit let the pod through: ready to bind."""


@dataclass(frozen=True, eq=False)
class Waiting(Reserved):
    """Permit holds the pod (gang scheduling): it keeps its room until allowed or rejected."""

    waiting: WaitingPod


@dataclass(frozen=True, eq=False)
class Unschedulable(Outcome):
    """No node fits; `fit` has upstream's message and the diagnosis per node."""

    fit: FitError
    cleared_nomination: bool = False  # PostFilter took back an earlier nomination

    @property
    def rejectors(self) -> set[str]:
        """The plugins that rejected the pod (the queue retries it on their events)."""
        return self.fit.diagnosis.unschedulable_plugins()


@dataclass(frozen=True, eq=False)
class Nominated(Unschedulable):
    """No node fits yet, but PostFilter (preemption) made room on `node`: the pod is nominated
    there and its victims count as terminating until the front has them deleted."""

    node: str = ""
    victims: tuple[PodInfo, ...] = ()
    # lower-priority pods whose nomination to `node` was cleared
    cleared: tuple[PodInfo, ...] = ()


@dataclass(frozen=True, eq=False)
class Error(Outcome):
    """The cycle could not decide: a plugin broke its contract (an Error status without a
    plugin name), or Reserve or Permit rejected the chosen node (`status.plugin` says which;
    `result` is the decision they rejected)."""

    status: Status
    result: ScheduleResult | None = None


SchedulingOutcome = Scheduled | Waiting | Nominated | Unschedulable | Error


def scheduling_cycle(
    scheduler: Scheduler,
    pod: PodInfo,
    *,
    explain_scores: bool = False,
    explain_reasons: bool | None = None,
) -> SchedulingOutcome:
    """upstream schedulingCycle for `pod` with its profile's scheduler. `explain_scores` keeps
    every node's score (berth simulate), which the live loop never reads; `explain_reasons`
    (default: as `explain_scores`) also explains every rejected node of a placed pod on the
    state the decision saw."""
    fwk = scheduler.framework
    state = fwk.handle.state
    start = time.perf_counter()
    try:
        result = scheduler.schedule(pod, explain_scores=explain_scores)
    except FitError as fit:
        return _no_fit(fwk, pod, fit, time.perf_counter() - start)
    except FrameworkError as exc:
        return Error(pod, fwk, time.perf_counter() - start, error(str(exc)))
    seconds = time.perf_counter() - start
    kept = result if explain_scores else None
    if explain_scores if explain_reasons is None else explain_reasons:
        result.diagnosis.node_statuses()  # explained on the state the decision saw
    node = result.node
    state.assume_pod(pod, node)
    status = fwk.run_reserve(result.cycle, pod, node)
    if status.ok:
        status, _ = fwk.run_permit(result.cycle, pod, node)
        if status.code == Code.WAIT:
            waiting = fwk.handle.ports.waiting_pods.get(pod.key)
            assert waiting is not None
            return Waiting(pod, fwk, seconds, node, result.cycle, kept, waiting)
    if not status.ok:
        fwk.run_unreserve(result.cycle, pod, node)
        state.forget_pod(pod.key)
        return Error(pod, fwk, seconds, status, result)
    return Scheduled(pod, fwk, seconds, node, result.cycle, kept)


def _no_fit(fwk: Framework, pod: PodInfo, fit: FitError, seconds: float) -> Unschedulable:
    """Act on PostFilter's proposal (upstream prepareCandidate's state half and the
    nomination): the victims' deletion is the front's."""
    proposal = fit.post_filter
    if proposal is None:
        return Unschedulable(pod, fwk, seconds, fit)
    state = fwk.handle.state
    nominator = fwk.handle.ports.nominator
    node = proposal.nominated_node
    if not node:
        # Preemption cannot help: an earlier nomination, if any, is taken back.
        cleared = bool(nominator.node_of(pod.key) or pod.nominated_node)
        if cleared:
            nominator.remove(pod.key)
            pod.nominated_node = ""
        return Unschedulable(pod, fwk, seconds, fit, cleared_nomination=cleared)
    nominator.add(pod, node)
    pod.nominated_node = node
    for victim in proposal.victims:
        # Terminating until the front reports them gone, so the next attempt waits for them
        # (PodEligibleToPreemptOthers) instead of preempting again.
        if state.node_of(victim.key) == node:
            state.replace_pod(
                dataclasses.replace(victim, terminating=True, preempted_by_scheduler=True)
            )
    lower = tuple(p for p in nominator.pods_for_node(node) if p.priority < pod.priority)
    for other in lower:
        nominator.remove(other.key)
        other.nominated_node = ""
    return Nominated(
        pod, fwk, seconds, fit, node=node, victims=tuple(proposal.victims), cleared=lower
    )


# ----- binding cycle outcomes ------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Bound:
    pod: PodInfo
    node: str


@dataclass(frozen=True, eq=False)
class PermitRejected:
    """The wait at Permit ended in a rejection or a timeout; the pod's room is released."""

    pod: PodInfo
    node: str
    status: Status


PRE_BIND, BIND = "PreBind", "Bind"


@dataclass(frozen=True, eq=False)
class BindFailed:
    """PreBind or Bind (`stage`) failed; the pod's room is released."""

    pod: PodInfo
    node: str
    status: Status
    stage: str


BindingOutcome = Bound | PermitRejected | BindFailed


async def binding_cycle(reserved: Reserved) -> BindingOutcome:
    """upstream bindingCycle: WaitOnPermit, PreBind, Bind; on failure Unreserve and forget the
    assumed pod (upstream handleBindingCycleError)."""
    fwk, pod, node, cycle = reserved.framework, reserved.pod, reserved.node, reserved.cycle
    ports = fwk.handle.ports
    if isinstance(reserved, Waiting):
        permit = await reserved.waiting.wait()
        if ports.waiting_pods.get(pod.key) is reserved.waiting:
            ports.waiting_pods.remove(pod.key)
        if not permit.ok:
            _release(fwk, cycle, pod, node)
            return PermitRejected(pod, node, permit)
    status = await fwk.run_pre_bind(cycle, pod, node)
    if not status.ok:
        _release(fwk, cycle, pod, node)
        return BindFailed(pod, node, status, PRE_BIND)
    status = await fwk.run_bind(cycle, pod, node)
    if not status.ok:
        _release(fwk, cycle, pod, node)
        return BindFailed(pod, node, status, BIND)
    ports.nominator.remove(pod.key)  # bound: no longer holds room by nomination
    return Bound(pod, node)


def _release(fwk: Framework, cycle: CycleState, pod: PodInfo, node: str) -> None:
    fwk.run_unreserve(cycle, pod, node)
    fwk.handle.state.forget_pod(pod.key)


__all__ = [
    "BIND",
    "PRE_BIND",
    "BindFailed",
    "BindingOutcome",
    "Bound",
    "Error",
    "Nominated",
    "PermitRejected",
    "Reserved",
    "Scheduled",
    "SchedulingOutcome",
    "Unschedulable",
    "Waiting",
    "binding_cycle",
    "scheduling_cycle",
]
