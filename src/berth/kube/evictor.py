"""Carrying out a preemption through the API: mark and delete each victim, nominate the preemptor.

As upstream's preemption Evaluator does (framework/preemption/preemption.go, PreemptPod and
prepareCandidate): the victim first gets the `DisruptionTarget` condition (reason
`PreemptionByScheduler`), then is deleted with its uid as a precondition (so a pod recreated
under the same name is never hit), then a `Preempted` event is recorded on it. A victim that is
already gone (404, or 409 because the name now holds another pod) counts as preempted. 429, 5xx
and network errors are retried with exponential backoff (tenacity), like the binder.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from berth.kube.binder import BindPolicy, Retryable
from berth.kube.client import Connection, raw_body, read_json, status_message
from berth.kube.events import EventSink, now_rfc3339
from berth.objects.pod import PodInfo

log = logging.getLogger("berth.evictor")


class Rejected(Exception):
    """A deletion the API server refused for good (403, 422, ...): not retried."""


@dataclass
class EvictionResult:
    deleted: bool  # the victim is gone (deleted now, or already)
    error: str = ""


class Evictor:
    """DELETE pods/NAME (uid precondition) for victims; PATCH pods/status for nominations."""

    def __init__(
        self,
        *,
        connection: Connection,
        recorder: EventSink,
        scheduler_name: str = "berth",
        policy: BindPolicy | None = None,
    ) -> None:
        self.connection = connection
        self.recorder = recorder
        self.scheduler_name = scheduler_name
        self.policy = policy or BindPolicy()
        self.evicted = 0
        self.failed = 0

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        policy = self.policy
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential_jitter(multiplier=policy.initial_backoff, max=policy.max_backoff),
            retry=retry_if_exception_type(Retryable),
            reraise=True,
        ):
            with attempt:
                return await call()
        raise AssertionError("unreachable")  # pragma: no cover

    async def preempt(self, victim: PodInfo, *, preemptor: PodInfo, node: str) -> EvictionResult:
        """Mark, delete and record one victim; never raises."""
        try:
            if not victim.terminating:
                gone = await self._retrying(lambda: self._mark(victim, preemptor))
                if not gone:
                    await self._retrying(lambda: self._delete(victim))
        except (Retryable, Rejected) as exc:
            self.failed += 1
            log.warning("preemption failed", extra={"pod": victim.key, "error": str(exc)})
            return EvictionResult(deleted=False, error=str(exc))
        self.evicted += 1
        log.info(
            "preempted",
            extra={"pod": victim.key, "preemptor": preemptor.key, "node": node},
        )
        self.recorder.event(
            victim,
            type_="Normal",
            reason="Preempted",
            action="Preempting",
            message=f"Preempted by pod {preemptor.uid} on node {node}",
            related=preemptor,
            controller=preemptor.scheduler_name,
        )
        return EvictionResult(deleted=True)

    async def _mark(self, victim: PodInfo, preemptor: PodInfo) -> bool:
        """Add the DisruptionTarget condition; True when the victim is already gone."""
        body = {
            "status": {
                "conditions": [
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "PreemptionByScheduler",
                        "message": f"{preemptor.scheduler_name}: preempting to accommodate a "
                        "higher priority pod",
                        "lastTransitionTime": now_rfc3339(),
                    }
                ]
            }
        }
        try:
            response = (
                await self.connection.core.patch_namespaced_pod_status_without_preload_content(
                    name=victim.name,
                    namespace=victim.namespace,
                    body=body,
                    _request_timeout=self.connection.request_timeout,
                )
            )
            answer = await read_json(response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Retryable(repr(exc)) from exc
        code = response.status
        if code == 404:
            return True
        if code == 429 or code >= 500:
            raise Retryable(f"HTTP {code}: {status_message(answer)}")
        if code >= 300:
            # Not worth failing the preemption for: the deletion is what frees the room.
            log.warning(
                "DisruptionTarget condition not set",
                extra={"pod": victim.key, "status": code, "error": status_message(answer)},
            )
        return False

    async def _delete(self, victim: PodInfo) -> None:
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if victim.uid:
            body["preconditions"] = {"uid": victim.uid}
        try:
            response = await self.connection.core.delete_namespaced_pod_without_preload_content(
                name=victim.name,
                namespace=victim.namespace,
                body=raw_body(body),
                _request_timeout=self.connection.request_timeout,
            )
            answer = await read_json(response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise Retryable(repr(exc)) from exc
        code = response.status
        if code in (200, 202, 404, 409):
            # 404: already deleted; 409: the uid precondition failed, the victim is gone and
            # the name holds another pod, which must not be touched.
            return
        if code == 429 or code >= 500:
            raise Retryable(f"HTTP {code}: {status_message(answer)}")
        raise Rejected(f"HTTP {code}: {status_message(answer)}")

    async def nominate(self, pod: PodInfo, node: str) -> bool:
        """Set (or, with node "", clear) status.nominatedNodeName; False if it did not land."""
        body = {"status": {"nominatedNodeName": node or None}}

        async def call() -> bool:
            try:
                response = (
                    await self.connection.core.patch_namespaced_pod_status_without_preload_content(
                        name=pod.name,
                        namespace=pod.namespace,
                        body=body,
                        _request_timeout=self.connection.request_timeout,
                    )
                )
                answer = await read_json(response)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise Retryable(repr(exc)) from exc
            if response.status == 429 or response.status >= 500:
                raise Retryable(f"HTTP {response.status}: {status_message(answer)}")
            if response.status >= 300 and response.status != 404:
                log.warning(
                    "nominatedNodeName not updated",
                    extra={"pod": pod.key, "status": response.status},
                )
            return response.status < 300

        try:
            ok: bool = await self._retrying(call)
            return ok
        except Retryable as exc:
            log.warning("nominatedNodeName not updated", extra={"pod": pod.key, "error": str(exc)})
            return False
