"""Events' own validation (pkg/apis/core/validation/events.go): the legacy rules every write
passes, and the strict ones of writes through events.k8s.io/v1, in upstream's order and words.

An event with an eventTime is a "new" event and needs its reporting controller, instance,
action and reason; one without only has to agree with its involved object's namespace. The
strict rules refuse the deprecated core fields, which the events.k8s.io API names by their core
names (`firstTimestamp`, `count`, `source`), as upstream's internal type does.
"""

from __future__ import annotations

from typing import Any

from berth.cluster.validation import invalid_value
from berth.objects.names import qualified_name_errors

JSON = dict[str, Any]
Cause = tuple[str, str, str]

REPORTING_INSTANCE_LIMIT = ACTION_LIMIT = REASON_LIMIT = 128
NOTE_LIMIT = 1024
# Fields an events.k8s.io/v1 update may not change (ValidateEventUpdate), in its order; the
# time fields and references are compared as stored.
_IMMUTABLE = (
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "reason",
    "type",
    "eventTime",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
)
# internal (core) name -> the field path upstream's errors use for an events.k8s.io write
_STRICT_PATH = {"reportingComponent": "reportingController"}


def _str(event: JSON, key: str) -> str:
    value = event.get(key)
    return value if isinstance(value, str) else ""


def _set(value: Any) -> bool:
    """A time or count field that is not its zero value."""
    return value not in (None, "", 0)


def legacy_causes(event: JSON, *, core_api: bool) -> list[Cause]:
    """legacyValidateEvent (`core_api`: the write came through core/v1)."""
    causes: list[Cause] = []
    meta = event.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    involved = event.get("involvedObject") or {}
    involved_ns = str(involved.get("namespace") or "") if isinstance(involved, dict) else ""
    mismatch = (
        "FieldValueInvalid",
        "involvedObject.namespace",
        f"Invalid value: {invalid_value(involved_ns)}: does not match event.namespace",
    )
    if not _set(event.get("eventTime")):
        if not involved_ns:
            if namespace not in ("", "default"):
                causes.append(mismatch)
        elif namespace != involved_ns:
            causes.append(mismatch)
        return causes
    if not involved_ns and namespace not in ("default", "kube-system"):
        causes.append(mismatch)
    controller_path = "reportingComponent" if core_api else "reportingController"
    controller = _str(event, "reportingComponent")
    if not controller:
        causes.append(("FieldValueRequired", controller_path, "Required value"))
    causes += [
        ("FieldValueInvalid", controller_path, f"Invalid value: {invalid_value(controller)}: {msg}")
        for msg in qualified_name_errors(controller)
    ]
    for key, limit in (
        ("reportingInstance", REPORTING_INSTANCE_LIMIT),
        ("action", ACTION_LIMIT),
        ("reason", REASON_LIMIT),
    ):
        value = _str(event, key)
        if not value:
            causes.append(("FieldValueRequired", key, "Required value"))
        if len(value) > limit:
            too_long = f'Invalid value: "": can have at most {limit} characters'
            causes.append(("FieldValueInvalid", key, too_long))
    if len(_str(event, "message")) > NOTE_LIMIT:
        causes.append(
            ("FieldValueInvalid", "message",
             f'Invalid value: "": can have at most {NOTE_LIMIT} characters')
        )  # fmt: skip
    return causes


def _series_causes(event: JSON) -> list[Cause]:
    series = event.get("series")
    if not isinstance(series, dict):
        return []
    causes: list[Cause] = []
    count = series.get("count")
    if not isinstance(count, int) or count < 2:
        at_least = 'Invalid value: "": should be at least 2'
        causes.append(("FieldValueInvalid", "series.count", at_least))
    if not _set(series.get("lastObservedTime")):
        causes.append(("FieldValueRequired", "series.lastObservedTime", "Required value"))
    return causes


def strict_create_causes(event: JSON) -> list[Cause]:
    """ValidateEventCreate's rules for events.k8s.io/v1, after the legacy ones."""
    causes = _series_causes(event)
    if not _set(event.get("eventTime")):
        causes.append(("FieldValueRequired", "eventTime", "Required value"))
    kind = _str(event, "type")
    if kind not in ("Normal", "Warning"):
        bad = f'Invalid value: "": has invalid value: {kind}'
        causes.append(("FieldValueInvalid", "type", bad))
    for key in ("firstTimestamp", "lastTimestamp", "count"):
        if _set(event.get(key)):
            causes.append(("FieldValueInvalid", key, 'Invalid value: "": needs to be unset'))
    source = event.get("source") or {}
    if isinstance(source, dict) and (source.get("component") or source.get("host")):
        causes.append(("FieldValueInvalid", "source", 'Invalid value: "": needs to be unset'))
    return causes


def strict_update_causes(new: JSON, old: JSON) -> list[Cause]:
    """ValidateEventUpdate's rules for events.k8s.io/v1, after the legacy ones: a changed series
    is validated, and what the event reported never changes."""
    causes = _series_causes(new) if new.get("series") != old.get("series") else []
    for key in _IMMUTABLE:  # reason is listed twice upstream, and so reported twice
        if _empty(new.get(key)) != _empty(old.get(key)):
            causes.append(_immutable(key, new.get(key)))
    return causes


def _empty(value: Any) -> Any:
    """A value as Go compares it: an absent field is its zero value."""
    return None if value in (None, "", 0, {}) else value


def _immutable(key: str, value: Any) -> Cause:
    if value is None:  # absent: Go shows the zero value of the field's type
        shown = '""' if key in ("reason", "message", "type", "action") else "null"
    else:
        shown = invalid_value(value)
    path = _STRICT_PATH.get(key, key)
    return ("FieldValueInvalid", path, f"Invalid value: {shown}: field is immutable")
