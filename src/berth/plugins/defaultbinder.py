"""DefaultBinder: bind through the binder port the front provides (API Binding, or in memory).

`berth run` provides one that POSTs the Binding subresource; `berth simulate` one that records
the placement in its state. The plugin itself stays front-agnostic.
"""

from __future__ import annotations

from berth.framework.plugin import BindPlugin, CycleState
from berth.framework.status import Status, error
from berth.objects.pod import PodInfo
from berth.plugins.registry import register

NAME = "DefaultBinder"


class DefaultBinder(BindPlugin):
    name = NAME

    async def bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        binder = self.ports.binder
        if binder is None:
            return error("no binder configured for this front")
        return await binder(pod, node_name)


register(DefaultBinder)
