"""Recording core/v1 Events and the PodScheduled condition, as kube-scheduler writes them.

Events are sent off the decision path, a bounded number at a time; a repeat of the same event for
the same pod within the aggregation window bumps `count` instead of creating a new object
(client-go's event correlator does the same), so an unschedulable pod retried for hours does
not flood the API server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from berth.kube.client import Connection, quote_path, read_json, status_message
from berth.objects.pod import PodInfo

log = logging.getLogger("berth.events")
AGGREGATION_WINDOW = 600.0


_last_stamp: tuple[int, str] = (-1, "")


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (seconds, UTC); formatted once per
    second, since every event of a burst asks for it."""
    global _last_stamp
    second = int(time.time())
    if _last_stamp[0] != second:
        _last_stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_stamp[1]


class EventRecorder:
    def __init__(
        self,
        *,
        connection: Connection,
        component: str = "berth",
        instance: str = "",
        concurrency: int = 8,
    ) -> None:
        self.connection = connection
        self.component = component
        self.instance = instance
        self._slots = asyncio.Semaphore(concurrency)
        self._seen: dict[tuple[str, str, str], tuple[str, int, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    def event(self, pod: PodInfo, *, type_: str, reason: str, action: str, message: str) -> None:
        """Queue an event about `pod`; never blocks the caller."""
        task = asyncio.get_running_loop().create_task(
            self._send(pod, type_=type_, reason=reason, action=action, message=message)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def condition(self, pod: PodInfo, *, status: str, reason: str, message: str) -> None:
        """Queue a PodScheduled condition update (pods/status)."""
        task = asyncio.get_running_loop().create_task(
            self._condition(pod, status=status, reason=reason, message=message)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self, timeout: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def _send(
        self, pod: PodInfo, *, type_: str, reason: str, action: str, message: str
    ) -> None:
        key = (pod.uid or pod.key, reason, message)
        stamp = now_rfc3339()
        conn = self.connection
        async with self._slots:
            try:
                prev = self._seen.get(key)
                response = None
                if prev is not None and time.monotonic() - prev[2] < AGGREGATION_WINDOW:
                    name, count, first = prev
                    response = await conn.request(
                        "PATCH",
                        quote_path("api", "v1", "namespaces", pod.namespace, "events", name),
                        {"count": count + 1, "lastTimestamp": stamp},
                        content_type="application/merge-patch+json",
                    )
                    if response.status == 404:
                        # the event expired or was deleted: record a fresh one instead
                        response.release()
                        self._seen.pop(key, None)
                        response = None
                    elif response.status < 300:
                        self._seen[key] = (name, count + 1, first)
                if response is None:
                    # client-go's name for a new event: the object's name and the time in ns
                    name = f"{pod.name}.{time.time_ns():x}"
                    response = await conn.request(
                        "POST",
                        quote_path("api", "v1", "namespaces", pod.namespace, "events"),
                        self._body(pod, name, type_, reason, action, message, stamp),
                    )
                    if response.status < 300:
                        # aggregate later repeats only into an event that exists
                        self._seen[key] = (name, 1, time.monotonic())
                answer = await read_json(response)
                if response.status >= 300:
                    self.failed += 1
                    log.warning(
                        "event not recorded",
                        extra={
                            "pod": pod.key,
                            "status": response.status,
                            "error": status_message(answer),
                        },
                    )
                else:
                    self.sent += 1
            except Exception as exc:  # events are best effort; never break scheduling
                self.failed += 1
                log.warning("event not recorded", extra={"pod": pod.key, "error": repr(exc)})
        if len(self._seen) > 50_000:
            self._seen.clear()

    def _body(
        self,
        pod: PodInfo,
        name: str,
        type_: str,
        reason: str,
        action: str,
        message: str,
        stamp: str,
    ) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": pod.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod.name,
                "namespace": pod.namespace,
                "uid": pod.uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "action": action,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }

    async def _condition(self, pod: PodInfo, *, status: str, reason: str, message: str) -> None:
        body = {
            "status": {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": status,
                        "reason": reason,
                        "message": message,
                        "lastProbeTime": None,
                        "lastTransitionTime": now_rfc3339(),
                    }
                ]
            }
        }
        async with self._slots:
            try:
                path = quote_path("api", "v1", "namespaces", pod.namespace, "pods", pod.name)
                response = await self.connection.request(
                    "PATCH",
                    f"{path}/status",
                    body,
                    content_type="application/strategic-merge-patch+json",
                )
                answer = await read_json(response)
                if response.status >= 300 and response.status != 404:
                    log.warning(
                        "pod condition not updated",
                        extra={
                            "pod": pod.key,
                            "status": response.status,
                            "error": status_message(answer),
                        },
                    )
            except Exception as exc:
                log.warning("pod condition not updated", extra={"pod": pod.key, "error": repr(exc)})
