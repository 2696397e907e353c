"""DefaultBinder: bind through whatever binder the front provides (API Binding, or in memory).

The live scheduler provides one that POSTs the Binding subresource; `berth simulate` provides
one that records the placement in its state. The plugin itself stays front-agnostic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from berth.framework.plugin import BindPlugin, CycleState
from berth.framework.status import Status, error
from berth.objects.pod import PodInfo
from berth.plugins.registry import register

NAME = "DefaultBinder"
BINDER_SERVICE = "binder"
Binder = Callable[[PodInfo, str], Awaitable[Status]]


class DefaultBinder(BindPlugin):
    name = NAME

    async def bind(self, cycle: CycleState, pod: PodInfo, node_name: str) -> Status:
        binder: Binder | None = self.handle.services.get(BINDER_SERVICE)
        if binder is None:
            return error("no binder configured for this front")
        return await binder(pod, node_name)


register(DefaultBinder)
