"""The shipped RBAC is enough, checked by enforcing it, on the embedded cluster and on the real
kube-apiserver (its RBAC authorizer): the cluster gets the RBAC of the rendered manifests
(`kubectl kustomize deploy/scheduler`, and the Helm chart's rendering) and the ServiceAccount
they bind; `berth run` connects with that account's token and the rendered configuration, with
leader election on the Lease it names, and does its whole job (binds pods, events and
PodScheduled=False for a pod that fits nowhere, preemption, a WaitForFirstConsumer claim through
VolumeBinding's PreBind, a gated pod released, a device allocated to a pod's ResourceClaim and
reserved for it) without a single authorization denial. Without
`pods/binding`, the same run leaves its pods unbound and the denial is recorded in upstream's
words."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.aio.client import CoordinationV1Api

from berth.cluster import EmbeddedCluster
from berth.cluster.rbac import RBAC_KINDS, load_documents
from berth.config import parse_config
from berth.kube.client import Connection, connect, read_json
from berth.run import Runner, RunOptions
from tests.deploy.render import helm, kustomize
from tests.live.conftest import create, events, eventually, node_of, pod, pods
from tests.live.test_dra import GROUP, claim_of, device_class, gpu_pod, node_slice, template
from tests.live.test_dra import call as api_call
from tests.live.test_preemption import priority_class
from tests.live.test_volumes import claim, get, post, storage_class, with_claims
from tests.upstream import SERVERS, UpstreamCluster, upstream_cluster

SA_TOKEN = "berth-sa-token"
ADMIN_TOKEN = "admin-token"
RENDERINGS = {"kustomize": lambda: kustomize("scheduler"), "helm": lambda: helm("scheduler")}
SA = "system:serviceaccount:kube-system:berth"  # what both renderings name


def rendered(source: str) -> list[dict[str, Any]]:
    docs = RENDERINGS[source]()
    assert service_account(docs) == SA
    return docs


def service_account(docs: list[dict[str, Any]]) -> str:
    (sa,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    return f"system:serviceaccount:{sa['metadata']['namespace']}:{sa['metadata']['name']}"


def shipped_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The rendered BerthConfiguration (leader election on kube-system/berth)."""
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    cfg: dict[str, Any] = yaml.safe_load(cm["data"]["config.yaml"])
    assert cfg["leaderElection"]["leaderElect"] is True
    return cfg


def without_binding(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out, removed = [], 0
    for d in docs:
        if d["kind"] == "ClusterRole":
            rules = [r for r in d["rules"] if r["resources"] != ["pods/binding"]]
            removed += len(d["rules"]) - len(rules)
            d = {**d, "rules": rules}
        out.append(d)
    assert removed == 1
    return out


def secured(docs: list[dict[str, Any]], account: str = SA) -> EmbeddedCluster:
    """An embedded cluster enforcing the RBAC documents among `docs`; SA_TOKEN is `account`."""
    return EmbeddedCluster(
        nodes=3,
        zones=2,
        node_cpu="4",
        node_memory="16Gi",
        token=ADMIN_TOKEN,
        rbac=load_documents(docs),
        token_users={SA_TOKEN: account},
    )


def rbac_cluster(
    request: pytest.FixtureRequest, server: str, docs: list[dict[str, Any]], account: str = SA
) -> Iterator[EmbeddedCluster | UpstreamCluster]:
    """The embedded cluster enforcing the RBAC of `docs`, or the real one (RBAC is always
    enforced there) with the ServiceAccount and the RBAC of `docs` created through its API (not
    the Deployment: nothing would run it)."""
    if server == "embedded":
        with secured(docs, account) as c:
            yield c
        return
    cluster = upstream_cluster(request, nodes=3, zones=2, cpu="4", memory="16Gi")
    for doc in docs:
        if doc["kind"] == "ServiceAccount" or doc["kind"] in RBAC_KINDS:
            cluster.session.create(doc)
    yield cluster


@pytest.fixture(params=[(source, server) for source in RENDERINGS for server in SERVERS])
def rendered_cluster(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[list[dict[str, Any]], EmbeddedCluster | UpstreamCluster]]:
    source, server = request.param
    docs = rendered(source)
    for cluster in rbac_cluster(request, server, docs):
        yield docs, cluster


@pytest.fixture(params=SERVERS)
def cluster_without_binding(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[list[dict[str, Any]], EmbeddedCluster | UpstreamCluster]]:
    docs = without_binding(rendered("kustomize"))
    for cluster in rbac_cluster(request, request.param, docs):
        yield docs, cluster


def berth_kubeconfig(
    cluster: EmbeddedCluster | UpstreamCluster, path: Path, name: str = "berth"
) -> Path:
    """A kubeconfig authenticating as the rendered manifests' ServiceAccount (kube-system/name;
    on the embedded cluster, the one `secured` was given)."""
    if isinstance(cluster, UpstreamCluster):
        return cluster.service_account_kubeconfig(namespace="kube-system", name=name, path=path)
    return cluster.kubeconfig_for(SA_TOKEN, path)


def denial_messages(cluster: EmbeddedCluster | UpstreamCluster) -> list[str]:
    return [d.message for d in cluster.denials]


def denied_subresources(cluster: EmbeddedCluster | UpstreamCluster) -> set[str]:
    if isinstance(cluster, UpstreamCluster):
        return {d.subresource for d in cluster.denials}
    return {d.attributes.subresource for d in cluster.denials}


def granted(cluster: EmbeddedCluster | UpstreamCluster) -> set[tuple[str, str, str, str]]:
    """(user, verb, API group, resource[/subresource]) of every request authorized for SA."""
    if isinstance(cluster, UpstreamCluster):
        return cluster.granted(SA)
    return cluster.call(lambda core: set(core.authorizer.granted if core.authorizer else ()))


@contextlib.asynccontextmanager
async def berth_as_service_account(
    cluster: EmbeddedCluster | UpstreamCluster, docs: list[dict[str, Any]], tmp_path: Path
) -> AsyncIterator[tuple[Runner, Connection]]:
    """`berth run` (in process) with the ServiceAccount's token and leader election on; yields
    it and an admin connection for the test's own writes."""
    kubeconfig = berth_kubeconfig(cluster, tmp_path / "berth.kubeconfig")
    conn = await connect(kubeconfig=str(kubeconfig))
    admin = await connect(kubeconfig=str(cluster.kubeconfig_path))
    cfg = {**shipped_config(docs), "podInitialBackoffSeconds": 1, "podMaxBackoffSeconds": 2}
    runner = Runner(
        config=parse_config(cfg),
        connection=conn,
        options=RunOptions(leader_elect=True, bind_address="127.0.0.1:0", seed=1, identity="t"),
    )
    task = asyncio.create_task(runner.run())
    try:
        await eventually(lambda: _leading(runner), timeout=15)
        yield runner, admin
    finally:
        runner.stop_requested.set()
        code = await asyncio.wait_for(task, timeout=20)
        await conn.close()
        await admin.close()
        assert code == 0


async def _leading(runner: Runner) -> bool:
    return runner.ready() and runner.elector is not None and runner.elector.is_leader


async def _remove_gate(conn: Connection, name: str) -> None:
    response = await conn.core.patch_namespaced_pod_without_preload_content(
        name=name, namespace="default", body=[{"op": "remove", "path": "/spec/schedulingGates"}]
    )
    answer = await read_json(response)
    assert response.status == 200, answer


def test_shipped_rbac_is_enough_for_berth_run(
    rendered_cluster: tuple[list[dict[str, Any]], EmbeddedCluster | UpstreamCluster],
    tmp_path: Path,
) -> None:
    docs, cluster = rendered_cluster

    async def main() -> None:
        async with berth_as_service_account(cluster, docs, tmp_path) as (runner, conn):
            await priority_class(conn, "low", 10)
            await priority_class(conn, "high", 1000)
            # a pod with a WaitForFirstConsumer claim: PreBind annotates the claim (patch)
            await post(conn, "sc", storage_class("wffc"))
            await post(conn, "pvc", claim("data", "wffc"))
            await create(conn, with_claims("web", "data"))
            # a pod that fits nowhere: FailedScheduling event, PodScheduled=False (status patch)
            await create(conn, pod("huge", cpu="100"))
            # a gated pod, released later
            await create(conn, pod("gated", schedulingGates=[{"name": "example.com/wait"}]))
            # a pod with a claim from a template: a device allocated and reserved (claim and
            # claim status updates, resourceclaims/binding)
            await api_call(conn, "POST", f"{GROUP}/deviceclasses", device_class())
            listed_nodes = await api_call(conn, "GET", "/api/v1/nodes")
            first_node = sorted(n["metadata"]["name"] for n in listed_nodes["items"])[0]
            await api_call(conn, "POST", f"{GROUP}/resourceslices", node_slice(first_node, 1))
            await api_call(
                conn,
                "POST",
                f"{GROUP}/namespaces/default/resourceclaimtemplates",
                template("one-gpu"),
            )
            await create(conn, gpu_pod("gpu", template_name="one-gpu"))
            # fill the nodes with low-priority pods (3 x 4 cpu)
            for i in range(6):
                await create(conn, pod(f"low-{i}", cpu="1800m", priorityClassName="low"))

            async def bound(*names: str) -> bool:
                listed = await pods(conn)
                return all(n in listed and node_of(listed[n]) for n in names)

            await eventually(
                lambda: bound("web", "gpu", *(f"low-{i}" for i in range(6))), timeout=30
            )
            gpu_claim = await api_call(
                conn,
                "GET",
                f"{GROUP}/namespaces/default/resourceclaims/{claim_of((await pods(conn))['gpu'])}",
            )
            assert gpu_claim["status"]["reservedFor"][0]["name"] == "gpu"
            pvc = await get(conn, "pvc", "data")
            assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]

            # preemption: victims deleted, the preemptor nominated (status patch), then bound
            await create(conn, pod("vip", cpu="3", priorityClassName="high"))
            await eventually(lambda: bound("vip"), timeout=30)
            listed = await pods(conn)
            assert "nominatedNodeName" not in listed["vip"]["status"]  # cleared by the binding
            assert len([n for n in (f"low-{i}" for i in range(6)) if n not in listed]) >= 1
            assert runner.scheduler.evictor is not None and runner.scheduler.evictor.evicted >= 1

            await _remove_gate(conn, "gated")
            await eventually(lambda: bound("gated"), timeout=20)

            async def huge_reported() -> bool:
                p = (await pods(conn))["huge"]
                conds = {c["type"]: c for c in p["status"].get("conditions") or []}
                evs = await events(conn)
                return conds.get("PodScheduled", {}).get("status") == "False" and any(
                    e["reason"] == "FailedScheduling" and e["regarding"]["name"] == "huge"
                    for e in evs
                )

            await eventually(huge_reported, timeout=20)
            reasons = {e["reason"] for e in await events(conn)}
            assert {"Scheduled", "FailedScheduling", "Preempted"} <= reasons

            response = await CoordinationV1Api(
                conn.api
            ).read_namespaced_lease_without_preload_content(name="berth", namespace="kube-system")
            lease = await read_json(response)
            assert lease["spec"]["holderIdentity"] == "t"

    asyncio.run(main())
    assert denial_messages(cluster) == []
    assert cluster.requests_by(SA) > 20  # every call Berth made was authorized as the account
    # ... and the run did exercise every write the manifest grants for its job
    assert {
        (SA, "create", "", "pods/binding"),
        (SA, "patch", "", "pods/status"),
        (SA, "delete", "", "pods"),
        (SA, "create", "events.k8s.io", "events"),
        (SA, "patch", "", "persistentvolumeclaims"),
        (SA, "create", "coordination.k8s.io", "leases"),
        (SA, "get", "coordination.k8s.io", "leases"),
        (SA, "update", "coordination.k8s.io", "leases"),
        (SA, "watch", "", "pods"),
        (SA, "update", "resource.k8s.io", "resourceclaims"),
        (SA, "update", "resource.k8s.io", "resourceclaims/status"),
        (SA, "watch", "resource.k8s.io", "resourceslices"),
    } <= granted(cluster)


def test_a_missing_permission_is_denied_and_reported(
    cluster_without_binding: tuple[list[dict[str, Any]], EmbeddedCluster | UpstreamCluster],
    tmp_path: Path,
) -> None:
    docs, cluster = cluster_without_binding

    async def main() -> None:
        async with berth_as_service_account(cluster, docs, tmp_path) as (_, conn):
            await create(conn, pod("p"))

            async def denied() -> bool:
                return "binding" in denied_subresources(cluster)

            await eventually(denied, timeout=20)
            assert node_of((await pods(conn))["p"]) is None

    asyncio.run(main())
    assert set(denial_messages(cluster)) == {
        f'pods "p" is forbidden: User "{SA}" cannot create resource "pods/binding" in API '
        'group "" in the namespace "default"'
    }
