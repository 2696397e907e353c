"""Events and Leases, the same on both servers: an event written through events.k8s.io/v1 read
through core/v1 and the other way round (kubectl describe reads core/v1, kube-scheduler writes
events.k8s.io/v1), and Lease updates as leader election makes them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fidelity.conftest import Api

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


def test_an_event_without_source_has_an_empty_one(api: Api) -> None:
    """an event written without a source reads back with source {} (core/v1) and
    deprecatedSource {} (events.k8s.io/v1): a struct upstream always encodes"""
    assert api.post(NEW, new_event("e3")).status == 201
    assert api.get(f"{NEW}/e3").body["deprecatedSource"] == {}
    assert api.get(f"{CORE}/e3").body["source"] == {}


def test_events_k8s_io_requires_event_time(api: Api) -> None:
    """events.k8s.io/v1 validation: an event without eventTime is 422"""
    body = new_event("e4")
    del body["eventTime"]
    answer = api.post(NEW, body)
    assert answer.status == 422 and answer.reason == "Invalid"
    fields = {c["field"] for c in answer.body["details"]["causes"]}
    assert "eventTime" in fields


def core_event(name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name},
        "involvedObject": dict(REGARDING),
        "reason": "Scheduled",
        "message": "m",
        "type": "Normal",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


NEW_TIME = "2026-01-02T03:04:05.123456Z"
REPORTED = {"eventTime": NEW_TIME, "reportingComponent": "berth", "reportingInstance": "h",
            "action": "Binding"}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        pytest.param(
            CORE,
            core_event("a", involvedObject={**REGARDING, "namespace": "other"}),
            'Event "a" is invalid: involvedObject.namespace: Invalid value: "other": does not '
            "match event.namespace",
            id="core, legacy event: the involved object in another namespace",
        ),
        pytest.param(
            CORE,
            core_event("b", eventTime=NEW_TIME),
            'Event "b" is invalid: [reportingComponent: Required value, reportingComponent: '
            'Invalid value: "": name part must be non-empty, reportingComponent: Invalid value: '
            "\"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), "
            "reportingInstance: Required value, action: Required value]",
            id="core, new event (eventTime): reporting fields and action required",
        ),
        pytest.param(
            CORE,
            core_event("c", **REPORTED, reason="r" * 129, message="m" * 1025),
            'Event "c" is invalid: [reason: Invalid value: "": can have at most 128 characters, '
            'message: Invalid value: "": can have at most 1024 characters]',
            id="core, new event: reason and message too long",
        ),
        pytest.param(
            NEW,
            {
                **new_event("d"),
                "type": "Info",
                "deprecatedCount": 2,
                "deprecatedSource": {"component": "x"},
                "series": {"count": 1, "lastObservedTime": NEW_TIME},
            },
            'Event "d" is invalid: [series.count: Invalid value: "": should be at '
            'least 2, type: Invalid value: "": has invalid value: Info, count: Invalid value: '
            '"": needs to be unset, source: Invalid value: "": needs to be unset]',
            id="events.k8s.io: series, type and the deprecated fields",
        ),
        pytest.param(
            NEW,
            {**new_event("e"), "reportingController": "not valid!"},
            'Event "e" is invalid: reportingController: Invalid value: "not '
            "valid!\": name part must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
            "or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            id="events.k8s.io: reportingController a qualified name",
        ),
    ],
)
def test_event_validation(api: Api, path: str, body: dict[str, Any], message: str) -> None:
    """events.go: legacy rules on every write, the strict ones through events.k8s.io/v1"""
    answer = api.post(path, body)
    assert answer.status == 422, answer.body
    assert answer.message == message


def test_a_legacy_core_event_needs_no_reporting_fields(api: Api) -> None:
    """a core/v1 event without eventTime (what kubectl and old clients write) is stored
    without reportingComponent, action or instance"""
    assert api.post(CORE, core_event("ok")).status == 201


def test_an_events_k8s_io_update_may_not_change_what_was_reported(api: Api) -> None:
    """ValidateEventUpdate: note (message) and action are immutable through events.k8s.io/v1;
    a core/v1 update may change them"""
    created = api.post(NEW, new_event("u")).body
    changed = {**created, "note": "other", "action": "Preempting"}
    answer = api.request("PUT", f"{NEW}/u", changed)
    assert answer.status == 422
    assert answer.message == (
        'Event "u" is invalid: [message: Invalid value: "other": field is '
        'immutable, action: Invalid value: "Preempting": field is immutable]'
    )
    core = api.get(f"{CORE}/u").body
    assert api.request("PUT", f"{CORE}/u", {**core, "message": "other"}).status == 200


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


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        pytest.param("renewTime", "2026-01-02T03:04:05Z", 'cannot parse "Z" as ".000000"',
                     id="MicroTime without a fraction"),
        pytest.param("renewTime", "2026-01-02T03:04:05.1234567Z", 'cannot parse "7Z" as "Z07:00"',
                     id="MicroTime with seven digits"),
        pytest.param("renewTime", "2026-01-02T03:04:05.123456", 'cannot parse "" as "Z07:00"',
                     id="MicroTime without a zone"),
        pytest.param("acquireTime", "2026-02-30T03:04:05.000000Z", "day out of range",
                     id="MicroTime on a day February does not have"),
        pytest.param("acquireTime", "2026-01-02T24:00:00.000000Z", "hour out of range",
                     id="MicroTime at hour 24"),
        pytest.param("acquireTime", "2026-01-02 03:04:05.000000Z",
                     'cannot parse " 03:04:05.000000Z" as "T"', id="MicroTime with a space for T"),
        pytest.param("acquireTime", "2026-01-02T03:04:05.000000+25:00",
                     "time zone offset hour out of range", id="MicroTime with a 25-hour offset"),
        pytest.param("acquireTime", 5, "json: cannot unmarshal number into Go struct field "
                     "LeaseSpec.spec.acquireTime of type string",
                     id="MicroTime as a number"),
    ],
)  # fmt: skip
def test_micro_time_decoding(api: Api, field: str, value: Any, error: str) -> None:
    """metav1.MicroTime's decoder (RFC 3339, exactly six fractional digits): Go's own error"""
    body = {"metadata": {"name": "l"}, "spec": {field: value}}
    answer = api.post(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", **body})
    assert answer.status == 400 and answer.reason == "BadRequest"
    assert answer.message.startswith('Lease in version "v1" cannot be handled as a Lease: ')
    assert answer.message.endswith(error), answer.message


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        pytest.param("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z", id="Z"),
        pytest.param("2026-01-02T03:04:05.5+01:00", "2026-01-02T02:04:05Z",
                     id="a fraction the layout does not name, an offset"),
        pytest.param("2026-01-02T3:04:05Z", "2026-01-02T03:04:05Z", id="a one-digit hour"),
    ],
)  # fmt: skip
def test_time_accepts_what_go_accepts(api: Api, value: str, stored: str) -> None:
    """metav1.Time (RFC 3339 as Go parses it, lenient on fractions and one-digit hours) is
    accepted and read back at second precision in UTC"""
    created = api.post(CORE, core_event("t", lastTimestamp=value))
    assert created.status == 201, created.message
    assert api.get(f"{CORE}/t").body["lastTimestamp"] == stored


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param("2026-01-02T03:04:05", 'cannot parse "" as "Z07:00"', id="no zone"),
        pytest.param("2026-13-02T03:04:05Z", "month out of range", id="month 13"),
        pytest.param("2026-01-02T03:04:05Z07:00", 'extra text: "07:00"', id="Z and an offset"),
        pytest.param("yesterday", 'cannot parse "yesterday" as "2006"', id="not a time"),
    ],
)
def test_time_refuses_what_go_refuses(api: Api, value: str, error: str) -> None:
    """metav1.Time's decoder: Go's time.Parse(RFC3339) error, as a 400"""
    answer = api.post(CORE, core_event("t", lastTimestamp=value))
    assert answer.status == 400 and answer.reason == "BadRequest"
    assert answer.message.startswith('Event in version "v1" cannot be handled as a Event: ')
    assert answer.message.endswith(error), answer.message
