"""A pod as the scheduler sees it: requests, ports, tolerations, affinity, spread, priority.

Requests are computed as upstream's `resourcehelper.PodRequests`: the sum of the containers, the
maximum with each init container (restartable "sidecar" init containers accumulate), then the
pod overhead. Scoring uses "non-zero" requests where a container without a cpu or memory request
counts as 100m / 200Mi, as upstream's `schedutil.GetNonzeroRequests` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from berth.objects.dra import PodClaim, is_dra_extended_resource, parse_pod_claims
from berth.objects.errors import ObjectError, go_quote, object_meta, reports_malformed
from berth.objects.names import label_map_error, label_value_errors, qualified_name_errors
from berth.objects.quantity import resource_value
from berth.objects.selectors import (
    LabelSelector,
    NodeSelectorTerm,
    parse_label_selector,
    parse_node_selector_term,
)
from berth.objects.volumes import PodVolume, parse_pod_volumes

DEFAULT_MILLI_CPU_REQUEST = 100  # pkg/scheduler/util: DefaultMilliCPURequest
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # DefaultMemoryRequest
POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
_KIND = "Pod"


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # "Equal" or "Exists"
    value: str
    effect: str  # "" matches every effect

    def tolerates(self, *, key: str, value: str, effect: str) -> bool:
        """v1.Toleration.ToleratesTaint."""
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == value


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A PodAffinityTerm with its namespaces resolved as far as the pod alone allows."""

    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None  # None: only `namespaces`; EVERYTHING: all
    topology_key: str

    def namespace_matches(self, namespace: str, ns_labels: dict[str, dict[str, str]]) -> bool:
        if namespace in self.namespaces:
            return True
        sel = self.namespace_selector
        if sel is None:
            return False
        return sel.matches(ns_labels.get(namespace, {}))

    def matches_pod(self, pod: PodInfo, ns_labels: dict[str, dict[str, str]]) -> bool:
        return self.namespace_matches(pod.namespace, ns_labels) and self.selector.matches(
            pod.labels
        )


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    when_unsatisfiable: str  # "DoNotSchedule" or "ScheduleAnyway"
    selector: LabelSelector
    min_domains: int  # 1 when unset, as upstream treats nil
    node_affinity_policy: str  # "Honor" (default) or "Ignore"
    node_taints_policy: str  # "Ignore" (default) or "Honor"


@dataclass(frozen=True, slots=True)
class ContainerExtended:
    """One container's extended-resource requests, as upstream's createRequestsAndMappings
    reads them: its index among initContainers + containers, its name, whether it is a
    short-lived init container (not a sidecar), and per resource (name, rank of the name among
    the container's sorted request names, the requested count)."""

    index: int
    name: str
    short_lived: bool
    requests: tuple[tuple[str, int, int], ...]


@dataclass(slots=True, eq=False)
class PodInfo:
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    node_name: str
    scheduler_name: str
    priority: int
    preemption_policy: str
    created: float
    phase: str
    terminating: bool
    requests: dict[str, int]
    nonzero_cpu: int
    nonzero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]
    tolerations: tuple[Toleration, ...]
    node_selector: dict[str, str]
    required_node_terms: tuple[NodeSelectorTerm, ...] | None
    preferred_node_terms: tuple[tuple[int, NodeSelectorTerm], ...]
    required_affinity: tuple[AffinityTerm, ...]
    required_anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[tuple[int, AffinityTerm], ...]
    preferred_anti_affinity: tuple[tuple[int, AffinityTerm], ...]
    spread_constraints: tuple[SpreadConstraint, ...]
    images: tuple[str, ...]
    pod_group: str
    nominated_node: str = ""
    # When pod-level cpu or memory requests replace the containers' (PodLevelResources): the
    # containers' own non-zero cpu and memory plus overhead, which NodeResourcesFit still
    # scores with (its scorer never enables pod-level resources: noderesources/fit.go:219,
    # resource_allocation.go:242).
    container_nonzero: tuple[int, int] | None = None
    scheduling_gates: tuple[str, ...] = ()  # spec.schedulingGates[*].name, in order
    start_time: float = 0.0  # status.startTime; 0 when the pod has not started
    # status.conditions has DisruptionTarget=True with reason PreemptionByScheduler
    preempted_by_scheduler: bool = False
    controller: tuple[str, str] | None = None  # (kind, name) of the controlling owner
    volumes: tuple[PodVolume, ...] = ()  # PVC-backed and conflict-checked volumes only
    # metadata.resourceVersion of the object this was parsed from (not part of equality)
    resource_version: str = field(default="", compare=False)
    # DRA: spec.resourceClaims and status.resourceClaimStatuses (name -> claim name or None)
    resource_claims: tuple[PodClaim, ...] = ()
    resource_claim_statuses: tuple[tuple[str, str | None], ...] = ()
    # NodeDeclaredFeatures: the node features this pod needs (upstream InferForPodScheduling)
    required_features: frozenset[str] = frozenset()
    # DRA extended resources: per container (init containers first, as upstream indexes them)
    # the extended-resource requests a DeviceClass may serve; empty when the pod asks for none
    extended_containers: tuple[ContainerExtended, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def has_affinity(self) -> bool:
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )


def _err(pod: str, where: str, reason: str) -> ObjectError:
    return ObjectError(kind=_KIND, name=pod, field=where, reason=reason)


def _obj(raw: Any, pod: str, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _err(pod, where, "must be an object")
    return raw


def _list(raw: Any, pod: str, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _err(pod, where, "must be a list")
    return raw


def _str_map(raw: Any, pod: str, where: str) -> dict[str, str]:
    m = _obj(raw, pod, where)
    for k, v in m.items():
        if not isinstance(v, str):
            raise _err(pod, f"{where}.{k}", "must be a string")
    return m


def _labels(raw: Any, pod: str, where: str) -> dict[str, str]:
    """Labels and a nodeSelector as ValidateLabels checks them (keys qualified names, values
    label values)."""
    m = _str_map(raw, pod, where)
    problem = label_map_error(m)
    if problem is not None:
        raise _err(pod, f"{where}.{problem[0]}", problem[1])
    return m


def _resources(raw: Any, pod: str, where: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for res, qty in _obj(raw, pod, where).items():
        try:
            out[res] = resource_value(res, qty)
        except ValueError as exc:
            raise _err(pod, f"{where}.{res}", str(exc)) from None
        if out[res] < 0:
            raise _err(pod, f"{where}.{res}", "must be greater than or equal to 0")
    return out


def _overcommit_allowed(name: str) -> bool:
    """upstream helper.IsOvercommitAllowed: native resources other than hugepages."""
    native = "/" not in name or "kubernetes.io/" in name
    return native and not name.startswith("hugepages-")


def _requests_within_limits(
    requests: dict[str, int], limits: dict[str, int], pod: str, where: str
) -> None:
    """core/validation ValidateContainerResourceRequirements (validation.go:8295-8304): a
    request at most its limit, and equal to it for a resource that cannot be overcommitted
    (an extended one). Its third rule, that such a resource needs a limit, is not applied: a
    dump written by hand (and upstream's own scheduler tests) request extended resources
    without one, and a limit stands in for a missing request anyway."""
    for name, amount in requests.items():
        limit = limits.get(name)
        if limit is None:
            continue
        if amount != limit and not _overcommit_allowed(name):
            raise _err(pod, f"{where}.requests", f"must be equal to {name} limit")
        elif amount > limit:
            raise _err(pod, f"{where}.requests", f"must be less than or equal to {name} limit")


def _container_requests(c: dict[str, Any], pod: str, where: str) -> dict[str, int]:
    res = _obj(c.get("resources"), pod, f"{where}.resources")
    requests = _resources(res.get("requests"), pod, f"{where}.resources.requests")
    limits = _resources(res.get("limits"), pod, f"{where}.resources.limits")
    _requests_within_limits(requests, limits, pod, f"{where}.resources")
    # The API server defaults a missing request to its limit; dumps written by hand skip that.
    for name, amount in limits.items():
        requests.setdefault(name, amount)
    return requests


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _nonzero(req: dict[str, int]) -> tuple[int, int]:
    return req.get("cpu", DEFAULT_MILLI_CPU_REQUEST), req.get("memory", DEFAULT_MEMORY_REQUEST)


def _unique_names(spec: dict[str, Any], containers: list[Any], pod: str) -> None:
    """Container names are unique across containers and init containers (core/validation
    validateInitContainers checks them against the containers' names)."""
    seen: set[str] = set()
    inits = _list(spec.get("initContainers"), pod, "spec.initContainers")
    for kind, items in (("containers", containers), ("initContainers", inits)):
        for i, c in enumerate(items):
            name = c.get("name") if isinstance(c, dict) else None
            if isinstance(name, str) and name:
                if name in seen:
                    raise _err(pod, f"spec.{kind}[{i}].name", f'Duplicate value: "{name}"')
                seen.add(name)


def _pod_requests(
    spec: dict[str, Any], pod: str
) -> tuple[
    dict[str, int],
    int,
    int,
    tuple[int, int] | None,
    tuple[tuple[str, str, int], ...],
    tuple[str, ...],
]:
    containers = _list(spec.get("containers"), pod, "spec.containers")
    if not containers:
        raise _err(pod, "spec.containers", "Required value")
    reqs: dict[str, int] = {}
    nz_cpu = nz_mem = 0
    ports: list[tuple[str, str, int]] = []
    images: list[str] = []
    _unique_names(spec, containers, pod)
    # Validation refuses a host port twice among the containers, and within one init
    # container (core/validation checkHostPortConflicts, validation.go:3953, :4188).
    seen_ports: set[tuple[str, str, int]] = set()
    for i, c in enumerate(containers):
        where = f"spec.containers[{i}]"
        c = _obj(c, pod, where)
        r = _container_requests(c, pod, where)
        _add(reqs, r)
        cpu, mem = _nonzero(r)
        nz_cpu += cpu
        nz_mem += mem
        image = c.get("image")
        if isinstance(image, str) and image:
            images.append(image)
        for j, p in enumerate(_list(c.get("ports"), pod, f"{where}.ports")):
            p = _obj(p, pod, f"{where}.ports[{j}]")
            host_port = p.get("hostPort") or 0
            if not isinstance(host_port, int) or not 0 <= host_port <= 65535:
                raise _err(pod, f"{where}.ports[{j}].hostPort", "must be between 0 and 65535")
            if host_port > 0:
                proto = p.get("protocol") or "TCP"
                key = (str(p.get("hostIP") or ""), str(proto), host_port)
                if key in seen_ports:
                    raise _err(
                        pod,
                        f"{where}.ports[{j}].hostPort",
                        f'Duplicate value: "{proto}/{key[0]}/{host_port}"',
                    )
                seen_ports.add(key)
                ports.append((key[0] or "0.0.0.0", str(proto), host_port))
    init_max: dict[str, int] = {}
    sidecars: dict[str, int] = {}
    nz_init_cpu = nz_init_mem = 0
    nz_side_cpu = nz_side_mem = 0
    for i, c in enumerate(_list(spec.get("initContainers"), pod, "spec.initContainers")):
        where = f"spec.initContainers[{i}]"
        c = _obj(c, pod, where)
        r = _container_requests(c, pod, where)
        cpu, mem = _nonzero(r)
        image = c.get("image")
        if isinstance(image, str) and image:
            images.append(image)
        init_ports: set[tuple[str, str, int]] = set()
        for j, p in enumerate(_list(c.get("ports"), pod, f"{where}.ports")):
            p = _obj(p, pod, f"{where}.ports[{j}]")
            host_port = p.get("hostPort") or 0
            key = (str(p.get("hostIP") or ""), str(p.get("protocol") or "TCP"), host_port)
            if isinstance(host_port, int) and host_port > 0 and key in init_ports:
                raise _err(
                    pod,
                    f"{where}.ports[{j}].hostPort",
                    f'Duplicate value: "{key[1]}/{key[0]}/{host_port}"',
                )
            init_ports.add(key)
        if c.get("restartPolicy") == "Always":
            # Sidecar ports are host ports for the pod's whole life (upstream GetHostPorts).
            for j, p in enumerate(_list(c.get("ports"), pod, f"{where}.ports")):
                p = _obj(p, pod, f"{where}.ports[{j}]")
                host_port = p.get("hostPort") or 0
                if isinstance(host_port, int) and 0 < host_port <= 65535:
                    ports.append(
                        (
                            str(p.get("hostIP") or "0.0.0.0"),
                            str(p.get("protocol") or "TCP"),
                            host_port,
                        )
                    )
            _add(reqs, r)
            _add(sidecars, r)
            effective = dict(sidecars)
            nz_cpu += cpu
            nz_mem += mem
            nz_side_cpu += cpu
            nz_side_mem += mem
            eff_cpu, eff_mem = nz_side_cpu, nz_side_mem
        else:
            effective = dict(r)
            _add(effective, sidecars)
            eff_cpu, eff_mem = cpu + nz_side_cpu, mem + nz_side_mem
        _max(init_max, effective)
        nz_init_cpu = max(nz_init_cpu, eff_cpu)
        nz_init_mem = max(nz_init_mem, eff_mem)
    _max(reqs, init_max)
    nz_cpu = max(nz_cpu, nz_init_cpu)
    nz_mem = max(nz_mem, nz_init_mem)
    pod_level = _obj(spec.get("resources"), pod, "spec.resources")
    container_nz: tuple[int, int] | None = None
    if pod_level:
        # PodLevelResources: pod-level requests (or limits standing in for them) replace the
        # container aggregate for the resources they name.
        level = _resources(pod_level.get("requests"), pod, "spec.resources.requests")
        for name, amount in _resources(
            pod_level.get("limits"), pod, "spec.resources.limits"
        ).items():
            level.setdefault(name, amount)
        # Only cpu, memory and hugepages-* are pod-level resources (component-helpers
        # IsSupportedPodLevelResource); any other name there is ignored.
        level = {
            k: v for k, v in level.items() if k in ("cpu", "memory") or k.startswith("hugepages-")
        }
        reqs.update(level)
        if "cpu" in level or "memory" in level:
            container_nz = (nz_cpu, nz_mem)
        nz_cpu = level.get("cpu", nz_cpu)
        nz_mem = level.get("memory", nz_mem)
    overhead = _resources(spec.get("overhead"), pod, "spec.overhead")
    _add(reqs, overhead)
    nz_cpu += overhead.get("cpu", 0)
    nz_mem += overhead.get("memory", 0)
    if container_nz is not None:
        container_nz = (
            container_nz[0] + overhead.get("cpu", 0),
            container_nz[1] + overhead.get("memory", 0),
        )
    return reqs, nz_cpu, nz_mem, container_nz, tuple(ports), tuple(images)


TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _tolerations(spec: dict[str, Any], pod: str) -> tuple[Toleration, ...]:
    out = []
    for i, t in enumerate(_list(spec.get("tolerations"), pod, "spec.tolerations")):
        where = f"spec.tolerations[{i}]"
        t = _obj(t, pod, where)
        op = t.get("operator") or "Equal"
        if op not in ("Equal", "Exists"):
            raise _err(
                pod,
                f"{where}.operator",
                f'Unsupported value: {go_quote(op)}: supported values: "Equal", "Exists"',
            )
        key = t.get("key") or ""
        value = t.get("value") or ""
        effect = t.get("effect") or ""
        # core/validation ValidateTolerations (validation.go:4487): key, value and effect too.
        for problem in qualified_name_errors(str(key)) if key else ():
            raise _err(pod, f"{where}.key", f"Invalid value: {go_quote(key)}: {problem}")
        if op == "Exists" and value:
            raise _err(pod, f"{where}.operator", "value must be empty when `operator` is 'Exists'")
        for problem in label_value_errors(str(value)) if op == "Equal" else ():
            raise _err(pod, f"{where}.operator", f"Invalid value: {go_quote(value)}: {problem}")
        if not key and op != "Exists":
            raise _err(pod, f"{where}.operator", "operator must be Exists when `key` is empty")
        if effect and effect not in TAINT_EFFECTS:
            raise _err(
                pod,
                f"{where}.effect",
                f"Unsupported value: {go_quote(effect)}: supported values: "
                + ", ".join(go_quote(e) for e in TAINT_EFFECTS),
            )
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            raise _err(
                pod, f"{where}.effect", "effect must be 'NoExecute' when `tolerationSeconds` is set"
            )
        out.append(Toleration(str(key), op, str(value), str(effect)))
    return tuple(out)


def _affinity_term(raw: Any, pod: str, namespace: str, where: str) -> AffinityTerm:
    t = _obj(raw, pod, where)
    topology_key = t.get("topologyKey")
    if not isinstance(topology_key, str) or not topology_key:
        raise _err(pod, f"{where}.topologyKey", "can not be empty")
    selector = parse_label_selector(
        t.get("labelSelector"), where=f"{where}.labelSelector", kind=_KIND, name=pod
    )
    namespaces = _list(t.get("namespaces"), pod, f"{where}.namespaces")
    raw_ns_sel = t.get("namespaceSelector")
    ns_sel = (
        None
        if raw_ns_sel is None
        else parse_label_selector(
            raw_ns_sel, where=f"{where}.namespaceSelector", kind=_KIND, name=pod
        )
    )
    ns = frozenset(str(n) for n in namespaces)
    if not ns and ns_sel is None:
        # upstream: neither namespaces nor namespaceSelector means the pod's own namespace.
        ns = frozenset((namespace,))
    return AffinityTerm(selector, ns, ns_sel, topology_key)


def _weighted(raw: Any, pod: str, where: str, inner: str) -> tuple[int, dict[str, Any]]:
    w = _obj(raw, pod, where)
    weight = w.get("weight")
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
        raise _err(pod, f"{where}.weight", "must be in the range 1-100")
    return weight, _obj(w.get(inner), pod, f"{where}.{inner}")


def _pod_affinity(
    aff: dict[str, Any], kind: str, pod: str, namespace: str
) -> tuple[tuple[AffinityTerm, ...], tuple[tuple[int, AffinityTerm], ...]]:
    base = f"spec.affinity.{kind}"
    a = _obj(aff.get(kind), pod, base)
    req_where = f"{base}.requiredDuringSchedulingIgnoredDuringExecution"
    required = tuple(
        _affinity_term(t, pod, namespace, f"{req_where}[{i}]")
        for i, t in enumerate(
            _list(a.get("requiredDuringSchedulingIgnoredDuringExecution"), pod, req_where)
        )
    )
    pref_where = f"{base}.preferredDuringSchedulingIgnoredDuringExecution"
    preferred = []
    for i, w in enumerate(
        _list(a.get("preferredDuringSchedulingIgnoredDuringExecution"), pod, pref_where)
    ):
        weight, term = _weighted(w, pod, f"{pref_where}[{i}]", "podAffinityTerm")
        preferred.append(
            (weight, _affinity_term(term, pod, namespace, f"{pref_where}[{i}].podAffinityTerm"))
        )
    return required, tuple(preferred)


def _node_affinity(
    aff: dict[str, Any], pod: str
) -> tuple[tuple[NodeSelectorTerm, ...] | None, tuple[tuple[int, NodeSelectorTerm], ...]]:
    base = "spec.affinity.nodeAffinity"
    na = _obj(aff.get("nodeAffinity"), pod, base)
    required: tuple[NodeSelectorTerm, ...] | None = None
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is not None:
        where = f"{base}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        terms = _list(_obj(req, pod, where).get("nodeSelectorTerms"), pod, where)
        required = tuple(
            parse_node_selector_term(
                t, where=f"{where}[{i}]", kind=_KIND, name=pod, lazy_integers=True
            )
            for i, t in enumerate(terms)
        )
    pref_where = f"{base}.preferredDuringSchedulingIgnoredDuringExecution"
    preferred = []
    for i, w in enumerate(
        _list(na.get("preferredDuringSchedulingIgnoredDuringExecution"), pod, pref_where)
    ):
        weight, term = _weighted(w, pod, f"{pref_where}[{i}]", "preference")
        preferred.append(
            (
                weight,
                parse_node_selector_term(
                    term, where=f"{pref_where}[{i}].preference", kind=_KIND, name=pod
                ),
            )
        )
    return required, tuple(preferred)


def _spread(spec: dict[str, Any], labels: dict[str, str], pod: str) -> tuple[SpreadConstraint, ...]:
    out = []
    base = "spec.topologySpreadConstraints"
    for i, c in enumerate(_list(spec.get("topologySpreadConstraints"), pod, base)):
        where = f"{base}[{i}]"
        c = _obj(c, pod, where)
        max_skew = c.get("maxSkew")
        if not isinstance(max_skew, int) or isinstance(max_skew, bool) or max_skew < 1:
            raise _err(pod, f"{where}.maxSkew", "must be greater than zero")
        key = c.get("topologyKey")
        if not isinstance(key, str) or not key:
            raise _err(pod, f"{where}.topologyKey", "can not be empty")
        when = c.get("whenUnsatisfiable")
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            raise _err(
                pod,
                f"{where}.whenUnsatisfiable",
                'supported values: "DoNotSchedule", "ScheduleAnyway"',
            )
        min_domains = c.get("minDomains")
        if min_domains is None:
            min_domains = 1
        elif not isinstance(min_domains, int) or min_domains < 1:
            raise _err(pod, f"{where}.minDomains", "must be greater than zero")
        elif when != "DoNotSchedule":
            raise _err(
                pod,
                f"{where}.minDomains",
                "can only use minDomains if whenUnsatisfiable=DoNotSchedule",
            )
        selector = parse_label_selector(
            c.get("labelSelector"), where=f"{where}.labelSelector", kind=_KIND, name=pod
        )
        keys = _list(c.get("matchLabelKeys"), pod, f"{where}.matchLabelKeys")
        for j, k in enumerate(keys):
            if not isinstance(k, str) or not k:
                raise _err(pod, f"{where}.matchLabelKeys[{j}]", "must be a non-empty string")
        if keys and not selector.matches_nothing:
            # matchLabelKeys: the pod's own values for these keys are ANDed into the selector.
            from berth.objects.selectors import Requirement

            extra = tuple(
                Requirement(str(k), "In", frozenset((labels[k],))) for k in keys if k in labels
            )
            selector = LabelSelector(selector.requirements + extra)
        nap = c.get("nodeAffinityPolicy") or "Honor"
        ntp = c.get("nodeTaintsPolicy") or "Ignore"
        for fname, val in (("nodeAffinityPolicy", nap), ("nodeTaintsPolicy", ntp)):
            if val not in ("Honor", "Ignore"):
                raise _err(pod, f"{where}.{fname}", 'supported values: "Honor", "Ignore"')
        out.append(SpreadConstraint(max_skew, key, when, selector, min_domains, nap, ntp))
    return tuple(out)


def _timestamp(raw: Any) -> float:
    if not isinstance(raw, str) or not raw:
        return 0.0
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return 0.0


@reports_malformed("Pod")
def parse_pod(raw: Any) -> PodInfo:
    """Parse a v1 Pod; raise ObjectError naming the field for anything malformed."""
    meta, name = object_meta(raw, kind=_KIND)
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise _err(name, "metadata.namespace", "must be a string")
    pod = f"{namespace}/{name}"
    labels = _labels(meta.get("labels"), pod, "metadata.labels")
    spec = _obj(raw.get("spec"), pod, "spec")
    status = _obj(raw.get("status"), pod, "status")
    reqs, nz_cpu, nz_mem, container_nz, ports, images = _pod_requests(spec, pod)
    aff = _obj(spec.get("affinity"), pod, "spec.affinity")
    req_nodes, pref_nodes = _node_affinity(aff, pod)
    req_aff, pref_aff = _pod_affinity(aff, "podAffinity", pod, namespace)
    req_anti, pref_anti = _pod_affinity(aff, "podAntiAffinity", pod, namespace)
    priority = spec.get("priority") or 0
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise _err(pod, "spec.priority", "must be an integer")
    claims, claim_statuses = parse_pod_claims(spec, status, pod)
    return PodInfo(
        namespace=namespace,
        name=name,
        uid=str(meta.get("uid") or ""),
        labels=labels,
        node_name=str(spec.get("nodeName") or ""),
        scheduler_name=str(spec.get("schedulerName") or "default-scheduler"),
        priority=priority,
        preemption_policy=str(spec.get("preemptionPolicy") or "PreemptLowerPriority"),
        created=_timestamp(meta.get("creationTimestamp")),
        phase=str(status.get("phase") or "Pending"),
        terminating=bool(meta.get("deletionTimestamp")),
        requests=reqs,
        nonzero_cpu=nz_cpu,
        nonzero_memory=nz_mem,
        container_nonzero=container_nz,
        host_ports=ports,
        tolerations=_tolerations(spec, pod),
        node_selector=_labels(spec.get("nodeSelector"), pod, "spec.nodeSelector"),
        required_node_terms=req_nodes,
        preferred_node_terms=pref_nodes,
        required_affinity=req_aff,
        required_anti_affinity=req_anti,
        preferred_affinity=pref_aff,
        preferred_anti_affinity=pref_anti,
        spread_constraints=_spread(spec, labels, pod),
        images=images,
        pod_group=labels.get(POD_GROUP_LABEL, ""),
        nominated_node=str(status.get("nominatedNodeName") or ""),
        scheduling_gates=_scheduling_gates(spec, pod),
        start_time=_timestamp(status.get("startTime")),
        preempted_by_scheduler=_preempted_by_scheduler(status),
        controller=_controller(meta),
        volumes=parse_pod_volumes(spec, name),
        resource_version=str(meta.get("resourceVersion") or ""),
        resource_claims=claims,
        resource_claim_statuses=claim_statuses,
        required_features=required_node_features(spec),
        extended_containers=(
            _extended_containers(spec, pod)
            if any(is_dra_extended_resource(r) for r in reqs)
            else ()
        ),
    )


def _extended_containers(spec: dict[str, Any], pod: str) -> tuple[ContainerExtended, ...]:
    """The containers' requests of extended resources (upstream partitionContainerIndices and
    createResourceRequestAndMappings' inputs); the requests were validated by _pod_requests."""
    inits = [c for c in spec.get("initContainers") or () if isinstance(c, dict)]
    containers = [c for c in spec.get("containers") or () if isinstance(c, dict)]
    out = []
    for i, c in enumerate([*inits, *containers]):
        where = (
            f"spec.initContainers[{i}]" if i < len(inits) else f"spec.containers[{i - len(inits)}]"
        )
        requests = _container_requests(c, pod, where)
        names = sorted(requests)
        wanted = tuple(
            (r, names.index(r), requests[r])
            for r in names
            if is_dra_extended_resource(r) and requests[r] > 0
        )
        if not wanted:
            continue
        out.append(
            ContainerExtended(
                index=i,
                name=str(c.get("name") or ""),
                short_lived=i < len(inits) and c.get("restartPolicy") != "Always",
                requests=wanted,
            )
        )
    return tuple(out)


def required_node_features(spec: dict[str, Any]) -> frozenset[str]:
    """upstream nodedeclaredfeatures InferForPodScheduling over the 1.37 registry: the features
    whose InferForScheduling can be true (the others always answer false)."""
    out: set[str] = set()
    containers = [c for c in (spec.get("containers") or []) if isinstance(c, dict)]
    inits = [c for c in (spec.get("initContainers") or []) if isinstance(c, dict)]
    ephemeral = [c for c in (spec.get("ephemeralContainers") or []) if isinstance(c, dict)]
    for c in containers + inits:
        for rule in c.get("restartPolicyRules") or []:
            if isinstance(rule, dict) and rule.get("action") == "RestartAllContainers":
                out.add("RestartAllContainersOnContainerExits")
    if spec.get("hostNetwork") is True and spec.get("hostUsers") is False:
        out.add("UserNamespacesHostNetworkSupport")
    for c in containers + inits + ephemeral:
        for m in c.get("volumeMounts") or []:
            if isinstance(m, dict) and m.get("bindMountOptions"):
                out.add("VolumeBindMountOptions")
    return frozenset(out)


def _scheduling_gates(spec: dict[str, Any], pod: str) -> tuple[str, ...]:
    gates = _list(spec.get("schedulingGates"), pod, "spec.schedulingGates")
    names: list[str] = []
    for i, raw in enumerate(gates):
        gate = _obj(raw, pod, f"spec.schedulingGates[{i}]")
        name = gate.get("name")
        if not isinstance(name, str) or not name:
            raise _err(pod, f"spec.schedulingGates[{i}].name", "must be a non-empty string")
        # upstream validateSchedulingGates: qualified names, each once.
        for problem in qualified_name_errors(name):
            raise _err(pod, f"spec.schedulingGates[{i}]", f"Invalid value: {name!r}: {problem}")
        if name in names:
            raise _err(pod, f"spec.schedulingGates[{i}]", f"Duplicate value: {name!r}")
        names.append(name)
    return tuple(names)


def _preempted_by_scheduler(status: dict[str, Any]) -> bool:
    """upstream podTerminatingByPreemption's condition test (the first DisruptionTarget wins)."""
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "DisruptionTarget":
            return c.get("status") == "True" and c.get("reason") == "PreemptionByScheduler"
    return False


def _controller(meta: dict[str, Any]) -> tuple[str, str] | None:
    """The ownerReference with controller: true, as (kind, name) (metav1.GetControllerOf)."""
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return str(ref.get("kind")), str(ref.get("name"))
    return None


def pod_stub(
    *,
    namespace: str,
    name: str,
    uid: str = "",
    scheduler_name: str = "default-scheduler",
    resource_version: str = "",
) -> PodInfo:
    """A PodInfo that only names a pod: for an event about a pod that cannot be parsed, or a
    binding the extender is asked to make for a pod it was not sent."""
    return parse_pod(
        {
            "metadata": {
                "name": name,
                "namespace": namespace or "default",
                "uid": uid,
                "resourceVersion": resource_version,
            },
            "spec": {
                "schedulerName": scheduler_name,
                "containers": [{"name": "stub", "image": "stub"}],
            },
        }
    )
