"""upstream's validation of resource.k8s.io/v1 objects (pkg/apis/resource/validation and the
declarative rules of the v1 types), for the fields a scheduler and its users touch: DeviceClass
selectors and extendedResourceName, ResourceClaim (and template) requests, constraints and
tolerations, a claim's status (allocation results, reservedFor) on /status writes, ResourceSlice
driver, pool, node selection and devices, DeviceTaintRule selectors and taints.

Each function returns causes (reason, field path, message) worded as kube-apiserver's field
errors, so a 422 reads the same on both servers (tests/fidelity/test_resource.py holds them to
it). What is not checked is listed in docs/cluster.md.
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_CEILING
from typing import Any

from berth.dra.cel import MAX_EXPRESSION_LENGTH, compile_selector
from berth.objects.names import (
    DNS1123_LABEL_MESSAGE,
    DNS1123_SUBDOMAIN_MESSAGE,
    dns1123_subdomain_errors,
    qualified_name_errors,
)
from berth.objects.quantity import MAX_INT64, Quantity, parse_formatted_quantity

JSON = dict[str, Any]
Cause = tuple[str, str, str]

# k8s.io/api/resource/v1 limits
REQUESTS_MAX = 32
SELECTORS_MAX = 32
CONSTRAINTS_MAX = 32
CONFIG_MAX = 32
RESULTS_MAX = 32
FIRST_AVAILABLE_MAX = 8
RESERVED_FOR_MAX = 256
SLICE_DEVICES_MAX = 128
SLICE_DEVICES_ADVANCED_MAX = 64
ATTRIBUTES_AND_CAPACITIES_MAX = 32
ATTRIBUTE_VALUE_MAX = 64
REQUEST_POLICY_OPTIONS_MAX = 10  # CapacityRequestPolicyDiscreteMaxOptions
ID_MAX = 32
POOL_NAME_MAX = 253
TAINTS_MAX = 16
BINDING_CONDITIONS_MAX = 4
DNS1123_LABEL_MAX = 63
EFFECTS = ("NoExecute", "NoSchedule", "None")  # sorted, as sets.List prints them
MODES = ("All", "ExactCount")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
_C_IDENTIFIER = re.compile(f"^{_C_IDENTIFIER_FMT}$")
_LABEL_VALUE_FMT = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_LABEL_VALUE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$"
)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
C_IDENTIFIER_MESSAGE = (
    "a valid C identifier must start with alphabetic character or '_', followed by a string of "
    "alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for "
    f"validation is '{_C_IDENTIFIER_FMT}')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE_FMT}')"
)
REQUEST_REF_MESSAGE = (
    "must be the name of a request in the claim or the name of a request and a subrequest "
    "separated by '/'"
)


# ----- field errors, worded as apimachinery's -----------------------------------------------------


def _value(value: Any) -> str:
    """A bad value as field.Error prints it: strings quoted, numbers bare, others as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def invalid(path: str, value: Any, detail: str) -> Cause:
    return ("FieldValueInvalid", path, f"Invalid value: {_value(value)}: {detail}")


def required(path: str, detail: str = "") -> Cause:
    return ("FieldValueRequired", path, "Required value" + (f": {detail}" if detail else ""))


def forbidden(path: str, detail: str) -> Cause:
    return ("FieldValueForbidden", path, f"Forbidden: {detail}")


def not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    values = ", ".join(json.dumps(s) for s in supported)
    return (
        "FieldValueNotSupported",
        path,
        f"Unsupported value: {_value(value)}: supported values: {values}",
    )


def duplicate(path: str, value: Any) -> Cause:
    return ("FieldValueDuplicate", path, f"Duplicate value: {_value(value)}")


def too_many(path: str, count: int, limit: int) -> Cause:
    return ("FieldValueTooMany", path, f"Too many: {count}: must have at most {limit} items")


def too_long(path: str, limit: int) -> Cause:
    return ("FieldValueTooLong", path, f"Too long: may not be more than {limit} bytes")


def immutable(path: str, value: Any) -> Cause:
    return invalid(path, value, "field is immutable")


# ----- names --------------------------------------------------------------------------------------


def dns1123_label(path: str, value: Any) -> list[Cause]:
    value = value if isinstance(value, str) else ""
    out = []
    if len(value) > DNS1123_LABEL_MAX:
        out.append(invalid(path, value, f"must be no more than {DNS1123_LABEL_MAX} characters"))
    if not _DNS1123_LABEL.match(value):
        out.append(invalid(path, value, DNS1123_LABEL_MESSAGE))
    return out


def dns1123_subdomain(path: str, value: str) -> list[Cause]:
    return [invalid(path, value, e) for e in dns1123_subdomain_errors(value)]


def driver_name(path: str, value: Any) -> list[Cause]:
    """upstream ValidateCSIDriverName (a driver name is a CSI driver name)."""
    if not isinstance(value, str) or not value:
        return [required(path)]
    out = []
    if len(value) > 63:
        out.append(too_long(path, 63))
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value.lower()):
        out.append(invalid(path, value, DNS1123_SUBDOMAIN_MESSAGE))
    return out


def pool_name(path: str, value: Any) -> list[Cause]:
    if not isinstance(value, str) or not value:
        return [required(path)]
    out = []
    if len(value) > POOL_NAME_MAX:
        out.append(too_long(path, POOL_NAME_MAX))
    for part in value.split("/"):
        out += dns1123_subdomain(path, part)
    return out


def c_identifier(path: str, value: str) -> list[Cause]:
    out = []
    if len(value) > ID_MAX:
        out.append(too_long(path, ID_MAX))
    if not _C_IDENTIFIER.match(value):
        out.append(invalid(path, value, C_IDENTIFIER_MESSAGE))
    return out


def qualified_attribute_name(path: str, name: str) -> list[Cause]:
    """upstream validateQualifiedName: an optional driver-name domain, then a C identifier."""
    parts = name.split("/")
    if len(parts) == 1:
        return c_identifier(path, parts[0])
    out: list[Cause] = []
    domain, ident = parts[0], parts[1]
    out += [invalid(path, "", "the domain must not be empty")] if not domain else []
    out += driver_name(path, domain) if domain else []
    out += [invalid(path, "", "the name must not be empty")] if not ident else []
    out += c_identifier(path, ident) if ident else []
    return out


def fully_qualified_name(path: str, name: Any) -> list[Cause]:
    name = name if isinstance(name, str) else ""
    out = qualified_attribute_name(path, name)
    if "/" not in name:
        out.append(
            invalid(
                path,
                name,
                "a fully qualified name must be a domain and a name separated by a slash",
            )
        )
    return out


def label_key(path: str, key: Any) -> list[Cause]:
    """metav1validation.ValidateLabelName."""
    key = key if isinstance(key, str) else ""
    return [invalid(path, key, e) for e in qualified_name_errors(key)]


def label_value(path: str, value: Any) -> list[Cause]:
    value = value if isinstance(value, str) else ""
    out = []
    if len(value) > 63:
        out.append(invalid(path, value, "must be no more than 63 characters"))
    if not _LABEL_VALUE.match(value):
        out.append(invalid(path, value, LABEL_VALUE_MESSAGE))
    return out


# ----- shared pieces ------------------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def cel_expression(path: str, expression: Any) -> list[Cause]:
    expression = expression if isinstance(expression, str) else ""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        return [too_long(path, MAX_EXPRESSION_LENGTH)]
    error = compile_selector(expression).error
    return [invalid(path, expression, error)] if error else []


def selectors(path: str, value: Any) -> list[Cause]:
    items = _items(value)
    if len(items) > SELECTORS_MAX:
        return [too_many(path, len(items), SELECTORS_MAX)]
    out: list[Cause] = []
    for i, s in enumerate(items):
        cel = _dict(s).get("cel")
        if not isinstance(cel, dict):
            out.append(required(f"{path}[{i}].cel"))
        else:
            out += cel_expression(f"{path}[{i}].cel.expression", cel.get("expression"))
    return out


def toleration(path: str, t: JSON) -> list[Cause]:
    """upstream validateDeviceToleration."""
    out: list[Cause] = []
    if t.get("key"):
        out += label_key(f"{path}.key", t["key"])
    op, value = t.get("operator") or "", t.get("value") or ""
    if op == "Exists":
        if value:
            out.append(invalid(f"{path}.value", value, "must be empty for operator `Exists`"))
    elif op == "Equal":
        out += label_value(f"{path}.value", value)
    elif not op:
        out.append(required(f"{path}.operator"))
    else:
        out.append(not_supported(f"{path}.operator", op, ("Equal", "Exists")))
    effect = t.get("effect") or ""
    if effect and effect not in EFFECTS:
        out.append(not_supported(f"{path}.effect", effect, EFFECTS))
    return out


def taint(path: str, t: JSON, old: JSON | None = None) -> list[Cause]:
    """upstream validateDeviceTaint."""
    out = label_key(f"{path}.key", t.get("key"))
    if t.get("value"):
        out += label_value(f"{path}.value", t["value"])
    effect = t.get("effect") or ""
    if old is None or old.get("effect") != effect:
        if not effect:
            out.append(required(f"{path}.effect"))
        elif effect not in EFFECTS:
            out.append(not_supported(f"{path}.effect", effect, EFFECTS))
    return out


def binding_conditions(path: str, raw: JSON) -> list[Cause]:
    """upstream validateDeviceBindingParameters."""
    conditions = [str(c) for c in _items(raw.get("bindingConditions"))]
    failures = [str(c) for c in _items(raw.get("bindingFailureConditions"))]
    out: list[Cause] = []
    for key, values in (("bindingConditions", conditions), ("bindingFailureConditions", failures)):
        if len(values) > BINDING_CONDITIONS_MAX:
            out.append(too_many(f"{path}.{key}", len(values), BINDING_CONDITIONS_MAX))
            continue
        for i, c in enumerate(values):
            out += label_key(f"{path}.{key}[{i}]", c)
            if c in values[:i]:
                out.append(duplicate(f"{path}.{key}[{i}]", c))
    for i, c in enumerate(failures):
        if c in conditions:
            out.append(
                invalid(
                    f"{path}.bindingFailureConditions[{i}]",
                    c,
                    "bindingFailureConditions must not overlap with bindingConditions",
                )
            )
    if not conditions and failures:
        out.append(
            invalid(
                f"{path}.bindingConditions",
                conditions,
                "bindingConditions are required to use bindingFailureConditions",
            )
        )
    if not failures and conditions:
        out.append(
            invalid(
                f"{path}.bindingFailureConditions",
                failures,
                "bindingFailureConditions are required to use bindingConditions",
            )
        )
    return out


def opaque_config(path: str, config: JSON) -> list[Cause]:
    opaque = config.get("opaque")
    if not isinstance(opaque, dict):
        return [required(f"{path}.opaque")]
    out = driver_name(f"{path}.opaque.driver", opaque.get("driver"))
    if opaque.get("parameters") is None:
        out.append(required(f"{path}.opaque.parameters"))
    return out


# ----- DeviceClass --------------------------------------------------------------------------------


def device_class(obj: JSON, old: JSON | None = None) -> list[Cause]:
    spec, old_spec = _dict(obj.get("spec")), _dict((old or {}).get("spec"))
    out: list[Cause] = []
    # unchanged selectors were valid when stored (upstream skips compiling them again)
    if old is None or spec.get("selectors") != old_spec.get("selectors"):
        out += selectors("spec.selectors", spec.get("selectors"))
    configs = _items(spec.get("config"))
    if len(configs) > CONFIG_MAX:
        out.append(too_many("spec.config", len(configs), CONFIG_MAX))
    else:
        for i, c in enumerate(configs):
            out += opaque_config(f"spec.config[{i}]", _dict(c))
    name = spec.get("extendedResourceName")
    if name is not None:
        out += extended_resource_name("spec.extendedResourceName", str(name))
    return out


def extended_resource_name(path: str, name: str) -> list[Cause]:
    """apimachinery validate.ExtendedResourceName (declarative validation of the v1 types)."""
    out: list[Cause] = []
    if "/" not in name:
        out.append(
            invalid(
                path, name, "a name must be a domain-prefixed path, such as 'example.com/my-prop'"
            )
        )
    elif "kubernetes.io/" in name:
        out.append(invalid(path, name, 'must not have "kubernetes.io/" domain'))
    if name.startswith("requests."):
        out.append(invalid(path, name, 'must not have "requests." prefix'))
    out += [invalid(path, name, e) for e in qualified_name_errors(f"requests.{name}")]
    return out


# ----- ResourceClaim and its template -------------------------------------------------------------


def request_names(devices: JSON) -> dict[str, set[str] | None]:
    """upstream gatherRequestNames: request -> subrequest names (None without firstAvailable)."""
    out: dict[str, set[str] | None] = {}
    for r in _items(devices.get("requests")):
        r = _dict(r)
        subs = _items(r.get("firstAvailable"))
        out[str(r.get("name") or "")] = {str(_dict(s).get("name") or "") for s in subs} or None
    return out


def _request_ref(path: str, name: Any, names: dict[str, set[str] | None]) -> list[Cause]:
    name = name if isinstance(name, str) else ""
    segments = name.split("/")
    if len(segments) > 2:
        return [invalid(path, name, REQUEST_REF_MESSAGE)]
    out: list[Cause] = []
    for s in segments:
        out += dns1123_label(path, s)
    subs = names.get(segments[0], set())
    known = segments[0] in names and (len(segments) == 1 or segments[1] in (subs or set()))
    if not known:
        out.append(invalid(path, name, REQUEST_REF_MESSAGE))
    return out


def _refs(path: str, value: Any, names: dict[str, set[str] | None]) -> list[Cause]:
    items = _items(value)
    if len(items) > REQUESTS_MAX:
        return [too_many(path, len(items), REQUESTS_MAX)]
    out: list[Cause] = []
    for i, name in enumerate(items):
        out += _request_ref(f"{path}[{i}]", name, names)
        if name in items[:i]:
            out.append(duplicate(f"{path}[{i}]", name))
    return out


def _allocation_mode(path: str, raw: JSON) -> list[Cause]:
    mode, count = raw.get("allocationMode") or "", raw.get("count") or 0
    if mode == "All":
        if count != 0:
            return [
                invalid(
                    f"{path}.count", count, "must not be specified when allocationMode is 'All'"
                )
            ]
    elif mode == "ExactCount":
        if not isinstance(count, int) or count <= 0:
            return [invalid(f"{path}.count", count, "must be greater than zero")]
    else:
        return [not_supported(f"{path}.allocationMode", mode, MODES)]
    return []


def _exact(path: str, raw: JSON) -> list[Cause]:
    out: list[Cause] = []
    cls = raw.get("deviceClassName") or ""
    if not cls:
        out.append(required(f"{path}.deviceClassName"))
    else:
        out += dns1123_subdomain(f"{path}.deviceClassName", str(cls))
    out += selectors(f"{path}.selectors", raw.get("selectors"))
    out += _allocation_mode(path, raw)
    for i, t in enumerate(_items(raw.get("tolerations"))):
        out += toleration(f"{path}.tolerations[{i}]", _dict(t))
    return out


def _request(path: str, r: JSON) -> list[Cause]:
    out = dns1123_label(f"{path}.name", r.get("name"))
    subs = _items(r.get("firstAvailable"))
    exactly = r.get("exactly")
    if not subs and exactly is None:
        return [*out, required(path, "exactly one of `exactly` or `firstAvailable` is required")]
    if subs and exactly is not None:
        return [
            *out,
            invalid(
                path,
                None,
                "exactly one of `exactly` or `firstAvailable` is required, but multiple fields "
                "are set",
            ),
        ]
    if exactly is not None:
        return out + _exact(f"{path}.exactly", _dict(exactly))
    if len(subs) > FIRST_AVAILABLE_MAX:
        return [*out, too_many(f"{path}.firstAvailable", len(subs), FIRST_AVAILABLE_MAX)]
    seen: set[str] = set()
    for j, s in enumerate(subs):
        s = _dict(s)
        where = f"{path}.firstAvailable[{j}]"
        out += dns1123_label(f"{where}.name", s.get("name"))
        out += _exact(where, s)
        if s.get("name") in seen:
            out.append(duplicate(where, s))
        seen.add(str(s.get("name")))
    return out


def claim_spec(path: str, spec: Any) -> list[Cause]:
    """upstream validateResourceClaimSpec (validateDeviceClaim)."""
    devices = _dict(_dict(spec).get("devices"))
    names = request_names(devices)
    out: list[Cause] = []
    reqs = _items(devices.get("requests"))
    base = f"{path}.devices"
    if len(reqs) > REQUESTS_MAX:
        out.append(too_many(f"{base}.requests", len(reqs), REQUESTS_MAX))
    else:
        seen: set[str] = set()
        for i, r in enumerate(reqs):
            r = _dict(r)
            out += _request(f"{base}.requests[{i}]", r)
            if r.get("name") in seen:
                out.append(duplicate(f"{base}.requests[{i}]", r))
            seen.add(str(r.get("name")))
    constraints = _items(devices.get("constraints"))
    if len(constraints) > CONSTRAINTS_MAX:
        out.append(too_many(f"{base}.constraints", len(constraints), CONSTRAINTS_MAX))
    else:
        for i, c in enumerate(constraints):
            c, where = _dict(c), f"{base}.constraints[{i}]"
            out += _refs(f"{where}.requests", c.get("requests"), names)
            if c.get("matchAttribute") is not None:
                out += fully_qualified_name(f"{where}.matchAttribute", c["matchAttribute"])
            elif c.get("distinctAttribute") is not None:
                out += fully_qualified_name(f"{where}.distinctAttribute", c["distinctAttribute"])
            else:
                out.append(
                    required(
                        where,
                        'exactly one of "matchAttribute" or "distinctAttribute" is required, but '
                        "multiple fields are set",
                    )
                )
    configs = _items(devices.get("config"))
    if len(configs) > CONFIG_MAX:
        out.append(too_many(f"{base}.config", len(configs), CONFIG_MAX))
    else:
        for i, c in enumerate(configs):
            c, where = _dict(c), f"{base}.config[{i}]"
            out += _refs(f"{where}.requests", c.get("requests"), names)
            out += opaque_config(where, c)
    return out


def claim_status(new: JSON, old: JSON) -> list[Cause]:
    """upstream validateResourceClaimStatusUpdate."""
    status, old_status = _dict(new.get("status")), _dict(old.get("status"))
    names = request_names(_dict(_dict(new.get("spec")).get("devices")))
    out: list[Cause] = []
    reserved = _items(status.get("reservedFor"))
    if len(reserved) > RESERVED_FOR_MAX:
        out.append(too_many("status.reservedFor", len(reserved), RESERVED_FOR_MAX))
    else:
        uids: set[str] = set()
        for i, ref in enumerate(reserved):
            ref, where = _dict(ref), f"status.reservedFor[{i}]"
            for key in ("resource", "name", "uid"):
                if not ref.get(key):
                    out.append(required(f"{where}.{key}"))
            if ref.get("uid") in uids:
                out.append(duplicate(where, _consumer(ref)))
            uids.add(str(ref.get("uid")))
    allocation = status.get("allocation")
    if reserved:
        if allocation is None:
            out.append(
                forbidden("status.reservedFor", "may not be specified when `allocated` is not set")
            )
        elif _dict(new.get("metadata")).get("deletionTimestamp"):
            before = {json.dumps(r, sort_keys=True) for r in _items(old_status.get("reservedFor"))}
            if any(json.dumps(r, sort_keys=True) not in before for r in reserved):
                out.append(
                    forbidden(
                        "status.reservedFor",
                        "new entries may not be added while `deallocationRequested` or "
                        "`deletionTimestamp` are set",
                    )
                )
    old_allocation = old_status.get("allocation")
    if old_allocation is not None and allocation is not None:
        if allocation != old_allocation:
            out.append(invalid("status.allocation", None, "field cannot be modified once set"))
    elif allocation is not None:
        out += _allocation("status.allocation", _dict(allocation), names)
    return out


def _consumer(ref: JSON) -> JSON:
    """A consumer reference in the Go type's field order (as upstream prints a duplicate)."""
    return {k: ref[k] for k in ("apiGroup", "resource", "name", "uid") if ref.get(k)}


def _allocation(path: str, allocation: JSON, names: dict[str, set[str] | None]) -> list[Cause]:
    devices = _dict(allocation.get("devices"))
    results = _items(devices.get("results"))
    out: list[Cause] = []
    if len(results) > RESULTS_MAX:
        return [too_many(f"{path}.devices.results", len(results), RESULTS_MAX)]
    for i, r in enumerate(results):
        r, where = _dict(r), f"{path}.devices.results[{i}]"
        out += _request_ref(f"{where}.request", r.get("request"), names)
        out += driver_name(f"{where}.driver", r.get("driver"))
        out += pool_name(f"{where}.pool", r.get("pool"))
        out += dns1123_label(f"{where}.device", r.get("device"))
        out += binding_conditions(where, r)
        for j, t in enumerate(_items(r.get("tolerations"))):
            out += toleration(f"{where}.tolerations[{j}]", _dict(t))
        share = r.get("shareID")
        if share is not None and not _UUID.match(str(share)):
            out.append(
                # the declarative rule's wording (k8s:format=k8s-uuid), which 1.37 reports
                invalid(f"{where}.shareID", share, "must be a lowercase UUID in 8-4-4-4-12 format")
            )
    configs = _items(devices.get("config"))
    if len(configs) > 2 * CONFIG_MAX:
        out.append(too_many(f"{path}.devices.config", len(configs), 2 * CONFIG_MAX))
    else:
        for i, c in enumerate(configs):
            c, where = _dict(c), f"{path}.devices.config[{i}]"
            source = c.get("source") or ""
            if not source:
                out.append(required(f"{where}.source"))
            elif source not in ("FromClaim", "FromClass"):
                out.append(not_supported(f"{where}.source", source, ("FromClaim", "FromClass")))
            out += _refs(f"{where}.requests", c.get("requests"), names)
            out += opaque_config(where, c)
    return out


def claim_template(obj: JSON) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    meta = _dict(spec.get("metadata"))
    out: list[Cause] = []
    for k in _dict(meta.get("labels")):
        out += label_key("spec.metadata.labels", k)
    return out + claim_spec("spec.spec", spec.get("spec"))


# ----- ResourceSlice ------------------------------------------------------------------------------


def _node_name(path: str, name: str) -> list[Cause]:
    return [invalid(path, name, e) for e in dns1123_subdomain_errors(name)]


def _attribute(path: str, a: JSON) -> list[Cause]:
    """upstream validateDeviceAttribute."""
    out: list[Cause] = []
    fields = [
        k
        for k in ("bool", "int", "string", "version", "bools", "ints", "strings", "versions")
        if a.get(k) is not None
    ]
    if not fields:
        return [
            invalid(
                path,
                "",
                "must specify one of: `int`, `bool`, `string`, `version`, `ints`, `bools`, "
                "`strings`, `versions`",
            )
        ]
    if len(fields) > 1:
        return [invalid(path, a, "exactly one value must be specified")]
    kind = fields[0]
    value = a[kind]
    if kind == "string" and len(str(value)) > ATTRIBUTE_VALUE_MAX:
        out.append(too_long(f"{path}.string", ATTRIBUTE_VALUE_MAX))
    if kind == "version":
        if not _SEMVER.match(str(value)):
            out.append(
                invalid(
                    f"{path}.version",
                    value,
                    "must be a string compatible with semver.org spec 2.0.0",
                )
            )
        if len(str(value)) > ATTRIBUTE_VALUE_MAX:
            out.append(too_long(f"{path}.version", ATTRIBUTE_VALUE_MAX))
    if kind.endswith("s") and isinstance(value, list) and not value:
        out.append(invalid(f"{path}.{kind}", value, "must not be empty if specified"))
    return out


def _device(path: str, d: JSON, old: JSON | None, per_device: bool) -> list[Cause]:
    out = dns1123_label(f"{path}.name", d.get("name"))
    attributes, capacity = _dict(d.get("attributes")), _dict(d.get("capacity"))
    if len(attributes) + len(capacity) > ATTRIBUTES_AND_CAPACITIES_MAX:
        out.append(
            invalid(
                path,
                len(attributes) + len(capacity),
                "the total number of attributes and capacities must not exceed "
                f"{ATTRIBUTES_AND_CAPACITIES_MAX}",
            )
        )
    for name, a in attributes.items():
        out += qualified_attribute_name(f"{path}.attributes", str(name))
        out += _attribute(f"{path}.attributes[{name}]", _dict(a))
    multi = d.get("allowMultipleAllocations") is True
    if old is None or capacity != _dict(old.get("capacity")):
        for name, c in capacity.items():
            out += qualified_attribute_name(f"{path}.capacity", str(name))
            c = _dict(c)
            policy = c.get("requestPolicy")
            if policy is None:
                continue
            where = f"{path}.capacity[{name}].requestPolicy"
            if not multi:
                out.append(forbidden(where, "allowMultipleAllocations must be true"))
            else:
                out += request_policy(where, c.get("value"), _dict(policy))
    taints = _items(d.get("taints"))
    if old is None or taints != _items(old.get("taints")):
        if len(taints) > TAINTS_MAX:
            out.append(too_many(f"{path}.taints", len(taints), TAINTS_MAX))
        else:
            for i, t in enumerate(taints):
                out += taint(f"{path}.taints[{i}]", _dict(t))
    sets = [f"`{k}`" for k in ("nodeName", "nodeSelector", "allNodes") if d.get(k) is not None]
    if per_device:
        if d.get("nodeName") == "":
            out.append(invalid(f"{path}.nodeName", "", "must not be empty"))
        elif d.get("nodeName"):
            out += _node_name(f"{path}.nodeName", str(d["nodeName"]))
        if d.get("allNodes") is False:
            out.append(invalid(f"{path}.allNodes", False, "must be either unset or set to true"))
        detail = (
            "exactly one of `nodeName`, `nodeSelector`, or `allNodes` is required when "
            "`perDeviceNodeSelection` is set to true in the ResourceSlice spec"
        )
        if not sets:
            out.append(required(path, detail))
        elif len(sets) > 1:
            out.append(invalid(path, "{" + ", ".join(sets) + "}", detail))
    elif sets:
        out.append(
            invalid(
                path,
                None,
                "`nodeName`, `nodeSelector` and `allNodes` can only be set if "
                "`perDeviceNodeSelection` is set to true in the ResourceSlice spec",
            )
        )
    out += binding_conditions(path, d)
    return out


def _qty(raw: Any) -> Quantity | None:
    try:
        return parse_formatted_quantity(raw)
    except ValueError:
        return None  # the decoding refuses it


def _int_key(q: Quantity) -> str:
    """upstream quantityKeyInt (DRAFractionalCapacityRange off): Quantity.Value, rounded up."""
    return str(int(q.value.to_integral_value(rounding=ROUND_CEILING)))


def request_policy(path: str, raw_value: Any, policy: JSON) -> list[Cause]:
    """upstream validateRequestPolicy, with DRAFractionalCapacityRange off as 1.37's
    kube-apiserver runs by default (it needs --min-compatibility-version=1.37): valid values
    are told apart and steps counted in whole units."""
    values = _items(policy.get("validValues"))
    valid_range = policy.get("validRange")
    if values and valid_range is not None:
        return [
            forbidden(
                path,
                'exactly one policy can be specified, cannot specify "validValues" and '
                '"validRange" at the same time',
            )
        ]
    capacity = _qty(raw_value)
    default = _qty(policy["default"]) if policy.get("default") is not None else None
    if values:
        if policy.get("default") is None:
            return [required(f"{path}.default", "required when validValues is defined")]
        return _valid_values(f"{path}.validValues", default, capacity, values)
    if valid_range is not None:
        if policy.get("default") is None:
            return [required(f"{path}.default", "required when validRange is defined")]
        return _valid_range(f"{path}.validRange", default, capacity, _dict(valid_range))
    return []


def _valid_values(
    path: str, default: Quantity | None, capacity: Quantity | None, raw: list[Any]
) -> list[Cause]:
    """upstream validateRequestPolicyValidValues."""
    values = [_qty(v) for v in raw]
    if default is None or capacity is None or any(v is None for v in values):
        return []
    options = [v for v in values if v is not None]
    out: list[Cause] = []
    for i in range(len(options) - 1):
        if options[i].value > options[i + 1].value:
            out.append(
                invalid(
                    f"{path}[{i + 1}]",
                    str(options[i + 1]),
                    "values must be sorted in ascending order",
                )
            )
    not_valid = invalid(
        path, str(default), "default value is not valid according to the requestPolicy"
    )
    if len(options) > REQUEST_POLICY_OPTIONS_MAX:
        # upstream's set check stops at the size, before it finds the default among the options
        return [*out, too_many(path, len(options), REQUEST_POLICY_OPTIONS_MAX), not_valid]
    for i, option in enumerate(options):
        if option.value > capacity.value:
            out.append(
                invalid(
                    f"{path}[{i}]",
                    str(option),
                    f"option is larger than capacity value: {capacity}",
                )
            )
    seen: set[str] = set()
    for i, option in enumerate(options):
        key = _int_key(option)
        if key in seen:
            out.append(duplicate(f"{path}[{i}]", key))
        seen.add(key)
    if not any(option.value == default.value for option in options):
        out.append(not_valid)
    return out


def _valid_range(
    path: str, default: Quantity | None, capacity: Quantity | None, rng: JSON
) -> list[Cause]:
    """upstream validateRequestPolicyRange."""
    if rng.get("min") is None:
        return [required(f"{path}.min", "required when validRange is defined")]
    low, high = _qty(rng.get("min")), _qty(rng["max"]) if rng.get("max") is not None else None
    step = _qty(rng["step"]) if rng.get("step") is not None else None
    if default is None or capacity is None or low is None:
        return []
    out: list[Cause] = []
    if low.value > capacity.value:
        out.append(
            invalid(f"{path}.min", str(low), f"min is larger than capacity value: {capacity}")
        )
    if default.value < low.value:
        out.append(invalid(f"{path}.default", str(default), f"default is less than min: {low}"))
    if high is not None:
        if low.value > high.value:
            out.append(invalid(f"{path}.max", str(low), f"min is larger than max: {high}"))
        if high.value > capacity.value:
            out.append(
                invalid(f"{path}.max", str(high), f"max is larger than capacity value: {capacity}")
            )
        if default.value > high.value:
            out.append(
                invalid(f"{path}.default", str(default), f"default is more than max: {high}")
            )
    if step is None:
        return out
    if step.value <= 0:
        return [*out, invalid(f"{path}.step", str(step), "must be greater than zero")]
    added = Quantity(low.value + step.value, low.format if low.value else step.format)
    if added.value > capacity.value:
        out.append(
            invalid(
                f"{path}.step",
                str(step),
                f"one step {added} is larger than capacity value: {capacity}",
            )
        )
    # whole units (Quantity.Value) only hold in [0, MaxInt64]; upstream's fractional ranges
    # (milli-values) are off by default in 1.37
    unsafe = []
    for name, q in (("default", default), ("min", low), ("max", high), ("step", step)):
        if q is None:
            continue
        if q.value < 0:
            unsafe.append(invalid(f"{path}.{name}", str(q), "must be greater than or equal to 0"))
        elif q.value > MAX_INT64:
            unsafe.append(
                invalid(f"{path}.{name}", str(q), "must not be larger than 9223372036854775807")
            )
    if unsafe:
        return out + unsafe

    def units(q: Quantity) -> int:
        return int(q.value.to_integral_value(rounding=ROUND_CEILING))

    for value in (default, high):
        if value is None:
            continue
        if (units(value) - units(low)) % units(step) != 0:
            out.append(
                invalid(
                    f"{path}.step",
                    str(value),
                    f"value is not a multiple of a given step ({step}) from ({low})",
                )
            )
    return out


def resource_slice(obj: JSON, old: JSON | None = None) -> list[Cause]:
    """upstream validateResourceSliceSpec."""
    spec, old_spec = _dict(obj.get("spec")), _dict((old or {}).get("spec"))
    pool = _dict(spec.get("pool"))
    out = driver_name("spec.driver", spec.get("driver"))
    out += pool_name("spec.pool.name", pool.get("name"))
    count, generation = pool.get("resourceSliceCount") or 0, pool.get("generation") or 0
    if not isinstance(count, int) or count <= 0:
        out.append(invalid("spec.pool.resourceSliceCount", count, "must be greater than zero"))
    if not isinstance(generation, int) or generation < 0:
        out.append(
            invalid("spec.pool.generation", generation, "must be greater than or equal to zero")
        )
    if old is not None:
        old_pool = _dict(old_spec.get("pool"))
        for path, now, before in (
            ("spec.pool.name", pool.get("name"), old_pool.get("name")),
            ("spec.driver", spec.get("driver"), old_spec.get("driver")),
            ("spec.nodeName", spec.get("nodeName"), old_spec.get("nodeName")),
        ):
            if now != before:
                out.append(immutable(path, now))
    sets: list[str] = []
    node = spec.get("nodeName")
    if node is not None:
        if node:
            sets.append("`nodeName`")
            out += _node_name("spec.nodeName", str(node))
        else:
            out.append(
                invalid("spec.nodeName", "", "must be either unset or set to a non-empty string")
            )
    selector = spec.get("nodeSelector")
    if selector is not None:
        sets.append("`nodeSelector`")
        terms = _items(_dict(selector).get("nodeSelectorTerms"))
        if len(terms) != 1:
            out.append(
                invalid(
                    "spec.nodeSelector.nodeSelectorTerms",
                    terms,
                    "must have exactly one node selector term",
                )
            )
    for key in ("allNodes", "perDeviceNodeSelection"):
        value = spec.get(key)
        if value is True:
            sets.append(f"`{key}`")
        elif value is not None:
            out.append(invalid(f"spec.{key}", value, "must be either unset or set to true"))
    choices = (
        "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is "
        "required"
    )
    if not sets:
        out.append(required("spec", choices))
    elif len(sets) > 1:
        out.append(
            invalid("spec", "{" + ", ".join(sets) + "}", f"{choices}, but multiple fields are set")
        )
    devices = spec.get("devices")
    if spec.get("sharedCounters") is not None and devices is not None:
        out.append(invalid("spec", "", "only one of `sharedCounters` or `devices` is allowed"))
    items = _items(devices)
    advanced = any(_dict(d).get("taints") or _dict(d).get("consumesCounters") for d in items)
    limit = SLICE_DEVICES_ADVANCED_MAX if advanced else SLICE_DEVICES_MAX
    if len(items) > limit:
        out.append(too_many("spec.devices", len(items), limit))
        return out
    old_devices = {str(_dict(d).get("name")): _dict(d) for d in _items(old_spec.get("devices"))}
    per_device = spec.get("perDeviceNodeSelection") is True
    seen: set[str] = set()
    for i, d in enumerate(items):
        d = _dict(d)
        name = str(d.get("name") or "")
        out += _device(f"spec.devices[{i}]", d, old_devices.get(name), per_device)
        if name in seen:
            out.append(duplicate(f"spec.devices[{i}]", name))
        seen.add(name)
    return out


# ----- DeviceTaintRule ----------------------------------------------------------------------------


def device_taint_rule(obj: JSON, old: JSON | None = None) -> list[Cause]:
    spec = _dict(obj.get("spec"))
    out: list[Cause] = []
    selector = spec.get("deviceSelector")
    if isinstance(selector, dict):
        if selector.get("driver") is not None:
            out += driver_name("spec.deviceSelector.driver", selector["driver"])
        if selector.get("pool") is not None:
            out += pool_name("spec.deviceSelector.pool", selector["pool"])
        if selector.get("device") is not None:
            out += dns1123_label("spec.deviceSelector.device", selector["device"])
    old_taint = _dict(_dict((old or {}).get("spec")).get("taint")) if old is not None else None
    return out + taint("spec.taint", _dict(spec.get("taint")), old_taint)
