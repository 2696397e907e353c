"""The API server's side of workloads and Services: upstream's decode-time defaults
(pkg/apis/{apps,batch,core}/v1/defaults.go), their 422 checks (pkg/apis/apps/validation,
pkg/apis/batch/validation) and the autoscaling/v1 Scale view behind `/scale`.

The controllers that act on these objects live in `controllers/`; this module only shapes what
is stored, so a Deployment read back looks as it does from kube-apiserver.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from berth.cluster import errors
from berth.cluster.admission import default_container
from berth.cluster.resources import (
    CONTROLLER_REVISIONS,
    DAEMON_SETS,
    DEPLOYMENTS,
    JOBS,
    REPLICA_SETS,
    REPLICATION_CONTROLLERS,
    SERVICES,
    STATEFUL_SETS,
    ResourceType,
)
from berth.cluster.selectors import label_selector_matches, label_selector_string
from berth.cluster.validation import (
    Cause,
    invalid_value,
    label_causes,
    label_selector_causes,
    pod_spec_causes,
)

JSON = dict[str, Any]

# --- defaults ----------------------------------------------------------------------------------


def default_pod_spec(spec: JSON) -> JSON:
    """SetDefaults_PodSpec and the containers' defaults: what a pod template gets."""
    spec = dict(spec)
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    elif spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for kind in ("containers", "initContainers"):
        if isinstance(spec.get(kind), list):
            spec[kind] = [
                default_container(c, pod=False) if isinstance(c, dict) else c for c in spec[kind]
            ]
    return spec


def _template(spec: JSON) -> JSON:
    template = spec.get("template")
    if not isinstance(template, dict):
        return spec
    template = dict(template)
    template.setdefault("metadata", {})
    if isinstance(template.get("spec"), dict):
        template["spec"] = default_pod_spec(template["spec"])
    return {**spec, "template": template}


def _deployment(spec: JSON) -> JSON:
    spec.setdefault("replicas", 1)
    strategy = dict(spec.get("strategy") or {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = dict(strategy.get("rollingUpdate") or {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
        strategy["rollingUpdate"] = rolling
    spec["strategy"] = strategy
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    return spec


def _statefulset(spec: JSON) -> JSON:
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = dict(spec.get("updateStrategy") or {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        strategy.setdefault("rollingUpdate", {})
    if strategy["type"] == "RollingUpdate" and isinstance(strategy.get("rollingUpdate"), dict):
        strategy["rollingUpdate"] = {"partition": 0, **strategy["rollingUpdate"]}
    spec["updateStrategy"] = strategy
    retention = dict(spec.get("persistentVolumeClaimRetentionPolicy") or {})
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    spec["persistentVolumeClaimRetentionPolicy"] = retention
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    return spec


def _daemonset(spec: JSON) -> JSON:
    strategy = dict(spec.get("updateStrategy") or {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = dict(strategy.get("rollingUpdate") or {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
        strategy["rollingUpdate"] = rolling
    spec["updateStrategy"] = strategy
    spec.setdefault("revisionHistoryLimit", 10)
    return spec


def _job(spec: JSON) -> JSON:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault(
        "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    )
    spec.setdefault("manualSelector", False)
    return spec


def _replicas(spec: JSON) -> JSON:
    return {"replicas": 1, **spec}


_SPEC_DEFAULTS: dict[str, Callable[[JSON], JSON]] = {
    DEPLOYMENTS.key: _deployment,
    REPLICA_SETS.key: _replicas,
    STATEFUL_SETS.key: _statefulset,
    DAEMON_SETS.key: _daemonset,
    JOBS.key: _job,
    REPLICATION_CONTROLLERS.key: _replicas,
}
WORKLOAD_KEYS = frozenset(_SPEC_DEFAULTS)


def default_workload(rt: ResourceType, obj: JSON) -> JSON:
    """A workload with upstream's defaults (its spec, its pod template's spec)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    spec = _SPEC_DEFAULTS[rt.key](_template(dict(spec)))
    out = {**obj, "spec": spec}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if rt is REPLICATION_CONTROLLERS and template_labels:
        if not spec.get("selector"):
            spec["selector"] = dict(template_labels)
        if not (obj["metadata"].get("labels")):
            out["metadata"] = {**obj["metadata"], "labels": dict(template_labels)}
    if rt is JOBS and template_labels and not obj["metadata"].get("labels"):
        out["metadata"] = {**obj["metadata"], "labels": dict(template_labels)}
    return out


JOB_LABELS = (
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
    "controller-uid",
    "job-name",
)


def job_selector(job: JSON) -> JSON:
    """The Job strategy's PrepareForCreate: without manualSelector, the selector and the pod
    template's labels are the Job's uid and name."""
    spec = dict(job.get("spec") or {})
    if spec.get("manualSelector"):
        return job
    meta = job["metadata"]
    uid, name = meta["uid"], meta["name"]
    values = (uid, name, uid, name)
    template = dict(spec.get("template") or {})
    tmeta = dict(template.get("metadata") or {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), **dict(zip(JOB_LABELS, values, strict=True))}
    template["metadata"] = tmeta
    spec["template"] = template
    spec["selector"] = {"matchLabels": {JOB_LABELS[0]: uid}}
    return {**job, "spec": spec}


# --- Services ----------------------------------------------------------------------------------

_SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
_NODE_PORTS = (30000, 32767)


def default_service(svc: JSON, *, used_ips: set[str], used_ports: set[int]) -> JSON:
    """SetDefaults_Service plus what the Service REST storage allocates: a cluster IP from
    10.96.0.0/12 (none for `clusterIP: None`), node ports for NodePort and LoadBalancer."""
    spec = dict(svc.get("spec") or {})
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("type", "ClusterIP")
    ports = []
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            ports.append(p)
            continue
        p = {"protocol": "TCP", **p}
        if p.get("targetPort") in (None, 0, ""):
            p["targetPort"] = p.get("port")
        if spec["type"] in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
            p["nodePort"] = _free_port(used_ports)
        ports.append(p)
    if ports:
        spec["ports"] = ports
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    if spec["type"] != "ExternalName":
        ip = spec.get("clusterIP")
        if not ip:
            ip = _free_ip(used_ips)
            spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
        if ip != "None":
            spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    status = svc.get("status") or {"loadBalancer": {}}
    return {**svc, "spec": spec, "status": status}


def _free_ip(used: set[str]) -> str:
    # .1 is the `kubernetes` Service's upstream; hand out from .10 up, in order.
    base = int(_SERVICE_CIDR.network_address)
    for offset in range(10, _SERVICE_CIDR.num_addresses - 1):
        ip = str(ipaddress.ip_address(base + offset))
        if ip not in used:
            return ip
    raise errors.internal("the service cluster IP range is full")


def _free_port(used: set[int]) -> int:
    for port in range(_NODE_PORTS[0], _NODE_PORTS[1] + 1):
        if port not in used:
            used.add(port)
            return port
    raise errors.internal("the service node port range is full")


# --- validation --------------------------------------------------------------------------------


_value = invalid_value


def _nonnegative(spec: JSON, field: str, path: str) -> list[Cause]:
    value = spec.get(field)
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [
            (
                "FieldValueInvalid",
                f"{path}.{field}",
                f"Invalid value: {value}: must be greater than or equal to 0",
            )
        ]
    return []


def _selector_causes(spec: JSON, what: str) -> list[Cause]:
    selector = spec.get("selector")
    if selector is None:
        return [("FieldValueRequired", "spec.selector", "Required value")]
    if not isinstance(selector, dict):
        return []
    causes = label_selector_causes("spec.selector", selector)
    if not (selector.get("matchLabels") or {}) and not (selector.get("matchExpressions") or []):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.selector",
                f"Invalid value: {_value(selector)}: empty selector is invalid for {what}",
            )
        )
    return causes


def _template_causes(
    spec: JSON, selector: JSON | None, *, kind: str, restart: tuple[str, ...] = ("Always",)
) -> list[Cause]:
    template = spec.get("template")
    if not isinstance(template, dict):
        return [("FieldValueRequired", "spec.template", "Required value")]
    tmeta = template.get("metadata") or {}
    labels = tmeta.get("labels") or {}
    causes: list[Cause] = []
    # a missing selector selects nothing (LabelSelectorAsSelector(nil)), so it mismatches too
    selects = selector is None or selector.get("matchLabels") or selector.get("matchExpressions")
    if selects and not label_selector_matches(selector, labels, unknown_operator=False):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                f"Invalid value: {_value(labels)}: `selector` does not match template `labels`",
            )
        )
    causes += label_causes(tmeta, "spec.template.metadata")
    tspec = template.get("spec")
    causes += pod_spec_causes(tspec, "spec.template.spec")
    tspec = tspec if isinstance(tspec, dict) else {}
    policy = tspec.get("restartPolicy")
    if restart == ("Always",) and policy != "Always":
        quoted = ", ".join(f'"{r}"' for r in restart)
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.template.spec.restartPolicy",
                f"Unsupported value: {_value(policy or '')}: supported values: {quoted}",
            )
        )
    if restart == ("Always",) and tspec.get("activeDeadlineSeconds") is not None:
        causes.append(
            (
                "FieldValueForbidden",
                "spec.template.spec.activeDeadlineSeconds",
                f"Forbidden: activeDeadlineSeconds in {kind} is not Supported",
            )
        )
    return causes


def _int_or_percent(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1])
    return None


def _deployment_causes(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _nonnegative(spec, "replicas", "spec")
    causes += _selector_causes(spec, "deployment")
    causes += _template_causes(spec, spec.get("selector"), kind="ReplicaSet")
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "Recreate" and rolling is not None:
        causes.append(
            (
                "FieldValueForbidden",
                "spec.strategy.rollingUpdate",
                "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            )
        )
    elif strategy.get("type") not in ("Recreate", "RollingUpdate"):
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.strategy",
                f'Unsupported value: {_value(strategy)}: supported values: "Recreate", '
                '"RollingUpdate"',
            )
        )
    elif isinstance(rolling, dict):
        surge = _int_or_percent(rolling.get("maxSurge"))
        unavailable = _int_or_percent(rolling.get("maxUnavailable"))
        if surge == 0 and unavailable == 0:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    f"Invalid value: {_value(rolling.get('maxUnavailable'))}: may not be 0 when "
                    "`maxSurge` is 0",
                )
            )
    causes += _nonnegative(spec, "minReadySeconds", "spec")
    causes += _nonnegative(spec, "revisionHistoryLimit", "spec")
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        causes += _nonnegative(spec, "progressDeadlineSeconds", "spec")
        if deadline <= int(spec.get("minReadySeconds") or 0):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.progressDeadlineSeconds",
                    f"Invalid value: {deadline}: must be greater than minReadySeconds",
                )
            )
    return causes


def _replicaset_causes(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _nonnegative(spec, "replicas", "spec") + _nonnegative(spec, "minReadySeconds", "spec")
    causes += _selector_causes(spec, "deployment")  # sic: upstream's message for ReplicaSets
    causes += _template_causes(spec, spec.get("selector"), kind="ReplicaSet")
    return causes


def _statefulset_causes(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    policy = spec.get("podManagementPolicy")
    if policy not in ("OrderedReady", "Parallel"):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.podManagementPolicy",
                f"Invalid value: {_value(policy)}: must be 'OrderedReady' or 'Parallel'",
            )
        )
    causes += _nonnegative(spec, "replicas", "spec")
    causes += _selector_causes(spec, "statefulset")
    causes += _template_causes(spec, spec.get("selector"), kind="StatefulSet")
    return causes


def _daemonset_causes(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _selector_causes(spec, "daemonset")
    causes += _template_causes(spec, spec.get("selector"), kind="DaemonSet")
    return causes


def _job_causes(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    for field in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit"):
        causes += _nonnegative(spec, field, "spec")
    template = spec.get("template") or {}
    tspec = template.get("spec") if isinstance(template, dict) else None
    causes += label_causes((template or {}).get("metadata") or {}, "spec.template.metadata")
    causes += pod_spec_causes(tspec, "spec.template.spec")
    policy = (tspec or {}).get("restartPolicy") if isinstance(tspec, dict) else None
    if policy not in ("OnFailure", "Never"):
        causes.append(
            (
                "FieldValueRequired",
                "spec.template.spec.restartPolicy",
                'Required value: valid values: "OnFailure", "Never"',
            )
        )
    return causes


def _rc_causes(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _nonnegative(spec, "replicas", "spec") + _nonnegative(spec, "minReadySeconds", "spec")
    selector = spec.get("selector") or {}
    if not selector:
        causes.append(("FieldValueRequired", "spec.selector", "Required value"))
    causes += _template_causes(
        spec, {"matchLabels": selector} if selector else None, kind="ReplicationController"
    )
    return causes


def _service_causes(obj: JSON) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    kind = spec.get("type", "ClusterIP")
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(("FieldValueRequired", "spec.ports", "Required value"))
    for i, p in enumerate(ports):
        if not isinstance(p, dict):
            continue
        port = p.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"spec.ports[{i}].port",
                    f"Invalid value: {_value(port)}: must be between 1 and 65535, inclusive",
                )
            )
        target = p.get("targetPort", port)
        if isinstance(target, int) and not 1 <= target <= 65535:
            causes.append(
                (
                    "FieldValueInvalid",
                    f"spec.ports[{i}].targetPort",
                    f"Invalid value: {target}: must be between 1 and 65535, inclusive",
                )
            )
        if len(ports) > 1 and not p.get("name"):
            causes.append(("FieldValueRequired", f"spec.ports[{i}].name", "Required value"))
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.type",
                f'Unsupported value: {_value(kind)}: supported values: "ClusterIP", '
                '"ExternalName", "LoadBalancer", "NodePort"',
            )
        )
    return causes


def _controller_revision_causes(cr: JSON) -> list[Cause]:
    """ValidateControllerRevisionCreate: data a JSON object, revision not negative."""
    causes: list[Cause] = []
    revision = cr.get("revision", 0)
    if isinstance(revision, int) and revision < 0:
        causes.append(
            ("FieldValueInvalid", "revision",
             f"Invalid value: {revision}: must be greater than or equal to 0")
        )  # fmt: skip
    data = cr.get("data")
    if data is None:
        causes.append(("FieldValueRequired", "data", "Required value: data is mandatory"))
    elif not isinstance(data, dict):
        causes.append(
            ("FieldValueRequired", "data", "Required value: data must be a valid JSON object")
        )
    return causes


CHECKS = {
    CONTROLLER_REVISIONS.key: _controller_revision_causes,
    DEPLOYMENTS.key: _deployment_causes,
    REPLICA_SETS.key: _replicaset_causes,
    STATEFUL_SETS.key: _statefulset_causes,
    DAEMON_SETS.key: _daemonset_causes,
    JOBS.key: _job_causes,
    REPLICATION_CONTROLLERS.key: _rc_causes,
    SERVICES.key: _service_causes,
}


# --- the Scale subresource ---------------------------------------------------------------------


def selector_string(rt: ResourceType, obj: JSON) -> str:
    """The label selector of a workload as a string (Scale's status.selector)."""
    spec = obj.get("spec") or {}
    if rt is REPLICATION_CONTROLLERS:
        return label_selector_string({"matchLabels": spec.get("selector") or {}})
    return label_selector_string(spec.get("selector") or {})


def to_scale(rt: ResourceType, obj: JSON) -> JSON:
    """The autoscaling/v1 Scale of a workload."""
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas") or 0)},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas") or 0),
            "selector": selector_string(rt, obj),
        },
    }


def from_scale(rt: ResourceType, scale: JSON, old: JSON) -> JSON:
    """The workload `old` with the replicas of `scale` (and its resourceVersion, a
    precondition), or 422/400 as upstream's scale storage answers a bad Scale."""
    spec = scale.get("spec") if isinstance(scale, dict) else None
    replicas = (spec or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise errors.bad_request(
            'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal '
            "into Go struct field ScaleSpec.spec.replicas of type int32"
        )
    if replicas < 0:
        raise errors.invalid(
            kind="Scale",
            group="autoscaling",
            name=old["metadata"]["name"],
            causes=[
                (
                    "FieldValueInvalid",
                    "spec.replicas",
                    f"Invalid value: {replicas}: must be greater than or equal to 0",
                )
            ],
        )
    meta = dict(old["metadata"])
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv:
        meta["resourceVersion"] = rv
    return {**old, "metadata": meta, "spec": {**(old.get("spec") or {}), "replicas": replicas}}
