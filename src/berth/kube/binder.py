"""Binding pods through the Binding subresource, with retries that can never double-bind.

The API server refuses a Binding for a pod that already has a node (409), so a retry after a lost
response cannot move a pod; a 409 is then resolved by reading the pod: bound to our node means
our earlier attempt landed. The generated client's `create_namespaced_binding` raises while
parsing a successful answer (kubernetes-client/python #547, #825); Berth posts to
pods/{name}/binding with `Connection.call` (the API dispatcher's lean HTTP/1.1 path, or the
client's request layer) and reads the raw answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from berth.framework.status import SUCCESS, Code, Status
from berth.kube.client import TRANSPORT_ERRORS, Connection, quote_path, status_message
from berth.kube.wire import PodIdentity

log = logging.getLogger("berth.binder")


class Retryable(Exception):
    """A failure worth another attempt: 429, 5xx, a timeout or a broken connection."""


@dataclass
class BindPolicy:
    attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0


def retrying(policy: BindPolicy) -> AsyncRetrying:
    """The retry loop of the API writes that must land (bindings, volume bindings): up to
    `policy.attempts`, exponential backoff with jitter, only on `Retryable` failures."""
    return AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential_jitter(multiplier=policy.initial_backoff, max=policy.max_backoff),
        retry=retry_if_exception_type(Retryable),
        reraise=True,
    )


class Binder:
    """POST pods/binding: the binder port of `berth run`, which DefaultBinder calls."""

    def __init__(self, *, connection: Connection, policy: BindPolicy | None = None) -> None:
        self.connection = connection
        self.policy = policy or BindPolicy()
        self.retries = 0

    async def __call__(self, pod: PodIdentity, node_name: str) -> Status:
        return await self.bind(pod, node_name)

    async def bind(self, pod: PodIdentity, node_name: str) -> Status:
        # The first attempt runs outside the retry loop: setting the loop up costs as much as a
        # third of a successful bind's CPU, and nearly every bind succeeds first time.
        try:
            return await self._attempt(pod, node_name)
        except Retryable as exc:
            first_failure: Retryable | None = exc
        policy = self.policy
        try:
            async for attempt in retrying(policy):
                with attempt:
                    if first_failure is not None:
                        # attempt 1 is the one that already failed: replaying its error makes
                        # the policy back off before attempt 2, exactly as if it ran here.
                        failed, first_failure = first_failure, None
                        raise failed
                    self.retries += 1
                    return await self._attempt(pod, node_name)
        except Retryable as exc:
            return Status(Code.ERROR, (f"binding failed after {policy.attempts} attempts: {exc}",))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, pod: PodIdentity, node_name: str) -> Status:
        meta: dict[str, str] = {"name": pod.name, "namespace": pod.namespace}
        if pod.uid:
            meta["uid"] = pod.uid
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": meta,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        try:
            # pods/{name}/binding, as kube-scheduler's DefaultBinder posts it.
            code, answer = await self.connection.call(
                "POST",
                quote_path("api", "v1", "namespaces", pod.namespace, "pods", pod.name, "binding"),
                body,
            )
        except TRANSPORT_ERRORS as exc:
            raise Retryable(repr(exc)) from exc
        if code in (200, 201):
            return SUCCESS
        if code == 409:
            return await self._resolve_conflict(pod, node_name, answer)
        if code == 429 or code >= 500:
            raise Retryable(f"HTTP {code}: {status_message(answer)}")
        if code == 404:
            return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("pod was deleted before binding",))
        return Status(Code.ERROR, (f"HTTP {code}: {status_message(answer)}",))

    async def _resolve_conflict(self, pod: PodIdentity, node_name: str, answer: object) -> Status:
        try:
            code, current = await self.connection.call(
                "GET", quote_path("api", "v1", "namespaces", pod.namespace, "pods", pod.name)
            )
        except TRANSPORT_ERRORS as exc:
            raise Retryable(repr(exc)) from exc
        if code == 404:
            return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("pod was deleted before binding",))
        if code != 200 or not isinstance(current, dict):
            raise Retryable(f"reading pod after conflict: HTTP {code}")
        bound_to = (current.get("spec") or {}).get("nodeName")
        uid = (current.get("metadata") or {}).get("uid")
        if bound_to == node_name and (not pod.uid or uid == pod.uid):
            log.info("bind already landed", extra={"pod": pod.key, "node": node_name})
            return SUCCESS
        if not bound_to:
            # Not bound at all: refused for another reason (e.g. the pod still has scheduling
            # gates); an error, so the pod is retried after backoff (and gated by then).
            return Status(Code.ERROR, (f"HTTP 409: {status_message(answer)}",))
        return Status(
            Code.UNSCHEDULABLE_AND_UNRESOLVABLE,
            (f"pod is already bound to {bound_to!r}: {status_message(answer)}",),
        )
