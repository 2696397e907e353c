"""The shipped RBAC is enough, checked by enforcing it: the embedded cluster loads the RBAC of
the rendered manifests (`kubectl kustomize deploy/scheduler`, and the Helm chart's rendering)
and authorizes the ServiceAccount they bind; `berth run` connects with that account's token and
the rendered configuration, with leader election on the Lease it names, and does its whole job
(binds pods, events and PodScheduled=False for a pod that fits nowhere, preemption, a
WaitForFirstConsumer claim through VolumeBinding's PreBind, a gated pod released) without a
single authorization denial. Without `pods/binding`, the same run leaves its pods unbound and the
denial is recorded in upstream's words."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.aio.client import CoordinationV1Api

from berth.cluster import EmbeddedCluster
from berth.cluster.rbac import load_documents
from berth.config import parse_config
from berth.kube.client import Connection, connect, read_json
from berth.run import Runner, RunOptions
from tests.deploy.render import helm, kustomize
from tests.live.conftest import create, events, eventually, node_of, pod, pods
from tests.live.test_preemption import priority_class
from tests.live.test_volumes import claim, get, post, storage_class, with_claims

SA_TOKEN = "berth-sa-token"
ADMIN_TOKEN = "admin-token"
RENDERINGS = {"kustomize": lambda: kustomize("scheduler"), "helm": lambda: helm("scheduler")}


def rendered(source: str) -> list[dict[str, Any]]:
    return RENDERINGS[source]()


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


def secured(docs: list[dict[str, Any]]) -> EmbeddedCluster:
    """An embedded cluster enforcing the RBAC documents among `docs`."""
    return EmbeddedCluster(
        nodes=3,
        zones=2,
        node_cpu="4",
        node_memory="16Gi",
        token=ADMIN_TOKEN,
        rbac=load_documents(docs),
        token_users={SA_TOKEN: service_account(docs)},
    )


@contextlib.asynccontextmanager
async def berth_as_service_account(
    cluster: EmbeddedCluster, docs: list[dict[str, Any]], tmp_path: Path
) -> AsyncIterator[tuple[Runner, Connection]]:
    """`berth run` (in process) with the ServiceAccount's token and leader election on; yields
    it and an admin connection for the test's own writes."""
    kubeconfig = cluster.kubeconfig_for(SA_TOKEN, tmp_path / "berth.kubeconfig")
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


@pytest.mark.parametrize("source", list(RENDERINGS))
def test_shipped_rbac_is_enough_for_berth_run(source: str, tmp_path: Path) -> None:
    docs = rendered(source)
    sa = service_account(docs)
    with secured(docs) as cluster:
        _whole_job(cluster, docs, tmp_path)
        denials = cluster.denials
        assert denials == [], [d.message for d in denials]
        assert cluster.requests_by(sa) > 20  # every call Berth made was authorized as the account
        # ... and the run did exercise every write the manifest grants for its job
        granted = cluster.call(lambda core: set(core.authorizer.granted if core.authorizer else ()))
        assert {
            (sa, "create", "", "pods/binding"),
            (sa, "patch", "", "pods/status"),
            (sa, "delete", "", "pods"),
            (sa, "create", "events.k8s.io", "events"),
            (sa, "patch", "", "persistentvolumeclaims"),
            (sa, "create", "coordination.k8s.io", "leases"),
            (sa, "get", "coordination.k8s.io", "leases"),
            (sa, "update", "coordination.k8s.io", "leases"),
            (sa, "watch", "", "pods"),
        } <= granted


def _whole_job(cluster: EmbeddedCluster, docs: list[dict[str, Any]], tmp_path: Path) -> None:
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
            # fill the nodes with low-priority pods (3 x 4 cpu)
            for i in range(6):
                await create(conn, pod(f"low-{i}", cpu="1800m", priorityClassName="low"))

            async def bound(*names: str) -> bool:
                listed = await pods(conn)
                return all(n in listed and node_of(listed[n]) for n in names)

            await eventually(lambda: bound("web", *(f"low-{i}" for i in range(6))), timeout=20)
            pvc = await get(conn, "pvc", "data")
            assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]

            # preemption: victims deleted, the preemptor nominated (status patch), then bound
            await create(conn, pod("vip", cpu="3", priorityClassName="high"))
            await eventually(lambda: bound("vip"), timeout=30)
            listed = await pods(conn)
            assert listed["vip"]["status"]["nominatedNodeName"] == node_of(listed["vip"])
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


def test_a_missing_permission_is_denied_and_reported(tmp_path: Path) -> None:
    docs = without_binding(rendered("kustomize"))
    sa = service_account(docs)
    with secured(docs) as cluster:

        async def main() -> None:
            async with berth_as_service_account(cluster, docs, tmp_path) as (_, conn):
                await create(conn, pod("p"))

                async def denied() -> bool:
                    return any(d.attributes.subresource == "binding" for d in cluster.denials)

                await eventually(denied, timeout=20)
                assert node_of((await pods(conn))["p"]) is None

        asyncio.run(main())
        messages = {d.message for d in cluster.denials}
        assert messages == {
            f'pods "p" is forbidden: User "{sa}" cannot create resource "pods/binding" in API '
            'group "" in the namespace "default"'
        }
