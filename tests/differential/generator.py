"""Generated clusters for the differential test: Hypothesis strategies that reach every plugin
Berth shares with kube-scheduler, on dumps nobody wrote by hand.

A case is a dump (nodes, bound and pending pods, namespaces, PriorityClasses, workloads,
PodDisruptionBudgets, storage and DRA objects, consumable capacity among them) and a
BerthConfiguration. Values come from small
vocabularies so that selectors, taints, ports, images and topologies actually meet; sizes are
small so that a case takes milliseconds, with a few large clusters for percentageOfNodesToScore.
A few objects are malformed on purpose (`MALFORMATIONS`): upstream's API validation decides
whether they are, and Berth must refuse exactly those.

Exclusions, each where upstream is knowingly not followed (docs/testing.md lists them):
- every bound pod has its own status.startTime, so preemption never meets the tie its last
  criterion leaves to Go's map order;
- the large clusters (100-130 nodes) have at most 6 bound pods, so fewer preemption
  candidates than the 100 kube-scheduler dry-runs at least: its random starting offset then
  changes only the order candidates are found in, which the distinct start times keep from
  deciding anything;
- two bound pods of one node never share a host port (`_one_pod_per_host_port`), and two
  bound pods never share a ReadWriteOncePod claim (`_one_pod_per_rwop_claim`);
- a ResourceClaim is used by one pending pod, and a pod bound to a node the dump lacks uses no
  PersistentVolumeClaim (in `clusters`);
- when NodeResourcesBalancedAllocation scores the GPU, the DeviceClass that backs it has no
  selectors (`_no_class_selectors_for_balanced_allocation`): kube-scheduler 1.37.2 crashes
  evaluating one there.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

ZONES = ("zone-a", "zone-b", "zone-c")
REGIONS = ("region-1", "region-2")
NAMESPACES = {"default": {}, "team-a": {"team": "a"}, "team-b": {"team": "b", "env": "prod"}}
NODE_LABELS = {"disk": ("ssd", "hdd"), "tier": ("gold", "silver"), "gen": ("1", "3", "5", "10")}
POD_LABELS = {"app": ("web", "db", "cache"), "team": ("a", "b"), "track": ("stable", "canary")}
TAINT_KEYS = {"dedicated": ("gpu", "infra"), "example.com/maint": ("true",), "spot": ("",)}
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
IMAGES = {
    "registry.example/app:v1": 300 * 2**20,
    "registry.example/db:v2": 900 * 2**20,
    "nginx:1.27": 60 * 2**20,
    "busybox": 2 * 2**20,
}
GPU = "example.com/gpu"
CSI_DRIVER = "csi.example.com"
DRA_DRIVER = "gpu.example.com"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
PRIORITY_CLASSES = (("low", 10, None), ("high", 1000, None), ("never", 500, "Never"))
SCHEDULER = "default-scheduler"


# Strategies are built once per distinct argument list: Hypothesis validates a strategy object
# the first time it is drawn from, and building them afresh on every draw cost more than half
# of a case's time.
@functools.lru_cache(maxsize=4096)
def _cached(factory: Any, *args: Any, **kwargs: Any) -> st.SearchStrategy[Any]:
    return factory(*args, **kwargs)  # type: ignore[no-any-return]


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    return _cached(st.integers, lo, hi)


def _booleans() -> st.SearchStrategy[bool]:
    return _cached(st.booleans)


def _sampled_from(values: Any) -> st.SearchStrategy[Any]:
    items = tuple(values)
    try:
        hash(items)
    except TypeError:
        return st.sampled_from(items)
    return _cached(st.sampled_from, items)


def _lists(inner: st.SearchStrategy[Any], **kwargs: Any) -> st.SearchStrategy[list[Any]]:
    return _cached(st.lists, inner, **kwargs)


@dataclass
class Case:
    objects: list[dict[str, Any]]
    config: dict[str, Any]
    seed: int
    notes: list[str] = field(default_factory=list)


def _time(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **extra}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


# ----- small values -----------------------------------------------------------------------------
cpu_small = _sampled_from(["50m", "100m", "250m", "500m", "1", "1500m", "2", "3"])
mem_small = _sampled_from(["64Mi", "128Mi", "512Mi", "1Gi", "2Gi", "3Gi", "5Gi"])


@st.composite
def label_set(
    draw: st.DrawFn, vocab: dict[str, tuple[str, ...]], max_size: int = 3
) -> dict[str, str]:
    keys = draw(_lists(_sampled_from(sorted(vocab)), unique=True, max_size=max_size))
    return {k: draw(_sampled_from(vocab[k])) for k in keys}


@st.composite
def label_selector(
    draw: st.DrawFn, vocab: dict[str, tuple[str, ...]], *, allow_empty: bool = True
) -> dict[str, Any]:
    sel: dict[str, Any] = {}
    labels = draw(label_set(vocab, max_size=2))
    if labels:
        sel["matchLabels"] = labels
    exprs = []
    for _ in range(draw(_integers(0, 2))):
        key = draw(_sampled_from(sorted(vocab)))
        op = draw(_sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
        expr: dict[str, Any] = {"key": key, "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = draw(
                _lists(_sampled_from(vocab[key]), min_size=1, max_size=2, unique=True)
            )
        exprs.append(expr)
    if exprs:
        sel["matchExpressions"] = exprs
    if not sel and not allow_empty:
        sel["matchLabels"] = {"app": "web"}
    return sel


# ----- nodes ------------------------------------------------------------------------------------
@st.composite
def taint(draw: st.DrawFn) -> dict[str, Any]:
    key = draw(_sampled_from(sorted(TAINT_KEYS)))
    t: dict[str, Any] = {"key": key, "effect": draw(_sampled_from(EFFECTS))}
    value = draw(_sampled_from(TAINT_KEYS[key]))
    if value:
        t["value"] = value
    return t


@st.composite
def node_object(draw: st.DrawFn, index: int, *, zoned: bool, large: bool) -> dict[str, Any]:
    name = f"node-{index:03d}"
    labels = {"kubernetes.io/hostname": name, **draw(label_set(NODE_LABELS))}
    if zoned and draw(_integers(0, 9)) > 0:
        labels["topology.kubernetes.io/zone"] = draw(_sampled_from(ZONES))
        labels["topology.kubernetes.io/region"] = draw(_sampled_from(REGIONS))
    cpu = draw(_sampled_from(["1", "2", "4", "8", "3500m", "16"]))
    memory = draw(_sampled_from(["2Gi", "4Gi", "8Gi", "16Gi", "3000Mi"]))
    pods = draw(_sampled_from(["3", "10", "110"] if not large else ["110"]))
    capacity: dict[str, Any] = {
        "cpu": cpu,
        "memory": memory,
        "pods": pods,
        "ephemeral-storage": "100Gi",
    }
    if draw(_integers(0, 3)) == 0:
        capacity[GPU] = str(draw(_integers(0, 4)))
    allocatable = dict(capacity)
    if draw(_booleans()):
        allocatable["ephemeral-storage"] = draw(_sampled_from(["10Gi", "50Gi"]))
    spec: dict[str, Any] = {}
    taints = draw(_lists(taint(), max_size=2, unique_by=lambda t: (t["key"], t["effect"])))
    if taints:
        spec["taints"] = taints
    if draw(_integers(0, 12)) == 0:
        spec["unschedulable"] = True
    images = draw(_lists(_sampled_from(sorted(IMAGES)), unique=True, max_size=3))
    status: dict[str, Any] = {
        "capacity": capacity,
        "allocatable": allocatable,
        "images": [{"names": [i], "sizeBytes": IMAGES[i]} for i in images],
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(name, labels=labels),
        "spec": spec,
        "status": status,
    }


# ----- pods -------------------------------------------------------------------------------------
@st.composite
def resources(draw: st.DrawFn, *, gpu: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if draw(_integers(0, 5)) > 0:
        requests["cpu"] = draw(cpu_small)
    if draw(_integers(0, 5)) > 0:
        requests["memory"] = draw(mem_small)
    if draw(_integers(0, 6)) == 0:
        requests["ephemeral-storage"] = draw(_sampled_from(["1Gi", "20Gi", "60Gi"]))
    if gpu and draw(_integers(0, 3)) == 0:
        requests[GPU] = str(draw(_integers(1, 2)))
    if requests:
        out["requests"] = requests
    if draw(_integers(0, 4)) == 0:
        # Limits only (the API server copies them to requests) or limits above requests.
        limits = {k: v for k, v in requests.items() if k in ("cpu", "memory")}
        if not limits:
            limits = {"cpu": draw(cpu_small)}
        if GPU in requests:
            limits[GPU] = requests[GPU]
        out["limits"] = limits
        if draw(_booleans()):
            out.pop("requests", None)
            if GPU in requests:
                out["limits"][GPU] = requests[GPU]
    elif GPU in requests:
        out["limits"] = {GPU: requests[GPU]}
    return out


@st.composite
def container(
    draw: st.DrawFn, name: str, *, gpu: bool, ports: tuple[int, ...] = ()
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": draw(_sampled_from(sorted(IMAGES)))}
    res = draw(resources(gpu=gpu))
    if res:
        c["resources"] = res
    if ports and draw(_integers(0, 3)) == 0:
        # Each container of a pod has its own ports: validation refuses a host port twice.
        port = draw(_sampled_from(ports))
        p: dict[str, Any] = {"containerPort": port, "hostPort": port}
        proto = draw(_sampled_from([None, "TCP", "UDP"]))
        if proto:
            p["protocol"] = proto
        host_ip = draw(_sampled_from([None, None, "127.0.0.1", "0.0.0.0"]))
        if host_ip:
            p["hostIP"] = host_ip
        c["ports"] = [p]
    return c


@st.composite
def tolerations(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(_integers(0, 3))):
        op = draw(_sampled_from(["Equal", "Exists", None]))
        t: dict[str, Any] = {}
        if draw(_integers(0, 6)) > 0:
            key = draw(_sampled_from(sorted(TAINT_KEYS)))
            t["key"] = key
            if op != "Exists":
                value = draw(_sampled_from(TAINT_KEYS[key]))
                if value:
                    t["value"] = value
        elif op != "Exists":
            op = "Exists"  # an empty key needs Exists
        if op:
            t["operator"] = op
        effect = draw(_sampled_from([None, *EFFECTS]))
        if effect:
            t["effect"] = effect
            if effect == "NoExecute" and draw(_booleans()):
                t["tolerationSeconds"] = 300
        out.append(t)
    return out


@st.composite
def node_selector_term(draw: st.DrawFn, node_names: list[str]) -> dict[str, Any]:
    term: dict[str, Any] = {}
    exprs = []
    for _ in range(draw(_integers(0, 2))):
        key = draw(_sampled_from([*sorted(NODE_LABELS), "topology.kubernetes.io/zone"]))
        op = draw(_sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]))
        expr: dict[str, Any] = {"key": key, "operator": op}
        if op in ("Gt", "Lt"):
            expr["key"] = "gen"
            expr["values"] = [draw(_sampled_from(["0", "2", "4", "9"]))]
        elif op in ("In", "NotIn"):
            values = ZONES if key == "topology.kubernetes.io/zone" else NODE_LABELS[key]
            expr["values"] = draw(
                _lists(_sampled_from(values), min_size=1, max_size=2, unique=True)
            )
        exprs.append(expr)
    if exprs:
        term["matchExpressions"] = exprs
    if node_names and draw(_integers(0, 4)) == 0:
        term["matchFields"] = [
            {
                "key": "metadata.name",
                "operator": draw(_sampled_from(["In", "NotIn"])),
                "values": draw(
                    _lists(_sampled_from(node_names), min_size=1, max_size=2, unique=True)
                ),
            }
        ]
    return term


@st.composite
def node_affinity(draw: st.DrawFn, node_names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(_booleans()):
        terms = draw(_lists(node_selector_term(node_names), min_size=1, max_size=2))
        out["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
    if draw(_booleans()):
        out["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": draw(_integers(1, 100)), "preference": draw(node_selector_term([]))}
            for _ in range(draw(_integers(1, 2)))
        ]
    return out


@st.composite
def pod_affinity_term(draw: st.DrawFn) -> dict[str, Any]:
    term: dict[str, Any] = {
        "labelSelector": draw(label_selector(POD_LABELS)),
        "topologyKey": draw(
            _sampled_from(["kubernetes.io/hostname", "topology.kubernetes.io/zone"])
        ),
    }
    choice = draw(_integers(0, 4))
    if choice == 0:
        term["namespaces"] = draw(
            _lists(_sampled_from(sorted(NAMESPACES)), min_size=1, max_size=2, unique=True)
        )
    elif choice == 1:
        term["namespaceSelector"] = draw(label_selector({"team": ("a", "b"), "env": ("prod",)}))
    if draw(_integers(0, 4)) == 0:
        term["matchLabelKeys"] = ["track"]
    elif draw(_integers(0, 6)) == 0:
        term["mismatchLabelKeys"] = ["track"]
    if "matchLabelKeys" in term or "mismatchLabelKeys" in term:
        _drop_key(term["labelSelector"], "track")  # validation refuses a key in both
    return term


def _drop_key(selector: dict[str, Any], key: str) -> None:
    selector.get("matchLabels", {}).pop(key, None)
    exprs = [e for e in selector.get("matchExpressions", []) if e["key"] != key]
    if exprs:
        selector["matchExpressions"] = exprs
    else:
        selector.pop("matchExpressions", None)
    if not selector.get("matchLabels"):
        selector.pop("matchLabels", None)


@st.composite
def pod_affinity(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(_booleans()):
        out["requiredDuringSchedulingIgnoredDuringExecution"] = draw(
            _lists(pod_affinity_term(), min_size=1, max_size=2)
        )
    if draw(_booleans()):
        out["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": draw(_integers(1, 100)), "podAffinityTerm": draw(pod_affinity_term())}
            for _ in range(draw(_integers(1, 2)))
        ]
    return out


@st.composite
def spread_constraint(draw: st.DrawFn) -> dict[str, Any]:
    when = draw(_sampled_from(["DoNotSchedule", "ScheduleAnyway"]))
    c: dict[str, Any] = {
        "maxSkew": draw(_integers(1, 3)),
        "topologyKey": draw(
            _sampled_from(["kubernetes.io/hostname", "topology.kubernetes.io/zone", "disk"])
        ),
        "whenUnsatisfiable": when,
        "labelSelector": draw(label_selector(POD_LABELS, allow_empty=False)),
    }
    if when == "DoNotSchedule" and draw(_integers(0, 3)) == 0:
        c["minDomains"] = draw(_integers(1, 4))
    if draw(_integers(0, 3)) == 0:
        c["nodeAffinityPolicy"] = draw(_sampled_from(["Honor", "Ignore"]))
    if draw(_integers(0, 3)) == 0:
        c["nodeTaintsPolicy"] = draw(_sampled_from(["Honor", "Ignore"]))
    if draw(_integers(0, 4)) == 0:
        c["matchLabelKeys"] = ["track"]
        _drop_key(c["labelSelector"], "track")  # validation refuses a key in both
    return c


@st.composite
def pod_object(
    draw: st.DrawFn,
    name: str,
    *,
    node_names: list[str],
    bound_to: str | None,
    start: int,
    created: int,
    claims: list[str],
    pvcs: dict[str, list[str]],
    owners: list[dict[str, Any]],
) -> dict[str, Any]:
    namespace = draw(_sampled_from(sorted(NAMESPACES)))
    labels = draw(label_set(POD_LABELS))
    meta = _meta(name, namespace, labels=labels, creationTimestamp=_time(created))
    if owners and draw(_integers(0, 2)) == 0:
        owner = draw(_sampled_from(owners))
        if owner["metadata"]["namespace"] == namespace:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner["kind"],
                    "name": owner["metadata"]["name"],
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                }
            ]
            meta["labels"] = {**labels, **owner["spec"]["selector"]["matchLabels"]}
    pending = bound_to is None
    containers = [draw(container("main", gpu=True, ports=(80, 8080, 9090)))]
    if draw(_integers(0, 3)) == 0:
        containers.append(draw(container("side", gpu=False, ports=(8443, 9100))))
    spec: dict[str, Any] = {"containers": containers}
    if draw(_integers(0, 3)) == 0:
        inits = []
        for i in range(draw(_integers(1, 2))):
            init = draw(container(f"init-{i}", gpu=False))
            if draw(_booleans()):
                init["restartPolicy"] = "Always"  # a sidecar
            inits.append(init)
        spec["initContainers"] = inits
    if draw(_integers(0, 8)) == 0:
        spec["overhead"] = {"cpu": draw(_sampled_from(["10m", "250m"])), "memory": "64Mi"}
        spec["runtimeClassName"] = "kata"
    if draw(_integers(0, 8)) == 0:
        # Pod-level resources: requests at least the containers' (validation insists).
        spec["resources"] = {"requests": {"cpu": "4", "memory": "8Gi"}}
        for c in [*containers, *spec.get("initContainers", [])]:
            c.pop("resources", None)
    prio = draw(_sampled_from([None, "low", "high", "never", "low"]))
    if prio:
        spec["priorityClassName"] = prio
    if pending:
        if draw(_integers(0, 3)) == 0:
            spec["nodeSelector"] = draw(label_set(NODE_LABELS, max_size=2)) or {"disk": "ssd"}
        affinity: dict[str, Any] = {}
        if draw(_integers(0, 2)) == 0:
            na = draw(node_affinity(node_names))
            if na:
                affinity["nodeAffinity"] = na
        if draw(_integers(0, 3)) == 0:
            pa = draw(pod_affinity())
            if pa:
                affinity["podAffinity"] = pa
        if draw(_integers(0, 3)) == 0:
            paa = draw(pod_affinity())
            if paa:
                affinity["podAntiAffinity"] = paa
        if affinity:
            spec["affinity"] = affinity
        if draw(_integers(0, 3)) == 0:
            spec["topologySpreadConstraints"] = draw(
                _lists(
                    spread_constraint(),
                    min_size=1,
                    max_size=2,
                    unique_by=lambda c: (c["topologyKey"], c["whenUnsatisfiable"]),
                )
            )
        if draw(_integers(0, 10)) == 0:
            spec["schedulingGates"] = [{"name": "example.com/hold"}]
    else:
        spec["nodeName"] = bound_to
        if draw(_integers(0, 4)) == 0:
            aff = draw(pod_affinity())
            if aff:
                spec["affinity"] = {draw(_sampled_from(["podAffinity", "podAntiAffinity"])): aff}
    tol = draw(tolerations())
    if tol:
        spec["tolerations"] = tol
    volumes = []
    mine = pvcs.get(namespace, [])
    if mine and draw(_booleans()):
        for claim in draw(_lists(_sampled_from(mine), min_size=1, max_size=2, unique=True)):
            volumes.append({"name": f"v-{claim}", "persistentVolumeClaim": {"claimName": claim}})
    if volumes:
        spec["volumes"] = volumes
    if claims and namespace == "default" and draw(_booleans()):
        picked = draw(_lists(_sampled_from(claims), min_size=1, max_size=2, unique=True))
        spec["resourceClaims"] = [{"name": f"rc-{c}", "resourceClaimName": c} for c in picked]
    status: dict[str, Any] = {"phase": "Pending" if pending else "Running"}
    if not pending:
        status["startTime"] = _time(start)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


# ----- the rest of the cluster ------------------------------------------------------------------
def namespaces() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": _meta(n, labels={"kubernetes.io/metadata.name": n, **labels}),
        }
        for n, labels in NAMESPACES.items()
    ]


@st.composite
def priority_classes(draw: st.DrawFn) -> list[dict[str, Any]]:
    default = draw(_sampled_from([None, None, "low"]))
    out = []
    for name, value, policy in PRIORITY_CLASSES:
        pc: dict[str, Any] = {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": _meta(name),
            "value": value,
        }
        if policy:
            pc["preemptionPolicy"] = policy
        if name == default:
            pc["globalDefault"] = True
        out.append(pc)
    return out


@st.composite
def workloads(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Services, ReplicaSets and StatefulSets: what PodTopologySpread's system default
    constraints look for, and owners for pods."""
    out = []
    for i in range(draw(_integers(0, 3))):
        ns = draw(_sampled_from(sorted(NAMESPACES)))
        app = draw(_sampled_from(POD_LABELS["app"]))
        kind = draw(_sampled_from(["Service", "ReplicaSet", "StatefulSet"]))
        name = f"{kind.lower()}-{i}"
        selector = {"app": app}
        if kind == "Service":
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": _meta(name, ns),
                    "spec": {"selector": selector, "ports": [{"port": 80}]},
                }
            )
            continue
        template = {
            "metadata": {"labels": selector},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
        }
        spec: dict[str, Any] = {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "template": template,
        }
        if kind == "StatefulSet":
            spec["serviceName"] = name
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": kind,
                "metadata": _meta(name, ns, uid=f"uid-{name}-{ns}"),
                "spec": spec,
            }
        )
    return out


@st.composite
def pdbs(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(_integers(0, 2))):
        spec: dict[str, Any] = {"selector": draw(label_selector(POD_LABELS, allow_empty=False))}
        if draw(_booleans()):
            spec["minAvailable"] = 1
        else:
            spec["maxUnavailable"] = draw(_sampled_from([0, 1, "50%"]))
        allowed = draw(_integers(0, 1))
        out.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": _meta(f"pdb-{i}", draw(_sampled_from(sorted(NAMESPACES)))),
                "spec": spec,
                "status": {
                    "disruptionsAllowed": allowed,
                    "currentHealthy": 2,
                    "desiredHealthy": 1,
                    "expectedPods": 2,
                },
            }
        )
    return out


@st.composite
def storage(
    draw: st.DrawFn, nodes: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """StorageClasses, PVs, PVCs and CSINodes; returns them and the claim names per namespace."""
    if draw(_integers(0, 1)) != 0 or not nodes:
        return [], {}
    out: list[dict[str, Any]] = []
    zones = sorted(
        {n["metadata"]["labels"].get("topology.kubernetes.io/zone") for n in nodes} - {None}
    )
    fast: dict[str, Any] = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": _meta("fast"),
        "provisioner": CSI_DRIVER,
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    if zones and draw(_booleans()):
        fast["allowedTopologies"] = [
            {
                "matchLabelExpressions": [
                    {"key": "topology.kubernetes.io/zone", "values": [draw(_sampled_from(zones))]}
                ]
            }
        ]
    slow = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": _meta("local"),
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": draw(_sampled_from(["WaitForFirstConsumer", "Immediate"])),
    }
    out += [fast, slow]
    claims: dict[str, list[str]] = {}
    for i in range(draw(_integers(1, 4))):
        ns = draw(_sampled_from(sorted(NAMESPACES)))
        name = f"claim-{i}"
        # The first claim of a zoned cluster is, one time in two, on an older zonal PV: bound,
        # CSI, its zone a label only. VolumeZone's Filter alone rejects the other zones' nodes.
        legacy = i == 0 and bool(zones) and draw(_booleans())
        cls = "fast" if legacy else draw(_sampled_from(["fast", "local", "local"]))
        size = draw(_sampled_from(["1Gi", "5Gi", "20Gi"]))
        pvc: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(name, ns),
            "spec": {
                # ReadWriteOncePod twice: VolumeRestrictions' Filter rejects only a second
                # user of such a claim, rare enough that a seed's 2,000 cases could miss it.
                "accessModes": [
                    draw(
                        _sampled_from(
                            [
                                "ReadWriteOnce",
                                "ReadWriteOncePod",
                                "ReadWriteOncePod",
                                "ReadOnlyMany",
                            ]
                        )
                    )
                ],
                "storageClassName": cls,
                "resources": {"requests": {"storage": size}},
            },
            "status": {"phase": "Pending"},
        }
        claims.setdefault(ns, []).append(name)
        out.append(pvc)
        if legacy or cls == "local" or draw(_booleans()):
            # A PV for it: bound already or left for VolumeBinding to match.
            zoned_nodes = [
                n for n in nodes if "topology.kubernetes.io/zone" in n["metadata"]["labels"]
            ]
            node = draw(_sampled_from(zoned_nodes if legacy else nodes))
            by_zone = legacy or (
                draw(_booleans()) and "topology.kubernetes.io/zone" in node["metadata"]["labels"]
            )
            key = "topology.kubernetes.io/zone" if by_zone else "kubernetes.io/hostname"
            pv: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": _meta(
                    f"pv-{i}", labels=({key: node["metadata"]["labels"][key]} if by_zone else {})
                ),
                "spec": {
                    "capacity": {"storage": draw(_sampled_from(["5Gi", "20Gi"]))},
                    "accessModes": pvc["spec"]["accessModes"],
                    "storageClassName": cls,
                    "persistentVolumeReclaimPolicy": "Retain",
                    "nodeAffinity": {
                        "required": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": key,
                                            "operator": "In",
                                            "values": [node["metadata"]["labels"][key]],
                                        }
                                    ]
                                }
                            ]
                        }
                    },
                },
                "status": {"phase": "Available"},
            }
            if cls == "fast":
                pv["spec"]["csi"] = {"driver": CSI_DRIVER, "volumeHandle": f"h-{i}"}
                if legacy or (by_zone and draw(_booleans())):
                    # Its zone as a label only, as older PVs have it: VolumeZone, not
                    # VolumeBinding, is then the plugin that rejects the other zones (once the
                    # claim is bound to it: VolumeZone leaves unbound claims to VolumeBinding).
                    del pv["spec"]["nodeAffinity"]
            else:
                pv["spec"]["local"] = {"path": f"/mnt/disk{i}"}
            if legacy or draw(_booleans()):
                pv["spec"]["claimRef"] = {"namespace": ns, "name": name, "uid": f"uid-pvc-{name}"}
                pvc["metadata"]["uid"] = f"uid-pvc-{name}"
                pvc["metadata"]["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
                pvc["spec"]["volumeName"] = pv["metadata"]["name"]
                pv["status"]["phase"] = "Bound"
                pvc["status"] = {
                    "phase": "Bound",
                    "accessModes": pvc["spec"]["accessModes"],
                    "capacity": pv["spec"]["capacity"],
                }
            out.append(pv)
    for node in nodes:
        if draw(_booleans()):
            out.append(
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "CSINode",
                    "metadata": _meta(node["metadata"]["name"]),
                    "spec": {
                        "drivers": [
                            {
                                "name": CSI_DRIVER,
                                "nodeID": node["metadata"]["name"],
                                "allocatable": {"count": draw(_integers(0, 2))},
                                "topologyKeys": ["topology.kubernetes.io/zone"],
                            }
                        ]
                    },
                }
            )
    return out, claims


@st.composite
def dra(draw: st.DrawFn, nodes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """A DeviceClass (serving the extended resource GPU one time in two), ResourceSlices on
    some nodes and ResourceClaims in "default"; one time in two the devices have consumable
    capacity and the claims ask for a share of it."""
    if draw(_integers(0, 3)) != 0 or not nodes:
        return [], []
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceClass",
            "metadata": _meta("gpu"),
            "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRA_DRIVER}"'}}]},
        }
    ]
    if draw(_booleans()):
        # the pods' GPU requests become devices of this class on nodes that advertise none
        out[0]["spec"]["extendedResourceName"] = GPU
    # one DRA cluster in two has devices with consumable capacity, shared between claims
    shared = draw(_booleans())
    for node in nodes:
        # shared devices on every node, so that claims meet on one more often
        if shared or draw(_booleans()):
            name = node["metadata"]["name"]
            devices = [
                {
                    "name": f"gpu-{d}",
                    "attributes": {"model": {"string": draw(_sampled_from(["a100", "h100"]))}},
                    **(draw(shared_device()) if shared else {}),
                }
                for d in range(draw(_integers(1, 2)))
            ]
            out.append(
                {
                    "apiVersion": "resource.k8s.io/v1",
                    "kind": "ResourceSlice",
                    "metadata": _meta(f"slice-{name}"),
                    "spec": {
                        "driver": DRA_DRIVER,
                        "nodeName": name,
                        "pool": {"name": name, "generation": 1, "resourceSliceCount": 1},
                        "devices": devices,
                    },
                }
            )
    claims = []
    for i in range(draw(_integers(1, 4 if shared else 3))):
        request: dict[str, Any] = {"name": "gpu", "exactly": {"deviceClassName": "gpu"}}
        if draw(_booleans()):
            request["exactly"]["selectors"] = [
                {"cel": {"expression": 'device.attributes["gpu.example.com"].model == "h100"'}}
            ]
        devices: dict[str, Any] = {"requests": [request]}
        if shared:
            _capacity_request(draw, devices)
        name = f"claim-gpu-{i}"
        claims.append(name)
        out.append(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaim",
                "metadata": _meta(name, "default"),
                "spec": {"devices": devices},
            }
        )
    return out, claims


# Consumable capacity: a device's "memory" is 24Gi or 40Gi; requests of these sizes fall on
# and off the request policies' steps and valid values, and a few claims together ask for more
# than one device holds.
DEVICE_MEMORY = ("24Gi", "40Gi")
CAPACITY_REQUESTS = ("4Gi", "5Gi", "7Gi", "8Gi", "10Gi", "16Gi", "20Gi", "33Gi", "50Gi")
REQUEST_POLICIES: tuple[dict[str, Any] | None, ...] = (
    None,  # no policy: a claim that asks for nothing takes the whole capacity
    {"default": "10Gi", "validRange": {"min": "5Gi", "step": "5Gi"}},
    {"default": "5Gi", "validRange": {"min": "5Gi", "max": "20Gi", "step": "5Gi"}},
    {"default": "8Gi", "validRange": {"min": "4Gi"}},
    {"default": "8Gi", "validValues": ["8Gi", "16Gi", "24Gi"]},
    {"default": "16Gi", "validValues": ["4Gi", "16Gi"]},
)


@st.composite
def shared_device(draw: st.DrawFn) -> dict[str, Any]:
    """A device's consumable capacity (DRAConsumableCapacity): most of them allow multiple
    allocations, most with a request policy; a few have capacity and allow one allocation."""
    if draw(_integers(0, 4)) == 0:
        return {"capacity": {"memory": {"value": draw(_sampled_from(DEVICE_MEMORY))}}}
    memory: dict[str, Any] = {"value": draw(_sampled_from(DEVICE_MEMORY))}
    policy = draw(_sampled_from(REQUEST_POLICIES))
    if policy is not None:
        memory["requestPolicy"] = copy.deepcopy(policy)
    return {"allowMultipleAllocations": True, "capacity": {"memory": memory}}


def _capacity_request(draw: st.DrawFn, devices: dict[str, Any]) -> None:
    """A claim's share of a device: capacity.requests (or the policy's default), sometimes for
    two devices of different models (distinctAttribute), or two requests in one claim."""
    request = devices["requests"][0]["exactly"]
    if draw(_integers(0, 3)) > 0:
        request["capacity"] = {"requests": {"memory": draw(_sampled_from(CAPACITY_REQUESTS))}}
    shape = draw(_integers(0, 5))
    if shape == 0:
        request["count"] = 2
        devices["constraints"] = [{"distinctAttribute": f"{DRA_DRIVER}/model"}]
    elif shape == 1:
        second = {"deviceClassName": "gpu"}
        if draw(_booleans()):
            second["capacity"] = {"requests": {"memory": draw(_sampled_from(CAPACITY_REQUESTS))}}
        devices["requests"].append({"name": "gpu-2", "exactly": second})
        if draw(_booleans()):
            devices["constraints"] = [
                {"requests": ["gpu", "gpu-2"], "distinctAttribute": f"{DRA_DRIVER}/model"}
            ]


def shares_devices(objects: list[dict[str, Any]]) -> bool:
    """Whether some ResourceSlice device allows multiple allocations."""
    return any(
        d.get("allowMultipleAllocations") is True
        for o in objects
        if o["kind"] == "ResourceSlice"
        for d in o["spec"].get("devices", [])
    )


@st.composite
def claim_sharers(
    draw: st.DrawFn, claims: list[str], dra_objects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Where devices allow multiple allocations, plain pending pods (small, tolerating every
    taint) for some of the claims no pending pod uses, so that claims meet on one device: the
    generated pods' other constraints leave few of them placed."""
    if not shares_devices(dra_objects):
        return []
    out = []
    for claim in claims:
        if draw(_integers(0, 3)) == 0:
            continue
        meta = _meta(
            f"share-{claim}", "default", creationTimestamp=_time(1000 + draw(_integers(0, 3)))
        )
        spec = {
            "containers": [
                {"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "10m"}}}
            ],
            "tolerations": [{"operator": "Exists"}],
            "resourceClaims": [{"name": "rc", "resourceClaimName": claim}],
        }
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": spec,
                "status": {"phase": "Pending"},
            }
        )
    return out


# ----- malformed objects ------------------------------------------------------------------------
def _set(path: list[Any], value: Any) -> Any:
    def apply(obj: dict[str, Any]) -> None:
        cur: Any = obj
        for key in path[:-1]:
            if isinstance(key, int):
                cur = cur[key]
            else:
                cur = cur.setdefault(key, {})
        cur[path[-1]] = value

    return apply


MALFORMATIONS: dict[str, Any] = {
    "toleration operator": _set(
        ["spec", "tolerations"], [{"key": "dedicated", "operator": "Like", "value": "gpu"}]
    ),
    "toleration effect": _set(
        ["spec", "tolerations"], [{"key": "dedicated", "operator": "Exists", "effect": "Sometimes"}]
    ),
    "node selector value": _set(["spec", "nodeSelector"], {"disk": "not a label value!"}),
    "node selector key": _set(["spec", "nodeSelector"], {"-disk": "ssd"}),
    "node affinity operator": _set(
        ["spec", "affinity"],
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "disk", "operator": "Like", "values": ["ssd"]}
                            ]
                        }
                    ]
                }
            }
        },
    ),
    "node affinity Gt value": _set(
        ["spec", "affinity"],
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "gen", "operator": "Gt", "values": ["three"]}
                            ]
                        }
                    ]
                }
            }
        },
    ),
    "matchFields key": _set(
        ["spec", "affinity"],
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.labels", "operator": "In", "values": ["x"]}
                            ]
                        }
                    ]
                }
            }
        },
    ),
    "matchFields two values": _set(
        ["spec", "affinity"],
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": ["a", "b"]}
                            ]
                        }
                    ]
                }
            }
        },
    ),
    "pod affinity selector": _set(
        ["spec", "affinity"],
        {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {
                            "matchExpressions": [
                                {"key": "app", "operator": "Exists", "values": ["web"]}
                            ]
                        },
                    }
                ]
            }
        },
    ),
    "pod affinity topologyKey": _set(
        ["spec", "affinity"],
        {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "", "labelSelector": {"matchLabels": {"app": "web"}}}
                ]
            }
        },
    ),
    "spread matchLabelKeys in selector": _set(
        ["spec", "topologySpreadConstraints"],
        [
            {
                "maxSkew": 1,
                "topologyKey": "disk",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"track": "stable"}},
                "matchLabelKeys": ["track"],
            }
        ],
    ),
    "affinity matchLabelKeys in selector": _set(
        ["spec", "affinity"],
        {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"track": "stable"}},
                        "matchLabelKeys": ["track"],
                    }
                ]
            }
        },
    ),
    "spread maxSkew": _set(
        ["spec", "topologySpreadConstraints"],
        [
            {
                "maxSkew": 0,
                "topologyKey": "disk",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {},
            }
        ],
    ),
    "spread when": _set(
        ["spec", "topologySpreadConstraints"],
        [
            {
                "maxSkew": 1,
                "topologyKey": "disk",
                "whenUnsatisfiable": "Sometimes",
                "labelSelector": {},
            }
        ],
    ),
    "spread minDomains": _set(
        ["spec", "topologySpreadConstraints"],
        [
            {
                "maxSkew": 1,
                "topologyKey": "disk",
                "whenUnsatisfiable": "ScheduleAnyway",
                "minDomains": 2,
                "labelSelector": {},
            }
        ],
    ),
    "negative request": _set(["spec", "containers", 0, "resources"], {"requests": {"cpu": "-1"}}),
    "request above limit": _set(
        ["spec", "containers", 0, "resources"], {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
    ),
    "bad quantity": _set(
        ["spec", "containers", 0, "resources"], {"requests": {"memory": "1.5.5Gi"}}
    ),
    "duplicate host port": lambda obj: obj["spec"]["containers"].append(
        {
            "name": "dup",
            "image": "busybox",
            "ports": [{"containerPort": 80, "hostPort": 80}, {"containerPort": 81, "hostPort": 80}],
        }
    ),
    "host port range": _set(
        ["spec", "containers", 0, "ports"], [{"containerPort": 80, "hostPort": 70000}]
    ),
    "duplicate container": lambda obj: obj["spec"]["containers"].append(
        copy.deepcopy(obj["spec"]["containers"][0])
    ),
    "no containers": _set(["spec", "containers"], []),
    "priority class unknown": _set(["spec", "priorityClassName"], "platinum"),
    "scheduling gate name": _set(["spec", "schedulingGates"], [{"name": "not a gate"}]),
}
NODE_MALFORMATIONS: dict[str, Any] = {
    "taint effect": _set(
        ["spec", "taints"], [{"key": "dedicated", "value": "gpu", "effect": "Sometimes"}]
    ),
    "label value": lambda obj: obj["metadata"]["labels"].update({"disk": "not valid!"}),
    "allocatable quantity": lambda obj: obj["status"]["allocatable"].update({"cpu": "lots"}),
}


# ----- configurations ---------------------------------------------------------------------------
@st.composite
def berth_config(draw: st.DrawFn, *, large: bool) -> dict[str, Any]:
    profile: dict[str, Any] = {"schedulerName": SCHEDULER}
    config: dict[str, Any] = {
        "apiVersion": "berth.io/v1alpha1",
        "kind": "BerthConfiguration",
        "profiles": [profile],
    }
    if draw(_integers(0, 2)) != 0:
        return config
    plugin_config: list[dict[str, Any]] = []
    kind = draw(_sampled_from(["LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"]))
    strategy: dict[str, Any] = {"type": kind}
    if draw(_booleans()):
        strategy["resources"] = [
            {"name": "cpu", "weight": draw(_integers(1, 5))},
            {"name": "memory", "weight": draw(_integers(1, 5))},
            *([{"name": GPU, "weight": 2}] if draw(_booleans()) else []),
        ]
    if kind == "RequestedToCapacityRatio":
        strategy["requestedToCapacityRatio"] = {
            "shape": draw(
                _sampled_from(
                    [
                        [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}],
                        [
                            {"utilization": 0, "score": 10},
                            {"utilization": 50, "score": 2},
                            {"utilization": 100, "score": 0},
                        ],
                    ]
                )
            )
        }
    plugin_config.append({"name": "NodeResourcesFit", "args": {"scoringStrategy": strategy}})
    if draw(_booleans()):
        plugin_config.append(
            {
                "name": "NodeResourcesBalancedAllocation",
                "args": {
                    "resources": [
                        {"name": "cpu", "weight": 1},
                        {"name": "memory", "weight": 1},
                        *([{"name": GPU, "weight": 1}] if draw(_booleans()) else []),
                    ]
                },
            }
        )
    if draw(_booleans()):
        plugin_config.append(
            {
                "name": "InterPodAffinity",
                "args": {
                    "hardPodAffinityWeight": draw(_integers(0, 100)),
                    "ignorePreferredTermsOfExistingPods": draw(_booleans()),
                },
            }
        )
    if draw(_integers(0, 3)) == 0:
        plugin_config.append(
            {
                "name": "PodTopologySpread",
                "args": {
                    "defaultingType": "List",
                    "defaultConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                        }
                    ],
                },
            }
        )
    if draw(_integers(0, 4)) == 0:
        plugin_config.append(
            {
                "name": "NodeAffinity",
                "args": {
                    "addedAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "tier", "operator": "NotIn", "values": ["silver"]}
                                    ]
                                }
                            ]
                        }
                    }
                },
            }
        )
    profile["pluginConfig"] = plugin_config
    score_plugins = [
        "TaintToleration",
        "NodeAffinity",
        "NodeResourcesFit",
        "PodTopologySpread",
        "InterPodAffinity",
        "NodeResourcesBalancedAllocation",
        "ImageLocality",
    ]
    enabled = [
        {"name": p, "weight": draw(_integers(1, 5))}
        for p in draw(_lists(_sampled_from(score_plugins), unique=True, max_size=3))
    ]
    disabled = [
        {"name": p}
        for p in draw(
            _lists(
                _sampled_from([*score_plugins, "NodePorts", "VolumeRestrictions"]),
                unique=True,
                max_size=2,
            )
        )
        if p not in {e["name"] for e in enabled}
    ]
    plugins: dict[str, Any] = {}
    if enabled:
        plugins["score"] = {"enabled": enabled}
    if disabled:
        plugins["multiPoint"] = {"disabled": disabled}
    if plugins:
        profile["plugins"] = plugins
    if large or draw(_integers(0, 3)) == 0:
        pct = draw(_sampled_from([None, 0, 10, 30, 70, 100]))
        if pct is not None:
            if draw(_booleans()):
                profile["percentageOfNodesToScore"] = pct
            else:
                config["percentageOfNodesToScore"] = pct
    return config


# ----- a whole cluster --------------------------------------------------------------------------
def _one_pod_per_host_port(
    pod: dict[str, Any], node: str, in_use: set[tuple[str, str, int]]
) -> None:
    """Exclusion: two bound pods of one node never share a host port. kube-scheduler keeps a
    node's used ports as a set (kube-scheduler framework/types.go:610, HostPortInfo.Remove), so
    a preemption dry-run that removes one of the two frees the port for both; Berth counts
    each pod's ports. Only pods bound around the scheduler can share one."""
    for c in pod["spec"]["containers"]:
        for port in c.get("ports", []):
            key = (node, port.get("protocol") or "TCP", port["hostPort"])
            if key in in_use:
                del port["hostPort"]
            in_use.add(key)


def _one_pod_per_rwop_claim(
    pod: dict[str, Any], rwop: set[tuple[str, str]], in_use: set[tuple[str, str]]
) -> None:
    """Exclusion: two bound pods never share a ReadWriteOncePod claim. kube-scheduler's
    VolumeRestrictions counts a claim in use once however many pods use it
    (volume_restrictions.go:247, IsPVCUsedByPods), and its RemovePod takes one off per pod
    removed (:73), so a preemption dry-run that removes one of two users frees the claim; Berth
    counts the users left. Only pods bound around the scheduler can share one."""
    ns = pod["metadata"]["namespace"]
    kept = []
    for v in pod["spec"].get("volumes", []):
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        key = (ns, claim)
        if claim is not None and key in rwop:
            if key in in_use:
                continue
            in_use.add(key)
        kept.append(v)
    pod["spec"]["volumes"] = kept


def _without_claims(pod: dict[str, Any]) -> None:
    """Exclusion: a pod on a node the cluster lacks (absent from the dump, or refused by
    validation) uses no PersistentVolumeClaim. Whether kube-scheduler counts it as a
    ReadWriteOncePod claim's user depends on its snapshot's history (a fresh snapshot skips pods
    of absent nodes, snapshot.go:209, a later delta counts them, cache.go:1105); Berth always
    counts it."""
    volumes = [v for v in pod["spec"].get("volumes", []) if "persistentVolumeClaim" not in v]
    pod["spec"]["volumes"] = volumes


def balanced_allocation_scores(config: dict[str, Any], resource: str) -> bool:
    """Whether a profile's NodeResourcesBalancedAllocation args list `resource`."""
    return any(
        r.get("name") == resource
        for profile in config.get("profiles", [])
        for pc in profile.get("pluginConfig", [])
        if pc.get("name") == "NodeResourcesBalancedAllocation"
        for r in pc.get("args", {}).get("resources", [])
    )


def _no_class_selectors_for_balanced_allocation(
    config: dict[str, Any], objects: list[dict[str, Any]]
) -> None:
    """Exclusion: kube-scheduler 1.37.2's NodeResourcesBalancedAllocation has no CEL cache
    (NewBalancedAllocation never sets the scorer's celCache; only NewFit does, fit.go:229), so
    scoring a DeviceClass-backed extended resource on a node that serves it through DRA
    dereferences nil when the class has a CEL selector (resource_allocation.go:488) and the
    scheduler crashes. A class without selectors takes the path that needs no CEL (:412). The
    generated slices are all of one driver, so the class matches the same devices."""
    if not balanced_allocation_scores(config, GPU):
        return
    for obj in objects:
        if obj["kind"] == "DeviceClass" and obj["spec"].get("extendedResourceName") == GPU:
            obj["spec"].pop("selectors", None)


@st.composite
def clusters(draw: st.DrawFn) -> Case:
    large = draw(_integers(0, 24)) == 0
    n_nodes = draw(_integers(100, 130)) if large else draw(_integers(1, 8))
    # Zones in large clusters too: kube-scheduler scans them in turn (the node tree), which
    # decides the nodes percentageOfNodesToScore finds first; Berth scans in the same order.
    zoned = draw(_integers(0, 3)) > 0
    nodes = [draw(node_object(i, zoned=zoned, large=large)) for i in range(n_nodes)]
    names = [n["metadata"]["name"] for n in nodes]
    objects: list[dict[str, Any]] = [*namespaces(), *draw(priority_classes())]
    owners = draw(workloads())
    objects += owners
    owners = [o for o in owners if o["kind"] != "Service"]
    objects += draw(pdbs())
    volume_objects, pvcs = draw(storage(nodes))
    objects += volume_objects
    dra_objects, claims = draw(dra(nodes))
    objects += dra_objects
    n_bound = draw(_integers(0, 6 if large else min(3 * n_nodes, 14)))
    starts = draw(st.permutations(list(range(n_bound))))
    ports_in_use: set[tuple[str, str, int]] = set()
    rwop = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in volume_objects
        if o["kind"] == "PersistentVolumeClaim"
        and "ReadWriteOncePod" in o["spec"].get("accessModes", [])
    }
    rwop_in_use: set[tuple[str, str]] = set()
    for i in range(n_bound):
        target = draw(_sampled_from(names)) if draw(_integers(0, 30)) else "node-gone"
        bound = draw(
            pod_object(
                f"bound-{i}",
                node_names=names,
                bound_to=target,
                start=100 + 10 * starts[i],
                created=i,
                claims=[],
                pvcs=pvcs,
                owners=owners,
            )
        )
        _one_pod_per_host_port(bound, target, ports_in_use)
        _one_pod_per_rwop_claim(bound, rwop, rwop_in_use)
        if target == "node-gone":
            _without_claims(bound)
        objects.append(bound)
    n_pending = draw(_integers(1, 3 if large else 6))
    notes: list[str] = []
    # Exclusion: a ResourceClaim is for one pending pod. Berth's simulation takes an earlier
    # pod's allocation as written; upstream's stays in flight until that pod's PreBind writes
    # it, which the oracle (like `berth simulate`) never runs, so a later pod sharing the claim
    # reads "is in the process of being allocated" (dynamicresources.go PreFilter).
    claimed: set[str] = set()
    for i in range(n_pending):
        raw = draw(
            pod_object(
                f"pending-{i}",
                node_names=names,
                bound_to=None,
                start=0,
                created=1000 + draw(_integers(0, 3)),
                claims=[c for c in claims if c not in claimed],
                pvcs=pvcs,
                owners=owners,
            )
        )
        for ref in raw["spec"].get("resourceClaims", []):
            claimed.add(ref.get("resourceClaimName", ""))
        if draw(_integers(0, 15)) == 0:
            flaw = draw(_sampled_from(sorted(MALFORMATIONS)))
            MALFORMATIONS[flaw](raw)
            notes.append(f"pod {raw['metadata']['name']}: {flaw}")
        objects.append(raw)
    objects += draw(claim_sharers([c for c in claims if c not in claimed], dra_objects))
    if draw(_integers(0, 30)) == 0:
        flaw = draw(_sampled_from(sorted(NODE_MALFORMATIONS)))
        node = draw(_sampled_from(nodes))
        NODE_MALFORMATIONS[flaw](node)
        notes.append(f"node {node['metadata']['name']}: {flaw}")
        # Validation refuses the node, so its pods are on a node the cluster lacks too.
        for obj in objects:
            if obj["kind"] == "Pod" and obj["spec"].get("nodeName") == node["metadata"]["name"]:
                _without_claims(obj)
    objects += nodes
    config = draw(berth_config(large=large))
    _no_class_selectors_for_balanced_allocation(config, objects)
    return Case(objects=objects, config=config, seed=draw(_integers(0, 2**31)), notes=notes)
