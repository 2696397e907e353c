"""Events and Leases, the same on both servers: an event written through events.k8s.io/v1 read
through core/v1 and the other way round (kubectl describe reads core/v1, kube-scheduler writes
events.k8s.io/v1), and Lease updates as leader election makes them."""

from __future__ import annotations

from typing import Any

from tests.fidelity.conftest import Api, differs

NEW = "/apis/events.k8s.io/v1/namespaces/default/events"
CORE = "/api/v1/namespaces/default/events"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
REGARDING = {"kind": "Pod", "namespace": "default", "name": "p", "apiVersion": "v1", "uid": "u-1"}


def new_event(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name},
        "eventTime": "2026-01-02T03:04:05.123456Z",
        "reportingController": "berth",
        "reportingInstance": "berth-host",
        "action": "Binding",
        "reason": "Scheduled",
        "regarding": REGARDING,
        "note": "Successfully assigned default/p to node-001",
        "type": "Normal",
    }


def test_events_k8s_io_event_read_through_core(api: Api) -> None:
    """an events.k8s.io/v1 event read through core/v1: note is message, regarding is
    involvedObject, reportingController is reportingComponent and source.component stays empty"""
    assert api.post(NEW, new_event("e1")).status == 201
    core = api.get(f"{CORE}/e1").body
    assert core["message"] == "Successfully assigned default/p to node-001"
    assert core["reason"] == "Scheduled" and core["type"] == "Normal"
    assert core["involvedObject"] == REGARDING
    assert core["reportingComponent"] == "berth" and core["reportingInstance"] == "berth-host"
    assert core["eventTime"] == "2026-01-02T03:04:05.123456Z"
    assert core["action"] == "Binding"
    assert core.get("count") is None and core.get("firstTimestamp") is None


def test_core_event_read_through_events_k8s_io(api: Api) -> None:
    """a core/v1 event read through events.k8s.io/v1: message is note, involvedObject is
    regarding, count and the timestamps move to the deprecated fields"""
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e2"},
        "involvedObject": REGARDING,
        "reason": "FailedScheduling",
        "message": "0/2 nodes are available",
        "type": "Warning",
        "count": 3,
        "firstTimestamp": "2026-01-02T03:04:05Z",
        "lastTimestamp": "2026-01-02T03:05:05Z",
        "source": {"component": "default-scheduler"},
    }
    assert api.post(CORE, body).status == 201
    new = api.get(f"{NEW}/e2").body
    assert new["note"] == "0/2 nodes are available"
    assert new["regarding"] == REGARDING
    assert new["reason"] == "FailedScheduling" and new["type"] == "Warning"
    assert new["deprecatedCount"] == 3
    assert new["deprecatedFirstTimestamp"] == "2026-01-02T03:04:05Z"
    assert new["deprecatedLastTimestamp"] == "2026-01-02T03:05:05Z"
    assert new["deprecatedSource"] == {"component": "default-scheduler"}


@differs("an event without a source is answered without source/deprecatedSource; upstream {}")
def test_an_event_without_source_has_an_empty_one(api: Api) -> None:
    """an event written without a source reads back with source {} (core/v1) and
    deprecatedSource {} (events.k8s.io/v1): a struct upstream always encodes"""
    assert api.post(NEW, new_event("e3")).status == 201
    assert api.get(f"{NEW}/e3").body["deprecatedSource"] == {}
    assert api.get(f"{CORE}/e3").body["source"] == {}


@differs("the events API's own validation is not enforced (an event without eventTime is stored)")
def test_events_k8s_io_requires_event_time(api: Api) -> None:
    """events.k8s.io/v1 validation: an event without eventTime is 422"""
    body = new_event("e4")
    del body["eventTime"]
    answer = api.post(NEW, body)
    assert answer.status == 422 and answer.reason == "Invalid"
    fields = {c["field"] for c in answer.body["details"]["causes"]}
    assert "eventTime" in fields


def test_lease_updates(api: Api) -> None:
    """Lease updates as leader election makes them: renewTime in MicroTime, a takeover with the
    current resourceVersion succeeds, one with a stale resourceVersion is 409"""
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "leader"},
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-02T03:04:05.000001Z",
            "renewTime": "2026-01-02T03:04:05.000001Z",
            "leaseTransitions": 0,
        },
    }
    created = api.post(LEASES, body)
    assert created.status == 201
    assert created.body["spec"]["renewTime"] == "2026-01-02T03:04:05.000001Z"
    renewed = {
        **created.body,
        "spec": {**created.body["spec"], "renewTime": "2026-01-02T03:04:15.500000+00:00"},
    }
    answer = api.request("PUT", f"{LEASES}/leader", renewed)
    assert answer.status == 200
    assert answer.body["spec"]["renewTime"] == "2026-01-02T03:04:15.500000Z"
    taken = {
        **answer.body,
        "spec": {**answer.body["spec"], "holderIdentity": "b", "leaseTransitions": 1},
    }
    assert api.request("PUT", f"{LEASES}/leader", taken).status == 200
    stale = {**answer.body, "spec": {**answer.body["spec"], "holderIdentity": "c"}}
    answer = api.request("PUT", f"{LEASES}/leader", stale)
    assert answer.status == 409 and answer.reason == "Conflict"
    assert api.get(f"{LEASES}/leader").body["spec"]["holderIdentity"] == "b"


@differs("MicroTime fields accept any RFC 3339 precision; upstream exactly six digits")
def test_micro_time_needs_six_fractional_digits(api: Api) -> None:
    """a MicroTime (Lease renewTime) without exactly six fractional digits: 400 BadRequest,
    the decoder's error"""
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"renewTime": "2026-01-02T03:04:15.5Z"},
    }
    answer = api.post(LEASES, body)
    assert answer.status == 400 and answer.reason == "BadRequest"
    assert answer.message == (
        'Lease in version "v1" cannot be handled as a Lease: parsing time '
        '"2026-01-02T03:04:15.5Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".5Z" as '
        '".000000"'
    )
