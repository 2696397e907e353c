"""Server-side printing: `meta.k8s.io/v1` Table responses, as `kubectl get` asks for them.

Columns are upstream's (pkg/printers/internalversion/printers.go) for pods, nodes, namespaces,
events, ConfigMaps, Leases, PodDisruptionBudgets, PriorityClasses and the resource.k8s.io kinds
(workloads, Services, EndpointSlices, ControllerRevisions: workload_tables.py; volumes and
storage classes: storage_tables.py; RBAC and webhook configurations: access_tables.py); other
resources get NAME and AGE, which is what upstream prints for custom resources.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterable
from typing import Any

from berth.cluster.resources import ResourceType

JSON = dict[str, Any]
Column = tuple[str, str, int]  # name, type, priority
Row = Callable[[JSON], list[Any]]

TABLE_ACCEPT = "as=Table"


def wants_table(accept: str) -> bool:
    return TABLE_ACCEPT in accept and "g=meta.k8s.io" in accept


def _seconds_since(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        t = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    return max(0.0, time.time() - t)


def human_duration(seconds: float | None) -> str:
    """apimachinery's duration.HumanDuration."""
    if seconds is None:
        return "<unknown>"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        return f"{h // 24 // 365}y{h // 24 % 365}d"
    return f"{h // 24 // 365}y"


def _age(obj: JSON) -> str:
    return human_duration(_seconds_since(obj.get("metadata", {}).get("creationTimestamp")))


def _name(obj: JSON) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _pod_row(pod: JSON) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    reason = status.get("reason") or status.get("phase") or "Pending"
    # upstream printPod: a PodScheduled condition with reason SchedulingGated names the status.
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    for c in reversed(statuses):  # upstream walks them last to first
        state = c.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
        elif isinstance(terminated, dict):
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"
            )
    if reason == "Pending" and spec.get("nodeName") and not statuses:
        reason = "ContainerCreating"
    terminal = status.get("phase") in ("Succeeded", "Failed")
    if pod.get("metadata", {}).get("deletionTimestamp") and not terminal:
        reason = "Terminating"
    gates = spec.get("readinessGates") or []
    if gates:
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        done = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gates_cell = f"{done}/{len(gates)}"
    else:
        gates_cell = "<none>"
    return [
        _name(pod),
        f"{ready}/{len(containers)}",
        reason,
        str(restarts),
        _age(pod),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_cell,
    ]


def _node_row(node: JSON) -> list[Any]:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    state = {"True": "Ready", "False": "NotReady"}.get(conds.get("Ready", ""), "Unknown")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node.get("metadata", {}).get("labels") or {}
    roles = sorted(
        k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k
    )
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [
        _name(node),
        state,
        ",".join(r for r in roles if r) or "<none>",
        _age(node),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP") or "<none>",
        addresses.get("ExternalIP") or "<none>",
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _namespace_row(ns: JSON) -> list[Any]:
    return [_name(ns), (ns.get("status") or {}).get("phase", "Active"), _age(ns)]


def _event_row(ev: JSON) -> list[Any]:
    """upstream printEvent (wide cells: the server always sends them, kubectl hides them)."""
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    first = human_duration(_seconds_since(ev.get("firstTimestamp") or ev.get("eventTime")))
    last = first
    if ev.get("lastTimestamp"):
        last = human_duration(_seconds_since(ev["lastTimestamp"]))
    count = ev.get("count") or 1  # singleton events of the new API have no count
    series = ev.get("series")
    if isinstance(series, dict):
        last = human_duration(_seconds_since(series.get("lastObservedTime")))
        count = series.get("count") or count
    kind, name = str(obj.get("kind", "")).lower(), obj.get("name", "")
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    instance = source.get("host") or ev.get("reportingInstance") or ""
    return [
        last,
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{kind}/{name}" if name else kind,
        obj.get("fieldPath", ""),
        f"{component}, {instance}" if instance else component,
        str(ev.get("message") or ev.get("note") or "").strip(),
        first,
        int(count),
        _name(ev),
    ]


def _claim_state(claim: JSON) -> str:
    """upstream resourceClaimState."""
    deleted = bool((claim.get("metadata") or {}).get("deletionTimestamp"))
    status = claim.get("status") or {}
    states = ["deleted"] if deleted else []
    if status.get("allocation") is None:
        if not deleted:
            states.append("pending")
    else:
        states.append("allocated")
        if status.get("reservedFor"):
            states.append("reserved")
    return ",".join(states)


def _slice_row(obj: JSON) -> list[Any]:
    spec = obj.get("spec") or {}
    pool = spec.get("pool") or {}
    return [
        _name(obj),
        spec.get("nodeName") or "",
        spec.get("driver", ""),
        pool.get("name", ""),
        _age(obj),
    ]


def _taint_rule_row(obj: JSON) -> list[Any]:
    taint = (obj.get("spec") or {}).get("taint") or {}
    added = taint.get("timeAdded")
    time_added = human_duration(_seconds_since(added)) if added else ""
    return [_name(obj), taint.get("key", ""), taint.get("value", ""), taint.get("effect", ""),
            time_added, _age(obj)]  # fmt: skip


def _int_or_string(value: Any) -> str:
    """intstr.IntOrString.String(), or N/A when unset (a PodDisruptionBudget's bounds)."""
    return "N/A" if value is None else str(value)


def _pdb_row(pdb: JSON) -> list[Any]:
    spec = pdb.get("spec") or {}
    allowed = (pdb.get("status") or {}).get("disruptionsAllowed", 0)
    return [_name(pdb), _int_or_string(spec.get("minAvailable")),
            _int_or_string(spec.get("maxUnavailable")), allowed, _age(pdb)]  # fmt: skip


def _priority_class_row(pc: JSON) -> list[Any]:
    return [_name(pc), pc.get("value", 0), bool(pc.get("globalDefault", False)), _age(pc),
            pc.get("preemptionPolicy", "")]  # fmt: skip


_NAME: Column = ("Name", "string", 0)
_AGE: Column = ("Age", "string", 0)
# Kinds of other groups, by ResourceType.key
_KEYED_TABLES: dict[str, tuple[list[Column], Row]] = {
    "configmaps": (
        [_NAME, ("Data", "string", 0), _AGE],
        lambda cm: [
            _name(cm),
            len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            _age(cm),
        ],
    ),
    "serviceaccounts": ([_NAME, _AGE], lambda sa: [_name(sa), _age(sa)]),
    "leases.coordination.k8s.io": (
        [_NAME, ("Holder", "string", 0), _AGE],
        lambda ls: [_name(ls), (ls.get("spec") or {}).get("holderIdentity") or "", _age(ls)],
    ),
    "poddisruptionbudgets.policy": (
        [
            _NAME,
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            _AGE,
        ],
        _pdb_row,
    ),
    "priorityclasses.scheduling.k8s.io": (
        [
            _NAME,
            ("Value", "integer", 0),
            ("Global-Default", "boolean", 0),
            _AGE,
            ("PreemptionPolicy", "string", 0),
        ],
        _priority_class_row,
    ),
}
# resource.k8s.io: DeviceClasses and ResourceClaimTemplates print NAME and AGE
_RESOURCE_TABLES: dict[str, tuple[list[Column], Row]] = {
    "resourceclaims": (
        [_NAME, ("State", "string", 0), _AGE],
        lambda obj: [_name(obj), _claim_state(obj), _age(obj)],
    ),
    "resourceslices": (
        [_NAME, ("Node", "string", 0), ("Driver", "string", 0), ("Pool", "string", 0), _AGE],
        _slice_row,
    ),
    "devicetaintrules": (
        [
            _NAME,
            ("Key", "string", 0),
            ("Value", "string", 0),
            ("Effect", "string", 0),
            ("TimeAdded", "string", 0),
            _AGE,
        ],
        _taint_rule_row,
    ),
}
_TABLES: dict[str, tuple[list[Column], Row]] = {
    "pods": (
        [
            _NAME,
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod_row,
    ),
    "nodes": (
        [
            _NAME,
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        _node_row,
    ),
    "namespaces": ([_NAME, ("Status", "string", 0), ("Age", "string", 0)], _namespace_row),
    "events": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        _event_row,
    ),
}


def _columns(rt: ResourceType) -> tuple[list[Column], Row]:
    if rt.group in ("", "events.k8s.io") and rt.plural in _TABLES:
        return _TABLES[rt.plural]
    if rt.group == "resource.k8s.io" and rt.plural in _RESOURCE_TABLES:
        return _RESOURCE_TABLES[rt.plural]
    from berth.cluster.access_tables import TABLES as ACCESS
    from berth.cluster.storage_tables import TABLES as STORAGE
    from berth.cluster.workload_tables import TABLES as WORKLOADS

    for tables in (_KEYED_TABLES, WORKLOADS, STORAGE, ACCESS):
        if rt.key in tables:
            return tables[rt.key]
    return [_NAME, ("Age", "string", 0)], lambda obj: [_name(obj), _age(obj)]


def _partial(rt: ResourceType, obj: JSON, include: str) -> JSON | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(
    rt: ResourceType,
    objects: Iterable[JSON],
    *,
    resource_version: str,
    include_object: str = "Metadata",
    headers: bool = True,
    listing: bool = False,
) -> JSON:
    """A `meta.k8s.io/v1` Table of `objects` (`listing`: a list's, where a kind prints the list
    as a whole)."""
    from berth.cluster.storage_tables import LIST_ROWS

    columns, row = _columns(rt)
    items = list(objects)
    whole = LIST_ROWS.get(rt.key) if listing else None
    cells = whole(items) if whole is not None else [row(obj) for obj in items]
    rows = [
        {"cells": c, "object": _partial(rt, obj, include_object)}
        for c, obj in zip(cells, items, strict=True)
    ]
    out: JSON = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "rows": rows,
    }
    if headers:
        out["columnDefinitions"] = [
            {
                "name": name,
                "type": typ,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": prio,
            }
            for name, typ, prio in columns
        ]
    return out
