"""A scheduler's pod subresources, the same on both servers: the binding (bound, already bound,
missing pod, UID precondition, what it changes on the pod) and the eviction a
PodDisruptionBudget blocks (429)."""

from __future__ import annotations

from typing import Any

from tests.fidelity.conftest import Api, eventually
from tests.fidelity.test_objects import PODS, pod

PDBS = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"


def binding(name: str, node: str, uid: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if uid:
        meta["uid"] = uid
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": meta,
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


def test_binding_binds(api: Api) -> None:
    """a binding: 201 with a Success Status; the pod gets spec.nodeName and PodScheduled=True"""
    api.post(PODS, pod("p"))
    answer = api.post(f"{PODS}/p/binding", binding("p", "node-001"))
    assert answer.status == 201
    assert answer.body["kind"] == "Status" and answer.body["status"] == "Success"
    bound = api.get(f"{PODS}/p").body
    assert bound["spec"]["nodeName"] == "node-001"
    conditions = {c["type"]: c["status"] for c in bound["status"]["conditions"]}
    assert conditions["PodScheduled"] == "True"


def test_binding_an_already_bound_pod_is_409(api: Api) -> None:
    """binding a pod that has a node: 409 Conflict naming the node"""
    api.post(PODS, pod("p"))
    assert api.post(f"{PODS}/p/binding", binding("p", "node-001")).status == 201
    answer = api.post(f"{PODS}/p/binding", binding("p", "node-002"))
    assert answer.status == 409 and answer.reason == "Conflict"
    assert answer.message == (
        'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node '
        '"node-001"'
    )


def test_binding_a_missing_pod_is_404(api: Api) -> None:
    """binding a pod that does not exist: 404 NotFound"""
    answer = api.post(f"{PODS}/ghost/binding", binding("ghost", "node-001"))
    assert answer.status == 404 and answer.reason == "NotFound"
    assert answer.message == 'pods "ghost" not found'


def test_binding_with_a_wrong_uid_is_409(api: Api) -> None:
    """a binding whose metadata.uid is not the pod's: 409 Conflict, precondition failed"""
    uid = api.post(PODS, pod("p")).body["metadata"]["uid"]
    wrong = "00000000-0000-0000-0000-000000000000"
    answer = api.post(f"{PODS}/p/binding", binding("p", "node-001", uid=wrong))
    assert answer.status == 409 and answer.reason == "Conflict"
    assert answer.message == (
        'Operation cannot be fulfilled on pods "p": StorageError: invalid object, Code: 4, '
        "Key: /registry/pods/default/p, ResourceVersion: 0, AdditionalErrorMsg: Precondition "
        f"failed: UID in precondition: {wrong}, UID in object meta: {uid}"
    )
    assert api.post(f"{PODS}/p/binding", binding("p", "node-001", uid=uid)).status == 201


def test_binding_clears_the_nomination(api: Api) -> None:
    """binding clears status.nominatedNodeName (on by default since 1.35)"""
    api.post(PODS, pod("p"))
    api.request(
        "PATCH",
        f"{PODS}/p/status",
        {"status": {"nominatedNodeName": "node-002"}},
        content_type="application/merge-patch+json",
    )
    assert api.get(f"{PODS}/p").body["status"]["nominatedNodeName"] == "node-002"
    assert api.post(f"{PODS}/p/binding", binding("p", "node-001")).status == 201
    assert "nominatedNodeName" not in api.get(f"{PODS}/p").body["status"]


def test_binding_copies_topology_labels(api: Api) -> None:
    """binding, or creating a pod bound, copies the node's topology.kubernetes.io/zone and
    region labels onto the pod (PodTopologyLabels admission, on by default since 1.35)"""
    want = {"topology.kubernetes.io/zone": "zone-a", "topology.kubernetes.io/region": "region-1"}
    api.post(PODS, pod("p"))
    assert api.post(f"{PODS}/p/binding", binding("p", "node-001")).status == 201
    assert api.get(f"{PODS}/p").body["metadata"].get("labels") == want
    created = api.post(PODS, pod("q", nodeName="node-002"))
    assert created.status == 201 and created.body["metadata"].get("labels") == want


def running_pods(api: Api, n: int) -> None:
    for i in range(n):
        body = pod(f"p{i}", nodeName="node-001")
        body["metadata"]["labels"] = {"app": "guarded"}
        assert api.post(PODS, body).status == 201

    def all_running() -> bool:
        items = api.get(PODS, labelSelector="app=guarded").body["items"]
        return len(items) == n and all(i["status"].get("phase") == "Running" for i in items)

    eventually(all_running)


def eviction(name: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}


def test_eviction_blocked_by_a_disruption_budget_is_429(api: Api) -> None:
    """an eviction the pod's PodDisruptionBudget forbids: 429 TooManyRequests with a
    DisruptionBudget cause; the pod stays"""
    running_pods(api, 2)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "guard"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "guarded"}}},
    }
    assert api.post(PDBS, pdb).status == 201

    def observed() -> bool:
        status = api.get(f"{PDBS}/guard").body.get("status") or {}
        return status.get("observedGeneration") == 1 and status.get("currentHealthy") == 2

    eventually(observed)
    answer = api.post(f"{PODS}/p0/eviction", eviction("p0"))
    assert answer.status == 429 and answer.reason == "TooManyRequests"
    assert answer.message == "Cannot evict pod as it would violate the pod's disruption budget."
    causes = answer.body["details"]["causes"]
    assert causes == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget guard needs 2 healthy pods and has 2 currently",
        }
    ]
    assert api.get(f"{PODS}/p0").status == 200


def test_eviction_allowed_by_the_budget(api: Api) -> None:
    """an eviction the budget allows: 201 with a Success Status; the pod is deleted"""
    running_pods(api, 2)
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "guard"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
    }
    assert api.post(PDBS, pdb).status == 201
    eventually(
        lambda: (api.get(f"{PDBS}/guard").body.get("status") or {}).get("disruptionsAllowed") == 1
    )
    answer = api.post(f"{PODS}/p0/eviction", eviction("p0"))
    assert answer.status == 201 and answer.body["status"] == "Success"
    eventually(lambda: api.get(f"{PODS}/p0").status == 404)
