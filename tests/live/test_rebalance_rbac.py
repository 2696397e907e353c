"""The rebalancer's shipped RBAC (deploy/rebalance, and the Helm chart's rebalance.enabled) is
enough, checked by enforcing exactly that on the embedded cluster and on the real
kube-apiserver (its RBAC authorizer): `berth rebalance --apply --loop` (leader elected, on the
Lease the rendered configuration names) connects as the manifests' own ServiceAccount, evicts
the pod of a hot node through the Eviction API and records its event, without a single
authorization denial."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.cluster import EmbeddedCluster
from berth.cluster.rbac import RBAC_KINDS
from berth.config import parse_config
from berth.kube.client import connect
from berth.rebalance.runner import Pass, RebalanceOptions, Rebalancer
from tests.deploy.render import helm, kustomize
from tests.live.conftest import create, events, eventually, pods
from tests.live.test_rbac import berth_kubeconfig, denial_messages, rbac_cluster
from tests.live.test_rebalance import (
    NodeLister,
    annotation_config,
    make_owner,
    managed,
    set_load,
)
from tests.upstream import SERVERS, UpstreamCluster

ACCOUNT = "berth-rebalance"
RENDERINGS = {"kustomize": lambda: kustomize("rebalance"), "helm": lambda: helm("rebalance")}


def rebalancer_part(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rebalancer's objects of a rendering, and the shared read role it is bound to."""
    return [
        d
        for d in docs
        if "-rebalance" in d["metadata"]["name"]
        or (d["kind"], d["metadata"]["name"]) == ("ClusterRole", "berth-read")
    ]


@pytest.fixture(
    params=[(source, server) for source in RENDERINGS for server in SERVERS],
    ids=lambda p: "-".join(p),
)
def secured(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[dict[str, Any], EmbeddedCluster | UpstreamCluster]]:
    source, server = request.param
    docs = rebalancer_part(RENDERINGS[source]())
    (sa,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert sa["metadata"]["name"] == ACCOUNT
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    lease = yaml.safe_load(cm["data"]["config.yaml"])["rebalance"]["leaderElection"]
    rbac = [d for d in docs if d["kind"] == "ServiceAccount" or d["kind"] in RBAC_KINDS]
    account = f"system:serviceaccount:kube-system:{ACCOUNT}"
    for cluster in rbac_cluster(request, server, rbac, account):
        yield lease, cluster


def test_the_shipped_rbac_is_enough_for_rebalance(
    secured: tuple[dict[str, Any], EmbeddedCluster | UpstreamCluster], tmp_path: Path
) -> None:
    lease, cluster = secured
    cfg = annotation_config(
        {
            "metrics": [{"metric": "cpu", "high": 80}],
            "consecutiveSamples": 2,
            "interval": "300ms",
            "leaderElection": lease,
        }
    )

    async def main() -> None:
        admin = await connect(kubeconfig=str(cluster.kubeconfig_path))
        kubeconfig = berth_kubeconfig(cluster, tmp_path / "sa.kubeconfig", ACCOUNT)
        sa = await connect(kubeconfig=str(kubeconfig))
        try:
            names = sorted(n["metadata"]["name"] for n in NodeLister(cluster.kubeconfig_path)())
            hot, *others = names
            await set_load(admin, {hot: 95, **{n: 20 for n in others}})
            owner = await make_owner(admin)
            await create(admin, managed("w", "web", owner, nodeName=hot))
            passes: list[Pass] = []
            rebalancer = Rebalancer(
                config=parse_config(cfg),
                connection=sa,
                options=RebalanceOptions(dry_run=False, loop=True, report=passes.append),
            )
            task = asyncio.create_task(rebalancer.run())
            try:

                async def evicted() -> bool:
                    return "w" not in await pods(admin)

                await eventually(evicted, timeout=60, every=0.2)

                async def recorded() -> bool:
                    return any(e.get("reason") == "Rebalanced" for e in await events(admin))

                await eventually(recorded, timeout=20)
            finally:
                rebalancer.stop_requested.set()
                assert await asyncio.wait_for(task, timeout=20) == 0
            results = [o.result for p in passes for o in p.outcomes]
            assert results == ["evicted"], results
            assert denial_messages(cluster) == []
        finally:
            await sa.close()
            await admin.close()

    asyncio.run(main())
