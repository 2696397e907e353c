"""Dynamic Resource Allocation end to end, on the embedded cluster and on the real control plane:
`berth run` places pods whose ResourceClaims come from templates (created by the embedded
cluster's claim controller, or by kube-controller-manager's resourceclaim controller) on nodes
with node-local ResourceSlices, writes the allocation and the reservation through the API (which
kube-apiserver validates), holds a pod whose claim does not exist yet at the gate, and leaves a
pod asking for a device no node has pending with upstream's message."""

from __future__ import annotations

import asyncio
from typing import Any

from berth.cluster import EmbeddedCluster
from berth.kube.client import Connection, read_json
from tests.live.conftest import events, eventually, node_of, pod, pods, running

DRIVER = "gpu.example.com"
GROUP = "/apis/resource.k8s.io/v1"
POD_CLAIM_ANNOTATION = "resource.kubernetes.io/pod-claim-name"
FINALIZER = "resource.kubernetes.io/delete-protection"


async def call(conn: Connection, method: str, path: str, body: Any = None) -> Any:
    response = await conn.request(method, path, body)
    answer = await read_json(response)
    assert response.status in (200, 201), (method, path, response.status, answer)
    return answer


def device_class(name: str = DRIVER) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": name},
        "spec": {"selectors": [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]},
    }


def node_slice(node: str, devices: int, model: str = "a100") -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-gpus"},
        "spec": {
            "driver": DRIVER,
            "nodeName": node,
            "pool": {"name": node, "generation": 0, "resourceSliceCount": 1},
            "devices": [
                {
                    "name": f"gpu-{i}",
                    "attributes": {"model": {"string": model}, "index": {"int": i}},
                    "capacity": {"memory": {"value": "40Gi"}},
                }
                for i in range(devices)
            ],
        },
    }


def requests(selector: str | None = None, count: int = 1) -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": DRIVER, "count": count}
    if selector:
        exactly["selectors"] = [{"cel": {"expression": selector}}]
    return {"devices": {"requests": [{"name": "gpu", "exactly": exactly}]}}


def template(name: str, selector: str | None = None, count: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"spec": requests(selector, count)},
    }


def claim(name: str, selector: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": name},
        "spec": requests(selector),
    }


def gpu_pod(name: str, *, template_name: str = "", claim_name: str = "") -> dict[str, Any]:
    source = (
        {"resourceClaimTemplateName": template_name}
        if template_name
        else {"resourceClaimName": claim_name}
    )
    body = pod(name, resourceClaims=[{"name": "gpu", **source}])
    body["spec"]["containers"][0]["resources"]["claims"] = [{"name": "gpu"}]
    return body


async def setup(conn: Connection, nodes: list[str], per_node: int) -> None:
    await call(conn, "POST", f"{GROUP}/deviceclasses", device_class())
    for node in nodes:
        await call(conn, "POST", f"{GROUP}/resourceslices", node_slice(node, per_node))


async def node_names(conn: Connection) -> list[str]:
    listed = await call(conn, "GET", "/api/v1/nodes")
    return sorted(n["metadata"]["name"] for n in listed["items"])


async def create_pod(conn: Connection, body: dict[str, Any]) -> None:
    await call(conn, "POST", "/api/v1/namespaces/default/pods", body)


async def claims(conn: Connection) -> dict[str, dict[str, Any]]:
    listed = await call(conn, "GET", f"{GROUP}/namespaces/default/resourceclaims")
    return {c["metadata"]["name"]: c for c in listed["items"]}


def claim_of(p: dict[str, Any]) -> str | None:
    for status in (p.get("status") or {}).get("resourceClaimStatuses") or ():
        if status.get("name") == "gpu":
            return str(status.get("resourceClaimName") or "") or None
    return None


def allocated_devices(c: dict[str, Any]) -> list[tuple[str, str, str]]:
    allocation = (c.get("status") or {}).get("allocation") or {}
    return [
        (r["driver"], r["pool"], r["device"])
        for r in (allocation.get("devices") or {}).get("results") or ()
    ]


def test_pods_with_claim_templates_get_devices_on_their_node(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            nodes = await node_names(conn)
            await setup(conn, nodes, per_node=2)
            await call(
                conn,
                "POST",
                f"{GROUP}/namespaces/default/resourceclaimtemplates",
                template("one-gpu"),
            )
            names = [f"gpu-{i}" for i in range(5)]
            for name in names:
                await create_pod(conn, gpu_pod(name, template_name="one-gpu"))

            async def all_bound() -> bool:
                listed = await pods(conn)
                return all(node_of(listed.get(n, {})) for n in names)

            await eventually(all_bound, timeout=30)
            listed, by_name = await pods(conn), await claims(conn)
            seen: set[tuple[str, str, str]] = set()
            for name in names:
                p = listed[name]
                claim_name = claim_of(p)
                assert claim_name is not None and claim_name.startswith(f"{name}-gpu-"), p
                c = by_name[claim_name]
                meta = c["metadata"]
                # made by the claim controller from the template, owned by the pod
                assert meta["annotations"][POD_CLAIM_ANNOTATION] == "gpu"
                (owner,) = meta["ownerReferences"]
                assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
                    "Pod",
                    name,
                    p["metadata"]["uid"],
                    True,
                )
                # allocated and reserved by Berth, on the pod's node, never twice
                assert FINALIZER in meta["finalizers"]
                status = c["status"]
                assert [r["uid"] for r in status["reservedFor"]] == [p["metadata"]["uid"]]
                devices = allocated_devices(c)
                assert len(devices) == 1 and devices[0][1] == node_of(p)
                assert not seen & set(devices)
                seen |= set(devices)
                selector = status["allocation"]["nodeSelector"]["nodeSelectorTerms"][0]
                assert selector["matchFields"][0]["values"] == [node_of(p)]
                assert status["allocation"]["allocationTimestamp"]

    asyncio.run(main())


def test_a_device_no_node_has_leaves_the_pod_pending(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            await setup(conn, await node_names(conn), per_node=1)
            h100 = f'device.attributes["{DRIVER}"].model == "h100"'
            await call(
                conn,
                "POST",
                f"{GROUP}/namespaces/default/resourceclaimtemplates",
                template("h100", h100),
            )
            await create_pod(conn, gpu_pod("wants-h100", template_name="h100"))
            message = (
                "0/3 nodes are available: 3 cannot allocate all claims. preemption: 0/3 nodes "
                "are available: 3 Preemption is not helpful for scheduling."
            )

            async def reported() -> bool:
                p = (await pods(conn))["wants-h100"]
                conds = {c["type"]: c for c in p["status"].get("conditions") or ()}
                return conds.get("PodScheduled", {}).get("message") == message

            await eventually(reported, timeout=30)
            p = (await pods(conn))["wants-h100"]
            assert node_of(p) is None
            c = (await claims(conn))[str(claim_of(p))]
            assert "allocation" not in (c.get("status") or {})
            notes = [
                e["note"]
                for e in await events(conn)
                if e["reason"] == "FailedScheduling" and e["regarding"]["name"] == "wants-h100"
            ]
            assert notes and set(notes) == {message}

    asyncio.run(main())


def test_a_pod_is_held_until_its_claim_exists_then_shares_it(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (runner, conn):
            await setup(conn, await node_names(conn), per_node=1)
            await create_pod(conn, gpu_pod("first", claim_name="shared"))
            await create_pod(conn, gpu_pod("second", claim_name="shared"))

            async def gated() -> bool:
                return runner.queue.counts()["gated"] == 2

            await eventually(gated, timeout=15)
            listed = await pods(conn)
            assert node_of(listed["first"]) is None and node_of(listed["second"]) is None
            # held at PreEnqueue: never tried, so no FailedScheduling event
            assert not [e for e in await events(conn) if e["reason"] == "FailedScheduling"]

            await call(conn, "POST", f"{GROUP}/namespaces/default/resourceclaims", claim("shared"))

            async def both_bound() -> bool:
                listed = await pods(conn)
                return bool(node_of(listed["first"]) and node_of(listed["second"]))

            await eventually(both_bound, timeout=30)
            listed = await pods(conn)
            # one allocation, on one node, reserved for both pods
            assert node_of(listed["first"]) == node_of(listed["second"])
            c = (await claims(conn))["shared"]
            assert {r["uid"] for r in c["status"]["reservedFor"]} == {
                listed["first"]["metadata"]["uid"],
                listed["second"]["metadata"]["uid"],
            }
            assert [d[1] for d in allocated_devices(c)] == [node_of(listed["first"])]

    asyncio.run(main())


def test_a_deleted_pods_devices_go_to_the_next_pod(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            nodes = await node_names(conn)
            await call(conn, "POST", f"{GROUP}/deviceclasses", device_class())
            await call(conn, "POST", f"{GROUP}/resourceslices", node_slice(nodes[0], 1))
            await call(
                conn,
                "POST",
                f"{GROUP}/namespaces/default/resourceclaimtemplates",
                template("one-gpu"),
            )
            await create_pod(conn, gpu_pod("holder", template_name="one-gpu"))

            async def bound(name: str) -> bool:
                return node_of((await pods(conn)).get(name, {})) == nodes[0]

            await eventually(lambda: bound("holder"), timeout=30)
            await create_pod(conn, gpu_pod("waiter", template_name="one-gpu"))

            async def waiter_refused() -> bool:
                p = (await pods(conn))["waiter"]
                conds = {c["type"]: c for c in p["status"].get("conditions") or ()}
                return conds.get("PodScheduled", {}).get("status") == "False"

            await eventually(waiter_refused, timeout=30)
            held = claim_of((await pods(conn))["holder"])
            await call(
                conn,
                "DELETE",
                "/api/v1/namespaces/default/pods/holder",
                {"gracePeriodSeconds": 0},
            )
            # its generated claim goes away (deallocated, deleted), the device is free again
            await eventually(lambda: bound("waiter"), timeout=60)

            async def holder_claim_gone() -> bool:
                return held not in await claims(conn)

            await eventually(holder_claim_gone, timeout=60)

    asyncio.run(main())


# Binding conditions (upstream dynamicresources_test.go "bind-claim-with-binding-conditions",
# "bound-claim-with-failed-binding", "prebind-fail-with-binding-timeout"): a device that needs
# its driver to prepare it (say, attach it over a fabric) before the pod may bind. The test
# plays the driver, writing the device's conditions into the claim's status.devices.
ATTACHED, ATTACH_FAILED = "attached", "attach-failed"


def fabric_slice(node: str) -> dict[str, Any]:
    body = node_slice(node, 1)
    body["spec"]["devices"][0]["bindingConditions"] = [ATTACHED]
    body["spec"]["devices"][0]["bindingFailureConditions"] = [ATTACH_FAILED]
    return body


async def fabric_pod(conn: Connection) -> str:
    """One node with one such device, a pod claiming it; the pod's node."""
    nodes = await node_names(conn)
    await call(conn, "POST", f"{GROUP}/deviceclasses", device_class())
    await call(conn, "POST", f"{GROUP}/resourceslices", fabric_slice(nodes[0]))
    await call(
        conn, "POST", f"{GROUP}/namespaces/default/resourceclaimtemplates", template("fabric")
    )
    await create_pod(conn, gpu_pod("attached", template_name="fabric"))
    return nodes[0]


async def allocated_claim(conn: Connection) -> dict[str, Any]:
    """The pod's claim once Berth allocated and reserved it (PreBind is then waiting)."""
    found: dict[str, Any] = {}

    async def reserved() -> bool:
        name = claim_of((await pods(conn))["attached"])
        c = (await claims(conn)).get(str(name)) or {}
        found.update(c)
        return bool((c.get("status") or {}).get("reservedFor"))

    await eventually(reserved, timeout=30)
    return found


async def set_device_condition(
    conn: Connection, claim_name: str, node: str, kind: str, reason: str
) -> None:
    path = f"{GROUP}/namespaces/default/resourceclaims/{claim_name}"
    c = await call(conn, "GET", path)
    condition = {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": f"{kind} by the test",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    c["status"]["devices"] = [
        {"driver": DRIVER, "pool": node, "device": "gpu-0", "conditions": [condition]}
    ]
    await call(conn, "PUT", f"{path}/status", c)


def binding_failures(notes: list[str]) -> list[str]:
    return [n for n in notes if "device binding" in n]


async def failed_notes(conn: Connection) -> list[str]:
    return [
        e["note"]
        for e in await events(conn)
        if e["reason"] == "FailedScheduling" and e["regarding"]["name"] == "attached"
    ]


def test_a_pod_binds_once_its_devices_binding_conditions_are_true(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            node = await fabric_pod(conn)
            c = await allocated_claim(conn)
            (result,) = c["status"]["allocation"]["devices"]["results"]
            assert result["bindingConditions"] == [ATTACHED]
            assert result["bindingFailureConditions"] == [ATTACH_FAILED]
            # PreBind waits for the driver: allocated and reserved, the pod not bound yet
            await asyncio.sleep(2)
            assert node_of((await pods(conn))["attached"]) is None
            await set_device_condition(conn, c["metadata"]["name"], node, ATTACHED, "Attached")

            async def bound() -> bool:
                return node_of((await pods(conn))["attached"]) == node

            await eventually(bound, timeout=30)
            assert not binding_failures(await failed_notes(conn))
            # upstream's event while PreBind waited (a Normal event, action Scheduling)
            waited = [
                (e["type"], e["action"], e["note"])
                for e in await events(conn)
                if e["reason"] == "BindingConditionsPending"
            ]
            assert waited == [
                (
                    "Normal",
                    "Scheduling",
                    f"waiting for binding conditions for device on node {node}",
                )
            ]

    asyncio.run(main())


def test_a_failed_binding_condition_fails_prebind_and_the_claim_is_deallocated(
    cluster: EmbeddedCluster,
) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            node = await fabric_pod(conn)
            c = await allocated_claim(conn)
            name = c["metadata"]["name"]
            await set_device_condition(conn, name, node, ATTACH_FAILED, "FabricDown")
            wanted = (
                f'device binding failed: claim={name}, reason=FabricDown, message="'
                f'{ATTACH_FAILED} by the test"'
            )

            async def reported() -> bool:
                return any(wanted in n for n in await failed_notes(conn))

            await eventually(reported, timeout=40)

            # the next attempt finds the claim unusable, PostFilter deallocates it (devices'
            # status too), and it is allocated afresh: no failure recorded on it any more
            async def recovered() -> bool:
                status = (await claims(conn)).get(name, {}).get("status") or {}
                return "devices" not in status

            await eventually(recovered, timeout=40)
            assert node_of((await pods(conn))["attached"]) is None

    asyncio.run(main())


def test_binding_conditions_not_met_within_binding_timeout_fail_prebind(
    cluster: EmbeddedCluster,
) -> None:
    config = {
        "profiles": [
            {
                "schedulerName": "berth",
                "pluginConfig": [{"name": "DynamicResources", "args": {"bindingTimeout": "1s"}}],
            }
        ]
    }

    async def main() -> None:
        async with running(cluster, config) as (_, conn):
            await fabric_pod(conn)
            await allocated_claim(conn)

            async def timed_out() -> bool:
                return any("device binding timeout" in n for n in await failed_notes(conn))

            await eventually(timed_out, timeout=30)
            assert node_of((await pods(conn))["attached"]) is None

    asyncio.run(main())


def test_a_device_taint_rule_holds_a_pod_until_it_is_deleted(cluster: EmbeddedCluster) -> None:
    async def main() -> None:
        async with running(cluster) as (_, conn):
            nodes = await node_names(conn)
            await call(conn, "POST", f"{GROUP}/deviceclasses", device_class())
            await call(conn, "POST", f"{GROUP}/resourceslices", node_slice(nodes[0], 1))
            rule = {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "DeviceTaintRule",
                "metadata": {"name": "fan-failure"},
                "spec": {
                    "deviceSelector": {"driver": DRIVER, "pool": nodes[0], "device": "gpu-0"},
                    "taint": {"key": "example.com/fault", "value": "fan", "effect": "NoSchedule"},
                },
            }
            await call(conn, "POST", f"{GROUP}/devicetaintrules", rule)
            await call(
                conn,
                "POST",
                f"{GROUP}/namespaces/default/resourceclaimtemplates",
                template("one-gpu"),
            )
            await create_pod(conn, gpu_pod("tainted", template_name="one-gpu"))

            async def refused() -> bool:
                p = (await pods(conn))["tainted"]
                conds = {c["type"]: c for c in p["status"].get("conditions") or ()}
                return "cannot allocate all claims" in conds.get("PodScheduled", {}).get(
                    "message", ""
                )

            await eventually(refused, timeout=30)
            # the rule's deletion is a DeviceTaintRule event: the pod goes back to the queue
            await call(conn, "DELETE", f"{GROUP}/devicetaintrules/fan-failure")

            async def bound() -> bool:
                return node_of((await pods(conn))["tainted"]) == nodes[0]

            await eventually(bound, timeout=40)

    asyncio.run(main())


EXTENDED = "example.com/gpu"
EXTENDED_CLAIM_ANNOTATION = "resource.kubernetes.io/extended-resource-claim"


def test_extended_resources_backed_by_a_device_class_get_devices(
    cluster: EmbeddedCluster,
) -> None:
    """A container asking for `example.com/gpu` on nodes that do not advertise it: a
    DeviceClass naming it in extendedResourceName serves it; PreBind creates the pod's special
    claim (generated name, annotation, the pod its controller), allocates and reserves it, and
    writes status.extendedResourceClaimStatus, all validated by the API server."""

    async def main() -> None:
        async with running(cluster) as (_, conn):
            nodes = await node_names(conn)
            cls = device_class()
            cls["spec"]["extendedResourceName"] = EXTENDED
            await call(conn, "POST", f"{GROUP}/deviceclasses", cls)
            for node in nodes:
                await call(conn, "POST", f"{GROUP}/resourceslices", node_slice(node, 1))
            names = [f"ext-{i}" for i in range(len(nodes))]
            for name in names:
                body = pod(name)
                body["spec"]["containers"][0]["resources"] = {
                    "requests": {"cpu": "100m", EXTENDED: "1"},
                    "limits": {EXTENDED: "1"},
                }
                await create_pod(conn, body)

            async def all_bound() -> bool:
                listed = await pods(conn)
                return all(node_of(listed.get(n, {})) for n in names)

            await eventually(all_bound, timeout=30)

            async def statuses_written() -> bool:
                listed = await pods(conn)
                return all("extendedResourceClaimStatus" in listed[n]["status"] for n in names)

            await eventually(statuses_written, timeout=10)
            listed, by_name = await pods(conn), await claims(conn)
            seen: set[tuple[str, str, str]] = set()
            for name in names:
                p = listed[name]
                ext = p["status"]["extendedResourceClaimStatus"]
                assert ext["requestMappings"] == [
                    {
                        "containerName": "c",
                        "resourceName": EXTENDED,
                        # the index of the name among the container's sorted requests
                        "requestName": "container-0-request-1",
                    }
                ]
                c = by_name[ext["resourceClaimName"]]
                meta = c["metadata"]
                assert meta["name"].startswith(f"{name}-extended-resources-")
                assert meta["annotations"][EXTENDED_CLAIM_ANNOTATION] == "true"
                (owner,) = meta["ownerReferences"]
                assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
                    "Pod",
                    name,
                    p["metadata"]["uid"],
                    True,
                )
                assert FINALIZER in meta["finalizers"]
                (request,) = c["spec"]["devices"]["requests"]
                assert request["name"] == "container-0-request-1"
                assert request["exactly"]["deviceClassName"] == DRIVER
                assert [r["uid"] for r in c["status"]["reservedFor"]] == [p["metadata"]["uid"]]
                devices = allocated_devices(c)
                assert len(devices) == 1 and devices[0][1] == node_of(p)
                assert not seen & set(devices)
                seen |= set(devices)

            # the claim goes with its pod (owned by it: deallocated and deleted)
            first = listed[names[0]]["status"]["extendedResourceClaimStatus"]
            await call(
                conn, "DELETE", f"/api/v1/namespaces/default/pods/{names[0]}?gracePeriodSeconds=0"
            )

            async def claim_deleted() -> bool:
                return first["resourceClaimName"] not in await claims(conn)

            await eventually(claim_deleted, timeout=60)

    asyncio.run(main())


def shared_slice(node: str) -> dict[str, Any]:
    """One device shared by claims: 40Gi of memory, taken in steps of 10Gi."""
    policy = {"default": "10Gi", "validRange": {"min": "10Gi", "step": "10Gi"}}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-shared"},
        "spec": {
            "driver": DRIVER,
            "nodeName": node,
            "pool": {"name": node, "generation": 0, "resourceSliceCount": 1},
            "devices": [
                {
                    "name": "gpu-0",
                    "allowMultipleAllocations": True,
                    "capacity": {"memory": {"value": "40Gi", "requestPolicy": policy}},
                }
            ],
        },
    }


def test_pods_share_a_device_while_its_capacity_lasts(cluster: EmbeddedCluster) -> None:
    """Consumable capacity: claims asking for 15Gi of a shared 40Gi device each consume 20Gi
    (its 10Gi steps), so two pods share it and the third stays Pending; each share is written
    with its own share ID and consumed capacity."""

    async def main() -> None:
        async with running(cluster) as (_, conn):
            node = (await node_names(conn))[0]
            await call(conn, "POST", f"{GROUP}/deviceclasses", device_class())
            await call(conn, "POST", f"{GROUP}/resourceslices", shared_slice(node))
            body = template("part")
            body["spec"]["spec"]["devices"]["requests"][0]["exactly"]["capacity"] = {
                "requests": {"memory": "15Gi"}
            }
            await call(conn, "POST", f"{GROUP}/namespaces/default/resourceclaimtemplates", body)
            for name in ("share-0", "share-1"):
                await create_pod(conn, gpu_pod(name, template_name="part"))

            async def both_bound() -> bool:
                listed = await pods(conn)
                return all(node_of(listed.get(n, {})) for n in ("share-0", "share-1"))

            await eventually(both_bound, timeout=30)
            await create_pod(conn, gpu_pod("share-2", template_name="part"))
            message = (
                "0/3 nodes are available: 3 cannot allocate all claims. preemption: 0/3 nodes "
                "are available: 3 Preemption is not helpful for scheduling."
            )

            async def reported() -> bool:
                p = (await pods(conn))["share-2"]
                conds = {c["type"]: c for c in p["status"].get("conditions") or ()}
                return conds.get("PodScheduled", {}).get("message") == message

            await eventually(reported, timeout=30)
            listed, by_name = await pods(conn), await claims(conn)
            share_ids = set()
            for name in ("share-0", "share-1"):
                assert node_of(listed[name]) == node
                (result,) = by_name[str(claim_of(listed[name]))]["status"]["allocation"]["devices"][
                    "results"
                ]
                assert (result["pool"], result["device"]) == (node, "gpu-0")
                assert result["consumedCapacity"] == {"memory": "20Gi"}
                share_ids.add(result["shareID"])
            assert len(share_ids) == 2
            assert node_of(listed["share-2"]) is None

    asyncio.run(main())
