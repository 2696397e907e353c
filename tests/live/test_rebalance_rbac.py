"""The rebalancer's RBAC, as docs/explain-capacity-rebalance.md gives it beside deploy/base's
reads, is enough, checked by enforcing exactly that on the embedded cluster and on the real
kube-apiserver (its RBAC authorizer): `berth rebalance --apply --loop` (leader elected, on the
Lease the manifest names) connects as the ServiceAccount, evicts the pod of a hot node through
the Eviction API and records its event, without a single authorization denial."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from berth.cluster import EmbeddedCluster
from berth.config import parse_config
from berth.kube.client import connect
from berth.rebalance.runner import Pass, RebalanceOptions, Rebalancer
from tests.deploy.render import kustomize
from tests.docs.test_walkthroughs import ROOT
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

PAGE = ROOT / "docs" / "explain-capacity-rebalance.md"


def documented_rbac() -> list[dict[str, Any]]:
    text = PAGE.read_text()
    text = text[text.index("What it needs from the API server") :]
    (block,) = re.findall(r"```yaml\n(.*?)```", text[: text.index("### Compared")], re.S)
    return [d for d in yaml.safe_load_all(block) if d]


@pytest.fixture(params=SERVERS)
def secured(request: pytest.FixtureRequest) -> Iterator[EmbeddedCluster | UpstreamCluster]:
    docs = kustomize("base") + documented_rbac()
    assert {d["kind"] for d in documented_rbac()} == {
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    }
    yield from rbac_cluster(request, request.param, docs)


def test_the_documented_rbac_is_enough_for_rebalance(
    secured: EmbeddedCluster | UpstreamCluster, tmp_path: Path
) -> None:
    cfg = annotation_config(
        {"metrics": [{"metric": "cpu", "high": 80}], "consecutiveSamples": 2, "interval": "300ms"}
    )

    async def main() -> None:
        admin = await connect(kubeconfig=str(secured.kubeconfig_path))
        sa = await connect(kubeconfig=str(berth_kubeconfig(secured, tmp_path / "sa.kubeconfig")))
        try:
            names = sorted(n["metadata"]["name"] for n in NodeLister(secured.kubeconfig_path)())
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
            assert denial_messages(secured) == []
        finally:
            await sa.close()
            await admin.close()

    asyncio.run(main())
