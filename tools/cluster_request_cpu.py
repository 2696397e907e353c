"""The embedded cluster's CPU time per request on the scheduler's hot path: pod create and pod
binding, measured in the server process (its user + system time from /proc, before and after),
so client work does not count. One request at a time over a keep-alive connection, no kubelet.

    .venv/bin/python tools/cluster_request_cpu.py --pods 3000 --rounds 3

Prints the median of the rounds, in microseconds of server CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
from typing import Any

import aiohttp

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p-{i}", "labels": {"app": "bench"}},
        "spec": {
            "schedulerName": "berth",
            "containers": [
                {
                    "name": "c",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
        },
    }


async def one_round(url: str, pid: int, *, pods: int, offset: int) -> tuple[float, float]:
    ns = f"{url}/api/v1/namespaces/default"
    async with aiohttp.ClientSession() as session:
        before = cpu_seconds(pid)
        for i in range(offset, offset + pods):
            async with session.post(f"{ns}/pods", json=pod(i)) as r:
                assert r.status == 201, await r.text()
                await r.read()
        created = cpu_seconds(pid)
        for i in range(offset, offset + pods):
            body = {"metadata": {"name": f"p-{i}"}, "target": {"name": f"node-{i % 10 + 1:03d}"}}
            async with session.post(f"{ns}/pods/p-{i}/binding", json=body) as r:
                assert r.status == 201, await r.text()
                await r.read()
        bound = cpu_seconds(pid)
    return (created - before) / pods * 1e6, (bound - created) / pods * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kubeconfig = tempfile.mktemp(suffix=".kubeconfig")
    cmd = [sys.executable, "-m", "berth", "cluster", "--nodes", "10", "--no-kubelet"]
    cmd += ["--kubeconfig-out", kubeconfig]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(https?://\S+)", line)
        assert match, line
        url = match.group(1)
        creates, binds = [], []
        for r in range(args.rounds):
            c, b = await one_round(url, proc.pid, pods=args.pods, offset=r * args.pods)
            creates.append(c)
            binds.append(b)
        print(
            f"server CPU per create: {statistics.median(creates):.0f} us "
            f"(rounds {', '.join(f'{c:.0f}' for c in creates)}); "
            f"per bind: {statistics.median(binds):.0f} us "
            f"(rounds {', '.join(f'{b:.0f}' for b in binds)})"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if os.path.exists(kubeconfig):
            os.unlink(kubeconfig)


if __name__ == "__main__":
    asyncio.run(main())
