"""What the API server does to an object between decoding and storing it.

System metadata on create (uid, creationTimestamp, generation, generateName), upstream's pod
defaults and the Priority and DefaultTolerationSeconds admission plugins, and the rules of an
update (immutable metadata kept, status only through /status, pod spec mostly immutable;
scheduling gates may only be removed, and a gated pod's nodeSelector only extended). A pod
created with scheduling gates gets upstream's PodScheduled=False/SchedulingGated condition.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from berth.cluster.errors import ApiError, forbidden, invalid
from berth.cluster.resources import PODS, ResourceType
from berth.objects.names import generate_name

JSON = dict[str, Any]
PriorityLookup = Callable[[str | None], JSON | None]

_last_stamp: tuple[int, str] = (0, "")


def now() -> str:
    """The current time as RFC 3339 with second precision, as upstream's metav1.Time."""
    global _last_stamp
    second = int(time.time())
    if _last_stamp[0] != second:
        _last_stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _last_stamp[1]


def now_micro() -> str:
    """The current time as metav1.MicroTime (RFC 3339 with microseconds)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def prepare_create(rt: ResourceType, obj: JSON, *, namespace: str | None) -> JSON:
    """A new object with the system metadata the API server sets on create."""
    meta = dict(obj.get("metadata") or {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generate_name(str(meta["generateName"]))
    if rt.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise ApiError(
                code=400,
                reason="BadRequest",
                message="the namespace of the provided object does not match the namespace "
                "sent on the request",
            )
        meta["namespace"] = namespace or body_ns or "default"
    else:
        meta.pop("namespace", None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now()
    meta.pop("resourceVersion", None)
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    if "spec" in obj or rt.custom:
        meta["generation"] = 1
    out = dict(obj)
    out["metadata"] = meta
    out["apiVersion"] = rt.api_version
    out["kind"] = rt.kind
    return out


def prepare_update(rt: ResourceType, new: JSON, old: JSON, *, subresource: str) -> JSON:
    """The object to store for an update of `old` to `new` through the main resource or /status."""
    old_meta = old["metadata"]
    if subresource == "status":
        out = dict(old)
        if "status" in new:
            out["status"] = new["status"]
        else:
            out.pop("status", None)
        meta = dict(old_meta)
        return {**out, "metadata": meta}
    meta = dict(new.get("metadata") or {})
    for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta["name"] = old_meta["name"]
    if rt.namespaced:
        meta["namespace"] = old_meta["namespace"]
    out = dict(new)
    out["apiVersion"] = rt.api_version
    out["kind"] = rt.kind
    if rt.status_subresource:
        if "status" in old:
            out["status"] = old["status"]
        else:
            out.pop("status", None)
    if "generation" in old_meta:
        changed = out.get("spec") != old.get("spec")
        if rt.custom:
            changed = any(
                out.get(k) != old.get(k)
                for k in set(out) | set(old)
                if k not in ("metadata", "status")
            )
        meta["generation"] = old_meta["generation"] + (1 if changed else 0)
    out["metadata"] = meta
    if rt is PODS:
        _check_pod_update(out, old)
    return out


_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
SCHEDULING_GATED_MESSAGE = "Scheduling is blocked due to non-empty scheduling gates"


def _gate_names(spec: JSON) -> list[str]:
    return [str(g.get("name")) for g in spec.get("schedulingGates") or [] if isinstance(g, dict)]


def _check_pod_update(new: JSON, old: JSON) -> None:
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    if ns == os_:
        return
    causes: list[tuple[str, str, str]] = []
    # upstream validateOnlyDeletedSchedulingGates: gates may be removed, never added.
    old_gates = set(_gate_names(os_))
    for i, gate in enumerate(_gate_names(ns)):
        if gate not in old_gates:
            causes.append(
                (
                    "FieldValueForbidden",
                    f"spec.schedulingGates[{i}].name",
                    f"Forbidden: only deletion is allowed, but found new scheduling gate '{gate}'",
                )
            )
    mutable = {*_POD_MUTABLE, "schedulingGates"}
    if old_gates:
        # A gated pod may get more node selector entries (upstream validateNodeSelectorMutation).
        new_sel, old_sel = ns.get("nodeSelector") or {}, os_.get("nodeSelector") or {}
        if new_sel != old_sel:
            mutable.add("nodeSelector")
            if any(new_sel.get(k) != v for k, v in old_sel.items()):
                value = json.dumps(new_sel, sort_keys=True, separators=(",", ":"))
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.nodeSelector",
                        f"Invalid value: {value}: only additions to spec.nodeSelector are "
                        "allowed (no mutations or deletions)",
                    )
                )
    strip_new = {k: v for k, v in ns.items() if k not in mutable}
    strip_old = {k: v for k, v in os_.items() if k not in mutable}
    for s in (strip_new, strip_old):
        for kind in ("containers", "initContainers"):
            if kind in s:
                s[kind] = [{k: v for k, v in c.items() if k != "image"} for c in s[kind]]
    if strip_new != strip_old:
        causes.append(
            (
                "FieldValueForbidden",
                "spec",
                "Forbidden: pod updates may not change fields other than "
                "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 "
                "if it was previously negative)",
            )
        )
    if causes:
        raise invalid(kind="Pod", group="", name=old["metadata"]["name"], causes=causes)


def scheduling_gated_condition(status: JSON, spec: JSON) -> JSON:
    """upstream applySchedulingGatedCondition (pod strategy PrepareForCreate): a pod created
    with gates and no PodScheduled condition gets PodScheduled=False, reason SchedulingGated."""
    if not spec.get("schedulingGates"):
        return status
    conditions = list(status.get("conditions") or [])
    if any(c.get("type") == "PodScheduled" for c in conditions if isinstance(c, dict)):
        return status
    conditions.append(
        {
            "type": "PodScheduled",
            "status": "False",
            "lastProbeTime": None,
            "lastTransitionTime": now(),
            "reason": "SchedulingGated",
            "message": SCHEDULING_GATED_MESSAGE,
        }
    )
    return {**status, "conditions": conditions}


def default_container(c: JSON, *, pod: bool = True) -> JSON:
    """SetDefaults_Container and its ports; for a pod (not a pod template), requests default to
    limits too (SetDefaults_Pod)."""
    c = dict(c)
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if "imagePullPolicy" not in c:
        image = str(c.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    resources = dict(c.get("resources") or {})
    limits = resources.get("limits")
    if limits and pod:
        requests = dict(resources.get("requests") or {})
        for k, v in limits.items():
            requests.setdefault(k, v)
        resources["requests"] = requests
    c["resources"] = resources
    if c.get("ports"):
        c["ports"] = [{"protocol": "TCP", **p} if isinstance(p, dict) else p for p in c["ports"]]
    return c


def _qos(containers: list[JSON]) -> str:
    requests_any = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            requests_any = True
        for r in ("cpu", "memory"):
            if r not in lim or req.get(r, lim[r]) != lim[r]:
                guaranteed = False
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _covers(t: JSON, key: str) -> bool:
    if t.get("effect") not in (None, "", "NoExecute"):
        return False
    return t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists")


def _default_tolerations(tolerations: list[JSON]) -> list[JSON]:
    out = list(tolerations)
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(_covers(t, key) for t in out):
            out.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    return out


def default_pod(pod: JSON, *, priority_class: PriorityLookup) -> JSON:
    """Upstream's pod defaults plus the Priority and DefaultTolerationSeconds admission."""
    spec = dict(pod.get("spec") or {})
    name = pod["metadata"].get("name", "")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec["containers"] = [default_container(c) for c in spec.get("containers") or []]
    if spec.get("initContainers"):
        spec["initContainers"] = [default_container(c) for c in spec["initContainers"]]
    spec["tolerations"] = _default_tolerations(spec.get("tolerations") or [])

    pc_name = spec.get("priorityClassName")
    pc = priority_class(pc_name)
    if pc_name and pc is None:
        raise forbidden(
            plural="pods",
            group="",
            name=name,
            why=f"no PriorityClass with name {pc_name} was found",
        )
    value = int(pc["value"]) if pc is not None else 0
    if "priority" in spec and spec["priority"] != value:
        raise forbidden(
            plural="pods",
            group="",
            name=name,
            why=f"the integer value of priority ({spec['priority']}) must not be provided in pod "
            f"spec; priority admission controller computed {value} from the given PriorityClass "
            "name",
        )
    spec["priority"] = value
    if pc is not None and not pc_name:
        spec["priorityClassName"] = pc["metadata"]["name"]
    default_policy = (pc or {}).get("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("preemptionPolicy", default_policy)

    status = dict(pod.get("status") or {})
    status.setdefault("phase", "Pending")
    status["qosClass"] = _qos(spec["containers"])
    status = scheduling_gated_condition(status, spec)
    out = dict(pod)
    out["spec"] = spec
    out["status"] = status
    return out
