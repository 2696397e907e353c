"""SchedulingGates: a pod with non-empty spec.schedulingGates is not ready to be scheduled.

Upstream: pkg/scheduler/framework/plugins/schedulinggates/scheduling_gates.go. A PreEnqueue
plugin: the queue keeps a gated pod out of the active queue (`scheduler_pending_pods{queue=
"gated"}`), never tries it and records no FailedScheduling event; an update of the pod that
removes the last gate lets it in. The check reads a tuple parsed once per pod change.
"""

from __future__ import annotations

from collections.abc import Sequence

from berth.framework.events import POD, ActionType, ClusterEventWithHint, on
from berth.framework.plugin import PreEnqueuePlugin
from berth.framework.status import SUCCESS, Status, unresolvable
from berth.objects.pod import PodInfo
from berth.plugins.registry import register

NAME = "SchedulingGates"


def gates_message(gates: tuple[str, ...]) -> str:
    """Go's `%v` of a []string: `waiting for scheduling gates: [foo bar]`."""
    return f"waiting for scheduling gates: [{' '.join(gates)}]"


class SchedulingGates(PreEnqueuePlugin):
    name = NAME

    def events_to_register(self) -> Sequence[ClusterEventWithHint]:
        # The pod's own update; the queue re-checks an updated gated pod itself.
        return (on(POD, ActionType.UPDATE_POD_SCHEDULING_GATES_ELIMINATED),)

    def pre_enqueue(self, pod: PodInfo) -> Status:
        if not pod.scheduling_gates:
            return SUCCESS
        return unresolvable(gates_message(pod.scheduling_gates))


register(SchedulingGates)
