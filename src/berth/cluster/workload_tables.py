"""Server-side printing of workloads and Services: upstream's columns for `kubectl get` of
Deployments, ReplicaSets, ReplicationControllers, StatefulSets, DaemonSets, Jobs and Services
(pkg/printers/internalversion/printers.go), with their wide cells.
"""

from __future__ import annotations

from typing import Any

from berth.cluster.selectors import label_selector_string
from berth.cluster.tables import Column, Row, _age, _name, _seconds_since, human_duration

JSON = dict[str, Any]


def _spec(obj: JSON) -> JSON:
    return obj.get("spec") or {}


def _status(obj: JSON) -> JSON:
    return obj.get("status") or {}


def _containers(obj: JSON) -> list[str]:
    """The wide cells CONTAINERS and IMAGES of a workload's template."""
    containers = ((_spec(obj).get("template") or {}).get("spec") or {}).get("containers") or []
    names = ",".join(str(c.get("name", "")) for c in containers if isinstance(c, dict))
    images = ",".join(str(c.get("image", "")) for c in containers if isinstance(c, dict))
    return [names, images]


def _selector(obj: JSON) -> str:
    selector = _spec(obj).get("selector")
    if not isinstance(selector, dict):
        return "<none>"
    return label_selector_string(selector) or "<none>"


def _labels(values: Any) -> str:
    """labels.FormatLabels: `k=v,...` sorted, or <none>."""
    if not isinstance(values, dict) or not values:
        return "<none>"
    return ",".join(f"{k}={values[k]}" for k in sorted(values))


def _deployment(d: JSON) -> list[Any]:
    spec, status = _spec(d), _status(d)
    ready = f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas', 0))}"
    return [
        _name(d),
        ready,
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        _age(d),
        *_containers(d),
        _selector(d),
    ]


def _replicaset(rs: JSON) -> list[Any]:
    spec, status = _spec(rs), _status(rs)
    return [
        _name(rs),
        int(spec.get("replicas", 0)),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        _age(rs),
        *_containers(rs),
        _selector(rs),
    ]


def _rc(rc: JSON) -> list[Any]:
    row = _replicaset(rc)
    row[-1] = _labels(_spec(rc).get("selector"))
    return row


def _statefulset(sts: JSON) -> list[Any]:
    spec, status = _spec(sts), _status(sts)
    ready = f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas', 0))}"
    return [_name(sts), ready, _age(sts), *_containers(sts)]


def _daemonset(ds: JSON) -> list[Any]:
    status = _status(ds)
    node_selector = ((_spec(ds).get("template") or {}).get("spec") or {}).get("nodeSelector")
    return [
        _name(ds),
        int(status.get("desiredNumberScheduled") or 0),
        int(status.get("currentNumberScheduled") or 0),
        int(status.get("numberReady") or 0),
        int(status.get("updatedNumberScheduled") or 0),
        int(status.get("numberAvailable") or 0),
        _labels(node_selector),
        _age(ds),
        *_containers(ds),
        _selector(ds),
    ]


def _job(job: JSON) -> list[Any]:
    spec, status = _spec(job), _status(job)
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif int(spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    start = status.get("startTime")
    if start:
        since = _seconds_since(start) or 0.0
        end = status.get("completionTime")
        duration = human_duration(since - (_seconds_since(end) or 0.0) if end else since)
    conditions = {
        c.get("type")
        for c in status.get("conditions") or []
        if isinstance(c, dict) and c.get("status") == "True"
    }
    if "Complete" in conditions:
        state = "Complete"
    elif "Failed" in conditions:
        state = "Failed"
    elif job["metadata"].get("deletionTimestamp"):
        state = "Terminating"
    elif "Suspended" in conditions:
        state = "Suspended"
    elif "FailureTarget" in conditions:
        state = "FailureTarget"
    elif "SuccessCriteriaMet" in conditions:
        state = "SuccessCriteriaMet"
    else:
        state = "Running"
    return [_name(job), state, completions, duration, _age(job), *_containers(job), _selector(job)]


def _ports(ports: Any) -> str:
    """makePortString: `80/TCP,443:30443/TCP`."""
    out = []
    for p in ports or []:
        if not isinstance(p, dict):
            continue
        text = str(p.get("port"))
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        out.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _service(svc: JSON) -> list[Any]:
    spec = _spec(svc)
    ips = spec.get("clusterIPs") or []
    external = ",".join(spec.get("externalIPs") or []) or "<none>"
    if spec.get("type") == "ExternalName":
        external = spec.get("externalName") or "<none>"
    elif spec.get("type") == "LoadBalancer":
        ingress = (_status(svc).get("loadBalancer") or {}).get("ingress") or []
        found = [i.get("ip") or i.get("hostname") for i in ingress if isinstance(i, dict)]
        external = ",".join(str(f) for f in found if f) or "<pending>"
    return [
        _name(svc),
        spec.get("type", "ClusterIP"),
        ips[0] if ips else "<none>",
        external,
        _ports(spec.get("ports")),
        _age(svc),
        _labels(spec.get("selector")),
    ]


def _controller_revision(cr: JSON) -> list[Any]:
    """The controlling owner as kind.group/name in lower case (formatResourceName)."""
    owners = (cr.get("metadata") or {}).get("ownerReferences") or []
    ref = next((o for o in owners if isinstance(o, dict) and o.get("controller")), None)
    controller = "<none>"
    if ref is not None:
        api_version = str(ref.get("apiVersion", ""))
        group = api_version.split("/")[0] if "/" in api_version else ""
        kind = str(ref.get("kind", ""))
        kind = f"{kind}.{group}" if group else kind
        controller = f"{kind.lower()}/{ref.get('name', '')}" if kind else str(ref.get("name", ""))
    return [_name(cr), controller, cr.get("revision", 0), _age(cr)]


def _first_three(values: list[str]) -> str:
    """listWithMoreString: at most three, then ` + N more...`; <unset> when none."""
    if len(values) > 3:
        return f"{','.join(values[:3])} + {len(values) - 3} more..."
    return ",".join(values) or "<unset>"


def _endpoint_slice(es: JSON) -> list[Any]:
    ports = []
    for p in es.get("ports") or []:
        if isinstance(p, dict):
            port = p.get("port")
            ports.append(str(port) if port is not None else str(p.get("name") or "*"))
    addresses = [
        str(a)
        for e in es.get("endpoints") or []
        if isinstance(e, dict)
        for a in e.get("addresses") or []
    ]
    return [_name(es), str(es.get("addressType", "")), _first_three(ports),
            _first_three(addresses), _age(es)]  # fmt: skip


_NAME: Column = ("Name", "string", 0)
_AGE: Column = ("Age", "string", 0)
_WIDE: list[Column] = [("Containers", "string", 1), ("Images", "string", 1)]
_SELECTOR: Column = ("Selector", "string", 1)
_COUNTS: list[Column] = [
    _NAME,
    ("Desired", "integer", 0),
    ("Current", "integer", 0),
    ("Ready", "integer", 0),
    _AGE,
    *_WIDE,
    _SELECTOR,
]

TABLES: dict[str, tuple[list[Column], Row]] = {
    "controllerrevisions.apps": (
        [_NAME, ("Controller", "string", 0), ("Revision", "string", 0), _AGE],
        _controller_revision,
    ),
    "endpointslices.discovery.k8s.io": (
        [
            _NAME,
            ("AddressType", "string", 0),
            ("Ports", "string", 0),
            ("Endpoints", "string", 0),
            _AGE,
        ],
        _endpoint_slice,
    ),
    "deployments.apps": (
        [
            _NAME,
            ("Ready", "string", 0),
            ("Up-to-date", "string", 0),
            ("Available", "string", 0),
            _AGE,
            *_WIDE,
            _SELECTOR,
        ],
        _deployment,
    ),
    "replicasets.apps": (_COUNTS, _replicaset),
    "replicationcontrollers": (_COUNTS, _rc),
    "statefulsets.apps": ([_NAME, ("Ready", "string", 0), _AGE, *_WIDE], _statefulset),
    "daemonsets.apps": (
        [
            _NAME,
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            _AGE,
            *_WIDE,
            _SELECTOR,
        ],
        _daemonset,
    ),
    "jobs.batch": (
        [
            _NAME,
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            _AGE,
            *_WIDE,
            _SELECTOR,
        ],
        _job,
    ),
    "services": (
        [
            _NAME,
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            _AGE,
            _SELECTOR,
        ],
        _service,
    ),
}
