"""`berth extender` as a process: no cluster configured (NodeList mode, HTTPS), and the modes
that need a cluster refusing to start without one."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from berth.cluster.tls import generate
from tests.builders import node, pod
from tests.extender.conftest import args


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    }
    env["HOME"] = str(home)  # no ~/.kube/config
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_runs_without_a_cluster_over_https(tmp_path: Path) -> None:
    certs = generate(directory=tmp_path, hosts=["127.0.0.1"])
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "berth",
            "extender",
            "--bind-address",
            f"127.0.0.1:{port}",
            "--url-prefix",
            "/x/",
            "--tls-cert",
            str(certs.cert_path),
            "--tls-key",
            str(certs.key_path),
        ],
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        async def main() -> None:
            ctx = ssl.create_default_context(cafile=str(certs.ca_path))
            base = f"https://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        async with http.get(f"{base}/healthz", ssl=ctx) as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        if time.monotonic() > deadline or proc.poll() is not None:
                            raise
                    await asyncio.sleep(0.1)
                body = args(pod("p", cpu="2"), node("big", cpu="4"), node("tiny", cpu="1"))
                async with http.post(f"{base}/x/filter", json=body, ssl=ctx) as r:
                    assert r.status == 200
                    out = await r.json()
            assert [n["metadata"]["name"] for n in out["Nodes"]["items"]] == ["big"]
            assert out["FailedAndUnresolvableNodes"] == {"tiny": "Insufficient cpu"}

        asyncio.run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "no cluster configured" in err


def test_modes_that_need_a_cluster_exit_2(tmp_path: Path) -> None:
    env = _env(tmp_path)
    base = [sys.executable, "-m", "berth", "extender", "--bind-address", "127.0.0.1:0"]
    cache = subprocess.run(
        [*base, "--node-cache-capable"], env=env, capture_output=True, text=True, timeout=30
    )
    assert cache.returncode == 2
    assert "--node-cache-capable needs a cluster" in cache.stderr
    missing = subprocess.run(
        [*base, "--kubeconfig", str(tmp_path / "nope")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")  # no current-context
    bad = subprocess.run(
        [*base, "--kubeconfig", str(broken)], env=env, capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "current-context" in bad.stderr
