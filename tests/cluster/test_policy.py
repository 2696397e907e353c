"""PodDisruptionBudgets and the eviction subresource: status arithmetic and 429 on violations."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from berth.cluster import EmbeddedCluster
from berth.cluster.pdb import EVICTION_MESSAGE, compute_status

from .conftest import api_client, pod_body, wait_for


def _running_pods(v1: client.CoreV1Api, namespace: str, count: int, app: str) -> None:
    for i in range(count):
        v1.create_namespaced_pod(
            namespace, pod_body(f"{app}-{i}", labels={"app": app}, nodeName="node-001")
        )
    wait_for(
        lambda: (
            len(
                v1.list_namespaced_pod(
                    namespace, label_selector=f"app={app}", field_selector="status.phase=Running"
                ).items
            )
            == count
        )
    )


def test_eviction_respects_budget(
    v1: client.CoreV1Api, cluster: EmbeddedCluster, namespace: str
) -> None:
    policy = client.PolicyV1Api(api_client(cluster))
    _running_pods(v1, namespace, 3, "db")
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        {
            "metadata": {"name": "db"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}},
        },
    )

    def status() -> client.V1PodDisruptionBudgetStatus:
        return policy.read_namespaced_pod_disruption_budget("db", namespace).status

    wait_for(lambda: status() is not None and status().disruptions_allowed == 1)
    s = status()
    assert (s.current_healthy, s.desired_healthy, s.expected_pods) == (3, 2, 3)
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "db-0", "namespace": namespace},
    }
    v1.create_namespaced_pod_eviction("db-0", namespace, eviction, _preload_content=False)
    assert [p.metadata.name for p in v1.list_namespaced_pod(namespace).items] == ["db-1", "db-2"]
    eviction["metadata"]["name"] = "db-1"  # type: ignore[index]
    with pytest.raises(ApiException) as exc:
        v1.create_namespaced_pod_eviction("db-1", namespace, eviction, _preload_content=False)
    assert exc.value.status == 429
    body = json.loads(exc.value.body)
    assert body["reason"] == "TooManyRequests" and body["message"] == EVICTION_MESSAGE
    wait_for(lambda: status().disruptions_allowed == 0 and status().current_healthy == 2)


def test_eviction_of_unbudgeted_or_pending_pod_succeeds(
    v1: client.CoreV1Api, namespace: str
) -> None:
    v1.create_namespaced_pod(namespace, pod_body("free"))
    v1.create_namespaced_pod_eviction(
        "free", namespace, {"metadata": {"name": "free"}}, _preload_content=False
    )
    assert v1.list_namespaced_pod(namespace).items == []


def _pod(name: str, *, ready: bool, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "metadata": {"name": name, "labels": labels or {"app": "x"}},
        "status": {
            "phase": "Running" if ready else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


@pytest.mark.parametrize(
    ("spec", "healthy", "total", "want"),
    [
        # spec, healthy pods, matching pods, (allowed, currentHealthy, desiredHealthy, expected)
        ({"minAvailable": 2}, 3, 3, (1, 3, 2, 3)),
        ({"minAvailable": "50%"}, 3, 4, (1, 3, 2, 4)),
        ({"maxUnavailable": 1}, 4, 4, (1, 4, 3, 4)),
        ({"maxUnavailable": "30%"}, 10, 10, (3, 10, 7, 10)),
        ({"maxUnavailable": 1}, 2, 4, (0, 2, 3, 4)),
        ({"minAvailable": 0}, 0, 2, (0, 0, 0, 2)),
    ],
)
def test_pdb_status_table(
    spec: dict[str, object], healthy: int, total: int, want: tuple[int, int, int, int]
) -> None:
    pods = [_pod(f"p{i}", ready=i < healthy) for i in range(total)]
    pods.append(_pod("other", ready=True, labels={"app": "y"}))
    pdb = {
        "metadata": {"name": "b", "generation": 1},
        "spec": {**spec, "selector": {"matchLabels": {"app": "x"}}},
    }
    s = compute_status(pdb, pods)
    got = (s["disruptionsAllowed"], s["currentHealthy"], s["desiredHealthy"], s["expectedPods"])
    assert got == want
