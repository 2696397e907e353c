"""Workload controllers creating pods, as users deploy: a Deployment (through its ReplicaSet),
a ReplicaSet, a Job and a StatefulSet each create their pods, owned by them. Nobody schedules
them here (no scheduler runs), which is all the next scheduler needs to see."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fidelity.conftest import Api

PODS = "/api/v1/namespaces/default/pods"
TEMPLATE = {
    "metadata": {"labels": {"app": "w"}},
    "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
}
SELECTOR = {"matchLabels": {"app": "w"}}


def owned_pods(api: Api, want: int, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        items = api.get(PODS, labelSelector="app=w").body["items"]
        if len(items) >= want or time.monotonic() > deadline:
            return list(items)
        time.sleep(0.2)


WORKLOADS = [
    (
        "Deployment",
        "/apis/apps/v1/namespaces/default/deployments",
        "ReplicaSet",
        {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE},
    ),
    (
        "ReplicaSet",
        "/apis/apps/v1/namespaces/default/replicasets",
        "ReplicaSet",
        {"replicas": 2, "selector": SELECTOR, "template": TEMPLATE},
    ),
    (
        "StatefulSet",
        "/apis/apps/v1/namespaces/default/statefulsets",
        "StatefulSet",
        {
            "replicas": 2,
            "selector": SELECTOR,
            "template": TEMPLATE,
            "serviceName": "w",
            "podManagementPolicy": "Parallel",
        },
    ),
    (
        "Job",
        "/apis/batch/v1/namespaces/default/jobs",
        "Job",
        {
            "parallelism": 2,
            "completions": 2,
            "template": {**TEMPLATE, "spec": {**TEMPLATE["spec"], "restartPolicy": "Never"}},
        },
    ),
]


@pytest.mark.parametrize(
    ("kind", "path", "owner", "spec"), WORKLOADS, ids=[w[0] for w in WORKLOADS]
)
def test_workload_creates_its_pods(api: Api, kind: str, path: str, owner: str, spec: Any) -> None:
    """a workload (Deployment, ReplicaSet, StatefulSet, Job) creates its pods, owned by it"""
    api_version = "batch/v1" if kind == "Job" else "apps/v1"
    body = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w"}, "spec": spec}
    answer = api.post(path, body)
    assert answer.status == 201, answer.body
    pods = owned_pods(api, 2)
    assert len(pods) == 2
    for p in pods:
        (ref,) = p["metadata"]["ownerReferences"]
        assert ref["kind"] == owner and ref["controller"] is True
        assert p["status"]["phase"] == "Pending" and not p["spec"].get("nodeName")
    if kind == "StatefulSet":
        assert sorted(p["metadata"]["name"] for p in pods) == ["w-0", "w-1"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({}, "data: Required value: data is mandatory", id="no data"),
        pytest.param(
            {"data": [1], "revision": 2},
            "data: Required value: data must be a valid JSON object",
            id="data not an object",
        ),
        pytest.param(
            {"revision": -1},
            "[revision: Invalid value: -1: must be greater than or equal to 0, "
            "data: Required value: data is mandatory]",
            id="negative revision and no data",
        ),
    ],
)
def test_a_controller_revision_needs_an_object_as_data(
    api: Api, body: dict[str, Any], message: str
) -> None:
    """ValidateControllerRevisionCreate: data is mandatory and an object, revision >= 0"""
    answer = api.post(
        "/apis/apps/v1/namespaces/default/controllerrevisions", {"metadata": {"name": "r"}, **body}
    )
    assert answer.status == 422
    assert answer.message == f'ControllerRevision.apps "r" is invalid: {message}'
