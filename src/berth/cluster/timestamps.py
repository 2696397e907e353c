"""Timestamps in upstream's wire format, whatever format the client sent.

The API server decodes and re-encodes every object, so a Go client always reads `metav1.Time` as
`2006-01-02T15:04:05Z` and `metav1.MicroTime` as `2006-01-02T15:04:05.000000Z`. Python clients send
`+00:00` offsets and other variants that client-go cannot decode (kubectl then silently drops the
object), so the known time fields of each resource are normalised on write.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from berth.cluster import gotime

JSON = dict[str, Any]

# resource key → [(path, micro)], "[]" marks a list of objects.
_FIELDS: dict[str, list[tuple[str, bool]]] = {
    "events": [
        ("eventTime", True),
        ("series.lastObservedTime", True),
        ("firstTimestamp", False),
        ("lastTimestamp", False),
    ],
    "leases.coordination.k8s.io": [("spec.acquireTime", True), ("spec.renewTime", True)],
    "pods": [
        ("status.startTime", False),
        ("status.conditions[].lastTransitionTime", False),
        ("status.conditions[].lastProbeTime", False),
    ],
    "nodes": [
        ("status.conditions[].lastTransitionTime", False),
        ("status.conditions[].lastHeartbeatTime", False),
    ],
    "poddisruptionbudgets.policy": [("status.conditions[].lastTransitionTime", False)],
    "podgroups.scheduling.x-k8s.io": [("status.scheduleStartTime", False)],
}


_TIME = re.compile(r"[0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z\Z")
_MICRO = re.compile(r"[0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]{6}Z\Z")


def format_time(value: str, *, micro: bool) -> str:
    """`value` (any ISO 8601 form) as metav1.Time or metav1.MicroTime; unparseable is kept."""
    if (_MICRO if micro else _TIME).match(value):  # already in wire format: most writes
        return value
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        try:  # what Go's decoder reads and Python's does not (a one-digit hour, a comma)
            go = gotime.parse(gotime.RFC3339_MICRO if micro else gotime.RFC3339, value)
        except gotime.ParseError:
            return value
        if go is None:
            return value
        parsed = go
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.UTC)
    if micro:
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fix(node: Any, parts: list[str], micro: bool) -> Any:
    """A copy of `node` with the field at `parts` normalised (shares untouched subtrees)."""
    if not isinstance(node, dict) or not parts:
        return node
    head, rest = parts[0], parts[1:]
    is_list = head.endswith("[]")
    key = head[:-2] if is_list else head
    if key not in node or node[key] is None:
        return node
    value = node[key]
    if is_list:
        if not isinstance(value, list):
            return node
        new_value: Any = [_fix(item, rest, micro) for item in value]
    elif not rest:
        if not isinstance(value, str):
            return node
        new_value = format_time(value, micro=micro)
    else:
        new_value = _fix(value, rest, micro)
    if new_value is value or new_value == value:
        return node
    out = dict(node)
    out[key] = new_value
    return out


def normalize(key: str, obj: JSON) -> JSON:
    """`obj` with the time fields of resource `key` in upstream's wire format."""
    fields = _FIELDS.get(key)
    if not fields:
        return obj
    out: JSON = obj
    for path, micro in fields:
        out = _fix(out, path.split("."), micro)
    return out
