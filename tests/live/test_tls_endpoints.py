"""`berth run`'s endpoints over HTTPS when given a certificate."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp

from berth.cluster import EmbeddedCluster
from berth.cluster.tls import generate
from berth.config import parse_config
from berth.kube.client import connect
from berth.run import Runner, RunOptions


def test_metrics_and_health_over_tls(cluster: EmbeddedCluster, tmp_path: Path) -> None:
    certs = generate(directory=tmp_path, hosts=["127.0.0.1"])

    async def main() -> None:
        conn = await connect(kubeconfig=str(cluster.kubeconfig_path))
        runner = Runner(
            config=parse_config({"leaderElection": {"leaderElect": False}}),
            connection=conn,
            options=RunOptions(
                leader_elect=False,
                bind_address="127.0.0.1:0",
                tls_cert_file=str(certs.cert_path),
                tls_key_file=str(certs.key_path),
            ),
        )
        task = asyncio.create_task(runner.run())
        try:
            for _ in range(100):
                if runner.health.port and runner.ready():
                    break
                await asyncio.sleep(0.05)
            ctx = ssl.create_default_context(cafile=str(certs.ca_path))
            async with aiohttp.ClientSession() as http:
                url = f"https://127.0.0.1:{runner.health.port}"
                async with http.get(f"{url}/readyz", ssl=ctx) as r:
                    assert r.status == 200
                async with http.get(f"{url}/metrics", ssl=ctx) as r:
                    assert "scheduler_pending_pods" in await r.text()
                try:
                    async with http.get(f"http://127.0.0.1:{runner.health.port}/healthz") as r:
                        plain_ok = r.status == 200
                except aiohttp.ClientError:
                    plain_ok = False
                assert not plain_ok  # no plain HTTP once TLS is on
        finally:
            runner.stop_requested.set()
            assert await asyncio.wait_for(task, timeout=20) == 0
            await conn.close()

    asyncio.run(main())
