"""One event storage, two APIs: events.k8s.io/v1 is a view of core/v1 events, as upstream.

A scheduler that records `Scheduled` through events.k8s.io/v1 is seen by `kubectl describe pod`
(which reads core/v1), and the other way round. Objects are stored in core/v1 shape and converted
field by field on the way in and out of the events.k8s.io API.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

# events.k8s.io/v1 field ↔ core/v1 field
_RENAMES = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)
_SAME = (
    "metadata",
    "eventTime",
    "series",
    "reportingInstance",
    "action",
    "reason",
    "related",
    "type",
)
_TO_CORE = dict(_RENAMES)
_TO_NEW = {core: new for new, core in _RENAMES}


def to_core(event: JSON) -> JSON:
    """An events.k8s.io/v1 Event as the core/v1 Event it is stored as."""
    out: JSON = {"apiVersion": "v1", "kind": "Event"}
    for key, value in event.items():
        if key in _SAME:
            out[key] = value
        elif key in _TO_CORE:
            out[_TO_CORE[key]] = value
    out.setdefault("involvedObject", {})
    if "series" in out and isinstance(out["series"], dict):
        out["series"] = {
            k: v for k, v in out["series"].items() if k in ("count", "lastObservedTime")
        }
    return out


def to_new(event: JSON) -> JSON:
    """A stored core/v1 Event as events.k8s.io/v1 shows it."""
    out: JSON = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key, value in event.items():
        if key in _SAME:
            out[key] = value
        elif key in _TO_NEW:
            out[_TO_NEW[key]] = value
    out.setdefault("deprecatedSource", {})  # structs upstream always encodes
    out.setdefault("regarding", {})
    if not out.get("eventTime"):
        # Required by events.k8s.io/v1 clients; legacy events only have second-precision times.
        stamp = event.get("firstTimestamp") or event.get("lastTimestamp")
        stamp = stamp or event.get("metadata", {}).get("creationTimestamp")
        out["eventTime"] = stamp.replace("Z", ".000000Z") if isinstance(stamp, str) else stamp
    return out


def core_field(path: str) -> str:
    """The core/v1 field-selector label for an events.k8s.io/v1 one."""
    head, _, rest = path.partition(".")
    mapped = _TO_CORE.get(head, head)
    return f"{mapped}.{rest}" if rest else mapped


def core_selector(text: str | None) -> str | None:
    """An events.k8s.io/v1 field selector rewritten in core/v1 field labels."""
    if not text:
        return text
    parts = []
    for clause in text.split(","):
        for op in ("!=", "==", "="):
            if op in clause:
                path, _, value = clause.partition(op)
                clause = f"{core_field(path.strip())}{op}{value}"
                break
        parts.append(clause)
    return ",".join(parts)
