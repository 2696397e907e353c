"""resource.k8s.io/v1 bodies in protobuf, as a Go DRA driver or controller sends them (client-go's
typed clients with the protobuf content type, run by `berth-upstream protoclient`): on both
servers, every kind written in protobuf is stored exactly as the same object written in JSON,
creates, updates and a claim's /status alike."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from typing import Any

import pytest

from berth.upstream import find_binary
from tests.fidelity.conftest import Api
from tests.upstream import unavailable_reason

G = "/apis/resource.k8s.io/v1"
DRIVER = "gpu.example.com"
# set by the server: differs between any two objects
ADDED = "2026-01-01T00:00:00Z"  # a taint's timeAdded, else the server's clock (seconds)
MEMORY = "device.capacity['gpu.example.com'].memory.compareTo(quantity('16Gi')) >= 0"
SYSTEM = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


def device_class(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name, "labels": {"tier": "gpu"}},
        "spec": {
            "selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}],
            "config": [
                {
                    "opaque": {
                        "driver": DRIVER,
                        "parameters": {"sharing": {"strategy": "TimeSlicing"}},
                    }
                }
            ],
            "extendedResourceName": "example.com/gpu",
        },
    }


def resource_slice(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": name},
        "spec": {
            "driver": DRIVER,
            "nodeName": "node-1",
            "pool": {"name": f"pool-{name}", "generation": 3, "resourceSliceCount": 1},
            "devices": [
                {
                    "name": f"gpu-{i}",
                    "attributes": {
                        "model": {"string": "a100"},
                        "index": {"int": i},
                        "healthy": {"bool": i == 0},
                        "driverVersion": {"version": "1.2.3-rc.1"},
                    },
                    "capacity": {"memory": {"value": "40Gi"}, "cores": {"value": "108"}},
                }
                | (
                    {
                        "taints": [
                            {
                                "key": "maintenance",
                                "value": "soon",
                                "effect": "NoSchedule",
                                "timeAdded": ADDED,
                            }
                        ]
                    }
                    if i
                    else {}
                )
                for i in range(2)
            ],
        },
    }


def claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name, "namespace": "default", "annotations": {"a": "b"}},
        "spec": {
            "devices": {
                "requests": [
                    {
                        "name": "gpu",
                        "exactly": {
                            "deviceClassName": "pb-class",
                            "count": 2,
                            "selectors": [{"cel": {"expression": MEMORY}}],
                            "tolerations": [
                                {"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}
                            ],
                        },
                    },
                    {
                        "name": "nic",
                        "firstAvailable": [
                            {"name": "fast", "deviceClassName": "pb-class", "count": 1},
                            {"name": "any", "deviceClassName": "pb-class", "allocationMode": "All"},
                        ],
                    },
                ],
                "constraints": [{"requests": ["gpu"], "matchAttribute": "gpu.example.com/model"}],
                "config": [
                    {
                        "requests": ["gpu"],
                        "opaque": {"driver": DRIVER, "parameters": {"mode": "exclusive"}},
                    }
                ],
            }
        },
    }


def template(name: str) -> dict[str, Any]:
    spec = claim(name)["spec"]
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"metadata": {"labels": {"from": "template"}}, "spec": spec},
    }


def taint_rule(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceTaintRule",
        "metadata": {"name": name},
        "spec": {
            "deviceSelector": {"driver": DRIVER, "pool": "pool-x", "device": "gpu-1"},
            "taint": {"key": "broken", "value": "fan", "effect": "NoExecute", "timeAdded": ADDED},
        },
    }


def allocation() -> dict[str, Any]:
    return {
        "devices": {
            "results": [
                {"request": "gpu", "driver": DRIVER, "pool": "pool-x", "device": f"gpu-{i}"}
                for i in range(2)
            ]
            + [
                {
                    "request": "nic/fast",
                    "driver": DRIVER,
                    "pool": "pool-x",
                    "device": "gpu-0",
                    "adminAccess": False,
                }
            ],
            "config": [
                {
                    "source": "FromClaim",
                    "requests": ["gpu"],
                    "opaque": {"driver": DRIVER, "parameters": {"mode": "exclusive"}},
                }
            ],
        },
        "nodeSelector": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}
            ]
        },
        "allocationTimestamp": "2026-01-02T03:04:05Z",
    }


def protoclient(server: Any, *writes: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (verb, object) written by client-go's typed clients in protobuf; their answers."""
    lines = "".join(json.dumps({"verb": verb, "object": obj}) + "\n" for verb, obj in writes)
    done = subprocess.run(
        [str(find_binary()), "protoclient", "--kubeconfig", str(server.kubeconfig_path)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def stored(api: Api, path: str) -> dict[str, Any]:
    """The object as the server holds it, without what differs between any two objects."""
    answer = api.get(path)
    assert answer.status == 200, answer.body
    body = copy.deepcopy(answer.body)
    meta = body["metadata"]
    for key in SYSTEM:
        meta.pop(key, None)
    meta.pop("name")
    if body["kind"] == "DeviceTaintRule":
        body.pop("status", None)  # its controller's conditions, written when it gets to them
    return body


def _path(obj: dict[str, Any]) -> str:
    plural = {
        "DeviceClass": "deviceclasses",
        "ResourceSlice": "resourceslices",
        "ResourceClaim": "resourceclaims",
        "ResourceClaimTemplate": "resourceclaimtemplates",
        "DeviceTaintRule": "devicetaintrules",
    }[obj["kind"]]
    namespace = obj["metadata"].get("namespace")
    where = f"{G}/namespaces/{namespace}" if namespace else G
    return f"{where}/{plural}"


@pytest.mark.parametrize(
    "make", [device_class, resource_slice, claim, template, taint_rule], ids=lambda f: f.__name__
)
def test_a_protobuf_create_stores_what_the_json_one_does(server: Any, api: Api, make: Any) -> None:
    """The same object created in JSON, read and deleted, then created in protobuf."""
    obj = make("pb")
    path = f"{_path(obj)}/pb"
    answer = api.post(_path(obj), obj)
    assert answer.status == 201, answer.body
    want = stored(api, path)
    assert api.request("DELETE", path).status == 200
    assert api.get(path).status == 404
    (created,) = protoclient(server, ("create", obj))
    assert "error" not in created, created
    assert created["metadata"]["name"] == "pb"
    assert stored(api, path) == want


def test_a_protobuf_status_update_of_a_claim_stores_the_allocation(server: Any, api: Api) -> None:
    """A driver's typed client writes a claim's status (allocation, reservedFor) in protobuf."""
    for name in ("st-json", "st-proto"):
        answer = api.post(_path(claim(name)), claim(name))
        assert answer.status == 201, answer.body
    current = api.get(f"{_path(claim('st-json'))}/st-json").body
    current["status"] = {"allocation": allocation()}
    updated = api.request("PUT", f"{_path(claim('st-json'))}/st-json/status", current)
    assert updated.status == 200, updated.body
    current = api.get(f"{_path(claim('st-proto'))}/st-proto").body
    current["status"] = {"allocation": allocation()}
    (answer,) = protoclient(server, ("updateStatus", current))
    assert "error" not in answer, answer
    got = stored(api, f"{_path(claim('st-proto'))}/st-proto")
    want = stored(api, f"{_path(claim('st-json'))}/st-json")
    assert got == want
    assert got["status"]["allocation"]["devices"]["results"][0]["device"] == "gpu-0"


def test_a_protobuf_body_the_server_refuses_gets_the_same_causes(server: Any, api: Api) -> None:
    """A DeviceClass written in protobuf with a CEL selector that does not compile is refused
    (compilation failed) and not stored."""
    bad = device_class("pb-bad")
    bad["spec"]["selectors"] = [{"cel": {"expression": "device.driver =="}}]
    (answer,) = protoclient(server, ("create", bad))
    assert "compilation failed" in answer["error"], answer
    assert api.get(f"{G}/deviceclasses/pb-bad").status == 404


def test_a_protobuf_pod_keeps_its_inlined_structs(server: Any, api: Api) -> None:
    """Go structs embedded without a JSON name (a volume's source, a probe's handler, a key
    selector's object reference) are inlined in JSON: a pod written in protobuf keeps them."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pb", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1.36",
                    "env": [
                        {
                            "name": "MODE",
                            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}},
                        }
                    ],
                    "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 7},
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                }
            ],
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}],
        },
    }
    path = "/api/v1/namespaces/default/pods/pb"
    answer = api.post("/api/v1/namespaces/default/pods", pod)
    assert answer.status == 201, answer.body
    want = api.get(path).body["spec"]
    assert api.request("DELETE", path, query={"gracePeriodSeconds": 0}).status == 200

    until = time.monotonic() + 30
    while api.get(path).status != 404:
        assert time.monotonic() < until, "the JSON pod was not deleted"
        time.sleep(0.2)
    (created,) = protoclient(server, ("create", pod))
    assert "error" not in created, created
    got = api.get(path).body["spec"]
    # (the real server adds a service-account token volume, its name random)
    assert got["volumes"][0] == want["volumes"][0]
    assert got["volumes"][0]["emptyDir"] == {"sizeLimit": "1Gi"}
    container, wanted = got["containers"][0], want["containers"][0]
    assert container["livenessProbe"] == wanted["livenessProbe"]
    assert container["livenessProbe"]["exec"] == {"command": ["true"]}
    assert container["env"] == wanted["env"]
    assert container["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "settings"
