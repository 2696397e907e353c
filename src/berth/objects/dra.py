"""resource.k8s.io/v1 objects as the DRA allocator sees them: DeviceClass, ResourceSlice (and its
devices), ResourceClaim, ResourceClaimTemplate, and a pod's `spec.resourceClaims`.

Parsed once per object change into frozen structs (upstream types: k8s.io/api/resource/v1). A
device's CEL-visible part (driver, attributes, capacity, allowMultipleAllocations) is reduced to
a `shape` key, so a selector is evaluated once per distinct shape, not once per device. Devices
with the same attributes or capacities share one copy of them (`_shared`), and a parsed slice
keeps nothing of its raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from berth.objects.errors import ObjectError, object_meta, reports_malformed
from berth.objects.quantity import Quantity, parse_formatted_quantity, parse_quantity
from berth.objects.selectors import NodeSelectorTerm, parse_node_selector_term

# Upstream limits (k8s.io/api/resource/v1): results per claim, subrequests per request.
ALLOCATION_RESULTS_MAX_SIZE = 32
FIRST_AVAILABLE_DEVICE_REQUEST_MAX_SIZE = 8
FINALIZER = "resource.kubernetes.io/delete-protection"
# DRA extended resources (k8s.io/api/resource/v1 ResourceDeviceClassPrefix,
# ExtendedResourceClaimAnnotation)
RESOURCE_DEVICE_CLASS_PREFIX = "deviceclass.resource.kubernetes.io/"
EXTENDED_RESOURCE_CLAIM_ANNOTATION = "resource.kubernetes.io/extended-resource-claim"
ALLOCATION_MODE_EXACT_COUNT = "ExactCount"
ALLOCATION_MODE_ALL = "All"
TAINT_EFFECTS = ("NoSchedule", "NoExecute", "None")

# Devices repeat each other: every GPU of a model has the same driver, model, family and memory,
# on every node. Each distinct attribute, attribute set, capacity set and shape is held once,
# shared by the frozen Devices that carry it (5,000 slices of 10 such devices: 32 KB parsed per
# slice before, 3 KB after). Bounded: a table starts afresh when full, which only stops the
# sharing of what is parsed next; nothing shared is ever mutated.
_SHARED_MAX = 1 << 16
_ITEMS: dict[Any, Any] = {}
_ATTRIBUTE_SETS: dict[Any, Any] = {}
_CAPACITY_SETS: dict[Any, Any] = {}
_SHAPES: dict[Any, Any] = {}
_T = TypeVar("_T")


def _shared(table: dict[Any, Any], key: Any, value: _T) -> _T:
    """The value `table` already holds for `key`, or `value` (then held for it)."""
    found = table.get(key)
    if found is None:
        if len(table) >= _SHARED_MAX:
            table.clear()
        table[key] = found = value
    return found


# A device attribute: (kind, value) with kind one of int, bool, string, version (scalars) or
# ints, bools, strings, versions (lists, the alpha DRAListTypeAttributes; kept for matching), or
# "unknown" for a value of no type this release knows.
Attribute = tuple[str, Any]
_ATTRIBUTE_KINDS = {
    "int": "int",
    "bool": "bool",
    "string": "string",
    "version": "version",
    "ints": "ints",
    "bools": "bools",
    "strings": "strings",
    "versions": "versions",
}


@dataclass(frozen=True, slots=True)
class NodeSelector:
    """A v1.NodeSelector: ORed terms (none matches no node)."""

    terms: tuple[NodeSelectorTerm, ...]
    raw: Any = field(compare=False, hash=False, default=None)

    def matches(self, labels: dict[str, str], node_name: str) -> bool:
        return any(t.matches(labels, node_name) for t in self.terms)


@dataclass(frozen=True, slots=True)
class DeviceTaint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class DeviceToleration:
    key: str
    operator: str
    value: str
    effect: str
    seconds: int | None = None

    def tolerates(self, taint: DeviceTaint) -> bool:
        """upstream resourceclaim.ToleratesTaint."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator in ("", "Equal"):
            return self.value == taint.value
        return self.operator == "Exists"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.key:
            out["key"] = self.key
        if self.operator:
            out["operator"] = self.operator
        if self.value:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        if self.seconds is not None:
            out["tolerationSeconds"] = self.seconds
        return out


@dataclass(frozen=True, slots=True)
class CapacityPolicy:
    """A device capacity's requestPolicy (consumable capacity): what one share may ask for."""

    default: Quantity | None
    valid_values: tuple[Quantity, ...] | None  # None: not set
    # validRange (min, max, step); None: not set
    valid_range: tuple[Quantity | None, Quantity | None, Quantity | None] | None


@dataclass(frozen=True, slots=True)
class DeviceCapacity:
    value: Quantity
    policy: CapacityPolicy | None


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    attributes: dict[str, Attribute]  # as published: qualified ("d/x") or not ("x")
    capacity: dict[str, Decimal]
    consumes_counters: tuple[tuple[str, dict[str, Decimal]], ...]
    node_name: str
    node_selector: NodeSelector | None
    all_nodes: bool
    taints: tuple[DeviceTaint, ...]
    binds_to_node: bool
    binding_conditions: tuple[str, ...]
    binding_failure_conditions: tuple[str, ...]
    allow_multiple_allocations: bool | None
    # (driver, attributes, capacity, allowMultipleAllocations): what a CEL selector can see
    shape: tuple[Any, ...]
    # each capacity with its format and requestPolicy, for consumable capacity
    capacities: dict[str, DeviceCapacity] = field(compare=False, hash=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class SliceInfo:
    name: str
    uid: str
    resource_version: str
    driver: str
    pool: str
    generation: int
    slice_count: int
    node_name: str
    node_selector: NodeSelector | None
    all_nodes: bool
    per_device_node_selection: bool
    devices: tuple[Device, ...]
    shared_counters: tuple[tuple[str, dict[str, Decimal]], ...]
    uses_compatibility_groups: bool = False

    @property
    def pool_id(self) -> tuple[str, str]:
        return (self.driver, self.pool)


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """An ExactDeviceRequest or a DeviceSubRequest (upstream's requestAccessor)."""

    name: str
    class_name: str
    selectors: tuple[str, ...]  # CEL expressions; "" for a selector of an unknown type
    mode: str
    count: int
    admin_access: bool | None  # None: not set
    tolerations: tuple[DeviceToleration, ...]
    capacity: dict[str, Quantity] | None  # capacity.requests (None: no capacity field)
    derived_attributes: int = 0  # how many (an alpha field Berth does not support)


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    name: str
    exactly: RequestSpec | None
    first_available: tuple[RequestSpec, ...]


@dataclass(frozen=True, slots=True)
class Constraint:
    requests: tuple[str, ...]
    match_attribute: str | None
    distinct_attribute: str | None


@dataclass(frozen=True, slots=True)
class DeviceResult:
    """One entry of status.allocation.devices.results."""

    request: str
    driver: str
    pool: str
    device: str
    admin_access: bool = False
    share_id: str | None = None
    binding_conditions: tuple[str, ...] = ()
    binding_failure_conditions: tuple[str, ...] = ()
    consumed_capacity: dict[str, Decimal] | None = None

    @property
    def device_id(self) -> tuple[str, str, str]:
        return (self.driver, self.pool, self.device)


@dataclass(frozen=True, slots=True)
class Allocation:
    results: tuple[DeviceResult, ...]
    node_selector: NodeSelector | None
    raw: dict[str, Any] = field(compare=False, hash=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConsumerRef:
    api_group: str
    resource: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class ClaimSpec:
    requests: tuple[DeviceRequest, ...]
    constraints: tuple[Constraint, ...]
    config: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ClaimInfo:
    namespace: str
    name: str
    uid: str
    resource_version: str
    deleting: bool
    spec: ClaimSpec
    allocation: Allocation | None
    reserved_for: tuple[ConsumerRef, ...]
    controller: tuple[str, str, str] | None  # (apiVersion, kind, uid) of the controlling owner
    finalizers: tuple[str, ...]
    raw: dict[str, Any] = field(compare=False, hash=False, default_factory=dict)
    # the special claim of a pod's extended resources (annotated, its controller the pod):
    # (pod name, pod uid); None for any other claim
    extended_for: tuple[str, str] | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class DeviceClassInfo:
    name: str
    selectors: tuple[str, ...]
    config: tuple[dict[str, Any], ...]
    extended_resource_name: str
    created: str = ""  # metadata.creationTimestamp (RFC 3339): the newer class wins a name


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    namespace: str
    name: str
    spec: dict[str, Any]  # spec.spec: a ResourceClaimSpec, copied into the claims it makes
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class TaintRuleInfo:
    """A DeviceTaintRule: its taint on every device its selector names (None: any)."""

    name: str
    driver: str | None
    pool: str | None
    device: str | None
    selects: bool  # False without a deviceSelector: no device is selected
    taint: DeviceTaint

    def applies(self, driver: str, pool: str, device: str) -> bool:
        return (
            self.selects
            and (self.driver is None or self.driver == driver)
            and (self.pool is None or self.pool == pool)
            and (self.device is None or self.device == device)
        )


@dataclass(frozen=True, slots=True)
class PodClaim:
    """One entry of a pod's spec.resourceClaims."""

    name: str
    claim_name: str | None
    template_name: str | None


# ----- parsing ----------------------------------------------------------------------------------


class _Parser:
    """Field access that names the JSON path of whatever is wrong."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name

    def err(self, where: str, reason: str) -> ObjectError:
        return ObjectError(kind=self.kind, name=self.name, field=where, reason=reason)

    def obj(self, raw: Any, where: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise self.err(where, "must be an object")
        return raw

    def lst(self, raw: Any, where: str) -> list[Any]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise self.err(where, "must be a list")
        return raw

    def string(self, raw: Any, where: str, *, required: bool = False) -> str:
        if raw is None:
            if required:
                raise self.err(where, "Required value")
            return ""
        if not isinstance(raw, str):
            raise self.err(where, "must be a string")
        if required and not raw:
            raise self.err(where, "Required value")
        return raw

    def integer(self, raw: Any, where: str, *, default: int = 0) -> int:
        if raw is None:
            return default
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise self.err(where, "must be an integer")
        return raw

    def boolean(self, raw: Any, where: str) -> bool | None:
        if raw is None:
            return None
        if not isinstance(raw, bool):
            raise self.err(where, "must be a boolean")
        return raw

    def quantity(self, raw: Any, where: str) -> Decimal:
        try:
            return parse_quantity(raw)
        except ValueError as exc:
            raise self.err(where, str(exc)) from None

    def formatted(self, raw: Any, where: str) -> Quantity:
        try:
            return parse_formatted_quantity(raw)
        except ValueError as exc:
            raise self.err(where, str(exc)) from None

    def optional_quantity(self, raw: Any, where: str) -> Quantity | None:
        return None if raw is None else self.formatted(raw, where)

    def capacity_policy(self, raw: Any, where: str) -> CapacityPolicy | None:
        if raw is None:
            return None
        policy = self.obj(raw, where)
        values = policy.get("validValues")
        valid_range = policy.get("validRange")
        rng = None
        if valid_range is not None:
            r = self.obj(valid_range, f"{where}.validRange")
            rng = (
                self.optional_quantity(r.get("min"), f"{where}.validRange.min"),
                self.optional_quantity(r.get("max"), f"{where}.validRange.max"),
                self.optional_quantity(r.get("step"), f"{where}.validRange.step"),
            )
        return CapacityPolicy(
            default=self.optional_quantity(policy.get("default"), f"{where}.default"),
            valid_values=None
            if values is None
            else tuple(
                self.formatted(v, f"{where}.validValues[{i}]")
                for i, v in enumerate(self.lst(values, f"{where}.validValues"))
            ),
            valid_range=rng,
        )

    def node_selector(self, raw: Any, where: str) -> NodeSelector | None:
        if raw is None:
            return None
        sel = self.obj(raw, where)
        terms = tuple(
            parse_node_selector_term(
                t, where=f"{where}.nodeSelectorTerms[{i}]", kind=self.kind, name=self.name
            )
            for i, t in enumerate(
                self.lst(sel.get("nodeSelectorTerms"), f"{where}.nodeSelectorTerms")
            )
        )
        return NodeSelector(terms, raw)

    def counters(self, raw: Any, where: str) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for name, counter in self.obj(raw, where).items():
            c = self.obj(counter, f"{where}.{name}")
            out[str(name)] = self.quantity(c.get("value"), f"{where}.{name}.value")
        return out

    def quantities(self, raw: Any, where: str) -> dict[str, Decimal]:
        return {
            str(name): self.quantity(value, f"{where}[{name}]")
            for name, value in self.obj(raw, where).items()
        }

    def tolerations(self, raw: Any, where: str) -> tuple[DeviceToleration, ...]:
        out = []
        for i, t in enumerate(self.lst(raw, where)):
            t = self.obj(t, f"{where}[{i}]")
            seconds = t.get("tolerationSeconds")
            out.append(
                DeviceToleration(
                    key=self.string(t.get("key"), f"{where}[{i}].key"),
                    operator=self.string(t.get("operator"), f"{where}[{i}].operator") or "Equal",
                    value=self.string(t.get("value"), f"{where}[{i}].value"),
                    effect=self.string(t.get("effect"), f"{where}[{i}].effect"),
                    seconds=None
                    if seconds is None
                    else self.integer(seconds, f"{where}[{i}].tolerationSeconds"),
                )
            )
        return tuple(out)


def _attribute(p: _Parser, raw: Any, where: str) -> Attribute:
    a = p.obj(raw, where)
    set_keys = [k for k in _ATTRIBUTE_KINDS if a.get(k) is not None]
    if not set_keys:
        # a value of a type this release does not know: CEL refuses the device (upstream
        # getAttributeValue), constraints never match it
        return ("unknown", None)
    if len(set_keys) != 1:
        raise p.err(where, "exactly one value must be specified")
    kind = set_keys[0]
    value = a[kind]
    scalar = {"int": int, "bool": bool, "string": str, "version": str}
    if kind in scalar:
        want = scalar[kind]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise p.err(f"{where}.{kind}", f"must be a {want.__name__}")
        return (kind, value)
    items = p.lst(value, f"{where}.{kind}")
    want = scalar[kind[:-1]]
    for j, v in enumerate(items):
        if not isinstance(v, want) or (want is int and isinstance(v, bool)):
            raise p.err(f"{where}.{kind}[{j}]", f"must be a {want.__name__}")
    return (kind, tuple(items))


def _device(p: _Parser, raw: Any, where: str, driver: str) -> Device:
    d = p.obj(raw, where)
    name = p.string(d.get("name"), f"{where}.name", required=True)
    published = tuple(
        _shared(_ITEMS, item, item)
        for k, v in p.obj(d.get("attributes"), f"{where}.attributes").items()
        for item in ((str(k), _attribute(p, v, f"{where}.attributes[{k}]")),)
    )
    attribute_items, attributes = _shared(
        _ATTRIBUTE_SETS, published, (tuple(sorted(published)), dict(published))
    )
    capacities: dict[str, DeviceCapacity] = {}
    raw_capacity = p.obj(d.get("capacity"), f"{where}.capacity")
    for k, v in raw_capacity.items():
        c = p.obj(v, f"{where}.capacity[{k}]")
        value = p.formatted(c.get("value"), f"{where}.capacity[{k}].value")
        capacities[str(k)] = DeviceCapacity(
            value, p.capacity_policy(c.get("requestPolicy"), f"{where}.capacity[{k}].requestPolicy")
        )
    # keyed by the JSON as published: equal Decimals may be written differently (1k, 1000)
    capacity_items, capacity, capacities = _shared(
        _CAPACITY_SETS,
        repr(raw_capacity),
        (
            tuple(sorted((k, c.value.value) for k, c in capacities.items())),
            {k: c.value.value for k, c in capacities.items()},
            capacities,
        ),
    )
    consumes = []
    for i, c in enumerate(p.lst(d.get("consumesCounters"), f"{where}.consumesCounters")):
        c = p.obj(c, f"{where}.consumesCounters[{i}]")
        consumes.append(
            (
                p.string(c.get("counterSet"), f"{where}.consumesCounters[{i}].counterSet"),
                p.counters(c.get("counters"), f"{where}.consumesCounters[{i}].counters"),
            )
        )
    taints = []
    for i, t in enumerate(p.lst(d.get("taints"), f"{where}.taints")):
        t = p.obj(t, f"{where}.taints[{i}]")
        taints.append(
            DeviceTaint(
                key=p.string(t.get("key"), f"{where}.taints[{i}].key", required=True),
                value=p.string(t.get("value"), f"{where}.taints[{i}].value"),
                effect=p.string(t.get("effect"), f"{where}.taints[{i}].effect"),
            )
        )
    multi = p.boolean(d.get("allowMultipleAllocations"), f"{where}.allowMultipleAllocations")
    shape = (driver, attribute_items, capacity_items, bool(multi))
    shape = _shared(_SHAPES, shape, shape)
    return Device(
        name=name,
        attributes=attributes,
        capacity=capacity,
        consumes_counters=tuple(consumes),
        node_name=p.string(d.get("nodeName"), f"{where}.nodeName"),
        node_selector=p.node_selector(d.get("nodeSelector"), f"{where}.nodeSelector"),
        all_nodes=bool(p.boolean(d.get("allNodes"), f"{where}.allNodes")),
        taints=tuple(taints),
        binds_to_node=bool(p.boolean(d.get("bindsToNode"), f"{where}.bindsToNode")),
        binding_conditions=tuple(
            p.string(c, f"{where}.bindingConditions[{i}]")
            for i, c in enumerate(p.lst(d.get("bindingConditions"), f"{where}.bindingConditions"))
        ),
        binding_failure_conditions=tuple(
            p.string(c, f"{where}.bindingFailureConditions[{i}]")
            for i, c in enumerate(
                p.lst(d.get("bindingFailureConditions"), f"{where}.bindingFailureConditions")
            )
        ),
        allow_multiple_allocations=multi,
        shape=shape,
        capacities=capacities,
    )


@reports_malformed("ResourceSlice")
def parse_resource_slice(raw: Any) -> SliceInfo:
    meta, name = object_meta(raw, kind="ResourceSlice")
    p = _Parser("ResourceSlice", name)
    spec = p.obj(raw.get("spec"), "spec")
    driver = p.string(spec.get("driver"), "spec.driver", required=True)
    pool = p.obj(spec.get("pool"), "spec.pool")
    raw_devices = p.lst(spec.get("devices"), "spec.devices")
    devices = tuple(_device(p, d, f"spec.devices[{i}]", driver) for i, d in enumerate(raw_devices))
    shared = []
    for i, cs in enumerate(p.lst(spec.get("sharedCounters"), "spec.sharedCounters")):
        cs = p.obj(cs, f"spec.sharedCounters[{i}]")
        shared.append(
            (
                p.string(cs.get("name"), f"spec.sharedCounters[{i}].name", required=True),
                p.counters(cs.get("counters"), f"spec.sharedCounters[{i}].counters"),
            )
        )
    compat = any(
        isinstance(c, dict) and c.get("compatibilityGroups")
        for d in raw_devices
        for c in (d.get("consumesCounters") or [])
    )
    return SliceInfo(
        name=name,
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        driver=driver,
        pool=p.string(pool.get("name"), "spec.pool.name", required=True),
        generation=p.integer(pool.get("generation"), "spec.pool.generation"),
        slice_count=p.integer(pool.get("resourceSliceCount"), "spec.pool.resourceSliceCount"),
        node_name=p.string(spec.get("nodeName"), "spec.nodeName"),
        node_selector=p.node_selector(spec.get("nodeSelector"), "spec.nodeSelector"),
        all_nodes=bool(p.boolean(spec.get("allNodes"), "spec.allNodes")),
        per_device_node_selection=bool(
            p.boolean(spec.get("perDeviceNodeSelection"), "spec.perDeviceNodeSelection")
        ),
        devices=devices,
        shared_counters=tuple(shared),
        uses_compatibility_groups=bool(compat),
    )


def _selectors(p: _Parser, raw: Any, where: str) -> tuple[str, ...]:
    out = []
    for i, s in enumerate(p.lst(raw, where)):
        s = p.obj(s, f"{where}[{i}]")
        cel = s.get("cel")
        if cel is None:
            out.append("")  # an unknown selector type: the allocator refuses it
            continue
        out.append(
            p.string(
                p.obj(cel, f"{where}[{i}].cel").get("expression"), f"{where}[{i}].cel.expression"
            )
        )
    return tuple(out)


def _request_spec(p: _Parser, raw: dict[str, Any], where: str, name: str) -> RequestSpec:
    mode = p.string(raw.get("allocationMode"), f"{where}.allocationMode") or (
        ALLOCATION_MODE_EXACT_COUNT
    )
    count = p.integer(raw.get("count"), f"{where}.count")
    if mode == ALLOCATION_MODE_EXACT_COUNT and raw.get("count") is None:
        count = 1  # API defaulting
    capacity = None
    if raw.get("capacity") is not None:
        reqs = p.obj(
            p.obj(raw.get("capacity"), f"{where}.capacity").get("requests"),
            f"{where}.capacity.requests",
        )
        capacity = {
            str(k): p.formatted(v, f"{where}.capacity.requests[{k}]") for k, v in reqs.items()
        }
    return RequestSpec(
        name=name,
        class_name=p.string(raw.get("deviceClassName"), f"{where}.deviceClassName"),
        selectors=_selectors(p, raw.get("selectors"), f"{where}.selectors"),
        mode=mode,
        count=count,
        admin_access=p.boolean(raw.get("adminAccess"), f"{where}.adminAccess"),
        tolerations=p.tolerations(raw.get("tolerations"), f"{where}.tolerations"),
        capacity=capacity,
        derived_attributes=len(p.lst(raw.get("derivedAttributes"), f"{where}.derivedAttributes")),
    )


def parse_claim_spec(p: _Parser, raw: Any, where: str) -> ClaimSpec:
    spec = p.obj(raw, where)
    devices = p.obj(spec.get("devices"), f"{where}.devices")
    requests = []
    base = f"{where}.devices.requests"
    for i, r in enumerate(p.lst(devices.get("requests"), base)):
        r = p.obj(r, f"{base}[{i}]")
        name = p.string(r.get("name"), f"{base}[{i}].name", required=True)
        exactly = None
        if r.get("exactly") is not None:
            exactly = _request_spec(
                p, p.obj(r["exactly"], f"{base}[{i}].exactly"), f"{base}[{i}].exactly", name
            )
        subs = []
        for j, s in enumerate(p.lst(r.get("firstAvailable"), f"{base}[{i}].firstAvailable")):
            w = f"{base}[{i}].firstAvailable[{j}]"
            s = p.obj(s, w)
            subs.append(_request_spec(p, s, w, p.string(s.get("name"), f"{w}.name", required=True)))
        requests.append(DeviceRequest(name=name, exactly=exactly, first_available=tuple(subs)))
    constraints = []
    cbase = f"{where}.devices.constraints"
    for i, c in enumerate(p.lst(devices.get("constraints"), cbase)):
        c = p.obj(c, f"{cbase}[{i}]")
        constraints.append(
            Constraint(
                requests=tuple(
                    p.string(r, f"{cbase}[{i}].requests[{j}]")
                    for j, r in enumerate(p.lst(c.get("requests"), f"{cbase}[{i}].requests"))
                ),
                match_attribute=p.string(c.get("matchAttribute"), f"{cbase}[{i}].matchAttribute")
                or None,
                distinct_attribute=p.string(
                    c.get("distinctAttribute"), f"{cbase}[{i}].distinctAttribute"
                )
                or None,
            )
        )
    config = tuple(
        p.obj(c, f"{where}.devices.config[{i}]")
        for i, c in enumerate(p.lst(devices.get("config"), f"{where}.devices.config"))
    )
    return ClaimSpec(tuple(requests), tuple(constraints), config)


def _allocation(p: _Parser, raw: Any) -> Allocation | None:
    if raw is None:
        return None
    a = p.obj(raw, "status.allocation")
    devices = p.obj(a.get("devices"), "status.allocation.devices")
    results = []
    base = "status.allocation.devices.results"
    for i, r in enumerate(p.lst(devices.get("results"), base)):
        r = p.obj(r, f"{base}[{i}]")
        results.append(
            DeviceResult(
                request=p.string(r.get("request"), f"{base}[{i}].request"),
                driver=p.string(r.get("driver"), f"{base}[{i}].driver", required=True),
                pool=p.string(r.get("pool"), f"{base}[{i}].pool", required=True),
                device=p.string(r.get("device"), f"{base}[{i}].device", required=True),
                admin_access=bool(p.boolean(r.get("adminAccess"), f"{base}[{i}].adminAccess")),
                share_id=p.string(r.get("shareID"), f"{base}[{i}].shareID") or None,
                consumed_capacity=None
                if r.get("consumedCapacity") is None
                else p.quantities(r.get("consumedCapacity"), f"{base}[{i}].consumedCapacity"),
                binding_conditions=tuple(
                    str(c)
                    for c in p.lst(r.get("bindingConditions"), f"{base}[{i}].bindingConditions")
                ),
                binding_failure_conditions=tuple(
                    str(c)
                    for c in p.lst(
                        r.get("bindingFailureConditions"), f"{base}[{i}].bindingFailureConditions"
                    )
                ),
            )
        )
    return Allocation(
        results=tuple(results),
        node_selector=p.node_selector(a.get("nodeSelector"), "status.allocation.nodeSelector"),
        raw=a,
    )


@reports_malformed("ResourceClaim")
def parse_resource_claim(raw: Any) -> ClaimInfo:
    meta, name = object_meta(raw, kind="ResourceClaim")
    namespace = str(meta.get("namespace") or "")
    p = _Parser("ResourceClaim", f"{namespace}/{name}" if namespace else name)
    status = p.obj(raw.get("status"), "status")
    reserved = []
    for i, r in enumerate(p.lst(status.get("reservedFor"), "status.reservedFor")):
        r = p.obj(r, f"status.reservedFor[{i}]")
        reserved.append(
            ConsumerRef(
                api_group=p.string(r.get("apiGroup"), f"status.reservedFor[{i}].apiGroup"),
                resource=p.string(r.get("resource"), f"status.reservedFor[{i}].resource"),
                name=p.string(r.get("name"), f"status.reservedFor[{i}].name"),
                uid=p.string(r.get("uid"), f"status.reservedFor[{i}].uid"),
            )
        )
    controller = None
    extended_for = None
    for ref in p.lst(meta.get("ownerReferences"), "metadata.ownerReferences"):
        if isinstance(ref, dict) and ref.get("controller") is True:
            controller = (
                str(ref.get("apiVersion") or ""),
                str(ref.get("kind") or ""),
                str(ref.get("uid") or ""),
            )
            break
    annotations = meta.get("annotations")
    if isinstance(annotations, dict) and annotations.get(EXTENDED_RESOURCE_CLAIM_ANNOTATION) == (
        "true"
    ):
        # upstream findExtendedResourceClaim: any controller reference naming the pod
        for ref in p.lst(meta.get("ownerReferences"), "metadata.ownerReferences"):
            if isinstance(ref, dict) and ref.get("controller") is True:
                extended_for = (str(ref.get("name") or ""), str(ref.get("uid") or ""))
                break
    return ClaimInfo(
        namespace=namespace,
        name=name,
        # A dump's claim without a UID gets one of its own, as the API server gives one on
        # create: allocations in flight and devices in use are counted per claim UID.
        uid=str(meta.get("uid") or f"ResourceClaim/{namespace}/{name}"),
        resource_version=str(meta.get("resourceVersion") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        spec=parse_claim_spec(p, raw.get("spec"), "spec"),
        allocation=_allocation(p, status.get("allocation")),
        reserved_for=tuple(reserved),
        controller=controller,
        finalizers=tuple(str(f) for f in p.lst(meta.get("finalizers"), "metadata.finalizers")),
        raw=raw,
        extended_for=extended_for,
    )


@reports_malformed("DeviceClass")
def parse_device_class(raw: Any) -> DeviceClassInfo:
    _, name = object_meta(raw, kind="DeviceClass")
    p = _Parser("DeviceClass", name)
    spec = p.obj(raw.get("spec"), "spec")
    return DeviceClassInfo(
        name=name,
        selectors=_selectors(p, spec.get("selectors"), "spec.selectors"),
        config=tuple(
            p.obj(c, f"spec.config[{i}]")
            for i, c in enumerate(p.lst(spec.get("config"), "spec.config"))
        ),
        extended_resource_name=p.string(
            spec.get("extendedResourceName"), "spec.extendedResourceName"
        ),
        created=str((raw.get("metadata") or {}).get("creationTimestamp") or ""),
    )


def is_dra_extended_resource(name: str) -> bool:
    """upstream schedutil.IsDRAExtendedResourceName: an extended resource name (a domain that
    is not kubernetes.io's, not `requests.`) or a class's implicit
    `deviceclass.resource.kubernetes.io/<class>` name."""
    if name.startswith(RESOURCE_DEVICE_CLASS_PREFIX):
        return True
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


@reports_malformed("ResourceClaimTemplate")
def parse_claim_template(raw: Any) -> TemplateInfo:
    meta, name = object_meta(raw, kind="ResourceClaimTemplate")
    namespace = str(meta.get("namespace") or "default")
    p = _Parser("ResourceClaimTemplate", f"{namespace}/{name}")
    spec = p.obj(raw.get("spec"), "spec")
    tmeta = p.obj(spec.get("metadata"), "spec.metadata")
    claim_spec = p.obj(spec.get("spec"), "spec.spec")
    parse_claim_spec(p, claim_spec, "spec.spec")  # validate the shape now, not per pod
    return TemplateInfo(
        namespace=namespace,
        name=name,
        spec=claim_spec,
        labels={
            str(k): str(v) for k, v in p.obj(tmeta.get("labels"), "spec.metadata.labels").items()
        },
        annotations={
            str(k): str(v)
            for k, v in p.obj(tmeta.get("annotations"), "spec.metadata.annotations").items()
        },
    )


@reports_malformed("DeviceTaintRule")
def parse_device_taint_rule(raw: Any) -> TaintRuleInfo:
    _, name = object_meta(raw, kind="DeviceTaintRule")
    p = _Parser("DeviceTaintRule", name)
    spec = p.obj(raw.get("spec"), "spec")
    selector = spec.get("deviceSelector")
    sel = p.obj(selector, "spec.deviceSelector")
    taint = p.obj(spec.get("taint"), "spec.taint")

    def optional(key: str) -> str | None:
        value = sel.get(key)
        return None if value is None else p.string(value, f"spec.deviceSelector.{key}")

    return TaintRuleInfo(
        name=name,
        driver=optional("driver"),
        pool=optional("pool"),
        device=optional("device"),
        selects=selector is not None,
        taint=DeviceTaint(
            key=p.string(taint.get("key"), "spec.taint.key", required=True),
            value=p.string(taint.get("value"), "spec.taint.value"),
            effect=p.string(taint.get("effect"), "spec.taint.effect"),
        ),
    )


def parse_pod_claims(
    spec: dict[str, Any], status: dict[str, Any], pod: str
) -> tuple[tuple[PodClaim, ...], tuple[tuple[str, str | None], ...]]:
    """A pod's spec.resourceClaims and status.resourceClaimStatuses (name, claim name or None)."""
    p = _Parser("Pod", pod)
    claims = []
    for i, c in enumerate(p.lst(spec.get("resourceClaims"), "spec.resourceClaims")):
        c = p.obj(c, f"spec.resourceClaims[{i}]")
        claims.append(
            PodClaim(
                name=p.string(c.get("name"), f"spec.resourceClaims[{i}].name", required=True),
                claim_name=p.string(
                    c.get("resourceClaimName"), f"spec.resourceClaims[{i}].resourceClaimName"
                )
                or None,
                template_name=p.string(
                    c.get("resourceClaimTemplateName"),
                    f"spec.resourceClaims[{i}].resourceClaimTemplateName",
                )
                or None,
            )
        )
    statuses = []
    for i, s in enumerate(
        p.lst(status.get("resourceClaimStatuses"), "status.resourceClaimStatuses")
    ):
        s = p.obj(s, f"status.resourceClaimStatuses[{i}]")
        statuses.append(
            (
                p.string(s.get("name"), f"status.resourceClaimStatuses[{i}].name"),
                p.string(
                    s.get("resourceClaimName"),
                    f"status.resourceClaimStatuses[{i}].resourceClaimName",
                )
                or None,
            )
        )
    return tuple(claims), tuple(statuses)
