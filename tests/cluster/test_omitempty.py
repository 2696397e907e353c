"""The zero values Go's JSON encoder omits, row by row (the Go field and its tag in the name);
the objects kube-apiserver answers for these writes are checked on both servers in
tests/fidelity/test_objects.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from berth.cluster.omitempty import omit_empty

ROWS: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "NodeSpec.Taints []Taint omitempty: an empty list is left out",
        "v1",
        "Node",
        {"metadata": {"name": "n"}, "spec": {"taints": [], "podCIDR": "", "unschedulable": False}},
        {"metadata": {"name": "n"}, "spec": {}},
    ),
    (
        "ObjectMeta.Labels map omitempty, ObjectMeta.Name omitempty: an empty map and string",
        "v1",
        "ConfigMap",
        {"metadata": {"name": "", "labels": {}, "annotations": {"a": ""}}, "data": {}},
        {"metadata": {"annotations": {"a": ""}}},
    ),
    (
        "PodSpec.Priority *int32 omitempty: a pointer to zero stays, a null pointer goes",
        "v1",
        "Pod",
        {"spec": {"priority": 0, "activeDeadlineSeconds": None, "containers": []}},
        {"spec": {"priority": 0, "containers": []}},
    ),
    (
        "ContainerPort.HostPort int32 omitempty, ContainerPort.ContainerPort int32: only the "
        "tagged zero goes",
        "v1",
        "Pod",
        {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 0, "hostPort": 0}]}]}},
        {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 0}]}]}},
    ),
    (
        "ResourceRequirements.Requests ResourceList omitempty: an empty map of quantities goes, "
        "a zero quantity stays (a struct)",
        "v1",
        "Pod",
        {"spec": {"containers": [{"resources": {"requests": {}, "limits": {"cpu": 0}}}]}},
        {"spec": {"containers": [{"resources": {"limits": {"cpu": 0}}}]}},
    ),
    (
        "Volume inlines VolumeSource: its fields are the volume's; EmptyDir.Medium omitempty",
        "v1",
        "Pod",
        {"spec": {"volumes": [{"name": "v", "emptyDir": {"medium": ""}}]}},
        {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}},
    ),
    (
        "DeploymentSpec.Replicas *int32: zero replicas stay; the template's empty labels go",
        "apps/v1",
        "Deployment",
        {"spec": {"replicas": 0, "template": {"metadata": {"labels": {}}}}},
        {"spec": {"replicas": 0, "template": {"metadata": {}}}},
    ),
    (
        "Device.Attributes map[string]DeviceAttribute: a pointer value inside a map of "
        "structs stays, an empty capacity map goes",
        "resource.k8s.io/v1",
        "ResourceSlice",
        {"spec": {"devices": [{"name": "d", "attributes": {"a": {"int": 0}}, "capacity": {}}]}},
        {"spec": {"devices": [{"name": "d", "attributes": {"a": {"int": 0}}}]}},
    ),
    (
        "RoleBinding in rbac.authorization.k8s.io: Subject.APIGroup omitempty",
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        {"subjects": [{"kind": "User", "name": "u", "apiGroup": "", "namespace": ""}]},
        {"subjects": [{"kind": "User", "name": "u"}]},
    ),
    (
        "a field the type does not declare is left to the unknown-field check",
        "v1",
        "Pod",
        {"spec": {"bogus": []}},
        {"spec": {"bogus": []}},
    ),
    (
        "a kind without Go types (a custom resource) passes whole",
        "example.com/v1",
        "Widget",
        {"spec": {"items": []}},
        {"spec": {"items": []}},
    ),
]


@pytest.mark.parametrize(
    ("name", "api_version", "kind", "written", "stored"), ROWS, ids=[r[0] for r in ROWS]
)
def test_zero_values_go_omits(
    name: str, api_version: str, kind: str, written: dict[str, Any], stored: dict[str, Any]
) -> None:
    before = copy.deepcopy(written)
    assert omit_empty(api_version=api_version, kind=kind, obj=written) == stored
    assert written == before  # never changed in place: parts of it may be a stored object's


def test_nothing_to_leave_out_is_the_same_object() -> None:
    obj = {"metadata": {"name": "n", "labels": {"a": "b"}}, "spec": {"taints": [{"key": "k"}]}}
    assert omit_empty(api_version="v1", kind="Node", obj=obj) is obj
