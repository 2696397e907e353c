"""Fixtures for the embedded cluster's tests: one shared cluster per module, clients from its
kubeconfig, and small helpers to build pods."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config

from berth.cluster import EmbeddedCluster


def api_client(cluster: EmbeddedCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig_path))


def pod_body(name: str = "", *, generate: str = "", **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name} if name else {"generateName": generate}
    meta["labels"] = spec.pop("labels", {"app": "test"})
    body_spec: dict[str, Any] = {
        "containers": [
            {
                "name": "c",
                "image": "busybox:1.36",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ]
    }
    body_spec.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body_spec}


def wait_for(predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(nodes=3, zones=2, admin=True) as c:
        yield c


@pytest.fixture(scope="module")
def v1(cluster: EmbeddedCluster) -> client.CoreV1Api:
    return client.CoreV1Api(api_client(cluster))


@pytest.fixture
def namespace(v1: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    name = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:50].strip("-")
    v1.create_namespace({"metadata": {"name": name}})
    yield name
    v1.delete_namespace(name)
