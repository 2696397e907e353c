"""What the server returns validates against Kubernetes 1.37's OpenAPI schemas (strict: no
unknown fields), and the pure pieces (selectors, patches) behave as upstream's tables say."""

from __future__ import annotations

import datetime
import json
import urllib.request
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client

from berth.cluster import EmbeddedCluster
from berth.cluster.patch import json_patch, merge_patch, strategic_merge_patch
from berth.cluster.selectors import parse_field_selector, parse_label_selector
from berth.cluster.timestamps import format_time

from .conftest import api_client, pod_body, wait_for


def _get(c: EmbeddedCluster, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(c.url + path, timeout=5) as resp:
        return dict(json.loads(resp.read()))


def test_served_objects_validate_strictly(cluster: EmbeddedCluster, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", pod_body("valid", nodeName="node-001"))
    wait_for(lambda: v1.read_namespaced_pod("valid", "default").status.phase == "Running")
    v1.create_namespaced_event(
        "default",
        {
            "metadata": {"name": "valid.1"},
            "involvedObject": {"kind": "Pod", "name": "valid"},
            "reason": "Scheduled",
            "message": "ok",
            "type": "Normal",
            "count": 1,
        },
    )
    client.PolicyV1Api(api_client(cluster)).create_namespaced_pod_disruption_budget(
        "default",
        {
            "metadata": {"name": "valid"},
            "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "test"}}},
        },
    )
    wait_for(
        lambda: (
            "status"
            in _get(cluster, "/apis/policy/v1/namespaces/default/poddisruptionbudgets/valid")
        )
    )
    paths = [
        "/api/v1/namespaces/default/pods/valid",
        "/api/v1/nodes/node-001",
        "/api/v1/namespaces/default/events/valid.1",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-001",
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/valid",
        "/api/v1/namespaces/default",
        "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical",
    ]
    for path in paths:
        obj = _get(cluster, path)
        kubernetes_validate.validate(obj, "1.37", strict=True)
    listed = _get(cluster, "/api/v1/pods")
    kubernetes_validate.validate(listed, "1.37", strict=True)


@pytest.mark.parametrize(
    ("selector", "labels", "want"),
    [
        ("a=1", {"a": "1"}, True),
        ("a==1", {"a": "2"}, False),
        ("a!=1", {}, True),
        ("a in (1, 2),b", {"a": "2", "b": ""}, True),
        ("a notin (1,2)", {"a": "3"}, True),
        ("a notin (1,2)", {"a": "1"}, False),
        ("!a", {"b": "1"}, True),
        ("a", {"b": "1"}, False),
        ("x>5", {"x": "7"}, True),
        ("", {"a": "1"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], want: bool) -> None:
    assert parse_label_selector(selector)({"metadata": {"labels": labels}}) is want


def test_field_selector_values() -> None:
    match = parse_field_selector(
        "spec.unschedulable=false,metadata.name!=x", supported=("spec.unschedulable",), kind="Node"
    )
    assert match({"metadata": {"name": "n"}, "spec": {}})
    assert not match({"metadata": {"name": "n"}, "spec": {"unschedulable": True}})


def test_patch_formats() -> None:
    pod = {
        "metadata": {"labels": {"a": "1"}, "finalizers": ["x"]},
        "spec": {
            "containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
            "taints": [{"key": "k"}],
        },
    }
    merged = merge_patch(pod, {"metadata": {"labels": {"a": None, "b": "2"}}})
    assert merged["metadata"]["labels"] == {"b": "2"} and pod["metadata"]["labels"] == {"a": "1"}
    smp = strategic_merge_patch(
        pod,
        {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "metadata": {"finalizers": ["y"]},
            "spec": {
                "containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}],
                "taints": [{"key": "z"}],
            },
        },
    )
    assert smp["spec"]["containers"] == [{"name": "b", "image": "2"}]
    assert smp["spec"]["taints"] == [{"key": "z"}]
    assert smp["metadata"]["finalizers"] == ["x", "y"]
    assert "$setElementOrder/containers" not in smp
    assert pod["spec"]["containers"][1]["image"] == "1"  # input untouched
    jp = json_patch(
        pod,
        [
            {"op": "replace", "path": "/spec/containers/0/image", "value": "9"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
            {"op": "add", "path": "/metadata/labels/c~1d", "value": "e"},
        ],
    )
    assert jp["spec"]["containers"][0]["image"] == "9" and jp["metadata"]["finalizers"] == []
    assert jp["metadata"]["labels"]["c/d"] == "e" and pod["spec"]["containers"][0]["image"] == "1"


@pytest.mark.parametrize(
    ("value", "micro", "want"),
    [
        ("2026-01-01T00:00:00+00:00", True, "2026-01-01T00:00:00.000000Z"),
        ("2026-01-01T01:00:00.5+01:00", False, "2026-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00Z", False, "2026-01-01T00:00:00Z"),
        ("not a time", True, "not a time"),
    ],
)
def test_time_formats(value: str, micro: bool, want: str) -> None:
    assert format_time(value, micro=micro) == want


def test_python_client_times_are_stored_in_go_format(cluster: EmbeddedCluster) -> None:
    coord = client.CoordinationV1Api(api_client(cluster))
    now = datetime.datetime.now(datetime.UTC)
    coord.create_namespaced_lease(
        "default",
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="times"),
            spec=client.V1LeaseSpec(holder_identity="me", renew_time=now, acquire_time=now),
        ),
    )
    raw = _get(cluster, "/apis/coordination.k8s.io/v1/namespaces/default/leases/times")
    renew = raw["spec"]["renewTime"]
    assert renew.endswith("Z") and len(renew) == len("2006-01-02T15:04:05.000000Z")
    kubernetes_validate.validate(raw, "1.37", strict=True)
