"""resource.k8s.io/v1 (Dynamic Resource Allocation) through the API, the same on both servers:
discovery, defaults, upstream's validation of classes, slices, claims, templates and taint
rules (422 with kube-apiserver's causes, word for word), the immutable parts, and a claim's
/status rules (an allocation set once, reservedFor only with an allocation, no duplicates)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.fidelity.conftest import Api, differs

G = "/apis/resource.k8s.io/v1"
CLAIMS = f"{G}/namespaces/default/resourceclaims"
POOL = {"name": "node-1", "generation": 0, "resourceSliceCount": 1}
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
REQUEST_REF = (
    "must be the name of a request in the claim or the name of a request and a subrequest "
    "separated by '/'"
)
EFFECTS = 'supported values: "NoExecute", "NoSchedule", "None"'


def device_class(name: str = "gpu.example.com", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": spec,
    }


def claim(*requests: dict[str, Any], name: str = "c", **devices: Any) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": {"devices": {"requests": list(requests), **devices}},
    }


def exactly(name: str = "gpu", **fields: Any) -> dict[str, Any]:
    return {"name": name, "exactly": {"deviceClassName": "gpu.example.com", **fields}}


def resource_slice(name: str = "s", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": spec,
    }


def node_slice(name: str = "s", **spec: Any) -> dict[str, Any]:
    return resource_slice(name, driver="gpu.example.com", nodeName="node-1", pool=POOL, **spec)


POLICY = "spec.devices[0].capacity[mem].requestPolicy"
ADMIN = (
    "admin access to devices requires the `resource.kubernetes.io/admin-access: true` label on "
    "the containing namespace"
)


def shared_device(value: str = "4", **capacity: Any) -> dict[str, Any]:
    """A device that allows multiple allocations (consumable capacity), capacity `mem`."""
    return {
        "name": "a",
        "allowMultipleAllocations": True,
        "capacity": {"mem": {"value": value, **capacity}},
    }


INVALID = [
    pytest.param(
        f"{G}/deviceclasses",
        device_class(selectors=[{"cel": {"expression": "device.driver =="}}]),
        [
            (
                "FieldValueInvalid",
                "spec.selectors[0].cel.expression",
                'Invalid value: "device.driver ==": compilation failed: ERROR: <input>:1:17: '
                "Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', "
                "'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, "
                "IDENTIFIER}\n | device.driver ==\n | ................^",
            )
        ],
        id="a class selector that does not compile",
    ),
    pytest.param(
        f"{G}/deviceclasses",
        device_class(selectors=[{}]),
        [("FieldValueRequired", "spec.selectors[0].cel", "Required value")],
        id="a class selector without cel",
    ),
    pytest.param(
        f"{G}/deviceclasses",
        device_class(extendedResourceName="cpu"),
        [
            (
                "FieldValueInvalid",
                "spec.extendedResourceName",
                'Invalid value: "cpu": a name must be a domain-prefixed path, such as '
                "'example.com/my-prop'",
            )
        ],
        id="an extendedResourceName without a domain",
    ),
    pytest.param(
        f"{G}/deviceclasses",
        device_class("Bad_Name"),
        [("FieldValueInvalid", "metadata.name", f'Invalid value: "Bad_Name": {SUBDOMAIN}')],
        id="a class name that is not a subdomain",
    ),
    pytest.param(
        CLAIMS,
        claim({"name": "gpu"}),
        [
            (
                "FieldValueRequired",
                "spec.devices.requests[0]",
                "Required value: exactly one of `exactly` or `firstAvailable` is required",
            )
        ],
        id="a request of no type",
    ),
    pytest.param(
        CLAIMS,
        claim({**exactly(), "firstAvailable": [{"name": "a", "deviceClassName": "x"}]}),
        [
            (
                "FieldValueInvalid",
                "spec.devices.requests[0]",
                "Invalid value: null: exactly one of `exactly` or `firstAvailable` is required, "
                "but multiple fields are set",
            )
        ],
        id="a request of both types",
    ),
    pytest.param(
        CLAIMS,
        claim(exactly("GPU")),
        [("FieldValueInvalid", "spec.devices.requests[0].name", f'Invalid value: "GPU": {LABEL}')],
        id="a request name that is not a label",
    ),
    pytest.param(
        CLAIMS,
        claim(exactly("g"), exactly("g")),
        [
            (
                "FieldValueDuplicate",
                "spec.devices.requests[1]",
                'Duplicate value: {"name":"g","exactly":{"deviceClassName":"gpu.example.com",'
                '"allocationMode":"ExactCount","count":1}}',
            )
        ],
        id="two requests of one name",
    ),
    pytest.param(
        CLAIMS,
        claim({"name": "g", "exactly": {}}),
        [
            (
                "FieldValueRequired",
                "spec.devices.requests[0].exactly.deviceClassName",
                "Required value",
            )
        ],
        id="a request without a class",
    ),
    pytest.param(
        CLAIMS,
        claim(exactly(allocationMode="Some")),
        [
            (
                "FieldValueNotSupported",
                "spec.devices.requests[0].exactly.allocationMode",
                'Unsupported value: "Some": supported values: "All", "ExactCount"',
            )
        ],
        id="an unknown allocation mode",
    ),
    pytest.param(
        CLAIMS,
        claim(exactly(allocationMode="All", count=2)),
        [
            (
                "FieldValueInvalid",
                "spec.devices.requests[0].exactly.count",
                "Invalid value: 2: must not be specified when allocationMode is 'All'",
            )
        ],
        id="a count with allocationMode All",
    ),
    pytest.param(
        CLAIMS,
        claim(exactly(count=-1)),
        [
            (
                "FieldValueInvalid",
                "spec.devices.requests[0].exactly.count",
                "Invalid value: -1: must be greater than zero",
            )
        ],
        id="a negative count",
    ),
    pytest.param(
        CLAIMS,
        claim(exactly("g"), constraints=[{"requests": ["h"], "matchAttribute": "model"}]),
        [
            (
                "FieldValueInvalid",
                "spec.devices.constraints[0].requests[0]",
                f'Invalid value: "h": {REQUEST_REF}',
            ),
            (
                "FieldValueInvalid",
                "spec.devices.constraints[0].matchAttribute",
                'Invalid value: "model": a fully qualified name must be a domain and a name '
                "separated by a slash",
            ),
        ],
        id="a constraint naming an unknown request and an unqualified attribute",
    ),
    pytest.param(
        CLAIMS,
        claim(exactly("g"), constraints=[{}]),
        [
            (
                "FieldValueRequired",
                "spec.devices.constraints[0]",
                'Required value: exactly one of "matchAttribute" or "distinctAttribute" is '
                "required, but multiple fields are set",
            )
        ],
        id="a constraint without an attribute",
    ),
    pytest.param(
        CLAIMS,
        claim(
            exactly(tolerations=[{"key": "k", "operator": "Exists", "value": "v", "effect": "X"}])
        ),
        [
            (
                "FieldValueInvalid",
                "spec.devices.requests[0].exactly.tolerations[0].value",
                'Invalid value: "v": must be empty for operator `Exists`',
            ),
            (
                "FieldValueNotSupported",
                "spec.devices.requests[0].exactly.tolerations[0].effect",
                f'Unsupported value: "X": {EFFECTS}',
            ),
        ],
        id="a toleration with a value for Exists and an unknown effect",
    ),
    pytest.param(
        CLAIMS,
        claim(*(exactly(f"g{i}") for i in range(33))),
        [
            (
                "FieldValueTooMany",
                "spec.devices.requests",
                "Too many: 33: must have at most 32 items",
            )
        ],
        id="33 requests",
    ),
    pytest.param(
        f"{G}/resourceslices",
        resource_slice(driver="gpu.example.com", pool=POOL),
        [
            (
                "FieldValueRequired",
                "spec",
                "Required value: exactly one of `nodeName`, `nodeSelector`, `allNodes`, "
                "`perDeviceNodeSelection` is required",
            )
        ],
        id="a slice for no node",
    ),
    pytest.param(
        f"{G}/resourceslices",
        resource_slice(driver="gpu.example.com", nodeName="n", allNodes=True, pool=POOL),
        [
            (
                "FieldValueInvalid",
                "spec",
                'Invalid value: "{`nodeName`, `allNodes`}": exactly one of `nodeName`, '
                "`nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, but multiple "
                "fields are set",
            )
        ],
        id="a slice for a node and all nodes",
    ),
    pytest.param(
        f"{G}/resourceslices",
        resource_slice(driver="GPU_x", nodeName="n", pool=POOL),
        [("FieldValueInvalid", "spec.driver", f'Invalid value: "GPU_x": {SUBDOMAIN}')],
        id="a driver name that is not a subdomain",
    ),
    pytest.param(
        f"{G}/resourceslices",
        resource_slice(
            driver="d.example.com",
            nodeName="n",
            pool={"name": "", "resourceSliceCount": 0, "generation": -1},
        ),
        [
            ("FieldValueRequired", "spec.pool.name", "Required value"),
            (
                "FieldValueInvalid",
                "spec.pool.resourceSliceCount",
                "Invalid value: 0: must be greater than zero",
            ),
            (
                "FieldValueInvalid",
                "spec.pool.generation",
                "Invalid value: -1: must be greater than or equal to zero",
            ),
        ],
        id="a pool without a name, slices or a valid generation",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(devices=[{"name": "Bad_dev", "attributes": {"a-b": {"string": "x"}, "c": {}}}]),
        [
            (
                "FieldValueInvalid",
                "spec.devices[0].name",
                f'Invalid value: "Bad_dev": {LABEL}',
            ),
            (
                "FieldValueInvalid",
                "spec.devices[0].attributes",
                'Invalid value: "a-b": a valid C identifier must start with alphabetic character '
                "or '_', followed by a string of alphanumeric characters or '_' (e.g. 'my_name',  "
                "or 'MY_NAME',  or 'MyName', regex used for validation is "
                "'[A-Za-z_][A-Za-z0-9_]*')",
            ),
            (
                "FieldValueInvalid",
                "spec.devices[0].attributes[c]",
                'Invalid value: "": must specify one of: `int`, `bool`, `string`, `version`, '
                "`ints`, `bools`, `strings`, `versions`",
            ),
        ],
        id="a device with a bad name, attribute name and attribute",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(devices=[{"name": "a"}, {"name": "a"}]),
        [("FieldValueDuplicate", "spec.devices[1]", 'Duplicate value: "a"')],
        id="two devices of one name",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(devices=[{"name": "a", "attributes": {"v": {"version": "1.2"}}}]),
        [
            (
                "FieldValueInvalid",
                "spec.devices[0].attributes[v].version",
                'Invalid value: "1.2": must be a string compatible with semver.org spec 2.0.0',
            )
        ],
        id="a version that is not semver",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(devices=[{"name": "a", "taints": [{"key": "", "effect": "X"}]}]),
        [
            (
                "FieldValueInvalid",
                "spec.devices[0].taints[0].key",
                'Invalid value: "": name part must be non-empty',
            ),
            (
                "FieldValueInvalid",
                "spec.devices[0].taints[0].key",
                "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' "
                "or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  "
                "or 'my.name',  or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ),
            (
                "FieldValueNotSupported",
                "spec.devices[0].taints[0].effect",
                f'Unsupported value: "X": {EFFECTS}',
            ),
        ],
        id="a taint without a key, of an unknown effect",
    ),
    pytest.param(
        f"{G}/namespaces/default/resourceclaimtemplates",
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": "t"},
            "spec": {"spec": {"devices": {"requests": [{"name": "g"}]}}},
        },
        [
            (
                "FieldValueRequired",
                "spec.spec.devices.requests[0]",
                "Required value: exactly one of `exactly` or `firstAvailable` is required",
            )
        ],
        id="a template with a request of no type",
    ),
    pytest.param(
        f"{G}/devicetaintrules",
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "DeviceTaintRule",
            "metadata": {"name": "r"},
            "spec": {"deviceSelector": {"driver": "Bad_"}, "taint": {"key": "k", "effect": "No"}},
        },
        [
            (
                "FieldValueInvalid",
                "spec.deviceSelector.driver",
                f'Invalid value: "Bad_": {SUBDOMAIN}',
            ),
            ("FieldValueNotSupported", "spec.taint.effect", f'Unsupported value: "No": {EFFECTS}'),
        ],
        id="a taint rule for a bad driver, of an unknown effect",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(
            devices=[
                {
                    "name": "a",
                    "capacity": {"mem": {"value": "4", "requestPolicy": {"default": "1"}}},
                }
            ]
        ),
        [
            (
                "FieldValueForbidden",
                "spec.devices[0].capacity[mem].requestPolicy",
                "Forbidden: allowMultipleAllocations must be true",
            )
        ],
        id="a request policy on a device that is not shared",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(
            devices=[
                shared_device(
                    requestPolicy={"default": "1", "validValues": ["1"], "validRange": {"min": "1"}}
                )
            ]
        ),
        [
            (
                "FieldValueForbidden",
                "spec.devices[0].capacity[mem].requestPolicy",
                'Forbidden: exactly one policy can be specified, cannot specify "validValues" and '
                '"validRange" at the same time',
            )
        ],
        id="a request policy with valid values and a valid range",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(devices=[shared_device(requestPolicy={"validRange": {"min": "1"}})]),
        [
            (
                "FieldValueRequired",
                "spec.devices[0].capacity[mem].requestPolicy.default",
                "Required value: required when validRange is defined",
            )
        ],
        id="a valid range without a default",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(
            devices=[
                shared_device(
                    requestPolicy={
                        "default": "1",
                        "validRange": {"min": "2", "max": "8", "step": "3"},
                    }
                )
            ]
        ),
        [
            (
                "FieldValueInvalid",
                f"{POLICY}.validRange.default",
                'Invalid value: "1": default is less than min: 2',
            ),
            (
                "FieldValueInvalid",
                f"{POLICY}.validRange.max",
                'Invalid value: "8": max is larger than capacity value: 4',
            ),
            (
                "FieldValueInvalid",
                f"{POLICY}.validRange.step",
                'Invalid value: "3": one step 5 is larger than capacity value: 4',
            ),
            (
                "FieldValueInvalid",
                f"{POLICY}.validRange.step",
                'Invalid value: "1": value is not a multiple of a given step (3) from (2)',
            ),
        ],
        id="a valid range its default, max and step do not fit",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(
            devices=[shared_device(requestPolicy={"default": "3", "validValues": ["2", "1", "8"]})]
        ),
        [
            (
                "FieldValueInvalid",
                f"{POLICY}.validValues[1]",
                'Invalid value: "1": values must be sorted in ascending order',
            ),
            (
                "FieldValueInvalid",
                f"{POLICY}.validValues[2]",
                'Invalid value: "8": option is larger than capacity value: 4',
            ),
            (
                "FieldValueInvalid",
                f"{POLICY}.validValues",
                'Invalid value: "3": default value is not valid according to the requestPolicy',
            ),
        ],
        id="valid values out of order, too large, without the default",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(
            devices=[
                shared_device(
                    requestPolicy={
                        "default": "1500m",
                        "validRange": {"min": "1", "step": "2"},
                    },
                )
            ]
        ),
        # fractional ranges are off by default in 1.37: steps count whole units, 1500m as 2
        [
            (
                "FieldValueInvalid",
                f"{POLICY}.validRange.step",
                'Invalid value: "1500m": value is not a multiple of a given step (2) from (1)',
            )
        ],
        id="a valid range whose default, in whole units, is off its steps",
    ),
    pytest.param(
        f"{G}/resourceslices",
        node_slice(
            devices=[
                shared_device(
                    requestPolicy={"default": "1", "validRange": {"min": "1", "step": "0"}}
                )
            ]
        ),
        [
            (
                "FieldValueInvalid",
                f"{POLICY}.validRange.step",
                'Invalid value: "0": must be greater than zero',
            )
        ],
        id="a valid range with a step of zero",
    ),
    pytest.param(
        CLAIMS,
        claim(exactly(adminAccess=True), name="admin"),
        [("FieldValueForbidden", "spec.devices.requests[0].adminAccess", f"Forbidden: {ADMIN}")],
        id="admin access in a namespace without the admin-access label",
    ),
    pytest.param(
        f"{G}/namespaces/default/resourceclaimtemplates",
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": "admin"},
            "spec": {"spec": {"devices": {"requests": [exactly(adminAccess=True)]}}},
        },
        # upstream names the claim spec's path, not the template's
        [("FieldValueForbidden", "spec.devices.requests[0].adminAccess", f"Forbidden: {ADMIN}")],
        id="a template asking for admin access in a namespace without the label",
    ),
]


@pytest.mark.parametrize(("path", "body", "causes"), INVALID)
def test_invalid_objects_are_refused_with_upstreams_causes(
    api: Api, path: str, body: dict[str, Any], causes: list[tuple[str, str, str]]
) -> None:
    """resource.k8s.io validation: 422 Invalid with kube-apiserver's causes, word for word"""
    answer = api.post(path, body)
    assert answer.status == 422 and answer.reason == "Invalid", answer.body
    got = [(c["reason"], c["field"], c["message"]) for c in answer.body["details"]["causes"]]
    assert got == causes
    kind, name = body["kind"], body["metadata"]["name"]
    parts = [f"{field}: {message}" for _, field, message in causes]
    listed = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    assert answer.message == f'{kind}.resource.k8s.io "{name}" is invalid: {listed}'


@differs("a selector's result type is checked when it runs, not when it is stored")
def test_a_selector_not_returning_bool_is_refused(api: Api) -> None:
    """a class selector that evaluates to a string: 422 (must evaluate to bool)"""
    answer = api.post(
        f"{G}/deviceclasses", device_class(selectors=[{"cel": {"expression": "device.driver"}}])
    )
    assert answer.status == 422
    assert answer.body["details"]["causes"][0]["message"] == (
        'Invalid value: "device.driver": must evaluate to bool or the unknown type, not string'
    )


def test_discovery_lists_the_resource_group(api: Api) -> None:
    """/apis/resource.k8s.io/v1 lists classes, slices, claims (+status), templates and taint
    rules with their scope and verbs"""
    listing = api.get(G).body
    found = {r["name"]: r for r in listing["resources"]}
    for name, kind, namespaced in (
        ("deviceclasses", "DeviceClass", False),
        ("resourceslices", "ResourceSlice", False),
        ("resourceclaims", "ResourceClaim", True),
        ("resourceclaimtemplates", "ResourceClaimTemplate", True),
        ("devicetaintrules", "DeviceTaintRule", False),
    ):
        assert (found[name]["kind"], found[name]["namespaced"]) == (kind, namespaced)
        assert set(found[name]["verbs"]) == {
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        }
    assert set(found["resourceclaims/status"]["verbs"]) == {"get", "patch", "update"}
    group = api.get("/apis/resource.k8s.io").body
    assert group["preferredVersion"]["groupVersion"] == "resource.k8s.io/v1"


def test_claims_get_upstreams_defaults_and_an_empty_status(api: Api) -> None:
    """a claim gets allocationMode ExactCount, count 1, toleration operator Equal; its status
    starts empty whatever was sent; a class and a slice are stored as sent"""
    assert api.post(f"{G}/deviceclasses", device_class()).status == 201
    body = claim(exactly(tolerations=[{"key": "k"}]), name="ok")
    body["status"] = {"reservedFor": [{"resource": "pods", "name": "p", "uid": "u"}]}
    created = api.post(CLAIMS, body)
    assert created.status == 201, created.body
    assert created.body["spec"]["devices"]["requests"][0]["exactly"] == {
        "deviceClassName": "gpu.example.com",
        "allocationMode": "ExactCount",
        "count": 1,
        "tolerations": [{"key": "k", "operator": "Equal"}],
    }
    assert created.body["status"] == {}
    sl = api.post(f"{G}/resourceslices", node_slice("ok", devices=[{"name": "gpu-0"}]))
    assert sl.status == 201 and sl.body["spec"]["devices"] == [{"name": "gpu-0"}]


def allocation(request: str = "gpu", device: str = "gpu-0") -> dict[str, Any]:
    return {
        "devices": {
            "results": [
                {
                    "request": request,
                    "driver": "gpu.example.com",
                    "pool": "node-1",
                    "device": device,
                }
            ]
        },
        "nodeSelector": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}
            ]
        },
    }


def _pod(api: Api, name: str) -> str:
    """Create a pod (never scheduled) to be a claim's consumer; its uid."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
    }
    answer = api.post("/api/v1/namespaces/default/pods", body)
    assert answer.status == 201, answer.body
    return str(answer.body["metadata"]["uid"])


def _status(api: Api, claim_body: dict[str, Any], status: dict[str, Any]) -> Any:
    body = copy.deepcopy(claim_body)
    body["status"] = status
    return api.request("PUT", f"{CLAIMS}/{body['metadata']['name']}/status", body)


def test_a_claims_spec_is_immutable_and_its_status_follows_upstreams_rules(api: Api) -> None:
    """a claim's spec cannot change; reservedFor needs an allocation; an allocation names the
    claim's requests and cannot change once set; reservedFor holds each consumer once"""
    created = api.post(CLAIMS, claim(exactly(), name="ok")).body
    changed = copy.deepcopy(created)
    changed["spec"]["devices"]["requests"][0]["exactly"]["count"] = 2
    answer = api.request("PUT", f"{CLAIMS}/ok", changed)
    assert answer.status == 422
    assert answer.message == (
        'ResourceClaim.resource.k8s.io "ok" is invalid: spec: Invalid value: null: field is '
        "immutable"
    )
    # a pod that exists: the ResourceClaim controllers (both servers run one) drop consumers
    # that are gone, which would change the claim under the writes below
    uid = _pod(api, "p")
    consumer = {"resource": "pods", "name": "p", "uid": uid}
    answer = _status(api, created, {"reservedFor": [consumer]})
    assert answer.status == 422
    assert answer.message == (
        'ResourceClaim.resource.k8s.io "ok" is invalid: status.reservedFor: Forbidden: may not '
        "be specified when `allocated` is not set"
    )
    answer = _status(api, created, {"allocation": allocation(request="nope")})
    assert answer.status == 422
    assert answer.message == (
        'ResourceClaim.resource.k8s.io "ok" is invalid: '
        f'status.allocation.devices.results[0].request: Invalid value: "nope": {REQUEST_REF}'
    )
    answer = _status(api, created, {"allocation": allocation(), "reservedFor": [consumer]})
    assert answer.status == 200, answer.body
    assert answer.body["spec"] == created["spec"]
    stored = answer.body
    answer = _status(
        api, stored, {"allocation": allocation(device="gpu-1"), "reservedFor": [consumer]}
    )
    assert answer.status == 422
    assert answer.message == (
        'ResourceClaim.resource.k8s.io "ok" is invalid: status.allocation: Invalid value: null: '
        "field cannot be modified once set"
    )
    answer = _status(api, stored, {"allocation": allocation(), "reservedFor": [consumer] * 2})
    assert answer.status == 422
    assert answer.message == (
        'ResourceClaim.resource.k8s.io "ok" is invalid: status.reservedFor[1]: Duplicate value: '
        f'{{"resource":"pods","name":"p","uid":"{uid}"}}'
    )
    # Unreserve's strategic merge patch removes one consumer by uid
    answer = api.request(
        "PATCH",
        f"{CLAIMS}/ok/status",
        {
            "metadata": {"uid": stored["metadata"]["uid"]},
            "status": {"reservedFor": [{"$patch": "delete", "uid": uid}]},
        },
        content_type="application/strategic-merge-patch+json",
    )
    assert answer.status == 200, answer.body
    assert "reservedFor" not in answer.body["status"]
    assert answer.body["status"]["allocation"] == allocation()


def test_consumable_capacity_round_trips(api: Api) -> None:
    """a shared device with a request policy, a claim asking for part of it, and an allocation
    result with a share ID and the capacity it consumes are stored as sent; a share ID that is
    not a UUID is refused"""
    policy = {"default": "1Gi", "validRange": {"min": "1Gi", "max": "8Gi", "step": "512Mi"}}
    body = node_slice(devices=[shared_device("8Gi", requestPolicy=policy)])
    answer = api.post(f"{G}/resourceslices", body)
    assert answer.status == 201, answer.body
    assert answer.body["spec"]["devices"] == body["spec"]["devices"]
    # off its steps in milli-units, on them in whole units (fractional ranges are off in 1.37)
    fractional = {"default": "500m", "validRange": {"min": "250m", "step": "300m"}}
    body = node_slice("s2", devices=[shared_device("1", requestPolicy=fractional)])
    assert api.post(f"{G}/resourceslices", body).status == 201
    created = api.post(
        CLAIMS, claim(exactly(capacity={"requests": {"mem": "1536Mi"}}), name="share")
    ).body
    assert created["spec"]["devices"]["requests"][0]["exactly"]["capacity"] == {
        "requests": {"mem": "1536Mi"}
    }
    result = allocation()
    result["devices"]["results"][0] |= {
        "shareID": "0b5ad7b1-4a0e-4c6e-8f4b-5b7b7e0d2c11",
        "consumedCapacity": {"mem": "1536Mi"},
    }
    answer = _status(api, created, {"allocation": result})
    assert answer.status == 200, answer.body
    assert answer.body["status"]["allocation"]["devices"] == result["devices"]
    bad = copy.deepcopy(result)
    bad["devices"]["results"][0]["shareID"] = "share-1"
    created = api.post(
        CLAIMS, claim(exactly(capacity={"requests": {"mem": "1Gi"}}), name="share-2")
    ).body
    answer = _status(api, created, {"allocation": bad})
    assert answer.status == 422
    assert answer.message == (
        'ResourceClaim.resource.k8s.io "share-2" is invalid: '
        'status.allocation.devices.results[0].shareID: Invalid value: "share-1": must be a '
        "lowercase UUID in 8-4-4-4-12 format"
    )


def test_admin_access_in_a_labelled_namespace(api: Api) -> None:
    """with the namespace labelled resource.kubernetes.io/admin-access=true, a claim asking for
    admin access is stored, and so is an allocation result granting it"""
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "admins", "labels": {"resource.kubernetes.io/admin-access": "true"}},
    }
    assert api.post("/api/v1/namespaces", body).status == 201
    path = f"{G}/namespaces/admins/resourceclaims"
    answer = api.post(path, claim(exactly(adminAccess=True), name="admin"))
    assert answer.status == 201, answer.body
    result = allocation()
    result["devices"]["results"][0]["adminAccess"] = True
    body = copy.deepcopy(answer.body)
    body["status"] = {"allocation": result}
    answer = api.request("PUT", f"{path}/admin/status", body)
    assert answer.status == 200, answer.body
    assert answer.body["status"]["allocation"]["devices"]["results"][0]["adminAccess"] is True


def test_an_allocation_granting_admin_access_needs_the_namespace_label(api: Api) -> None:
    """an allocation result with adminAccess in a namespace without the label: 422"""
    created = api.post(CLAIMS, claim(exactly(), name="plain")).body
    result = allocation()
    result["devices"]["results"][0]["adminAccess"] = True
    answer = _status(api, created, {"allocation": result})
    assert answer.status == 422
    assert answer.message == (
        'ResourceClaim.resource.k8s.io "plain" is invalid: '
        f"status.allocation.devices.results[0].adminAccess: Forbidden: {ADMIN}"
    )


def test_a_slices_driver_pool_and_node_are_immutable(api: Api) -> None:
    """a slice's pool name and node cannot change (422 naming both)"""
    created = api.post(f"{G}/resourceslices", node_slice("ok")).body
    changed = copy.deepcopy(created)
    changed["spec"]["nodeName"] = "node-2"
    changed["spec"]["pool"]["name"] = "p2"
    answer = api.request("PUT", f"{G}/resourceslices/ok", changed)
    assert answer.status == 422
    assert answer.message == (
        'ResourceSlice.resource.k8s.io "ok" is invalid: [spec.pool.name: Invalid value: "p2": '
        'field is immutable, spec.nodeName: Invalid value: "node-2": field is immutable]'
    )


def _table(api: Api, path: str) -> tuple[list[str], list[list[Any]]]:
    answer = api.request(
        "GET", path, accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    )
    assert answer.status == 200, answer.body
    columns = [c["name"] for c in answer.body["columnDefinitions"]]
    return columns, [r["cells"] for r in answer.body["rows"]]


def test_kubectl_get_tables_have_upstreams_columns(api: Api) -> None:
    """`kubectl get` on resource.k8s.io: upstream's printer columns and cells (a claim's STATE:
    pending, then allocated,reserved; a slice's node, driver and pool; a rule's taint)"""
    assert api.post(f"{G}/deviceclasses", device_class()).status == 201
    assert api.post(f"{G}/resourceslices", node_slice("s1")).status == 201
    rule = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceTaintRule",
        "metadata": {"name": "maintenance"},
        "spec": {"taint": {"key": "example.com/fault", "value": "fan", "effect": "NoSchedule"}},
    }
    assert api.post(f"{G}/devicetaintrules", rule).status == 201
    created = api.post(CLAIMS, claim(exactly())).body
    assert created["metadata"]["name"] == "c"

    columns, rows = _table(api, f"{G}/deviceclasses")
    assert (columns, [r[0] for r in rows]) == (["Name", "Age"], ["gpu.example.com"])
    columns, rows = _table(api, f"{G}/resourceslices")
    assert columns == ["Name", "Node", "Driver", "Pool", "Age"]
    assert [r[:4] for r in rows] == [["s1", "node-1", "gpu.example.com", "node-1"]]
    columns, rows = _table(api, f"{G}/devicetaintrules")
    assert columns == ["Name", "Key", "Value", "Effect", "TimeAdded", "Age"]
    (row,) = rows
    assert row[:4] == ["maintenance", "example.com/fault", "fan", "NoSchedule"]
    assert row[4] and row[4].endswith("s")  # timeAdded, defaulted by the server

    columns, rows = _table(api, CLAIMS)
    assert (columns, [r[:2] for r in rows]) == (["Name", "State", "Age"], [["c", "pending"]])
    uid = _pod(api, "p")  # reserved for a pod that exists (controllers drop gone ones)
    result = {"request": "gpu", "driver": "gpu.example.com", "pool": "node-1", "device": "d0"}
    current = api.get(f"{CLAIMS}/c").body
    current["status"] = {
        "allocation": {"devices": {"results": [result]}},
        "reservedFor": [{"resource": "pods", "name": "p", "uid": uid}],
    }
    answer = api.request("PUT", f"{CLAIMS}/c/status", current)
    assert answer.status == 200, answer.body
    _, rows = _table(api, CLAIMS)
    assert [r[:2] for r in rows] == [["c", "allocated,reserved"]]
