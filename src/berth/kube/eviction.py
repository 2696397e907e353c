"""The Eviction API (POST pods/NAME/eviction, policy/v1): the one way the rebalancer removes a
pod, so the API server checks its PodDisruptionBudgets.

429 means a budget forbids the eviction now (or the server is throttling): retried with
exponential backoff and jitter (tenacity), then reported as blocked, never forced. The pod's uid
is a precondition, so a pod recreated under the same name is never hit (409); a pod already gone
(404) counts as gone. 5xx and network errors are retried like 429; anything else fails at once.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from berth.kube.client import Connection, quote_path, read_json, status_message

log = logging.getLogger("berth.eviction")


class Result(enum.Enum):
    EVICTED = "evicted"
    GONE = "gone"  # already deleted, or the name now holds another pod
    BLOCKED = "blocked"  # 429 after every attempt: a disruption budget forbids it
    FAILED = "failed"


@dataclass(frozen=True)
class Eviction:
    result: Result
    message: str = ""
    attempts: int = 1


class _Again(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


async def evict(
    connection: Connection,
    *,
    namespace: str,
    name: str,
    uid: str,
    attempts: int = 4,
    backoff: float = 1.0,
    max_backoff: float = 30.0,
) -> Eviction:
    """Ask the API server to evict the pod; never raises."""
    body: dict[str, object] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    if uid:
        body["deleteOptions"] = {"preconditions": {"uid": uid}}
    path = quote_path("api", "v1", "namespaces", namespace, "pods", name, "eviction")
    tries = 0

    async def once() -> Eviction:
        nonlocal tries
        tries += 1
        try:
            response = await connection.request("POST", path, body)
            answer = await read_json(response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _Again(0, repr(exc)) from exc
        code = response.status
        if code in (200, 201):
            return Eviction(Result.EVICTED, attempts=tries)
        if code in (404, 409):
            return Eviction(Result.GONE, status_message(answer), attempts=tries)
        if code == 429 or (code >= 500 and "more than one PodDisruptionBudget" not in str(answer)):
            raise _Again(code, status_message(answer))
        return Eviction(Result.FAILED, f"HTTP {code}: {status_message(answer)}", attempts=tries)

    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=backoff, max=max_backoff),
            retry=retry_if_exception_type(_Again),
            reraise=False,
        ):
            with attempt:
                return await once()
    except RetryError as exc:
        last = exc.last_attempt.exception()
        code = last.code if isinstance(last, _Again) else 0
        result = Result.BLOCKED if code == 429 else Result.FAILED
        return Eviction(result, f"HTTP {code}: {last}" if code else str(last), attempts=tries)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["Eviction", "Result", "evict"]
