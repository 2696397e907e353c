"""Metric sources wired into every front: `berth simulate`, `berth run` and the
`berth cluster --metrics-port` exporter."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from click.testing import CliRunner

from berth.cli import main
from berth.cluster import EmbeddedCluster
from berth.kube.client import raw_body, read_json
from tests.builders import node, pod
from tests.live.conftest import create, eventually, node_of, pods, running
from tests.upstream import SERVERS, clusters

ROOT = Path(__file__).resolve().parents[2]
PRICE_CONFIG = yaml.safe_load((ROOT / "examples" / "metrics-price.yaml").read_text())


def priced(name: str, price: str) -> dict[str, Any]:
    n = node(name)
    n["metadata"]["annotations"] = {"sim.berth.io/price": price}
    return n


def test_simulate_places_pods_on_the_cheapest_node(tmp_path: Path) -> None:
    cfg = tmp_path / "price.yaml"
    cfg.write_text(yaml.safe_dump(PRICE_CONFIG))
    dump = yaml.safe_dump(
        {
            "kind": "List",
            "items": [
                priced("dear", "0.9"),
                priced("cheap", "0.1"),
                priced("middle", "0.5"),
                pod("p"),
            ],
        }
    )
    result = CliRunner().invoke(
        main, ["simulate", "-", "-o", "json", "--config", str(cfg)], input=dump
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output.splitlines()[-1])
    assert decision["node"] == "cheap"
    assert decision["pluginScores"]["MetricScore"] == {"cheap": 100, "middle": 50, "dear": 0}


@pytest.fixture(params=SERVERS)
def cluster(request: pytest.FixtureRequest) -> Iterator[EmbeddedCluster]:
    yield from clusters(request, nodes=3, zones=1, cpu="32", memory="128Gi")


def test_live_scheduler_follows_price_annotations(cluster: EmbeddedCluster) -> None:
    async def main_() -> None:
        async with running(cluster, PRICE_CONFIG) as (runner, conn):
            prices = {"node-001": "0.9", "node-002": "0.2", "node-003": "0.5"}
            for name, price in prices.items():
                r = await conn.core.patch_node_without_preload_content(
                    name=name,
                    body=raw_body({"metadata": {"annotations": {"sim.berth.io/price": price}}}),
                )
                await read_json(r)
            assert runner.refresher is not None
            runner.refresher.refresh_soon()

            async def sampled() -> bool:
                return runner.refresher is not None and (
                    runner.refresher.status().get("price", {}).get("up") is True
                )

            await eventually(sampled)
            await asyncio.sleep(0.5)
            await create(conn, pod("first"))

            async def bound() -> bool:
                return node_of((await pods(conn))["first"]) is not None

            await eventually(bound)
            assert node_of((await pods(conn))["first"]) == "node-002"

    asyncio.run(main_())


def test_cluster_command_serves_the_simulated_exporter(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "berth",
            "cluster",
            "--nodes",
            "2",
            "--metrics-port",
            "0",
            "--kubeconfig-out",
            str(tmp_path / "kc"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = None
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            m = re.search(r"simulated exporter: (http://\S+)", line)
            if m:
                url = m.group(1)
        assert url, "exporter address not printed"

        async def scrape() -> str:
            async with aiohttp.ClientSession() as s, s.get(url) as r:
                assert r.status == 200
                return await r.text()

        text = asyncio.run(scrape())
        for metric in (
            "berth_sim_http_request_seconds",
            "berth_sim_cpu_utilization",
            "berth_sim_price",
        ):
            assert f'{metric}{{node="node-001"}}' in text
            assert f'{metric}{{node="node-002"}}' in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
