"""Pods waiting at Permit (upstream framework/runtime/waiting_pods_map.go).

A pod a Permit plugin answered Wait for stays assumed on its node (its room is reserved) but is
not bound until every plugin that made it wait allows it; one rejection, or a timeout, ends the
wait with a rejection. The map is shared by the profiles of an engine (upstream keeps one per
framework; Berth's plugins only ever look up their own pods, by key).

The map does not depend on an event loop: the offline front reads `result` after each decision;
the live front awaits `wait()`, which turns the outcome into a future on the running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from berth.framework.status import SUCCESS, Status, unschedulable
from berth.objects.pod import PodInfo


def timeout_message(seconds: float, plugin: str) -> str:
    """upstream: "rejected due to timeout after waiting %v at plugin %v" (%v of a Duration)."""
    return f"rejected due to timeout after waiting {_duration(seconds)} at plugin {plugin}"


def _duration(seconds: float) -> str:
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{seconds:g}s"


@dataclass(eq=False)
class WaitingPod:
    pod: PodInfo
    node: str
    cycle: Any
    # plugin name -> how long it asked the pod to wait (seconds)
    pending: dict[str, float]
    result: Status | None = None
    _future: asyncio.Future[Status] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return self.pod.key

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def timeout(self) -> float:
        return min(self.pending.values()) if self.pending else 0.0

    def allow(self, plugin: str) -> None:
        """The plugin no longer holds the pod; the last one to allow releases it."""
        if self.result is not None:
            return
        self.pending.pop(plugin, None)
        if not self.pending:
            self._resolve(SUCCESS)

    def reject(self, plugin: str, message: str) -> None:
        if self.result is None:
            self._resolve(unschedulable(message, plugin=plugin))

    def expire(self) -> None:
        """The shortest wait is over: reject on behalf of the plugin that asked for it."""
        if self.result is None and self.pending:
            plugin, seconds = min(self.pending.items(), key=lambda kv: kv[1])
            self.reject(plugin, timeout_message(seconds, plugin))

    def _resolve(self, status: Status) -> None:
        self.result = status
        if self._future is not None and not self._future.done():
            self._future.set_result(status)

    async def wait(self) -> Status:
        """Until allowed, rejected or timed out (upstream WaitOnPermit)."""
        if self.result is None:
            self._future = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._future), timeout=self.timeout)
            if self.result is None:
                self.expire()
        assert self.result is not None
        return self.result


class WaitingPods:
    """Pod key -> WaitingPod (upstream waitingPodsMap)."""

    def __init__(self) -> None:
        self._pods: dict[str, WaitingPod] = {}

    def add(self, waiting: WaitingPod) -> None:
        self._pods[waiting.key] = waiting

    def remove(self, key: str) -> WaitingPod | None:
        return self._pods.pop(key, None)

    def get(self, key: str) -> WaitingPod | None:
        return self._pods.get(key)

    def __iter__(self) -> Iterator[WaitingPod]:
        return iter(list(self._pods.values()))

    def __len__(self) -> int:
        return len(self._pods)

    def __contains__(self, key: str) -> bool:
        return key in self._pods


__all__ = ["WaitingPod", "WaitingPods", "timeout_message"]
