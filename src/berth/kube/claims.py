"""DynamicResources' claim writes against the API: allocate and reserve in PreBind, unreserve,
deallocate, each as kube-scheduler makes them (dynamicresources.go bindClaim, Unreserve,
PostFilter).

bindClaim: the finalizer `resource.kubernetes.io/delete-protection` in a normal update, then
`status.allocation` and the pod in `status.reservedFor` in one update of /status; both carry the
claim's resourceVersion, so a claim someone else allocated meanwhile is a 409, never a second
allocation: on a conflict the claim is read again and the work redone from it (upstream's
RetryOnConflict), and a claim found allocated by someone else fails the pod's binding cycle.
A claim found already allocated with our devices and reserved for our pod is our earlier write
whose answer was lost: that is success. 429, 5xx and connection errors are retried with
exponential backoff like the binder's. Unreserve removes one consumer with a strategic merge
patch on /status (no resourceVersion needed); PostFilter's deallocation is an update of /status
with the claim's resourceVersion (a claim changed meanwhile is left alone: the next attempt
decides again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from berth.kube.binder import BindPolicy, Retryable, retrying
from berth.kube.client import Connection, quote_path, read_json, status_message
from berth.objects.dra import FINALIZER, ClaimInfo

log = logging.getLogger("berth.claims")
JSON = dict[str, Any]
API_VERSION = "resource.k8s.io/v1"
CONFLICT_ATTEMPTS = 5  # client-go retry.DefaultRetry: 5 steps


class _Conflict(Exception):
    """409: the claim changed since it was read."""


class _Failed(Exception):
    """A write the API server refused for good, or a claim that cannot be bound any more."""


def _path(namespace: str, name: str, *sub: str) -> str:
    return quote_path(
        "apis", "resource.k8s.io", "v1", "namespaces", namespace, "resourceclaims", name, *sub
    )


def _results(allocation: JSON | None) -> list[JSON]:
    """The device results of an allocation, for comparing two (timestamps aside)."""
    devices = (allocation or {}).get("devices") or {}
    return sorted(
        (
            {k: r.get(k) for k in ("request", "driver", "pool", "device", "shareID")}
            for r in devices.get("results") or ()
        ),
        key=repr,
    )


class ApiClaimWriter:
    """The `claim_writer` port of `berth run` (see DynamicResources.pre_bind)."""

    def __init__(self, *, connection: Connection, policy: BindPolicy | None = None) -> None:
        self.connection = connection
        self.policy = policy or BindPolicy()
        self.conflicts = 0
        self.background_failures = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # ----- the API calls ------------------------------------------------------------------------
    async def _call(self, method: str, path: str, body: JSON, content_type: str) -> JSON:
        """One write, retried on transient failures; a 409 raises _Conflict."""
        policy = self.policy
        try:
            async for attempt in retrying(policy):
                with attempt:
                    try:
                        response = await self.connection.request(
                            method, path, body, content_type=content_type
                        )
                        answer = await read_json(response)
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        raise Retryable(repr(exc)) from exc
                    code = response.status
                    if code in (200, 201):
                        out: JSON = answer
                        return out
                    if code == 409:
                        raise _Conflict(status_message(answer))
                    if code == 429 or code >= 500:
                        raise Retryable(f"HTTP {code}: {status_message(answer)}")
                    raise _Failed(status_message(answer))
        except Retryable as exc:
            raise _Failed(f"{policy.attempts} attempts failed: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get(self, claim: ClaimInfo) -> JSON:
        policy = self.policy
        try:
            async for attempt in retrying(policy):
                with attempt:
                    try:
                        response = await self.connection.request(
                            "GET", _path(claim.namespace, claim.name)
                        )
                        answer = await read_json(response)
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        raise Retryable(repr(exc)) from exc
                    if response.status == 200:
                        out: JSON = answer
                        return out
                    if response.status == 429 or response.status >= 500:
                        raise Retryable(f"HTTP {response.status}: {status_message(answer)}")
                    raise _Failed(status_message(answer))
        except Retryable as exc:
            raise _Failed(f"{policy.attempts} attempts failed: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _update(self, raw: JSON, *sub: str) -> JSON:
        meta = raw["metadata"]
        body = {**raw, "apiVersion": API_VERSION, "kind": "ResourceClaim"}
        return await self._call(
            "PUT", _path(meta["namespace"], meta["name"], *sub), body, "application/json"
        )

    # ----- PreBind ----------------------------------------------------------------------------
    async def bind_claim(
        self, claim: ClaimInfo, allocation: JSON | None, consumer: JSON
    ) -> JSON | str:
        """upstream bindClaim: the updated claim, or why it could not be bound."""
        name = f"{claim.namespace}/{claim.name}"
        raw: JSON = {**claim.raw, "metadata": {**(claim.raw.get("metadata") or {})}}
        raw["metadata"].setdefault("namespace", claim.namespace)
        refresh = False
        try:
            for _ in range(CONFLICT_ATTEMPTS):
                if refresh:
                    raw = await self._get(claim)
                    if self._landed(raw, allocation, consumer):
                        log.info("claim already bound", extra={"claim": name})
                        return raw
                refresh = True
                try:
                    return await self._bind_once(name, raw, allocation, consumer)
                except _Conflict:
                    self.conflicts += 1
                    log.info("claim changed meanwhile, retrying", extra={"claim": name})
            return f"add reservation to claim {name}: the object has been modified too often"
        except _Failed as exc:
            what = "add allocation and reservation to" if allocation else "add reservation to"
            return f"{what} claim {name}: {exc}"
        except _Refused as exc:
            return str(exc)

    @staticmethod
    def _landed(raw: JSON, allocation: JSON | None, consumer: JSON) -> bool:
        """Is `raw` our write, landed (its answer lost): reserved for the consumer, with our
        devices when we allocated?"""
        status = raw.get("status") or {}
        reserved = any(r.get("uid") == consumer["uid"] for r in status.get("reservedFor") or ())
        if not reserved or status.get("allocation") is None:
            return False
        return allocation is None or _results(allocation) == _results(status["allocation"])

    async def _bind_once(
        self, name: str, raw: JSON, allocation: JSON | None, consumer: JSON
    ) -> JSON:
        meta = raw["metadata"]
        if meta.get("deletionTimestamp"):
            raise _Refused(f"claim {name} got deleted in the meantime")
        status = dict(raw.get("status") or {})
        if allocation is not None:
            if status.get("allocation") is not None:
                raise _Refused(f"claim {name} got allocated elsewhere in the meantime")
            if FINALIZER not in (meta.get("finalizers") or ()):
                finalizers = [*(meta.get("finalizers") or ()), FINALIZER]
                with_finalizer = {**raw, "metadata": {**meta, "finalizers": finalizers}}
                try:
                    raw = await self._update(with_finalizer)
                except _Failed as exc:
                    raise _Refused(f"add finalizer to claim {name}: {exc}") from None
                status = dict(raw.get("status") or {})
            status["allocation"] = allocation
        status["reservedFor"] = [*(status.get("reservedFor") or ()), consumer]
        current = status.get("allocation")
        if current is None:
            raise _Refused(f"claim {name} got deallocated elsewhere in the meantime")
        if not current.get("allocationTimestamp"):
            status["allocation"] = {**current, "allocationTimestamp": _now()}
        return await self._update({**raw, "status": status}, "status")

    # ----- Unreserve and PostFilter (in the background) ----------------------------------------
    def unreserve(self, claim: ClaimInfo, pod_uid: str) -> None:
        """Remove the pod from status.reservedFor (strategic merge patch, by uid)."""
        patch = {
            "metadata": {"uid": claim.uid},
            "status": {"reservedFor": [{"$patch": "delete", "uid": pod_uid}]},
        }
        path = _path(claim.namespace, claim.name, "status")
        self._spawn(
            f"unreserve {claim.key}",
            lambda: self._call("PATCH", path, patch, "application/strategic-merge-patch+json"),
        )

    # ----- the special claim of extended resources (extendeddynamicresources.go) ---------------
    async def create_claim(self, body: JSON) -> JSON | str:
        """Create a claim; the created object, or the API server's reason."""
        namespace = str(body["metadata"]["namespace"])
        path = quote_path(
            "apis", "resource.k8s.io", "v1", "namespaces", namespace, "resourceclaims"
        )
        try:
            return await self._call("POST", path, body, "application/json")
        except (_Failed, _Conflict) as exc:
            return str(exc)

    async def patch_pod_status(self, namespace: str, name: str, status: JSON) -> str | None:
        """A strategic merge patch of the pod's status (upstream PatchPodStatus)."""
        path = quote_path("api", "v1", "namespaces", namespace, "pods", name, "status")
        try:
            await self._call(
                "PATCH", path, {"status": status}, "application/strategic-merge-patch+json"
            )
        except (_Failed, _Conflict) as exc:
            return str(exc)
        return None

    def delete_claim(self, claim: ClaimInfo) -> None:
        """upstream deleteClaim: the finalizer removed in an update (read again on a conflict),
        then the delete; a claim already gone is fine."""

        async def run() -> JSON:
            raw: JSON = {**claim.raw, "metadata": {**(claim.raw.get("metadata") or {})}}
            raw["metadata"].setdefault("namespace", claim.namespace)
            for attempt in range(CONFLICT_ATTEMPTS):
                if attempt:
                    raw = await self._get(claim)
                meta = raw["metadata"]
                finalizers = [f for f in meta.get("finalizers") or () if f != FINALIZER]
                try:
                    await self._update({**raw, "metadata": {**meta, "finalizers": finalizers}})
                    break
                except _Conflict:
                    continue
            path = _path(claim.namespace, claim.name)
            try:
                return await self._call("DELETE", path, {}, "application/json")
            except _Failed as exc:
                if "not found" in str(exc):
                    return {}
                raise

        self._spawn(f"delete {claim.key}", run)

    def deallocate(self, claim: ClaimInfo) -> None:
        """Clear status.allocation, reservedFor and devices (PostFilter)."""
        raw = {**claim.raw, "metadata": {**(claim.raw.get("metadata") or {})}}
        raw["metadata"].setdefault("namespace", claim.namespace)
        status = {
            k: v
            for k, v in (raw.get("status") or {}).items()
            if k not in ("allocation", "reservedFor", "devices")
        }
        body = {**raw, "status": status}
        self._spawn(f"deallocate {claim.key}", lambda: self._update(body, "status"))

    def _spawn(self, what: str, call: Callable[[], Awaitable[JSON]]) -> None:
        async def run() -> None:
            try:
                await call()
                log.info("claim written", extra={"what": what})
            except _Conflict as exc:
                # changed meanwhile: the next scheduling attempt looks again
                log.info("claim write skipped", extra={"what": what, "reason": str(exc)})
            except _Failed as exc:
                self.background_failures += 1
                log.warning("claim write failed", extra={"what": what, "error": str(exc)})

        task = asyncio.get_running_loop().create_task(run(), name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the background writes in flight (on stop)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


class _Refused(Exception):
    """The claim cannot be bound for this pod; the message is upstream's."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
