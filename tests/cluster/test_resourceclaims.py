"""The embedded cluster's ResourceClaim controller, table-driven from upstream's own rows
(pkg/controller/resourceclaim/controller_test.go TestSyncHandler, upstream row names; the
PodGroup, admin-access and feature-gate rows are left out), and the binding permission a claim's
status needs (DRAResourceClaimGranularStatusAuthorization)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from berth.cluster import EmbeddedCluster
from berth.cluster.api import Api
from berth.cluster.errors import ApiError
from berth.cluster.pdb import DisruptionController
from berth.cluster.resourceclaims import (
    FINALIZER,
    POD_CLAIM_ANNOTATION,
    ResourceClaimController,
    generate_name,
)
from berth.cluster.resources import PODS, RESOURCE_CLAIM_TEMPLATES, RESOURCE_CLAIMS
from berth.cluster.store import Store

NS = "my-namespace"
POD = "test-pod"
CLAIM = "acme-resource"
TEMPLATE = "my-template"
NODE = "worker"


def pod(name: str = POD, *, claim: bool = True, node: str = "", phase: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}]}
    if claim:
        spec["resourceClaims"] = [{"name": CLAIM, "resourceClaimTemplateName": TEMPLATE}]
    if node:
        spec["nodeName"] = node
    body: dict[str, Any] = {"metadata": {"name": name}, "spec": spec}
    if phase:
        body["status"] = {"phase": phase}
    return body


def template() -> dict[str, Any]:
    return {
        "metadata": {"name": TEMPLATE},
        "spec": {
            "metadata": {"labels": {"team": "a"}},
            "spec": {
                "devices": {"requests": [{"name": "req-0", "exactly": {"deviceClassName": "c"}}]}
            },
        },
    }


def claim(name: str, *, owner: dict[str, Any] | None, annotated: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ]
    if annotated:
        meta["annotations"] = {POD_CLAIM_ANNOTATION: CLAIM}
    return {
        "metadata": meta,
        "spec": {"devices": {"requests": [{"name": "req-0", "exactly": {"deviceClassName": "c"}}]}},
    }


ALLOCATION = {
    "devices": {
        "results": [
            {"request": "req-0", "driver": "d.example.com", "pool": NODE, "device": "dev-0"}
        ]
    },
}


@dataclass
class World:
    api: Api
    controller: ResourceClaimController
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        status = body.pop("status", None)
        created = self.api.create(PODS, namespace=NS, body=body).obj
        if status:
            created = self.set_pod_status(created, status)
        self.pods[created["metadata"]["name"]] = created
        return created

    def set_pod_status(self, p: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        current = self.api.store.get(PODS, NS, p["metadata"]["name"])
        assert current is not None
        new = {**current, "status": {**current["status"], **status}}
        return self.api.store.replace(PODS, new, current).obj

    def add_claim(
        self,
        body: dict[str, Any],
        *,
        allocated: bool = False,
        reserved_for: tuple[dict[str, Any], ...] = (),
        finalizer: bool = False,
    ) -> dict[str, Any]:
        if finalizer:
            body["metadata"]["finalizers"] = [FINALIZER]
        created = self.api.create(RESOURCE_CLAIMS, namespace=NS, body=body).obj
        if allocated or reserved_for:
            status: dict[str, Any] = {"allocation": copy.deepcopy(ALLOCATION)}
            if reserved_for:
                status["reservedFor"] = [
                    {"resource": "pods", "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}
                    for p in reserved_for
                ]
            created = self.api.update(
                RESOURCE_CLAIMS,
                namespace=NS,
                name=created["metadata"]["name"],
                body={**created, "status": status},
                subresource="status",
            ).obj
        return created

    def claims(self) -> dict[str, dict[str, Any]]:
        return {c["metadata"]["name"]: c for c in self.api.store.items(RESOURCE_CLAIMS, NS)}

    def pod(self, name: str = POD) -> dict[str, Any]:
        found = self.api.store.get(PODS, NS, name)
        assert found is not None
        return found


@pytest.fixture
def world() -> World:
    store = Store()
    api = Api(store=store, disruption=DisruptionController(store=store))
    from berth.cluster.resources import NAMESPACES

    api.create(NAMESPACES, namespace=None, body={"metadata": {"name": NS}})
    return World(api=api, controller=ResourceClaimController(api=api))


def settle(world: World) -> None:
    for _ in range(10):
        if not world.controller.reconcile():
            return
    raise AssertionError("the controller does not settle")


def statuses(p: dict[str, Any]) -> list[dict[str, Any]]:
    return list((p.get("status") or {}).get("resourceClaimStatuses") or [])


def test_create(world: World) -> None:
    world.api.create(RESOURCE_CLAIM_TEMPLATES, namespace=NS, body=template())
    p = world.add_pod(pod())
    settle(world)
    (made,) = world.claims().values()
    meta = made["metadata"]
    assert (
        meta["name"].startswith(f"{POD}-{CLAIM}-")
        and len(meta["name"]) == len(POD) + len(CLAIM) + 7
    )
    assert meta["annotations"] == {POD_CLAIM_ANNOTATION: CLAIM}
    assert meta["labels"] == {"team": "a"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": POD,
            "uid": p["metadata"]["uid"],
            "controller": True,
        }
    ]
    assert made["spec"] == {
        "devices": {
            "requests": [
                {
                    "name": "req-0",
                    "exactly": {"deviceClassName": "c", "allocationMode": "ExactCount", "count": 1},
                }
            ]
        }
    }
    assert statuses(world.pod()) == [{"name": CLAIM, "resourceClaimName": meta["name"]}]


def test_recreate(world: World) -> None:
    world.api.create(RESOURCE_CLAIM_TEMPLATES, namespace=NS, body=template())
    world.add_pod(pod())
    settle(world)
    (first,) = world.claims()
    world.api.delete(RESOURCE_CLAIMS, namespace=NS, name=first)
    settle(world)
    (second,) = world.claims()
    assert second != first
    assert statuses(world.pod()) == [{"name": CLAIM, "resourceClaimName": second}]


def test_missing_template(world: World) -> None:
    world.add_pod(pod())
    settle(world)
    assert world.claims() == {} and statuses(world.pod()) == []
    # the template's creation retries the pod (upstream: the work queue's retry)
    world.api.create(RESOURCE_CLAIM_TEMPLATES, namespace=NS, body=template())
    settle(world)
    assert len(world.claims()) == 1 and len(statuses(world.pod())) == 1


def test_find_existing_claim_by_label(world: World) -> None:
    world.api.create(RESOURCE_CLAIM_TEMPLATES, namespace=NS, body=template())
    p = world.add_pod(pod(claim=False))
    existing = world.add_claim(claim("found", owner=p, annotated=True))
    current = world.pod()
    spec = {
        **current["spec"],
        "resourceClaims": [{"name": CLAIM, "resourceClaimTemplateName": TEMPLATE}],
    }
    world.api.store.replace(PODS, {**current, "spec": spec}, current)
    settle(world)
    assert list(world.claims()) == [existing["metadata"]["name"]]
    assert statuses(world.pod()) == [{"name": CLAIM, "resourceClaimName": "found"}]


def test_recreate_wrong_owner(world: World) -> None:
    world.api.create(RESOURCE_CLAIM_TEMPLATES, namespace=NS, body=template())
    p = world.add_pod(pod())
    world.add_claim(claim("other", owner=None, annotated=True))
    world.set_pod_status(
        p, {"resourceClaimStatuses": [{"name": CLAIM, "resourceClaimName": "other"}]}
    )
    settle(world)
    recorded = statuses(world.pod())[0]["resourceClaimName"]
    assert recorded != "other" and recorded.startswith(f"{POD}-{CLAIM}-")
    assert set(world.claims()) == {"other", recorded}


def test_clear_reserved_structured(world: World) -> None:
    """the reserving pod is gone: reservation, allocation and finalizer go"""
    gone = world.add_pod(pod("gone", claim=False))
    world.add_claim(claim("c", owner=None), reserved_for=(gone,), finalizer=True)
    world.api.delete(PODS, namespace=NS, name="gone")
    settle(world)
    c = world.claims()["c"]
    assert c["status"] == {} and not c["metadata"].get("finalizers")


def test_dont_clear_reserved_structured(world: World) -> None:
    mine, other = world.add_pod(pod()), world.add_pod(pod("other", claim=False))
    world.add_claim(claim("c", owner=mine), reserved_for=(mine, other), finalizer=True)
    world.api.delete(PODS, namespace=NS, name="other")
    settle(world)
    c = world.claims()["c"]
    assert [r["name"] for r in c["status"]["reservedFor"]] == [POD]
    assert c["status"]["allocation"] == ALLOCATION and c["metadata"]["finalizers"] == [FINALIZER]


def test_clear_reserved_when_done(world: World) -> None:
    """a claim without an owner (not generated) loses the reservation of a finished pod; without
    the finalizer its allocation stays"""
    done = world.add_pod(pod(claim=False))
    world.add_claim(claim("c", owner=None), reserved_for=(done,))
    world.set_pod_status(done, {"phase": "Succeeded"})
    settle(world)
    assert world.claims()["c"]["status"] == {"allocation": ALLOCATION}


def test_remove_reserved(world: World) -> None:
    mine, other = world.add_pod(pod(claim=False)), world.add_pod(pod("other", claim=False))
    world.add_claim(claim("c", owner=None), reserved_for=(mine, other))
    world.api.delete(PODS, namespace=NS, name="other")
    settle(world)
    assert [r["name"] for r in world.claims()["c"]["status"]["reservedFor"]] == [POD]


def test_delete_claim_when_done(world: World) -> None:
    mine = world.add_pod(pod(claim=False))
    world.add_claim(claim("c", owner=mine), reserved_for=(mine,), finalizer=True)
    world.set_pod_status(mine, {"phase": "Succeeded"})
    settle(world)
    assert world.claims() == {}


def test_a_deleted_pods_generated_claim_is_deleted(world: World) -> None:
    """(the garbage collector's part upstream: the owner is gone)"""
    mine = world.add_pod(pod(claim=False))
    world.add_claim(claim("c", owner=mine), reserved_for=(mine,), finalizer=True)
    world.api.delete(PODS, namespace=NS, name=POD)
    settle(world)
    assert world.claims() == {}


def test_add_reserved(world: World) -> None:
    world.api.create(RESOURCE_CLAIM_TEMPLATES, namespace=NS, body=template())
    p = world.add_pod(pod(node=NODE))
    made = world.add_claim(claim("made", owner=p, annotated=True), allocated=True)
    world.set_pod_status(
        p, {"resourceClaimStatuses": [{"name": CLAIM, "resourceClaimName": "made"}]}
    )
    settle(world)
    c = world.claims()[made["metadata"]["name"]]
    assert c["status"]["reservedFor"] == [
        {"resource": "pods", "name": POD, "uid": p["metadata"]["uid"]}
    ]


@pytest.mark.parametrize(
    ("pod_name", "claim_name", "want"),
    [
        ("test-pod", "acme-resource", "test-pod-acme-resource-"),
        # upstream cuts both in proportion past 57 characters (and drops the trailing hyphen)
        ("p" * 50, "c" * 20, "p" * 39 + "-" + "c" * 15),
    ],
)
def test_generate_name(pod_name: str, claim_name: str, want: str) -> None:
    assert generate_name(pod_name, claim_name) == want


# --- the binding permission of a claim's status ----------------------------------------------

CLAIMER = "system:serviceaccount:kube-system:claimer"


def _rbac(*resources: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "claimer"},
            "rules": [
                {
                    "apiGroups": ["resource.k8s.io"],
                    "resources": list(resources),
                    "verbs": ["get", "update"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "claimer"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "claimer",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "claimer", "namespace": "kube-system"}],
        },
    ]


def _allocate_as_claimer(c: EmbeddedCluster) -> tuple[int, dict[str, Any]]:
    import json
    import urllib.request

    def made(core: Any) -> dict[str, Any]:
        return core.api.create(
            RESOURCE_CLAIMS, namespace="default", body=claim("c", owner=None)
        ).obj

    stored = c.call(made)
    body = {**stored, "status": {"allocation": ALLOCATION}}
    req = urllib.request.Request(
        f"{c.url}/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/c/status",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Authorization": "Bearer claimer-token", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_changing_the_allocation_needs_the_binding_subresource() -> None:
    with EmbeddedCluster(
        nodes=1,
        token="admin",
        rbac=_rbac("resourceclaims/status"),
        token_users={"claimer-token": CLAIMER},
    ) as c:
        code, answer = _allocate_as_claimer(c)
    assert code == 422, answer
    assert answer["message"] == (
        'ResourceClaim.resource.k8s.io "c" is invalid: status.allocation: Forbidden: changing '
        'status.allocation or status.reservedFor requires resource="resourceclaims/binding", '
        'verb="update" permission: resourceclaims.resource.k8s.io is forbidden: User '
        f'"{CLAIMER}" cannot update resource "resourceclaims/binding" in API group '
        '"resource.k8s.io" at the cluster scope'
    )


def test_with_the_binding_subresource_the_allocation_is_written() -> None:
    with EmbeddedCluster(
        nodes=1,
        token="admin",
        rbac=_rbac("resourceclaims/status", "resourceclaims/binding"),
        token_users={"claimer-token": CLAIMER},
    ) as c:
        code, answer = _allocate_as_claimer(c)
    assert code == 200, answer
    assert answer["status"]["allocation"] == ALLOCATION


def _device_status_as_claimer(c: EmbeddedCluster) -> tuple[int, dict[str, Any]]:
    """As the claimer: allocate the claim, then report its device's status (a driver's
    write)."""
    import json
    import urllib.request

    code, stored = _allocate_as_claimer(c)
    assert code == 200, stored
    stored["status"]["devices"] = [
        {
            "driver": "d.example.com",
            "pool": NODE,
            "device": "dev-0",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Prepared",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
    ]
    req = urllib.request.Request(
        f"{c.url}/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/c/status",
        data=json.dumps(stored).encode(),
        method="PUT",
        headers={"Authorization": "Bearer claimer-token", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_changing_the_device_status_needs_the_driver_subresource() -> None:
    """upstream AuthorizedForDeviceStatus: `arbitrary-node:update` on resourceclaims/driver,
    named after the driver, in the claim's namespace."""
    with EmbeddedCluster(
        nodes=1,
        token="admin",
        rbac=_rbac("resourceclaims/status", "resourceclaims/binding"),
        token_users={"claimer-token": CLAIMER},
    ) as c:
        code, answer = _device_status_as_claimer(c)
    assert code == 422, answer
    assert answer["message"] == (
        'ResourceClaim.resource.k8s.io "c" is invalid: status.devices: Forbidden: changing '
        'status.devices requires resource="resourceclaims/driver", verb="[arbitrary-node:update]" '
        'permission: resourceclaims.resource.k8s.io "d.example.com" is forbidden: User '
        f'"{CLAIMER}" cannot arbitrary-node:update resource "resourceclaims/driver" in API group '
        '"resource.k8s.io" in the namespace "default"'
    )


def test_with_the_driver_subresource_the_device_status_is_written() -> None:
    rules = _rbac("resourceclaims/status", "resourceclaims/binding")
    rules[0]["rules"].append(
        {
            "apiGroups": ["resource.k8s.io"],
            "resources": ["resourceclaims/driver"],
            "resourceNames": ["d.example.com"],
            "verbs": ["arbitrary-node:update"],
        }
    )
    with EmbeddedCluster(
        nodes=1, token="admin", rbac=rules, token_users={"claimer-token": CLAIMER}
    ) as c:
        code, answer = _device_status_as_claimer(c)
    assert code == 200, answer
    assert [d["device"] for d in answer["status"]["devices"]] == ["dev-0"]


def test_a_write_refused_leaves_the_claim_alone(world: World) -> None:
    made = world.add_claim(claim("c", owner=None))
    with pytest.raises(ApiError) as err:
        world.api.update(
            RESOURCE_CLAIMS,
            namespace=NS,
            name="c",
            subresource="status",
            body={
                **made,
                "status": {"reservedFor": [{"resource": "pods", "name": "p", "uid": "u"}]},
            },
        )
    assert err.value.code == 422
    assert world.claims()["c"]["status"] == {}
