"""Recording Events as kube-scheduler does (client-go `tools/events`, events.k8s.io/v1), and the
PodScheduled condition.

The Event is client-go's `makeEvent`: name `<regarding name>.<unix ns in hex>` (a UUID when that
is not a valid name), `eventTime` in microseconds, `reportingController` the profile's scheduler
name, `reportingInstance` `<controller>-<hostname>`, `action`, `reason`, `regarding` (kind,
namespace, name, uid, apiVersion, resourceVersion), `related`, `note`, `type`; the deprecated
core/v1 fields (`deprecatedSource`, `deprecatedFirstTimestamp`, ...) are left out.

Repeats are client-go's isomorphic events: same type, action, reason, controller, instance,
regarding (resourceVersion included) and related, whatever the note. The first repeat turns the
event into a series (`series.count` 2, `lastObservedTime`) with a strategic-merge PATCH; later
repeats only count in memory, and are written when the series is refreshed (every 30 minutes)
or finished (no repeat for 6 minutes, checked every 6 minutes); singletons are forgotten 6
minutes after they were recorded. A series whose event is gone (404) is created again.

As client-go's adapter, a cluster without events.k8s.io/v1 (discovery at `start()`) gets core/v1
events instead. Everything is sent off the decision path, a bounded number at a time, best effort:
a failure is counted and logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_chain,
    wait_fixed,
    wait_random,
)

from berth.kube.client import TRANSPORT_ERRORS, Connection, quote_path, status_message
from berth.kube.wire import PodIdentity

log = logging.getLogger("berth.events")

NOTE_LENGTH_LIMIT = 1024  # validation.NoteLengthLimit (bytes)
FINISH_TIME = 360.0  # client-go finishTime: a series is over after 6 minutes without a repeat
REFRESH_TIME = 1800.0  # client-go refreshTime: ongoing series are written again
CACHE_LIMIT = 50_000  # Berth's bound on remembered events (client-go's is the 6-minute sweep)
EVENTS_V1 = ("apis", "events.k8s.io", "v1", "namespaces")  # + namespace, "events"[, name]
LEGACY_AGGREGATION_WINDOW = 600.0  # core/v1 fallback: repeats within 10 minutes bump `count`

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

_last_stamp: tuple[int, str] = (-1, "")


def _second(second: int) -> str:
    global _last_stamp
    if _last_stamp[0] != second:
        _last_stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return _last_stamp[1]


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (seconds, UTC); formatted once per
    second, since every event of a burst asks for it."""
    return _second(int(time.time())) + "Z"


def micro_time(ns: int) -> str:
    """A metav1.MicroTime: RFC 3339 with six fractional digits, UTC."""
    second, rest = divmod(ns, 1_000_000_000)
    return f"{_second(second)}.{rest // 1000:06d}Z"


def event_name(regarding: str, ns: int) -> str:
    """client-go's GenerateEventName: `<name>.<ns hex>`, or a UUID when that is no valid name."""
    name = f"{regarding}.{ns:x}"
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        return str(uuid.uuid4())
    return name


def truncate_note(message: str) -> str:
    """kube-scheduler's truncateMessage: at most NoteLengthLimit bytes, ending in ` ...`."""
    data = message.encode()
    if len(data) <= NOTE_LENGTH_LIMIT:
        return message
    return data[: NOTE_LENGTH_LIMIT - 4].decode("utf-8", "ignore") + " ..."


# (kind, namespace, name, uid, apiVersion, resourceVersion)
Ref = tuple[str, str, str, str, str, str]
# client-go's eventKey: type, action, reason, reportingController, reportingInstance,
# regarding, related
Key = tuple[str, str, str, str, str, Ref, Ref | None]


def pod_ref(pod: PodIdentity) -> Ref:
    """reference.GetReference for a pod (no fieldPath)."""
    return ("Pod", pod.namespace, pod.name, pod.uid, "v1", pod.resource_version)


def _ref_json(ref: Ref) -> dict[str, str]:
    kind, namespace, name, uid, api_version, rv = ref
    out = {"kind": kind, "namespace": namespace, "name": name}
    if uid:
        out["uid"] = uid
    out["apiVersion"] = api_version
    if rv:
        out["resourceVersion"] = rv
    return out


@dataclass(slots=True)
class _Recorded:
    """What client-go's eventCache holds for one isomorphic key."""

    name: str
    event_time: int  # ns
    note: str
    count: int = 0  # 0: a singleton (no series yet)
    last_observed: int = 0  # ns


class _Unsent(Exception):
    """The event did not reach the API server (timeout, broken connection): worth a retry.
    An answer from the server, even an error, is final (client-go: "will not retry")."""


# client-go tools/events recordToSink: up to 12 tries, 10 s apart, the first wait randomised
# so that many clients do not retry in step after an API server outage.
MAX_TRIES_PER_EVENT = 12
RETRY_SLEEP = 10.0


class EventSink(Protocol):
    """What the scheduling loop and the evictor record through: the EventRecorder itself, or
    the API dispatcher that runs one in its worker process."""

    def event(
        self,
        pod: PodIdentity,
        *,
        type_: str,
        reason: str,
        action: str,
        message: str,
        related: PodIdentity | None = None,
        controller: str = "",
    ) -> None: ...

    def condition(self, pod: PodIdentity, *, status: str, reason: str, message: str) -> None: ...

    async def flush(self, timeout: float = 5.0) -> None: ...


class EventRecorder:
    def __init__(
        self,
        *,
        connection: Connection,
        hostname: str | None = None,
        concurrency: int = 8,
        clock: Callable[[], int] = time.time_ns,
        max_tries: int = MAX_TRIES_PER_EVENT,
        retry_sleep: float = RETRY_SLEEP,
    ) -> None:
        self.connection = connection
        self.max_tries = max_tries
        self.retry_sleep = retry_sleep
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self.clock = clock
        self.legacy = False  # core/v1 events: the cluster has no events.k8s.io/v1
        self._slots = asyncio.Semaphore(concurrency)
        self._cache: dict[Key, _Recorded] = {}
        self._legacy_seen: dict[tuple[str, str, str], tuple[str, int, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_finished: Callable[[], None] | None = None  # after each write task ends
        self._sweeper: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    async def start(self) -> None:
        """Pick the API as client-go's event broadcaster adapter does (events.k8s.io/v1 when the
        server serves it) and start the series sweeps."""
        try:
            code, _ = await self.connection.call("GET", "/apis/events.k8s.io/v1")
            self.legacy = code >= 300
        except Exception as exc:  # as client-go: no discovery, no events.k8s.io
            log.warning("events.k8s.io/v1 discovery failed", extra={"error": repr(exc)})
            self.legacy = True
        if self.legacy:
            log.info("events.k8s.io/v1 is not served: recording core/v1 events")
        elif self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    def event(
        self,
        pod: PodIdentity,
        *,
        type_: str,
        reason: str,
        action: str,
        message: str,
        related: PodIdentity | None = None,
        controller: str = "",
        at: int | None = None,
    ) -> None:
        """Record an event about `pod` (Eventf(regarding=pod, related, ...)) by the profile
        `controller` (default: the pod's scheduler name) that happened `at` (unix ns; default:
        now, the recorder's clock); never blocks the caller."""
        controller = controller or pod.scheduler_name or "default-scheduler"
        note = truncate_note(message)
        if self.legacy:
            self._spawn(self._send_legacy(pod, type_, reason, note, controller))
            return
        instance = f"{controller}-{self.hostname}"
        key: Key = (
            type_,
            action,
            reason,
            controller,
            instance,
            pod_ref(pod),
            pod_ref(related) if related is not None else None,
        )
        now = self.clock() if at is None else at
        recorded = self._cache.get(key)
        if recorded is not None:
            recorded.last_observed = now
            if recorded.count:
                recorded.count += 1  # written by the next refresh or finish, as client-go
                return
            recorded.count = 2
            self._spawn(self._record(key, recorded))
            return
        recorded = _Recorded(name=event_name(pod.name, now), event_time=now, note=note)
        self._cache[key] = recorded
        self._spawn(self._record(key, recorded))
        if len(self._cache) > CACHE_LIMIT:
            self._trim()

    def condition(self, pod: PodIdentity, *, status: str, reason: str, message: str) -> None:
        """Queue a PodScheduled condition update (pods/status)."""
        self._spawn(self._condition(pod, status=status, reason=reason, message=message))

    @property
    def pending(self) -> int:
        """Writes started and not finished (retries sleeping included)."""
        return len(self._tasks)

    async def flush(self, timeout: float = 5.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def finish_series(self) -> None:
        """client-go's finishSeries: write the final count of every series without a repeat for
        FINISH_TIME and forget it; forget singletons older than FINISH_TIME."""
        cutoff = self.clock() - int(FINISH_TIME * 1e9)
        for key, recorded in list(self._cache.items()):
            if recorded.count:
                if recorded.last_observed < cutoff:
                    self._spawn(self._record(key, recorded))
                    del self._cache[key]
            elif recorded.event_time < cutoff:
                del self._cache[key]

    def refresh_series(self) -> None:
        """client-go's refreshExistingEventSeries: write every ongoing series again."""
        for key, recorded in self._cache.items():
            if recorded.count:
                self._spawn(self._record(key, recorded))

    # ----- internals ----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self.on_finished is not None:
            self.on_finished()

    def _trim(self) -> None:
        """Over CACHE_LIMIT: finish what is due, then forget the oldest singletons."""
        self.finish_series()
        excess = len(self._cache) - CACHE_LIMIT * 9 // 10
        if excess > 0:
            old = [k for k, r in self._cache.items() if not r.count][:excess]
            for key in old:
                del self._cache[key]

    async def _sweep(self) -> None:
        since_refresh = 0.0
        while True:
            await asyncio.sleep(FINISH_TIME)
            self.finish_series()
            since_refresh += FINISH_TIME
            if since_refresh >= REFRESH_TIME:
                since_refresh = 0.0
                self.refresh_series()

    def body(self, key: Key, recorded: _Recorded) -> dict[str, Any]:
        """The events.k8s.io/v1 Event client-go's makeEvent builds (plus its series)."""
        type_, action, reason, controller, instance, regarding, related = key
        event: dict[str, Any] = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": recorded.name, "namespace": regarding[1] or "default"},
            "eventTime": micro_time(recorded.event_time),
            "reportingController": controller,
            "reportingInstance": instance,
            "action": action,
            "reason": reason,
            "regarding": _ref_json(regarding),
            "note": recorded.note,
            "type": type_,
        }
        if related is not None:
            event["related"] = _ref_json(related)
        if recorded.count:
            event["series"] = self._series(recorded)
        return event

    @staticmethod
    def _series(recorded: _Recorded) -> dict[str, Any]:
        return {"count": recorded.count, "lastObservedTime": micro_time(recorded.last_observed)}

    async def _record(self, key: Key, recorded: _Recorded) -> None:
        """client-go's recordToSink: one attempt, then (only if it never reached the server)
        retries, sleeping outside the concurrency slots. The first attempt runs outside the
        retry loop, whose set-up costs as much as the request on this per-pod path."""
        try:
            await self._record_once(key, recorded)
            return
        except _Unsent as exc:
            first: _Unsent | None = exc
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_tries),
                wait=wait_chain(wait_random(0, self.retry_sleep), wait_fixed(self.retry_sleep)),
                retry=retry_if_exception_type(_Unsent),
                reraise=True,
            ):
                with attempt:
                    if first is not None:
                        failed, first = first, None
                        raise failed  # attempt 1, replayed so the policy waits before 2
                    await self._record_once(key, recorded)
        except _Unsent as exc:
            self.failed += 1
            log.warning(
                "event not recorded (retry limit exceeded)",
                extra={"pod": f"{key[5][1]}/{key[5][2]}", "error": str(exc)},
            )

    async def _record_once(self, key: Key, recorded: _Recorded) -> None:
        """client-go's recordEvent: PATCH the series of a repeated event (creating it if it is
        gone), POST a new one. Raises _Unsent when the server was not reached."""
        namespace = key[5][1] or "default"
        events = quote_path(*EVENTS_V1, namespace, "events")
        conn = self.connection
        async with self._slots:
            try:
                if recorded.count:
                    patch = {"series": self._series(recorded)}
                    path = quote_path(*EVENTS_V1, namespace, "events", recorded.name)
                    answer = await conn.call(
                        "PATCH", path, patch, content_type="application/strategic-merge-patch+json"
                    )
                    if answer[0] == 404:
                        answer = await conn.call("POST", events, self.body(key, recorded))
                        if answer[0] == 409:
                            # created meanwhile by the first occurrence: client-go retries
                            answer = await conn.call(
                                "PATCH",
                                path,
                                {"series": self._series(recorded)},
                                content_type="application/strategic-merge-patch+json",
                            )
                else:
                    answer = await conn.call("POST", events, self.body(key, recorded))
                self._count_answer(answer, f"{namespace}/{key[5][2]}")
            except TRANSPORT_ERRORS as exc:
                raise _Unsent(repr(exc)) from exc
            except Exception as exc:  # events are best effort; never break scheduling
                self.failed += 1
                log.warning(
                    "event not recorded",
                    extra={"pod": f"{namespace}/{key[5][2]}", "error": repr(exc)},
                )

    def _count_answer(self, answer: tuple[int, Any], pod: str) -> None:
        """Count the server's answer to an event write: sent, or failed with a log line (an
        answer is final, as client-go's "will not retry")."""
        code, body = answer
        if code >= 300:
            self.failed += 1
            log.warning(
                "event not recorded",
                extra={"pod": pod, "status": code, "error": status_message(body)},
            )
        else:
            self.sent += 1

    async def _send_legacy(
        self, pod: PodIdentity, type_: str, reason: str, note: str, controller: str
    ) -> None:
        """A core/v1 Event as client-go's legacy recorder writes it (through the adapter: no
        action, no related); identical repeats within ten minutes bump `count`."""
        key = (pod.uid or pod.key, reason, note)
        stamp = now_rfc3339()
        conn = self.connection
        events = quote_path("api", "v1", "namespaces", pod.namespace, "events")
        async with self._slots:
            try:
                prev = self._legacy_seen.get(key)
                answer = None
                if prev is not None and time.monotonic() - prev[2] < LEGACY_AGGREGATION_WINDOW:
                    name, count, first = prev
                    answer = await conn.call(
                        "PATCH",
                        quote_path("api", "v1", "namespaces", pod.namespace, "events", name),
                        {"count": count + 1, "lastTimestamp": stamp},
                        content_type="application/strategic-merge-patch+json",
                    )
                    if answer[0] == 404:
                        # the event expired or was deleted: record a fresh one instead
                        self._legacy_seen.pop(key, None)
                        answer = None
                    elif answer[0] < 300:
                        self._legacy_seen[key] = (name, count + 1, first)
                if answer is None:
                    name = event_name(pod.name, time.time_ns())
                    answer = await conn.call(
                        "POST",
                        events,
                        {
                            "apiVersion": "v1",
                            "kind": "Event",
                            "metadata": {"name": name, "namespace": pod.namespace},
                            "involvedObject": _ref_json(pod_ref(pod)),
                            "reason": reason,
                            "message": note,
                            "source": {"component": controller},
                            "firstTimestamp": stamp,
                            "lastTimestamp": stamp,
                            "count": 1,
                            "type": type_,
                            "reportingComponent": controller,
                            "reportingInstance": "",
                        },
                    )
                    if answer[0] < 300:
                        # aggregate later repeats only into an event that exists
                        self._legacy_seen[key] = (name, 1, time.monotonic())
                self._count_answer(answer, pod.key)
            except Exception as exc:  # events are best effort; never break scheduling
                self.failed += 1
                log.warning("event not recorded", extra={"pod": pod.key, "error": repr(exc)})
        if len(self._legacy_seen) > CACHE_LIMIT:
            self._legacy_seen.clear()

    async def _condition(self, pod: PodIdentity, *, status: str, reason: str, message: str) -> None:
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
                code, answer = await self.connection.call(
                    "PATCH",
                    f"{path}/status",
                    body,
                    content_type="application/strategic-merge-patch+json",
                )
                if code >= 300 and code != 404:
                    log.warning(
                        "pod condition not updated",
                        extra={
                            "pod": pod.key,
                            "status": code,
                            "error": status_message(answer),
                        },
                    )
            except Exception as exc:
                log.warning("pod condition not updated", extra={"pod": pod.key, "error": repr(exc)})
