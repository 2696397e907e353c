"""Volume binding end to end: `berth run` against the embedded cluster and its simulated PV
controller, and against the real PV controller with a simulated CSI provisioner. Pods with
WaitForFirstConsumer claims get provisioned volumes on the chosen node (selected-node annotation,
then Bound); a pre-created local PV is bound through its claimRef and pins the pod; a claim bound
to a zonal PV keeps its pod in that zone; a claim that appears later unblocks its pod; a
provisioner that never answers times PreBind out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.aio.client import StorageV1Api

from berth.cluster import EmbeddedCluster
from berth.kube.client import Connection, read_json
from tests.upstream import PROVISIONER, SERVERS, clusters

from .conftest import create, events, eventually, node_of, pod, pods, running

SELECTED = "volume.kubernetes.io/selected-node"


def with_claims(name: str, *claims: str) -> dict[str, Any]:
    volumes = [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
    ]
    return pod(name, volumes=volumes)


async def post(conn: Connection, kind: str, body: dict[str, Any]) -> None:
    if kind == "sc":
        call = StorageV1Api(conn.api).create_storage_class_without_preload_content(body=body)
    elif kind == "pv":
        call = conn.core.create_persistent_volume_without_preload_content(body=body)
    else:
        call = conn.core.create_namespaced_persistent_volume_claim_without_preload_content(
            namespace="default", body=body
        )
    response = await call
    answer = await read_json(response)
    assert response.status == 201, answer


async def get(conn: Connection, kind: str, name: str) -> dict[str, Any]:
    if kind == "pv":
        call = conn.core.read_persistent_volume_without_preload_content(name=name)
    elif kind == "node":
        call = conn.core.read_node_without_preload_content(name=name)
    else:
        call = conn.core.read_namespaced_persistent_volume_claim_without_preload_content(
            name=name, namespace="default"
        )
    answer: dict[str, Any] = await read_json(await call)
    return answer


def storage_class(name: str, provisioner: str = PROVISIONER) -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def claim(name: str, cls: str, size: str = "1Gi") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": cls,
            "resources": {"requests": {"storage": size}},
        },
    }


def local_pv(name: str, node: str, cls: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": cls,
            "local": {"path": f"/mnt/disks/{name}"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def test_wffc_claims_provisioned_on_the_chosen_node(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            await post(conn, "sc", storage_class("zonal"))
            for i in range(3):
                await post(conn, "pvc", claim(f"data-web-{i}", "zonal"))
                await create(conn, with_claims(f"web-{i}", f"data-web-{i}"))

            async def all_bound() -> bool:
                return all(node_of(p) for p in (await pods(conn)).values())

            await eventually(all_bound, timeout=20)
            listed = await pods(conn)
            for i in range(3):
                node = node_of(listed[f"web-{i}"])
                c = await get(conn, "pvc", f"data-web-{i}")
                assert c["status"]["phase"] == "Bound"
                assert c["metadata"]["annotations"][SELECTED] == node
                volume = await get(conn, "pv", c["spec"]["volumeName"])
                node_obj = await get(conn, "node", str(node))
                zone = node_obj["metadata"]["labels"]["topology.kubernetes.io/zone"]
                term = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]
                assert term["matchExpressions"][0]["values"] == [zone]

            # A replacement pod for web-0 (same claim, now bound to a zonal PV) stays in that zone.
            zone0 = (await get(conn, "node", str(node_of(listed["web-0"]))))["metadata"]["labels"][
                "topology.kubernetes.io/zone"
            ]
            await create(conn, with_claims("web-0-again", "data-web-0"))

            async def again() -> bool:
                return node_of((await pods(conn))["web-0-again"]) is not None

            await eventually(again, timeout=10)
            node = node_of((await pods(conn))["web-0-again"])
            labels = (await get(conn, "node", str(node)))["metadata"]["labels"]
            assert labels["topology.kubernetes.io/zone"] == zone0

    asyncio.run(main())


def test_local_pv_bound_by_claim_ref_pins_the_pod(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            await post(
                conn,
                "sc",
                storage_class("local", "kubernetes.io/no-provisioner"),
            )
            await post(conn, "pv", local_pv("local-2", "node-002", "local"))
            await post(conn, "pvc", claim("data-db-0", "local"))
            await create(conn, with_claims("db-0", "data-db-0"))
            # No PV left for a second claim: that pod stays pending with upstream's reason.
            await post(conn, "pvc", claim("data-db-1", "local"))
            await create(conn, with_claims("db-1", "data-db-1"))

            async def bound() -> bool:
                return node_of((await pods(conn))["db-0"]) == "node-002"

            await eventually(bound, timeout=15)
            volume = await get(conn, "pv", "local-2")
            assert volume["spec"]["claimRef"]["name"] == "data-db-0"
            assert volume["status"]["phase"] == "Bound"
            c = await get(conn, "pvc", "data-db-0")
            assert c["spec"]["volumeName"] == "local-2"

            async def reported() -> bool:
                p = (await pods(conn))["db-1"]
                conds = (p.get("status") or {}).get("conditions") or []
                return any(
                    "didn't find available persistent volumes to bind" in (x.get("message") or "")
                    for x in conds
                )

            await eventually(reported, timeout=10)
            assert node_of((await pods(conn))["db-1"]) is None
            # A new local PV on node-003 lets it go (PV events move the pod back).
            await post(conn, "pv", local_pv("local-3", "node-003", "local"))

            async def second() -> bool:
                return node_of((await pods(conn))["db-1"]) == "node-003"

            await eventually(second, timeout=15)

    asyncio.run(main())


def test_missing_claim_then_created(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            await post(conn, "sc", storage_class("later"))
            await create(conn, with_claims("waiter", "not-yet"))

            async def reported() -> bool:
                p = (await pods(conn))["waiter"]
                conds = (p.get("status") or {}).get("conditions") or []
                return any(
                    'persistentvolumeclaim "not-yet" not found' in (x.get("message") or "")
                    for x in conds
                )

            await eventually(reported, timeout=10)
            await post(conn, "pvc", claim("not-yet", "later"))

            async def bound() -> bool:
                return node_of((await pods(conn))["waiter"]) is not None

            await eventually(bound, timeout=15)

    asyncio.run(main())


@pytest.fixture(params=SERVERS)
def unprovisioned(request: pytest.FixtureRequest) -> Iterator[EmbeddedCluster]:
    """A cluster where no provisioner serves NOBODY: the embedded one without its simulated PV
    controller, or the real one (whose simulated provisioner serves only PROVISIONER)."""
    yield from clusters(request, nodes=2, zones=1, volume_controller=False)


NOBODY = "example.com/nobody"


def test_pre_bind_times_out_when_nothing_provisions(unprovisioned: EmbeddedCluster) -> None:
    async def main() -> None:
        config = {
            "profiles": [
                {
                    "schedulerName": "berth",
                    "pluginConfig": [{"name": "VolumeBinding", "args": {"bindTimeoutSeconds": 1}}],
                }
            ]
        }
        async with running(unprovisioned, config) as (runner, conn):
            await post(conn, "sc", storage_class("slow", provisioner=NOBODY))
            await post(conn, "pvc", claim("data", "slow"))
            await create(conn, with_claims("stuck", "data"))

            async def failed() -> bool:
                return any(
                    e["reason"] == "FailedScheduling"
                    and 'running PreBind plugin "VolumeBinding": binding volumes: timed out'
                    in e["note"]
                    for e in await events(conn)
                )

            await eventually(failed, timeout=15)
            assert node_of((await pods(conn))["stuck"]) is None
            # Unreserved: nothing stays assumed; the claim keeps our annotation (as upstream).
            assert not runner.engine.ports.volumes.assumed_pvcs

    asyncio.run(main())
